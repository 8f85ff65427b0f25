"""A tile resampled onto the output's mosaic, one colour plane at a time, for any CFA (Bayer, X-Trans).

Each output photosite wants one colour: its value is read from the tile's photosites of that colour only,
interpolated at the (sub-pixel, possibly rotated) place the output photosite falls on the tile. A colour's
photosites form a sparse lattice (a quarter of the mosaic for Bayer red, a quincunx for green, an irregular
2/9 for X-Trans red): the plane is first filled in by normalised convolution with a tent as wide as its
photosites' spacing (at its own photosites it stays mostly their own value), then read bilinearly. Colours never
mix, so the output stays a raw: the editor's demosaic still does the demosaicing.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from scipy import ndimage

MARGIN = 4  # tile rows read beyond what the output band's points need, for the kernel


def _tent(half_width: float) -> npt.NDArray[np.float64]:
    reach = int(np.ceil(half_width)) - (1 if float(half_width).is_integer() else 0)
    d = np.arange(-reach, reach + 1, dtype=np.float64)
    return np.clip(1 - np.abs(d) / half_width, 0, None)


def dense_plane(
    values: npt.NDArray[np.float32], pattern: npt.NDArray[np.uint8], colour: int, row0: int, col0: int = 0
) -> npt.NDArray[np.float32]:
    """Colour `colour` at every photosite of `values` (from tile row `row0`, column `col0`), from that colour's
    own photosites."""
    ph, pw = pattern.shape
    h, w = values.shape
    rows = (np.arange(h) + row0) % ph
    cols = (np.arange(w) + col0) % pw
    mask = (pattern[rows[:, None], cols[None, :]] == colour).astype(np.float32)
    density = float(np.mean(pattern == colour))
    kernel = _tent(max(1.5, 1 / np.sqrt(density)))
    num = values * mask
    for axis in (0, 1):
        num = ndimage.correlate1d(num, kernel, axis=axis, mode="nearest")
        mask = ndimage.correlate1d(mask, kernel, axis=axis, mode="nearest")
    plane: npt.NDArray[np.float32] = num / np.maximum(mask, np.float32(1e-6))
    return plane


def sample(
    rows_of: Callable[[int, int], npt.NDArray[np.float32]],
    tile_pattern: npt.NDArray[np.uint8],
    v: npt.NDArray[np.float64],
    u: npt.NDArray[np.float64],
    colours: npt.NDArray[np.uint8],
    *,
    tile_height: int,
) -> npt.NDArray[np.float32]:
    """The tile's value of colour `colours[k]` at tile points (v[k], u[k]); `rows_of(start, stop)` reads tile
    rows."""
    out = np.zeros(v.shape, dtype=np.float32)
    if v.size == 0:
        return out
    start = max(0, int(np.floor(v.min())) - MARGIN)
    stop = min(tile_height, int(np.ceil(v.max())) + MARGIN + 1)
    region = rows_of(start, stop)
    for colour in np.unique(colours):
        which = colours == colour
        plane = dense_plane(region, tile_pattern, int(colour), start)
        coords = np.stack([v[which] - start, u[which]])
        out[which] = ndimage.map_coordinates(plane, coords, order=1, mode="nearest")
    return out


def sample_shifted(
    rows_of: Callable[[int, int], npt.NDArray[np.float32]],
    tile_pattern: npt.NDArray[np.uint8],
    corner: tuple[float, float],
    colours: npt.NDArray[np.uint8],
    tile_size: tuple[int, int],
) -> npt.NDArray[np.float32]:
    """A translated (unturned) tile read onto a box of output photosites whose wanted colours are `colours`,
    the box's first photosite at tile point `corner`: every point shares one fraction, so each colour's plane is
    four weighted views of itself (no per-point interpolation). Beyond the tile's edge it repeats its edge."""
    h, w = tile_size
    rows, cols = colours.shape
    iv, iu = int(np.floor(corner[0])), int(np.floor(corner[1]))
    fv, fu = np.float32(corner[0] - iv), np.float32(corner[1] - iu)
    pw = tile_pattern.shape[1]
    start, stop = max(0, iv - MARGIN), min(h, iv + rows + 1 + MARGIN)
    c0 = max(0, iu - MARGIN) // pw * pw
    c1 = min(w, iu + cols + 1 + MARGIN)
    region = rows_of(start, stop)[:, c0:c1]
    pads = (
        (max(0, start - iv), max(0, iv + rows + 1 - stop)),
        (max(0, c0 - iu), max(0, iu + cols + 1 - c1)),
    )
    r0, q0 = iv - start + pads[0][0], iu - c0 + pads[1][0]
    out = np.zeros((rows, cols), dtype=np.float32)
    for colour in np.unique(colours):
        plane = np.pad(dense_plane(region, tile_pattern, int(colour), start, c0), pads, mode="edge")

        def view(dv: int, du: int, plane: npt.NDArray[np.float32] = plane) -> npt.NDArray[np.float32]:
            return plane[r0 + dv : r0 + dv + rows, q0 + du : q0 + du + cols]

        top = view(0, 0) * (1 - fu) + view(0, 1) * fu
        bottom = view(1, 0) * (1 - fu) + view(1, 1) * fu
        np.copyto(out, top * (1 - fv) + bottom * fv, where=colours == colour)
    return out
