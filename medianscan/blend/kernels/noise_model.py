"""One frame's noise at every level, per colour, measured on the stack itself: what sigma-clip and winsorized
judge a value against.

A sensor's noise is read noise plus shot noise: at a raw value v, variance = read**2 + gain * (v - black), where
`gain` (DN per electron) is the same along the whole range. A per-pixel sample sigma cannot tell dust from noise
at small N (at N = 3 no value can ever lie three sample sigmas from the median), but the stack holds millions of
photosites at every level: their spread across the frames, pooled by level and colour, gives that line. The
spread at one photosite across N frames carries no scene (the scene is the same in every frame); it is taken
without the value furthest from the photosite's median (dust, a hot pixel, or a whole frame that is off: a flash),
and a median of the spreads per level ignores the few photosites that two specks inflate.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

SITES = 1 << 16  # photosites measured (a strided subsample): each colour's gain to a few percent
BIN_SITES = 512  # at least this many photosites per level bin
MAX_BINS = 16  # level bins per colour
LEAST_READ = 0.5  # DN: no model says a value is exact (16-bit rounding alone is 0.29 DN)

ROBUST = frozenset({"sigma-clip", "winsorized"})  # the combine methods that judge values against this model

Rows = npt.NDArray[Any] | Sequence[npt.NDArray[Any]]  # (N, H, W') or N frames (H, W'), as the kernels read them


@dataclass(frozen=True)
class NoiseModel:
    """One frame's noise: at raw value v of colour c, variance = read[c]**2 + gain[c] * max(v - black[c], 0).

    `pattern` gives the colour of each position of the repeat (row % ph, x % pw) along the rows the kernels read
    (an (H, W, C) frame's rows are W*C values long: its pattern is (1, C), one colour per channel).
    """

    pattern: tuple[tuple[int, ...], ...]
    names: tuple[str, ...]  # each colour's letter
    black: tuple[float, ...]  # DN, per colour
    read: tuple[float, ...]  # DN, the noise at black
    gain: tuple[float, ...]  # DN^2 of variance per DN of signal (the conversion gain, DN per electron)
    sites: int  # photosites it was measured on

    def sigma(self, level: float, colour: int) -> float:
        """One frame's noise (DN) at raw value `level` of colour `colour`."""
        signal = max(level - self.black[colour], 0.0)
        return math.sqrt(self.read[colour] ** 2 + self.gain[colour] * signal)

    def thresholds(
        self, kappa: float, width: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """What the kernels read per row phase and column, (ph, width) each: kappa^2 read^2, kappa^2 gain, black.
        A value v lies within kappa sigma of a centre c when (v - c)^2 <= a + b * max(c - z, 0)."""
        pattern = np.asarray(self.pattern, dtype=np.intp)
        columns = pattern[:, np.arange(width) % pattern.shape[1]]
        k2 = np.float32(kappa * kappa)
        read2 = np.asarray(self.read, np.float32) ** 2
        a = np.ascontiguousarray(k2 * read2[columns], dtype=np.float32)
        b = np.ascontiguousarray(k2 * np.asarray(self.gain, np.float32)[columns], dtype=np.float32)
        z = np.ascontiguousarray(np.asarray(self.black, np.float32)[columns], dtype=np.float32)
        return a, b, z

    def to_json(self) -> dict[str, Any]:
        """Per colour (in the order of `names`, a letter once): read noise and gain, as the sidecar records them."""
        by_name: dict[str, Any] = {}
        for c, name in enumerate(self.names):
            by_name.setdefault(
                name,
                {
                    "read_noise_dn": round(self.read[c], 2),
                    "gain_dn_per_electron": round(self.gain[c], 4),
                    "black": round(self.black[c], 1),
                },
            )
        return {"per_colour": by_name, "photosites_measured": self.sites}


def _step(step: int, period: int) -> int:
    """A subsampling step that visits every phase of the repeat: 1, or one more than a multiple of `period`."""
    if step <= 1 or period == 1:
        return max(step, 1)
    return (step // period) * period + 1


def _spread(values: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """(N, M) values -> the sample variance of each column's values without the one furthest from its median
    (all of them for N = 2)."""
    n = values.shape[0]
    v = values.astype(np.float64)
    s1, s2 = v.sum(axis=0), (v * v).sum(axis=0)
    if n > 2:
        worst = np.take_along_axis(v, np.abs(v - np.median(v, axis=0)).argmax(axis=0)[None], axis=0)[0]
        s1, s2, n = s1 - worst, s2 - worst * worst, n - 1
    spread: npt.NDArray[np.float64] = np.maximum(s2 - s1 * s1 / n, 0.0) / (n - 1)
    return spread


@functools.cache
def _spread_factor(n: int) -> float:
    """The median of `_spread` of n standard normal values (measured once: no closed form once the furthest is
    left out)."""
    draws = np.random.default_rng(n).standard_normal((n, 1 << 16)).astype(np.float32)
    return float(np.median(_spread(draws)))


def measure_rows(
    rows: Rows,
    pattern: npt.NDArray[np.integer] | None = None,
    names: Sequence[str] | None = None,
    black: Sequence[float] | None = None,
) -> NoiseModel:
    """The noise model of a stack as the kernels read it: an (N, H, W') array or N (H, W') frames, N >= 2.

    `pattern` (ph, pw) gives the colour index at (row % ph, x % pw), `names` and `black` each colour's letter and
    black level (default: the 2x2 positions of a Bayer mosaic, unnamed, and as black each colour's darkest level in
    the stack: `read` is then the noise there). The photosites touching the sample's lowest or highest value are
    left out (clipped: they show no noise).
    """
    n = len(rows)
    if n < 2:
        raise ValueError("one frame's noise needs two frames or more")
    colours = np.asarray(pattern if pattern is not None else [[0, 1], [2, 3]], dtype=np.intp)
    count = int(colours.max()) + 1
    names = tuple(names) if names is not None else tuple(f"{i}" for i in range(count))
    h, w = rows[0].shape
    step = max(1, int(math.sqrt(h * w / SITES)))
    sy, sx = _step(step, colours.shape[0]), _step(step, colours.shape[1])
    values = np.stack([np.asarray(frame[::sy, ::sx], dtype=np.float32) for frame in rows]).reshape(n, -1)
    ys, xs = np.arange(0, h, sy) % colours.shape[0], np.arange(0, w, sx) % colours.shape[1]
    site_colour = colours[ys[:, None], xs[None, :]].ravel()
    low, high = values.min(axis=0), values.max(axis=0)
    usable = (low > values.min()) & (high < values.max())
    level = np.median(values, axis=0)
    spread = _spread(values) / _spread_factor(n)
    read, gain, blacks = [], [], []
    for c in range(count):
        here = usable & (site_colour == c)
        if black is not None:
            blacks.append(float(black[c]))
        else:
            blacks.append(float(np.percentile(level[here], 0.1)) if here.any() else 0.0)
        r, g = _fit_line(level[here] - np.float32(blacks[c]), spread[here])
        read.append(r)
        gain.append(g)
    return NoiseModel(
        pattern=tuple(tuple(int(v) for v in row) for row in colours),
        names=names,
        black=tuple(blacks),
        read=tuple(read),
        gain=tuple(gain),
        sites=int(usable.sum()),
    )


def _fit_line(signal: npt.NDArray[np.float32], spread: npt.NDArray[np.float64]) -> tuple[float, float]:
    """(read noise, gain) of variance = read^2 + gain * max(signal, 0): the median spread in level bins, then a
    line through them weighted by how well each is known (a variance's error grows with it). Fitted twice: the
    second time each photosite's spread is taken against the first line at its own level, so a bin spanning a
    wide range of levels (the darkest) is not biased by the noise growing across it."""
    if signal.size == 0:
        return LEAST_READ, 0.0
    bins = np.array_split(np.argsort(signal, kind="stable"), int(np.clip(signal.size // BIN_SITES, 1, MAX_BINS)))
    x = np.array([max(float(np.median(signal[part])), 0.0) for part in bins])
    y = np.array([float(np.median(spread[part])) for part in bins])
    read, gain = _weighted_line(x, y, bins)
    for _ in range(2):
        first = read * read + gain * np.maximum(signal, 0.0)
        y = np.array([float(np.median(spread[part] / first[part])) for part in bins]) * (read * read + gain * x)
        read, gain = _weighted_line(x, y, bins)
    return read, gain


def _weighted_line(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], bins: Sequence[npt.NDArray[np.intp]]
) -> tuple[float, float]:
    weight = np.array([part.size for part in bins]) / np.maximum(y, LEAST_READ**2) ** 2
    mx, my = np.average(x, weights=weight), np.average(y, weights=weight)
    sxx = float(np.average((x - mx) ** 2, weights=weight))
    gain = max(float(np.average((x - mx) * (y - my), weights=weight)) / sxx if sxx > 0 else 0.0, 0.0)
    read2 = my - gain * mx if gain > 0 else my
    return math.sqrt(max(read2, LEAST_READ**2)), gain


def measure_frames(pixels: Rows, layout: Any | None) -> NoiseModel:
    """The noise model of decoded frames: raw mosaics by their CFA `layout` (a MosaicLayout: each colour with its
    black level), (H, W, C) images by channel, (H, W) images as one colour."""
    first = pixels[0]
    rows = [np.asarray(f).reshape(f.shape[0], -1) for f in pixels] if first.ndim == 3 else pixels
    if layout is not None and not layout.linear and first.ndim == 2:
        pattern = np.asarray(layout.pattern, dtype=np.intp)
        count = int(pattern.max()) + 1
        names = [layout.colors[i] if i < len(layout.colors) else f"{i}" for i in range(count)]
        black = [float(layout.black_levels[i]) if i < len(layout.black_levels) else 0.0 for i in range(count)]
        return measure_rows(rows, pattern, names, black)
    channels = first.shape[2] if first.ndim == 3 else 1
    black = list(layout.black_levels[:channels]) if layout is not None and layout.linear else [0.0] * channels
    names = list("RGB"[:channels]) if channels == 3 else [f"{i}" for i in range(channels)]
    return measure_rows(rows, np.arange(channels).reshape(1, channels), names, black)


def stack_noise(method: str, pixels: Rows, layout: Any | None) -> NoiseModel | None:
    """`measure_frames` for a blend by `method`: None for the methods that use no noise model."""
    return measure_frames(pixels, layout) if method in ROBUST else None
