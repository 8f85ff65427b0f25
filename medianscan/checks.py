"""Does this stack differ only in noise? Every check names the frame that breaks it and why.

A median of frames that are not the same picture is a wrong image that looks plausible, so the checks run before
every blend: same body and CFA layout, same levels and exposure metadata, the same overall brightness (flicker,
a bumped dial), and no frame shifted against the others (a bumped copy stand). For attributes that should be
equal, the value most frames share is taken as right and the others are named.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from medianscan.frames import Frame

MIN_FRAMES = 3
PLANE_MAX_SIDE = 768  # alignment plane size: enough for 0.1 px precision, cheap to FFT
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

    level: float  # mean signal above black over the active area, in raw units
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
    if frame.layout is None:
        return None
    return ("".join(frame.layout.colors[i] for i in frame.layout.pattern.ravel()), frame.layout.pattern.shape)


def _one_per_frame(problems: list[Problem]) -> list[Problem]:
    """The first problem found for each frame: one clear reason beats a list of consequences."""
    seen: set[Path | None] = set()
    kept = []
    for problem in problems:
        if problem.frame not in seen:
            seen.add(problem.frame)
            kept.append(problem)
    return kept


def measure(frames: Sequence[Frame]) -> list[FrameStats]:
    """Level and shift of every frame (the frames must already agree on size and layout)."""
    planes = [_plane(f) for f in frames]
    levels = [float(p.mean()) for p, _ in planes]
    reference = np.median(np.stack([p for p, _ in planes]), axis=0)
    stats = []
    for (plane, scale), level in zip(planes, levels, strict=True):
        shift = phase_shift(reference, plane)
        stats.append(FrameStats(level, None if shift is None else (shift[0] * scale[0], shift[1] * scale[1])))
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


def _plane(frame: Frame) -> tuple[npt.NDArray[np.float32], tuple[int, int]]:
    """A small luminance-like plane of the active area, and the sensor pixels per plane pixel (y, x).

    Binning whole CFA repeats makes the plane independent of the colour-filter phase; further block
    averaging keeps it under PLANE_MAX_SIDE.
    """
    pixels = frame.pixels
    if frame.layout is not None:
        top, left, bottom, right = frame.layout.active_area
        image = pixels[top:bottom, left:right].astype(np.float32)
        black = frame.layout.black_level_image((image.shape[0], image.shape[1]))
        image -= black
        by, bx = frame.layout.pattern.shape
    else:
        image = pixels.astype(np.float32)
        if image.ndim == 3:
            image = image.mean(axis=2)
        by = bx = 1
    factor = max(1, int(np.ceil(max(image.shape[0] / by, image.shape[1] / bx) / PLANE_MAX_SIDE)))
    by, bx = by * factor, bx * factor
    h, w = image.shape[0] // by, image.shape[1] // bx
    plane = image[: h * by, : w * bx].reshape(h, by, w, bx).mean(axis=(1, 3), dtype=np.float32)
    return plane, (by, bx)


def phase_shift(reference: npt.NDArray[np.floating], moving: npt.NDArray[np.floating]) -> tuple[float, float] | None:
    """Sub-pixel translation (dy, dx) of `moving` against `reference` by phase correlation; None if the
    images hold too little structure for the estimate to mean anything.

    The cross-power spectrum is weighted by a Gaussian so the correlation peak is a Gaussian about one pixel wide:
    a parabola through the logarithms of its three top samples then finds the centre without bias.
    """
    h, w = reference.shape
    window = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    fa = np.fft.rfft2((reference - reference.mean()) * window)
    fb = np.fft.rfft2((moving - moving.mean()) * window)
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
