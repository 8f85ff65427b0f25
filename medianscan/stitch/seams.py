"""No seams: across an overlap each tile's weight falls linearly to nothing at its own edge (a feather as wide as
the overlap), so the output passes from one tile to the next without a step; the gains (`gains`) have already
brought the tiles to one level, so what is left at a seam is noise."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def feather(v: npt.NDArray[np.floating], u: npt.NDArray[np.floating], size: tuple[int, int]) -> npt.NDArray[np.float32]:
    """The weight of a tile of `size` at its own coordinates (v, u) (rows, columns; broadcastable): the distance to
    its nearest edge plus one, 0 outside it."""
    h, w = size
    dv = np.minimum(v, (h - 1) - v)
    du = np.minimum(u, (w - 1) - u)
    d = np.minimum(dv, du)  # the one array of the box's size: the rest in place
    d += 1
    np.maximum(d, 0, out=d)
    weight: npt.NDArray[np.float32] = d.astype(np.float32, copy=False)
    return weight
