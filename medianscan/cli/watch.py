"""`medianscan watch DIR [--group folder|count:N|gap:SECONDS] [--config FILE] [--once]`: the hot folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from medianscan.cli.run import serve, service_config
from medianscan.service.watch import WatchService, watch_config


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
    parser.add_argument("--once", action="store_true", help="blend what is there now, wait for the blends, exit")
    parser.add_argument("--json", action="store_true", help="with --once: print the summary as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    cfg = watch_config(service_config(args), args.folder, args.group)
    if not args.once:
        return serve(cfg, args.config)
    service = WatchService(cfg, config_path=args.config, control=False)
    code = service.run_once()
    status = service.status()
    if args.json:
        print(json.dumps(status.to_json(), indent=2))
        return code
    for entry in status.recent:
        print(f"{entry.stack}: {entry.state} -> {entry.output or entry.error}")
    print(f"{service.blends} stack(s) blended in {status.folder}")
    for problem in status.attention:
        print(f"cannot blend {problem.stack}: {problem.reason}", file=sys.stderr)
    for folder, note in status.waiting.items():
        print(f"{folder}: {note}", file=sys.stderr)
    return code
