"""What the start-up scan finds and does: temps of dead writers (zombies included), bursts cut off, stacks to
blend again.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from medianscan.atomic import is_temp
from medianscan.errors import MedianscanError
from medianscan.library.contents import MANIFEST, candidates
from medianscan.library.manifest import PENDING, State, read_manifest, write_manifest

if TYPE_CHECKING:
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


MIN_BLEND_FRAMES = 3  # as the blend's checks require (medianscan.blend.checks.MIN_FRAMES)


def cut_off_note(on_disk: int, expected: int) -> str:
    """Why a stack is incomplete, and what can be done: `--force` only where there is something to blend."""
    note = f"burst cut off: {on_disk} of {expected} frames on disk"
    if on_disk >= MIN_BLEND_FRAMES:
        return note + " (blend it anyway with `medianscan blend --force`)"
    if on_disk == 0:
        return note + " (nothing to blend: retake it)"
    return note + f" (too few to blend, at least {MIN_BLEND_FRAMES} are needed: retake it)"


def _writer_alive(temp: Path) -> bool:
    """True if the process that owns a `.<name>.<pid>.part` temp still runs (another `medianscan blend`)."""
    try:
        pid = int(temp.name[: -len(".part")].rsplit(".", 1)[1])
    except (IndexError, ValueError):
        return False
    return pid != os.getpid() and process_alive(pid)


def process_alive(pid: int) -> bool:
    """Whether process `pid` runs. A zombie (killed, not reaped yet: its parent died with it) writes nothing,
    though `kill(pid, 0)` still succeeds on it; /proc tells them apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: the kernel's answer, which cannot tell a zombie
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    # "pid (comm) S ...": Z is a zombie, X a dead process
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])


def remove_temps(folder: Path, rec: Recovery) -> None:
    for path in folder.iterdir():
        if is_temp(path) and not _writer_alive(path):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
            rec.removed_temps.append(path)


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
