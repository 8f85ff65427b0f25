"""A negative shot in tiles without hands (`scan-tiles`): for each tile of the plan, move the stage, settle by
live view, shoot a burst into the tile's stack folder beneath the negative's folder, and on; then home.

The negative's folder gets `tiles.json` (library.tile_set) with the whole plan before the first move, each tile's
place from the calibration as the stitch's prior, so the service stitches the negative once every tile is shot
and blended, never a part of it. A stop (the operator's, between tiles) or a fault (a jam, an alarm, a lost port,
a burst that failed, live view that will not stand still) ends the run with one sentence; the tiles shot stay,
and the next run shoots only the tiles missing. After a clean stop it knows where the stage is; after a fault
mid-move it finds it again in live view, by the picture's shift from the last tile's (calibrate_rig's phase
correlation), and approaches the next tile as at a start. The camera thread calls the run; the rig is its alone.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from medianscan.capture.events import Answer
from medianscan.capture.rig.base import Rig
from medianscan.capture.rig.calibrate_rig import phase_shift
from medianscan.capture.rig.port import RigError
from medianscan.capture.rig.roll_run import Flag
from medianscan.capture.rig.settle import View, measure_noise, settle
from medianscan.capture.rig.tile_plan import Move, Slack, StageScale, Tile, TilePlan, route
from medianscan.errors import MedianscanError
from medianscan.library import contents
from medianscan.library.manifest import State, read_manifest
from medianscan.library.tile_set import TileEntry, TileLayout, TilePlace, write_tile_set
from medianscan.wording import counted

log = logging.getLogger(__name__)

SET_ASIDE = "discarded"  # a tile's leftover folder from a burst that failed goes here (the service skips it)

TileState = Literal["waiting", "moving", "settling", "shooting", "shot", "kept", "failed"]


class TileEyes(Protocol):
    """What the run sees and shoots through (the camera thread gives it)."""

    def preview(self) -> bytes | None:
        """The next live-view frame (shown on the console too); None: the body has no live view."""

    def shoot(self, stack: Path) -> Answer:
        """One tile's burst into the stack folder `stack` (its frames as `frames` says: `auto` stops when the
        burst itself has enough); the answer's `stack` names the folder."""


@dataclass(frozen=True)
class RunSettings:
    settle_timeout: float = 10.0  # live view must stand still within this after a move (rig.settle_seconds)
    wait_without_live_view: float = 2.0  # no live view: the fixed wait after each move
    far: float = 0.08  # a tile landing farther than this share of the view from the plan stops the run


@dataclass(frozen=True)
class TileLine:
    """One tile as the run met it (for the terminal, status and the console's map of the plan)."""

    name: str
    column: int
    row: int
    state: TileState = "waiting"
    settled: str = ""  # how its move settled
    stack: str | None = None

    def said(self) -> str:
        """'tile-r1c2: shot, still after 0.31 s (3 live-view frames)'."""
        how = f", {self.settled}" if self.settled else ""
        return f"{self.name}: {self.state}{how}"


@dataclass(frozen=True)
class TileProgress:
    """Where a run is: each tile's state in the plan's order, and what it is doing now."""

    negative: str
    columns: int
    rows: int
    tiles: tuple[TileLine, ...]
    doing: str
    started: float = 0.0
    under_way: bool = True
    strip: str = ""  # a strip run's: 'negative 2 on the strip'
    plan: str = ""  # the plan as the run's first line says it (TilePlan.said), set by whoever runs it

    def said(self) -> str:
        """'4 of 9 tiles shot; settling tile-r2c2' (a strip's: 'negative 2 on the strip: 4 of 9 ...')."""
        shot = sum(1 for t in self.tiles if t.state in ("shot", "kept"))
        head = f"{self.strip}: " if self.strip else ""
        return f"{head}{shot} of {counted(len(self.tiles), 'tile')} shot; {self.doing}"


@dataclass
class TileSummary:
    """What a run did, said in one sentence at its end."""

    negative: str
    planned: int = 0
    shot: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # shot by a run before this one
    settles: list[float] = field(default_factory=list)
    live_view: bool = True
    moves: int = 0
    stopped: str | None = None
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return self.stopped is None and len(self.shot) + len(self.kept) == self.planned

    def said(self) -> str:
        shot = f"{counted(len(self.shot), 'tile')} shot"
        kept = f" ({len(self.kept)} kept from before)" if self.kept else ""
        if self.live_view:
            how = f", settled by live view in {np.mean(self.settles):.2f} s on average" if self.settles else ""
        else:
            how = ", each settled by a fixed wait (no live view on this body)"
        head = f"tile run {self.negative}: {shot}{kept} of {self.planned}{how}, {counted(self.moves, 'move')} in " \
               f"{self.seconds:.0f} s"  # fmt: skip
        if self.complete:
            return f"{head}; every tile shot: the negative is stitched once they are blended"
        missing = self.planned - len(self.shot) - len(self.kept)
        return f"{head}; stopped: {self.stopped}; the tiles shot stay, scan-tiles again shoots the {missing} missing"


@dataclass(frozen=True)
class Resume:
    """Where a run left the stage: at a tile (known, with its slack), or somewhere after a fault mid-move (found
    again in live view from `last_view`, the picture at `last_at`)."""

    at: tuple[float, float]
    slack: tuple[int, int]
    known: bool = True
    last_view: View | None = None
    last_at: tuple[float, float] = (0.0, 0.0)
    on_strip: bool = False  # left by a strip run: the next negative lies along the strip, whichever run comes next


def planned_place(tile: Tile) -> TilePlace:
    """The tile's planned place for tiles.json: the stage's mm (from the negative's centre), and the picture's
    place in photosites the calibration gives that move (the plan's prior: the stitch's, in place of the grid)."""
    return TilePlace(tile.stage_mm[0], tile.stage_mm[1], "mm", photosites=(tile.prior[1], tile.prior[0]))


def shot_already(folder: Path) -> bool:
    """A tile a run before shot: its folder holds raws, and its manifest (the daemon's) does not say it failed;
    or its manifest says it is blended (retention may have taken its raws since)."""
    if not folder.is_dir():
        return False
    if (folder / contents.MANIFEST).is_file():
        try:
            state = read_manifest(folder).state
        except MedianscanError:
            return False
        if state == State.BLENDED:
            return True
        if state in (State.FAILED, State.INCOMPLETE, State.CAPTURING):
            return False
    return bool(contents.candidates(folder))


class TileRun:
    """One run over the tiles of one negative (see the module)."""

    def __init__(self, rig: Rig, eyes: TileEyes, plan: TilePlan, scale: StageScale, negative: Path, *, stop: Flag,
                 progress: Callable[[TileProgress], None] = lambda p: None, settings: RunSettings | None = None,
                 resume: Resume | None = None, home: bool = True) -> None:  # fmt: skip
        """`home`: back to the negative's centre after the last tile (False: stay there, for a strip's advance)."""
        self.home = home
        self.rig, self.eyes, self.plan, self.scale, self.negative = rig, eyes, plan, scale, negative
        self.stop, self.report = stop, progress
        self.settings = settings or RunSettings()
        self.summary = TileSummary(negative.name, len(plan.tiles))
        self.lines = [TileLine(t.name, t.column, t.row) for t in plan.tiles]
        self.started = time.time()
        self.at, self.slack = (0.0, 0.0), Slack()
        self.known = True
        self.last_view: View | None = None
        self.last_at = (0.0, 0.0)
        if resume is not None:
            self.at, self.slack, self.known = resume.at, Slack(*resume.slack), resume.known
            self.last_view, self.last_at = resume.last_view, resume.last_at
        self.noise: float | None = None

    def resume(self) -> Resume | None:
        """Where the next run starts: None once the run went home (the negative's centre, as at a start)."""
        if self.summary.complete:
            return None
        return self.where()

    def where(self) -> Resume:
        """Where the stage is now, from the negative's centre (a strip's advance starts from it)."""
        return Resume(self.at, (self.slack.x, self.slack.y), self.known, self.last_view, self.last_at)

    def run(self) -> TileSummary:
        started = time.monotonic()
        try:
            self._run()
        except MedianscanError as exc:  # the rig's faults, a camera gone, live view that will not settle
            self.summary.stopped = str(exc)
        finally:
            self.summary.seconds = time.monotonic() - started
            self._tell("done")
        log.info("%s", self.summary.said())
        return self.summary

    def _tell(self, doing: str) -> None:
        self.report(TileProgress(self.negative.name, self.plan.columns, self.plan.rows, tuple(self.lines), doing,
                                 self.started, doing != "done"))  # fmt: skip

    def _mark(self, index: int, state: TileState, **changes: str | None) -> None:
        self.lines[index] = replace(self.lines[index], state=state, **changes)  # type: ignore[arg-type]

    def _run(self) -> None:
        self._write_plan()
        todo = []
        for k, tile in enumerate(self.plan.tiles):
            if shot_already(self.negative / tile.name):
                self.summary.kept.append(tile.name)
                self._mark(k, "kept")
            else:
                todo.append(k)
        if not todo:
            return
        self._tell("measuring live view at rest")
        self.noise = measure_noise(self.eyes.preview)
        if self.noise is None:
            self.summary.live_view = False
            log.warning("no live view on this body: each tile settled by waiting %g s",
                        self.settings.wait_without_live_view)  # fmt: skip
        if not self.known:
            self._find_stage()
        ahead = Slack(self.slack.x, self.slack.y)  # the route plans with a copy; each move keeps self.slack
        moves = route([self.plan.tiles[k].stage_mm for k in todo], self.at, self.plan.backlash_mm, ahead,
                      home=(0.0, 0.0) if self.home else None)  # fmt: skip
        between = True  # the stage is at a tile (or where the run began): a stop may come here
        for move in moves:
            if between and self.stop.is_set():
                self.summary.stopped = "by the operator"
                return
            index = None if move.tile is None else todo[move.tile]
            self._move(move, index)
            between = False
            if index is not None:
                self._shoot(index)
                between = True

    def _write_plan(self) -> None:
        """tiles.json with the whole plan: the service waits for every tile before it stitches."""
        plan = self.plan
        overlap = min((o for o in plan.overlap if o > 0), default=0.25)
        entries = [TileEntry(t.name, t.column, t.row, planned_place(t)) for t in plan.tiles]
        write_tile_set(self.negative, TileLayout(plan.columns, plan.rows, overlap), entries)

    def _move(self, move: Move, index: int | None) -> None:
        name = "the negative's centre" if index is None else self.plan.tiles[index].name
        if index is not None:
            self._mark(index, "moving")
        self._tell(f"{'taking up the play' if move.kind == 'take-up' else 'moving'} to {name}")
        before = self.at
        self.known = False  # until the move has ended: a fault leaves the stage somewhere on its way
        self.rig.move_xy(move.dx_mm, move.dy_mm)
        self.summary.moves += 1
        self.at = (before[0] + move.dx_mm, before[1] + move.dy_mm) if move.kind != "take-up" else before
        ways = [0 if abs(d) <= 1e-9 else (1 if d > 0 else -1) for d in (move.dx_mm, move.dy_mm)]
        self.slack = Slack(ways[0] or self.slack.x, ways[1] or self.slack.y)  # the play lies the way it last went
        self.known = True
        if index is None:
            return
        self.at = self.plan.tiles[index].stage_mm
        self._mark(index, "settling")
        self._tell(f"settling {name}")
        wait = self.settings.wait_without_live_view
        done = settle(self.eyes.preview, self.noise, timeout=self.settings.settle_timeout,
                      wait_without_live_view=wait, what=f"the move to {name}")  # fmt: skip
        self.summary.settles.append(done.seconds)
        landed = "" if done.frame is None else self._landed(name, done.frame)
        self._mark(index, "settling", settled=done.said() + landed)
        if done.frame is not None:
            self.last_view, self.last_at = done.frame, self.at

    def _landed(self, name: str, now: View) -> str:
        """Where the tile really landed against the last one seen, by the picture (closed loop): ', landed 0.04 mm
        off'; RigError when farther than `far` of the view from the plan (lost steps, a stage slipping on its
        rails: the overlaps would not hold). Nothing when the two views share too little to tell."""
        if self.last_view is None:
            return ""
        found = phase_shift(self.last_view, now)
        if found is None:
            return ""
        ratio = self.scale.preview_ratio(now.shape)
        seen = np.array([found[0] * ratio[0], found[1] * ratio[1]])
        moved = np.linalg.solve(self.scale.matrix, seen)  # the stage's move since the last view, mm
        planned = np.subtract(self.at, self.last_at)
        off = float(np.hypot(*(moved - planned)))
        far = self.settings.far * min(self.scale.view_mm)
        if off > far:
            raise RigError(f"{name} landed {off:.2f} mm from where the plan put it (more than {far:.2f} mm): is "
                           "the stage losing steps, or slipping? The stage is where it stopped")  # fmt: skip
        return f", landed {off:.2f} mm off"

    def _shoot(self, index: int) -> None:
        tile = self.plan.tiles[index]
        folder = self.negative / tile.name
        if folder.exists():  # a burst that failed in a run before: its leftovers set aside, never mixed in
            self._set_aside(folder)
        self._mark(index, "shooting")
        self._tell(f"shooting {tile.name}")
        try:
            answer = self.eyes.shoot(folder)
        except MedianscanError as exc:
            answer = Answer(False, "capture", str(exc))
        if not answer.ok:  # its frames kept apart, never taken for the tile by the next run
            self._mark(index, "failed")
            self._set_aside(folder)
            raise MedianscanError(f"the burst of {tile.name} failed: {answer.text}")
        self.summary.shot.append(tile.name)
        self._mark(index, "shot", stack=answer.stack or str(folder))

    def _set_aside(self, folder: Path) -> None:
        if not folder.exists():
            return
        aside = self.negative / SET_ASIDE / f"{folder.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        aside.parent.mkdir(exist_ok=True)
        shutil.move(folder, aside)
        log.warning("%s: the frames of a failed burst set aside in %s", folder.name, aside)

    def _find_stage(self) -> None:
        """After a fault mid-move: where the stage is, from the picture's shift against the last tile's view (once
        the picture stands still: a jammed move may still be running out)."""
        self._tell("finding the stage in live view after the fault")
        found = now = None
        if self.noise is not None and self.last_view is not None:
            now = settle(self.eyes.preview, self.noise, timeout=self.settings.settle_timeout,
                         wait_without_live_view=0.0, what="the stage after the fault").frame  # fmt: skip
            found = None if now is None else phase_shift(self.last_view, now)
        if found is None or now is None:
            raise RigError("the stage's place is not known after the fault, and live view cannot find it from the "
                           "last tile's picture: move it back to the negative's centre and run scan-tiles again "
                           "from the start")  # fmt: skip
        ratio = self.scale.preview_ratio(now.shape)
        shift = np.array([found[0] * ratio[0], found[1] * ratio[1]])
        moved = np.linalg.solve(self.scale.matrix, shift)  # the stage's move since the last tile, mm
        self.at = (self.last_at[0] + float(moved[0]), self.last_at[1] + float(moved[1]))
        self.slack, self.known = Slack(), True  # where the slack lies is not known: the next tile is approached
        log.info("the stage found %+.2f, %+.2f mm from the last tile", moved[0], moved[1])
