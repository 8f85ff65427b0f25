"""`medianscan base`: measure the roll's film base once and record it in roll.json (medianscan.library.film_base),
then bring the editors' sidecars of the roll's blends up to date with it (medianscan.outputs.editors)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medianscan.capture.events import DEFAULT_WAIT
from medianscan.config.loader import load_config
from medianscan.errors import MedianscanError
from medianscan.library import film_base, roll_record
from medianscan.wording import counted


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "base",
        help="measure the roll's film base (clear film) for the editors' inversion",
        description=(
            "Measure the film base of a roll once, per colour in raw units. Without SOURCE or --roll, ask the "
            "running daemon to shoot a burst of clear film (the leader or the rebate filling the view) into "
            "the current roll's base/ folder and measure it, as the console's Film base button does. With "
            "SOURCE, measure frames of clear film already shot (the files or their folder); with only --roll, "
            "the clearest film across that roll's blends. The base is recorded in ROLL/roll.json with where it "
            "came from and the roll's density range, and the darktable and RawTherapee sidecars beside the "
            "roll's blends (outputs.editors) are written from it; one you have edited is kept."
        ),
    )
    parser.add_argument("source", nargs="*", type=Path, metavar="SOURCE", help="clear-film raws, or their folder")
    parser.add_argument("--roll", type=Path, metavar="ROLL", help="the roll (default: the folder above SOURCE)")
    parser.add_argument("--probe", action="store_true", help="SOURCE is calibrate exposure's probe of the base")
    parser.add_argument("--show", action="store_true", help="print the roll's recorded base, change nothing")
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help="which editors get sidecars (outputs.editors); the daemon's socket"
    )
    parser.add_argument("--socket", type=Path, metavar="PATH", help="the running daemon's control socket")
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help=f"seconds to wait for the daemon's burst ({DEFAULT_WAIT['base']:g})",
    )
    parser.set_defaults(handler=run)


def _frames(sources: list[Path]) -> list[Path]:
    """The raw files of SOURCE: files as given, a folder's frames as a blend would find them."""
    from medianscan.blend.stack_files import resolve  # heavy (rawpy, numba): only when measuring

    frames: list[Path] = []
    for source in sources:
        if source.is_dir():
            frames += resolve(source)[1].frames
        elif source.is_file():
            frames.append(source)
        else:
            raise MedianscanError(f"{source}: no such file or folder")
    return frames


def _roll(args: argparse.Namespace) -> Path:
    if args.roll is not None:
        roll: Path = args.roll
    elif args.source:
        first: Path = args.source[0].resolve()
        roll = first.parent if first.is_dir() else first.parent.parent
    else:
        raise MedianscanError("name the roll (--roll ROLL) or the clear film (SOURCE)")
    if not roll.is_dir():
        raise MedianscanError(f"{roll}: no such roll folder")
    return roll


def run(args: argparse.Namespace) -> int:
    from medianscan.outputs.editors import roll_blends, write_editor_sidecars
    from medianscan.outputs.editors.roll_base import describe, record_base

    if not args.source and args.roll is None and not args.show:
        return _ask_the_daemon(args)
    roll = _roll(args)
    if args.show:
        recorded = roll_record.read_film_base(roll)
        print(f"{roll.name}: " + ("no film base recorded" if recorded is None else describe(recorded)))
        return 0
    editors = load_config(args.config).outputs.editors
    if args.source:
        source = film_base.SOURCE_PROBE if args.probe else film_base.SOURCE_CLEAR
        print(record_base(roll, film_base.clear_film(_frames(args.source), source), editors).said())
        return 0
    blends = roll_blends(roll)
    with roll_record.updating(roll):
        base = film_base.clearest_film(blends)
        roll_record.record_film_base(roll, base)
        kept = written = 0
        for blend in blends:
            for sidecar in write_editor_sidecars(blend, base, editors):
                written += sidecar.written
                kept += not sidecar.written
    print(f"{roll.name}: {describe(base)}; recorded in roll.json")
    if editors and blends:
        print(
            f"{counted(written, 'sidecar')} ({', '.join(editors)}) written beside {counted(len(blends), 'blend')}"
            + (f"; {counted(kept, 'sidecar')} you edited kept as it is" if kept else "")
        )
    return 0


def _ask_the_daemon(args: argparse.Namespace) -> int:
    """No SOURCE, no --roll: the running daemon shoots the clear film in the holder, as `medianscan flat` asks
    for a flat; its answer says what it measured."""
    from medianscan.capture.control_client import request
    from medianscan.cli.control import find_socket

    try:
        path = find_socket(args)
    except MedianscanError as exc:
        raise MedianscanError(
            f"{exc}; or measure clear film already shot: `medianscan base SOURCE`, or a roll's blends: "
            "`medianscan base --roll ROLL`"
        ) from None
    reply = request(path, "base", timeout=args.timeout)
    if not reply.get("ok"):
        print(f"medianscan: {reply.get('error', 'base: the daemon refused it')}", file=sys.stderr)
        return 1
    print(reply.get("text", "base: done"))
    return 0
