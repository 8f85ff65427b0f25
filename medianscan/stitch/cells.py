"""Colour-balanced CFA cells: each cell of the mosaic summed to one value, a luminance-like plane with no CFA
pattern left in it, whatever the tile's phase (the shift check's plane, `blend.measuring.checks.colour_balanced_cell`).
Registration and gains work on these planes; a plane point q stands for photosite q * cell + (cell - 1) / 2."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from medianscan.blend.measuring.checks import colour_balanced_cell

THUMB_SIDE = 256  # the coarse search's thumbnails are at most this many plane points a side
FLATTEN_SIGMA = 8.0  # plane points: the scale above which a plane's level is taken out for registration


def cell_size(pattern: npt.NDArray[np.uint8]) -> tuple[int, int]:
    return colour_balanced_cell(pattern)


def cell_plane(values: npt.NDArray[np.float32], cell: tuple[int, int]) -> npt.NDArray[np.float32]:
    """The mean of each whole cell of `values` (a tile's visible mosaic over black)."""
    cy, cx = cell
    h, w = values.shape[0] // cy, values.shape[1] // cx
    plane = np.zeros((h, w), dtype=np.float32)
    for dy in range(cy):  # a sum of strided views: quicker than a mean over reshaped axes
        for dx in range(cx):
            plane += values[dy : h * cy : cy, dx : w * cx : cx]
    plane *= np.float32(1 / (cy * cx))
    return plane


def to_photosites(q: npt.NDArray[np.float64], cell: tuple[int, int]) -> npt.NDArray[np.float64]:
    """Plane points (..., 2) as (y, x) photosite coordinates."""
    c = np.asarray(cell, dtype=np.float64)
    return q * c + (c - 1) / 2


def to_cells(p: npt.NDArray[np.float64], cell: tuple[int, int]) -> npt.NDArray[np.float64]:
    c = np.asarray(cell, dtype=np.float64)
    return (p - (c - 1) / 2) / c


def shrink(plane: npt.NDArray[np.float32], factor: int) -> npt.NDArray[np.float32]:
    """Block means of `factor` x `factor` plane points."""
    if factor <= 1:
        return plane
    h, w = plane.shape[0] // factor, plane.shape[1] // factor
    small: npt.NDArray[np.float32] = (
        plane[: h * factor, : w * factor].reshape(h, factor, w, factor).mean(axis=(1, 3), dtype=np.float32)
    )
    return small


def thumb_factor(shape: tuple[int, ...]) -> int:
    return max(1, -(-max(shape[:2]) // THUMB_SIDE))


def flattened(plane: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The plane over its own smooth level (a Gaussian of FLATTEN_SIGMA): what registration compares. Two tiles
    seen through a lens's falloff (no flat given) or at different exposures differ by a smooth factor, which would
    pull a fit of position and angle; the picture's detail does not. Within 2 sigma of a tile's edge the level
    is less sure: registration keeps away from there."""
    level = ndimage.gaussian_filter(plane, FLATTEN_SIGMA, mode="nearest")
    floor = np.float32(max(1e-3, float(np.percentile(level[::8, ::8], 50)) * 0.02))
    out: npt.NDArray[np.float32] = plane / np.maximum(level, floor)
    return out
