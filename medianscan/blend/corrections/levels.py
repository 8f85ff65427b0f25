"""The white level and crop a blend's DNG says, so that editors develop it as bright and as large as its source.

An editor scales a raw by (value - black) / (white - black), and reads white from different places:
- darktable: a native raw's white from its own camera data (rawspeed's cameras.xml: 3398 for the Canon EOS 30D,
  16300 for a Sony ILCE-7M3), a DNG's from its WhiteLevel tag;
- LibRaw (rawpy, digiKam), dcraw and RawTherapee's neutral processing: the raw's own maximum, from LibRaw's tables
  or the container (4095 for the 30D, 16383 for a 14-bit ARW), a DNG's from WhiteLevel;
- none applies a DNG's BaselineExposure to its default brightness (measured: darktable 4.2 and LibRaw 0.22 not
  at all, RawTherapee 5.9 only partly), so that tag cannot reconcile them.
Where the tables agree (most bodies, within a few hundredths of a stop) one WhiteLevel serves every editor. Where
they do not (the 30D: 0.28 EV apart) no DNG can serve both, and `blend.white_level` says whose to follow:
"darktable" (the default) or "libraw". darktable's figures come with the package (medianscan/data, an extract of
rawspeed's cameras.xml made by scripts/camera_facts.py), never from a darktable installed here: the same stack
gives the same DNG on every host.

The visible area: LibRaw and RawTherapee show a DNG's ActiveArea (RawTherapee less its demosaic border, as for any
raw), darktable the DefaultCrop inside it; for a native raw LibRaw and RawTherapee show LibRaw's visible area
(the ActiveArea written) and darktable its own camera crop. So the DefaultCrop of a native raw's blend is
darktable's crop for that body, as far as it lies inside the active area (the whole active area for a body
darktable does not know), not the camera's JPEG crop LibRaw reports, which no editor applies to the native raw.

Either way the white level never sits below data the frames really hold (a lossy-compressed raw overshoots its
nominal maximum): it is raised to the highest value enough photosites reach, so nothing real is cut off; a few
stuck photosites do not move it. And where the sensor clipped below the white level the tables say (a film base
exposed to the right, at an ISO whose saturation is lower), the pile-up of photosites at one top value is where
white is: the white level comes down to it, so what the sensor clipped reads as clipped (LibRaw's default
processing does the same with the source: it lowers its maximum to the data's when they come near).
"""

from __future__ import annotations

import functools
import json
import logging
import math
from dataclasses import dataclass, replace
from importlib import resources
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from medianscan.metadata import BASELINE_EXPOSURE, SRATIONAL, MosaicLayout
from medianscan.records import BracketRecord, FlatRecord
from medianscan.vocabulary import WhiteLevelFrom

log = logging.getLogger(__name__)

CAMERA_FACTS = "rawspeed_cameras.json"  # in medianscan/data: see scripts/camera_facts.py
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


@dataclass(frozen=True)
class CameraFacts:
    """What darktable's camera data say of one body: its crop and its sensor levels by ISO."""

    crop: tuple[int, int, int, int] | None  # x, y, width, height; width or height <= 0: from the far edge
    sensors: tuple[tuple[frozenset[int], int, int, SensorLevels], ...]  # ISOs, ISO min, max (0: none), levels

    def levels(self, iso: float | None) -> SensorLevels | None:
        """The levels at `iso`: the entry listing it or whose range holds it, else the entry for any ISO."""
        default = None
        for isos, low, high, levels in self.sensors:
            if iso is not None and (round(iso) in isos or (low and high and low <= iso <= high)):
                return levels
            if not isos and not low:
                default = levels
        return default


def with_camera_facts(
    layout: MosaicLayout, make: str, model: str, iso: float | None, source: WhiteLevelFrom, *, shape: tuple[int, ...]
) -> MosaicLayout:
    """`layout` (LibRaw's reading of a native raw, of full array `shape`) with the white level of the editor
    `source` names and darktable's crop (see the module docstring). Not for a DNG source: every editor reads a
    DNG's own WhiteLevel and areas."""
    facts = camera_facts(make, model)
    if facts is None:
        _note_unknown(make, model)
        return replace(layout, default_crop=whole_area(layout))
    levels = facts.levels(iso) if source == "darktable" else None
    white = levels.white if levels is not None else layout.white_level
    return replace(layout, white_level=white, default_crop=darktable_crop(layout, facts.crop, shape))


def whole_area(layout: MosaicLayout) -> tuple[int, int, int, int]:
    top, left, bottom, right = layout.active_area
    return (0, 0, right - left, bottom - top)


def darktable_crop(
    layout: MosaicLayout, crop: tuple[int, int, int, int] | None, shape: tuple[int, ...]
) -> tuple[int, int, int, int]:
    """darktable's camera crop of a raw of full array `shape`, as a DefaultCrop relative to the active area and
    clipped to it (whole CFA repeats, so no editor's colours shift); the whole active area without one."""
    if crop is None:
        return whole_area(layout)
    x, y, width, height = crop
    width = shape[1] - x + width if width <= 0 else width
    height = shape[0] - y + height if height <= 0 else height
    top, left, bottom, right = layout.active_area
    ph, pw = np.asarray(layout.pattern).shape
    x0, y0 = max(x, left), max(y, top)
    x0, y0 = x0 + (left - x0) % pw, y0 + (top - y0) % ph  # keep the CFA phase of the active area
    x1, y1 = min(x + width, right), min(y + height, bottom)
    if x1 - x0 < pw or y1 - y0 < ph:
        return whole_area(layout)
    return (x0 - left, y0 - top, x1 - x0, y1 - y0)


@functools.cache
def _note_unknown(make: str, model: str) -> None:
    """Said once per body and process: the DNG then follows LibRaw's white level and area."""
    log.info(
        "darktable's camera data do not list %s %s: its blend's DNG carries LibRaw's white level and area", make, model
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


def tightened(layout: MosaicLayout, mosaic: npt.NDArray[np.uint16], source_ev: float) -> MosaicLayout:
    """`layout` whose white level a flat's gains or a bracket's merge raised for headroom (its BaselineExposure
    above the source's `source_ev` brings the brightness back) lowered to what the data reach (data_floor), never
    below the white at which no BaselineExposure is needed, BaselineExposure lowered with it. darktable and
    RawTherapee ignore BaselineExposure (measured): each EV of headroom the data do not use develops an EV darker
    there. Adobe's readers, which honour it, see the same picture either way."""
    raised = layout.baseline_ev - source_ev
    if raised <= 1e-6:
        return layout
    low = float(min(layout.black_levels))
    unraised = low + (layout.white_level - low) * 2.0**-raised  # the white that needs no BaselineExposure
    white = min(layout.white_level, max(math.ceil(unraised), data_floor(mosaic, layout)))
    ev = source_ev + math.log2((white - low) / (unraised - low)) if white > math.ceil(unraised) else source_ev
    extra = dict(layout.extra_tags)
    extra[BASELINE_EXPOSURE] = (SRATIONAL, 1, [ev])
    return replace(layout, white_level=white, extra_tags=extra)


Headroom = TypeVar("Headroom", FlatRecord, BracketRecord)


def settled(
    layout: MosaicLayout, mosaic: npt.NDArray[np.uint16], source_ev: float, record: Headroom
) -> tuple[MosaicLayout, Headroom]:
    """`tightened`, and the record of what raised the white level (its white and BaselineExposure added) to match."""
    out = tightened(layout, mosaic, source_ev)
    raised = max(0.0, round(out.baseline_ev - (layout.baseline_ev - record.baseline_exposure_ev), 4))
    return out, replace(record, white_level=out.white_level, baseline_exposure_ev=raised)


def darktable_levels(make: str, model: str, iso: float | None) -> SensorLevels | None:
    """darktable's levels for a native raw of this body at this ISO, from the camera data shipped with the package;
    None when they do not list the body."""
    facts = camera_facts(make, model)
    return None if facts is None else facts.levels(iso)


def camera_facts(make: str, model: str) -> CameraFacts | None:
    """darktable's camera data for the body EXIF names `make` `model`; None when they do not list it."""
    return _all_facts().get(f"{make.strip()}\t{model.strip()}")


@functools.cache
def _all_facts() -> dict[str, CameraFacts]:
    data = json.loads(resources.files("medianscan.data").joinpath(CAMERA_FACTS).read_text(encoding="utf-8"))
    found = {}
    for key, entry in data["cameras"].items():
        crop = entry.get("crop")
        sensors = tuple(
            (frozenset(isos), int(low), int(high), SensorLevels(int(black), int(white)))
            for black, white, low, high, isos in entry.get("sensors", [])
        )
        found[key] = CameraFacts(tuple(int(v) for v in crop) if crop else None, sensors)  # type: ignore[arg-type]
    return found
