"""`medianscan blend PATH...`: blend stack folders (or the frames of one stack) beside the raws."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from medianscan.blend.options import BlendOptions
from medianscan.blend.pipeline import blend_stack, prepare_flat
from medianscan.blend.verify import verify_output
from medianscan.config.rules import blend_problems
from medianscan.config.schema import BlendConfig, OutputsConfig
from medianscan.errors import DROP_HINT_CLI, BadFramesError, MedianscanError
from medianscan.library import contents
from medianscan.library.contents import MANIFEST
from medianscan.library.manifest import State, inside, mark, read_manifest
from medianscan.records import BlendRecord
from medianscan.vocabulary import METHODS, WHITE_LEVEL_FROM
from medianscan.wording import counted


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "blend",
        help="blend stacks of frames to a per-pixel median (or robust mean) DNG beside the raws",
        description=(
            "Each PATH is a stack folder (every frame in it is blended) or a frame file; frame files given "
            "together form one stack. Folders are blended one after another, each to its own output."
        ),
    )
    parser.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="a stack folder (all its frames), or the frame files of one stack; several folders blend one by one",
    )
    d = BlendConfig()  # the defaults, as the config has them
    parser.add_argument(
        "--method",
        choices=METHODS,
        default=d.method,
        help=f"how the frames are combined ({d.method}; the README's 'Which method' compares them)",
    )
    parser.add_argument(
        "--kappa",
        type=float,
        default=d.kappa,
        metavar="K",
        help=f"sigma-clip: reject beyond K standard deviations ({d.kappa:g})",
    )
    parser.add_argument(
        "--iterations",
        type=int,
        default=d.iterations,
        metavar="N",
        help=f"sigma-clip: at most this many rounds ({d.iterations})",
    )
    parser.add_argument(
        "--winsor-fraction",
        type=float,
        default=d.winsor_fraction,
        metavar="F",
        help=f"winsorized: the share clamped at each end ({d.winsor_fraction:g})",
    )
    parser.add_argument(
        "--level-tolerance",
        type=float,
        default=d.level_tolerance,
        metavar="F",
        help=f"how far a frame's brightness may be off, a fraction ({d.level_tolerance:g}, that is 3 %%)",
    )
    parser.add_argument(
        "--max-shift",
        type=float,
        default=d.max_shift_px,
        metavar="PX",
        help=f"how far a frame may be shifted against the others, in pixels ({d.max_shift_px:g})",
    )
    parser.add_argument(
        "--flat",
        type=Path,
        metavar="FLAT",
        help="correct raws with a flat field: a folder of frames of the bare light (blended first) or a flat DNG "
        "blended by medianscan",
    )
    parser.add_argument(
        "--output",
        metavar="OUT",
        help="where the output goes: a folder (an existing one, or any path ending in /) takes the outputs of "
        "every stack given, as when blending from a read-only card; a file name, for one stack only",
    )
    parser.add_argument("--tiff", action="store_true", help="also write a 16-bit linear TIFF")
    parser.add_argument("--compress", action="store_true", help="lossless-JPEG compressed DNG")
    parser.add_argument("--drop-bad-frames", action="store_true", help="blend the good frames when at least 3 remain")
    parser.add_argument(
        "--bracket",
        action="store_true",
        help="multi-exposure: frames at two or more shutter times, blended per group and merged into one DNG",
    )
    parser.add_argument("--keep-groups", action="store_true", help="with --bracket: also write each group's blend")
    parser.add_argument(
        "--white-level",
        choices=WHITE_LEVEL_FROM,
        default=d.white_level,
        help="whose white level the DNG of a native raw says where editors disagree (the README's 'The DNG in "
        "your editor'): darktable's camera data (where darktable is installed; the default) or LibRaw's",
    )
    parser.add_argument("--keep-going", action="store_true", help="a bad stack does not stop the batch")
    parser.add_argument(
        "--force",
        action="store_true",
        help="also blend stacks whose burst was cut off, and replace an --output file that is there already",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON record per stack on stdout")
    parser.set_defaults(handler=run)


def stacks_of(paths: list[Path]) -> list[Path | list[Path]]:
    """Folders are stacks of their own; the loose files given together form one more stack."""
    folders: list[Path | list[Path]] = [p for p in paths if p.is_dir()]
    files = [p for p in paths if not p.is_dir()]
    return folders + ([files] if files else [])


def run(args: argparse.Namespace) -> int:
    options = BlendOptions(
        method=args.method,
        kappa=args.kappa,
        iterations=args.iterations,
        winsor_fraction=args.winsor_fraction,
        level_tolerance=args.level_tolerance,
        max_shift_px=args.max_shift,
        drop_bad_frames=args.drop_bad_frames,
        tiff=args.tiff,
        compress=args.compress,
        bracket=args.bracket,
        keep_groups=args.keep_groups,
        white_level=args.white_level,
        editors=tuple(OutputsConfig().editors),  # as the daemon by default: a roll's negative opens as a positive
    )
    problems = blend_problems(options, spell=lambda name: _FLAGS.get(name, f"--{name.replace('_', '-')}"))
    if problems:
        raise MedianscanError("; ".join(problems))
    stacks = stacks_of(args.paths)
    options.output, options.output_folder = _output_place(args.output, stacks, args.force)
    replacing = options.output is not None and options.output.exists()
    flats = _prepare_flats(args.flat, stacks)
    failures = 0
    for index, stack in enumerate(stacks, 1):
        label = _stack_name(stack)  # the stack's one name, as every message of its blend calls it
        _progress(index, len(stacks), label, "blending")
        try:
            _refuse_incomplete(stack, label, args.force)
            options.flat = flats.get(_stack_folder(stack).parent)
            result = blend_stack(stack, options, name=label)
            _record_in_manifest(stack, result)
        except MedianscanError as exc:
            failures += 1
            message = exc.hinted(DROP_HINT_CLI) if isinstance(exc, BadFramesError) else str(exc)
            _failed(index, len(stacks), label, message)
            _emit(args.json, {"stack": str(stack), "ok": False, "error": message})
            if not args.keep_going:
                _not_attempted(stacks[index:])
                return 1
            continue
        extra = "".join(f" (+ {path.name})" for path in result.extra_outputs)
        replaced = " (replaced the file that was there)" if replacing else ""
        _progress(index, len(stacks), label, f"{result.seconds:.1f} s -> {result.output}{extra}{replaced}", done=True)
        _emit(args.json, {"ok": True, **result.to_json()})
        _report(result, args.json)
    return 1 if failures else 0


def _prepare_flats(source: Path | None, stacks: list[Path | list[Path]]) -> dict[Path, Path]:
    """`--flat`: the master flat for each roll the stacks belong to (a stack's roll is the folder it is in),
    blended into that roll's flats (see prepare_flat); a bad flat stops the command before any stack."""
    if source is None:
        return {}
    rolls = dict.fromkeys(_stack_folder(stack).parent for stack in stacks)
    return {roll: prepare_flat(source, roll) for roll in rolls}


_FLAGS = {"max_shift_px": "--max-shift"}  # option names whose flag is spelled otherwise


def _output_place(written: str | None, stacks: list[Path | list[Path]], force: bool) -> tuple[Path | None, Path | None]:
    """`--output` as (a file for one stack, a folder for all): a folder is one that exists or a path written with
    a trailing slash (made here); a folder takes each stack's output under the stack's own name, so two stacks of
    one name are refused before any work. A file that is there already (or its sidecar) is replaced only with
    --force: a name typed by hand may be anything, a frame too."""
    if written is None:
        return None, None
    output = Path(written)  # a Path drops the trailing slash that says "a folder"
    if output.is_dir() or written.endswith(("/", os.sep)):
        try:
            output.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MedianscanError(f"{output}: cannot make the output folder ({exc.strerror or exc})") from None
        names = [_stack_name(stack) for stack in stacks]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise MedianscanError(
                f"{output}: several stacks are named {', '.join(twice)}, and their outputs would overwrite each "
                "other in one folder; blend them one by one with --output files"
            )
        return None, output
    if len(stacks) > 1:
        raise MedianscanError(
            f"--output {output} names one file, but {len(stacks)} stacks were given; give a folder (ending in /) "
            "for their outputs"
        )
    there = [path for path in (output, output.with_suffix(".json")) if path.exists()]
    if there and not force:
        raise MedianscanError(
            f"{there[0]}: already there; nothing was blended: --force replaces it, or give another --output"
        )
    return output, None


def _stack_folder(stack: Path | list[Path]) -> Path:
    """The folder a stack is: the folder given, or the one its loose frames are in."""
    return stack.resolve() if isinstance(stack, Path) else stack[0].resolve().parent


def _stack_name(stack: Path | list[Path]) -> str:
    """The name a stack goes by, in its messages and its outputs: its folder's."""
    return _stack_folder(stack).name


def _not_attempted(rest: list[Path | list[Path]]) -> None:
    """A batch stopped at a failure says what it left undone, and how to go on past failures."""
    if rest:
        print(
            f"medianscan: stopped; {counted(len(rest), 'more stack')} not attempted "
            f"({', '.join(_stack_name(s) for s in rest[:5])}{', ...' if len(rest) > 5 else ''}); "
            "--keep-going blends the rest past a failure",
            file=sys.stderr,
        )


def _record_in_manifest(stack: Path | list[Path], result: BlendRecord) -> None:
    """A stack folder of the daemon's library (it has a stack.json) records the blend exactly as the daemon
    would: verified against its sidecar, then state blended with the blend's record. A blend written outside the
    stack (`--output`) is listed as a copy and leaves the stack's own record as it was."""
    if not isinstance(stack, Path) or not (stack / MANIFEST).is_file():
        return
    verify_output(result)
    try:
        if inside(result.output, stack):
            mark(stack, State.BLENDED, blend=result, blend_seconds=result.seconds, error=None)
        else:
            m = read_manifest(stack)
            copies = [p for p in m.copies if p != result.output] + [result.output]
            mark(stack, m.state, copies=copies)
    except OSError as exc:  # a read-only card: the blend is written elsewhere, the stack's record stays as it was
        print(
            f"medianscan: {stack.name}: blended, but {MANIFEST} cannot record it ({exc.strerror or exc})",
            file=sys.stderr,
        )


def _refuse_incomplete(stack: Path | list[Path], label: str, force: bool) -> None:
    """A burst the daemon marked incomplete (cut off midway) is blended only when asked to."""
    if force or not isinstance(stack, Path) or not (stack / MANIFEST).is_file():
        return
    if read_manifest(stack).state == State.INCOMPLETE:
        raise MedianscanError(
            f"{label}: its burst was cut off before all frames arrived (stack.json says incomplete); "
            "use --force to blend the frames it has"
        )


def _progress(index: int, total: int, label: str, text: str, *, done: bool = False) -> None:
    """A bar on a terminal (redrawn while a stack blends); elsewhere one line per stack blended, numbered (a stack
    that failed is said by `_failed`)."""
    if not sys.stderr.isatty():
        if done:
            print(f"[{index}/{total}] {label}: {text}", file=sys.stderr, flush=True)
        return
    width = 24
    filled = width * (index - (0 if done else 1)) // total
    bar = "#" * filled + "-" * (width - filled)
    print(f"[{bar}] {index}/{total} {label}: {text}", end="\n" if done else "\r", file=sys.stderr, flush=True)


def _failed(index: int, total: int, label: str, message: str) -> None:
    """A stack that failed: one sentence, its step and its name said once (on a terminal it takes the bar's
    line; the next stack's bar starts below it)."""
    clear = "\r\033[K" if sys.stderr.isatty() else ""
    print(f"{clear}medianscan: [{index}/{total}] {label}: {message.removeprefix(f'{label}: ')}", file=sys.stderr)


def _emit(as_json: bool, record: dict[str, Any]) -> None:
    if as_json:
        print(json.dumps(record), flush=True)


def _report(result: BlendRecord, as_json: bool) -> None:
    """What was left out of the blend, on stderr (in JSON mode too: stdout holds the records)."""
    for dropped in result.dropped:
        print(f"  dropped {dropped.path.name}: {dropped.reason}", file=sys.stderr)
    for warning in result.warnings:
        print(f"medianscan: warning: {result.stack.name}: {warning}", file=sys.stderr)
    notice = contents.notice(result.stack.name, result.ignored)
    if notice:
        print(f"medianscan: {notice}", file=sys.stderr)
