"""The tiles' corrected mosaics and cell planes, set aside on disk between the passes of a stitch.

Registration needs two planes at a time and the output's bands a few rows of the tiles under them; keeping every
tile in memory would cost the whole set (nine 24 MP tiles as float32: 860 MB). So each tile's array goes to a
temporary file once, and is read back by rows with plain reads (no mapping, whose pages would count as the
process's memory), into buffers the size of what is asked for. A tile's mosaic may be held as 16-bit steps of
its range (`Steps`): half the bytes to write and read back (nine 24 MP tiles: 430 MB where float32 took 860),
each value within half a step (1/131,070 of the range) of its float32, as the flat's gains are held
(`sources.TileFlat`).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt

from medianscan.atomic import owner_suffix

TEMP_PREFIX = ".medianscan-stitch-"  # then random letters and the owner's `.<pid>.part` (service.stitch_job sweeps)
_TOP = 65535


@dataclass(frozen=True)
class Steps:
    """Values from `low` to `low + 65535 * step` held as 16-bit steps (value = low + step * n); a value outside
    the span is held at its nearer end."""

    low: float
    step: float

    @classmethod
    def spanning(cls, low: float, high: float) -> Steps:
        return cls(low, max(high - low, 1e-12) / _TOP)

    def encode(self, values: npt.NDArray[np.float32]) -> npt.NDArray[np.uint16]:
        """The nearest steps, in place over `values` until the last cast (no second float32 array)."""
        values *= np.float32(1 / self.step)
        values += np.float32(0.5 - self.low / self.step)  # +0.5: the cast truncates, so this rounds
        np.clip(values, 0, _TOP, out=values)
        return values.astype(np.uint16)

    def decode(self, steps: npt.NDArray[np.uint16], out: npt.NDArray[np.float32]) -> None:
        np.multiply(steps, np.float32(self.step), out=out, dtype=np.float32)
        out += np.float32(self.low)


class TileStore:
    """Named float32 2-D arrays in a temporary folder beside the output (removed on close)."""

    def __init__(self, near: Path) -> None:
        # `.medianscan-stitch-XXXX.<pid>.part`: a stitch killed mid-way leaves it for the next start to remove
        self._folder = tempfile.TemporaryDirectory(prefix=TEMP_PREFIX, suffix=owner_suffix(), dir=near)
        self._shapes: dict[str, tuple[int, int]] = {}
        self._steps: dict[str, Steps] = {}  # the arrays held as 16-bit steps

    def put(self, name: str, array: npt.NDArray[np.float32]) -> None:
        data = np.ascontiguousarray(array, dtype=np.float32)
        with self._path(name).open("wb") as fh:
            fh.write(data.data)
        self._shapes[name] = (int(data.shape[0]), int(data.shape[1]))

    def append_held(self, name: str, held: npt.NDArray[np.uint16], steps: Steps) -> None:
        """Add rows encoded in `steps` (`Steps.encode`; the same for every band of an array) below the array's
        last (a new name starts an array): a tile goes to the store band by band, the bands encoded on threads
        and added in their order."""
        if self._steps.setdefault(name, steps) != steps:
            raise ValueError(f"{name}: rows added in steps other than the array's")
        data = np.ascontiguousarray(held, dtype=np.uint16)
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
        steps = self._steps.get(name)
        if out.size:
            if steps is None:
                self._read(name, start * width * 4, out)
            else:
                held = np.empty(out.shape, dtype=np.uint16)
                self._read(name, start * width * 2, held)
                steps.decode(held, out)
        return out

    def window(self, name: str, top: int, bottom: int, left: int, right: int) -> npt.NDArray[np.float32]:
        """Rows [top, bottom) and columns [left, right) of the array (clipped to it), each row's part read alone:
        a window's bytes, not its rows'. Safe from several threads (each read names its own place)."""
        height, width = self._shapes[name]
        top, bottom, left, right = max(0, top), min(height, bottom), max(0, left), min(width, right)
        out = np.empty((max(0, bottom - top), max(0, right - left)), dtype=np.float32)
        if not out.size:
            return out
        steps = self._steps.get(name)
        if steps is None:
            self._read_window(name, top, left, out)
        else:
            held = np.empty(out.shape, dtype=np.uint16)
            self._read_window(name, top, left, held)
            steps.decode(held, out)
        return out

    def _read_window(
        self, name: str, top: int, left: int, into: npt.NDArray[np.float32] | npt.NDArray[np.uint16]
    ) -> None:
        width = self._shapes[name][1]
        fd = os.open(self._path(name), os.O_RDONLY)
        try:
            for row in range(into.shape[0]):
                part = into[row]
                got = os.preadv(fd, [part.data.cast("B")], ((top + row) * width + left) * into.itemsize)
                if got != part.nbytes:
                    raise OSError(f"{name}: the store's file ends early")
        finally:
            os.close(fd)

    def _read(self, name: str, at: int, into: npt.NDArray[np.float32] | npt.NDArray[np.uint16]) -> None:
        with self._path(name).open("rb") as fh:
            fh.seek(at)
            fh.readinto(into.data.cast("B"))

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
