"""Does this stack differ only in noise? Every check names the frame that breaks it and why.

A median of frames that are not the same picture is a wrong image that looks plausible, so the checks run before
every blend: same body and CFA layout, same levels and exposure metadata, the same overall brightness (flicker,
a bumped dial), and no frame shifted against the others (a bumped copy stand). For attributes that should be
equal, the value most frames share is taken as right and the others are named.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from medianscan.blend.measuring import consistency, registration
from medianscan.blend.reading.frames import Frame
from medianscan.records import LeftOut

MIN_FRAMES = 3
Mapper = Callable[[Callable[[Any], Any], Iterable[Any]], Iterator[Any]]
PLANE_MAX_SIDE = 384  # CFA repeats a side of the measured window: 0.1 px precision, cheap on any sensor
REGISTERED_SIDE = 384  # plane pixels a side registered for the shift: 0.02 px on a low-texture X-Trans scene
MEASURABLE_PX = 0.15  # a shift whose standard error (sensor px) is larger is "not measurable", never a refusal


@dataclass(frozen=True)
class WholeStack:
    """Why the stack as a whole cannot be blended: no frame is the odd one out, so none can be left out."""

    reason: str

    def __str__(self) -> str:
        return self.reason


Problem = LeftOut | WholeStack  # a frame that cannot be blended and why (the record's own), or the whole stack's


@dataclass(frozen=True)
class FrameStats:
    """What the pixel checks measured on one frame (kept in the sidecar)."""

    level: float  # median signal above black in the central window, in raw units (robust to dust and streaks)
    shift: tuple[float, float] | None  # (dy, dx) in sensor pixels against the stack; None if not measurable
    differs: float = 0.0  # share of the picture that differs from the stack beyond noise (blend.consistency)


def _majority(values: Sequence[Hashable]) -> Hashable:
    return Counter(values).most_common(1)[0][0]


def _disagreeing(
    frames: Sequence[Frame],
    key: Callable[[Frame], Hashable],
    what: str,
    show: Callable[[Hashable], str] = str,
) -> list[LeftOut]:
    """Frames whose `key` differs from the value most frames share."""
    if not frames:
        return []
    values = [key(f) for f in frames]
    usual = _majority(values)
    return [
        LeftOut(f.path, f"{what} {show(v)} differs from the other frames' {show(usual)}")
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
    split = _bodies_split(frames)
    if split is not None:
        return [split]
    problems: list[LeftOut] = []
    problems += _disagreeing(frames, lambda f: f.kind, "file type")
    problems += _disagreeing(frames, _body_name, "camera")
    problems += _disagreeing(frames, lambda f: f.camera.serial, "camera serial", lambda v: str(v) or "unknown")
    problems += _disagreeing(frames, lambda f: f.pixels.shape, "size", _fmt_shape)
    problems += _disagreeing(frames, lambda f: f.pixels.dtype.str, "bit depth")
    problems += [
        LeftOut(p.path, p.reason + " (exported in another colour space?)")
        for p in _disagreeing(frames, lambda f: f.icc, "colour profile", _profile_name)
    ]
    problems += _disagreeing(frames, _pattern_key, "CFA pattern")
    problems += _disagreeing(frames, lambda f: f.layout.black_levels if f.layout else None, "black level")
    problems += _disagreeing(frames, lambda f: f.layout.white_level if f.layout else None, "white level")
    problems += _disagreeing(frames, lambda f: f.exposure.iso, "ISO", _fmt_number)
    if same_shutter:
        shutter = _disagreeing(frames, lambda f: f.exposure.exposure_time, "shutter", _fmt_seconds)
        hint = " (a bracket of exposures? merge it with --bracket, or blend.bracket: true)"
        problems += [LeftOut(p.path, p.reason + hint) for p in shutter]
    problems += _disagreeing(frames, lambda f: f.exposure.f_number, "aperture", lambda v: f"f/{_fmt_number(v)}")
    return _one_per_frame(problems)


def _body_name(frame: Frame) -> str:
    return frame.camera.model or frame.camera.make or "unknown"


def _bodies_split(frames: Sequence[Frame]) -> WholeStack | None:
    """Frames of several cameras with none holding a strict majority: no body is "the stack" and the others
    strays, so the split itself is the problem (the whole stack's), named body by body."""
    bodies = Counter((_body_name(f), f.camera.serial) for f in frames)
    if len(bodies) < 2 or 2 * bodies.most_common(1)[0][1] > len(frames):
        return None
    models = Counter(model for model, _ in bodies)

    def said(body: tuple[str, str | None]) -> str:
        model, serial = body
        name = f"{model} (serial {serial or 'unknown'})" if models[model] > 1 else model
        files = [f.path.name for f in frames if (_body_name(f), f.camera.serial) == body]
        shown = ", ".join(files[:3]) + (", ..." if len(files) > 3 else "")
        return f"{len(files)} of {name} ({shown})"

    return WholeStack(
        f"frames of {len(bodies)} cameras and none is most of them: "
        + "; ".join(said(b) for b, _ in bodies.most_common())
        + "; blend each camera's frames as a stack of its own",
    )


def _profile_name(value: Hashable) -> str:
    """An embedded ICC profile, told apart by size and digest (the frames of one burst carry the same bytes)."""
    if not isinstance(value, bytes):
        return "none"
    return f"of {len(value)} bytes (sha256 {hashlib.sha256(value).hexdigest()[:8]})"


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


def _one_per_frame(problems: list[LeftOut]) -> list[Problem]:
    """The first problem found for each frame: one clear reason beats a list of consequences."""
    seen: set[Path] = set()
    kept: list[Problem] = []
    for problem in problems:
        if problem.path not in seen:
            seen.add(problem.path)
            kept.append(problem)
    return kept


def left_out(problems: Sequence[Problem]) -> list[LeftOut]:
    """The frames among `problems` (a whole-stack problem names none)."""
    return [p for p in problems if isinstance(p, LeftOut)]


@dataclass(frozen=True)
class Sample:
    """What the pixel checks need of one frame, taken in the thread that decoded it (so it overlaps decoding)."""

    level: float  # median signal above black in the central window
    plane: npt.NDArray[np.float32]  # the central window binned to colour-balanced cells (see _plane)
    scale: tuple[int, int]  # sensor pixels per plane pixel (y, x)
    picture: npt.NDArray[np.float32]  # the whole picture, coarsely binned (see consistency.picture_plane)
    picture_scale: tuple[float, float]  # sensor pixels per picture pixel (y, x)


def sample(frame: Frame) -> Sample:
    plane, scale = _plane(frame)
    picture, picture_scale = consistency.picture_plane(frame)
    return Sample(float(np.median(plane)), plane, scale, picture, picture_scale)


def measure(samples: Sequence[Sample], mapper: Mapper = map) -> list[FrameStats]:
    """Level, shift and difference from the others of every frame (the frames must already agree on size and
    layout).

    Each frame is registered against the first (robustly: a speck of dust or a hair in either frame carries no
    weight, see medianscan.blend.measuring.registration); the shifts are then taken relative to their median: the
    position most frames share is right, even when the first frame is the one that moved. `mapper` (a thread pool's map)
    spreads the registrations over the cores (NumPy and SciPy release the GIL).
    """
    planes = [s.plane for s in samples]
    measurable = min(planes[0].shape) >= registration.MIN_PLANE_SIDE and all(p.shape == planes[0].shape for p in planes)
    raw_shifts: list[tuple[float, float] | None] = [None] * len(samples)
    if measurable:
        target = registration.Reference(planes[0])
        sy, sx = samples[0].scale
        tolerance = MEASURABLE_PX / max(sy, sx)
        raw_shifts = [(0.0, 0.0), *mapper(lambda p: target.register(p, tolerance), planes[1:])]
        if all(s is None for s in raw_shifts[1:]):
            raw_shifts[0] = None  # nothing measurable against it: the first frame's position is unknown too
    known = [s for s in raw_shifts if s is not None]
    centre = np.median(np.asarray(known), axis=0) if known else np.zeros(2)
    relative: list[tuple[float, float] | None] = [
        None if shift is None else ((shift[0] - centre[0]) * s.scale[0], (shift[1] - centre[1]) * s.scale[1])
        for s, shift in zip(samples, raw_shifts, strict=True)
    ]
    differs = consistency.differing_shares([s.picture for s in samples], relative, samples[0].picture_scale)
    return [FrameStats(s.level, shift, share) for s, shift, share in zip(samples, relative, differs, strict=True)]


def pixel_problems(
    frames: Sequence[Frame], stats: Sequence[FrameStats], level_tolerance: float, max_shift_px: float
) -> list[LeftOut]:
    """Frames brighter or darker than the stack beyond tolerance, shifted beyond `max_shift_px`, or not the same
    picture as the others (see medianscan.blend.measuring.consistency)."""
    problems: list[LeftOut] = []
    usual = float(np.median([s.level for s in stats]))
    for frame, s in zip(frames, stats, strict=True):
        if usual > 0 and abs(s.level / usual - 1) > level_tolerance:
            change = s.level / usual - 1
            problems.append(
                LeftOut(
                    frame.path,
                    f"{abs(change):.1%} {'brighter' if change > 0 else 'darker'} than the other frames "
                    f"(tolerance {level_tolerance:.1%}): flicker, or a setting changed during the burst",
                )
            )
        elif s.shift is not None and np.hypot(*s.shift) > max_shift_px:
            problems.append(
                LeftOut(
                    frame.path,
                    f"shifted by {s.shift[1]:+.1f} px horizontally and {s.shift[0]:+.1f} px vertically against "
                    f"the other frames (limit {max_shift_px} px): the camera or the negative moved",
                )
            )
        elif s.differs > consistency.DIFFERS_SHARE:
            problems.append(
                LeftOut(
                    frame.path,
                    f"not the same picture as the others: {s.differs:.0%} of the area differs beyond noise (a frame "
                    "from the previous negative? the film moved? something shaded it?)",
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
