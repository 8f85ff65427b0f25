"""A tile run on the camera thread (`scan-tiles`): the next negative of the current roll (or the last one, while its
tiles are not all shot: a run stopped or faulted is carried on) shot in tiles on the XY stage, each tile's burst
through the camera thread's own capture (its stack queued for blending at once; the service stitches the negative
once every tile is blended), its progress, tile by tile, kept for status and the console. `stop-tiles`, or a
press, is answered at once on its own thread (roll_turn.at_once) and takes effect between tiles. Every call to the
camera is made on this thread: the run's live view and bursts go through the shooter. `scan-tiles` with the
strip (the socket's `strip: true`, or tiles.strip) shoots a strip of 120 negative after negative (tile_strip); a
plain `scan-tiles` where a strip run left the stage goes on along the strip, one negative (tile_strip.on_the_strip)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from medianscan.capture.camera import Camera
from medianscan.capture.events import Answer
from medianscan.capture.live_view import LiveFeed
from medianscan.capture.rig import calibrate_rig
from medianscan.capture.rig.base import Rig
from medianscan.capture.rig.open import open_rig
from medianscan.capture.rig.tile_plan import StageScale, TilePlan, Wanted, make_plan
from medianscan.capture.rig.tile_run import Resume, RunSettings, TileLine, TileProgress, TileRun, shot_already
from medianscan.capture.rig.tile_strip import StripRun, StripSettings, begin_at, on_the_strip, strip_settings
from medianscan.config.schema import Config
from medianscan.errors import MedianscanError
from medianscan.library.manifest import Manifest, State, write_manifest
from medianscan.library.rolls import Library
from medianscan.library.tile_set import is_tiled, read_tile_set
from medianscan.service.capture.roll_turn import LivePreview
from medianscan.service.capture.state import DaemonState
from medianscan.wording import counted

log = logging.getLogger(__name__)

DOING = "scan tiles"


class TileShooter(Protocol):
    """The camera thread's side the tile run needs."""

    tiles_resume: tuple[Path, Resume] | None  # where the last tile run left the stage, and for which negative
    live: LiveFeed
    config: Callable[[], Config]
    library: Callable[[], Library]
    stop: threading.Event

    def ready_camera(self, doing: str) -> Camera: ...

    def capture(self, strip_frame: int | None = None, into: Callable[[int], Path] | None = None) -> Answer: ...


class TileCamera(LivePreview):
    """The run's live view (shown on the console too) and each tile's burst as a capture into the tile's folder."""

    def __init__(self, shooter: TileShooter) -> None:
        super().__init__(shooter, DOING)
        self.shooter = shooter

    def shoot(self, stack: Path) -> Answer:
        return self.shooter.capture(into=lambda frames: tile_stack(stack, frames))


def tile_stack(folder: Path, frames_expected: int) -> Path:
    """The tile's stack folder with a `capturing` manifest, before any frame (as a capture's stack gets)."""
    folder.mkdir(parents=True, exist_ok=True)
    m = Manifest(State.CAPTURING, folder.parent.name, folder.name, frames_expected)
    m.history.append({"state": m.state.value, "at": m.created})
    write_manifest(folder, m)
    return folder


class _Either:
    """Stop when either is set: the operator's stop, or the daemon stopping (SIGTERM)."""

    def __init__(self, *flags: threading.Event) -> None:
        self.flags = flags

    def is_set(self) -> bool:
        return any(f.is_set() for f in self.flags)


def unfinished(library: Library) -> Path | None:
    """The roll's last negative when it was shot in tiles and some of its tiles are still missing (a run stopped
    or faulted): the next scan-tiles carries it on rather than starting another."""
    last = library.last_stack()
    if last is None or not is_tiled(last):
        return None
    try:
        folders = read_tile_set(last).folders()
    except MedianscanError:
        return None
    return last if any(not shot_already(f) for f in folders) else None


def waiting(negative: Path, plan: TilePlan) -> TileProgress:
    """Each tile waiting, before the rig is open; the plan said from the start (the terminal following the run
    prints it before the first tile)."""
    lines = tuple(TileLine(t.name, t.column, t.row) for t in plan.tiles)
    return TileProgress(negative.name, plan.columns, plan.rows, lines, "opening the rig", started=time.time(),
                        plan=plan.said())  # fmt: skip


def keeping(state: DaemonState, plan: TilePlan) -> Callable[[TileProgress], None]:
    """The run's progress kept in `state`, each report with the plan said (the run's own reports do not say it)."""
    said = plan.said()
    return lambda progress: state.run_at(replace(progress, plan=said))


def scan_tiles(shooter: TileShooter, state: DaemonState, strip: bool | None = None) -> Answer:
    """Shoot the negative in tiles to its last, or until stopped; the answer is the run's summary (ok when every
    tile is shot). With `strip` (None: as tiles.strip says) the whole strip of 120, negative after negative, until
    it ends (ok then). Its progress, tile by tile, is kept in `state` for status and the console."""
    if state.paused:
        return Answer.paused("scan-tiles")
    cfg = shooter.config()
    if cfg.rig.port is None or cfg.rig.axes != "xy":
        return Answer(False, "scan-tiles", "scan-tiles refused: no XY stage is configured (set rig.port and rig.axes: "
                      "xy, then `medianscan calibrate rig` with the daemon stopped)", "refused")  # fmt: skip
    shooter.ready_camera(DOING)
    calibration = calibrate_rig.load(cfg.library)  # none yet: refused, saying to calibrate
    wanted = Wanted.of(cfg.tiles)
    plan = make_plan(wanted, calibration.scale())
    whole = cfg.tiles.strip if strip is None else strip
    settings = strip_settings(cfg.tiles) if whole else None  # a strip needs the format's width: refused first
    library = shooter.library()
    on_strip = None if whole else on_the_strip(shooter.tiles_resume, library.last_stack())
    resume: Resume | None
    if on_strip is not None:  # the stage is on a strip: one negative along it, never a fresh one at a gap
        settings = strip_settings(cfg.tiles)
        (negative, resume), again = on_strip, True
    elif settings is not None:
        negative, resume = begin_at(library.last_stack(), shooter.tiles_resume,
                                    lambda: library.roll / library.next_negative())  # fmt: skip
        again = negative.is_dir()
    else:
        found = unfinished(library)
        again = found is not None
        negative = found if found is not None else library.roll / library.next_negative()
        resume = shooter.tiles_resume[1] if shooter.tiles_resume and shooter.tiles_resume[0] == negative else None
    log.info("%s%s: %s%s", negative.name, " (carried on)" if again else "", plan.said(),
             ", the whole strip" if whole else "")  # fmt: skip
    state.begin_run(waiting(negative, plan))
    try:  # a stop-tiles or a press from here on stops the run (opening the rig takes a board's boot)
        rig = open_rig(cfg)  # RigError: refused, with the reason
        try:
            if state.run_stop.is_set():
                return Answer(False, "scan-tiles", "tile run: stopped by the operator before the first move",
                              "refused")  # fmt: skip
            run_settings = RunSettings(cfg.rig.settle_seconds, cfg.tiles.wait_without_live_view_seconds)
            stop = _Either(state.run_stop, shooter.stop)
            if settings is not None:
                return _strip(shooter, state, rig, plan=plan, scale=calibration.scale(), first=negative,
                              resume=resume, settings=settings, run_settings=run_settings,
                              most=None if whole else 1)  # fmt: skip
            run = TileRun(rig, TileCamera(shooter), plan, calibration.scale(), negative, stop=stop,
                          progress=keeping(state, plan), settings=run_settings, resume=resume)  # fmt: skip
            summary = run.run()
            left = run.resume()
            shooter.tiles_resume = None if left is None else (negative, left)
        finally:
            rig.close()
    finally:  # over: its tiles stay for status and the console until the next run
        state.end_run()
    head = f"{plan.said()}; " if not again else f"carried on ({counted(len(summary.kept), 'tile')} shot before); "
    text = head + summary.said()
    return Answer(summary.complete, "scan-tiles", text, "done" if summary.complete else "refused",
                  stack=negative.name)  # fmt: skip


def _strip(shooter: TileShooter, state: DaemonState, rig: Rig, *, plan: TilePlan, scale: StageScale, first: Path,
           resume: Resume | None, settings: StripSettings, run_settings: RunSettings,
           most: int | None) -> Answer:  # fmt: skip
    """The whole strip (or `most` negatives of it), each negative named by the library as a press's negative;
    where it stopped kept for the next run (which carries the unfinished negative on, then the next ones)."""
    library = shooter.library()
    run = StripRun(rig, TileCamera(shooter), plan, scale, first=first,
                   name_next=lambda: library.roll / library.next_negative(), strip=settings,
                   stop=_Either(state.run_stop, shooter.stop), progress=keeping(state, plan), settings=run_settings,
                   resume=resume, most=most)  # fmt: skip
    summary = run.run()
    shooter.tiles_resume = run.resume()
    ok = summary.ended if most is None else summary.enough
    return Answer(ok, "scan-tiles", f"{plan.said()}, each negative; {summary.said()}", "done" if ok else "refused",
                  stack=run.negative.name)  # fmt: skip
