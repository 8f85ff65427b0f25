"""What the start-up scan finds and does: temps of dead writers (zombies included), bursts cut off, stacks to
blend again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from medianscan.atomic import remove_dead_temps
from medianscan.errors import MedianscanError
from medianscan.library import flats
from medianscan.library.contents import MANIFEST, candidates
from medianscan.library.manifest import DISCARDED, PENDING, State, read_manifest, write_manifest
from medianscan.library.rolls import Library

log = logging.getLogger(__name__)


@dataclass
class Recovery:
    """What the start-up scan found: stacks to blend again, bursts cut off, temps removed."""

    queued: list[Path] = field(default_factory=list)
    incomplete: list[Path] = field(default_factory=list)
    removed_temps: list[Path] = field(default_factory=list)
    retained: list[Path] = field(default_factory=list)  # retention finished after a crash
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    cut_off_flats: list[Path] = field(default_factory=list)  # flat bursts a stop cut short, set aside


MIN_BLEND_FRAMES = 3  # as the blend's checks require (medianscan.blend.measuring.checks.MIN_FRAMES)


def cut_off_note(on_disk: int, expected: int) -> str:
    """Why a stack is incomplete, and what can be done: `--force` only where there is something to blend."""
    note = f"burst cut off: {on_disk} of {expected} frames on disk"
    if on_disk >= MIN_BLEND_FRAMES:
        return note + " (blend it anyway with `medianscan blend --force`)"
    if on_disk == 0:
        return note + " (nothing to blend: retake it)"
    return note + f" (too few to blend, at least {MIN_BLEND_FRAMES} are needed: retake it)"


def remove_temps(folder: Path, rec: Recovery) -> None:
    rec.removed_temps += remove_dead_temps(folder)


def recover(lib: Library) -> Recovery:
    """Scan the whole library after a start: re-queue, mark cut-off bursts, drop stale temps."""
    rec = Recovery()
    if not lib.root.is_dir():
        return rec
    with lib.lock:
        remove_temps(lib.root, rec)
        for roll in lib.roll_folders():
            remove_temps(roll, rec)
            if (roll / flats.SHOOTING).is_dir():  # a flat burst cut short: its frames kept, not used
                rec.cut_off_flats.append(flats.set_aside(roll / flats.SHOOTING, "flat-cut-off"))
            for stack in lib.stacks(roll):
                recover_stack(lib, stack, rec)
            bin_ = roll / DISCARDED
            if bin_.is_dir():
                for stack in bin_.iterdir():
                    if stack.is_dir():
                        remove_temps(stack, rec)
    return rec


def recover_stack(lib: Library, stack: Path, rec: Recovery) -> None:
    remove_temps(stack, rec)
    try:
        m = read_manifest(stack)
    except MedianscanError as exc:
        raws = candidates(stack) if stack.is_dir() else []
        if (stack / MANIFEST).exists() or not raws:
            rec.unreadable.append((stack, str(exc)))
            return
        # Cut off between creating the folder and its manifest: keep the frames, say so.
        m = lib._initial(stack, len(raws))
        write_manifest(stack, m)
    if m.state == State.CAPTURING:
        on_disk = len(candidates(stack))
        lib.mark(stack, State.INCOMPLETE, note=cut_off_note(on_disk, m.frames_expected))
        rec.incomplete.append(stack)
    elif m.state in PENDING:
        rec.queued.append(stack)
    elif m.state == State.BLENDED and m.retention is None and lib.retention != "keep":
        lib.retain(stack, m)
        rec.retained.append(stack)
