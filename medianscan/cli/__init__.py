"""The `medianscan` command: parse, call one function, print, return an exit code.

Each subcommand lives in its own module here and registers itself; the work is done elsewhere.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import gc
import importlib
import io
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from medianscan import __version__
from medianscan.errors import MedianscanError
from medianscan.logs import limit_repeats, log_format

CommandHandler = Callable[[argparse.Namespace], int]


# Which module holds each subcommand. The dispatcher imports only the one asked for: `medianscan capture` from a
# desktop shortcut must answer at once, while `run` and `blend` pull in numba, rawpy and scipy (about 2 s), and
# `stitch` must not pay for the daemon's client and the config loader it never uses. A name not listed here is
# one of the daemon's own commands (`control.COMMANDS`), or unknown: then `control` is asked, or every module.
MODULE_OF: dict[str, str] = {
    "base": "base",
    "blend": "blend",
    "calibrate": "calibrate",
    "camera": "camera",
    "config": "config",
    "run": "run",
    "scan-tiles": "tiles",
    "demo": "demo",
    "kernels": "kernels",
    "stitch": "stitch",
    "watch": "watch",
}
CONTROL = "control"  # the module of the daemon's commands (capture, pause, status, ...)
MODULES = (*dict.fromkeys(MODULE_OF.values()), CONTROL)  # in the order --help lists them
SERVICES = frozenset({"run", "watch", "demo"})  # long-running: their log lines carry the time


def _control_commands() -> frozenset[str]:
    return frozenset(importlib.import_module(f"medianscan.cli.{CONTROL}").COMMANDS)


def __getattr__(name: str) -> dict[str, str]:
    """`SUBCOMMANDS`, every command name and the module that holds it, the daemon's commands included: built when
    asked for (it imports `control`), not by every command's start."""
    if name == "SUBCOMMANDS":
        return {**MODULE_OF, **dict.fromkeys(sorted(_control_commands()), CONTROL)}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _modules_for(command: str | None) -> tuple[str, ...]:
    """The modules to import for `command`: its own, `control` for a daemon command, every one when unknown."""
    if command in MODULE_OF:
        return (MODULE_OF[command],)
    if command is not None and command in _control_commands():
        return (CONTROL,)
    return MODULES


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command tree; with `command`, only the module that holds it is imported (an unknown one: all)."""
    parser = argparse.ArgumentParser(
        prog="medianscan",
        description="Capture locked-exposure RAW bursts of film negatives and blend them to a median DNG.",
    )
    parser.add_argument("--version", action="version", version=f"medianscan {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _modules_for(command):
        importlib.import_module(f"medianscan.cli.{name}").register(sub)
    return parser


_VERBOSE = frozenset({"-v", "-vv", "-vvv", "--verbose"})


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand's name: the first word that is not an option (the top level takes none with a value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; user mistakes become one sentence on stderr and exit code 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    loud = [word for word in argv if word in _VERBOSE]  # -v belongs to medianscan, wherever it was written
    argv = loud + [word for word in argv if word not in _VERBOSE]
    with contextlib.suppress(io.UnsupportedOperation, ValueError):  # stderr without a file (a test's capture)
        faulthandler.enable()  # a crash in a native library (LibRaw, libgphoto2, Exiv2) leaves a stack on stderr
    command = _command(argv)
    args = build_parser(command).parse_args(argv)
    before = list(logging.getLogger().handlers)
    logging.basicConfig(level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)])
    # on the handler made here (a host that configured logging before, a test's capture say, keeps its own): lines
    # for their reader (medianscan.logs), and a record repeated in a tight loop summarised, never written
    # thousands of times a second
    made = [h for h in logging.getLogger().handlers if h not in before]
    long_running = command in SERVICES and not getattr(args, "once", False)  # `watch --once` is a one-shot
    formatter = log_format(
        service=long_running, verbose=bool(args.verbose), journal=bool(os.environ.get("JOURNAL_STREAM"))
    )
    for made_handler in made:
        made_handler.setFormatter(formatter)
    limit_repeats(made)
    if not args.verbose:  # a first kernel compile can take minutes: say so even when nothing else is logged
        logging.getLogger("medianscan.blend.kernels.kernel_cache").setLevel(logging.INFO)
    command_handler: CommandHandler = args.handler
    try:
        return command_handler(args)
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
