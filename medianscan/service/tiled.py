"""The tiled negatives a service stitches (the parent's side; the worker's is `service.stitch_job`).

A folder with `tiles.json` (`medianscan.library.tile_set`) is one negative; its tile stacks are blended as any
stack, and once every tile it lists is blended a stitch job goes to the same spawned pool (never the camera
thread). The outcome is written into `tiles.json`'s status; a failure is also one sentence in the log and the
service's status. Nothing is lost: a stitch is due whenever every tile is blended and the stitched DNG is not
one made from exactly those blends, so a restart finishes an interrupted stitch (tiles.json's `stitching`, left
by a stop or a kill, is made `pending` again as the service finds it; the dead stitch's temps are removed by the
scan at start and by the next stitch) and a second run that added tiles stitches again. A stitch that failed is
not tried again with the same blends until the service restarts. The stitch's prior is each tile's planned place
in photosites (tiles.json, the rig's) when every tile has one, else the layout's grid when every cell has its
tile, else none (the pictures alone).

Main thread only (the services' loop), like the rest of recording.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medianscan.blend.reading.recorded import recorded_frames
from medianscan.errors import MedianscanError
from medianscan.library import contents
from medianscan.library.manifest import State, read_manifest
from medianscan.library.tile_set import (
    TILES_FILE,
    StitchState,
    StitchStatus,
    TileSet,
    is_tiled,
    read_tile_set,
    record_stitch,
)
from medianscan.service.pool import Outcome, Started
from medianscan.service.progress import StitchDone, StitchFailed
from medianscan.service.stitch_job import StitchTask
from medianscan.stitch.record import StitchRecord
from medianscan.vocabulary import Method
from medianscan.wording import counted

log = logging.getLogger(__name__)

LOOK_SECONDS = 1.0  # how often folders of blended stacks are looked at for a tiles.json that came late
Inputs = tuple[tuple[str, str, int, int], ...]  # (tile folder, its blend's name, size, mtime_ns)


def tile_blend(folder: Path, method: Method) -> Path | None:
    """The tile stack's current blend, or None: what its `stack.json` says once blended (the daemon's stacks),
    else its `<folder>_<method>.dng` whose sidecar covers every frame now in the folder (the hot folder's)."""
    if (folder / contents.MANIFEST).is_file():
        try:
            m = read_manifest(folder)
        except MedianscanError:
            return None
        blend = m.blend.output if m.state == State.BLENDED and m.blend is not None else None
        return blend if blend is not None and blend.is_file() else None
    from medianscan.blend.stack_files import output_paths  # the blend's naming; its modules load with a blend

    blend, sidecar = output_paths(folder, method, "raw", None)
    recorded = recorded_frames(sidecar)
    if not blend.is_file() or recorded is None:
        return None
    return blend if set(recorded) >= {p.name for p in contents.candidates(folder)} else None


def at_work(running: list[Path]) -> tuple[int, int]:
    """The pool's running jobs counted by kind, (blending, stitching): a stitch's key is its tiles.json."""
    stitching = sum(1 for key in running if TiledNegatives.owns(key))
    return len(running) - stitching, stitching


@dataclass(frozen=True)
class Look:
    """A tiled negative as it is now: its plan, each tile's blend, the tiles still to shoot or blend."""

    tile_set: TileSet
    blends: tuple[Path, ...]  # in grid order, for the tiles that have one
    waiting: tuple[str, ...]  # tile folders not shot or not blended yet
    inputs: Inputs

    @property
    def current(self) -> bool:
        """The stitched DNG on disk was made from exactly these blends."""
        s = self.tile_set.status
        return s.state == StitchState.STITCHED and s.inputs == self.inputs and self.tile_set.output.is_file()


def look(negative: Path, method: Method) -> Look:
    tile_set = read_tile_set(negative)
    blends, waiting, inputs = [], [], []
    for entry, folder in zip(tile_set.ordered(), tile_set.folders(), strict=True):
        blend = tile_blend(folder, method) if folder.is_dir() else None
        if blend is None:
            waiting.append(entry.folder)
            continue
        st = blend.stat()
        blends.append(blend)
        inputs.append((entry.folder, blend.name, st.st_size, st.st_mtime_ns))
    return Look(tile_set, tuple(blends), tuple(waiting), tuple(inputs))


def find_tiled(top: Path) -> list[Path]:
    """Every tiled negative at or below `top` (hidden folders and a roll's discarded/ left out)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "discarded")
        if TILES_FILE in filenames:
            found.append(Path(dirpath))
            dirnames[:] = []  # a negative's tiles are stacks, never negatives of their own
    return found


def tile_flat(tile_set: TileSet) -> Path | None:
    """The roll's flat the tiles were shot under (their stack manifests say it), for tiles blended without it."""
    for folder in tile_set.folders():
        try:
            flat = read_manifest(folder).flat
        except MedianscanError:
            continue
        if flat is not None:
            return flat
    return None


@dataclass(frozen=True)
class Stitched:
    """A stitch job's end, for the service to tell: the negative, its tiles, the record or the one sentence."""

    negative: Path
    tiles: int
    record: StitchRecord | None
    error: str | None
    seconds: float

    @property
    def unregistered(self) -> list[str]:
        """The tiles (their folders) that no overlap placed from the pictures (`StitchRecord.placed_alone`)."""
        return [] if self.record is None else [t.source.parent.name for t in self.record.placed_alone]

    def news(self, label: str) -> StitchDone | StitchFailed:
        """The event the service tells its listeners (the stitch-done or stitch-failed hook among them)."""
        if self.record is not None:
            return StitchDone(self.negative, self.record, self.seconds, tuple(self.unregistered))
        return StitchFailed(self.negative, self.said(label))

    def said(self, label: str) -> str:
        """What the log (and, for a failure, the status) says: one sentence naming the negative."""
        if self.record is not None:
            alone = self.unregistered
            warn = f"; placed by the plan alone, no overlap registered: {', '.join(alone)}" if alone else ""
            name = self.record.output.name
            return f"{label}: {counted(self.tiles, 'tile')} stitched in {self.seconds:.1f} s -> {name}{warn}"
        return f"{label}: the stitch of {counted(self.tiles, 'tile')} failed: {self.error}"


class TiledNegatives:
    """Which tiled negatives are due a stitch, the stitch jobs waiting for room in the pool or running, and
    their outcomes recorded. `method` gives the blend method a hot-folder tile's blend is named by."""

    def __init__(self, method: Callable[[], Method], flat: Callable[[TileSet], Path | None] = tile_flat) -> None:
        self.method = method
        self.flat = flat
        self.due: deque[StitchTask] = deque()
        self.running: dict[Path, StitchTask] = {}  # pool key (the negative's tiles.json) -> its task
        self._started: set[Path] = set()  # of those, the keys a worker took
        self.failed: dict[Path, Inputs] = {}  # negative -> the blends a stitch failed with
        self._again: set[Path] = set()  # negatives whose tiles changed while their stitch ran
        self._said: dict[Path, str] = {}  # negative -> what it was last said to wait for
        self._unplanned: set[Path] = set()  # folders of stacks blended with no tiles.json yet (it may come later)
        self._looked = 0.0

    @staticmethod
    def owns(key: Path) -> bool:
        """A pool key that is a stitch job (a negative's tiles.json), never a stack."""
        return key.name == TILES_FILE

    def busy(self) -> bool:
        return bool(self.due or self.running)

    def doing(self) -> dict[str, str]:
        """Each negative queued or under way, as status lists what is not done yet (negative -> what it waits
        for): 'stitching' once a worker took it, else 'queued for a stitch'. Status asks from its own thread while
        the service's loop changes these: each is copied whole first (one C call each, never interleaved)."""
        due, running, started = list(self.due), dict(self.running), set(self._started)
        queued = [*due, *(t for k, t in running.items() if k not in started)]
        said = {str(t.negative): "queued for a stitch" for t in queued}
        return said | {str(running[k].negative): "stitching" for k in started if k in running}

    def is_tile(self, stack: Path) -> bool:
        return is_tiled(stack.parent)

    def after_blend(self, stack: Path) -> bool:
        """A stack was blended: when it is a tile, its negative's stitch is checked; True when it is one. Its
        folder is kept in mind otherwise: a copy may bring the negative's tiles.json after its first tiles."""
        if not self.is_tile(stack):
            self._unplanned.add(stack.parent)
            return False
        self.check(stack.parent)
        return True

    def _plans_arrived(self) -> None:
        """Folders whose stacks were blended before their tiles.json arrived: checked once it is there (a stat a
        second for each such folder)."""
        if not self._unplanned or time.monotonic() - self._looked < LOOK_SECONDS:
            return
        self._looked = time.monotonic()
        for folder in [f for f in self._unplanned if is_tiled(f) or not f.is_dir()]:
            self._unplanned.discard(folder)
            if folder.is_dir():
                self.check(folder)

    def check_all(self, top: Path) -> int:
        """Check every tiled negative below `top` (a start, a catch-up); returns how many stitches are due."""
        for negative in find_tiled(top):
            self.check(negative)
        return len(self.due)

    def check(self, negative: Path) -> None:
        """Queue the negative's stitch if it is due (every tile blended, no stitched DNG of those blends)."""
        negative = negative.resolve()
        try:
            seen = look(negative, self.method())
        except (MedianscanError, OSError) as exc:
            self._say(negative, f"cannot be stitched: {exc}", logging.ERROR)
            return
        key = negative / TILES_FILE
        if seen.tile_set.status.state == StitchState.STITCHING and key not in self.running:
            self._cut_off(negative, seen.tile_set.status)
        if seen.waiting:
            names = ", ".join(seen.waiting)
            self._say(negative, f"waits for {counted(len(seen.waiting), 'tile')} to be blended ({names})")
            return
        self._said.pop(negative, None)
        if seen.current or self.failed.get(negative) == seen.inputs or any(t.key == key for t in self.due):
            return
        if key in self.running:
            if self.running[key].inputs != seen.inputs:
                self._again.add(negative)
            return
        ts = seen.tile_set
        layout = f"{ts.layout.columns}x{ts.layout.rows}" if ts.full_grid else None
        self.due.append(
            StitchTask(negative, seen.blends, ts.output, layout, ts.layout.overlap,
                       self.flat(ts), seen.inputs, ts.positions())
        )  # fmt: skip
        log.info("%s: %s blended; stitch queued", negative.name, counted(len(seen.blends), "tile"))

    @staticmethod
    def _cut_off(negative: Path, was: StitchStatus) -> None:
        """tiles.json says `stitching` but no stitch of ours runs: the service stopped (or was killed) while it
        ran. Pending again, so that status does not show a stitch that is not there; it is stitched anew."""
        try:
            record_stitch(negative, StitchStatus(StitchState.PENDING, inputs=was.inputs))
        except (MedianscanError, OSError) as exc:
            log.error("%s: its stitch was cut off, and tiles.json cannot say so: %s", negative.name, exc)
            return
        log.warning("%s: its stitch was cut off (the service stopped while it ran); pending again", negative.name)

    def _say(self, negative: Path, what: str, level: int = logging.INFO) -> None:
        if self._said.get(negative) != what:
            self._said[negative] = what
            log.log(level, "%s: %s", negative.name, what)

    def feed(self, submit: Callable[[Path, StitchTask], bool], room: Callable[[], bool] = lambda: True) -> None:
        """Hand due stitches to the pool, in order, while it has room and takes them."""
        self._plans_arrived()
        while self.due and room():
            task = self.due[0]
            if not submit(task.key, task):
                return
            self.due.popleft()
            self.running[task.key] = task

    def left_over(self, keys: list[Path]) -> None:
        """The pool stopped with these jobs unfinished: their status says stitching, and a start stitches them."""
        for key in keys:
            self.running.pop(key, None)
            self._started.discard(key)

    def record(self, event: Started | Outcome[Any]) -> Stitched | None:
        """A stitch job's event written into its tiles.json (an OSError leaves nothing changed here, for the
        service to try again); the finished job returned for the service to tell."""
        task = self.running.get(event.stack)
        if task is None:
            return None
        negative = task.negative
        if isinstance(event, Started):
            record_stitch(negative, StitchStatus(StitchState.STITCHING, inputs=task.inputs))
            self._started.add(event.stack)
            return None
        result = event.result if isinstance(event.result, StitchRecord) else None
        if event.ok and result is not None:
            status = StitchStatus(StitchState.STITCHED, output=result.output.name, inputs=task.inputs,
                                  seconds=event.seconds, width=result.width, height=result.height)  # fmt: skip
        else:
            status = StitchStatus(StitchState.FAILED, error=event.error or "the stitch failed", inputs=task.inputs,
                                  seconds=event.seconds)  # fmt: skip
        record_stitch(negative, status)
        del self.running[event.stack]
        self._started.discard(event.stack)
        if status.state == StitchState.FAILED:
            self.failed[negative] = task.inputs
        else:
            self.failed.pop(negative, None)
        if negative in self._again:
            self._again.discard(negative)
            self.check(negative)
        return Stitched(negative, len(task.tiles), result, status.error, event.seconds)
