"""`medianscan scan-tiles --strip NEGATIVE` with no daemon running: a strip of 120 shot negative after negative on
the XY stage (capture.rig.tile_strip), NEGATIVE the first negative's folder and the next ones named after it by
`negative_template` (frame-001, frame-002, ...), as the library names a press's negative; each negative blended
and stitched once the strip run is over. Run again with the same NEGATIVE, it carries on the unfinished negative
(or goes on from the last finished one, where the stage was left), never shooting a finished negative again. A
plain `scan-tiles NEGATIVE` where a strip run left the stage goes on along the strip into NEGATIVE (run_on_strip)."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable
from pathlib import Path

from medianscan.capture.rig import calibrate_rig
from medianscan.capture.rig.strip_summary import StripSummary
from medianscan.capture.rig.tile_plan import Wanted, make_plan
from medianscan.capture.rig.tile_run import Resume, RunSettings
from medianscan.capture.rig.tile_strip import (
    StripRun,
    begin_at,
    complete,
    holds_anything,
    strip_settings,
)
from medianscan.cli.tiles_parts import (
    ANOTHER_CONFIG,
    RESUME_FILE,
    Eyes,
    Printer,
    camera_and_rig,
    load_saved,
    no_daemon,
    save,
    stitch,
)
from medianscan.config.schema import Config
from medianscan.errors import MedianscanError
from medianscan.library.names import Template
from medianscan.library.tile_set import is_tiled


def run_strip(args: argparse.Namespace, cfg: Config) -> int:
    if args.negative is None:
        raise MedianscanError(f"scan-tiles --strip: {no_daemon(cfg)} to name the negatives: give the strip's "
                              "first negative's folder (medianscan scan-tiles --strip ROLL/frame-001), or start the "
                              f"daemon {ANOTHER_CONFIG}")  # fmt: skip
    first_named: Path = args.negative.expanduser().resolve()
    template = Template(cfg.negative_template, "negative", "negative_template")
    number = template.number(first_named.name)
    if number is None:
        raise MedianscanError(f"scan-tiles --strip: {first_named.name} is not named as negative_template "
                              f"{cfg.negative_template!r} names a negative, so the next ones cannot be named after "
                              "it: name the first as the template does (e.g. "
                              f"{template.format(1, dt.date.today())})")  # fmt: skip

    def named(k: int) -> Path:
        return first_named.parent / str(template.format(k, dt.date.today()))

    last, k = None, number
    while is_tiled(named(k)):  # the strip's negatives shot by runs before this one
        last, k = named(k), k + 1
    plan = make_plan(Wanted.of(cfg.tiles), calibrate_rig.load(cfg.library).scale())
    strip_settings(cfg.tiles)  # a grid of tiles refused before anything opens
    resume_file = calibrate_rig.calibration_path(cfg.library).with_name(RESUME_FILE)
    saved = load_saved(resume_file)
    if last is None and saved is not None and saved[1].on_strip and saved[0].parent == first_named.parent:
        before = template.number(saved[0].name)  # the strip stopped between negatives, NEGATIVE the next one
        last = saved[0] if before is not None and before + 1 == number and is_tiled(saved[0]) else None
    first, resume = begin_at(last, saved, lambda: named(k))
    if not is_tiled(first) and holds_anything(first):  # never two pictures in one folder
        raise MedianscanError(f"scan-tiles --strip: {first} holds files already and is no tiled negative: the "
                              "strip's first negative would be shot into it; name a fresh folder (nothing "
                              "moved)")  # fmt: skip
    print(f"{first.name}{' (carried on)' if first.is_dir() else ''}: {plan.said()}, each negative, the whole strip")
    counter = [template.number(first.name) or k]

    def name_next() -> Path:
        counter[0] += 1
        return named(counter[0])

    summary = _run(cfg, first, resume, name_next, None)
    if not args.no_stitch:
        for name in summary.negatives:
            stitch(first_named.parent / name, cfg)
    return 0 if summary.ended else 1


def run_on_strip(args: argparse.Namespace, cfg: Config, saved: tuple[Path, Resume], negative: Path) -> int:
    """A plain scan-tiles where a strip run left the stage (saved): NEGATIVE carried on when it is the one the
    stage was left in, or the next negative along the strip shot into NEGATIVE; the stage stays on the strip."""
    if saved[0] != negative and not complete(saved[0]):
        raise MedianscanError(f"scan-tiles: the last strip run stopped in {saved[0].name} with tiles of it missing, "
                              f"the stage there: run `medianscan scan-tiles {saved[0]}` to carry it on first (or "
                              "--strip for the rest of the strip)")  # fmt: skip
    _refuse_off_the_strip(cfg, saved[0], negative)
    plan = make_plan(Wanted.of(cfg.tiles), calibrate_rig.load(cfg.library).scale())
    how = "carried on" if saved[0] == negative else f"the next on the strip after {saved[0].name}"
    print(f"{negative.name} ({how}): {plan.said()}")
    summary = _run(cfg, saved[0], saved[1], lambda: negative, 1)
    if not summary.enough:
        return 1
    if not args.no_stitch:
        stitch(negative, cfg)
    return 0


def _refuse_off_the_strip(cfg: Config, left: Path, negative: Path) -> None:
    """Refused before anything moves: the finished negative the strip stopped after (the stage would go along the
    strip for it), or a negative already holding files that is not the one the stage was left in (the strip's
    next picture would be shot into it, two pictures in one negative)."""
    if negative == left and not complete(left):
        return
    template = Template(cfg.negative_template, "negative", "negative_template")
    number = template.number(left.name)
    after = "the next negative's folder" if number is None else \
        f"the next, {left.parent.name}/{template.format(number + 1, dt.date.today())}"  # fmt: skip
    if negative == left:
        raise MedianscanError(f"scan-tiles: {left.name} is finished (every tile shot) and the strip run left the "
                              f"stage after it: name {after} (nothing moved, the stage's place kept)")  # fmt: skip
    if holds_anything(negative):
        raise MedianscanError(f"scan-tiles: {negative.name} holds files already and the stage is on the strip after "
                              f"{left.name}: its next picture would be shot into {negative.name}, two pictures in one "
                              f"negative; name {after} (nothing moved, the stage's place kept)")  # fmt: skip


def _run(cfg: Config, first: Path, resume: Resume | None, name_next: Callable[[], Path],
         most: int | None) -> StripSummary:  # fmt: skip
    """The strip run on the camera and the rig opened here; where it left the stage saved for the next run."""
    calibration = calibrate_rig.load(cfg.library)
    plan = make_plan(Wanted.of(cfg.tiles), calibration.scale())
    settings = strip_settings(cfg.tiles)
    resume_file = calibrate_rig.calibration_path(cfg.library).with_name(RESUME_FILE)
    with camera_and_rig(cfg) as (camera, rig, stop):
        run = StripRun(rig, Eyes(camera, cfg), plan, calibration.scale(), first=first, name_next=name_next,
                       strip=settings, stop=stop, progress=Printer(),
                       settings=RunSettings(cfg.rig.settle_seconds, cfg.tiles.wait_without_live_view_seconds),
                       resume=resume, most=most)  # fmt: skip
        summary = run.run()
        left = run.resume()
        save(resume_file, left[0] if left else first, None if left is None else left[1])
    print(summary.said())
    return summary
