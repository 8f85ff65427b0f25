"""`medianscan calibrate rig`: how an XY stage moves the picture, measured in live view.

Each axis is moved a known distance out and back; the picture's shift is measured by phase correlation of the
still previews (numpy's FFT, then a sub-pixel least-squares refinement on the overlap), giving for each axis
the picture's shift per mm (its scale and its angle to the sensor: a stage a fraction of a degree off square)
and its backlash, the shortfall of the move back. Before each axis its slack is taken up in the + direction, so
the move out is whole and only the move back loses the play. Preview pixels become sensor photosites by one move
seen on two raws as well (a preview may crop the sensor's edges), else by the ratio of the sensor's size to the
preview's.

The record (`RigCalibration`) is written to `<library>/rig-calibration.json`: the plan (capture.rig.tile_plan)
takes its scale and backlash, and the stitch gets the tiles' places from it, the grid turned as the stage is.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from medianscan.atomic import write_json
from medianscan.capture.rig.base import Rig
from medianscan.capture.rig.settle import Preview, View, measure_noise, settle
from medianscan.capture.rig.tile_plan import StageScale
from medianscan.errors import MedianscanError

log = logging.getLogger(__name__)

CALIBRATION_FILE = "rig-calibration.json"
PROBE_MM = 0.5  # the first, small move: the scale, roughly, so the real move stays well inside the view
SHARE_OF_VIEW = 0.4  # the measured move shifts the picture by this share of the view's shorter side
TAKE_UP_MM = 1.0  # each axis is moved back and forth this far first: its slack then lies one known way
BACKLASH_MM = 0.5  # the play is measured on short moves: a move's slip (a share of its length) stays small
MIN_SHIFT_PX = 1.0  # a probe that moves the picture less than this: the axis does not move it
MIN_NCC = 0.5  # a reading whose overlap correlates less than this is no match


class RigCalibrationError(MedianscanError):
    """The rig cannot be calibrated; the sentence says why and what to check."""


@dataclass(frozen=True)
class AxisMeasure:
    """One axis: the picture's shift (dx, dy) in sensor photosites per mm of it, and its backlash in mm."""

    shift_per_mm: tuple[float, float]
    backlash_mm: float
    photosites_per_preview_px: float = 0.0  # along this axis, measured on raws (0: not measured)

    @property
    def photosites_per_mm(self) -> float:
        return math.hypot(*self.shift_per_mm)


@dataclass(frozen=True)
class RigCalibration:
    """What `medianscan calibrate rig` measured (see the module)."""

    x: AxisMeasure
    y: AxisMeasure
    sensor: tuple[int, int]  # width, height in photosites
    preview: tuple[int, int]  # the live view's width, height
    live_view_noise: float  # RMS difference of two previews at rest, code values
    measured: str = ""  # when (local time, ISO)

    def scale(self) -> StageScale:
        measured = (self.x.photosites_per_preview_px, self.y.photosites_per_preview_px)
        preview_px = measured if all(measured) else None
        return StageScale(self.x.shift_per_mm, self.y.shift_per_mm, self.sensor,
                          (self.x.backlash_mm, self.y.backlash_mm), preview_px)  # fmt: skip

    @property
    def x_degrees(self) -> float:
        """X's angle to the sensor's rows (the picture moving along -x or +x: 0)."""
        dx, dy = self.x.shift_per_mm
        return math.degrees(math.atan2(dy, abs(dx))) * (1 if dx >= 0 else -1)

    @property
    def y_degrees(self) -> float:
        """Y's angle to the sensor's columns, the same way round as X's (a stage turned as a whole: equal)."""
        dx, dy = self.y.shift_per_mm
        return -math.degrees(math.atan2(dx, abs(dy))) * (1 if dy >= 0 else -1)

    @property
    def skew_degrees(self) -> float:
        """How far the axes are from square to each other."""
        return self.x_degrees - self.y_degrees

    def said(self) -> str:
        return (
            f"X {self.x.photosites_per_mm:.2f} photosites/mm, {self.x_degrees:+.3f} deg to the sensor, backlash "
            f"{self.x.backlash_mm:.3f} mm; Y {self.y.photosites_per_mm:.2f} photosites/mm, {self.y_degrees:+.3f} deg,"
            f" backlash {self.y.backlash_mm:.3f} mm; the view {self.scale().view_mm[0]:.1f} x "
            f"{self.scale().view_mm[1]:.1f} mm"
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"x_degrees": self.x_degrees, "y_degrees": self.y_degrees}


def calibration_path(library: Path) -> Path:
    return library.expanduser() / CALIBRATION_FILE


def save(calibration: RigCalibration, library: Path) -> Path:
    path = calibration_path(library)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, calibration.to_json())
    return path


def load(library: Path) -> RigCalibration:
    """The rig's calibration; RigCalibrationError saying to calibrate when there is none or it is unreadable."""
    path = calibration_path(library)
    try:
        data = json.loads(path.read_text())
        return RigCalibration(
            _axis_json(data["x"]),
            _axis_json(data["y"]),
            (int(data["sensor"][0]), int(data["sensor"][1])),
            (int(data["preview"][0]), int(data["preview"][1])),
            float(data["live_view_noise"]),
            str(data.get("measured", "")),
        )
    except FileNotFoundError:
        raise RigCalibrationError(f"the rig is not calibrated ({path} is missing): run `medianscan calibrate rig` "
                                  "with a negative on the stage") from None  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise RigCalibrationError(f"{path}: cannot read the rig's calibration ({exc}): run `medianscan calibrate "
                                  "rig` again") from None  # fmt: skip


def _axis_json(data: dict[str, Any]) -> AxisMeasure:
    dx, dy = data["shift_per_mm"]
    return AxisMeasure((float(dx), float(dy)), float(data["backlash_mm"]),
                       float(data.get("photosites_per_preview_px", 0.0)))  # fmt: skip


# --- the picture's shift -----------------------------------------------------------------------------------


def _taper(n: int, share: float = 0.08) -> npt.NDArray[np.float64]:
    """Flat in the middle, falling to 0 over `share` of each end (a Tukey window): the edges, where a small
    overlap lies, keep their weight; the wrap-around's seam does not ring."""
    ramp = max(1, int(n * share))
    window = np.ones(n)
    edge = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp) + 0.5) / ramp)
    window[:ramp], window[n - ramp :] = edge, edge[::-1]
    return window


def _window(shape: tuple[int, ...]) -> npt.NDArray[np.float64]:
    return np.outer(_taper(shape[0]), _taper(shape[1]))


def phase_shift(a: View, b: View, min_share: float = 0.1) -> tuple[float, float] | None:
    """How far the picture moved from `a` to `b` (dx, dy), in preview pixels, sub-pixel: b(p) = a(p - shift).
    The correlation's two highest peaks are each read the four ways its wrap-around allows, and the reading
    whose overlap (at least `min_share` of the view) correlates best is refined. None when none correlates."""
    if a.shape != b.shape:
        return None
    w = _window(a.shape)
    fa = np.fft.rfft2((a - a.mean()) * w)
    fb = np.fft.rfft2((b - b.mean()) * w)
    cross = fb * np.conj(fa)
    surface = np.fft.irfft2(cross / np.maximum(np.abs(cross), 1e-12), s=a.shape)
    h, wd = a.shape
    best: tuple[float, int, int] | None = None
    for flat in np.argpartition(surface, -2, axis=None)[-2:]:
        py, px = divmod(int(flat), wd)
        for dy in (py, py - h):
            for dx in (px, px - wd):
                score = _ncc(a, b, dx, dy, min_share)
                if score is not None and score >= MIN_NCC and (best is None or score > best[0]):
                    best = (score, dx, dy)
    return None if best is None else _refine(a, b, float(best[1]), float(best[2]))


def _ncc(a: View, b: View, dx: int, dy: int, min_share: float) -> float | None:
    """Normalised cross-correlation of the overlap the shift implies (b(p) = a(p - shift))."""
    h, w = a.shape
    top, left, bottom, right = max(0, dy), max(0, dx), min(h, h + dy), min(w, w + dx)
    if (bottom - top) * (right - left) < min_share * h * w or bottom - top < 8 or right - left < 8:
        return None
    pb = b[top:bottom:2, left:right:2].astype(np.float64)  # every other pixel: enough to tell a match from none
    pa = a[top - dy : bottom - dy : 2, left - dx : right - dx : 2].astype(np.float64)
    pa, pb = pa - pa.mean(), pb - pb.mean()
    norm = math.sqrt(float(np.vdot(pa, pa)) * float(np.vdot(pb, pb)))
    return float(np.vdot(pa, pb)) / norm if norm > 0 else None


def _refine(a: View, b: View, dx: float, dy: float, rounds: int = 6) -> tuple[float, float]:
    """Least-squares sub-pixel refinement of a whole-pixel shift over the overlap (Lucas-Kanade, translation)."""
    from scipy import ndimage  # here: the daemon and the console import this module at start, most never calibrate

    ref = ndimage.gaussian_filter(a.astype(np.float64), 1.0)
    tpl = ndimage.gaussian_filter(b.astype(np.float64), 1.0)
    gy, gx = np.gradient(ref)
    h, w = a.shape
    margin = 4
    for _ in range(rounds):
        top, left = max(margin, math.ceil(dy) + margin), max(margin, math.ceil(dx) + margin)
        bottom, right = (
            min(h - margin, h + math.floor(dy) - margin),
            min(w - margin, w + math.floor(dx) - margin),
        )
        if bottom - top < 16 or right - left < 16:
            break
        yy, xx = np.mgrid[top:bottom:2, left:right:2].astype(np.float64)
        coords = np.stack([yy - dy, xx - dx])
        seen = ndimage.map_coordinates(ref, coords, order=1)
        sgy = ndimage.map_coordinates(gy, coords, order=1)
        sgx = ndimage.map_coordinates(gx, coords, order=1)
        residual = tpl[top:bottom:2, left:right:2] - seen
        # b(p) = a(p - s): d/ds of a(p - s) = -grad a
        jac = np.stack([-sgx.ravel(), -sgy.ravel()], axis=1)
        step, *_ = np.linalg.lstsq(jac, residual.ravel(), rcond=None)
        dx, dy = dx + float(step[0]), dy + float(step[1])
        if abs(step[0]) + abs(step[1]) < 1e-3:
            break
    return dx, dy


# --- the measurement -------------------------------------------------------------------------------------

Still = Callable[[], npt.NDArray[np.floating]]  # one raw's visible mosaic, shot where the stage is now


@dataclass(frozen=True)
class Settings:
    timeout: float = 10.0  # live view must stand still within this after each move
    wait_without_live_view: float = 2.0
    scale_moves: int = 4  # long moves out, each from the slack taken up: the scale and the angle, averaged
    backlash_moves: int = 3  # short moves out and back: the play, averaged (each move's slip is its own)


def calibrate(rig: Rig, preview: Preview, sensor: tuple[int, int], settings: Settings | None = None, *,
              still: Still | None = None, say: Callable[[str], None] = log.info) -> RigCalibration:  # fmt: skip
    """Measure both axes of `rig` through live view (`preview`), for a sensor of `sensor` (width, height).
    `still`, when given, shoots a raw: the preview's scale to the sensor is then measured on two raws (the same
    move seen on the mosaic) rather than taken from the sizes (a preview may crop the sensor's edges)."""
    settings = settings or Settings()
    noise = measure_noise(preview)
    if noise is None:
        raise RigCalibrationError("calibrating the rig needs live view, and this body gives none (its preview is "
                                  "unsupported): the stage's scale cannot be seen")  # fmt: skip
    say(f"live view at rest: frames differ by {noise:.2f} code values")
    measures = []
    size: tuple[int, int] = (0, 0)
    for axis in ("X", "Y"):
        probe = _AxisProbe(rig, preview, axis, noise, settings)
        measure, size = probe.measure(sensor, still, say)
        measures.append(measure)
    return RigCalibration(measures[0], measures[1], sensor, size, noise, time.strftime("%Y-%m-%dT%H:%M:%S"))


class _AxisProbe:
    """Moves along one axis, each settled in live view; the picture's shifts between them."""

    def __init__(self, rig: Rig, preview: Preview, axis: str, noise: float, settings: Settings) -> None:
        self.rig, self.preview, self.axis, self.noise, self.settings = rig, preview, axis, noise, settings

    def go(self, mm: float) -> View:
        if self.axis == "X":
            self.rig.move_xy(mm, 0.0)
        else:
            self.rig.move_xy(0.0, mm)
        done = settle(self.preview, self.noise, timeout=self.settings.timeout,
                      wait_without_live_view=self.settings.wait_without_live_view,
                      what=f"a move of {mm:+.2f} mm along {self.axis}")  # fmt: skip
        if done.frame is None:  # pragma: no cover - live view was there a moment ago
            raise RigCalibrationError("live view went away during the calibration")
        return done.frame

    def taken_up(self) -> View:
        """Back and forth: the slack now lies in +, so the next move out is whole."""
        self.go(-TAKE_UP_MM)
        return self.go(TAKE_UP_MM)

    def shift(self, a: View, b: View, after: str) -> npt.NDArray[np.float64]:
        found = phase_shift(a, b)
        if found is None:
            raise RigCalibrationError(f"the picture was lost in live view after {after} along {self.axis}: is there "
                                      "a negative with detail on the stage?")  # fmt: skip
        return np.array(found)

    def measure(self, sensor: tuple[int, int], still: Still | None,
                say: Callable[[str], None]) -> tuple[AxisMeasure, tuple[int, int]]:  # fmt: skip
        axis = self.axis
        start = self.taken_up()
        h, w = start.shape
        found = phase_shift(start, self.go(PROBE_MM))
        self.go(-PROBE_MM)  # back where it started: the stage ends where the operator put it
        if found is None or math.hypot(*found) < MIN_SHIFT_PX * PROBE_MM:
            key = "axis" if axis == "X" else "y_axis"
            raise RigCalibrationError(f"the picture did not move in live view when {axis} moved {PROBE_MM:g} mm: is "
                                      f"the {axis} axis wired (rig.{key}), and is there a negative with detail on "
                                      "the stage?")  # fmt: skip
        distance = round(SHARE_OF_VIEW * min(h, w) / (math.hypot(*found) / PROBE_MM), 2)
        vectors, ratio = [], (sensor[0] / w, sensor[1] / h)
        for k in range(self.settings.scale_moves):
            start = self.taken_up()
            raw_start = still() if still is not None and k == 0 else None
            out = self.go(distance)
            moved = self.shift(start, out, f"{distance:g} mm")
            vectors.append(moved / distance)
            if raw_start is not None and still is not None:
                ratio = _raw_ratio(raw_start, still(), moved, axis)
            self.go(-distance)
        vector = np.mean(vectors, axis=0)
        shorts = []
        for _ in range(self.settings.backlash_moves):  # a short move out and back: the back one loses the play
            start = self.taken_up()
            self.go(BACKLASH_MM)
            short = self.shift(start, self.go(-BACKLASH_MM), f"{BACKLASH_MM:g} mm out and back")
            shorts.append(float(np.dot(short, vector) / np.dot(vector, vector)))
        backlash = float(np.mean(shorts))
        self.taken_up()
        say(f"{axis}: {distance:g} mm moved the picture {vector[0] * distance:+.2f}, {vector[1] * distance:+.2f} "
            f"preview px; {BACKLASH_MM:g} mm back fell {backlash:.3f} mm short")  # fmt: skip
        shift = (float(vector[0] * ratio[0]), float(vector[1] * ratio[1]))
        along = ratio[0] if axis == "X" else ratio[1]
        return AxisMeasure(shift, max(0.0, backlash), along if still is not None else 0.0), (w, h)


Mosaic = npt.NDArray[np.floating]


def _raw_ratio(before: Mosaic, after: Mosaic, preview_shift: npt.NDArray[np.float64],
               axis: str) -> tuple[float, float]:  # fmt: skip
    """Sensor photosites per preview pixel, from one move seen on two raws (2x2 cells: no CFA pattern left)."""
    planes = [_cells(before), _cells(after)]
    found = phase_shift(planes[0], planes[1])
    if found is None:
        raise RigCalibrationError(f"the move along {axis} could not be measured on the raws: is the negative lit?")
    along = 0 if axis == "X" else 1
    ratio = 2 * found[along] / float(preview_shift[along])
    return ratio, ratio


def _cells(mosaic: Mosaic) -> View:
    h, w = mosaic.shape[0] // 2 * 2, mosaic.shape[1] // 2 * 2
    m = mosaic[:h, :w].astype(np.float32)
    plane: View = m[0::2, 0::2] + m[0::2, 1::2] + m[1::2, 0::2] + m[1::2, 1::2]
    return plane
