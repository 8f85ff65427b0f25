"""What capture mode reports, worked out once from a snapshot of the daemon's state: `medianscan status`,
systemd's STATUS= line and the console's service panel (the records are medianscan.reports)."""

from __future__ import annotations

import logging
from pathlib import Path

from medianscan.capture.rig.tile_run import TileProgress
from medianscan.config.schema import Config
from medianscan.errors import MedianscanError
from medianscan.library import flats
from medianscan.library.contents import MANIFEST
from medianscan.library.manifest import Manifest, State, read_manifest
from medianscan.library.rolls import Library
from medianscan.library.tile_set import StitchState, TileSet, is_tiled, read_tile_set
from medianscan.records import SnrFigures
from medianscan.reports import (
    RECENT,
    CaptureStatus,
    NeedsAttention,
    QueueState,
    RecentNegative,
    TileReport,
    TileRunReport,
    bracket_text,
)
from medianscan.service.capture.state import DaemonSnapshot
from medianscan.service.loop import ServicePool
from medianscan.service.tiled import at_work
from medianscan.wording import counted

log = logging.getLogger(__name__)


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


def tiled_negative(negative: Path, tile_set: TileSet) -> RecentNegative:
    """A negative shot in tiles, as status lists it: its tiles (not frames: each tile is a burst of its own), its
    stitch's state and seconds, the stitched DNG; while it waits for its stitch, how many tiles are blended and
    which tile's blend failed (the stitch waits for it: the operator is told, not left with 'pending')."""
    s = tile_set.status
    state = tile_set.shown_state
    note, error = _tiles_done(tile_set) if state == StitchState.PENDING else (None, s.error)
    return RecentNegative(
        str(negative), state.value, None, None, s.seconds, error, note,
        str(tile_set.output) if state == StitchState.STITCHED else None, None, tiles=len(tile_set.tiles),
    )  # fmt: skip


def _tiles_done(tile_set: TileSet) -> tuple[str, str | None]:
    """'3 of 4 tiles blended', and the tiles whose blend failed, each with its reason (or None)."""
    blended, failed = 0, []
    for entry, folder in zip(tile_set.ordered(), tile_set.folders(), strict=True):
        if not (folder / MANIFEST).is_file():
            continue  # not shot yet
        try:
            m = read_manifest(folder)
        except MedianscanError as exc:
            failed.append(f"{entry.folder}: {exc}")
            continue
        blended += m.state == State.BLENDED
        if m.state in (State.FAILED, State.INCOMPLETE):
            failed.append(f"{entry.folder}'s blend {m.state.value}: {m.error or m.note or 'no reason recorded'}")
    note = f"{blended} of {counted(len(tile_set.tiles), 'tile')} blended"
    return note, "; ".join(failed) or None


def negatives(library: Library, count: int | None = None) -> list[RecentNegative]:
    """The current roll's negatives (the last `count`), each from its stack.json or, shot in tiles, its
    tiles.json; one that cannot be read is logged and left out."""
    roll = library.current_roll()
    stacks = library.stacks(roll) if roll is not None else []
    found = []
    for stack in stacks[-count:] if count else stacks:
        try:
            tiled = is_tiled(stack)
            found.append(
                tiled_negative(stack, read_tile_set(stack)) if tiled else recent_negative(stack, read_manifest(stack))
            )
        except MedianscanError as exc:
            log.warning("%s", exc)
    return found


def tile_run_report(run: TileProgress) -> TileRunReport:
    """A tile run's progress as status carries it: its plan, each tile's state and line, in the plan's order."""
    tiles = tuple(TileReport(t.name, t.column, t.row, t.state, t.said()) for t in run.tiles)
    return TileRunReport(run.negative, run.columns, run.rows, run.doing, run.said(), run.under_way, run.started, tiles,
                         run.plan)  # fmt: skip


def queue_state(held: int, waiting_for_room: bool, pool: ServicePool, capacity: int) -> QueueState:
    """The pool's queue as `status` and the console show it (`held`: stacks not yet handed to the pool), its
    running stitches counted apart from its blends."""
    blending, stitching = at_work(pool.running())
    return QueueState(
        waiting=len(pool.waiting()) + held,
        blending=blending,
        capacity=capacity,
        full=waiting_for_room or pool.full,
        stitching=stitching,
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
        recent=tuple(negatives(library, RECENT)),
        attention=tuple(
            NeedsAttention(n.stack, n.state, n.error or n.note or n.state)
            for n in negatives(library)
            if n.state in (State.FAILED, State.INCOMPLETE) or (n.tiles is not None and n.error)
        ),
        roll_frames=() if snap.roll_run is None else snap.roll_run.reports(),
        roll_run_started=None if snap.roll_run is None else snap.roll_run.started,
        tile_run=None if snap.tile_run is None else tile_run_report(snap.tile_run),
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
        if (tiles := snap.tiles_under_way) is not None:
            head += f"; tile run {tiles.negative}: {tiles.said()}"
    else:
        head = f"camera {cam.state}"  # why is in its own log line and in status
    roll, negative = library.position()
    q = snap.queue
    text = f"queue {q.said()}"
    if snap.waiting_for_room:
        text += " (full: captures wait for the blends)"
    parts = [head, f"roll {roll}, last {negative or 'none yet'}" if roll else "no roll yet", text]
    if snap.paused:
        parts.insert(1, "paused")
    return "; ".join(parts)
