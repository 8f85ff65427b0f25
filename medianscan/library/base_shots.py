"""A roll's bursts of clear film shot on purpose (`medianscan base`, the console's Film base button): the leader
or the rebate in the holder, for the roll's film base (medianscan.library.film_base). Each burst is kept in
`<roll>/base/base-NNN/`, shot into a hidden folder and renamed into place only once whole; a cut-off one goes to
`discarded/`, as a cut-off flat does.

The folder is never a negative: `base` has no number, so no negative_template (which must hold `{negative}`)
names it, the roll's stacks and blends skip it, and its frames are measured, never blended.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from medianscan.atomic import fsync_dir
from medianscan.library.manifest import DISCARDED
from medianscan.library.names import fresh_path

log = logging.getLogger(__name__)

BASES = "base"
BASE_STEM = "base"  # the frames of a clear-film burst are base_NN.<ext>; the simulator shows the clear film
_NAME = re.compile(r"^base-(\d{3,})$")
SHOOTING = ".base-shooting"


def _numbers(roll: Path) -> list[int]:
    folder = roll / BASES
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if p.is_dir() and (m := _NAME.match(p.name)))


def shooting_folder(roll: Path) -> Path:
    """A fresh hidden folder to shoot a clear-film burst into (a leftover of a crash is set aside first)."""
    folder = roll / SHOOTING
    if folder.exists():
        set_aside(folder)
    folder.mkdir(parents=True)
    return folder


def keep(roll: Path, shot: Path) -> Path:
    """The whole burst in `shot` becomes the roll's newest clear-film folder, `<roll>/base/base-NNN`."""
    container = roll / BASES
    container.mkdir(exist_ok=True)
    target = container / f"base-{max(_numbers(roll), default=0) + 1:03d}"
    shot.rename(target)
    fsync_dir(roll)
    fsync_dir(container)
    return target


def set_aside(folder: Path) -> Path:
    """Move a cut-off clear-film burst to `<roll>/discarded/` (its frames are kept, never deleted)."""
    bin_ = folder.parent / DISCARDED
    bin_.mkdir(exist_ok=True)
    target = fresh_path(bin_, "base-cut-off")
    folder.rename(target)
    fsync_dir(folder.parent)
    log.info("clear-film burst set aside in %s", target)
    return target
