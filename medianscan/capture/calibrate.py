"""Exposure from the film base (ETTR), metered on the raw: the clear base becomes the black point after inversion,
so it should sit just under clipping, and the camera's own histogram is of a JPEG.

With the clear base (a blank frame or the rebate) in the holder, raw probes are shot at the locked settings; the
brightest CFA channel's 99.9th percentile is read against that channel's true white level (LibRaw's per-channel
camera white level where the body has one, not a nominal 2^bits - 1). A probe that clipped steps down hard; one
that did not sets the target, about 90 % of the raw range. The shutter chosen is the camera's own choice closest
to the target without overshooting, by the choices' true durations (labels are rounded: "1/3" is 0.315 s), and a
final probe at it confirms it.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rawpy

from medianscan.capture.camera import Camera
from medianscan.capture.camera.files import PROBE_STEM
from medianscan.capture.camera.settings import true_seconds
from medianscan.errors import MedianscanError
from medianscan.library import film_base
from medianscan.library.film_base import FilmBase
from medianscan.vocabulary import canonical_key
from medianscan.wording import share

TARGET = 0.90  # of the raw range, for the brightest channel's 99.9th percentile
ACCEPT = (0.70, 0.97)  # what a burst at the chosen speed must reach
PERCENTILE = 99.9
CLIPPED = 0.001  # a probe with more than this share of a channel's photosites at white has clipped
STEP_DOWN = 8.0  # a clipped probe: 3 EV shorter
MAX_PROBES = 8


class CalibrationError(MedianscanError):
    """The exposure cannot be calibrated; the message says why and what to change."""


@dataclass(frozen=True)
class Meter:
    """One probe, metered on its raw."""

    shutter: str
    brightest: str  # the colour of the brightest channel
    fraction: float  # its 99.9th percentile over black, as a share of its white level over black
    clipped: float  # the largest share of photosites at white, any channel

    @property
    def over(self) -> bool:
        return self.clipped > CLIPPED or self.fraction >= 0.995

    def to_json(self) -> dict[str, Any]:
        return {
            "shutterspeed": self.shutter,
            "brightest_channel": self.brightest,
            "fraction": round(self.fraction, 4),
            "clipped": round(self.clipped, 6),
        }


@dataclass
class Calibration:
    shutterspeed: str
    headroom_ev: float
    brightest_channel: str
    probes: list[Meter] = field(default_factory=list)
    base: FilmBase | None = None  # the final probe's film base (its frame is discarded with the others)
    base_problem: str | None = None  # why the final probe gave no base (not clear film), when it gave none

    def to_json(self) -> dict[str, Any]:
        return {
            "shutterspeed": self.shutterspeed,
            "headroom_ev": round(self.headroom_ev, 3),
            "brightest_channel": self.brightest_channel,
            "probes": [p.to_json() for p in self.probes],
            "film_base": None if self.base is None else self.base.to_json(),
        }


def meter(path: Path, shutter: str) -> Meter:
    """The brightest channel of a raw probe against its own white level."""
    try:
        with rawpy.imread(str(path)) as raw:
            values = raw.raw_image_visible
            colours = raw.raw_colors_visible
            blacks = raw.black_level_per_channel
            whites = raw.camera_white_level_per_channel or [raw.white_level] * len(blacks)
            names = raw.color_desc.decode()
            best = ("?", -1.0)
            worst_clip = 0.0
            for index in range(len(blacks)):
                sites = values[colours == index]
                if sites.size == 0:
                    continue
                span = max(1.0, float(whites[index]) - float(blacks[index]))
                top = (float(np.percentile(sites, PERCENTILE)) - float(blacks[index])) / span
                worst_clip = max(worst_clip, float(np.count_nonzero(sites >= whites[index])) / sites.size)
                if top > best[1]:
                    best = (names[index], top)
    except (rawpy.LibRawError, OSError) as exc:
        raise CalibrationError(f"{path}: the probe cannot be read as a raw ({exc})") from exc
    return Meter(shutter, best[0], best[1], worst_clip)


class ExposureCalibration:
    """Probes `camera` (connected, its other settings locked) and picks its shutter choice for the film base."""

    def __init__(self, camera: Camera, settings: dict[str, str]) -> None:
        self.camera = camera
        self.settings = settings  # the camera's configured settings (the probes change only the shutter)
        self.probes: list[Meter] = []
        self.last_frame: Path | None = None  # the last probe's raw, until the probes are discarded

    def choices(self) -> list[tuple[float, str]]:
        """The body's shutter choices with their true durations, shortest first."""
        for info in self.camera.describe():
            if canonical_key(info.name) == "shutterspeed" and not info.readonly:
                timed = [(t, c) for c in info.choices if (t := true_seconds(c)) is not None]
                if timed:
                    return sorted(timed)
        raise CalibrationError(
            "this camera has no shutter speed libgphoto2 can set (no shutterspeed widget with timed choices): "
            "set the exposure by hand"
        )

    def probe(self, shutter: str, folder: Path) -> Meter:
        self.settings["shutterspeed"] = shutter
        record = self.camera.burst(1, folder, f"{PROBE_STEM}-{len(self.probes) + 1:02d}")
        if not record.frames:
            raise CalibrationError(f"the probe at {shutter} gave no raw frame")
        reading = meter(record.frames[0], shutter)
        self.last_frame = record.frames[0]
        self.probes.append(reading)
        return reading

    def run(self, start: str | None = None) -> Calibration:
        choices = self.choices()
        times = [t for t, _ in choices]
        with tempfile.TemporaryDirectory(prefix="medianscan-probe-") as tmp:
            folder = Path(tmp)
            at = _nearest(choices, true_seconds(start) if start else None)
            reading = self.probe(choices[at][1], folder)
            while reading.over:
                if at == 0:
                    raise CalibrationError(
                        f"still clipped at the fastest shutter speed {choices[0][1]} ({reading.brightest} channel): "
                        "dim the light, close the aperture or lower the ISO"
                    )
                at = _nearest(choices, times[at] / STEP_DOWN)
                if len(self.probes) >= MAX_PROBES:
                    raise CalibrationError(f"no unclipped probe after {MAX_PROBES} tries")
                reading = self.probe(choices[at][1], folder)
            if reading.fraction <= 0.0:
                raise CalibrationError(f"the probe at {choices[at][1]} is black: is the light on?")
            wanted = times[at] * TARGET / reading.fraction
            fitting = [i for i, t in enumerate(times) if t <= wanted * 1.0001]
            if not fitting:
                raise CalibrationError(
                    f"the film base wants {wanted:.2g} s, shorter than the fastest speed {choices[0][1]}: dim the light"
                )
            chosen = fitting[-1]
            if chosen == len(times) - 1 and wanted > times[-1] * 1.26:
                raise CalibrationError(
                    f"the light is too dim: the film base reaches only {share(reading.fraction)} of the raw range at "
                    f"{choices[at][1]}, and even the slowest speed {choices[-1][1]} would give "
                    f"{share(min(1.0, reading.fraction * times[-1] / times[at]))}; open the aperture, raise the "
                    "ISO or brighten the light"
                )
            final = self.probe(choices[chosen][1], folder) if chosen != at else reading
            base, problem = _base_of(self.last_frame, final.shutter)
        expected = reading.fraction * times[chosen] / times[at]
        if final.over or abs(final.fraction / expected - 1) > 0.1:
            raise CalibrationError(
                f"the confirming probe at {final.shutter} reached {share(final.fraction)} of the raw range, expected "
                f"{share(expected)}: the exposure did not follow the shutter; is the camera in manual (M) mode?"
            )
        if not ACCEPT[0] <= final.fraction <= ACCEPT[1]:
            raise CalibrationError(
                f"the body's nearest shutter speed without clipping, {final.shutter}, puts the film base at only "
                f"{share(final.fraction)} of the raw range (70-97% wanted): change the light or the aperture by a "
                "third of a stop and calibrate again"
            )
        return Calibration(final.shutter, -math.log2(final.fraction), final.brightest, list(self.probes), base, problem)


def _base_of(frame: Path | None, shutter: str) -> tuple[FilmBase | None, str | None]:
    """The film base of the final probe, read before the probes are discarded (the roll's base when applied), or
    why it gives none: the calibration stands without it."""
    if frame is None:
        return None, "no probe frame"
    try:
        base = film_base.clear_film([frame], film_base.SOURCE_PROBE)
    except MedianscanError as exc:
        return None, str(exc)
    return dataclasses.replace(base, measured_from=(f"the probe at {shutter} (not kept)",)), None


def _nearest(choices: list[tuple[float, str]], seconds: float | None) -> int:
    """The index of the choice nearest `seconds` in stops (the middle one when None)."""
    if seconds is None:
        return len(choices) // 2
    return min(range(len(choices)), key=lambda i: abs(math.log2(choices[i][0] / seconds)))
