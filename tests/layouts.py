"""Raw layouts we have no real file of, made from the real CR2's mosaic by writers other than ours (tifffile for the
structure, Exiv2 for the EXIF): the DNGs other tools write. Each is a plausible file a user could bring."""

from __future__ import annotations

from pathlib import Path

import exiv2
import numpy as np
import numpy.typing as npt
import rawpy
import tifffile

from medianscan.blend.frames import layout_from_rawpy

BLACK_14 = 512
WHITE_14 = 15360  # below the 14-bit container's 16383 and the 16-bit sample's 65535: a body's real saturation


def _srational(values: npt.ArrayLike, denominator: int = 10000) -> tuple[int, ...]:
    pairs = [(round(float(v) * denominator), denominator) for v in np.asarray(values).ravel()]
    return tuple(x for pair in pairs for x in pair)


def _exif(path: Path, **tags: str) -> None:
    """Add EXIF tags (`Exif.Photo.*` keys with dots as underscores) the way another tool would: Exiv2 writes them."""
    image = exiv2.ImageFactory.open(str(path))
    image.readMetadata()
    exif = image.exifData()
    for key, value in tags.items():
        exif[key.replace("_", ".")] = value
    image.writeMetadata()


def another_tools_dng(cr2: Path, target: Path, *, exposure_bias: str = "-1/1") -> Path:
    """The CR2's picture as a DNG another tool writes: the raw in IFD0 (as CinemaDNG and many converters do, no
    SubIFD, no preview), 14-bit values in 16-bit samples, WhiteLevel 15360 (neither 16383 nor 65535), per-colour
    BlackLevel, two colour matrices, BaselineExposure +0.25, and an exposure compensation of `exposure_bias` EV in
    its EXIF (darktable's default exposure undoes it)."""
    with rawpy.imread(str(cr2)) as raw:
        mosaic = raw.raw_image.astype(np.int32)
        layout = layout_from_rawpy(raw)
    top, left, bottom, right = layout.active_area
    black = np.asarray(layout.black_levels)[layout.pattern]
    tile = np.tile(black, (mosaic.shape[0] // 2 + 1, mosaic.shape[1] // 2 + 1))[: mosaic.shape[0], : mosaic.shape[1]]
    data = np.clip((mosaic - tile) * 4 + BLACK_14, 0, 65535).astype(np.uint16)
    local = np.roll(layout.pattern, (-top, -left), axis=(0, 1))
    cfa = bytes({"R": 0, "G": 1, "B": 2}[layout.colors[i]] for i in local.ravel())
    matrix = np.asarray(layout.color_matrix)
    cx, cy, cw, ch = layout.default_crop
    extratags = [
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, cfa, True),  # CFAPattern
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, "s", 0, "Canon EOS 30D", True),  # UniqueCameraModel
        (50713, "H", 2, (2, 2), True),  # BlackLevelRepeatDim
        (50714, "H", 4, (BLACK_14,) * 4, True),  # BlackLevel
        (50717, "I", 1, WHITE_14, True),  # WhiteLevel
        (50721, "2i", 9, _srational(matrix), True),  # ColorMatrix1
        (50722, "2i", 9, _srational(matrix * 1.02), True),  # ColorMatrix2
        (50728, "2I", 3, _srational(layout.as_shot_neutral, 1000000), True),  # AsShotNeutral
        (50730, "2i", 1, (1, 4), True),  # BaselineExposure +0.25
        (50778, "H", 1, 21, True),  # CalibrationIlluminant1: D65
        (50779, "H", 1, 17, True),  # CalibrationIlluminant2: A
        (50719, "I", 2, (cx, cy), True),  # DefaultCropOrigin
        (50720, "I", 2, (cw, ch), True),  # DefaultCropSize
        (50829, "I", 4, (top, left, bottom, right), True),  # ActiveArea
        (271, "s", 0, "Canon", True),  # Make
        (272, "s", 0, "Canon EOS 30D", True),  # Model
    ]
    tifffile.imwrite(target, data, photometric=32803, software="another tool 1.0", extratags=extratags)
    _exif(
        target,
        Exif_Photo_ExposureBiasValue=exposure_bias,
        Exif_Photo_ISOSpeedRatings="640",
        Exif_Photo_ExposureTime="1/400",
        Exif_Photo_FNumber="22/1",
        Exif_Photo_DateTimeOriginal="2009:07:21 13:03:20",
        Exif_Photo_LensModel="EF-S18-55mm f/3.5-5.6",
    )
    return target


LINEAR_TOP = 65535  # the linearization table's range
LINEAR_BLACK = 256


def linearized_dng(cr2: Path, target: Path) -> Path:
    """The CR2's picture as a CinemaDNG-style frame (a Blackmagic camera's): the raw in IFD0, 12-bit codes whose
    LinearizationTable maps them (square-root encoded) onto 16-bit linear values, BlackLevel and WhiteLevel in
    those linear units, and BaselineExposure +0.5 stored as a rational, as such cameras write it."""
    with rawpy.imread(str(cr2)) as raw:
        mosaic = raw.raw_image.astype(np.float64)
        layout = layout_from_rawpy(raw)
    top, left, bottom, right = layout.active_area
    linear = np.clip((mosaic - 128) * 14 + LINEAR_BLACK, 0, LINEAR_TOP)
    codes = np.round(4095 * np.sqrt(linear / LINEAR_TOP)).astype(np.uint16)
    table = np.round(LINEAR_TOP * (np.arange(4096) / 4095) ** 2).astype(np.uint16)
    white = int(table[int(np.round(4095 * np.sqrt(((4095 - 128) * 14 + LINEAR_BLACK) / LINEAR_TOP)))])
    local = np.roll(layout.pattern, (-top, -left), axis=(0, 1))
    cfa = bytes({"R": 0, "G": 1, "B": 2}[layout.colors[i]] for i in local.ravel())
    cx, cy, cw, ch = layout.default_crop
    extratags = [
        (33421, "H", 2, (2, 2), True),
        (33422, "B", 4, cfa, True),
        (50706, "B", 4, (1, 4, 0, 0), True),
        (50707, "B", 4, (1, 3, 0, 0), True),
        (50708, "s", 0, "Blackmagic Design Test Camera", True),
        (50712, "H", 4096, tuple(int(v) for v in table), True),  # LinearizationTable
        (50714, "I", 1, LINEAR_BLACK, True),  # BlackLevel (linear units)
        (50717, "I", 1, white, True),  # WhiteLevel (linear units)
        (50721, "2i", 9, _srational(layout.color_matrix), True),
        (50728, "2I", 3, _srational(layout.as_shot_neutral, 1000000), True),
        (50730, "2i", 1, (1, 2), True),  # BaselineExposure +0.5
        (50778, "H", 1, 21, True),
        (50719, "I", 2, (cx, cy), True),
        (50720, "I", 2, (cw, ch), True),
        (50829, "I", 4, (top, left, bottom, right), True),
        (271, "s", 0, "Blackmagic Design", True),
        (272, "s", 0, "Test Camera", True),
    ]
    tifffile.imwrite(target, codes, photometric=32803, software="Blackmagic test 1.0", extratags=extratags)
    _exif(target, Exif_Photo_ISOSpeedRatings="800", Exif_Photo_ExposureTime="1/50", Exif_Photo_FNumber="4/1")
    return target


def linear_rgb_dng(cr2: Path, target: Path) -> Path:
    """The CR2's picture as a raw without a mosaic, as a film scanner or a converter writes it: linear RGB in the
    camera's own colours (LibRaw's half-size development, no white balance), PhotometricInterpretation LinearRaw,
    a black level and a white level per sample, the camera's matrix and neutral."""
    with rawpy.imread(str(cr2)) as raw:
        rgb = raw.postprocess(
            gamma=(1, 1),
            no_auto_bright=True,
            output_bps=16,
            user_wb=[1, 1, 1, 1],
            output_color=rawpy.ColorSpace.raw,
            half_size=True,
        )
        layout = layout_from_rawpy(raw)
    extratags = [
        (50706, "B", 4, (1, 4, 0, 0), True),
        (50707, "B", 4, (1, 1, 0, 0), True),
        (50708, "s", 0, "Nikon LS-5000", True),
        (50714, "I", 3, (0, 0, 0), True),  # BlackLevel, per sample
        (50717, "I", 3, (65535, 65535, 65535), True),  # WhiteLevel, per sample
        (50721, "2i", 9, _srational(layout.color_matrix), True),
        (50728, "2I", 3, _srational(layout.as_shot_neutral, 1000000), True),
        (50778, "H", 1, 21, True),
        (271, "s", 0, "Nikon", True),
        (272, "s", 0, "LS-5000", True),
    ]
    tifffile.imwrite(target, rgb, photometric=34892, software="a scanner's software", extratags=extratags)
    return target
