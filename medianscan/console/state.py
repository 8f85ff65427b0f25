"""What the console shows, as typed records: the service (camera, live view, queue, disk, the last error) and
every negative of the current roll with its state, its blend's figures and a link to its positive. A negative shot
in tiles (`tiles.json`) is one entry: its stitch's state, its tiles, and the positive of the stitched DNG.

Built from the daemon's own records (its status and the stack manifests) at most twice a second, whoever asks.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from medianscan.capture.events import Told
from medianscan.capture.live_view import LiveState
from medianscan.capture.rig.roll_run import RollProgress
from medianscan.capture.rig.tile_run import TileProgress
from medianscan.errors import MedianscanError
from medianscan.library import flats
from medianscan.library.contents import MANIFEST
from medianscan.library.manifest import Manifest, State, read_manifest
from medianscan.library.tile_set import TILES_FILE, TileSet, is_tiled, read_tile_set
from medianscan.records import SnrFigures
from medianscan.reports import CameraView, QueueState, RollFrameReport, bracket_text

if TYPE_CHECKING:
    from medianscan.console.scanner import Scanner

REFRESH_SECONDS = 0.5
SHOWN_FRAMES = 2  # a roll run's last frames under its progress line (the strip shows every negative)


@dataclass(frozen=True)
class NegativeView:
    """One negative of the roll, as its strip entry shows it."""

    name: str
    state: str  # capturing | captured | blending | blended | failed | incomplete
    frames_expected: int
    frames_used: int | None
    rejected: tuple[tuple[str, str], ...]  # (file, why)
    noise_ratio: float | None  # the blend's noise over one frame's
    snr: float | None  # in the densest tenth, with `frames: auto`'s target and why it fell short (SnrFigures)
    snr_target: float | None
    snr_short: str | None
    clipped: dict[str, float]  # colour -> share of photosites at white in the raws
    problem: str | None  # the error, or the note of an incomplete burst
    positive: str | None  # the URL of its positive, once blended (or stitched)
    tiles: int | None = None  # a negative shot in tiles: how many (its state is then its stitch's)


@dataclass(frozen=True)
class ConsoleState:
    camera: CameraView
    live: LiveState
    roll: str | None
    roll_folder: str | None  # where the roll is on disk
    next_negative: str  # the name the next press's negative gets
    flat: str | None  # the roll's flat field in use (its folder's name), or None
    paused: bool
    busy: bool
    group: str | None  # while a bracket runs: "group 2 of 2 (1/100)"
    rig: str | None  # the rig, when one is configured: "grbl on /dev/ttyUSB0" (the Scan roll button shows)
    roll_run: RollProgress | None  # a roll run's progress while under way, with the found frame's outline
    roll_run_said: str | None
    roll_frames: tuple[RollFrameReport, ...]  # the run's last frames, as `scan-roll` prints them
    rig_axes: str | None  # xy: an XY stage (the Scan tiles button shows)
    tile_run: TileProgress | None  # a tile run's progress (under way, or the last run): the map of the plan
    tile_run_said: str | None
    frames_per_burst: str
    queue: QueueState
    disk_free_bytes: int | None
    message: str | None  # the last thing that went wrong, until it is put right
    told: Told | None  # the last answer to an operator's action, whoever asked
    negatives: tuple[NegativeView, ...]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # nested records too; tuples are JSON arrays


def positive_url(roll: str, negative: str) -> str:
    return f"/api/positive/{quote(roll)}/{quote(negative)}.jpg"


def negative_view(stack: Path, m: Manifest) -> NegativeView:
    blend = m.blend if m.state == State.BLENDED else None
    snr = SnrFigures.of(m.burst, blend)
    return NegativeView(
        name=stack.name,
        state=m.state.value,
        frames_expected=m.frames_expected,
        frames_used=None if blend is None else len(blend.frames),
        rejected=() if blend is None else tuple((d.path.name, d.reason) for d in blend.dropped),
        noise_ratio=None if blend is None else blend.noise_ratio,
        snr=snr.snr,
        snr_target=snr.target,
        snr_short=snr.short,
        clipped={} if blend is None else dict(blend.clipped),
        problem=m.error or (m.note if m.state == State.INCOMPLETE else None),
        positive=None if blend is None else positive_url(stack.parent.name, stack.name),
    )


def tiled_view(negative: Path, tile_set: TileSet) -> NegativeView:
    """A tiled negative as one strip entry: pending | stitching | stitched | failed, its tiles, and the positive
    of its stitched DNG (the last one made, while more tiles are on their way)."""
    stitched = tile_set.output.is_file()
    return NegativeView(
        name=negative.name,
        state=tile_set.shown_state.value,
        frames_expected=len(tile_set.tiles),
        frames_used=None,
        rejected=(),
        noise_ratio=None,
        snr=None,
        snr_target=None,
        snr_short=None,
        clipped={},
        problem=tile_set.status.error,
        positive=positive_url(negative.parent.name, negative.name) if stitched else None,
        tiles=len(tile_set.tiles),
    )


def stitched_of(negative: Path) -> Path | None:
    """A tiled negative's stitched DNG, once stitched."""
    tile_set = read_tile_set(negative)
    return tile_set.output if tile_set.output.is_file() else None


class StateBuilder:
    """The console's view of `daemon`, rebuilt at most every REFRESH_SECONDS (manifests are read once per
    change of their file, not once per client)."""

    def __init__(self, daemon: Scanner) -> None:
        self.d = daemon
        self._lock = threading.Lock()
        self._built: tuple[float, ConsoleState] | None = None
        self._views: dict[Path, tuple[int, NegativeView]] = {}

    def state(self) -> ConsoleState:
        with self._lock:
            if self._built is not None and time.monotonic() - self._built[0] < REFRESH_SECONDS:
                return self._built[1]
            built = self._build()
            self._built = (time.monotonic(), built)
            return built

    def _build(self) -> ConsoleState:
        d = self.d
        snap = d.snapshot()
        roll = d.library.current_roll()
        run = snap.run_under_way
        return ConsoleState(
            camera=snap.camera,
            live=d.live.state(),
            roll=None if roll is None else roll.name,
            roll_folder=None if roll is None else str(roll),
            next_negative=d.library.next_negative(),
            flat=None if roll is None or (found := flats.current_flat(roll)) is None else found.name,
            paused=snap.paused,
            busy=snap.bursting,
            group=None if snap.bracket_group is None else bracket_text(snap.bracket_group),
            rig=d.rig,
            roll_run=run,
            roll_run_said=None if run is None else run.said(),
            roll_frames=() if run is None else tuple(line.report() for line in run.frames[-SHOWN_FRAMES:]),
            rig_axes=d.rig_axes,
            tile_run=snap.tile_run,
            tile_run_said=None if snap.tile_run is None else f"{snap.tile_run.negative}: {snap.tile_run.said()}",
            frames_per_burst=d.frames_per_burst,
            queue=snap.queue,
            disk_free_bytes=d.library.free_bytes(),
            message=snap.message,
            told=snap.told,
            negatives=tuple(self._negatives(roll)),
        )

    def _negatives(self, roll: Path | None) -> list[NegativeView]:
        views = []
        for stack in self.d.library.stacks(roll) if roll is not None else []:
            try:
                tiled = is_tiled(stack)
                stamp = (stack / (TILES_FILE if tiled else MANIFEST)).stat().st_mtime_ns
                cached = self._views.get(stack)
                if cached is None or cached[0] != stamp:
                    view = (
                        tiled_view(stack, read_tile_set(stack)) if tiled else negative_view(stack, read_manifest(stack))
                    )
                    cached = (stamp, view)
                    self._views[stack] = cached
                views.append(cached[1])
            except (OSError, MedianscanError):
                continue  # being created, or moved by a retake: the next refresh shows it
        return views

    def blend_of(self, roll: str, negative: str) -> Path | None:
        """The blended DNG of `roll/negative` in the current roll, or None (names are compared with the
        library's own folders, never joined into a path)."""
        current = self.d.library.current_roll()
        if current is None or current.name != roll:
            return None
        for stack in self.d.library.stacks(current):
            if stack.name == negative:
                if is_tiled(stack):
                    return stitched_of(stack)
                m = read_manifest(stack)
                return m.blend.output if m.state == State.BLENDED and m.blend is not None else None
        return None
