"""The white level a blend's DNG says, so that editors develop it as bright as they develop its source raw.

An editor scales a raw by (value - black) / (white - black), and reads white from different places:
- darktable: a native raw's white from its own camera data (rawspeed's cameras.xml: 3398 for the Canon EOS 30D,
  16300 for a Sony ILCE-7M3), a DNG's from its WhiteLevel tag;
- LibRaw (rawpy, digiKam), dcraw and RawTherapee's neutral processing: the raw's own maximum, from LibRaw's tables
  or the container (4095 for the 30D, 16383 for a 14-bit ARW), a DNG's from WhiteLevel;
- none applies a DNG's BaselineExposure to its default brightness (measured: darktable 4.2 and LibRaw 0.22 not
  at all, RawTherapee 5.9 only partly), so that tag cannot reconcile them.
Where the tables agree (most bodies, within a few hundredths of a stop) one WhiteLevel serves every editor. Where
they do not (the 30D: 0.28 EV apart) no DNG can serve both, and `blend.white_level` says whose to follow:
"darktable" (the default, where darktable is installed here) or "libraw". With darktable's, the blend develops
like its source in darktable, in RawTherapee's default profile (its curve is fitted to the preview, which takes
the camera preview's tone) and in LibRaw's default processing (auto-brightened); only LibRaw's linear processing
without auto-brightening then differs from the source by the tables' gap (measured in tests/test_renders.py).

Either way the white level never sits below data the frames really hold (a lossy-compressed raw overshoots its
nominal maximum): it is raised to the highest value enough photosites reach, so nothing real is cut off; a few
stuck photosites do not move it. And where the sensor clipped below the white level the tables say (a film base
exposed to the right, at an ISO whose saturation is lower), the pile-up of photosites at one top value is where
white is: the white level comes down to it, so what the sensor clipped reads as clipped (LibRaw's default
processing does the same with the source: it lowers its maximum to the data's when they come near).
"""

from __future__ import annotations

import functools
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from medianscan.metadata import MosaicLayout
from medianscan.vocabulary import WhiteLevelFrom

log = logging.getLogger(__name__)

DARKTABLE_CAMERAS = tuple(
    Path(prefix) / "share/darktable/rawspeed/cameras.xml" for prefix in ("/usr", "/usr/local", "/app", "/opt/darktable")
)
FLOOR_SHARE = 1e-5  # the floor is the highest value at least this share of the active area's photosites reach ...
FLOOR_MIN_PHOTOSITES = 16  # ... and at least this many of those read (stuck photosites are single)
FLOOR_ROW_STEP = 3
PILE_UP_SHARE = 5e-4  # this share of the active area's photosites at one top value below white: the sensor clipped
PILE_UP_RANGE = 0.5  # ... when that value lies in the upper half of the range


@dataclass(frozen=True)
class SensorLevels:
    """A body's black and white levels as an editor's camera data gives them."""

    black: int
    white: int


def with_editor_white(
    layout: MosaicLayout, make: str, model: str, iso: float | None, source: WhiteLevelFrom
) -> MosaicLayout:
    """`layout` (LibRaw's reading of a native raw) with the white level of the editor `source` names. A DNG
    source keeps its own WhiteLevel: every editor reads that one."""
    if source == "libraw":
        return layout
    levels = darktable_levels(make, model, iso)
    if levels is None:
        _note_no_darktable_data(make, model)
        return layout
    return replace(layout, white_level=levels.white)


@functools.cache
def _note_no_darktable_data(make: str, model: str) -> None:
    """Said once per body and process: the DNG then follows LibRaw's white level (both tables agree on most)."""
    where = _found_cameras_file()
    log.info(
        "%s: the blend's DNG carries LibRaw's white level for %s %s",
        f"darktable's camera data ({where}) does not list it" if where else "darktable is not installed here",
        make,
        model,
    )


def data_floor(mosaic: npt.NDArray[np.uint16], layout: MosaicLayout) -> int:
    """The highest value at least FLOOR_SHARE (and FLOOR_MIN_PHOTOSITES) of the active area's photosites reach,
    read on every FLOOR_ROW_STEP-th row (an odd step, so every CFA row is among them)."""
    top, left, bottom, right = layout.active_area
    sample = mosaic[top:bottom:FLOOR_ROW_STEP, left:right]
    counts = np.bincount(sample.reshape(-1))
    reached = np.cumsum(counts[::-1])  # photosites at or above each value, from the top down
    need = max(FLOOR_MIN_PHOTOSITES, FLOOR_SHARE * sample.size)
    return int(len(counts) - 1 - int(np.searchsorted(reached, need)))


def floored(layout: MosaicLayout, mosaic: npt.NDArray[np.uint16]) -> MosaicLayout:
    """`layout` whose white level is where the data say white is: never below what they reach, and at the top
    value the sensor clipped at when it piled up below the white level (see module docstring)."""
    top, left, bottom, right = layout.active_area
    sample = mosaic[top:bottom:FLOOR_ROW_STEP, left:right]
    highest = int(sample.max())
    if highest < layout.white_level:  # a pile-up in the upper half of the range is the sensor's saturation
        black = max(layout.black_levels)
        high_enough = highest > black + PILE_UP_RANGE * (layout.white_level - black)
        piled = high_enough and np.count_nonzero(sample == highest) >= PILE_UP_SHARE * sample.size
        return replace(layout, white_level=highest) if piled else layout
    if highest == layout.white_level:
        return layout  # the usual case, found in a millisecond
    floor = data_floor(mosaic, layout)
    return layout if floor <= layout.white_level else replace(layout, white_level=floor)


def darktable_levels(make: str, model: str, iso: float | None) -> SensorLevels | None:
    """darktable's levels for a native raw of this body at this ISO, from its camera data; None when darktable is
    not installed here or does not know the body."""
    path = _found_cameras_file()
    if path is None:
        return None
    sensors = _darktable_sensors(path).get((make.strip(), model.strip()))
    if not sensors:
        return None
    default = None
    for isos, low, high, levels in sensors:
        if iso is not None and (round(iso) in isos or (low is not None and high is not None and low <= iso <= high)):
            return levels
        if not isos and low is None:
            default = levels
    return default


def _found_cameras_file() -> Path | None:
    return next((path for path in DARKTABLE_CAMERAS if path.is_file()), None)


_Sensor = tuple[frozenset[int], float | None, float | None, SensorLevels]


@functools.cache
def _darktable_sensors(path: Path) -> dict[tuple[str, str], list[_Sensor]]:
    """(EXIF make, model) -> the Sensor entries of darktable's native (not sRAW, not DNG) camera modes."""
    found: dict[tuple[str, str], list[_Sensor]] = {}
    for camera in ET.parse(path).getroot().iter("Camera"):
        if camera.get("mode") or camera.get("supported") == "no":
            continue
        make, model = camera.get("make", ""), camera.get("model", "")
        sensors: list[_Sensor] = []
        for sensor in camera.iter("Sensor"):
            try:
                levels = SensorLevels(int(sensor.get("black", "0")), int(sensor.get("white", "0")))
                isos = frozenset(int(v) for v in sensor.get("iso_list", "").split())
                low, high = sensor.get("iso_min"), sensor.get("iso_max")
            except ValueError:
                continue
            if levels.white > 0:
                sensors.append((isos, float(low) if low else None, float(high) if high else None, levels))
        if not sensors:
            continue
        found.setdefault((make, model), sensors)
        for alias in camera.iter("Alias"):
            if alias.text:
                found.setdefault((make, alias.text.strip()), sensors)
    return found
