"""`medianscan watch DIR [--group folder|count:N|gap:SECONDS] [--config FILE] [--once]`: the hot folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from medianscan.cli.run import service_config
from medianscan.config.schema import BlendConfig
from medianscan.errors import DROP_HINT_CLI
from medianscan.reports import WatchStatus
from medianscan.service.watch import WatchService, watch_config
from medianscan.vocabulary import METHODS
from medianscan.wording import counted


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "watch",
        help="blend the bursts other tools (tethering apps, card readers, rsync) drop into a folder",
        description=(
            "Follows DIR and blends each stack once its files are complete, with the same engine, outputs and "
            "sidecar as `medianscan blend`. Stacks already blended (their sidecar lists the same frame hashes) are "
            "skipped; a stack that changes is blended again. Stops on SIGTERM or Ctrl-C."
        ),
    )
    parser.add_argument("folder", type=Path, metavar="DIR", help="the folder to watch (followed recursively)")
    parser.add_argument(
        "--group",
        metavar="folder|count:N|gap:SECONDS",
        help="how files form stacks: one sub-folder each (default), every N files in name order, or a new "
        "stack after a pause of SECONDS",
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="configuration file (blend, hooks, retention)")
    parser.add_argument(
        "--method",
        choices=METHODS,
        help=f"how the frames are combined (the config's blend.method, else {BlendConfig().method})",
    )
    parser.add_argument(
        "--drop-bad-frames",
        action="store_true",
        help="blend the good frames of a stack when at least 3 remain (the config's blend.drop_bad_frames)",
    )
    parser.add_argument("--once", action="store_true", help="blend what is there now, wait for the blends, exit")
    parser.add_argument("--json", action="store_true", help="with --once: print the summary as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    cfg = watch_config(service_config(args), args.folder, args.group)
    flags = {"method": args.method, "drop_bad_frames": args.drop_bad_frames or None}
    service = WatchService(
        cfg,
        config_path=args.config,
        control=not args.once,
        drop_hint=DROP_HINT_CLI
        if args.config is None
        else f"--drop-bad-frames (or blend.drop_bad_frames: true in {args.config}) blends the rest",
        blend_flags={name: value for name, value in flags.items() if value is not None},
    )
    if not args.once:
        return service.run()
    code = service.run_once()
    status = service.status()
    if args.json:
        print(json.dumps(status.to_json(), indent=2))
    else:
        print(summary(status))
    for folder, note in status.waiting.items():
        print(f"medianscan: {service.hot.label(Path(folder))}: {note}", file=sys.stderr)
    return code


def summary(status: WatchStatus) -> str:
    """What a catch-up did, in one line (each stack's own line was logged as it happened)."""
    failed = len(status.attention)
    parts = [f"{counted(status.blended - status.reblended, 'stack')} blended"]
    parts += [f"{status.reblended} re-blended (their files changed)"] if status.reblended else []
    parts += [f"{status.blended_before} skipped (blended before, unchanged)"] if status.blended_before else []
    parts += [f"{failed} cannot be blended (said above)"] if failed else []
    return ", ".join(parts) + f" in {status.folder}"
