"""Colour-balanced CFA cells: each cell of the mosaic summed to one value, a luminance-like plane with no CFA
pattern left in it, whatever the tile's phase (the shift check's plane, `blend.measuring.checks.colour_balanced_cell`).
Registration and gains work on these planes; a plane point q stands for photosite q * cell + (cell - 1) / 2."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from medianscan.blend.measuring.checks import colour_balanced_cell

THUMB_SIDE = 256  # the coarse search's thumbnails are at most this many plane points a side
FLATTEN_SIGMA = 8.0  # plane points: the scale above which a plane's level is taken out for registration
LEVEL_BIN = 4  # the level is smoothed on block means of this many plane points a side
_READ_BACK_ROWS = 64  # plane rows of the level read back at a time (a 24 MP tile's: 770 kB, in the cache)


@dataclass(frozen=True)
class StoredPlane:
    """A plane held elsewhere (the stitch's store), read a window at a time: a pair reads only the windows about
    its overlap, where whole planes took 48 MB a pair of 24 MP tiles."""

    shape: tuple[int, int]
    window: Callable[[int, int, int, int], npt.NDArray[np.float32]]  # (top, bottom, left, right), clipped to it


Plane = npt.NDArray[np.float32] | StoredPlane


def window_of(plane: Plane, top: int, bottom: int, left: int, right: int) -> npt.NDArray[np.float32]:
    """Rows [top, bottom) and columns [left, right) of the plane (top and left at least 0; clipped to it)."""
    if isinstance(plane, StoredPlane):
        return plane.window(top, bottom, left, right)
    return plane[top:bottom, left:right]


def reached(at: npt.NDArray[np.float64], n: int) -> tuple[int, int]:
    """The rows (or columns) of a side of `n` that linear interpolation at `at` reads, 'nearest' beyond its ends:
    a window of them, clamped at the plane's own ends only where the plane's are reached, reads the same values."""
    low, high = int(np.floor(at.min())), int(np.floor(at.max())) + 1
    return min(max(low, 0), n - 1), min(max(high, 0), n - 1) + 1


def cell_size(pattern: npt.NDArray[np.uint8]) -> tuple[int, int]:
    return colour_balanced_cell(pattern)


def plane_shape(shape: tuple[int, int], cell: tuple[int, int]) -> tuple[int, int]:
    """The cell plane's shape for a visible mosaic of `shape`: whole cells only."""
    return shape[0] // cell[0], shape[1] // cell[1]


def add_cells(
    plane: npt.NDArray[np.float32], values: npt.NDArray[np.float32], start: int, cell: tuple[int, int]
) -> None:
    """Add the mean of each whole cell of `values` (rows of a tile's visible mosaic over black, from row `start`,
    a multiple of the cell's height) into its row of `plane`."""
    cy, cx = cell
    first = start // cy
    h = min(values.shape[0] // cy, plane.shape[0] - first)
    w = plane.shape[1]
    if h <= 0:
        return
    part = plane[first : first + h]  # rows of this band's alone
    for dy in range(cy):  # a sum of strided views: quicker than a mean over reshaped axes
        for dx in range(cx):
            part += values[dy : h * cy : cy, dx : w * cx : cx]
    part *= np.float32(1 / (cy * cx))


def to_photosites(q: npt.NDArray[np.float64], cell: tuple[int, int]) -> npt.NDArray[np.float64]:
    """Plane points (..., 2) as (y, x) photosite coordinates."""
    c = np.asarray(cell, dtype=np.float64)
    return q * c + (c - 1) / 2


def to_cells(p: npt.NDArray[np.float64], cell: tuple[int, int]) -> npt.NDArray[np.float64]:
    c = np.asarray(cell, dtype=np.float64)
    return (p - (c - 1) / 2) / c


def shrink(plane: npt.NDArray[np.float32], factor: int) -> npt.NDArray[np.float32]:
    """Block means of `factor` x `factor` plane points, summed as strided views (the rows of each block, then its
    columns): 10-20x quicker than a mean over reshaped axes, which NumPy walks a point at a time."""
    if factor <= 1:
        return plane
    h, w = plane.shape[0] // factor, plane.shape[1] // factor
    rows = plane[0 : h * factor : factor, : w * factor].astype(np.float32)
    for dy in range(1, factor):
        rows += plane[dy : h * factor : factor, : w * factor]
    small = rows[:, 0::factor].copy()
    for dx in range(1, factor):
        small += rows[:, dx::factor]
    small *= np.float32(1 / (factor * factor))
    return small


def thumb_factor(shape: tuple[int, ...]) -> int:
    return max(1, -(-max(shape[:2]) // THUMB_SIDE))


def flattened(plane: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The plane over its own smooth level (a Gaussian of FLATTEN_SIGMA): what registration compares. Two tiles
    seen through a lens's falloff (no flat given) or at different exposures differ by a smooth factor, which would
    pull a fit of position and angle; the picture's detail does not. Within 2 sigma of a tile's edge the level
    is less sure: registration keeps away from there."""
    level = smooth_level(plane)
    floor = np.float32(max(1e-3, float(np.percentile(level[::8, ::8], 50)) * 0.02))
    np.maximum(level, floor, out=level)
    np.divide(plane, level, out=level)
    return level


def smooth_level(plane: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The plane's Gaussian of FLATTEN_SIGMA, taken on its LEVEL_BIN x LEVEL_BIN block means and read back
    bilinearly: a level that smooth loses nothing to the blocks, and the filter has 1/16 of the points and a
    quarter of the taps. The blocks (a box) and the reading back (a tent) smooth a little themselves; the
    Gaussian on the blocks is narrowed by as much, so the whole is FLATTEN_SIGMA wide."""
    b = LEVEL_BIN
    if min(plane.shape) < 4 * b:  # too small to bin
        smooth: npt.NDArray[np.float32] = ndimage.gaussian_filter(plane, FLATTEN_SIGMA, mode="nearest")
        return smooth
    own = (b * b - 1) / 12 + b * b / 6  # the variances of the box and the tent, in plane points squared
    level = ndimage.gaussian_filter(shrink(plane, b), np.sqrt(FLATTEN_SIGMA**2 - own) / b, mode="nearest")
    return _read_back(level, plane.shape, b)


def _read_back(small: npt.NDArray[np.float32], shape: tuple[int, ...], b: int) -> npt.NDArray[np.float32]:
    """Block means of `b` x `b` points read bilinearly at every point of a plane of `shape` (edges held). Across
    the columns first, on the blocks' rows alone, then down: the full-size pass gathers whole rows (2.5x quicker
    than gathering columns of the full size, 80 ms where it took 196 on a 24 MP tile's plane), _READ_BACK_ROWS
    output rows at a time, so that its gathered rows stay in the cache rather than making plane-sized temporaries
    (the same values; 20-40 ms where it took 30-130 on a 24 MP tile's plane)."""
    out = np.empty(shape[:2], dtype=np.float32)
    ys = _weights(shape[0], small.shape[0], b)
    xs = _weights(shape[1], small.shape[1], b)
    across = small[:, xs[0]] * xs[2][None, :] + small[:, xs[1]] * (1 - xs[2])[None, :]
    for r0 in range(0, shape[0], _READ_BACK_ROWS):
        r1 = min(shape[0], r0 + _READ_BACK_ROWS)
        part = out[r0:r1]
        np.multiply(across[ys[0][r0:r1]], ys[2][r0:r1, None], out=part)
        part += across[ys[1][r0:r1]] * (1 - ys[2][r0:r1])[:, None]
    return out


def _weights(n: int, blocks: int, b: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.float32]]:
    """For each of `n` points: the two blocks about it and the first's weight (block k's centre is point
    k * b + (b - 1) / 2)."""
    at = np.clip((np.arange(n, dtype=np.float64) - (b - 1) / 2) / b, 0, blocks - 1)
    low = np.minimum(np.floor(at).astype(np.intp), blocks - 1)
    high = np.minimum(low + 1, blocks - 1)
    return low, high, (1 - (at - low)).astype(np.float32)
