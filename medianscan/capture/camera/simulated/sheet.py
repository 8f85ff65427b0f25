"""A sheet negative on the simulated XY stage (`camera.simulated.sheet`), larger than the camera's view: the
simulated camera sees it through the light, the simulated rig moves the stage in X and Y.

The view is the sensor at the picture's scale: photosite (row, column) sees the sheet `mm_per_pixel` wide, so one
photosite is one pixel of the picture and a stage move is a translation of the picture in the view (sub-photosite
moves by cubic-spline interpolation). At the start the view is centred on the sheet. The sheet is square to the
sensor; the stage's rails are not: a move along X carries the view over the sheet along a direction rotated by
`rotation_degrees` (and Y likewise), so a move of d mm along X shifts the picture d / mm_per_pixel photosites,
leftwards (as the roll rig's: a positive move shows what lies to the right of the view) and rotated by the angle.
Each axis slips (`slip`: a random error per move, a fraction of its length, seeded) and has play: a reversal of
an axis loses `backlash_mm` (at the start each axis's play was last taken up moving +). The light falls off to
the corners and the sensor's dust stays put (capture.camera.simulated.scene's light path, applied by Negative).
With `negatives` above 1 the sheet is a strip of 120 film along X (roll_120), the view starting on its first.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import scipy.fft
from scipy import ndimage

from medianscan.capture.camera.simulated.roll_120 import StripLayout, layout, strip_picture
from medianscan.capture.camera.simulated.scene import BARE_LIGHT, BASE_TRANSMISSION, FILM_LIGHT, mask
from medianscan.capture.camera.simulated.strip import Carriage, OnTheStand
from medianscan.config.schema import SheetConfig, SimulatedConfig
from medianscan.errors import MedianscanError

MARGIN = 8  # photosites around a view's crop: the cubic spline's filter has forgotten its edge by then (3e-5)
KEY_SCALE = 10_000  # a view's key: its position in 1/10,000 mm (0.0001 mm: a hundredth of a photosite, about)
KEY_OFFSET = 1 << 40
NO_FILM = BARE_LIGHT / FILM_LIGHT  # the bare light beyond the sheet, in the film's units


class Stage:
    """The XY stage in real time: what the controller counts (commanded mm per axis) and where the carriage
    really is along its rails (slip and play included); `shift_mm` is where that puts the view over the sheet."""

    def __init__(self, *, slip: float = 0.0, rotation_degrees: float = 0.0, backlash_mm: float = 0.0, seed: int = 1,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.slip, self.backlash = slip, backlash_mm
        angle = math.radians(rotation_degrees)
        self._cos, self._sin = math.cos(angle), math.sin(angle)
        self._commanded = (Carriage(0.0, clock), Carriage(0.0, clock))
        self._true = (Carriage(0.0, clock), Carriage(0.0, clock))
        self._nut = [backlash_mm, backlash_mm]  # the drive's end of each axis: the carriage lags it by up to the play
        self._to = [0.0, 0.0]  # where each true carriage is going
        self._rng = np.random.default_rng([seed, 31])
        self._lock = threading.Lock()
        self.held = False  # a test's fault: the controller counts each move, the carriage stays (a belt slipping)

    @property
    def x(self) -> Carriage:
        """The true X carriage (the roll rig's view of the stage)."""
        return self._true[0]

    def position(self) -> tuple[float, float]:
        """The TRUE position (x_mm, y_mm) along the stage's own rails, from where it started (0, 0)."""
        return self._true[0].position(), self._true[1].position()

    def commanded(self) -> tuple[float, float]:
        """What the controller has counted (GRBL's MPos): the moves asked for, without slip or play."""
        return self._commanded[0].position(), self._commanded[1].position()

    def shift_mm(self) -> tuple[float, float]:
        """Where the view is over the sheet against where it started, in the sensor's axes (mm)."""
        x, y = self.position()
        return x * self._cos - y * self._sin, x * self._sin + y * self._cos

    def go(self, dx: float, dy: float, speed: float) -> float:
        """Start one linear move of (dx, dy) commanded mm at `speed` mm/s along its path (both axes arrive
        together); the time it will have stopped."""
        with self._lock:
            length = math.hypot(dx, dy)
            duration = length / max(speed, 1e-6)
            ends = []
            for axis, asked in enumerate((dx, dy)):
                slipped = 0.0 if self.held else asked * (1 + self.slip * float(self._rng.uniform(-1.0, 1.0)))
                here = self._true[axis].position()
                nut = self._nut[axis] + slipped
                to = min(max(here, nut - self.backlash), nut)  # the carriage moves once the play is taken up
                self._nut[axis], self._to[axis] = nut, to
                for carriage, distance in ((self._commanded[axis], asked), (self._true[axis], to - here)):
                    ends.append(carriage.go(distance, abs(distance) / duration if duration > 0 else 1e9))
            return max(ends)

    def halt(self) -> None:
        """Stop where it is now (an alarm); the play stays as it was."""
        with self._lock:
            for axis in (0, 1):
                lag = self._nut[axis] - self._to[axis]
                self._true[axis].halt()
                self._commanded[axis].halt()
                self._to[axis] = self._true[axis].position()
                self._nut[axis] = self._to[axis] + lag

    def stopped_at(self) -> float:
        return max(c.stopped_at() for c in (*self._true, *self._commanded))


def generated_picture(seed: int, height: int, width: int) -> npt.NDArray[np.float32]:
    """A negative with detail everywhere, deterministic by seed: structure at every scale (noise falling off as
    1/frequency), a few hard-edged shapes and the film's clumped grain, as transmission (before the orange mask)."""
    rng = np.random.default_rng([seed, 32])
    fy = np.fft.fftfreq(height).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(width).astype(np.float32)[None, :]
    spectrum = scipy.fft.rfft2(rng.standard_normal((height, width), dtype=np.float32))
    spectrum /= np.sqrt(fy * fy + fx * fx) + np.float32(2.0 / max(height, width))
    structure = np.asarray(scipy.fft.irfft2(spectrum, s=(height, width)), dtype=np.float32)
    structure *= np.float32(0.12 / max(float(structure.std()), 1e-9))
    scene = np.float32(0.5) + structure
    for _ in range(max(4, height * width // 400_000)):  # hard edges
        y0, x0 = int(rng.integers(0, height)), int(rng.integers(0, width))
        h, w = int(rng.integers(height // 40 + 1, height // 6 + 2)), int(rng.integers(width // 40 + 1, width // 6 + 2))
        scene[y0 : y0 + h, x0 : x0 + w] += np.float32(rng.uniform(-0.2, 0.2))
    grain = rng.standard_normal(((height + 1) // 2 + 1, (width + 1) // 2 + 1), dtype=np.float32)
    grain = (grain[:-1, :-1] + grain[1:, 1:]) * np.float32(0.5)
    grain = np.repeat(np.repeat(grain, 2, axis=0), 2, axis=1)[:height, :width]
    scene = np.clip(scene * (1 + np.float32(0.06) * grain), 0.02, 1.0)
    return (np.float32(BASE_TRANSMISSION) - np.float32(0.7) * scene).astype(np.float32)


def read_picture(path: Path) -> npt.NDArray[np.float32]:
    """A 16-bit TIFF as transmission (0..1), grey (H, W) or RGB (H, W, 3); MedianscanError naming it otherwise."""
    import tifffile

    try:
        data = tifffile.imread(path)
    except (OSError, ValueError, tifffile.TiffFileError) as exc:
        raise MedianscanError(f"camera.simulated.sheet.picture {path} cannot be read as a TIFF: {exc}") from None
    if data.dtype != np.uint16 or not (data.ndim == 2 or (data.ndim == 3 and data.shape[2] == 3)):
        raise MedianscanError(
            f"camera.simulated.sheet.picture {path} is {data.dtype} of shape {data.shape}: the sheet needs a 16-bit "
            "grey or RGB TIFF"
        )
    return (data.astype(np.float32) / np.float32(65535)).astype(np.float32)


class SimulatedSheet:
    """The sheet of `cfg` seen by a `width` x `height` sensor; `stage` moves it."""

    def __init__(self, cfg: SheetConfig, width: int, height: int) -> None:
        self.cfg, self.width, self.height = cfg, width, height
        self.mm_per_photosite = cfg.mm_per_pixel
        self.stage = Stage(slip=cfg.slip, rotation_degrees=cfg.rotation_degrees, backlash_mm=cfg.backlash_mm,
                           seed=cfg.seed)  # fmt: skip
        self.own_picture = cfg.picture is not None
        given = None if cfg.picture is None else read_picture(cfg.picture)
        rows = round(cfg.height_mm / cfg.mm_per_pixel) if cfg.height_mm > 0 or given is None else given.shape[0]
        cols = round(cfg.width_mm / cfg.mm_per_pixel) if cfg.width_mm > 0 or given is None else given.shape[1]
        self.strip: StripLayout | None = None  # a strip of 120 negatives (roll_120), or one sheet
        if cfg.negatives > 1:
            self.strip = layout(cfg, (cols * cfg.mm_per_pixel, rows * cfg.mm_per_pixel))
            given = strip_picture(cfg, self.strip, given, generated_picture)
            rows, cols = given.shape[:2]
        self.size_px = (cols, rows)  # the sheet, in photosites (x, y)
        if given is None:
            given = generated_picture(cfg.seed, rows, cols)
        self.picture = given if given.ndim == 3 else given[:, :, None]  # (rows, columns, planes)
        ph, pw = self.picture.shape[:2]
        self.picture_at = ((cols - pw) / 2, (rows - ph) / 2)  # its top-left corner on the sheet, photosites
        # where the view starts centred (photosites on the sheet): the sheet's centre, or the strip's first negative
        start_x = cols / 2 if self.strip is None else self.strip.centre_mm(1) / cfg.mm_per_pixel
        self.start_px = (start_x, rows / 2)
        self._mask = mask(height, width)

    def negative_box(self, negative: int) -> tuple[int, int, int, int]:
        """A strip's negative `negative` (1-based) on the picture, in its pixels: left, top, width, height."""
        assert self.strip is not None
        mpp = self.mm_per_photosite
        pw, ph = round(self.strip.width_mm / mpp), round(self.strip.height_mm / mpp)
        return round(self.strip.starts_mm[negative - 1] / mpp), (self.size_px[1] - ph) // 2, pw, ph

    @property
    def view_mm(self) -> tuple[float, float]:
        """The view's width and height on the sheet, mm."""
        return self.width * self.mm_per_photosite, self.height * self.mm_per_photosite

    def view_origin_px(self, shift_mm: tuple[float, float] | None = None) -> tuple[float, float]:
        """Where the view's photosite (0, 0) is on the picture, in its pixels (x, y): photosite (r, c) sees the
        picture at (x + c, y + r). `shift_mm`: the stage's (default: where it truly is now)."""
        sx, sy = self.stage.shift_mm() if shift_mm is None else shift_mm
        x = self.start_px[0] - self.width / 2 + sx / self.mm_per_photosite - self.picture_at[0]
        y = self.start_px[1] - self.height / 2 + sy / self.mm_per_photosite - self.picture_at[1]
        return x, y

    def key(self) -> int:
        """The view where the stage now is, as a key (a whole number, one per 0.0001 mm of shift)."""
        sx, sy = self.stage.shift_mm()
        return (round(sx * KEY_SCALE) + KEY_OFFSET) * (2 * KEY_OFFSET) + round(sy * KEY_SCALE) + KEY_OFFSET

    def through(self, key: int) -> npt.NDArray[np.float32]:
        """What the film lets through per photosite with the view at `key` (a generated negative with its orange
        mask; a picture as given; the sheet's clear base around a smaller picture; no film: the bare light)."""
        kx, ky = divmod(key, 2 * KEY_OFFSET)
        x, y = self.view_origin_px(((kx - KEY_OFFSET) / KEY_SCALE, (ky - KEY_OFFSET) / KEY_SCALE))
        ix, iy = math.floor(x), math.floor(y)
        ph, pw = self.picture.shape[:2]
        rows = np.clip(np.arange(iy - MARGIN, iy + self.height + MARGIN), 0, ph - 1)[:, None]
        cols = np.clip(np.arange(ix - MARGIN, ix + self.width + MARGIN), 0, pw - 1)[None, :]
        planes = []
        for plane in range(self.picture.shape[2]):  # the picture's edge repeats beyond it: no ringing inside
            crop = self.picture[rows, cols, plane]
            moved = _spline_shift(_spline_shift(crop, y - iy, 0, self.height), x - ix, 1, self.width)
            planes.append(moved)
        seen = self._by_site(planes)
        if not self.own_picture:
            seen = seen * self._mask
        py = y + np.arange(self.height, dtype=np.float64)  # each row and column of the view on the picture, px
        px = x + np.arange(self.width, dtype=np.float64)
        in_rows, in_cols = (py >= -0.5) & (py < ph - 0.5), (px >= -0.5) & (px < pw - 0.5)
        if in_rows.all() and in_cols.all():  # all picture: the usual view
            return seen.astype(np.float32, copy=False)
        sy, sx = py + self.picture_at[1], px + self.picture_at[0]
        on_rows = (sy >= -0.5) & (sy < self.size_px[1] - 0.5)
        on_cols = (sx >= -0.5) & (sx < self.size_px[0] - 0.5)
        base = np.where(on_rows[:, None] & on_cols[None, :], np.float32(BASE_TRANSMISSION) * self._mask,
                        np.float32(NO_FILM))  # fmt: skip
        return np.where(in_rows[:, None] & in_cols[None, :], seen, base).astype(np.float32)

    def _by_site(self, planes: list[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
        """One plane (grey) as it is; RGB: each photosite takes its colour's plane (RGGB)."""
        if len(planes) == 1:
            return planes[0]
        out = planes[1].copy()
        out[0::2, 0::2] = planes[0][0::2, 0::2]
        out[1::2, 1::2] = planes[2][1::2, 1::2]
        return out


def _spline_shift(image: npt.NDArray[np.float32], fraction: float, axis: int, size: int) -> npt.NDArray[np.float32]:
    """`image` read `fraction` (0 to 1) of a photosite further along `axis` by its cubic B-spline, `size` values
    from MARGIN on: out[k] = image(MARGIN + k + fraction). The same as scipy's order-3 shift, one axis at a time
    (a translation is separable), so a view costs two 1-D filters rather than 16 taps per photosite."""
    if fraction == 0:
        return image[MARGIN : MARGIN + size] if axis == 0 else image[:, MARGIN : MARGIN + size]
    coefficients: npt.NDArray[np.float32] = ndimage.spline_filter1d(
        image, order=3, axis=axis, mode="mirror", output=np.float32
    )
    t = fraction
    weights = ((1 - t) ** 3 / 6, (3 * t**3 - 6 * t**2 + 4) / 6, (-3 * t**3 + 3 * t**2 + 3 * t + 1) / 6, t**3 / 6)
    out = np.zeros_like(coefficients[MARGIN : MARGIN + size] if axis == 0 else coefficients[:, MARGIN : MARGIN + size])
    for offset, weight in zip(range(-1, 3), weights, strict=True):
        start = MARGIN + offset
        part = coefficients[start : start + size] if axis == 0 else coefficients[:, start : start + size]
        out += np.float32(weight) * part
    return out


_SHEETS: OnTheStand[SimulatedSheet] = OnTheStand()


def sheet_of(sim: SimulatedConfig) -> SimulatedSheet | None:
    """The sheet on this simulated copy stand (one per configuration: the camera and the rig see the same sheet),
    or None when none is configured."""
    if not sim.sheet.present:
        return None
    return _SHEETS.get(sim, lambda: SimulatedSheet(sim.sheet, sim.width, sim.height))
