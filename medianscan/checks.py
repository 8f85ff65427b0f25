"""Does this stack differ only in noise? Every check names the frame that breaks it and why.

A median of frames that are not the same picture is a wrong image that looks plausible, so the checks run before
every blend: same body and CFA layout, same levels and exposure metadata, the same overall brightness (flicker,
a bumped dial), and no frame shifted against the others (a bumped copy stand). For attributes that should be
equal, the value most frames share is taken as right and the others are named.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from medianscan.frames import Frame

MIN_FRAMES = 3
Mapper = Callable[[Callable[[Any], Any], Iterable[Any]], Iterator[Any]]
PLANE_MAX_SIDE = 384  # CFA repeats a side of the measured window: 0.1 px precision, cheap on any sensor
CLIP_PERCENT = 3.0  # dust and hot pixels are clipped away before correlating (see _spectrum)
MIN_PLANE_SIDE = 64  # below this many CFA repeats a side, a shift cannot be measured reliably
_PEAK_SIGNIFICANCE = 12.0  # correlation peak over its surface's spread below which a shift is not measurable


@dataclass(frozen=True)
class Problem:
    """Why one frame (or, with frame None, the whole stack) cannot be blended."""

    frame: Path | None
    reason: str

    def __str__(self) -> str:
        return f"{self.frame.name}: {self.reason}" if self.frame else self.reason


@dataclass(frozen=True)
class FrameStats:
    """What the pixel checks measured on one frame (kept in the sidecar)."""

    level: float  # median signal above black in the central window, in raw units (robust to dust and streaks)
    shift: tuple[float, float] | None  # (dy, dx) in sensor pixels against the stack; None if not measurable


def _majority(values: Sequence[Hashable]) -> Hashable:
    return Counter(values).most_common(1)[0][0]


def _disagreeing(
    frames: Sequence[Frame],
    key: Callable[[Frame], Hashable],
    what: str,
    show: Callable[[Hashable], str] = str,
) -> list[Problem]:
    """Frames whose `key` differs from the value most frames share."""
    if not frames:
        return []
    values = [key(f) for f in frames]
    usual = _majority(values)
    return [
        Problem(f.path, f"{what} {show(v)} differs from the other frames' {show(usual)}")
        for f, v in zip(frames, values, strict=True)
        if v != usual
    ]


def _fmt_seconds(value: Hashable) -> str:
    if not isinstance(value, float):
        return "unknown"
    return f"1/{round(1 / value)} s" if value < 0.3 else f"{value:g} s"


def metadata_problems(frames: Sequence[Frame]) -> list[Problem]:
    """Frames that differ in body, format, geometry, CFA layout, levels or recorded exposure."""
    problems: list[Problem] = []
    problems += _disagreeing(frames, lambda f: f.kind, "file type")
    problems += _disagreeing(frames, lambda f: f.camera.model or f.camera.make or "unknown", "camera")
    problems += _disagreeing(frames, lambda f: f.camera.serial, "camera serial", lambda v: str(v) or "unknown")
    problems += _disagreeing(frames, lambda f: f.pixels.shape, "size", _fmt_shape)
    problems += _disagreeing(frames, lambda f: f.pixels.dtype.str, "bit depth")
    problems += _disagreeing(frames, _pattern_key, "CFA pattern")
    problems += _disagreeing(frames, lambda f: f.layout.black_levels if f.layout else None, "black level")
    problems += _disagreeing(frames, lambda f: f.layout.white_level if f.layout else None, "white level")
    problems += _disagreeing(frames, lambda f: f.exposure.iso, "ISO", _fmt_number)
    problems += _disagreeing(frames, lambda f: f.exposure.exposure_time, "shutter", _fmt_seconds)
    problems += _disagreeing(frames, lambda f: f.exposure.f_number, "aperture", lambda v: f"f/{_fmt_number(v)}")
    return _one_per_frame(problems)


def _fmt_number(value: Hashable) -> str:
    return f"{value:g}" if isinstance(value, float) else "unknown"


def _fmt_shape(value: Hashable) -> str:
    return "x".join(str(n) for n in value) if isinstance(value, tuple) else str(value)


def _pattern_key(frame: Frame) -> Hashable:
    """The colour-filter layout as one reads it: "RGGB", or "6x6 GGRGGB..." for larger repeats."""
    if frame.layout is None:
        return None
    letters = "".join(frame.layout.colors[i] for i in frame.layout.pattern.ravel())
    h, w = frame.layout.pattern.shape
    return letters if (h, w) == (2, 2) else f"{h}x{w} {letters}"


def _one_per_frame(problems: list[Problem]) -> list[Problem]:
    """The first problem found for each frame: one clear reason beats a list of consequences."""
    seen: set[Path | None] = set()
    kept = []
    for problem in problems:
        if problem.frame not in seen:
            seen.add(problem.frame)
            kept.append(problem)
    return kept


@dataclass(frozen=True)
class Sample:
    """What the pixel checks need of one frame, taken in the thread that decoded it (so it overlaps decoding)."""

    level: float  # median signal above black in the central window
    spectrum: npt.NDArray[np.complexfloating] | None  # of the central window's plane; None: too small to tell
    scale: tuple[int, int]  # sensor pixels per plane pixel (y, x)


def sample(frame: Frame) -> Sample:
    plane, scale = _plane(frame)
    spectrum = _spectrum(plane) if min(plane.shape) >= MIN_PLANE_SIDE else None
    return Sample(float(np.median(plane)), spectrum, scale)


def measure(samples: Sequence[Sample], mapper: Mapper = map) -> list[FrameStats]:
    """Level and shift of every frame (the frames must already agree on size and layout).

    Shifts are measured against the first frame, then taken relative to the median of all shifts: the position
    most frames share is right, even when the first frame is the one that moved. `mapper` (a thread pool's map)
    spreads the correlations over the cores; NumPy's FFT releases the GIL.
    """
    first = samples[0].spectrum

    def against_first(s: Sample) -> tuple[float, float] | None:
        return None if first is None or s.spectrum is None else _correlate(first, s.spectrum)

    raw_shifts = [(0.0, 0.0) if first is not None else None, *mapper(against_first, samples[1:])]
    known = [s for s in raw_shifts if s is not None]
    centre = np.median(np.asarray(known), axis=0) if known else np.zeros(2)
    stats = []
    for s, shift in zip(samples, raw_shifts, strict=True):
        sy, sx = s.scale
        relative = None if shift is None else ((shift[0] - centre[0]) * sy, (shift[1] - centre[1]) * sx)
        stats.append(FrameStats(s.level, relative))
    return stats


def pixel_problems(
    frames: Sequence[Frame], stats: Sequence[FrameStats], level_tolerance: float, max_shift_px: float
) -> list[Problem]:
    """Frames brighter or darker than the stack beyond tolerance, or shifted beyond `max_shift_px`."""
    problems = []
    usual = float(np.median([s.level for s in stats]))
    for frame, s in zip(frames, stats, strict=True):
        if usual > 0 and abs(s.level / usual - 1) > level_tolerance:
            change = s.level / usual - 1
            problems.append(
                Problem(
                    frame.path,
                    f"{abs(change):.1%} {'brighter' if change > 0 else 'darker'} than the other frames "
                    f"(tolerance {level_tolerance:.1%}): flicker, or a setting changed during the burst",
                )
            )
        elif s.shift is not None and np.hypot(*s.shift) > max_shift_px:
            problems.append(
                Problem(
                    frame.path,
                    f"shifted by {s.shift[1]:+.1f} px horizontally and {s.shift[0]:+.1f} px vertically against "
                    f"the other frames (limit {max_shift_px} px): the camera or the negative moved",
                )
            )
    return problems


def central_window(frame: Frame) -> tuple[tuple[slice, slice], tuple[int, int]]:
    """The central window of the active area, at most PLANE_MAX_SIDE CFA repeats a side, aligned to the CFA
    repeat, and the repeat size (y, x): where the checks and the noise estimate look."""
    if frame.layout is not None:
        top, left, bottom, right = frame.layout.active_area
        by, bx = frame.layout.pattern.shape
    else:
        top, left, bottom, right = 0, 0, frame.pixels.shape[0], frame.pixels.shape[1]
        by = bx = 1
    rows, cols = (bottom - top) // by, (right - left) // bx
    h, w = min(rows, PLANE_MAX_SIDE) // 2 * 2, min(cols, PLANE_MAX_SIDE) // 2 * 2  # even: rfft sizes are exact
    y0, x0 = top + (rows - h) // 2 * by, left + (cols - w) // 2 * bx
    return (slice(y0, y0 + h * by), slice(x0, x0 + w * bx)), (by, bx)


def _plane(frame: Frame) -> tuple[npt.NDArray[np.float32], tuple[int, int]]:
    """A luminance-like plane of the frame's central window, black subtracted, and the sensor pixels per plane
    pixel (y, x).

    Binning whole CFA repeats makes the plane independent of the colour-filter phase. The window keeps full
    resolution for the shift estimate and costs the same on any sensor; flicker and a bumped dial change the
    whole frame, so its median level stands for the frame's, while a local artefact (a hair, a speck) does not
    move the median.
    """
    (rows, cols), (by, bx) = central_window(frame)
    window = frame.pixels[rows, cols]
    plane = np.zeros((window.shape[0] // by, window.shape[1] // bx), dtype=np.float32)
    for dy in range(by):  # a sum of strided views: far quicker than a mean over reshaped axes
        for dx in range(bx):
            part = window[dy::by, dx::bx]
            plane += part.sum(axis=2, dtype=np.float32) if part.ndim == 3 else part
    count = by * bx * (window.shape[2] if window.ndim == 3 else 1)
    black = 0.0
    if frame.layout is not None:
        black = float(np.mean(np.asarray(frame.layout.black_levels)[frame.layout.pattern]))
    plane *= np.float32(1 / count)
    plane -= np.float32(black)
    return plane, (by, bx)


def phase_shift(reference: npt.NDArray[np.floating], moving: npt.NDArray[np.floating]) -> tuple[float, float] | None:
    """Sub-pixel translation (dy, dx) of `moving` against `reference` by phase correlation; None if the
    images hold too little structure for the estimate to mean anything."""
    return _correlate(_spectrum(reference), _spectrum(moving))


def _spectrum(image: npt.NDArray[np.floating]) -> npt.NDArray[np.complexfloating]:
    """The windowed spectrum of an image, after clipping its darkest and brightest few percent: dust specks and
    hot pixels are sharp, and phase correlation would otherwise lock onto them rather than onto the scene."""
    low, high = np.percentile(image, [CLIP_PERCENT, 100 - CLIP_PERCENT])
    clipped = np.clip(image, low, high)
    h, w = image.shape
    window = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    return np.fft.rfft2((clipped - clipped.mean()) * window).astype(np.complex64)


def _correlate(fa: npt.NDArray[np.complexfloating], fb: npt.NDArray[np.complexfloating]) -> tuple[float, float] | None:
    """Phase correlation of two spectra. The cross-power spectrum is weighted by a Gaussian so the correlation
    peak is a Gaussian about one pixel wide: a parabola through the logarithms of its three top samples then
    finds the centre without bias."""
    h, w = fa.shape[0], (fa.shape[1] - 1) * 2  # planes have even sides
    cross = fb * np.conj(fa)
    cross /= np.abs(cross) + 1e-12
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    cross *= np.exp(-(fy**2 + fx**2) / (2 * 0.16**2))
    surface = np.fft.irfft2(cross, s=(h, w))
    iy, ix = np.unravel_index(int(np.argmax(surface)), surface.shape)
    peak = surface[iy, ix]
    if peak <= 0 or peak < _PEAK_SIGNIFICANCE * surface.std():
        return None

    def refine(before: float, at: float, after: float) -> float:
        if min(before, at, after) <= 0:
            return 0.0
        lb, la, lc = np.log(before), np.log(at), np.log(after)
        denom = lb - 2 * la + lc
        return float(0.5 * (lb - lc) / denom) if denom < 0 else 0.0

    dy = iy + refine(surface[iy - 1, ix], peak, surface[(iy + 1) % h, ix])
    dx = ix + refine(surface[iy, ix - 1], peak, surface[iy, (ix + 1) % w])
    dy = dy - h if dy > h / 2 else dy
    dx = dx - w if dx > w / 2 else dx
    return float(dy), float(dx)
