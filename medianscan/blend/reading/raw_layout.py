"""What a raw says of its sensor and colour, as the DNG writer needs it: CFA layout, levels, areas, crop,
orientation, white balance, colour matrix, and a DNG source's own colour tags and opcode lists.

Apart from frames (which decodes pixels) because the layout is a concern of its own that the capture side needs
too: `frames: auto` (capture/camera/burst/enough.py) reads it from a rawpy object it has already opened, without
reading a frame.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import rawpy
import tifffile

from medianscan.formats import DNG_VERSION_TAG, is_tiff
from medianscan.metadata import MosaicLayout

# LibRaw's flip (sizes.flip) -> EXIF Orientation, mirrored flips included.
_FLIP_TO_ORIENTATION = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}

# DNG colour tags (IFD0) carried over from a DNG source so the blend develops exactly like it.
# fmt: off
_DNG_COLOUR_TAGS = (
    50721, 50722,  # ColorMatrix1/2
    50723, 50724,  # CameraCalibration1/2
    50727,  # AnalogBalance
    50730,  # BaselineExposure
    50778, 50779,  # CalibrationIlluminant1/2
    50932,  # ProfileCalibrationSignature
    50936,  # ProfileName
    50937, 50938, 50939,  # ProfileHueSatMapDims, ProfileHueSatMapData1/2
    50940,  # ProfileToneCurve
    50941,  # ProfileEmbedPolicy
    50942,  # ProfileCopyright
    50964, 50965,  # ForwardMatrix1/2
    50981, 50982,  # ProfileLookTableDims/Data
)
# Opcode lists live with the raw data, in the CFA SubIFD.
_DNG_RAW_TAGS = (51008, 51009, 51022)  # OpcodeList1/2/3
# fmt: on

# XYZ (D65) -> linear sRGB (IEC 61966-2-1): the colour of linear RGB that says nothing of its own.
XYZ_TO_SRGB = np.array(
    [[3.2404542, -1.5371385, -0.4985314], [-0.9692660, 1.8760108, 0.0415560], [0.0556434, -0.2040259, 1.0572252]]
)


def layout_from_rawpy(raw: rawpy.RawPy) -> MosaicLayout:
    """The CFA layout, levels, areas and colour of an unpacked rawpy object, as a DNG writer needs them."""
    sizes = raw.sizes
    linear = raw.raw_pattern is None
    pattern = np.zeros((1, 1), dtype=np.uint8) if linear else np.asarray(raw.raw_pattern, dtype=np.uint8)
    colors = "RGB" if linear else raw.color_desc.decode()
    n_colors = len(colors)
    black = tuple(int(b) for b in raw.black_level_per_channel[:n_colors])
    white = int(raw.white_level)  # what LibRaw scales by (not the makernote's per-channel level: see blend.levels)
    top, left = int(sizes.top_margin), int(sizes.left_margin)
    active = (top, left, top + int(sizes.height), left + int(sizes.width))
    crop = _default_crop(sizes, active)
    matrix = np.asarray(raw.rgb_xyz_matrix, dtype=np.float64)[:3, :3]
    wb = [float(v) for v in raw.camera_whitebalance[:3]]
    if min(wb) <= 0:
        wb = [float(v) for v in raw.daylight_whitebalance[:3]]
    if min(wb) <= 0:
        wb = [1.0, 1.0, 1.0]
    neutral = (wb[1] / wb[0], 1.0, wb[1] / wb[2])
    return MosaicLayout(
        pattern=pattern,
        colors=colors,
        black_levels=black,
        white_level=white,
        active_area=active,
        default_crop=crop,
        color_matrix=matrix,
        as_shot_neutral=neutral,
        orientation=_FLIP_TO_ORIENTATION.get(int(sizes.flip), 1),
        samples=3 if linear else 1,
    )


def _default_crop(sizes: rawpy.ImageSizes, active: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """LibRaw's camera crop (when it knows one) relative to the active area, else the whole active area."""
    top, left, bottom, right = active
    width, height = right - left, bottom - top
    cx, cy = int(sizes.crop_left_margin) - left, int(sizes.crop_top_margin) - top
    cw, ch = int(sizes.crop_width), int(sizes.crop_height)
    if cw > 0 and ch > 0 and cx >= 0 and cy >= 0 and cx + cw <= width and cy + ch <= height:
        return (cx, cy, cw, ch)
    return (0, 0, width, height)


def with_source_colour(layout: MosaicLayout, path: Path) -> MosaicLayout:
    """The layout with what the raw file itself says of its colour: a DNG's colour tags and opcode lists, its
    ColorMatrix1 where LibRaw knows none (OSError when the file cannot be read)."""
    with path.open("rb") as fh:
        tiff_structured = is_tiff(fh.read(4))
    if tiff_structured:
        layout = _with_dng_colour_tags(layout, path)
    return _with_dng_matrix(layout)


def _with_dng_matrix(layout: MosaicLayout) -> MosaicLayout:
    """LibRaw knows no matrix for a body missing from its tables; a DNG of such a body still carries its own
    ColorMatrix1, which is the one to use. Linear RGB that carries none (a film scanner's) is taken as sRGB."""
    if np.any(layout.color_matrix):
        return layout
    matrix = layout.tag_values(50721)
    if matrix is not None and matrix.size == 9:
        return replace(layout, color_matrix=matrix.reshape(3, 3))
    return replace(layout, color_matrix=XYZ_TO_SRGB) if layout.linear else layout


def _with_dng_colour_tags(layout: MosaicLayout, path: Path) -> MosaicLayout:
    """Carry a DNG source's colour tags (profiles, forward matrices) and opcode lists over to the blend."""

    try:
        with tifffile.TiffFile(path) as tif:
            ifd0 = tif.pages.first
            if DNG_VERSION_TAG not in ifd0.tags:  # not a DNG
                return layout
            found: list[tuple[Any, tuple[int, ...]]] = [(ifd0.tags, _DNG_COLOUR_TAGS)]
            raw_ifds = [p for p in [ifd0, *(ifd0.pages or [])] if p.tags.valueof(254, 0) == 0]
            if raw_ifds:
                found.append((raw_ifds[0].tags, _DNG_RAW_TAGS))
            extra = {
                code: (tags[code].dtype, tags[code].count, tags[code].value)
                for tags, codes in found
                for code in codes
                if code in tags
            }
    except (tifffile.TiffFileError, ValueError, OSError):
        return layout

    return replace(layout, extra_tags=extra)
