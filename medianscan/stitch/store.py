"""The tiles' corrected mosaics and cell planes, set aside on disk between the passes of a stitch.

Registration needs two planes at a time and the output's bands a few rows of the tiles under them; keeping every
tile in memory would cost the whole set (nine 24 MP tiles as float32: 860 MB). So each tile's array goes to a
temporary file once, and is read back by rows with plain reads (no mapping, whose pages would count as the
process's memory), into buffers the size of what is asked for.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt

from medianscan.atomic import owner_suffix

TEMP_PREFIX = ".medianscan-stitch-"  # then random letters and the owner's `.<pid>.part` (service.stitch_job sweeps)


class TileStore:
    """Named float32 2-D arrays in a temporary folder beside the output (removed on close)."""

    def __init__(self, near: Path) -> None:
        # `.medianscan-stitch-XXXX.<pid>.part`: a stitch killed mid-way leaves it for the next start to remove
        self._folder = tempfile.TemporaryDirectory(prefix=TEMP_PREFIX, suffix=owner_suffix(), dir=near)
        self._shapes: dict[str, tuple[int, int]] = {}

    def put(self, name: str, array: npt.NDArray[np.float32]) -> None:
        data = np.ascontiguousarray(array, dtype=np.float32)
        with self._path(name).open("wb") as fh:
            fh.write(data.data)
        self._shapes[name] = (int(data.shape[0]), int(data.shape[1]))

    def append(self, name: str, rows: npt.NDArray[np.float32]) -> None:
        """Add `rows` below the array's last (a new name starts an array): a tile goes to the store band by
        band."""
        data = np.ascontiguousarray(rows, dtype=np.float32)
        height, width = self._shapes.get(name, (0, int(data.shape[1])))
        if data.shape[1] != width:
            raise ValueError(f"{name}: rows of {data.shape[1]} values added to an array {width} wide")
        with self._path(name).open("ab") as fh:
            fh.write(data.data)
        self._shapes[name] = (height + int(data.shape[0]), width)

    def shape(self, name: str) -> tuple[int, int]:
        return self._shapes[name]

    def rows(self, name: str, start: int, stop: int) -> npt.NDArray[np.float32]:
        """Rows [start, stop) of the array (clipped to it)."""
        height, width = self._shapes[name]
        start, stop = max(0, start), min(height, stop)
        out = np.empty((max(0, stop - start), width), dtype=np.float32)
        if out.size:
            with self._path(name).open("rb") as fh:
                fh.seek(start * width * 4)
                fh.readinto(out.data.cast("B"))
        return out

    def get(self, name: str) -> npt.NDArray[np.float32]:
        return self.rows(name, 0, self._shapes[name][0])

    def _path(self, name: str) -> Path:
        return Path(self._folder.name) / f"{name}.f32"

    def close(self) -> None:
        self._folder.cleanup()

    def __enter__(self) -> TileStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
