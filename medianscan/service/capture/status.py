"""What capture mode reports, worked out once from a snapshot of the daemon's state: `medianscan status`,
systemd's STATUS= line and the console's service panel (the records are medianscan.reports)."""

from __future__ import annotations

from pathlib import Path

from medianscan.config.schema import Config
from medianscan.library import flats
from medianscan.library.manifest import Manifest
from medianscan.library.rolls import Library
from medianscan.records import SnrFigures
from medianscan.reports import (
    RECENT,
    CaptureStatus,
    NeedsAttention,
    QueueState,
    RecentNegative,
    bracket_text,
)
from medianscan.service.capture.state import DaemonSnapshot
from medianscan.service.loop import ServicePool


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


def queue_state(held: int, waiting_for_room: bool, pool: ServicePool, capacity: int) -> QueueState:
    """The blend queue as `status` and the console show it (`held`: stacks not yet handed to the pool)."""
    return QueueState(
        waiting=len(pool.waiting()) + held,
        blending=len(pool.running()),
        capacity=capacity,
        full=waiting_for_room or pool.full,
    )


def capture_status(snap: DaemonSnapshot, library: Library, cfg: Config, console: str | None) -> CaptureStatus:
    """Everything `medianscan status` shows: the daemon's state at one instant, and the library's records."""
    roll, negative = library.position()
    folder = library.current_roll()
    flat = None if folder is None else flats.current_flat(folder)
    run = snap.run_under_way
    return CaptureStatus(
        camera=snap.camera,
        settings=snap.settings,
        library=str(library.root),
        roll=roll,
        roll_folder=None if folder is None else str(folder),
        flat=None if flat is None else flat.name,
        negative=negative,
        next_negative=library.next_negative(),
        frames_per_burst=cfg.frames_said(),
        paused=snap.paused,
        busy=snap.bursting,
        bracket_group=snap.bracket_group,
        roll_run=None if run is None else run.said(),
        queue=snap.queue,
        disk_free_bytes=library.free_bytes(),
        console=console,
        message=snap.message,
        recent=tuple(recent_negative(stack, m) for stack, m in library.recent(RECENT)),
        attention=tuple(
            NeedsAttention(str(stack), m.state.value, m.error or m.note or m.state.value)
            for stack, m in library.needing_attention()
        ),
        roll_frames=() if snap.roll_run is None else snap.roll_run.reports(),
        roll_run_started=None if snap.roll_run is None else snap.roll_run.started,
    )


def capture_status_line(snap: DaemonSnapshot, library: Library) -> str:
    """One line for systemd's STATUS= and the log."""
    cam = snap.camera
    if cam.state in ("ready", "capturing"):
        head = f"{cam.model}: {cam.state}"
        if snap.bracket_group is not None:
            head += " " + bracket_text(snap.bracket_group)
        if (run := snap.run_under_way) is not None:
            head += "; " + run.said()
    else:
        head = f"camera {cam.state}"  # why is in its own log line and in status
    roll, negative = library.position()
    q = snap.queue
    text = f"queue {q.waiting} waiting, {q.blending} blending"
    if snap.waiting_for_room:
        text += " (full: captures wait for the blends)"
    parts = [head, f"roll {roll}, last {negative or 'none yet'}" if roll else "no roll yet", text]
    if snap.paused:
        parts.insert(1, "paused")
    return "; ".join(parts)
