"""`medianscan base`: measure the roll's film base once and record it in roll.json (medianscan.library.film_base),
then bring the editors' sidecars of the roll's blends up to date with it (medianscan.outputs.editors)."""

from __future__ import annotations

import argparse
from pathlib import Path

from medianscan.config.loader import load_config
from medianscan.errors import MedianscanError
from medianscan.library import film_base, roll_record
from medianscan.library.film_base import FilmBase
from medianscan.wording import counted


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "base",
        help="measure the roll's film base (clear film) for the editors' inversion",
        description=(
            "Measure the film base of a roll once, per colour in raw units: from frames of clear film shot on "
            "purpose (the leader or the rebate filling the view: give the files or their stack folder), or, "
            "without SOURCE, the clearest film across the roll's blends. It is recorded in ROLL/roll.json with "
            "where it came from and the roll's density range, and the darktable and RawTherapee sidecars beside "
            "the roll's blends (outputs.editors) are written from it; one you have edited is kept."
        ),
    )
    parser.add_argument("source", nargs="*", type=Path, metavar="SOURCE", help="clear-film raws, or their folder")
    parser.add_argument("--roll", type=Path, metavar="ROLL", help="the roll (default: the folder above SOURCE)")
    parser.add_argument("--probe", action="store_true", help="SOURCE is calibrate exposure's probe of the base")
    parser.add_argument("--show", action="store_true", help="print the roll's recorded base, change nothing")
    parser.add_argument("--config", type=Path, metavar="FILE", help="which editors get sidecars (outputs.editors)")
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


def describe(base: FilmBase) -> str:
    """The base in one line, as the operator reads it."""
    r, g, b = base.base
    share = ", ".join(f"{s:.0%}" for s in base.share)
    line = f"film base R {r:.0f} G {g:.0f} B {b:.0f} over black ({share} of the raw range), from {base.source}"
    if base.density_range is not None:
        dr, dg, db = base.density_range
        line += f"; density range R {dr:.2f} G {dg:.2f} B {db:.2f}"
    return line


def run(args: argparse.Namespace) -> int:
    from medianscan.outputs.editors import roll_blends, write_editor_sidecars

    roll = _roll(args)
    if args.show:
        recorded = roll_record.read_film_base(roll)
        print(f"{roll.name}: " + ("no film base recorded" if recorded is None else describe(recorded)))
        return 0
    blends = roll_blends(roll)
    if args.source:
        source = film_base.SOURCE_PROBE if args.probe else film_base.SOURCE_CLEAR
        base = film_base.clear_film(_frames(args.source), source)
        if blends:
            base = film_base.density_range(base, blends)
    else:
        base = film_base.clearest_film(blends)
    roll_record.record_film_base(roll, base)
    editors = load_config(args.config).outputs.editors
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
