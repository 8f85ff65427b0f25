"""Every tile's place from all overlaps at once: least squares over the measured pairs (and the prior's offsets,
weakly, where one is known: the `--layout` grid's, or each tile's planned place, the rig's), so that no error
accumulates along a chain of tiles and a pair that could not be measured is held by its neighbours and the prior.

A tile's photosite p = (y, x) lands at R(angle) p + (ty, tx) in the output's frame, the first tile's: it stays
at (0, 0) unrotated. Each measured pair gives point correspondences across its overlap; the solve is
Gauss-Newton on (ty, tx, angle) per tile. The angle is each tile's turn against the first tile, not the stage's
against the sensor: on an XY stage every tile sees the film as the sensor does, so it stays near 0 (ANGLE_PRIOR),
and the stage's angle shows only in where the tiles land, which the rig's planned places already carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

PRIOR_SHARE = 0.03  # the prior is trusted to this share of a tile's side (a stage's slip, a hand's nudge)
ANGLE_PRIOR = np.radians(1.0)  # every tile is held near the first's angle this loosely


@dataclass(frozen=True)
class Link:
    """Photosite correspondences between tiles i and j (points_i[k] in i is points_j[k] in j), from a measured
    overlap, with the measurement's standard error in photosites."""

    i: int
    j: int
    points_i: npt.NDArray[np.float64]  # (k, 2) as (y, x)
    points_j: npt.NDArray[np.float64]
    sigma: float


@dataclass(frozen=True)
class Pose:
    y: float
    x: float
    angle: float  # radians

    def apply(self, points: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        moved: npt.NDArray[np.float64] = rotate(points, self.angle) + np.array([self.y, self.x])
        return moved


def rotate(points: npt.NDArray[np.float64], angle: float) -> npt.NDArray[np.float64]:
    """(y, x) points rotated by `angle` (x' = c x - s y, y' = s x + c y)."""
    c, s = np.cos(angle), np.sin(angle)
    y, x = points[..., 0], points[..., 1]
    return np.stack([s * x + c * y, c * x - s * y], axis=-1)


def solve(
    count: int,
    links: Sequence[Link],
    prior: Sequence[tuple[float, float]] | None,
    side: float,
    prior_pairs: Sequence[tuple[int, int]] = (),
) -> list[Pose]:
    """The poses of `count` tiles (the first fixed at the origin) that best fit the links, with the prior's
    offsets between `prior_pairs` (and each tile's prior position, weakly) where a prior is given."""
    poses = np.zeros((count, 3))
    if prior is not None:
        poses[:, :2] = np.asarray(prior, dtype=np.float64)
    else:
        poses[1:, :2] = _chained(count, links)[1:]
    rows: list[npt.NDArray[np.float64]] = []
    rhs: list[float] = []

    def equation(coefs: dict[int, float], value: float, sigma: float) -> None:
        row = np.zeros(3 * (count - 1))
        for k, v in coefs.items():
            if k >= 3:  # the first tile's three unknowns are fixed
                row[k - 3] = v
        rows.append(row / sigma)
        rhs.append(value / sigma)

    for _ in range(4):
        rows.clear()
        rhs.clear()
        for link in links:
            a, b = poses[link.i], poses[link.j]
            pa = Pose(*a).apply(link.points_i)
            pb = Pose(*b).apply(link.points_j)
            ra, rb = pa - a[:2], pb - b[:2]  # rotated, unshifted
            for k in range(len(pa)):
                miss = pa[k] - pb[k]
                # d(pa)/d(angle_i) = (x', -y'); the same for pb with the opposite sign
                equation({3 * link.i: 1, 3 * link.i + 2: ra[k, 1], 3 * link.j: -1, 3 * link.j + 2: -rb[k, 1]},
                         -miss[0], link.sigma)  # fmt: skip
                equation({3 * link.i + 1: 1, 3 * link.i + 2: -ra[k, 0], 3 * link.j + 1: -1, 3 * link.j + 2: rb[k, 0]},
                         -miss[1], link.sigma)  # fmt: skip
        if prior is not None:
            sigma = PRIOR_SHARE * side
            for i, j in prior_pairs:
                for axis in (0, 1):
                    want = prior[j][axis] - prior[i][axis]
                    have = poses[j, axis] - poses[i, axis]
                    equation({3 * j + axis: 1, 3 * i + axis: -1}, want - have, sigma)
        for t in range(1, count):
            equation({3 * t + 2: 1}, -poses[t, 2], float(ANGLE_PRIOR))
        a_matrix, b_vector = np.asarray(rows), np.asarray(rhs)
        step, *_ = np.linalg.lstsq(a_matrix, b_vector, rcond=None)
        poses[1:] += step.reshape(count - 1, 3)
        if np.abs(step).max() < 1e-4:
            break
    return [Pose(float(p[0]), float(p[1]), float(p[2])) for p in poses]


def residual(link: Link, poses: Sequence[Pose]) -> float:
    """RMS distance, in photosites, between where the two tiles put the link's points."""
    miss = poses[link.i].apply(link.points_i) - poses[link.j].apply(link.points_j)
    return float(np.sqrt(np.mean(np.sum(miss**2, axis=1))))


def _chained(count: int, links: Sequence[Link]) -> npt.NDArray[np.float64]:
    """A start for the solve without a prior: positions walked out from the first tile along the links."""
    at: dict[int, npt.NDArray[np.float64]] = {0: np.zeros(2)}
    grown = True
    while grown:
        grown = False
        for link in links:
            offset = np.mean(link.points_i - link.points_j, axis=0)
            if link.i in at and link.j not in at:
                at[link.j] = at[link.i] + offset
                grown = True
            elif link.j in at and link.i not in at:
                at[link.i] = at[link.j] - offset
                grown = True
    return np.array([at.get(k, np.zeros(2)) for k in range(count)])


def connected(count: int, pairs: Sequence[tuple[int, int]]) -> set[int]:
    """The tiles joined to the first by `pairs`."""
    reached = {0}
    grown = True
    while grown:
        grown = False
        for i, j in pairs:
            if (i in reached) != (j in reached):
                reached |= {i, j}
                grown = True
    return reached
