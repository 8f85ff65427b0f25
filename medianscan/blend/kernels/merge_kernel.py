"""The bracket merge's inner loop, compiled (numba): one pass per photosite over the groups, in parallel rows.

Numpy needs some twenty passes over the mosaic for the same (roll-off, weights, gains, scaling); this is one, and
a merge of two 8.5 MP groups costs tens of milliseconds instead of a quarter of a second. Cached by numba beside
the module (or in its user-wide cache where the package is read-only).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit, prange


@njit(parallel=True, cache=True, nogil=True)
def merge_rows(  # noqa: PLR0917 - a compiled kernel takes its arrays positionally
    blends: npt.NDArray[np.uint16],  # (K, H, W), shortest exposure first
    colour_of: npt.NDArray[np.uint8],  # the CFA pattern: colour index at (y % ph, x % pw)
    black: npt.NDArray[np.float64],  # per colour index
    gains: npt.NDArray[np.float64],  # (K, colours): to the longest group's units
    factors: npt.NDArray[np.float64],  # (K,): (t / t_longest)^2
    span: float,
    low: float,
    high: float,
    scale: float,
    out: npt.NDArray[np.uint16],
) -> None:
    groups, height, width = blends.shape
    ph, pw = colour_of.shape
    start = low * span
    width_of_roll = (high - low) * span
    for y in prange(height):
        for x in range(width):
            c = colour_of[y % ph, x % pw]
            b = black[c]
            total = 0.0
            weights = 0.0
            for k in range(groups):
                s = blends[k, y, x] - b
                u = (s - start) / width_of_roll
                if u <= 0.0:
                    w = 1.0
                elif u >= 1.0:
                    w = 0.0
                else:
                    w = 1.0 - u * u * (3.0 - 2.0 * u)
                w *= factors[k]
                total += w * s * gains[k, c]
                weights += w
            merged = total / weights if weights > 0.0 else (blends[0, y, x] - b) * gains[0, c]
            value = b + merged * scale + 0.5
            if value < 0.0:
                value = 0.0
            elif value > 65535.0:
                value = 65535.0
            out[y, x] = np.uint16(value)
