"""A frame summed over blocks of pixels, at the speed of reading it once.

The other-picture check bins every frame of a stack to a few hundred cells a side; a float32 sum over a strided
5-D view of the frame (the obvious way) took 0.5-0.7 s per 24 MP TIFF, half a blend. Here the rows of each block
are added first, whole rows at a time in integers (contiguous, vectorised, no overflow: a uint16 times a few
hundred fits in 32 bits), which leaves an array k times smaller; the weights of the colour filter's positions and
the columns are applied to that. A band of blocks at a time: its sums stay in the cache, and no temporary is big
enough for glibc to map it afresh (a blend returns buffers over 1 MiB to the system, see reading.shelf, so each one
cost its page faults again). 7 ms of CPU for a 24 MP RGB TIFF read one row in four, 4.3 ms for an 8 MP mosaic.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

BAND_BYTES = 1 << 18  # a band of row sums stays in the cache, and no temporary is large enough to be mmapped


def block_sums(
    region: npt.NDArray[np.generic],
    cell: tuple[int, int],
    weights: npt.NDArray[np.float64] | None = None,
    *,
    every: int = 1,
) -> npt.NDArray[np.float32]:
    """(H, W) pixel values -> (H // cy, W // cx): the weighted sum of each cy x cx block.

    `weights` (ph, pw), tiling the block (cy % ph == cx % pw == 0), weighs each pixel by its position in the
    repeat (a colour filter's: 1 / photosites of its colour); None weighs every pixel 1, summed exactly when the
    values are 8- or 16-bit unsigned integers (anything else is summed in float64). Edges that do not fill a
    block are left out. `every` > 1 reads one row of repeats in `every` of each block (its first, then evenly
    on), whole rows skipped in memory, and scales the sums to the whole block's.
    """
    cy, cx = cell
    ph, pw = (1, 1) if weights is None else weights.shape
    if cy % ph or cx % pw:
        raise ValueError(f"a {ph}x{pw} repeat does not tile a {cy}x{cx} block")
    ny, nx = region.shape[0] // cy, region.shape[1] // cx
    width = nx * cx
    k = cy // ph
    rows = region[: ny * cy, :width].reshape(ny, k, ph, width)[:, ::every]
    kept = rows.shape[1]
    scale = k / kept  # 1 when every row is read
    small = region.dtype in (np.uint8, np.uint16)
    acc = np.dtype(np.uint32 if small else np.float64)
    wide = np.uint32 if small and cy * cx * 65535 < 2**32 else np.uint64  # narrower is quicker; never overflows
    starts = np.arange(0, width, cx)  # each block's first column
    step = max(1, BAND_BYTES // (ph * width * 4))  # block rows a band
    summed = np.empty((min(step, ny), ph, width), acc)
    picture = np.empty((ny, nx), np.float32)
    if weights is not None:  # float32 from the row sums on: exact in it (k * 65535 < 2**24), one multiply a value
        along = np.tile(weights.astype(np.float32) * np.float32(scale), (1, width // pw))  # (ph, width)
        values = np.empty(summed.shape, np.float32)
    for y in range(0, ny, step):
        m = min(step, ny - y)
        band = summed[:m]
        band[...] = rows[y : y + m, 0]
        for j in range(1, kept):
            np.add(band, rows[y : y + m, j], out=band)
        if weights is None:
            exact = band.reshape(m, width)
            total = np.add.reduceat(exact, starts, axis=1, dtype=wide if small else np.float64)
            picture[y : y + m] = total if scale == 1 else total * scale
        else:
            weighted = values[:m]
            weighted[...] = band
            weighted *= along
            for py in range(1, ph):
                weighted[:, 0] += weighted[:, py]
            picture[y : y + m] = np.add.reduceat(weighted[:, 0], starts, axis=1)
    return picture
