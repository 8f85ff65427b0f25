"""What a stack folder holds: the one rule for which files are frames, which are ours, and which are clutter.

Every caller (`medianscan blend`, the daemon, the hot folder, the library's recovery and retention) sorts a
folder's files with this module, so a file is never a frame to one of them and clutter to another:
- **ours**: what medianscan writes into a stack folder: the `stack.json` manifest, blends and their sidecars
  (`<name>_<method>.<ext>`, `.json`), and the `.<name>.<pid>.part` temps of atomic writes;
- **clutter**: files no camera writes as a frame and editors and desktops leave beside them (`.xmp`, `.pp3`,
  `.txt`, `.json`, `.DS_Store`, `Thumbs.db`, AppleDouble `._*`, ...): left out without a word;
- **temps** of other tools (`.hidden`, `~name`, `*.part`, `*.tmp`, `*.crdownload`, ...): a copy still under
  way; the hot folder waits for them, a blend names them as left out;
- anything else is a **frame candidate**, opened by content. A candidate that cannot be read is an error
  naming it (or, with `drop_bad_frames`, a rejected frame); when raws and JPEGs or TIFFs lie together
  (RAW+JPEG), the raws are the frames and the others are named as left out. Nothing is left out unmentioned.
Sub-folders are not part of a stack; the capture daemon's `spares/` and `set-aside/` beside a stack's frames
(`is_kept_apart`) hold its camera's files kept apart from them, and are not stacks of their own either.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from medianscan.atomic import is_temp
from medianscan.formats import FrameKind, Sniffed, kind_by_name
from medianscan.records import LeftOut
from medianscan.vocabulary import METHODS
from medianscan.wording import counted

MANIFEST = "stack.json"  # the daemon's record of one stack (see medianscan.library.rolls)
BURST_JOURNAL = ".burst-journal"  # what a running burst asked of the body (capture.camera.burst.journal)
SPARES = "spares"  # a stack's sub-folder for a continuous burst's shots past its frames (capture.camera.burst)
SET_ASIDE = "set-aside"  # a stack's sub-folder for camera files that are not its burst's frames (camera.freshness)

CLUTTER_SUFFIXES = frozenset(
    {
        *(".xmp", ".pp3", ".arp", ".dop", ".cos", ".cof", ".on1", ".nksc", ".acr", ".thm", ".lrv"),  # editor sidecars
        *(".txt", ".json", ".md", ".log", ".csv", ".ini", ".md5", ".sha1", ".sha256", ".sfv"),  # notes and sums
    }
)
CLUTTER_NAMES = frozenset({".ds_store", "thumbs.db", "ehthumbs.db", "desktop.ini", ".directory", "icon\r"})
OTHER_TEMP_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload", ".download", ".!sync")
_OUTPUT_NAME = re.compile(r"_(" + "|".join(re.escape(m) for m in METHODS) + r")(\.[A-Za-z0-9]+)+$")
_PREFERENCE: tuple[FrameKind, ...] = ("raw", "tiff", "jpeg")
_PLURAL = {"raw": "raws", "tiff": "TIFFs", "jpeg": "JPEGs"}


class Role(enum.Enum):
    """What a file in a stack folder is, by its name alone."""

    OURS = "ours"
    CLUTTER = "clutter"
    TEMP = "temp"
    CANDIDATE = "candidate"


def is_output_name(name: str) -> bool:
    """A blend medianscan wrote (`<name>_<method>.<ext>`) or its sidecar."""
    return bool(_OUTPUT_NAME.search(name))


def is_other_temp(path: Path) -> bool:
    """A name other tools use while a file is being written (rsync's `.name.XXXX`, `~name`, `*.part`, ...)."""
    name = path.name
    return (name.startswith((".", "~")) and not name.startswith("._")) or name.lower().endswith(OTHER_TEMP_SUFFIXES)


def role(path: Path) -> Role:
    """The role of a file in a stack folder, by name (no file is opened)."""
    name = path.name
    if name in (MANIFEST, BURST_JOURNAL) or is_temp(path) or is_output_name(name):
        return Role.OURS
    lower = name.lower()
    if lower in CLUTTER_NAMES or name.startswith("._") or Path(lower).suffix in CLUTTER_SUFFIXES:
        return Role.CLUTTER
    if is_other_temp(path):
        return Role.TEMP
    return Role.CANDIDATE


def is_kept_apart(folder: Path) -> bool:
    """A stack's sub-folder of camera files kept apart from its frames (SPARES, SET_ASIDE): neither frames of the
    stack nor a stack of their own, wherever a caller looks for stacks."""
    return folder.name in (SPARES, SET_ASIDE)


def candidates(folder: Path) -> list[Path]:
    """The files of a folder that could be frames, sorted by name (nothing is opened: for counts and sizes)."""
    return [p for p in sorted(folder.iterdir()) if p.is_file() and role(p) is Role.CANDIDATE]


@dataclass(frozen=True)
class StackContents:
    """A stack's files sorted out: the frames to blend, those left out, and candidates that cannot be read."""

    frames: tuple[Path, ...]
    kinds: tuple[FrameKind, ...]
    ignored: tuple[LeftOut, ...] = ()  # not frames of this blend (a JPEG beside raws, a temp): named, not errors
    unreadable: tuple[LeftOut, ...] = ()  # could be frames and cannot be read: errors, or rejected when dropping

    @property
    def kind(self) -> FrameKind | None:
        return self.kinds[0] if self.kinds else None


def notice(label: str, ignored: Sequence[LeftOut]) -> str | None:
    """One line naming every file left out of a blend, or None when nothing was."""
    if not ignored:
        return None
    return f"{label}: left out {counted(len(ignored), 'file')}: " + "; ".join(str(i) for i in ignored)


Inspector = Callable[[Path], Sniffed]


def sort_out(paths: Iterable[Path], inspect: Inspector) -> StackContents:
    """Apply the rule to a list of files (a folder's, or those named on the command line). Our own files and
    clutter are not mentioned; every other file is a frame, left out with its reason, or unreadable.

    `inspect` opens a candidate by content; the hot folder passes a cached one.
    """
    found: dict[FrameKind, list[Path]] = {k: [] for k in _PREFERENCE}
    broken: list[tuple[LeftOut, FrameKind | None]] = []
    ignored: list[LeftOut] = []
    for path in sorted(paths):
        what = role(path)
        if what is Role.TEMP:
            ignored.append(LeftOut(path, "a temporary file: a copy or download that has not finished?"))
        elif what is Role.CANDIDATE:
            sniffed = inspect(path)
            if sniffed.kind is None:
                broken.append((LeftOut(path, sniffed.problem or "cannot be read"), kind_by_name(path.name)))
            else:
                found[sniffed.kind].append(path)
    chosen = next((k for k in _PREFERENCE if found[k]), None)
    unreadable: list[LeftOut] = []
    for left, promised in broken:
        if chosen is not None and promised is not None and _PREFERENCE.index(promised) > _PREFERENCE.index(chosen):
            ignored.append(LeftOut(left.path, f"{left.reason}; not a frame of this stack of {_PLURAL[chosen]}"))
        else:
            unreadable.append(left)
    if chosen is None:
        return StackContents((), (), tuple(sorted(ignored, key=_by_name)), tuple(unreadable))
    for kind in _PREFERENCE:
        if kind != chosen:
            beside = f"a {_PLURAL[kind][:-1]} beside the {_PLURAL[chosen]}, which are blended"
            ignored += [LeftOut(p, beside) for p in found[kind]]
    picked = tuple(found[chosen])
    return StackContents(picked, (chosen,) * len(picked), tuple(sorted(ignored, key=_by_name)), tuple(unreadable))


def _by_name(left: LeftOut) -> str:
    return left.path.name


def read_folder(folder: Path, inspect: Inspector) -> StackContents:
    """The rule applied to every file directly in a stack folder (sub-folders are not part of the stack)."""
    return sort_out((p for p in folder.iterdir() if p.is_file()), inspect)
