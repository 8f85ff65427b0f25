"""A tile resampled onto the output's mosaic, one colour plane at a time, for any CFA (Bayer, X-Trans).

Each output photosite wants one colour: its value is read from the tile's photosites of that colour only,
interpolated at the (sub-pixel, possibly rotated) place the output photosite falls on the tile. A colour's
photosites form a sparse lattice (a quarter of the mosaic for Bayer red, a quincunx for green, an irregular
2/9 for X-Trans red): the plane is first filled in by normalised convolution with a tent as wide as its
photosites' spacing (at its own photosites it stays mostly their own value), then read bilinearly. Colours never
mix, so the output stays a raw: the editor's demosaic still does the demosaicing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

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
    colours repeat as `wanted` (the output's CFA from the box's first photosite, of the tile's CFA's size), that
    photosite at tile point `corner`. Every point shares one fraction, so the dense plane and the bilinear read
    of `sample` come to one fixed stencil for each of the pattern's positions (`shift_stencil`): a few weighted
    strided views of the tile's own photosites, no plane filled in. Beyond the tile's edge its last whole CFA
    repeat repeats, each photosite with its own colour."""
    h, w = tile_size
    rows, cols = box
    iv, iu = int(np.floor(corner[0])), int(np.floor(corner[1]))
    # to a billionth of a photosite: the same fraction whichever band's row the corner was taken from (its last
    # bits follow the row's size), so a tile's stencils are made once, not once a band
    fraction = (round(float(corner[0] - iv), 9), round(float(corner[1] - iu), 9))
    ph, pw = tile_pattern.shape
    # what the stencils reach, and at least one whole CFA repeat of the tile whatever the box: a point past the
    # tile's edge reads the nearest photosite of its colour, which a few rows at the edge may not hold (X-Trans)
    start, stop = max(0, min(iv - MARGIN, h - ph)), min(h, max(iv + rows + 1 + MARGIN, ph))
    c0, c1 = max(0, min(iu - MARGIN, w - pw)), min(w, max(iu + cols + 1 + MARGIN, pw))
    stencils = {
        (a, b): shift_stencil(tile_pattern, int(wanted[a, b]), ((iv + a) % ph, (iu + b) % pw), fraction)
        for a in range(min(ph, rows))
        for b in range(min(pw, cols))
    }
    low = min(min(t.dy for t in s) for s in stencils.values()), min(min(t.dx for t in s) for s in stencils.values())
    high = max(max(t.dy for t in s) for s in stencils.values()), max(max(t.dx for t in s) for s in stencils.values())
    # the region's rows and columns with whole CFA repeats added beyond the tile where the stencils reach
    ys = _within(np.arange(iv + low[0], iv + rows + high[0] + 1), start, stop, ph)
    xs = _within(np.arange(iu + low[1], iu + cols + high[1] + 1), c0, c1, pw)
    region = _gathered(_gathered(rows_of(start, stop)[:, c0:c1], ys, 0), xs, 1)
    out = np.empty((rows, cols), dtype=np.float32)
    for (a, b), stencil in stencils.items():
        n, m = len(range(a, rows, ph)), len(range(b, cols, pw))
        total = np.zeros((n, m), dtype=np.float32)
        scratch = np.empty_like(total)
        for tap in stencil:  # region index of tile row iv + a + tap.dy is a + tap.dy - low
            top, left = a + tap.dy - low[0], b + tap.dx - low[1]
            seen = region[top : top + (n - 1) * ph + 1 : ph, left : left + (m - 1) * pw + 1 : pw]
            total += np.multiply(seen, np.float32(tap.weight), out=scratch)
        out[a::ph, b::pw] = total
    return out


@dataclass(frozen=True)
class Tap:
    """One tile photosite's weight in a shifted read: at (dy, dx) from the point's whole-photosite part."""

    dy: int
    dx: int
    weight: float


@functools.lru_cache(maxsize=256)
def _cached_stencil(
    pattern: bytes, shape: tuple[int, int], colour: int, phase: tuple[int, int], fraction: tuple[float, float]
) -> tuple[Tap, ...]:
    tile_pattern = np.frombuffer(pattern, dtype=np.uint8).reshape(shape)
    ph, pw = shape
    kernel = _tent(max(1.5, 1 / np.sqrt(float(np.mean(tile_pattern == colour)))))
    reach = len(kernel) // 2
    fv, fu = fraction
    weights: dict[tuple[int, int], float] = {}
    for dv, du in ((0, 0), (0, 1), (1, 0), (1, 1)):  # the bilinear read's four points of the dense plane
        corner_weight = (fv if dv else 1 - fv) * (fu if du else 1 - fu)
        if corner_weight == 0:
            continue
        near = [
            (dv + ey, du + ex, kernel[ey + reach] * kernel[ex + reach])
            for ey in range(-reach, reach + 1)
            for ex in range(-reach, reach + 1)
            if tile_pattern[(phase[0] + dv + ey) % ph, (phase[1] + du + ex) % pw] == colour
        ]
        norm = sum(k for _, _, k in near)  # the dense plane's normalising weight at that point
        for sy, sx, k in near:
            weights[sy, sx] = weights.get((sy, sx), 0.0) + corner_weight * k / norm
    return tuple(Tap(dy, dx, wt) for (dy, dx), wt in sorted(weights.items()) if wt > 0)


def shift_stencil(
    tile_pattern: npt.NDArray[np.uint8], colour: int, phase: tuple[int, int], fraction: tuple[float, float]
) -> tuple[Tap, ...]:
    """The tile photosites (all of `colour`) and weights whose sum is `sample`'s value at a point `fraction` past
    a photosite at CFA position `phase`: the dense plane's normalised tent at the bilinear read's four points,
    composed. Away from the tile's edges the two agree to float32's rounding."""
    pattern = np.ascontiguousarray(tile_pattern, dtype=np.uint8)
    return _cached_stencil(pattern.tobytes(), (pattern.shape[0], pattern.shape[1]), colour, phase, fraction)


def _within(points: npt.NDArray[np.int64], first: int, stop: int, period: int) -> npt.NDArray[np.intp]:
    """Region indices (from `first`) for tile rows or columns `points`: those outside [first, stop) moved by whole
    CFA repeats to the nearest inside, so each keeps its colour."""
    inside = points.copy()
    below, above = inside < first, inside >= stop
    inside[below] += -(-(first - inside[below]) // period) * period
    inside[above] -= -(-(inside[above] - stop + 1) // period) * period
    return np.clip(inside - first, 0, stop - first - 1).astype(np.intp)


def _gathered(values: npt.NDArray[np.float32], at: npt.NDArray[np.intp], axis: int) -> npt.NDArray[np.float32]:
    """`values` at indices `at` along `axis`: a view where they run on one by one (the tile's inside), else a
    gather (beyond its edges)."""
    if np.array_equal(at, np.arange(at[0], at[0] + len(at))):
        return values[at[0] : at[0] + len(at)] if axis == 0 else values[:, at[0] : at[0] + len(at)]
    return np.take(values, at, axis=axis)
