"""What capture mode reports, worked out once from the daemon's state: `medianscan status`, systemd's STATUS=
line and the console's service panel (the records are medianscan.reports)."""

from __future__ import annotations

from pathlib import Path

from medianscan.library import flats
from medianscan.library.manifest import Manifest
from medianscan.records import SnrFigures
from medianscan.reports import (
    RECENT,
    CameraView,
    CaptureStatus,
    NeedsAttention,
    QueueState,
    RecentNegative,
    bracket_text,
)
from medianscan.service.capture.parts import CaptureDaemon
from medianscan.service.capture.roll_turn import under_way


def recent_negative(stack: Path, m: Manifest) -> RecentNegative:
    blend = m.blend
    snr = SnrFigures.of(m.burst, blend)
    return RecentNegative(
        str(stack),
        m.state.value,
        m.frames_expected,
        m.capture_seconds,
        m.blend_seconds,
        m.error,
        m.note,
        None if blend is None else str(blend.output),
        None if blend is None else blend.noise_ratio,
        snr.snr,
        snr.target,
        snr.short,
    )


def camera_view(d: CaptureDaemon) -> CameraView:
    cam = d.camera_status
    return CameraView(cam.model, cam.port, cam.state, cam.error, cam.battery)


def queue_state(d: CaptureDaemon) -> QueueState:
    """The blend queue as `status` and the console show it."""
    with d.lock:
        backlog = len(d.backlog)
    return QueueState(
        waiting=len(d.pool.waiting()) + backlog,
        blending=len(d.pool.running()),
        capacity=d.cfg.queue_size,
        full=d.waiting_for_room or d.pool.full,
    )


def capture_status(d: CaptureDaemon) -> CaptureStatus:
    roll, negative = d.library.position()
    folder = d.library.current_roll()
    flat = None if folder is None else flats.current_flat(folder)
    return CaptureStatus(
        camera=camera_view(d),
        settings=dict(d.camera_status.settings or {}),
        library=str(d.library.root),
        roll=roll,
        roll_folder=None if folder is None else str(folder),
        flat=None if flat is None else flat.name,
        negative=negative,
        next_negative=d.library.next_negative(),
        frames_per_burst=d.cfg.frames_said(),
        paused=d.paused,
        busy=d.bursting,
        bracket_group=d.bracket_group,
        roll_run=None if (run := under_way(d)) is None else run.said(),
        queue=queue_state(d),
        disk_free_bytes=d.library.free_bytes(),
        console=None if d.console is None else d.console.url,
        message=d.message,
        recent=tuple(recent_negative(stack, m) for stack, m in d.library.recent(RECENT)),
        attention=tuple(
            NeedsAttention(str(stack), m.state.value, m.error or m.note or m.state.value)
            for stack, m in d.library.needing_attention()
        ),
        roll_frames=() if d.roll_run is None else d.roll_run.reports(),
        roll_run_started=None if d.roll_run is None else d.roll_run.started,
    )


def capture_status_line(d: CaptureDaemon) -> str:
    """One line for systemd's STATUS= and the log."""
    cam = d.camera_status
    if cam.state in ("ready", "capturing"):
        head = f"{cam.model}: {cam.state}"
        if d.bracket_group is not None:
            head += " " + bracket_text(d.bracket_group)
        if (run := under_way(d)) is not None:
            head += "; " + run.said()
    else:
        head = f"camera {cam.state}"  # why is in its own log line and in status
    roll, negative = d.library.position()
    q = queue_state(d)
    text = f"queue {q.waiting} waiting, {q.blending} blending"
    if d.waiting_for_room:
        text += " (full: captures wait for the blends)"
    parts = [head, f"roll {roll}, last {negative or 'none yet'}" if roll else "no roll yet", text]
    if d.paused:
        parts.insert(1, "paused")
    return "; ".join(parts)
