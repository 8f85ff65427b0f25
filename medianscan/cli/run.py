"""`medianscan run [--config FILE] [--keyboard]`: the scanning daemon (what the systemd service runs)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "run",
        help="run the scanning daemon: footswitch or socket press -> burst -> blend beside the raws",
        description=(
            "Captures a locked-exposure burst into the negative's own folder at each press and blends it in the "
            "background. Stops on SIGTERM or Ctrl-C after the running burst (queued stacks stay on disk and are "
            "blended at the next start); SIGHUP reloads the configuration."
        ),
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="configuration file (default: built-in defaults)")
    parser.add_argument("--keyboard", action="store_true", help="read presses from this terminal (Enter captures)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from medianscan.config import load_config
    from medianscan.daemon import Daemon

    if args.verbose == 0:
        logging.getLogger().setLevel(logging.INFO)  # a service's log is its history
    cfg = load_config(args.config)
    if cfg.mode == "watch":  # the hot folder: same unit, status, hooks and retention; no camera
        from medianscan.watch import WatchService

        return WatchService(cfg, config_path=args.config).run()
    return Daemon(cfg, config_path=args.config, keyboard=args.keyboard).run()
