"""The negative's densest tenth: where the least light reaches the sensor, so shot noise is largest against the
signal, and where the positive's highlights and deep colours come from. What `frames: auto` measures (one frame's
signal-to-noise ratio there, from the first frames), and what the blend's own SNR is checked at.

On any colour-filter layout: the mosaic is taken in whole CFA repeats, every `stride`-th repeat each way (a
subsample: the measure costs little beside the shooting); a repeat's level is the mean of its photosites above
black (after the flat field's gain, when there is one: a dark corner of the light is not a dense negative), and the
densest tenth is the tenth of repeats with the lowest level among those that see light at all (not the copy
stand's mask beyond the film). In it, each colour's signal is the median of its photosites above black, and one
frame's noise sigma comes from two frames' difference (robust to dust); the colour with the lowest ratio limits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from medianscan.blend.corrections.flat import MasterFlat
from medianscan.blend.measuring.efficiency import variance_factor
from medianscan.blend.measuring.noise import robust_sigma
from medianscan.blend.reading.frames import Frame
from medianscan.blend.reading.shelf import FrameArrays
from medianscan.config.schema import BlendConfig
from medianscan.metadata import MosaicLayout

TENTH = 10.0  # percent of the lit repeats: the densest tenth
LIT = 0.02  # a repeat darker than this share of the brightest (99th percentile) sees no light through the film
TARGET_SITES = 200_000  # photosites a measure looks at, about (sets the stride)


@dataclass(frozen=True)
class DenseMeasure:
    """One frame's signal-to-noise ratio in the densest tenth, in the colour that limits it."""

    snr: float
    signal: float  # DN above black
    sigma: float  # DN
    colour: str  # the limiting colour's letter


def subsample(mosaic: npt.NDArray[np.generic], layout: MosaicLayout, stride: int) -> npt.NDArray[np.float32]:
    """What a measure keeps of a frame (or of the flat's gains): the active area in whole CFA repeats, every
    `stride`-th each way, as (rows, ph, cols, pw) values (a copy)."""
    return _repeats(mosaic, layout, stride).astype(np.float32)


def _repeats(mosaic: npt.NDArray[np.generic], layout: MosaicLayout, stride: int) -> npt.NDArray[np.generic]:
    """The view `subsample` copies: (rows, ph, cols, pw), in the mosaic's own dtype."""
    ph, pw = layout.pattern.shape
    top, left, bottom, right = layout.active_area
    y0, x0 = -(-top // ph) * ph, -(-left // pw) * pw  # whole repeats, in phase with the pattern
    rows, cols = (bottom - y0) // ph, (right - x0) // pw
    area = np.asarray(mosaic[y0 : y0 + rows * ph, x0 : x0 + cols * pw])
    return area.reshape(rows, ph, cols, pw)[::stride, :, ::stride, :]


def black_of(layout: MosaicLayout) -> npt.NDArray[np.float32]:
    """The black level of each position of the CFA repeat (ph, pw)."""
    return np.asarray(layout.black_levels, dtype=np.float32)[layout.pattern]


def stride_for(layout: MosaicLayout) -> int:
    """Every n-th repeat each way, so that a measure sees about TARGET_SITES photosites."""
    top, left, bottom, right = layout.active_area
    sites = max(1, (bottom - top) * (right - left))
    return max(1, int(math.sqrt(sites / TARGET_SITES)))


def densest_tenth(level: npt.NDArray[np.float32], gain: npt.NDArray[np.float32] | None = None) -> npt.NDArray[np.bool_]:
    """Which repeats (rows, cols) are the densest tenth of those lit: `level` is each repeat's mean signal above
    black, `gain` the flat field's (same shape) when there is one."""
    seen = level * gain if gain is not None else level
    lit = seen > LIT * np.percentile(seen, 99)
    if not lit.any():
        return lit
    return lit & (seen <= np.percentile(seen[lit], TENTH))


def _letters(layout: MosaicLayout) -> dict[str, npt.NDArray[np.bool_]]:
    """Each colour's positions in the CFA repeat (a letter may have two indices: Bayer's two greens)."""
    pattern = np.asarray(layout.pattern)
    found: dict[str, npt.NDArray[np.bool_]] = {}
    for index, letter in enumerate(layout.colors.upper()):
        found[letter] = found.get(letter, np.zeros(pattern.shape, dtype=bool)) | (pattern == index)
    return {letter: mask for letter, mask in found.items() if mask.any()}


def _repeat_means(values: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """(rows, ph, cols, pw) -> (rows, cols): each repeat's mean, by whole-plane adds (a mean over the two small
    axes costs ten times as much)."""
    ph, pw = values.shape[1], values.shape[3]
    total = values[:, 0, :, 0].astype(np.float32)
    for p in range(ph):
        for q in range(pw):
            if p or q:
                total += values[:, p, :, q]
    total *= np.float32(1 / (ph * pw))
    return total


@dataclass(frozen=True)
class _Dense:
    """Where the densest tenth is in a subsample, and each colour's figures there."""

    dense: npt.NDArray[np.bool_]  # (rows, cols) repeats
    by_colour: dict[str, DenseMeasure]

    def limiting(self) -> DenseMeasure:
        if not self.by_colour:
            raise ValueError("no densest tenth to measure: the frames see no light")
        return min(self.by_colour.values(), key=lambda m: m.snr)


def _measure(blocks: Sequence[npt.NDArray[np.float32]], layout: MosaicLayout,
             gain: npt.NDArray[np.float32] | None) -> _Dense:  # fmt: skip
    """Frames' and gains' subsamples (`subsample`) -> the densest tenth and each colour's figures there."""
    signal = sum(blocks[1:], blocks[0]) * np.float32(1 / len(blocks)) - black_of(layout)[None, :, None, :]
    dense = densest_tenth(_repeat_means(signal), None if gain is None else _repeat_means(gain))
    in_dense = signal.transpose(0, 2, 1, 3)[dense]  # (k, ph, pw)
    diffs = [(blocks[i] - blocks[i + 1]).transpose(0, 2, 1, 3)[dense] for i in range(0, len(blocks) - 1, 2)]
    by_colour = {}
    for letter, where in _letters(layout).items():
        s = in_dense[:, where].ravel()
        if s.size < 16:
            continue
        sig = float(np.median(s))
        sigma = robust_sigma(np.concatenate([d[:, where].ravel() for d in diffs])) / math.sqrt(2)
        by_colour[letter] = DenseMeasure(sig / sigma if sigma > 0 else math.inf, sig, sigma, letter)
    return _Dense(dense, by_colour)


def measure_frames(frames: Sequence[npt.NDArray[np.generic]], layout: MosaicLayout, *,
                   gain: npt.NDArray[np.float32] | None = None, stride: int | None = None) -> DenseMeasure:  # fmt: skip
    """One frame's SNR in the densest tenth, in the colour that limits, from two or more frames of the negative
    (full sensor arrays): the signal from their mean, the noise from each pair's difference (1-2, 3-4, ...).
    `gain` is the flat field's per photosite (full array) when the roll has one."""
    step = stride or stride_for(layout)
    sampled = [subsample(f, layout, step) for f in frames]
    return measure_subsampled(sampled, layout, None if gain is None else subsample(gain, layout, step))


def measure_subsampled(
    frames: Sequence[npt.NDArray[np.float32]], layout: MosaicLayout, gain: npt.NDArray[np.float32] | None = None
) -> DenseMeasure:
    """measure_frames on frames (and the flat's gain) already subsampled alike."""
    if len(frames) < 2:
        raise ValueError("one frame's noise needs two frames")
    return _measure(frames, layout, gain).limiting()


def blend_snr(
    frames: FrameArrays | Sequence[npt.NDArray[np.generic]],
    layout: MosaicLayout,
    blend: Callable[[npt.NDArray[np.generic]], npt.NDArray[np.generic]],
    method: str,
    cfg: BlendConfig | None = None,
    *,
    gain: npt.NDArray[np.float32] | None = None,
) -> float | None:
    """The SNR a blend of all `frames` reaches in the densest tenth, in the colour that limits, measured on the
    frames themselves as noise.noise_ratio measures it (the blend of all but the last against the last holds that
    blend's noise and one frame's; one frame's comes from the first two frames' difference), carried from N-1 to N
    frames by the method's efficiency; `gain` as for measure_frames. None for fewer than 3 frames, or a stack
    whose blend shows no noise of its own."""
    n = len(frames)
    if n < 3:
        return None
    step = stride_for(layout)
    first = _repeats(frames[0], layout, step)
    stack = np.empty((n, *first.shape), dtype=first.dtype)  # (n, rows, ph, cols, pw): the subsample, copied once
    for i, frame in enumerate(frames):
        np.copyto(stack[i], first if i == 0 else _repeats(frame, layout, step))
    blocks = [stack[0].astype(np.float32), stack[1].astype(np.float32)]
    found = _measure(blocks, layout, None if gain is None else subsample(gain, layout, step))
    one = found.limiting()
    where = _letters(layout)[one.colour]
    # the kernels read rows (each a parallel task): the subsample's rows, never one long row (a lone task waits for
    # a worker thread's turn on a busy host: 30 ms where the work is 0.1 ms)
    rest = stack[:-1].reshape(n - 1, stack.shape[1], -1)
    blended = np.asarray(blend(rest), dtype=np.float32).reshape(stack.shape[1:])
    residual = (blended - stack[-1]).transpose(0, 2, 1, 3)[found.dense][:, where].ravel()
    own = robust_sigma(residual) ** 2 - one.sigma**2
    if own <= 0:
        return None
    carry = (variance_factor(method, n, cfg) / n) / (variance_factor(method, n - 1, cfg) / (n - 1))
    return one.signal / (math.sqrt(own) * math.sqrt(carry))


def stack_snr(
    frames: FrameArrays,
    first: Frame,
    blend: Callable[[npt.NDArray[np.generic]], npt.NDArray[np.generic]],
    cfg: BlendConfig,
    master: MasterFlat | None,
) -> float | None:
    """blend_snr for a decoded stack (its frames as written, `first` speaking for their layout); None for frames
    without a colour-filter mosaic (JPEGs, TIFFs, linear raws: their densest tenth is not measured)."""
    layout = first.layout
    if layout is None or layout.linear:
        return None
    return blend_snr(frames, layout, blend, cfg.method, cfg, gain=None if master is None else master.gain)
