"""Downloaded files to the disk off the camera thread: temp name, fsync, rename, as `atomic.atomic_path` does,
while the camera thread goes on shooting and downloading. The engine deletes a file from the body only once its
write here is done."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from medianscan.atomic import atomic_path
from medianscan.capture.camera.burst.link import Download


def write_download(target: Path, download: Download) -> Path:
    """`download` at `target`, whole and on disk, or not at all."""
    with atomic_path(target) as tmp, tmp.open("wb") as fh:
        fh.write(download.data)
    return target


class FrameWriter:
    """One writer thread: files land in the order they were handed over (a disk does one write best at a time)."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="frame-writer")

    def submit(self, target: Path, download: Download) -> Future[Path]:
        return self._pool.submit(write_download, target, download)

    def close(self) -> None:
        """Wait for every write handed over (a burst's frames are never left half-way)."""
        self._pool.shutdown(wait=True)
