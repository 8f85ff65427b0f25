"""What the services report about themselves, as typed records: `medianscan status` over the control socket
(their JSON form), systemd's STATUS= line and the console's service panel all read these. Built by
medianscan.service (capture mode's `service.capture.status`, and the watch service); nothing here reads a file.

`cli/control.render_status` reads the JSON tolerantly, since the client may be another version than the daemon.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

RECENT = 5  # how many of the last stacks `status` lists

# The camera link's state. "settings refused": the body is connected (live view works) but refuses a configured
# setting, so captures wait for the fix; the error says which setting.
CameraState = Literal["connecting", "ready", "capturing", "settings refused", "not connected"]


@dataclass(frozen=True)
class CameraView:
    """A snapshot of the camera link's state (the link itself changes on the camera thread)."""

    model: str | None
    port: str | None
    state: CameraState
    error: str | None
    battery: str | None


@dataclass(frozen=True)
class QueueState:
    """The pool's work: what waits (stacks and tiled negatives alike) and what its workers do now, a blend or a
    stitch, each counted as what it is."""

    waiting: int  # in the pool's queue, plus stacks found at start and not yet handed to it
    blending: int  # stacks a worker blends now
    capacity: int
    full: bool  # captures wait for the blends
    stitching: int = 0  # tiled negatives a worker stitches now

    def said(self) -> str:
        """'2 waiting, 1 blending, 1 stitching' (no stitching named while none runs), as every queue line reads."""
        return f"{self.waiting} waiting, {self.blending} blending" + (
            f", {self.stitching} stitching" if self.stitching else ""
        )


@dataclass(frozen=True)
class RecentNegative:
    """One of the last stacks `status` lists: a burst blended (its frames), or a negative shot in tiles (its
    tiles, each a burst of its own, and its stitch's state and seconds in `state` and `blend_seconds`)."""

    stack: str
    state: str
    frames: int | None  # the burst's raws; None for a negative shot in tiles
    capture_seconds: float | None
    blend_seconds: float | None
    error: str | None
    note: str | None
    output: str | None
    noise_ratio: float | None
    snr: float | None = None  # in the densest tenth: the blend's measured (records.SnrFigures)
    snr_target: float | None = None  # `frames: auto`'s target
    snr_short: str | None = None  # why the burst stopped short of it
    tiles: int | None = None  # a negative shot in tiles: how many (each a stack of its own beneath it)


@dataclass(frozen=True)
class NeedsAttention:
    stack: str
    state: str
    reason: str  # the error, the note of a cut-off burst, or the state itself


@dataclass(frozen=True)
class RollFrameReport:
    """One strip frame of a roll run, as `scan-roll`, status and the console say it: 'strip frame 3: found,
    centred, shot as frame-003, blended'."""

    strip_frame: int
    text: str
    settled: bool  # nothing more happens to it (blended, failed, set aside, or a blank skipped)


@dataclass(frozen=True)
class TileReport:
    """One tile of a tile run (scan-tiles), as status and the console's map of the plan show it."""

    name: str  # tile-rRcC
    column: int
    row: int
    state: str  # waiting | moving | settling | shooting | shot | kept | failed
    text: str  # 'tile-r1c2: shot, still after 0.31 s (3 live-view frames)'


@dataclass(frozen=True)
class TileRunReport:
    """A tile run (under way, or the last one): its negative, its plan's grid and each tile's state."""

    negative: str
    columns: int
    rows: int
    doing: str
    said: str  # '4 of 9 tiles shot; settling tile-r2c2'
    under_way: bool
    started: float  # wall clock: which run the tiles are of
    tiles: tuple[TileReport, ...]
    plan: str = ""  # '6x7 (70 x 56 mm and 1 mm margins) in 3x3 tiles covering 87.1 x 58.0 mm, 37% overlap'


@dataclass(frozen=True)
class CaptureStatus:
    """Everything `medianscan status` shows for the capture daemon."""

    camera: CameraView
    settings: dict[str, str]
    library: str
    roll: str | None
    roll_folder: str | None  # where the current roll is on disk
    flat: str | None  # the roll's flat field in use (its folder's name), or None
    negative: str | None  # the current roll's last negative
    next_negative: str | None  # the name the next press's negative gets
    frames_per_burst: str  # "9 raws per burst", or auto's range and target (Config.frames_said)
    paused: bool
    busy: bool
    bracket_group: tuple[int, int, str] | None  # (group, of groups, shutter) while a bracket runs
    roll_run: str | None  # a roll run's progress (scan-roll), while one is under way
    queue: QueueState
    disk_free_bytes: int | None
    console: str | None  # the console's URL when it is served
    message: str | None
    recent: tuple[RecentNegative, ...]
    attention: tuple[NeedsAttention, ...]
    roll_frames: tuple[RollFrameReport, ...] = ()  # the roll run's frames (under way, or the last run's)
    roll_run_started: float | None = None  # when that run started (wall clock): which run the frames are of
    tile_run: TileRunReport | None = None  # the tile run's tiles (scan-tiles: under way, or the last run's)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # nested records too; tuples become JSON arrays


@dataclass(frozen=True)
class WatchStatus:
    """Everything `medianscan status` shows for the hot folder (`mode: watch`)."""

    folder: str
    group: str  # the grouping, as the config spells it
    queue: QueueState
    blends: int  # blends started since the start
    message: str | None
    attention: tuple[NeedsAttention, ...]
    waiting: dict[str, str]  # folder -> why it is not blended yet
    recent: tuple[RecentNegative, ...]
    mode: str = "watch"
    blended: int = 0  # of `blends`, those written (the others failed: see `attention`)
    reblended: int = 0  # of `blended`, stacks blended again because their files changed
    blended_before: int = 0  # stacks found blended as they are (skipped)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def bracket_text(group: tuple[int, int, str]) -> str:
    """'group 2 of 2 (1/100)': how the status line and the console name a bracket's group."""
    return "group {} of {} ({})".format(*group)
