"""A camera without a camera: raw DNG frames of a film negative, differing only in noise (and chosen faults).

The body: its settings (choices, read-back, the light they let in), its bursts, its live view and its faults.
What its sensor sees is medianscan.capture.camera.simulated.scene. Each burst is a new negative; faults from
the config: one flickered frame, one frame shifted by 2 px (the Bayer phase is kept), and a camera that drops
off the bus after k frames (once per object).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import imagecodecs
import numpy as np

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
from medianscan.capture.camera.burst.engine import BurstEngine
from medianscan.capture.camera.burst.enough import FrameCount, fixed_or
from medianscan.capture.camera.burst.journal import forget
from medianscan.capture.camera.burst.leftover import Fetched, fetch_left
from medianscan.capture.camera.burst.link import BodyLink
from medianscan.capture.camera.burst.quirks import Quirk, quirk_for
from medianscan.capture.camera.burst.strategies import Choice, choose
from medianscan.capture.camera.files import PROBE_STEM
from medianscan.capture.camera.freshness import Freshness
from medianscan.capture.camera.settings import (
    exposure_values,
    match_choice,
    nearest_choices,
    nearest_names,
    same_value,
    true_seconds,
)
from medianscan.capture.camera.simulated.body import BodyGoneError, Render, SimulatedBody
from medianscan.capture.camera.simulated.live import SimulatedLiveView
from medianscan.capture.camera.simulated.scene import (
    BLACK,
    WHITE,
    Negative,
    layout,
)
from medianscan.capture.camera.simulated.sheet import sheet_of
from medianscan.capture.camera.simulated.strip import strip_of
from medianscan.capture.camera.simulated.timing import timing_of
from medianscan.config.schema import CameraConfig
from medianscan.library.base_shots import BASE_STEM
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

    def __init__(self, cfg: CameraConfig, watch: Callable[[SimulatedBody], BodyLink] | None = None) -> None:
        """`watch`, given, is wrapped round each session's body where the burst engine speaks to it (a test logs the
        engine's calls on the real body this way)."""
        self.cfg = cfg
        self._watch = watch
        self.identity: CameraIdentity | None = None
        self._connected = False
        self._values = dict(DEFAULTS)
        self._bursts = 0
        self._died_once = False
        self._card: Path | None = None
        self._own_card = False
        self._body: SimulatedBody | None = None
        self._link: BodyLink | None = None
        self.quirk = Quirk()
        self.freshness = Freshness()
        self._live = SimulatedLiveView(cfg.simulated, 0.8 * (WHITE - BLACK))
        self._under_lens: Negative | None = None  # the next negative, as live view shows it

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def body(self) -> SimulatedBody:
        """The body of the session (connecting opens one)."""
        if self._body is None:
            self.connect()
        assert self._body is not None
        return self._body

    @property
    def link(self) -> BodyLink:
        """What the burst engine speaks to: the session's body, or the watcher wrapped round it."""
        body = self.body
        return body if self._link is None else self._link

    def connect(self) -> CameraIdentity:
        """A new session with the body: its card (the configured folder, else one of this object's own) is kept
        across sessions, as a body's buffer is."""
        timing = timing_of(self.cfg.simulated)
        if self._card is None:
            self._card = self.cfg.simulated.card or Path(tempfile.mkdtemp(prefix="medianscan-sim-card-"))
            self._own_card = self.cfg.simulated.card is None
        dead_after = None if self._died_once else self.cfg.simulated.dead_after_frames  # it drops off once
        self._body = SimulatedBody(timing, self._card, dead_after_frames=dead_after, seed=self.cfg.simulated.seed)
        self._link = None if self._watch is None else self._watch(self._body)
        self.quirk = quirk_for(timing.model, self.cfg.quirks)
        self._connected = True
        self.identity = dataclasses.replace(SIMULATED_IDENTITY, model=timing.model)
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
                    f"{nearest_choices(name, str(wanted), CHOICES[name])}",
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

    def burst(self, frames: int | FrameCount, stack: Path, stem: str) -> BurstRecord:
        """Shoot `n` frames of the negative under the lens through the burst engine, as a real body is shot."""
        sim = self.cfg.simulated
        count = fixed_or(frames)
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
            elif stem.startswith(PROBE_STEM) or stem == BASE_STEM:  # probes, base bursts: clear film in the holder
                negative = Negative(sim.seed, 0, sim.height, sim.width, scale, subject="film base")
            else:
                self._bursts += 1
                on_stand = strip_of(sim) is not None or sheet_of(sim) is not None
                negative = self._negative(self._index() if on_stand else self._bursts, scale)
            self.body.new_burst(self._renderer(negative))
            choice = self.strategy(adaptive=count.least != count.most)
            record.strategy = f"{choice.strategy}: {choice.why}"
            exposure = self._exposure().exposure_time or 0.0
            engine = BurstEngine(self.link, self.cfg, self.quirk, self.freshness)
            engine.run(choice.strategy, count, record, stem, exposure)
        except BodyGoneError as exc:
            shots = self.body.shots
            self._died_once = True
            self.connect()  # the simulator always comes back, with the shots it had not handed over
            record.frames += self.fetch_left(record.stack, stem, count.most).frames
            forget(record.stack)
            cause = CameraError(
                f"the simulated camera dropped off the bus before frame {shots + 1} of {count.wanted()} into {stack}"
            )
            record.error = burst_error(cause, record, reconnected=True)
            raise BurstError(record.error, record) from exc
        except CameraError as exc:
            record.error = burst_error(exc, record)
            raise BurstError(record.error, record) from exc
        finally:
            record.seconds = time.perf_counter() - start
        return record

    def strategy(self, *, adaptive: bool = False) -> Choice:
        """The strategy this body gets, and why."""
        return choose(self.cfg.strategy, self.link.capabilities(), self.quirk, self.link.where(), adaptive=adaptive)

    def fetch_left(self, stack: Path, stem: str, frames_expected: int) -> Fetched:
        return fetch_left(self.link, stack, stem, frames_expected, self.cfg)

    def _renderer(self, negative: Negative) -> Render:
        """How the body writes shot k of `negative` onto its card: a real DNG, with the configured faults."""
        sim = self.cfg.simulated
        mosaic_layout = layout(sim.height, sim.width)
        info = CameraInfo(
            make="medianscan", model="Simulated Camera", serial=SIMULATED_IDENTITY.serial, lens="Simulated 50mm Macro"
        )
        what = f"negative {self._bursts}" if negative.film else "bare light"

        def render(path: Path, shot: int) -> list[Path]:  # stamped with its own time, as a body stamps each shot
            mosaic = negative.frame(shot, flicker=sim.flicker_frame == shot, shift=sim.shifted_frame == shot)
            exposure = self._exposure()
            write_dng(path, mosaic, mosaic_layout, info, exposure, description=f"simulated {what}, frame {shot}")
            form = self._values["imageformat"]
            if "JPEG" not in form:
                return [path]
            jpeg = path.with_suffix(".JPG")  # the body's JPEG of the shot: its raw seen small, grey
            small = (mosaic[::8, ::8] >> 6).clip(0, 255).astype(np.uint8)
            jpeg.write_bytes(bytes(imagecodecs.jpeg8_encode(small, level=85)))
            if "RAW" not in form:
                path.unlink()
                return [jpeg]
            return [jpeg, path]  # named JPEG first, as Sony bodies do

        return render

    def _negative(self, index: int, scale: float = 1.0) -> Negative:
        """Negative `index` at exposure `scale`: the one live view has shown is kept (it is under the lens). On a
        strip or a sheet, what the view shows where the rig has put it (`index` is then its position as a key)."""
        if self._under_lens is None or (self._under_lens.index, self._under_lens.scale) != (index, scale):
            sim = self.cfg.simulated
            strip, sheet = strip_of(sim), sheet_of(sim)
            through = None if strip is None else strip.through(index / 100)
            if sheet is not None:
                through = sheet.through(index)
            self._under_lens = Negative(sim.seed, index, sim.height, sim.width, scale, through=through)
        return self._under_lens

    def _index(self) -> int:
        """Which negative the view shows: the next burst's, on a strip its position in 1/100 mm, on a sheet the
        stage's (a key)."""
        sheet = sheet_of(self.cfg.simulated)
        if sheet is not None:
            return sheet.key()
        strip = strip_of(self.cfg.simulated)
        return self._bursts + 1 if strip is None else round(strip.carriage.position() * 100)

    def preview(self) -> bytes:
        """The negative the next burst will shoot, drifting through focus."""
        if not self._connected:
            raise CameraError("the simulated camera is not connected")
        index = self._index()
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
        if self._card is not None and self._own_card:
            shutil.rmtree(self._card, ignore_errors=True)
            self._card = None
