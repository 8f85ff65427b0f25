"""Where each tile goes on the output's mosaic, and how: a tile whose offset is a whole CFA repeat (its pattern
lands on the output's own) and that is not rotated is copied photosite for photosite; any other is resampled
per colour plane (`resample`). The output's CFA is the first tile's, which is always copied.

Positions are rounded to whole photosites only within what registration can tell (a tenth of a photosite), and
a rotation is dropped only where it moves no photosite of the tile by more than that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from medianscan.stitch.solve import Pose, rotate

SNAP = 0.1  # photosites: closer than this to whole, a position or a rotation's drift is taken as exact
COVER_STEP = 16  # photosites: the grid the covered area is found on


@dataclass(frozen=True)
class Placement:
    """A tile on the output's mosaic: its top-left visible photosite at (y, x), turned by `angle` about it."""

    y: float
    x: float
    angle: float  # radians
    copied: bool

    def to_tile(self, points: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Output (y, x) points in the tile's own photosite coordinates."""
        return rotate(points - np.array([self.y, self.x]), -self.angle)


@dataclass(frozen=True)
class Canvas:
    """The output mosaic: its size, CFA pattern (from its top-left photosite) and every tile's placement."""

    height: int
    width: int
    pattern: npt.NDArray[np.uint8]
    placements: tuple[Placement, ...]
    tile_size: tuple[int, int]


def lay_out(poses: Sequence[Pose], tile_size: tuple[int, int], pattern: npt.NDArray[np.uint8]) -> Canvas:
    """The canvas holding every tile, its origin on whole CFA repeats of the first tile (copied as it is)."""
    h, w = tile_size
    ph, pw = pattern.shape
    corners = np.array([[0, 0], [0, w - 1], [h - 1, 0], [h - 1, w - 1]], dtype=np.float64)
    snapped = [_snap(p, tile_size) for p in poses]
    seen = np.concatenate([p.apply(corners) for p in snapped])
    low = np.floor(seen.min(axis=0))
    oy, ox = -int(np.floor(low[0] / ph)) * ph, -int(np.floor(low[1] / pw)) * pw  # the first tile's position
    placements = []
    for pose in snapped:
        y, x = pose.y + oy, pose.x + ox
        whole = pose.angle == 0 and abs(y - round(y)) <= SNAP and abs(x - round(x)) <= SNAP
        same = whole and np.array_equal(np.roll(pattern, (round(y), round(x)), axis=(0, 1)), pattern)
        if same:
            y, x = float(round(y)), float(round(x))
        placements.append(Placement(y, x, pose.angle, same))
    top = np.ceil(seen.max(axis=0) + np.array([oy, ox])).astype(int) + 1
    return Canvas(int(top[0]), int(top[1]), pattern, tuple(placements), tile_size)


def _snap(pose: Pose, size: tuple[int, int]) -> Pose:
    """A rotation that moves no photosite by more than SNAP is dropped, the tile's centre kept where it was."""
    if abs(pose.angle) * np.hypot(*size) / 2 > SNAP:
        return pose
    centre = (np.array(size, dtype=np.float64) - 1) / 2
    moved = pose.apply(centre[None])[0] - centre
    return Pose(float(moved[0]), float(moved[1]), 0.0)


def covered_area(canvas: Canvas) -> tuple[int, int, int, int]:
    """The largest axis-aligned rectangle every photosite of which some tile covers (x, y, width, height):
    the output's DefaultCrop."""
    step = COVER_STEP
    gy, gx = np.mgrid[0 : canvas.height + step : step, 0 : canvas.width + step : step].astype(np.float64)
    gy, gx = np.minimum(gy, canvas.height - 1), np.minimum(gx, canvas.width - 1)
    points = np.stack([gy, gx], axis=-1)
    h, w = canvas.tile_size
    inside = np.zeros(gy.shape, dtype=bool)
    for placement in canvas.placements:
        local = placement.to_tile(points)
        inside |= (local[..., 0] >= 0) & (local[..., 0] <= h - 1) & (local[..., 1] >= 0) & (local[..., 1] <= w - 1)
    # a grid cell is covered when all four of its corners are
    cells = inside[:-1, :-1] & inside[1:, :-1] & inside[:-1, 1:] & inside[1:, 1:]
    top, left, bottom, right = _largest_rectangle(cells)
    y0, x0 = top * step, left * step
    y1, x1 = min(bottom * step, canvas.height - 1), min(right * step, canvas.width - 1)
    return x0, y0, max(1, x1 - x0), max(1, y1 - y0)


def _largest_rectangle(mask: npt.NDArray[np.bool_]) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the largest all-True rectangle of `mask` (the histogram method). Runs of
    equal rows, then of equal columns, are walked as one of their width: a covered area is a few tiles' edges,
    so a 24 MP set's grid of 626 x 939 is a few dozen a side (the walk 0.44 s -> about 1 ms; the same rectangle,
    ties found in the same order)."""
    starts_r = _run_starts(mask)
    rows = mask[starts_r]
    starts_c = _run_starts(rows.T)
    runs = rows[:, starts_c]
    row_end = [*starts_r[1:].tolist(), mask.shape[0]]
    widths = np.diff(np.append(starts_c, mask.shape[1]))
    edges: list[int] = [0, *np.cumsum(widths).tolist()]  # the columns before each run
    tall: list[int] = np.diff(np.append(starts_r, mask.shape[0])).tolist()
    best = (0, 0, 0, 0, 0)
    heights = np.zeros(runs.shape[1] + 1, dtype=int)
    for row in range(runs.shape[0]):
        heights[:-1] = np.where(runs[row], heights[:-1] + tall[row], 0)
        bars: list[int] = heights.tolist()  # the walk reads Python ints: a NumPy scalar a read costs 5-10x
        stack: list[int] = []
        for col in range(len(bars)):
            while stack and bars[stack[-1]] >= bars[col]:
                height = bars[stack.pop()]
                left = stack[-1] + 1 if stack else 0
                area = height * (edges[col] - edges[left])
                if area > best[0]:
                    best = (area, row_end[row] - height, edges[left], row_end[row], edges[col])
            stack.append(col)
    return best[1], best[2], best[3], best[4]


def _run_starts(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.intp]:
    """The rows of `mask` that differ from the row before (the first always)."""
    change = np.ones(mask.shape[0], dtype=bool)
    change[1:] = np.any(mask[1:] != mask[:-1], axis=1)
    return np.flatnonzero(change)
