"""What the watcher knows of each file and folder (signature, when seen, closed) and what a file holds (kind,
sha256), cached by size, mtime and inode.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from medianscan.blend.reading import frames, sniff
from medianscan.formats import FrameKind, Sniffed

log = logging.getLogger(__name__)


# --- file state -----------------------------------------------------------------------------------------


@dataclass
class SeenFile:
    signature: tuple[int, int, int] | None = None  # size, mtime_ns, inode as last seen
    since: float = 0.0  # monotonic time the signature was first seen
    closed: tuple[int, int] | None = None  # size and inode at the last close-write or rename into place
    live: bool = False  # written while watched by an observer that reports closes: only a close completes it


@dataclass
class SeenFolder:
    activity: float = 0.0  # monotonic time of the last event in it (frames or temps)
    dirty: bool = True


def signature(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ino


class FileFacts:
    """What a file holds (kind, sha256), cached by size, mtime and inode: a folder is re-checked after every
    event in it, and a flat folder of hundreds of raws must not be sniffed and hashed whole each time."""

    def __init__(self) -> None:
        self._kinds: dict[Path, tuple[tuple[int, int, int], Sniffed]] = {}
        self._hashes: dict[Path, tuple[tuple[int, int, int], str]] = {}
        self._lock = threading.Lock()

    def inspect(self, path: Path) -> Sniffed:
        try:
            sig = signature(path.stat())
        except OSError:
            return sniff.inspect(path)  # gone meanwhile: says so
        with self._lock:
            hit = self._kinds.get(path)
        if hit is not None and hit[0] == sig:
            return hit[1]
        value = sniff.inspect(path)
        with self._lock:
            self._kinds[path] = (sig, value)
        return value

    def kind(self, path: Path) -> FrameKind | None:
        return self.inspect(path).kind

    def sha256(self, path: Path) -> str:
        sig = signature(path.stat())
        with self._lock:
            hit = self._hashes.get(path)
        if hit is not None and hit[0] == sig:
            return hit[1]
        value = frames.sha256_file(path)
        with self._lock:
            self._hashes[path] = (sig, value)
        return value

    def forget(self, under: Path) -> None:
        with self._lock:
            for cache in (self._kinds, self._hashes):
                for path in [p for p in cache if p == under or under in p.parents]:
                    del cache[path]
