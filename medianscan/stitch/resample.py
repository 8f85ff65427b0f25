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
    """Weights 1 - |d| / half_width at whole d, only those above 0 (a tap of weight 0 is work for nothing)."""
    reach = int(np.ceil(half_width)) - 1
    d = np.arange(-reach, reach + 1, dtype=np.float64)
    return np.clip(1 - np.abs(d) / half_width, 0, None)


def dense_plane(
    values: npt.NDArray[np.float32], pattern: npt.NDArray[np.uint8], colour: int, row0: int, col0: int = 0
) -> npt.NDArray[np.float32]:
    """Colour `colour` at every photosite of `values` (from tile row `row0`, column `col0`), from that colour's
    own photosites."""
    ph, pw = pattern.shape
    h, w = values.shape
    kernel = _tent(max(1.5, 1 / np.sqrt(float(np.mean(pattern == colour)))))
    num = np.zeros_like(values)
    for dy in range(min(ph, h)):  # the colour's photosites copied by strides: no mosaic-sized mask
        for dx in range(min(pw, w)):
            if pattern[(row0 + dy) % ph, (col0 + dx) % pw] == colour:
                num[dy::ph, dx::pw] = values[dy::ph, dx::pw]
    for axis in (0, 1):
        num = _correlate(num, kernel, axis)
    ys, small_h = _fold(h, ph, len(kernel) // 2)
    xs, small_w = _fold(w, pw, len(kernel) // 2)
    rows = (np.arange(small_h) + row0) % ph
    cols = (np.arange(small_w) + col0) % pw
    weight = (pattern[rows[:, None], cols[None, :]] == colour).astype(np.float32)
    for axis in (0, 1):
        weight = ndimage.correlate1d(weight, kernel, axis=axis, mode="nearest")
    inverse = np.float32(1) / np.maximum(weight, np.float32(1e-6))
    num *= np.take(np.take(inverse, ys, axis=0), xs, axis=1)  # two takes: a quarter of a 2-D gather's time
    return num


def _correlate(values: npt.NDArray[np.float32], kernel: npt.NDArray[np.float64], axis: int) -> npt.NDArray[np.float32]:
    """`values` correlated with the short odd `kernel` along `axis`, edges held (ndimage's "nearest"), as sums of
    shifted slices: 1.5-3.5x quicker than ndimage.correlate1d on a band (which walks axis 0 a column at a time),
    the same to a unit in the last place of float32."""
    reach = len(kernel) // 2
    moved = np.moveaxis(values, axis, 0)
    n = moved.shape[0]
    if n <= reach:
        return np.asarray(ndimage.correlate1d(values, kernel, axis=axis, mode="nearest"), dtype=np.float32)
    out = moved * np.float32(kernel[reach])
    for d in range(1, reach + 1):
        before, after = np.float32(kernel[reach - d]), np.float32(kernel[reach + d])
        out[d:] += moved[:-d] * before
        out[:d] += moved[0] * before  # beyond the first, the first
        out[:-d] += moved[d:] * after
        out[n - d :] += moved[-1] * after
    return np.moveaxis(out, 0, axis)


def _fold(n: int, period: int, reach: int) -> tuple[npt.NDArray[np.intp], int]:
    """The normalising weights (a periodic mask's convolution) differ only within `reach` of an end; elsewhere
    they repeat with the pattern. So they are computed on a folded axis: both ends as they are, one period
    between, its length the same modulo `period`; returned with where each of the `n` points reads from."""
    keep = reach + period
    if n <= 2 * keep + 2 * period:
        return np.arange(n), n
    middle = n - 2 * keep
    short = 2 * keep + period + middle % period
    at = np.arange(n)
    where = at.copy()
    inner = (at >= keep) & (at < n - keep)
    where[inner] = keep + (at[inner] - keep) % period
    where[n - keep :] = at[n - keep :] - n + short
    return where, short


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
    wanted: npt.NDArray[np.uint8],
    *,
    box: tuple[int, int],
    tile_size: tuple[int, int],
) -> npt.NDArray[np.float32]:
    """A translated (unturned) tile read onto a box of `box` (rows, columns) output photosites, whose wanted
    colours repeat as `wanted` (the output's CFA from the box's first photosite), that photosite at tile point
    `corner`: every point shares one fraction, so each of the pattern's positions is four weighted strided
    views of its colour's plane (no per-point interpolation, each photosite computed once). Beyond the tile's
    edge it repeats its edge."""
    h, w = tile_size
    rows, cols = box
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
    out = np.empty((rows, cols), dtype=np.float32)
    wy, wx = wanted.shape
    positions = [(a, b) for a in range(min(wy, rows)) for b in range(min(wx, cols))]
    for colour in sorted({int(wanted[a, b]) for a, b in positions}):  # one colour's plane held at a time
        plane = np.pad(dense_plane(region, tile_pattern, colour, start, c0), pads, mode="edge")
        for a, b in (ab for ab in positions if wanted[ab] == colour):
            target = out[a::wy, b::wx]
            n, m = target.shape
            for k, (dv, du) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
                top, left = r0 + a + dv, q0 + b + du
                seen = plane[top : top + (n - 1) * wy + 1 : wy, left : left + (m - 1) * wx + 1 : wx]
                weight = (fu if du else 1 - fu) * (fv if dv else 1 - fv)
                if k == 0:
                    np.multiply(seen, weight, out=target)
                else:
                    target += seen * weight
        del plane  # before the next colour's is made
    return out
