"""A camera without a camera: raw DNG frames of a film negative, differing only in noise (and chosen faults).

Deterministic by seed. Each burst is a new negative: an orange-masked, inverted scene with edges and grain
(structure for alignment to lock on), seen through a Bayer sensor with shot and read noise. Dust specks drift
between frames (the median removes them). Faults from the config: one flickered frame, one frame shifted by
2 px (the Bayer phase is kept), and a camera that drops off the bus after k frames (once per object).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from medianscan.capture.camera.base import BurstError, BurstRecord, Camera, CameraError, CameraIdentity, SettingInfo
from medianscan.capture.camera.files import PROBE_STEM, frame_name
from medianscan.capture.camera.settings import (
    canonical_key,
    exposure_values,
    match_choice,
    same_value,
    true_seconds,
)
from medianscan.capture.camera.simulated_live import SimulatedLiveView
from medianscan.config.schema import CameraConfig
from medianscan.library.flats import FLAT_STEM
from medianscan.metadata import CameraInfo, Exposure, MosaicLayout
from medianscan.outputs.dng import write_dng

log = logging.getLogger(__name__)

SIMULATED_IDENTITY = CameraIdentity(model="medianscan simulated camera", port="sim:", serial="SIM0001")

BLACK = 512
WHITE = 16383  # 14-bit
GAIN = 0.45  # DN per electron at base ISO: sets the shot noise
READ_NOISE = 2.5  # DN
ORANGE_MASK = (0.75, 0.88, 0.27)  # R, G, B transmission of the film base, in camera space (orange once white-balanced)
DUST_PER_FRAME = 4
FALLOFF = 0.8  # the light panel and lens at the corners, against the centre
SENSOR_DUST = ((0.35, 0.3, 4.0), (0.6, 0.72, 5.0))  # (y, x) as fractions of the sensor, radius in photosites
SENSOR_DUST_DEPTH = 0.25
BARE_LIGHT = 0.7  # the bare light panel (no film) at this share of the raw range, in the centre


Subject = Literal["negative", "bare light", "film base"]
BASE_TRANSMISSION = 0.85  # the clear film base (no image), before its orange mask


def _mask(height: int, width: int) -> npt.NDArray[np.float32]:
    """The orange mask's transmission per photosite of the RGGB sensor."""
    mask = np.empty((height, width), dtype=np.float32)
    mask[0::2, 0::2] = ORANGE_MASK[0]
    mask[0::2, 1::2] = ORANGE_MASK[1]
    mask[1::2, 0::2] = ORANGE_MASK[1]
    mask[1::2, 1::2] = ORANGE_MASK[2]
    return mask


def light_on_sensor(values: dict[str, str]) -> float:
    """Light on the sensor against the defaults (1/125 s, ISO 100, f/8), as a body: shutter time (true, not the
    rounded label) x ISO / f-number squared."""
    iso, _, aperture = exposure_values(values)
    shutter = true_seconds(values.get("shutterspeed", "1/125")) or 1 / 128
    return (shutter * 128) * ((iso or 100) / 100) / (((aperture or 8.0) / 8.0) ** 2)


def light_path(height: int, width: int) -> npt.NDArray[np.float32]:
    """What the light panel, the lens and the sensor dust let through to each photosite: 1 in the centre, falling
    to FALLOFF at the corners, with two fixed dust shadows (the same in every frame, as on a real sensor)."""
    y = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
    light = 1 - np.float32(1 - FALLOFF) * (y * y + x * x) / 2
    for fy, fx, radius in SENSOR_DUST:
        cy, cx = fy * height, fx * width
        top, left = max(0, int(cy - 3 * radius)), max(0, int(cx - 3 * radius))
        box = light[top : int(cy + 3 * radius) + 1, left : int(cx + 3 * radius) + 1]
        yy = np.arange(top, top + box.shape[0], dtype=np.float32)[:, None]
        xx = np.arange(left, left + box.shape[1], dtype=np.float32)[None, :]
        box *= 1 - SENSOR_DUST_DEPTH * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (radius / 1.5) ** 2))
    return light.astype(np.float32)


CHOICES: dict[str, list[str]] = {
    "iso": ["100", "200", "400", "800", "1600", "3200"],
    "shutterspeed": [  # third stops, labelled as bodies round them
        "1/4000",
        "1/3200",
        "1/2500",
        "1/2000",
        "1/1600",
        "1/1250",
        "1/1000",
        "1/800",
        "1/640",
        "1/500",
        "1/400",
        "1/320",
        "1/250",
        "1/200",
        "1/160",
        "1/125",
        "1/100",
        "1/80",
        "1/60",
        "1/50",
        "1/40",
        "1/30",
        "1/25",
        "1/20",
        "1/15",
        "1/13",
        "1/10",
        "1/8",
        "1/6",
        "1/5",
        "1/4",
        "1/3",
        "0.4",
        "0.5",
        "0.6",
        "0.8",
        "1",
    ],
    "aperture": ["f/2.8", "f/4", "f/5.6", "f/8", "f/11", "f/16", "f/22"],
    "whitebalance": ["Auto", "Daylight", "Cloudy", "Tungsten", "Fluorescent", "Flash"],
    "imageformat": ["RAW", "RAW + JPEG", "JPEG Fine"],
    "focusmode": ["Manual", "AF-S"],
    "capturetarget": ["Internal RAM", "Memory card"],
}
DEFAULTS: dict[str, str] = {
    "iso": "100",
    "shutterspeed": "1/125",
    "aperture": "f/8",
    "whitebalance": "Daylight",
    "imageformat": "RAW",
    "focusmode": "Manual",
    "capturetarget": "Internal RAM",
}


def layout(height: int, width: int) -> MosaicLayout:
    """An RGGB 14-bit sensor, as a Canon-like body would describe it."""
    return MosaicLayout(
        pattern=np.array([[0, 1], [3, 2]], dtype=np.uint8),
        colors="RGBG",
        black_levels=(BLACK,) * 4,
        white_level=WHITE,
        active_area=(0, 0, height, width),
        default_crop=(8, 8, width - 16, height - 16),
        color_matrix=np.array(
            [[0.4716, 0.0603, -0.0830], [-0.7798, 1.5474, 0.2480], [-0.1496, 0.1937, 0.6651]], dtype=np.float64
        ),
        as_shot_neutral=(0.47, 1.0, 0.67),
    )


class Negative:
    """One negative under the lens: the noiseless signal per photosite and its noise sigma (DN)."""

    def __init__(
        self,
        seed: int,
        index: int,
        height: int,
        width: int,
        exposure_scale: float = 1.0,
        *,
        subject: Subject = "negative",
    ) -> None:
        self.seed, self.index, self.film, self.scale = seed, index, subject != "bare light", exposure_scale
        self.signal: npt.NDArray[np.float32]
        self.sigma: npt.NDArray[np.float32]
        if subject != "negative":  # the bare light (a flat field), or the clear film base (exposure calibration)
            level = BARE_LIGHT * (WHITE - BLACK) * exposure_scale
            light = light_path(height, width) * np.float32(level)
            if subject == "film base":
                light *= _mask(height, width) * np.float32(BASE_TRANSMISSION * 0.8 / BARE_LIGHT)
            self.signal = light.astype(np.float32)
            self.sigma = np.sqrt(GAIN * self.signal + READ_NOISE**2).astype(np.float32)
            return
        rng = np.random.default_rng([seed, index, 0])
        h, w = height, width
        # a positive scene: smooth light (a separable Gaussian: two 1-D profiles), a gradient, hard-edged shapes
        cy, cx = rng.uniform(0.2, 0.8, 2)
        ys = np.linspace(0.0, 1.0, h, dtype=np.float32)
        xs = np.linspace(0.0, 1.0, w, dtype=np.float32)
        scene = np.outer(np.exp(-((ys - cy) ** 2) / 0.08), np.exp(-((xs - cx) ** 2) / 0.08)).astype(np.float32)
        scene *= np.float32(0.3)
        scene += np.float32(0.35) + np.float32(0.15) * xs
        for _ in range(6):  # hard edges: what alignment locks on to
            y0, x0 = int(rng.integers(0, h * 3 // 4)), int(rng.integers(0, w * 3 // 4))
            y1, x1 = y0 + int(rng.integers(h // 16 + 1, h // 3 + 2)), x0 + int(rng.integers(w // 16 + 1, w // 3 + 2))
            scene[y0:y1, x0:x1] += np.float32(rng.uniform(-0.3, 0.3))
        for _ in range(3):  # discs, drawn in their bounding box only
            ry, rx, rad = rng.uniform(0.1, 0.9) * h, rng.uniform(0.1, 0.9) * w, rng.uniform(h / 50, h / 6)
            top, left = max(0, int(ry - rad)), max(0, int(rx - rad))
            box = scene[top : int(ry + rad) + 1, left : int(rx + rad) + 1]
            yy = np.arange(top, top + box.shape[0], dtype=np.float32)[:, None]
            xx = np.arange(left, left + box.shape[1], dtype=np.float32)[None, :]
            box[(yy - ry) ** 2 + (xx - rx) ** 2 < rad**2] += np.float32(rng.uniform(-0.25, 0.25))
        # film grain: clumped, multiplicative, fixed for this negative
        grain = rng.standard_normal((h // 2 + 1, w // 2 + 1), dtype=np.float32)
        grain = (grain[:-1, :-1] + grain[1:, 1:]) * np.float32(0.5)
        grain = np.repeat(np.repeat(grain, 2, axis=0), 2, axis=1)[:h, :w]
        scene = np.clip(scene * (1 + np.float32(0.05) * grain), 0.02, 1.0)
        # negative: bright scene -> dense film -> little light; seen through the orange base
        transmission = np.float32(BASE_TRANSMISSION) - np.float32(0.7) * scene
        mask = _mask(h, w)
        self.signal = (
            transmission * mask * light_path(h, w) * np.float32(0.8 * (WHITE - BLACK) * exposure_scale)
        ).astype(np.float32)
        self.sigma = np.sqrt(GAIN * self.signal + READ_NOISE**2).astype(np.float32)

    def frame(self, number: int, *, flicker: bool = False, shift: bool = False) -> npt.NDArray[np.uint16]:
        """Frame `number` (1-based) of this negative: fresh shot/read noise and drifting dust."""
        rng = np.random.default_rng([self.seed, self.index, number])
        noise = rng.standard_normal(self.signal.shape, dtype=np.float32)
        level = np.float32(1.08 if flicker else 1.0)
        values = self.signal * level + self.sigma * noise
        values += np.float32(BLACK + 0.5)
        h, w = values.shape
        for _ in range(DUST_PER_FRAME if self.film else 0):  # dust on the film moves between frames
            y, x, r = int(rng.integers(8, h - 8)), int(rng.integers(8, w - 8)), int(rng.integers(2, 6))
            patch = values[y - r : y + r, x - r : x + r]
            patch -= (patch - BLACK) * np.float32(0.75)
        np.clip(values, 0, WHITE, out=values)
        mosaic = values.astype(np.uint16)
        if shift:
            mosaic = np.roll(mosaic, 2, axis=1)
        return mosaic


class SimulatedCamera(Camera):
    """The `simulated` backend: the same interface and the same setting checks as a real body."""

    def __init__(self, cfg: CameraConfig) -> None:
        self.cfg = cfg
        self.identity: CameraIdentity | None = None
        self._connected = False
        self._values = dict(DEFAULTS)
        self._bursts = 0
        self._frames_since_connect = 0
        self._died = False
        self._live = SimulatedLiveView(cfg.simulated, 0.8 * (WHITE - BLACK))
        self._under_lens: Negative | None = None  # the next negative, as live view shows it

    @property
    def connected(self) -> bool:
        return self._connected

    def connect(self) -> CameraIdentity:
        self._connected = True
        self._frames_since_connect = 0
        self.identity = SIMULATED_IDENTITY
        return self.identity

    def lock(self) -> dict[str, str]:
        if not self._connected:
            self.connect()
        result: dict[str, str] = {}
        for key, wanted in self.cfg.settings.items():
            name = canonical_key(key)
            if name not in CHOICES:
                if name in {canonical_key(o) for o in self.cfg.optional}:
                    log.warning("the simulated camera has no setting %r; skipped as it is optional", key)
                    continue
                raise CameraError(
                    f"the camera ({SIMULATED_IDENTITY.model}) has no setting {key!r}: remove it "
                    "from camera.settings or add it to camera.optional"
                )
            choice = match_choice(name, str(wanted), CHOICES[name])
            if choice is None:
                raise CameraError(
                    f"camera setting {key!r} cannot be {wanted!r} on the simulated camera: it offers "
                    f"{', '.join(CHOICES[name])}"
                )
            self._values[name] = choice
            if not same_value(name, str(wanted), self._values[name]):  # pragma: no cover - match_choice agrees
                raise CameraError(f"camera setting {key!r} did not take {wanted!r}")
            result[key] = self._values[name]
        return result

    def _exposure(self) -> Exposure:
        iso, shutter, aperture = exposure_values(self._values)
        return Exposure(
            iso=iso,
            exposure_time=shutter,
            f_number=aperture,
            focal_length=50.0,
            taken=datetime.now().strftime("%Y:%m:%d %H:%M:%S"),
        )

    def burst(self, n: int, stack: Path, stem: str) -> BurstRecord:

        sim = self.cfg.simulated
        record = BurstRecord(stack=Path(stack), started=time.time(), camera=self.identity)
        start = time.perf_counter()
        try:
            if not self._connected:
                self.connect()
            record.camera = self.identity
            record.settings = self.lock()
            scale = light_on_sensor(self._values) * sim.light
            if stem == FLAT_STEM:  # a flat burst: the operator has taken the film out of the holder
                negative = Negative(sim.seed, 0, sim.height, sim.width, scale, subject="bare light")
            elif stem.startswith(PROBE_STEM):  # exposure probes: the clear film base is in the holder
                negative = Negative(sim.seed, 0, sim.height, sim.width, scale, subject="film base")
            else:
                self._bursts += 1
                negative = self._negative(self._bursts, scale)
            mosaic_layout = layout(sim.height, sim.width)
            info = CameraInfo(
                make="medianscan",
                model="Simulated Camera",
                serial=SIMULATED_IDENTITY.serial,
                lens="Simulated 50mm Macro",
            )
            exposure = self._exposure()
            record.stack.mkdir(parents=True, exist_ok=True)
            for number in range(1, n + 1):
                t0 = time.perf_counter()
                if (
                    sim.dead_after_frames is not None
                    and not self._died
                    and self._frames_since_connect >= sim.dead_after_frames
                ):
                    self._died = True
                    self._connected = False
                    raise CameraError(
                        f"the simulated camera dropped off the bus before frame {number} of {n} into {stack}"
                    )
                mosaic = negative.frame(number, flicker=sim.flicker_frame == number, shift=sim.shifted_frame == number)
                target = record.stack / frame_name(stem, number, n, "dng")
                write_dng(
                    target,
                    mosaic,
                    mosaic_layout,
                    info,
                    exposure,
                    description=f"simulated {'negative ' + str(self._bursts) if negative.film else 'bare light'}, "
                    f"frame {number}",
                )
                record.frames.append(target)
                record.sizes[target.name] = target.stat().st_size
                record.camera_files.append(f"/sim/DCIM/{target.name}")
                self._frames_since_connect += 1
                if sim.seconds_per_frame > 0:
                    time.sleep(sim.seconds_per_frame)
                record.per_frame_seconds.append(time.perf_counter() - t0)
        except CameraError as exc:
            self.connect()  # the simulator always comes back
            record.error = f"{exc}; reconnected; {len(record.frames)} frame(s) kept"
            raise BurstError(record.error, record) from exc
        finally:
            record.seconds = time.perf_counter() - start
        return record

    def _negative(self, index: int, scale: float = 1.0) -> Negative:
        """Negative `index` at exposure `scale`: the one live view has shown is kept (it is under the lens)."""
        if self._under_lens is None or (self._under_lens.index, self._under_lens.scale) != (index, scale):
            sim = self.cfg.simulated
            self._under_lens = Negative(sim.seed, index, sim.height, sim.width, scale)
        return self._under_lens

    def preview(self) -> bytes:
        """The negative the next burst will shoot, drifting through focus."""
        if not self._connected:
            raise CameraError("the simulated camera is not connected")
        index = self._bursts + 1
        scale = light_on_sensor(self._values) * self.cfg.simulated.light
        return self._live.frame(index, lambda: self._negative(index, scale).signal)

    def magnify(self, at: tuple[float, float] | None) -> bool:
        """A body magnifier that can be aimed, as Canon's: 4x around `at`."""
        self._live.zoom_at = at
        return True

    def keep_alive(self) -> None:
        if not self._connected:
            self.connect()

    def describe(self) -> list[SettingInfo]:
        return [
            SettingInfo(
                name=name,
                key=name,
                label=name,
                value=self._values[name],
                choices=list(choices),
                readonly=False,
                section="capturesettings",
            )
            for name, choices in CHOICES.items()
        ]

    def close(self) -> None:
        self._values = dict(DEFAULTS)
        self._connected = False
