"""`medianscan run [--config FILE] [--keyboard]`: the scanning daemon (what the systemd service runs)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from medianscan.capture.camera.faults import NO_CAMERA_FIX
from medianscan.capture.camera.gphoto2.session import autodetect
from medianscan.config.loader import load_config
from medianscan.config.schema import Config
from medianscan.errors import MedianscanError
from medianscan.service.capture import Daemon
from medianscan.service.watch import WatchService


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
    cfg = service_config(args)
    if args.config is None and cfg.mode == "capture" and cfg.camera.backend == "gphoto2" and not autodetect():
        # tried by hand without a config: say so now (a service with a config waits for its camera to be switched on)
        raise MedianscanError(f"no camera found: {NO_CAMERA_FIX}")
    return serve(cfg, args.config, keyboard=args.keyboard)


def service_config(args: argparse.Namespace) -> Config:
    """The configuration file of `--config` (or the defaults), loaded for a service; a service's log is its
    history, so it logs at INFO unless -v asks for more."""
    if args.verbose == 0:
        logging.getLogger().setLevel(logging.INFO)
    return load_config(args.config)


def serve(cfg: Config, config_path: Path | None, *, keyboard: bool = False) -> int:
    """Run the service of `cfg.mode` until SIGTERM / SIGINT (`mode: watch` is the hot folder of `medianscan watch`)."""
    if cfg.mode == "watch":  # the hot folder: same unit, status, hooks and retention; no camera
        return WatchService(cfg, config_path=config_path).run()
    return Daemon(cfg, config_path=config_path, keyboard=keyboard).run()
