"""What a service tells its listeners as work moves (the operator's hooks, the demo's narration, the benchmarks'
clocks, the tests): one typed record per kind of news, the one channel for it, delivered on the thread where it
happened (the camera thread for a burst, the main thread for the rest), so a listener must be quick and
thread-safe."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from medianscan.records import BlendRecord
from medianscan.stitch.record import StitchRecord


@dataclass(frozen=True)
class BurstDone:
    """A burst is on disk and its stack queued (capture mode)."""

    stack: Path
    frames: int
    seconds: float
    last: Path | None = None  # its last frame


@dataclass(frozen=True)
class FlatDone:
    """A flat burst (the bare light, no film) is kept in the roll's flats (capture mode)."""

    folder: Path
    frames: int
    seconds: float
    last: Path | None = None  # its last frame


@dataclass(frozen=True)
class StackQueued:
    """The hot folder found a stack complete and handed it to the blend pool (watch mode)."""

    stack: Path  # the stack's key: its folder, or `<folder>/<group name>`
    frames: tuple[Path, ...]


@dataclass(frozen=True)
class BlendDone:
    stack: Path
    result: BlendRecord
    seconds: float


@dataclass(frozen=True)
class StitchDone:
    """A tiled negative's tiles were stitched into one DNG (`result.output`); `alone` names the tiles no overlap
    placed (where the plan put them), for the operator to look at."""

    negative: Path
    result: StitchRecord
    seconds: float
    alone: tuple[str, ...] = ()


@dataclass(frozen=True)
class StitchFailed:
    """A tiled negative's stitch failed; `message` says why in one sentence, naming the negative."""

    negative: Path
    message: str


@dataclass(frozen=True)
class ServiceError:
    """What the operator was told went wrong: a refused press, a failed burst or blend."""

    stack: Path | None
    message: str


Progress = BurstDone | FlatDone | StackQueued | BlendDone | StitchDone | StitchFailed | ServiceError
Listener = Callable[[Progress], None]
