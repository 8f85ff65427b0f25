"""Is every frame the same picture? Each frame against the stack's robust centre, in units of the noise measured
from the stack itself.

A burst can hold a frame of another picture: a body that hands over the previous shot left in its buffer (the
Sony A7 III's, libgphoto2#1124), a film that moved, a hand that shaded part of the view. On a plain, low-texture
negative at the same overall brightness neither the level check nor the shift check can see it, and its median
is a wrong picture that looks plausible. So each frame's whole picture, binned to about PICTURE_SIDE cells on its
long side (a hand may shade a corner), is compared with the per-pixel median of all of them, after taking out
what the other checks already allow: a flicker within tolerance (a gain) and a sub-pixel shift (registered back).
Each residual is clipped at CLIP times the noise of one cell (so a speck of dust, a hair, a hot pixel or a moving
speck counts for little), cut into blocks at a few scales, and each block's mean is judged against the spread
the same block means have across the whole stack. Another picture, a moved film or a shadow moves the means of
many blocks; a few dusty blocks are a small share. A frame whose blocks differ beyond noise over DIFFERS_SHARE
of the picture is named.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from medianscan.blend.kernels.networks import selection_program
from medianscan.blend.measuring import binning, registration
from medianscan.blend.reading.frames import Frame
from medianscan.errors import MedianscanError
from medianscan.outputs.preview import rgb_channels

PICTURE_SIDE = 384  # the whole picture binned to about this many cells on its long side
IMAGE_ROWS = 2  # an image's cell sums about this many of its rows (a 24 MP TIFF: an eighth of the frame read)
SCALES = (4, 8, 16)  # block sides, in cells of that picture
CLIP = 3.0  # a pixel's residual counts up to this many of its own noise (dust carries little weight)
DIFFERS_Z = 6.0  # a block differs when its mean is this many of the stack's own spreads away from the centre
DIFFERS_SHARE = 0.10  # a frame whose blocks differ over this share of the picture is not the same picture
LEVEL_BINS = 4  # the noise grows with the signal: spreads are measured per quartile of the centre's level
MIN_BLOCKS = 16  # a scale with fewer blocks than this tells nothing
MEDIAN_ROWS = 24  # rows of the stack's median taken at a time


def picture_plane(frame: Frame) -> tuple[npt.NDArray[np.float32], tuple[float, float]]:
    """The frame's whole picture (its default crop) as one luminance-like plane of about PICTURE_SIDE cells on
    its long side, and the sensor pixels per cell (y, x). A raw is binned by whole CFA repeats (any CFA), each
    cell the sum of its colours' black-subtracted means (green weighs as much as red and blue); an image by blocks
    of pixels, its channels summed, from IMAGE_ROWS of each block's rows: a 24 MP TIFF is 144 MB to read where a
    raw is 17 MB (plus a decode ten times as long), and the noise the check compares with is measured on the same
    cells, so fewer rows only make each cell a little noisier."""
    pixels = frame.pixels
    layout = frame.layout
    if layout is None:
        height, width = pixels.shape[:2]
        k = max(1, math.ceil(max(height, width) / PICTURE_SIDE))
        channels = pixels.shape[2] if pixels.ndim == 3 else 1
        every = max(1, k // IMAGE_ROWS)
        picture = binning.block_sums(pixels.reshape(height, width * channels), (k, k * channels), every=every)
        return picture, (height / picture.shape[0], width / picture.shape[1])
    top, left, _, _ = layout.active_area
    cx, cy, cw, ch = layout.default_crop
    y0, x0 = top + cy, left + cx
    if layout.linear:  # linear RGB: k x k pixels of the first three channels
        k = max(1, math.ceil(max(ch, cw) / PICTURE_SIDE))
        region = pixels[y0 : y0 + ch, x0 : x0 + cw, :3].reshape(ch, cw * 3)  # a view when 3 channels
        weights = np.full((1, 3), 1.0 / (k * k))
        black = float(np.sum(np.asarray(layout.black_levels[:3], dtype=np.float64)))
        cell = (k, 3 * k)
    else:  # k x k whole repeats; each position weighed by 1 / (photosites of its colour in a cell)
        channels = np.asarray(rgb_channels(layout.colors))
        local = channels[np.roll(np.asarray(layout.pattern), (-y0, -x0), axis=(0, 1))]  # from the crop's corner
        ph, pw = local.shape
        k = max(1, math.ceil(max(ch / ph, cw / pw) / PICTURE_SIDE))
        counts = np.bincount(local.ravel(), minlength=3).astype(np.float64)
        if ch < k * ph or cw < k * pw or not counts.all():
            raise MedianscanError(f"image area {cw}x{ch} is smaller than one colour filter repeat ({pw}x{ph})")
        weights = 1.0 / (counts[local] * k * k)
        levels = np.asarray(layout.black_levels, dtype=np.float64)[np.roll(layout.pattern, (-y0, -x0), (0, 1))]
        black = float(sum(levels[local == c].mean() for c in range(3)))
        region = pixels[y0 : y0 + ch, x0 : x0 + cw]
        cell = (k * ph, k * pw)
    picture = binning.block_sums(region, cell, weights)
    picture -= np.float32(black)
    _, _, width, height = layout.default_crop
    return picture, (height / picture.shape[0], width / picture.shape[1])


def differing_shares(
    pictures: Sequence[npt.NDArray[np.float32]],
    shifts: Sequence[tuple[float, float] | None],
    scale: tuple[float, float],
) -> list[float]:
    """Per frame, the share of the picture whose blocks differ from the stack's centre beyond noise (0 to 1).

    `shifts` are each frame's shift in sensor pixels from the stack's common position (None: not measurable),
    `scale` the sensor pixels per picture cell.
    """
    if len(pictures) < 3 or any(p.shape != pictures[0].shape for p in pictures):
        return [0.0] * len(pictures)
    planes = pictures
    shifts = [None if s is None else (s[0] / scale[0], s[1] / scale[1]) for s in shifts]
    known = [np.asarray(s) for s in shifts if s is not None]
    margin = math.ceil(max((float(np.abs(s).max()) for s in known), default=0.0)) + 2
    if 2 * margin >= min(planes[0].shape) - 2 * SCALES[-1]:
        return [0.0] * len(planes)
    stack = np.stack(
        [
            registration.seen_back(plane, np.zeros(2) if shift is None else np.asarray(shift), margin)
            for plane, shift in zip(planes, shifts, strict=True)
        ]
    )
    centre = _median(stack)
    bright = np.flatnonzero(centre > max(1.0, float(np.percentile(centre, 10))))  # the cells that see light
    lit = centre.ravel()[bright]

    for i in range(len(stack)):  # a flicker the level check tolerates: taken out as a gain, robustly
        ratio = _median_inplace(lit / np.maximum(stack[i].ravel()[bright], 1e-3)) if lit.size else 1.0
        stack[i] *= np.float32(ratio if np.isfinite(ratio) and ratio > 0 else 1.0)
    residual = stack - centre
    limit = CLIP * _spread_by_level(residual.reshape(len(stack), -1), centre.reshape(-1), skip_zeros=True)
    np.clip(residual, -limit.reshape(centre.shape), limit.reshape(centre.shape), out=residual)
    shares = np.zeros(len(planes))
    sums, levels, summed = _block_sums(residual, SCALES[0]), _block_sums(centre[np.newaxis], SCALES[0]), SCALES[0]
    for side in SCALES:
        if side != summed:  # each scale from the one before: floor(floor(h / 4) / 2) blocks of 8 = floor(h / 8)
            sums, levels = _coarser(sums, side // summed), _coarser(levels, side // summed)
            summed = side
        n, ny, nx = sums.shape
        if ny * nx < MIN_BLOCKS:
            continue
        blocks = np.asarray(sums.reshape(n, ny * nx) / side**2, dtype=np.float32)
        level = np.asarray(levels.reshape(ny * nx) / side**2, dtype=np.float32)
        z = blocks / _spread_by_level(blocks, level, skip_zeros=True)
        shares = np.maximum(shares, np.mean(np.abs(z) > DIFFERS_Z, axis=1))
    return [float(s) for s in shares]


def _median(stack: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """(N, H, W) -> (H, W): the per-pixel median (for even N the mean of the middle two, as np.median), by the
    blend's own selection network in NumPy minima and maxima (a tenth of np.median's time on a few frames), a band
    of MEDIAN_ROWS rows at a time: every wire of the network stays in the cache (5x quicker than whole planes)."""
    n = len(stack)
    ops, outputs = _network(n)
    median = np.empty(stack.shape[1:], dtype=np.float32)
    for top in range(0, stack.shape[1], MEDIAN_ROWS):
        band = stack[:, top : top + MEDIAN_ROWS]
        wires: dict[str, npt.NDArray[np.float32]] = {f"a{i}": band[i] for i in range(n)}
        for target, op, x, y in ops:
            wires[target] = (np.minimum if op == "min" else np.maximum)(wires[x], wires[y])
        if len(outputs) == 1:
            median[top : top + MEDIAN_ROWS] = wires[outputs[0]]
        else:
            median[top : top + MEDIAN_ROWS] = (wires[outputs[0]] + wires[outputs[1]]) / np.float32(2)
    return median


@functools.cache
def _network(n: int) -> tuple[list[tuple[str, str, str, str]], list[str]]:
    return selection_program(n, [n // 2] if n % 2 else [n // 2 - 1, n // 2])


def _median_inplace(values: npt.NDArray[np.floating]) -> float:
    """np.median of a 1-D array that may be reordered (no copy); nan when empty, as np.median."""
    half = values.size // 2
    if values.size == 0:
        return math.nan
    if values.size % 2:
        values.partition(half)
        return float(values[half])
    values.partition(half)  # one selection; the lower middle is then the largest below it
    return float((values[:half].max() + values[half]) / values.dtype.type(2))


def _block_sums(images: npt.NDArray[np.float32], side: int) -> npt.NDArray[np.float64]:
    """(N, H, W) -> (N, H // side, W // side): the sum of each side x side block (edges that do not fill one
    dropped), rows first (whole-row adds), in float64."""
    n, h, w = images.shape
    ny, nx = h // side, w // side
    rows = images[:, : ny * side, : nx * side].reshape(n, ny, side, nx * side).sum(axis=2, dtype=np.float64)
    sums: npt.NDArray[np.float64] = rows.reshape(n, ny, nx, side).sum(axis=3)
    return sums


def _coarser(sums: npt.NDArray[np.float64], factor: int) -> npt.NDArray[np.float64]:
    """Block sums -> the sums of factor x factor of them (the edges that do not fill one dropped)."""
    n, h, w = sums.shape
    ny, nx = h // factor, w // factor
    coarse: npt.NDArray[np.float64] = (
        sums[:, : ny * factor, : nx * factor].reshape(n, ny, factor, nx, factor).sum(axis=(2, 4))
    )
    return coarse


def _spread_by_level(
    values: npt.NDArray[np.float32],
    level: npt.NDArray[np.float32],
    *,
    skip_zeros: bool = False,
) -> npt.NDArray[np.float64]:
    """(N, M) values of all frames at M places whose centre is at `level` -> the robust spread (1.4826 MAD) of
    the values at each place, per quartile of the level (noise grows with the signal). Frames of another
    picture are a minority and do not move it. `skip_zeros`: values of exactly 0 say nothing of the noise (the
    frame that is the median at a place has a residual of 0 there; a block clipped in every frame has a mean of
    0), so they are left out."""
    edges = np.quantile(level, np.linspace(0, 1, LEVEL_BINS + 1)[1:-1])
    bins = np.searchsorted(edges, level)
    order = np.argsort(bins, kind="stable")  # the places bin by bin: each bin's values one slice of a single gather
    grouped = values[:, order]
    ends = np.cumsum(np.bincount(bins, minlength=LEVEL_BINS))

    def one(b: int) -> float:
        pooled = grouped[:, ends[b - 1] if b else 0 : ends[b]].ravel()  # a copy: its median reorders it
        if skip_zeros:
            pooled = pooled[pooled != 0]
        if not pooled.size:
            return 1.0
        centre = pooled.dtype.type(_median_inplace(pooled))
        np.subtract(pooled, centre, out=pooled)
        np.abs(pooled, out=pooled)
        return max(1.4826 * _median_inplace(pooled), 1e-3)

    spread: npt.NDArray[np.float64] = np.asarray([one(b) for b in range(LEVEL_BINS)], dtype=np.float64)[bins]
    return spread
