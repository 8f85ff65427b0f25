"""One exposure gain per tile, from the overlaps: a light that drifts, a shutter that is not quite repeatable
(0.96-1.04 between tiles is usual), taken out before the blend so that nothing steps at a tile's edge.

Each overlap gives the log ratio of the two tiles' levels (the median over its plane points, so dust and
clipped photosites count for nothing); the gains are the least-squares fit of all ratios, the first tile's 1.
The same samples, after the gains, give each seam's residual: how far the two tiles still differ there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from medianscan.stitch.cells import Plane, reached, to_cells, to_photosites, window_of
from medianscan.stitch.solve import Pose, rotate

FLOOR = 0.01  # of the raw range: darker points carry too much noise for a ratio
CEILING = 0.9  # of the raw range: brighter ones may be clipped in one tile
_MAX_POINTS = 1_000_000
BLOCK = 8  # plane points a side of the blocks the residual is measured on


@dataclass(frozen=True)
class Overlap:
    """The same overlap seen in both tiles: plane values of i and j on j's plane grid."""

    i: int
    j: int
    a: npt.NDArray[np.float32]
    b: npt.NDArray[np.float32]


def sample_overlap(
    i: int,
    j: int,
    plane_i: Plane,
    plane_j: Plane,
    *,
    poses: Sequence[Pose],
    cell: tuple[int, int],
) -> Overlap | None:
    """Tile i's plane resampled onto the points of j's plane that it covers (None if it covers too few). Only
    windows about the overlap are read of either plane."""
    h, w = plane_j.shape
    step = max(1, int(np.sqrt(h * w / _MAX_POINTS)))  # a large plane is sampled at a stride
    qy, qx = np.arange(0, h, step, dtype=np.float64), np.arange(0, w, step, dtype=np.float64)
    # j's plane points in i's plane: an affine map (poses and cells are), so two arrays of one row and one column
    # of it and a sum make the grid, where mapping every point through poses and cells took ten grid-sized passes
    map_y, map_x = _affine(poses[i], poses[j], cell)
    # only the grid's part about where i's plane falls on j's (its corners' box, and two points): the overlap's
    # quarter of j's points, not every one of them in grid-sized arrays (27 MB each at 24 MP, two pairs at once)
    top, bottom, left, right = _grid_box(map_y, map_x, plane_i.shape, step, (len(qy), len(qx)))
    qy, qx = qy[top:bottom], qx[left:right]
    y = (map_y[0] * qy[:, None] + map_y[2]) + map_y[1] * qx[None, :]
    x = (map_x[0] * qy[:, None] + map_x[2]) + map_x[1] * qx[None, :]
    inside = (y >= 1) & (y <= plane_i.shape[0] - 2) & (x >= 1) & (x <= plane_i.shape[1] - 2)
    rows, cols = np.nonzero(inside.any(axis=1))[0], np.nonzero(inside.any(axis=0))[0]
    if len(rows) < 2 * BLOCK or len(cols) < 2 * BLOCK:
        return None
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    inside = inside[box]
    coords = np.stack([y[box].ravel(), x[box].ravel()])
    (r0, r1), (c0, c1) = reached(coords[0], plane_i.shape[0]), reached(coords[1], plane_i.shape[1])
    coords[0] -= r0  # exact (whole numbers off): the same values read from the window as from the plane
    coords[1] -= c0
    a = ndimage.map_coordinates(window_of(plane_i, r0, r1, c0, c1), coords, order=1, mode="nearest")
    a = a.reshape(inside.shape)
    rows, cols = rows + top, cols + left  # on the whole grid
    b = window_of(plane_j, rows[0] * step, rows[-1] * step + 1, cols[0] * step, cols[-1] * step + 1)[::step, ::step]
    b = b.copy()
    a[~inside] = np.nan
    b[~inside] = np.nan
    return Overlap(i, j, a.astype(np.float32), b)


def _grid_box(
    map_y: npt.NDArray[np.float64], map_x: npt.NDArray[np.float64], shape_i: tuple[int, ...], step: int,
    grid: tuple[int, int],
) -> tuple[int, int, int, int]:  # fmt: skip
    """The rows and columns of j's grid (top, bottom, left, right) about the corners of i's inside (the points
    1 to size - 2 of each side), mapped back through the affine map, two grid points beyond: every grid point
    inside i lies within (an affine map keeps a rectangle's points inside its corners' box)."""
    forward = np.array([[map_y[0], map_y[1]], [map_x[0], map_x[1]]])
    corners = np.array([[1.0, 1.0], [1.0, shape_i[1] - 2], [shape_i[0] - 2, 1.0], [shape_i[0] - 2, shape_i[1] - 2]])
    back = np.linalg.solve(forward, (corners - np.array([map_y[2], map_x[2]])).T).T / step
    low, high = np.floor(back.min(axis=0)).astype(int) - 2, np.ceil(back.max(axis=0)).astype(int) + 3
    top, left = (int(np.clip(v, 0, n)) for v, n in zip(low, grid, strict=True))
    bottom, right = (int(np.clip(v, 0, n)) for v, n in zip(high, grid, strict=True))
    return top, bottom, left, right


def _affine(
    pose_i: Pose, pose_j: Pose, cell: tuple[int, int]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The map of j's plane point (qy, qx) to i's plane: (a, b, c) for y and for x, y = a qy + b qx + c, read
    from where the poses and cells put three points."""
    basis = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    world = pose_j.apply(to_photosites(basis, cell))
    q = to_cells(rotate(world - np.array([pose_i.y, pose_i.x]), -pose_i.angle), cell)
    origin = q[0]
    return (
        np.array([q[1, 0] - origin[0], q[2, 0] - origin[0], origin[0]]),
        np.array([q[1, 1] - origin[1], q[2, 1] - origin[1], origin[1]]),
    )


def solve_gains(count: int, overlaps: Sequence[Overlap], raw_range: float) -> list[float]:
    """Each tile's gain (the first's 1) from the overlaps' median log ratios."""
    rows, rhs = [], []
    for o in overlaps:
        ratio = _log_ratio(o, raw_range)
        if ratio is None:
            continue
        row = np.zeros(count)
        row[o.i], row[o.j] = 1.0, -1.0  # log g_i - log g_j = -(log a - log b)
        rows.append(row)
        rhs.append(-ratio)
    anchor = np.zeros(count)
    anchor[0] = 1.0
    rows.append(anchor * 10)
    rhs.append(0.0)
    logs, *_ = np.linalg.lstsq(np.asarray(rows), np.asarray(rhs), rcond=None)
    return [float(np.exp(v)) for v in logs]


def _log_ratio(o: Overlap, raw_range: float) -> float | None:
    """The median log ratio of the two tiles over the overlap's blocks (block means: the interpolation of one
    side and the noise of both average out), blocks with a dark or near-white point left out."""
    a, b = _blocks(o.a), _blocks(o.b)
    good = (a > FLOOR * raw_range) & (b > FLOOR * raw_range) & (a < CEILING * raw_range) & (b < CEILING * raw_range)
    if np.count_nonzero(good) < 16:
        return None
    return float(np.median(np.log(a[good]) - np.log(b[good])))


def _blocks(values: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Means of BLOCK x BLOCK points (NaN where any point lies outside the overlap)."""
    h, w = (n // BLOCK * BLOCK for n in values.shape)
    means: npt.NDArray[np.float64] = (
        values[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).mean(axis=(1, 3), dtype=np.float64)
    )
    return means


def level_residual(o: Overlap, gains: Sequence[float], raw_range: float) -> tuple[float, float] | None:
    """After the gains: the median and the 99th percentile of |relative difference| between the two tiles over
    the overlap's blocks of BLOCK x BLOCK plane points (blocks above the noise floor)."""
    a, b = _blocks(o.a) * gains[o.i], _blocks(o.b) * gains[o.j]
    good = np.isfinite(a) & np.isfinite(b) & (b > FLOOR * raw_range)
    if not good.any():
        return None
    diff = np.abs(a[good] / b[good] - 1)
    return float(np.median(diff)), float(np.percentile(diff, 99))
