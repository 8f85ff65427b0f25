"""A roll's flat fields on disk: `<roll>/flat/flat-NNN/`, one folder per flat burst, the newest the one in use.

A negative is corrected with the roll's newest flat as it was when the negative was shot (its manifest names the
folder), so shooting a new flat never changes a negative already in the queue. A new roll carries the last flat
over (hard links: no copy of the raws) until a new one is shot. A flat burst is shot into a hidden folder and
renamed into place only once whole; a cut-off one is kept under `discarded/`, like a retaken stack.

A flat given to `medianscan blend --flat FOLDER` from outside the roll is imported the same way: its frames
linked into a hidden folder of the roll's flats, blended and checked there, and renamed into place only once it
is a good flat; its own folder is never written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from medianscan.atomic import fsync_dir, is_temp
from medianscan.library import contents
from medianscan.library.manifest import DISCARDED
from medianscan.library.names import fresh_path

log = logging.getLogger(__name__)

FLATS = "flat"
FLAT_STEM = "flat"  # the frames of a flat burst are flat_NN.<ext>
_NAME = re.compile(r"^flat-(\d{3,})$")
SHOOTING = ".flat-shooting"


def _numbered(roll: Path) -> list[tuple[int, Path]]:
    folder = roll / FLATS
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := _NAME.match(p.name))]
    return sorted(found)


def current_flat(roll: Path) -> Path | None:
    """The roll's newest flat folder that holds frames or a blended flat, or None."""
    for _, folder in reversed(_numbered(roll)):
        if any(
            p.is_file() and contents.role(p) in (contents.Role.CANDIDATE, contents.Role.OURS) for p in folder.iterdir()
        ):
            return folder
    return None


def shooting_folder(roll: Path) -> Path:
    """A fresh hidden folder to shoot a flat burst into (a leftover of a crash is set aside first)."""
    folder = roll / SHOOTING
    if folder.exists():
        set_aside(folder, "flat-cut-off")
    folder.mkdir(parents=True)
    return folder


def keep_flat(roll: Path, shot: Path) -> Path:
    """The whole flat burst in `shot` becomes the roll's newest flat, `<roll>/flat/flat-NNN`."""
    container = roll / FLATS
    container.mkdir(exist_ok=True)
    number = max((n for n, _ in _numbered(roll)), default=0) + 1
    target = container / f"flat-{number:03d}"
    shot.rename(target)
    fsync_dir(roll)
    fsync_dir(container)
    return target


def set_aside(folder: Path, name: str) -> Path:
    """Move a cut-off flat burst to `<roll>/discarded/` (its frames are kept, never deleted)."""
    bin_ = folder.parent / DISCARDED
    bin_.mkdir(exist_ok=True)
    target = fresh_path(bin_, name)
    folder.rename(target)
    fsync_dir(folder.parent)
    log.info("flat burst set aside in %s", target)
    return target


def carry_over(previous: Path | None, roll: Path) -> Path | None:
    """Give a new `roll` the flat `previous` was using (hard links, or copies across filesystems)."""
    source = current_flat(previous) if previous is not None else None
    if source is None:
        return None
    target = roll / FLATS / "flat-001"
    target.mkdir(parents=True)
    for path in sorted(source.iterdir()):
        if not path.is_file() or is_temp(path):
            continue
        try:
            os.link(path, target / path.name)
        except OSError:
            shutil.copy2(path, target / path.name)
    fsync_dir(target)
    log.info("%s carries over the flat %s", roll.name, source)
    return target


def is_roll_flat(folder: Path, roll: Path) -> bool:
    """A folder of a roll's own flats (`roll`'s flat folder or one in it, or any roll's `flat/flat-NNN`): a flat
    blended there stays there."""
    here = folder.resolve()
    own = (roll / FLATS).resolve()
    return here.is_relative_to(own) or (here.parent.name == FLATS and _NAME.match(here.name) is not None)


def _signature(frames: Sequence[Path]) -> dict[str, tuple[int, int]]:
    """Name -> (size, modification time) of each frame: a link or a copy (copy2) of a file has the file's."""
    found = {}
    for path in frames:
        stat = path.stat()
        found[path.name] = (stat.st_size, stat.st_mtime_ns)
    return found


def imported(roll: Path, frames: Sequence[Path]) -> Path | None:
    """The roll's flat folder that holds these very frames (an earlier import of them), or None."""
    wanted = _signature(frames)
    for _, folder in reversed(_numbered(roll)):
        if _signature(contents.candidates(folder)) == wanted:
            return folder
    return None


@contextlib.contextmanager
def importing(roll: Path, frames: Sequence[Path]) -> Iterator[tuple[Path, str]]:
    """Import the flat frames `frames` into `roll` as its newest flat: yields a hidden folder holding them (hard
    links, or copies across filesystems) and the name the flat takes. When the caller is done (the flat blended
    and checked there) the folder is renamed into place as `<roll>/flat/<name>`; when it fails, the folder goes
    (links and copies only) and so does the flats folder if this made it: nothing is left of a bad flat.
    OSError when the roll cannot be written (a read-only card)."""
    container = roll / FLATS
    made = not container.exists()
    container.mkdir(exist_ok=True)
    name = f"flat-{max((n for n, _ in _numbered(roll)), default=0) + 1:03d}"
    work = container / f".{name}.importing"
    try:
        if work.exists():  # left by a run that died
            shutil.rmtree(work)
        work.mkdir()
        for path in frames:
            try:
                os.link(path, work / path.name)
            except OSError:
                shutil.copy2(path, work / path.name)
        fsync_dir(work)
        yield work, name
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if made:
            with contextlib.suppress(OSError):
                container.rmdir()
        raise
    work.rename(container / name)
    fsync_dir(container)
    log.info("%s: a flat imported into %s", roll.name, container / name)
