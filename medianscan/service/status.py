"""What the services report about themselves, as typed records: `medianscan status` over the control socket,
systemd's STATUS= line, and the console's service panel all read these, so each figure is worked out once.

The JSON form is what the socket carries; `cli/control.render_status` reads it tolerantly, since the client
may be another version than the daemon.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medianscan.library.manifest import Manifest

if TYPE_CHECKING:
    from medianscan.service.capture import Daemon

RECENT = 5  # the last negatives `status` lists


@dataclass(frozen=True)
class CameraView:
    """A snapshot of the camera link's state (the link itself changes on the camera thread)."""

    model: str | None
    port: str | None
    state: str  # connecting | ready | capturing | not connected | error
    error: str | None
    battery: str | None


@dataclass(frozen=True)
class QueueState:
    waiting: int  # in the pool's queue, plus stacks found at start and not yet handed to it
    blending: int
    capacity: int
    full: bool  # captures wait for the blends


@dataclass(frozen=True)
class RecentNegative:
    stack: str
    state: str
    frames: int
    capture_seconds: float | None
    blend_seconds: float | None
    error: str | None
    note: str | None
    output: str | None
    noise_ratio: float | None

    @classmethod
    def of(cls, stack: Path, m: Manifest) -> RecentNegative:
        blend = m.blend
        return cls(
            str(stack),
            m.state.value,
            m.frames_expected,
            m.capture_seconds,
            m.blend_seconds,
            m.error,
            m.note,
            None if blend is None else str(blend.output),
            None if blend is None else blend.noise_ratio,
        )


@dataclass(frozen=True)
class NeedsAttention:
    stack: str
    state: str
    reason: str  # the error, the note of a cut-off burst, or the state itself


@dataclass(frozen=True)
class CaptureStatus:
    """Everything `medianscan status` shows for the capture daemon."""

    camera: CameraView
    settings: dict[str, str]
    library: str
    roll: str | None
    negative: str | None  # the current roll's last negative
    frames_per_burst: int
    paused: bool
    busy: bool
    bracket_group: tuple[int, int, str] | None  # (group, of groups, shutter) while a bracket runs
    queue: QueueState
    disk_free_bytes: int | None
    console: str | None  # the console's URL when it is served
    message: str | None
    recent: tuple[RecentNegative, ...]
    attention: tuple[NeedsAttention, ...]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # nested records too; tuples become JSON arrays


@dataclass(frozen=True)
class WatchStatus:
    """Everything `medianscan status` shows for the hot folder (`mode: watch`)."""

    folder: str
    group: str  # the grouping, as the config spells it
    queue: QueueState
    blends: int  # stacks blended since the start
    message: str | None
    attention: tuple[NeedsAttention, ...]
    waiting: dict[str, str]  # folder -> why it is not blended yet
    recent: tuple[RecentNegative, ...]
    mode: str = "watch"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def camera_view(d: Daemon) -> CameraView:
    cam = d.camera_status
    return CameraView(cam.model, cam.port, cam.state, cam.error, cam.battery)


def queue_state(d: Daemon) -> QueueState:
    """The blend queue as `status` and the console show it."""
    with d.lock:
        backlog = len(d.backlog)
    return QueueState(
        waiting=len(d.pool.waiting()) + backlog,
        blending=len(d.pool.running()),
        capacity=d.cfg.queue_size,
        full=d.waiting_for_room or d.pool.full,
    )


def bracket_text(group: tuple[int, int, str]) -> str:
    """'group 2 of 2 (1/100)': how the status line and the console name a bracket's group."""
    return "group {} of {} ({})".format(*group)


def capture_status(d: Daemon) -> CaptureStatus:
    roll, negative = d.library.position()
    return CaptureStatus(
        camera=camera_view(d),
        settings=dict(d.camera_status.settings or {}),
        library=str(d.library.root),
        roll=roll,
        negative=negative,
        frames_per_burst=d.cfg.frames,
        paused=d.paused,
        busy=d.bursting,
        bracket_group=d.bracket_group,
        queue=queue_state(d),
        disk_free_bytes=d.library.free_bytes(),
        console=None if d.console is None else d.console.url,
        message=d.message,
        recent=tuple(RecentNegative.of(stack, m) for stack, m in d.library.recent(RECENT)),
        attention=tuple(
            NeedsAttention(str(stack), m.state.value, m.error or m.note or m.state.value)
            for stack, m in d.library.needing_attention()
        ),
    )


def capture_status_line(d: Daemon) -> str:
    """One line for systemd's STATUS= and the log."""
    cam = d.camera_status
    if cam.state in ("ready", "capturing"):
        head = f"{cam.model}: {cam.state}"
        if d.bracket_group is not None:
            head += " " + bracket_text(d.bracket_group)
    else:
        head = f"camera {cam.state}" + (f" ({cam.error})" if cam.error else "")
    roll, negative = d.library.position()
    q = queue_state(d)
    text = f"queue {q.waiting} waiting, {q.blending} blending"
    if d.waiting_for_room:
        text += " (full: captures wait for the blends)"
    parts = [head, f"roll {roll or '-'}, last {negative or '-'}", text]
    if d.paused:
        parts.insert(1, "paused")
    return "; ".join(parts)
