"""What we know about a frame besides its pixels, shared by the readers, the checks and the DNG writer.

Format-free on purpose: `frames.py` fills these from files, `dng.py` writes them back, and the simulated camera
invents them. Nothing here opens a file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class CameraInfo:
    """The body and lens that took a frame (empty strings where the file does not say)."""

    make: str = ""
    model: str = ""
    serial: str = ""
    lens: str = ""


@dataclass(frozen=True)
class Exposure:
    """The exposure a frame was taken at, as the file records it (None where it does not say)."""

    iso: float | None = None
    exposure_time: float | None = None  # seconds
    f_number: float | None = None
    focal_length: float | None = None  # mm
    taken: str | None = None  # EXIF DateTimeOriginal, "YYYY:MM:DD HH:MM:SS"


class Photosites(NamedTuple):
    """The photosites of one CFA position in an area: `mosaic[rows, cols]`, all of colour index `colour`."""

    rows: slice
    cols: slice
    colour: int  # an index into MosaicLayout.colors


@dataclass(frozen=True)
class MosaicLayout:
    """How a raw sensor array is laid out, everything a raw editor needs to develop it.

    `pattern` is the CFA repeat (2x2 Bayer, 6x6 X-Trans, ...) as indices into `colors` (e.g. "RGBG"), exactly
    as rawpy's `raw_pattern` / `color_desc` report them. Rectangles are in sensor coordinates of the full
    array (masked border included). A raw without a mosaic (a linear DNG, a film scanner's RGB raw, an sRAW) has
    `samples` 3: every pixel holds R, G and B, `colors` is "RGB", and the pattern is not used.
    """

    pattern: npt.NDArray[np.uint8]
    colors: str  # one letter per colour index, e.g. "RGBG"
    black_levels: tuple[int, ...]  # one per colour index
    white_level: int
    active_area: tuple[int, int, int, int]  # top, left, bottom, right
    default_crop: tuple[int, int, int, int]  # x, y, width, height, relative to active_area's top-left
    color_matrix: npt.NDArray[np.float64]  # 3x3 XYZ(D65) -> camera, DNG ColorMatrix1
    as_shot_neutral: tuple[float, float, float]  # camera-native neutral, DNG AsShotNeutral
    orientation: int = 1  # EXIF orientation 1..8
    # Colour tags carried over verbatim from a DNG source (ColorMatrix2, ForwardMatrix, profiles, opcode lists):
    # tag code -> (TIFF data type code, count, value), as tifffile's `extratags` takes them.
    extra_tags: dict[int, tuple[int, int, object]] = field(default_factory=dict)
    samples: int = 1  # 1: a colour-filter mosaic; 3: linear RGB (DNG PhotometricInterpretation LinearRaw)

    @property
    def linear(self) -> bool:
        """True for a raw without a mosaic: three samples per pixel."""
        return self.samples == 3

    def photosites(self, area: tuple[int, int, int, int], row_step: int = 1) -> list[Photosites]:
        """Each CFA position inside `area` (top, left, bottom, right; sensor coordinates) as strided slices of
        the full array, with its colour; `row_step` keeps every n-th repeat of rows (a sample), for any
        CFA. The flat field, the raw clipping and the bracket's statistics all walk the mosaic this way."""
        ph, pw = self.pattern.shape
        top, left, bottom, right = area
        found = []
        for py in range(ph):
            for px in range(pw):
                y0, x0 = top + (py - top) % ph, left + (px - left) % pw
                index = int(self.pattern[y0 % ph, x0 % pw])
                found.append(Photosites(slice(y0, bottom, ph * row_step), slice(x0, right, pw), index))
        return found

    def tag_values(self, tag: int) -> npt.NDArray[np.float64] | None:
        """A carried tag's values as real numbers (None when absent or unreadable). Rationals come as tifffile reads
        them, numerator/denominator pairs, or as real numbers when we set them ourselves."""
        entry = self.extra_tags.get(tag)
        if entry is None:
            return None
        type_code, count, value = entry
        try:
            numbers = np.asarray(value, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            return None
        if type_code in (RATIONAL, SRATIONAL) and numbers.size == 2 * count:
            numbers = numbers[0::2] / np.where(numbers[1::2] == 0, np.nan, numbers[1::2])
        return numbers if numbers.size == count and np.all(np.isfinite(numbers)) else None

    @property
    def baseline_ev(self) -> float:
        """The DNG BaselineExposure this mosaic carries (0 without one): editors show it 2^ev times brighter."""
        values = self.tag_values(BASELINE_EXPOSURE)
        return float(values[0]) if values is not None and abs(values[0]) <= MAX_BASELINE_EV else 0.0


UINT16_TOP = 65535
BASELINE_EXPOSURE = 50730  # the DNG tag
RATIONAL, SRATIONAL = 5, 10  # TIFF types
MAX_BASELINE_EV = 16.0  # a BaselineExposure beyond this many stops is a damaged tag, taken as none


@dataclass(frozen=True)
class Headroom:
    """How a mosaic whose signal now reaches `top_gain` times the sensor's range (a flat field's gains, a
    bracket's ratio) goes into 16 bits, and what its DNG says so that editors show it as bright as before."""

    scale: float  # the signal over black is multiplied by this
    white_level: int  # where white is now
    baseline_ev: float  # log2(top_gain): BaselineExposure brings the brightness back


def headroom(layout: MosaicLayout, top_gain: float, *, expand: bool) -> Headroom:
    """The scale that fits `top_gain` times the range into 16 bits; at most 1 unless `expand` (a bracket may use
    the bits a 12- or 14-bit sensor leaves free)."""
    black = np.asarray(layout.black_levels, dtype=np.float64)
    low = float(black.min())
    span = float(layout.white_level) - low
    fit = (UINT16_TOP - float(black.max())) / max(1.0, span * top_gain)
    scale = fit if expand else min(1.0, fit)
    white = min(UINT16_TOP, math.ceil(low + span * top_gain * scale))
    return Headroom(scale, white, math.log2(top_gain))


def with_headroom(layout: MosaicLayout, room: Headroom) -> MosaicLayout:
    """`layout` with the raised white level and BaselineExposure (added to the source's own, if it had one)."""
    extra = dict(layout.extra_tags)
    extra[BASELINE_EXPOSURE] = (SRATIONAL, 1, [room.baseline_ev + layout.baseline_ev])
    return replace(layout, white_level=room.white_level, extra_tags=extra)
