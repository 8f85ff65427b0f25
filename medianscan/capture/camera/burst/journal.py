"""What a burst has asked of the body, kept in the stack folder while it runs: each file the body named, the frame
it became once fetched, and each one deleted from the body. A `kill -9` mid-burst leaves it behind; the next start
fetches what the body still holds into the stack (or names what is gone), then removes it.

A line is written (not fsynced) as it happens: the kernel keeps it across the death of the process, which is the
crash this is for; a power cut takes the raws' own last writes with it too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from medianscan.capture.camera.burst.link import Announced
from medianscan.library.contents import BURST_JOURNAL as JOURNAL  # ours: no scan takes it for a frame


@dataclass(frozen=True)
class LeftOnBody:
    """A file the body named for a frame, not known to be deleted from it when the burst stopped."""

    file: Announced
    target: str  # its file name in the stack once fetched ("": named, not fetched yet; or fetched and not kept)


class BurstJournal:
    """The open journal of one running burst."""

    def __init__(self, stack: Path) -> None:
        self.path = stack / JOURNAL
        self._fh: IO[str] | None = self.path.open("a", encoding="utf-8")

    def _line(self, **entry: str) -> None:
        if self._fh is not None:
            self._fh.write(json.dumps(entry) + "\n")
            self._fh.flush()

    def named(self, file: Announced) -> None:
        self._line(folder=file.folder, name=file.name)

    def placed(self, file: Announced, target: str) -> None:
        self._line(folder=file.folder, name=file.name, target=target)

    def deleted(self, file: Announced) -> None:
        self._line(folder=file.folder, name=file.name, deleted="yes")

    def close(self, *, finished: bool) -> None:
        """Close it; a finished burst (every file written, and deleted where configured) needs it no more."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if finished:
            self.path.unlink(missing_ok=True)


def _entries(stack: Path) -> list[tuple[Announced, dict[str, str]]]:
    try:
        lines = (stack / JOURNAL).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
            entries.append((Announced(str(entry["folder"]), str(entry["name"])), entry))
        except (ValueError, KeyError, TypeError):
            continue  # the last line, cut off by the crash
    return entries


def all_named(stack: Path) -> list[Announced]:
    """Every file the journal says the body named, deleted or not, in order."""
    return list(dict.fromkeys(file for file, _ in _entries(stack)))


def left_on_body(stack: Path) -> list[LeftOnBody]:
    """The files a burst cut off left on the body, as its journal says (empty: none, or no journal)."""
    named: dict[Announced, str] = {}
    for file, entry in _entries(stack):
        if entry.get("deleted"):
            named.pop(file, None)
        else:
            named[file] = str(entry.get("target", named.get(file, "")))
    return [LeftOnBody(file, target) for file, target in named.items()]


def forget(stack: Path) -> None:
    (stack / JOURNAL).unlink(missing_ok=True)
