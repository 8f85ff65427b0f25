"""A camera without a camera: raw DNG frames of a film negative, differing only in noise (and chosen faults).

The body: its settings (choices, read-back, the light they let in), its bursts, its live view and its faults.
What its sensor sees is medianscan.capture.camera.simulated_scene. Each burst is a new negative; faults from
the config: one flickered frame, one frame shifted by 2 px (the Bayer phase is kept), and a camera that drops
off the bus after k frames (once per object).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path

from medianscan.capture.camera.base import (
    BurstError,
    BurstRecord,
    Camera,
    CameraError,
    CameraIdentity,
    SettingError,
    SettingInfo,
    burst_error,
)
from medianscan.capture.camera.files import PROBE_STEM, frame_name
from medianscan.capture.camera.settings import (
    exposure_values,
    match_choice,
    nearest_names,
    same_value,
    true_seconds,
)
from medianscan.capture.camera.simulated_live import SimulatedLiveView
from medianscan.capture.camera.simulated_scene import (
    BLACK,
    WHITE,
    Negative,
    layout,
)
from medianscan.config.schema import CameraConfig
from medianscan.library.flats import FLAT_STEM
from medianscan.metadata import CameraInfo, Exposure
from medianscan.outputs.dng import write_dng
from medianscan.vocabulary import canonical_key

log = logging.getLogger(__name__)

SIMULATED_IDENTITY = CameraIdentity(model="medianscan simulated camera", port="sim:", serial="SIM0001")


def light_on_sensor(values: dict[str, str]) -> float:
    """Light on the sensor against the defaults (1/125 s, ISO 100, f/8), as a body: shutter time (true, not the
    rounded label) x ISO / f-number squared."""
    iso, _, aperture = exposure_values(values)
    shutter = true_seconds(values.get("shutterspeed", "1/125")) or 1 / 128
    return (shutter * 128) * ((iso or 100) / 100) / (((aperture or 8.0) / 8.0) ** 2)


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
                hint = nearest_names(key, CHOICES) or "; `medianscan camera show` lists the ones it has"
                reason = f"the body has no setting {key!r}{hint}"
                raise SettingError(key, f"the camera ({SIMULATED_IDENTITY.model}) has no setting {key!r}{hint}", reason)
            choice = match_choice(name, str(wanted), CHOICES[name])
            if choice is None:
                raise SettingError(
                    key,
                    f"camera setting {key!r} cannot be {wanted!r} on the simulated camera: it offers "
                    f"{', '.join(CHOICES[name])}",
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
            lost = not self._connected
            self.connect()  # the simulator always comes back
            record.error = burst_error(exc, record, reconnected=True if lost else None)
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
