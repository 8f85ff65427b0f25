"""DNG 1.7 raws whose tiles are JPEG XL (compression 52546), as Adobe's DNG Converter and Lightroom write them since
2023: LibRaw 0.22 refuses them ("Unsupported file format or not RAW file"), which they are not.

A colour-filter mosaic stored that way is decoded here instead, through tifffile (imagecodecs' libjxl), and its
layout read from the DNG's own tags (CFA pattern, black and white levels, active area, default crop, as-shot
neutral; the colour matrices and profiles follow as for any DNG in raw_layout): from then on it blends like any
DNG. What cannot be decoded that way (a linear, demosaiced DNG, or a host without libjxl) is named for what it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import numpy.typing as npt
import tifffile

from medianscan.formats import DNG_VERSION_TAG
from medianscan.metadata import MosaicLayout

JPEG_XL = 52546  # DNG 1.7's JPEG XL compression
CFA = 32803  # PhotometricInterpretation of a colour-filter mosaic
_COLOURS = "RGB"  # CFAPlaneColor's default order: 0 red, 1 green, 2 blue


@dataclass(frozen=True)
class JpegXlDng:
    """A DNG whose raw image is stored as JPEG XL, and whether medianscan can decode it without LibRaw."""

    mosaic: bool  # a colour-filter mosaic (False: linear, demosaiced RGB)

    @property
    def decodable(self) -> bool:
        return self.mosaic and bool(imagecodecs.JPEGXL.available)

    @property
    def problem(self) -> str:
        """The one sentence naming it, for when it cannot be decoded."""
        if not self.mosaic:
            return "a linear (demosaiced) DNG compressed with JPEG XL, which this LibRaw cannot decode"
        return "a DNG compressed with JPEG XL, which this LibRaw cannot decode (and this host has no JPEG XL codec)"


def _raw_page(tif: tifffile.TiffFile) -> tifffile.TiffPage | None:
    """The IFD holding the raw image (NewSubfileType 0: IFD0 or one of its SubIFDs); None when not a DNG."""
    ifd0 = tif.pages.first
    if DNG_VERSION_TAG not in ifd0.tags:
        return None
    pages = [ifd0, *(ifd0.pages or [])]
    return next((p for p in pages if isinstance(p, tifffile.TiffPage) and p.tags.valueof(254, 0) == 0), None)


def jpeg_xl_dng(path: Path) -> JpegXlDng | None:
    """What the DNG at `path` is when its raw image is JPEG XL; None for any other file (or an unreadable one)."""
    try:
        with tifffile.TiffFile(path) as tif:
            page = _raw_page(tif)
            if page is None or page.compression != JPEG_XL:
                return None
            return JpegXlDng(mosaic=page.photometric == CFA and page.samplesperpixel == 1)
    except Exception:  # tifffile raises many types for damaged files; LibRaw's reason then stands
        return None


def decode(path: Path, out: npt.NDArray[np.generic] | None = None) -> tuple[npt.NDArray[np.uint16], MosaicLayout]:
    """The full mosaic of a JPEG XL DNG (into `out` when it fits) and its layout from the DNG's tags. Raises
    ValueError (with the reason) for what is missing or damaged."""
    with tifffile.TiffFile(path) as tif:
        page = _raw_page(tif)
        if page is None or page.compression != JPEG_XL or page.photometric != CFA:
            raise ValueError("not a colour-filter DNG compressed with JPEG XL")
        fits = out is not None and out.shape == page.shape and out.dtype == np.uint16
        mosaic = page.asarray(out=out if fits else None)
        layout = _layout(page.tags, tif.pages.first.tags, mosaic.shape)
    if mosaic.dtype != np.uint16 or mosaic.ndim != 2:
        raise ValueError(f"a mosaic of {mosaic.dtype} with shape {mosaic.shape} (expected 16-bit samples)")
    return mosaic, layout


def _layout(raw: Any, ifd0: Any, shape: tuple[int, ...]) -> MosaicLayout:
    """The layout from the raw IFD's tags (IFD0's for what lives there), in LibRaw's terms: the pattern relative to
    the full array's origin (DNG's CFAPattern is relative to the active area's), a Bayer's second green as a fourth
    colour, one black level per colour."""
    rows, cols = (int(v) for v in raw.valueof(33421, (2, 2)))  # CFARepeatPatternDim
    found = raw.valueof(33422)  # CFAPattern
    if found is None:
        raise ValueError("no CFAPattern tag")
    local = np.frombuffer(bytes(found), dtype=np.uint8).reshape(rows, cols)
    if local.max() >= len(_COLOURS) or len(set(local.ravel())) != len(_COLOURS):
        raise ValueError("a CFA of colours other than red, green and blue")
    colors = _COLOURS
    if local.shape == (2, 2) and sorted(local.ravel()) == [0, 1, 1, 2]:  # Bayer: LibRaw's second green, as "RGBG"
        local = local.copy()
        blue_row = local[int(np.argwhere(local == 2)[0][0])]
        blue_row[blue_row == 1] = 3
        colors = "RGBG"
    top, left, bottom, right = (int(v) for v in raw.valueof(50829, (0, 0, shape[0], shape[1])))  # ActiveArea
    pattern = np.roll(local, (top, left), axis=(0, 1))
    black = np.asarray(_numbers(raw, 50714, (0,)), dtype=np.float64)  # BlackLevel
    black_dim = tuple(int(v) for v in raw.valueof(50713, (1, 1)))  # BlackLevelRepeatDim
    per_site = np.resize(black, black_dim[0] * black_dim[1]).reshape(black_dim)
    site = np.tile(per_site, (-(-rows // black_dim[0]), -(-cols // black_dim[1])))[:rows, :cols]
    black_levels = tuple(round(float(site[local == c].mean())) for c in range(len(colors)))
    white = int(max(_numbers(raw, 50717, (65535,))))  # WhiteLevel
    width, height = right - left, bottom - top
    origin = _numbers(raw, 50719, (0, 0))  # DefaultCropOrigin (x, y)
    size = _numbers(raw, 50720, (width, height))  # DefaultCropSize (width, height)
    crop = (round(origin[0]), round(origin[1]), round(size[0]), round(size[1]))
    neutral = _numbers(ifd0, 50728, (1, 1, 1))  # AsShotNeutral
    return MosaicLayout(
        pattern=pattern.astype(np.uint8),
        colors=colors,
        black_levels=black_levels,
        white_level=white,
        active_area=(top, left, bottom, right),
        default_crop=crop,
        color_matrix=np.zeros((3, 3)),  # raw_layout takes ColorMatrix1 from the tags, as for any DNG
        as_shot_neutral=(neutral[0], neutral[1], neutral[2]),
        orientation=int(ifd0.valueof(274, 1)),
    )


def _numbers(tags: Any, code: int, default: tuple[float, ...]) -> list[float]:
    """A tag's values as floats (`default` when absent); tifffile gives RATIONALs as flat (numerator, denominator)
    pairs."""
    tag = tags.get(code)
    if tag is None:
        return [float(v) for v in default]
    values = [float(v) for v in np.atleast_1d(np.asarray(tag.value)).ravel()]
    if tag.dtype in (5, 10):  # RATIONAL, SRATIONAL
        return [n / d if d else 0.0 for n, d in zip(values[::2], values[1::2], strict=True)]
    return values


__all__ = ["JPEG_XL", "JpegXlDng", "decode", "jpeg_xl_dng"]
