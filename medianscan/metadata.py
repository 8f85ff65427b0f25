"""What we know about a frame besides its pixels, shared by the readers, the checks and the DNG writer.

Format-free on purpose: `frames.py` fills these from files, `dng.py` writes them back, and the simulated camera
invents them. Nothing here opens a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class MosaicLayout:
    """How a raw sensor array is laid out, everything a raw editor needs to develop it.

    `pattern` is the CFA repeat (2x2 Bayer, 6x6 X-Trans, ...) as indices into `colors` (e.g. "RGBG"), exactly
    as rawpy's `raw_pattern` / `color_desc` report them. Rectangles are in sensor coordinates of the full
    array (masked border included).
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

    def black_level_image(self, shape: tuple[int, int]) -> npt.NDArray[np.uint16]:
        """The black level at every photosite of an array of `shape` (for level checks and previews)."""
        ph, pw = self.pattern.shape
        tile = np.asarray(self.black_levels, dtype=np.uint16)[self.pattern]
        reps = (-(-shape[0] // ph), -(-shape[1] // pw))
        return np.tile(tile, reps)[: shape[0], : shape[1]]
