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
from scipy import ndimage

from medianscan.blend.frames import Frame

MIN_FRAMES = 3
Mapper = Callable[[Callable[[Any], Any], Iterable[Any]], Iterator[Any]]
PLANE_MAX_SIDE = 384  # CFA repeats a side of the measured window: 0.1 px precision, cheap on any sensor
REGISTERED_SIDE = 384  # plane pixels a side registered for the shift: 0.02 px on a low-texture X-Trans scene
MIN_PLANE_SIDE = 64  # below this many plane pixels a side, a shift cannot be measured reliably
MIN_TEXTURE = 4.0  # the reference's gradient energy over what its noise alone gives, below which no shift is told
MEASURABLE_PX = 0.15  # a shift whose standard error (sensor px) is larger is "not measurable", never a refusal


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


def metadata_problems(frames: Sequence[Frame], *, same_shutter: bool = True) -> list[Problem]:
    """Frames that differ in body, format, geometry, CFA layout, levels or recorded exposure (the shutter time
    only when `same_shutter`: a bracket's groups differ in it by design)."""
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
    if same_shutter:
        shutter = _disagreeing(frames, lambda f: f.exposure.exposure_time, "shutter", _fmt_seconds)
        hint = " (a bracket of exposures? merge it with --bracket, or blend.bracket: true)"
        problems += [Problem(p.frame, p.reason + hint) for p in shutter]
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
    if frame.layout.linear:
        return "none (linear RGB)"
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
    plane: npt.NDArray[np.float32]  # the central window binned to colour-balanced cells (see _plane)
    scale: tuple[int, int]  # sensor pixels per plane pixel (y, x)


def sample(frame: Frame) -> Sample:
    plane, scale = _plane(frame)
    return Sample(float(np.median(plane)), plane, scale)


def measure(samples: Sequence[Sample], mapper: Mapper = map) -> list[FrameStats]:
    """Level and shift of every frame (the frames must already agree on size and layout).

    Each frame is registered against the first (robustly: a speck of dust or a hair in either frame carries no
    weight, see _Reference); the shifts are then taken relative to their median: the position most frames share
    is right, even when the first frame is the one that moved. `mapper` (a thread pool's map) spreads the
    registrations over the cores (NumPy and SciPy release the GIL).
    """
    planes = [s.plane for s in samples]
    measurable = min(planes[0].shape) >= MIN_PLANE_SIDE and all(p.shape == planes[0].shape for p in planes)
    raw_shifts: list[tuple[float, float] | None] = [None] * len(samples)
    if measurable:
        target = _Reference(planes[0])
        sy, sx = samples[0].scale
        tolerance = MEASURABLE_PX / max(sy, sx)
        raw_shifts = [(0.0, 0.0), *mapper(lambda p: target.register(p, tolerance), planes[1:])]
        if all(s is None for s in raw_shifts[1:]):
            raw_shifts[0] = None  # nothing measurable against it: the first frame's position is unknown too
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
    h, w = min(rows, PLANE_MAX_SIDE) // 2 * 2, min(cols, PLANE_MAX_SIDE) // 2 * 2
    y0, x0 = top + (rows - h) // 2 * by, left + (cols - w) // 2 * bx
    return (slice(y0, y0 + h * by), slice(x0, x0 + w * bx)), (by, bx)


def colour_balanced_cell(pattern: npt.NDArray[np.uint8]) -> tuple[int, int]:
    """The smallest cell (y, x) tiling the CFA repeat in which every colour occurs equally often at every
    position: 2x2 for Bayer and 4-colour CFAs, 3x3 for X-Trans (5 green, 2 red, 2 blue in each), the whole
    repeat for anything else. Summed over such cells, a mosaic is a luminance-like plane with no CFA pattern
    left in it, at the finest resolution the CFA allows."""
    by, bx = pattern.shape
    cells = [(cy, cx) for cy in range(1, by + 1) for cx in range(1, bx + 1) if by % cy == 0 and bx % cx == 0]
    for cy, cx in sorted(cells, key=lambda c: (c[0] * c[1], c)):
        blocks = pattern.reshape(by // cy, cy, bx // cx, cx).transpose(0, 2, 1, 3).reshape(-1, cy * cx)
        counts = {tuple(np.bincount(b, minlength=int(pattern.max()) + 1)) for b in blocks}
        if len(counts) == 1 and all(counts.pop()):  # every colour present, the same counts in every cell
            return cy, cx
    return by, bx


def _plane(frame: Frame) -> tuple[npt.NDArray[np.float32], tuple[int, int]]:
    """A luminance-like plane of the frame's central window, black subtracted, and the sensor pixels per plane
    pixel (y, x).

    Summing colour-balanced cells (see colour_balanced_cell) makes the plane independent of the colour-filter
    layout and phase, at twice the resolution of whole X-Trans repeats. The window costs the same on any sensor;
    flicker and a bumped dial change the whole frame, so its median level stands for the frame's, while a local
    artefact (a hair, a speck) does not move the median.
    """
    (rows, cols), _ = central_window(frame)
    by, bx = colour_balanced_cell(frame.layout.pattern) if frame.layout is not None else (1, 1)
    window = frame.pixels[rows, cols]
    h, w = (min(n // c, REGISTERED_SIDE) for n, c in zip(window.shape[:2], (by, bx), strict=True))
    y0, x0 = (window.shape[0] // by - h) // 2 * by, (window.shape[1] // bx - w) // 2 * bx
    window = window[y0 : y0 + h * by, x0 : x0 + w * bx]
    plane = np.zeros((h, w), dtype=np.float32)
    for dy in range(by):  # a sum of strided views: far quicker than a mean over reshaped axes
        for dx in range(bx):
            part = window[dy::by, dx::bx][: plane.shape[0], : plane.shape[1]]
            plane += part.sum(axis=2, dtype=np.float32) if part.ndim == 3 else part
    count = by * bx * (window.shape[2] if window.ndim == 3 else 1)
    black = 0.0
    if frame.layout is not None:
        layout = frame.layout
        black = float(
            np.mean(layout.black_levels if layout.linear else np.asarray(layout.black_levels)[layout.pattern])
        )
    plane *= np.float32(1 / count)
    plane -= np.float32(black)
    return plane, (by, bx)


def measure_shift(reference: npt.NDArray[np.floating], moving: npt.NDArray[np.floating]) -> tuple[float, float] | None:
    """Sub-pixel translation (dy, dx) of `moving` against `reference`, in plane pixels; None if the images hold
    too little structure for the estimate to be good to a tenth of a pixel."""
    return _Reference(np.asarray(reference, dtype=np.float32)).register(np.asarray(moving, np.float32), 0.1)


class _Reference:
    """A reference plane prepared for registration: an image pyramid and its gradients, shared by every frame.

    Registration is robust Lucas-Kanade, coarse to fine: at each level the shift is refined by least squares on
    the reference's gradients, with Tukey weights on the residuals, so a dust speck, a hair or a hot cluster in
    one frame carries no weight instead of pulling the estimate (phase correlation locks onto such outliers on a
    low-texture scene). The same least squares give the estimate's standard error from the residual noise: a
    scene with too little texture to tell a shift is "not measurable", never a false "the camera moved".
    """

    def __init__(self, plane: npt.NDArray[np.float32]) -> None:
        self.levels: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]] = []
        image = plane
        while True:
            smooth = ndimage.gaussian_filter(image, 1.0)
            gy, gx = np.gradient(smooth)
            self.levels.append((smooth, gy.astype(np.float32), gx.astype(np.float32)))
            if min(image.shape) < 2 * MIN_PLANE_SIDE:
                break
            image = _half(image)

    def register(self, plane: npt.NDArray[np.float32], tolerance: float) -> tuple[float, float] | None:
        """The shift of `plane` against the reference, or None when its standard error exceeds `tolerance`."""
        moving = [plane]
        while len(moving) < len(self.levels):
            moving.append(_half(moving[-1]))
        shift = np.zeros(2)
        error = np.inf
        for level in range(len(self.levels) - 1, -1, -1):
            shift *= 2 if level < len(self.levels) - 1 else 1
            smooth = ndimage.gaussian_filter(moving[level], 1.0)
            for _ in range(_ITERATIONS):
                solved = _step(self.levels[level], smooth, shift)
                if solved is None:
                    return None
                step, error = solved
                shift -= step
                if np.hypot(*step) < _CONVERGED:
                    break
        if not np.isfinite(error) or error > tolerance:
            return None
        return float(shift[0]), float(shift[1])


_ITERATIONS = 10
_CONVERGED = 0.005  # plane px: a step this small changes nothing the limit could see
_TUKEY = 4.685  # Tukey biweight constant, in robust sigmas: 95% efficiency on Gaussian noise


def _seen_back(image: npt.NDArray[np.float32], shift: npt.NDArray[np.float64], margin: int) -> npt.NDArray[np.float32]:
    """`image` moved back by `shift` (bilinear), inside a border of `margin` (at least the shift plus one):
    four weighted views of the image, with no copy of the whole and no edge handling needed."""
    iy, ix = int(np.floor(shift[0])), int(np.floor(shift[1]))
    fy, fx = np.float32(shift[0] - iy), np.float32(shift[1] - ix)
    h, w = image.shape

    def view(dy: int, dx: int) -> npt.NDArray[np.float32]:
        return image[margin + dy : h - margin + dy, margin + dx : w - margin + dx]

    gx, gy = np.float32(1) - fx, np.float32(1) - fy
    top = view(iy, ix) * gx + view(iy, ix + 1) * fx
    bottom = view(iy + 1, ix) * gx + view(iy + 1, ix + 1) * fx
    return np.asarray(top * gy + bottom * fy, dtype=np.float32)


def _half(image: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    half: npt.NDArray[np.float32] = image[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3), dtype=np.float32)
    return half


def _step(
    level: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]],
    moving: npt.NDArray[np.float32],
    shift: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], float] | None:
    """One weighted least-squares refinement: (the correction to subtract from `shift`, its standard error)."""
    reference, gy, gx = level
    margin = int(np.ceil(np.abs(shift).max())) + 3
    if 2 * margin >= min(reference.shape) - 8:
        return None  # shifted by most of the window: nothing left to compare
    inner = (slice(margin, -margin), slice(margin, -margin))
    residual = _seen_back(moving, shift, margin) - reference[inner]
    jy, jx = gy[inner], gx[inner]
    some = residual[::3, ::3]  # a robust spread needs no more than every ninth pixel
    centre = np.float32(np.median(some))
    sigma = 1.4826 * float(np.median(np.abs(some - centre)))
    residual -= centre
    if sigma <= 0:
        return None
    u = residual * np.float32(1 / (_TUKEY * sigma))
    weight = np.clip(1 - u * u, 0, None) ** 2
    wy, wx = weight * jy, weight * jx
    syy, sxy, sxx = float(np.vdot(wy, jy)), float(np.vdot(wy, jx)), float(np.vdot(wx, jx))
    a = np.array([[syy, sxy], [sxy, sxx]])
    b = np.array([float(np.vdot(wy, residual)), float(np.vdot(wx, residual))])
    try:
        inverse = np.linalg.inv(a)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(inverse)):
        return None
    # The reference's own noise makes gradients too: below a few times that energy there is no texture to
    # register on (a blank or defocused frame), and the least squares would fit noise to noise.
    noise_energy = _GRADIENT_GAIN * sigma**2 / 2 * float(np.sum(weight))
    if np.trace(a) < MIN_TEXTURE * noise_energy:
        return None
    error = sigma * float(np.sqrt(max(np.linalg.eigvalsh(inverse).max(), 0.0)))
    return inverse @ b, error


def _gradient_gain() -> float:
    """E[|gradient|^2] / variance of white noise after the smoothing the registration applies (measured once):
    the residual's spread, which is of smoothed noise, then tells the gradient energy noise alone gives."""
    noise = np.random.default_rng(0).normal(0.0, 1.0, (256, 256)).astype(np.float32)
    smooth = ndimage.gaussian_filter(noise, 1.0)
    gy, gx = np.gradient(smooth)
    smooth = smooth[8:-8, 8:-8]
    return float((np.var(gy[8:-8, 8:-8]) + np.var(gx[8:-8, 8:-8])) / np.var(smooth))


_GRADIENT_GAIN = _gradient_gain()
