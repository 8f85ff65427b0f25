"""The `medianscan` command: parse, call one function, print, return an exit code.

Each subcommand lives in its own module here and registers itself; the work is done elsewhere.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from medianscan import __version__
from medianscan.errors import MedianscanError

CommandHandler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree; each subcommand module adds its own parser."""
    from medianscan.cli import blend, calibrate, camera, config, control, demo, run, watch

    parser = argparse.ArgumentParser(
        prog="medianscan",
        description="Capture locked-exposure RAW bursts of film negatives and blend them to a median DNG.",
    )
    parser.add_argument("--version", action="version", version=f"medianscan {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (blend, camera, calibrate, config, control, run, demo, watch):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; user mistakes become one sentence on stderr and exit code 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:  # a first kernel compile can take minutes: say so even when nothing else is logged
        logging.getLogger("medianscan.blend.kernel_cache").setLevel(logging.INFO)
    handler: CommandHandler = args.handler
    try:
        return handler(args)
    except MedianscanError as exc:
        print(f"medianscan: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("medianscan: interrupted", file=sys.stderr)
        return 130


def console() -> NoReturn:
    """The console script: `main`, then exit without the interpreter's final garbage collection.

    That collection walks every object numba and LLVM created on the way (about 0.25 s here, a tenth of a whole
    TIFF blend) to find no garbage worth freeing: the outputs are written and fsynced by now, and the OS takes
    the rest back. Freezing the heap makes the final pass skip it; `main` itself stays safe to call in-process.
    """
    try:
        code = main()
    finally:
        gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    console()
