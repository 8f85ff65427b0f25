"""`medianscan calibrate rig`: how an XY stage moves the picture, measured in live view.

Each axis is moved a known distance out and back; the picture's shift is measured by phase correlation of the
still previews (numpy's FFT, then a sub-pixel least-squares refinement on the overlap), giving for each axis
the picture's shift per mm (its scale and its angle to the sensor: a stage a fraction of a degree off square)
and its backlash, the shortfall of the move back. Before each axis its slack is taken up in the + direction, so
the move out is whole and only the move back loses the play. Preview pixels become sensor photosites by the
ratio of the sensor's size to the preview's (a preview shows the whole sensor, scaled).

The record (`RigCalibration`) is written to `<library>/rig-calibration.json`: the plan (capture.rig.tile_plan)
takes its scale and backlash, and the stitch gets the tiles' places from it, the grid turned as the stage is.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from medianscan.atomic import write_json
from medianscan.capture.rig.base import Rig
from medianscan.capture.rig.settle import Preview, View, measure_noise, settle
from medianscan.capture.rig.tile_plan import StageScale
from medianscan.errors import MedianscanError

CALIBRATION_FILE = "rig-calibration.json"
PROBE_MM = 0.5  # the first, small move: the scale, roughly, so the real move stays well inside the view
SHARE_OF_VIEW = 0.25  # the measured move shifts the picture by this share of the view's shorter side
TAKE_UP_MM = 1.0  # each axis is moved back and forth this far first: its slack then lies one known way
MIN_SHIFT_PX = 1.0  # a probe that moves the picture less than this: the axis does not move it
MIN_PEAK = 0.05  # a phase-correlation peak below this share of the whole: no match


class RigCalibrationError(MedianscanError):
    """The rig cannot be calibrated; the sentence says why and what to check."""


@dataclass(frozen=True)
class AxisMeasure:
    """One axis: the picture's shift (dx, dy) in sensor photosites per mm of it, and its backlash in mm."""

    shift_per_mm: tuple[float, float]
    backlash_mm: float

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
        return StageScale(self.x.shift_per_mm, self.y.shift_per_mm, self.sensor,
                          (self.x.backlash_mm, self.y.backlash_mm))  # fmt: skip

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
    return AxisMeasure((float(dx), float(dy)), float(data["backlash_mm"]))


# --- the picture's shift -----------------------------------------------------------------------------------


def _window(shape: tuple[int, ...]) -> np.ndarray:
    return np.outer(np.hanning(shape[0]), np.hanning(shape[1]))


def phase_shift(a: View, b: View) -> tuple[float, float] | None:
    """How far the picture moved from `a` to `b` (dx, dy), in preview pixels, sub-pixel: b(p) = a(p - shift).
    None when the two share no picture the correlation can find."""
    if a.shape != b.shape:
        return None
    w = _window(a.shape)
    fa = np.fft.rfft2((a - a.mean()) * w)
    fb = np.fft.rfft2((b - b.mean()) * w)
    cross = fb * np.conj(fa)
    surface = np.fft.irfft2(cross / np.maximum(np.abs(cross), 1e-12), s=a.shape)
    peak = int(np.argmax(surface))
    py, px = divmod(peak, a.shape[1])
    if surface.flat[peak] < MIN_PEAK:
        return None
    h, wd = a.shape
    dy, dx = (py if py <= h // 2 else py - h), (px if px <= wd // 2 else px - wd)
    return _refine(a, b, float(dx), float(dy))


def _refine(a: View, b: View, dx: float, dy: float, rounds: int = 6) -> tuple[float, float]:
    """Least-squares sub-pixel refinement of a whole-pixel shift over the overlap (Lucas-Kanade, translation)."""
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


@dataclass(frozen=True)
class Settings:
    timeout: float = 10.0  # live view must stand still within this after each move
    wait_without_live_view: float = 2.0


def calibrate(rig: Rig, preview: Preview, sensor: tuple[int, int], settings: Settings | None = None,
              say: Any = lambda text: None) -> RigCalibration:  # fmt: skip
    """Measure both axes of `rig` through live view (`preview`), for a sensor of `sensor` (width, height)."""
    settings = settings or Settings()
    noise = measure_noise(preview)
    if noise is None:
        raise RigCalibrationError("calibrating the rig needs live view, and this body gives none (its preview is "
                                  "unsupported): the stage's scale cannot be seen")  # fmt: skip
    say(f"live view at rest: frames differ by {noise:.2f} code values")
    measures = []
    size: tuple[int, int] = (0, 0)
    for axis in ("X", "Y"):
        measure, size = _axis(rig, preview, axis, noise=noise, sensor=sensor, settings=settings, say=say)
        measures.append(measure)
    return RigCalibration(measures[0], measures[1], sensor, size, noise, time.strftime("%Y-%m-%dT%H:%M:%S"))


def _axis(rig: Rig, preview: Preview, axis: str, *, noise: float, sensor: tuple[int, int], settings: Settings,
          say: Any) -> tuple[AxisMeasure, tuple[int, int]]:  # fmt: skip
    def go(mm: float) -> View:
        rig.move_xy(mm, 0.0) if axis == "X" else rig.move_xy(0.0, mm)
        done = settle(preview, noise, timeout=settings.timeout, wait_without_live_view=settings.wait_without_live_view,
                      what=f"a move of {mm:+.2f} mm along {axis}")  # fmt: skip
        if done.frame is None:  # pragma: no cover - live view was there a moment ago
            raise RigCalibrationError("live view went away during the calibration")
        return done.frame

    go(-TAKE_UP_MM)
    start = go(TAKE_UP_MM)  # the slack now lies in +: the move out is whole
    h, w = start.shape
    ratio = (sensor[0] / w, sensor[1] / h)
    probe = go(PROBE_MM)
    found = phase_shift(start, probe)
    if found is None or math.hypot(*found) < MIN_SHIFT_PX * PROBE_MM:
        raise RigCalibrationError(f"the picture did not move in live view when {axis} moved {PROBE_MM:g} mm: is "
                                  f"the {axis} axis wired (rig.{'axis' if axis == 'X' else 'y_axis'}), and is there "
                                  "a negative with detail on the stage?")  # fmt: skip
    per_mm = math.hypot(*found) / PROBE_MM
    distance = round(SHARE_OF_VIEW * min(h, w) / per_mm, 2)
    out = go(distance - PROBE_MM)
    moved = phase_shift(start, out)
    if moved is None:
        raise RigCalibrationError(f"the picture was lost in live view after {distance:g} mm along {axis}")
    back = go(-distance)  # a reversal: the play is lost here
    short = phase_shift(start, back)
    if short is None:
        raise RigCalibrationError(f"the picture was lost in live view after moving {axis} back {distance:g} mm")
    vector = np.array(moved) / distance
    backlash = float(np.dot(short, vector) / np.dot(vector, vector))  # the stage fell short by this many mm
    say(f"{axis}: {distance:g} mm moved the picture {moved[0]:+.2f}, {moved[1]:+.2f} px; back, {backlash:.3f} mm short")
    go(-TAKE_UP_MM)  # leave it where it started, slack in +
    go(TAKE_UP_MM + backlash)
    shift = (float(vector[0] * ratio[0]), float(vector[1] * ratio[1]))
    return AxisMeasure(shift, max(0.0, backlash)), (w, h)
