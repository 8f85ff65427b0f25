"""DNG 1.7 raws with JPEG XL tiles (what Adobe's converter and Lightroom write since 2023), which LibRaw 0.22
refuses: a mosaic is decoded through tifffile and blended like any DNG; a linear one is named for what it is.

The files are built here from the real CR2's mosaic by tifffile (imagecodecs' libjxl encodes the tiles), with the
tags another tool's DNG carries; the same file uncompressed, which LibRaw reads, is the reference.
"""

from __future__ import annotations

from pathlib import Path

import imagecodecs
import numpy as np
import numpy.typing as npt
import pytest
import rawpy
import tifffile

from medianscan.blend.pipeline import blend_stack
from medianscan.blend.reading import sniff
from medianscan.blend.reading.dng_jxl import JPEG_XL
from medianscan.blend.reading.frames import read_frame
from medianscan.errors import StackError

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not imagecodecs.JPEGXL.available, reason="this imagecodecs has no JPEG XL codec"),
]

TOP, LEFT, HEIGHT, WIDTH = 12, 74, 512, 768  # a crop of the CR2 with its masked border's corner, RGGB phase kept
MARGIN = 8  # masked rows and columns kept above and left of the active area


def _srational(values: npt.ArrayLike) -> tuple[int, ...]:
    return tuple(x for v in np.asarray(values).ravel() for x in (round(float(v) * 10000), 10000))


def cr2_crop(cr2: Path) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint8], npt.NDArray[np.float64]]:
    """A crop of the CR2's sensor array (masked border included), its CFA (relative to the crop's active area)
    and its colour matrix."""
    with rawpy.imread(str(cr2)) as raw:
        mosaic = raw.raw_image[TOP - MARGIN : TOP + HEIGHT, LEFT - MARGIN : LEFT + WIDTH].copy()
        letters = raw.color_desc.decode()
        local = np.roll(np.asarray(raw.raw_pattern), (-TOP, -LEFT), axis=(0, 1))  # active area's origin
        cfa = np.array([["RGB".index(letters[i]) for i in row] for row in local], dtype=np.uint8)
        matrix = np.asarray(raw.rgb_xyz_matrix, dtype=np.float64)[:3, :3]
    return mosaic, cfa, matrix


def write_dng(path: Path, cr2: Path, *, compression: int | None, linear: bool = False, seed: int = 0) -> Path:
    """The crop as a DNG 1.7 of one raw IFD (CFA, or linear RGB made from it), tiles of 256, with its tags."""
    mosaic, cfa, matrix = cr2_crop(cr2)
    noise = np.random.default_rng(seed).normal(0, 6, mosaic.shape)
    data = np.clip(mosaic + noise, 0, 4095).astype(np.uint16)
    if linear:
        data = np.repeat(data[..., None], 3, axis=2)
    tags = [
        (50706, "B", 4, (1, 7, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 4, 0, 0), True),  # DNGBackwardVersion
        (50708, "s", 0, "Canon EOS 30D", True),  # UniqueCameraModel
        (50713, "H", 2, (2, 2), True),  # BlackLevelRepeatDim
        (50714, "H", 4, (128, 128, 128, 127), True),  # BlackLevel
        (50717, "H", 1, 3692, True),  # WhiteLevel
        (50721, "2i", 9, _srational(matrix), True),  # ColorMatrix1
        (50778, "H", 1, 21, True),  # CalibrationIlluminant1: D65
        (50728, "2I", 3, (1000, 2000, 1, 1, 1000, 1600), True),  # AsShotNeutral
        (50829, "I", 4, (MARGIN, MARGIN, MARGIN + HEIGHT, MARGIN + WIDTH), True),  # ActiveArea
        (50719, "2I", 2, (2, 1, 4, 1), True),  # DefaultCropOrigin
        (50720, "2I", 2, (WIDTH - 8, 1, HEIGHT - 6, 1), True),  # DefaultCropSize
    ]
    if not linear:
        tags += [(33421, "H", 2, (2, 2), True), (33422, "B", 4, bytes(cfa.ravel()), True)]  # CFA repeat, pattern
    tifffile.imwrite(
        path,
        data,
        photometric=34892 if linear else 32803,  # LinearRaw, CFA
        compression=compression,
        compressionargs={"lossless": True} if compression else None,
        tile=(256, 256),
        subfiletype=0,
        extratags=[(271, "s", 0, "Canon", True), (272, "s", 0, "Canon EOS 30D", True), *tags],
    )
    return path


def test_a_jpeg_xl_mosaic_reads_as_the_same_file_uncompressed_through_libraw(sample_raw: Path, tmp_path: Path) -> None:
    jxl = write_dng(tmp_path / "jxl.dng", sample_raw, compression=JPEG_XL)
    plain = write_dng(tmp_path / "plain.dng", sample_raw, compression=None)
    with pytest.raises(rawpy.LibRawError):  # what this LibRaw does with it
        rawpy.imread(str(jxl)).unpack()
    assert sniff.inspect(jxl).kind == "raw" and sniff.inspect(jxl).problem is None
    ours, libraw = read_frame(jxl), read_frame(plain)
    assert np.array_equal(ours.pixels, libraw.pixels)  # lossless, bit for bit
    assert ours.layout is not None and libraw.layout is not None
    assert np.array_equal(ours.layout.pattern, libraw.layout.pattern)
    assert ours.layout.colors == libraw.layout.colors == "RGBG"
    assert ours.layout.black_levels == libraw.layout.black_levels == (128, 128, 127, 128)  # R, G, B, second G
    assert ours.layout.white_level == libraw.layout.white_level == 3692
    assert ours.layout.active_area == libraw.layout.active_area
    assert ours.layout.default_crop == (2, 4, WIDTH - 8, HEIGHT - 6)
    assert np.allclose(ours.layout.as_shot_neutral, (0.5, 1.0, 0.625))
    assert np.allclose(ours.layout.color_matrix, libraw.layout.color_matrix, atol=1e-4)
    assert ours.camera.make == "Canon" and ours.camera.model == "Canon EOS 30D"


def test_a_stack_of_jpeg_xl_dngs_blends_like_any_dng(sample_raw: Path, tmp_path: Path) -> None:
    stack = tmp_path / "stack"
    stack.mkdir()
    paths = [write_dng(stack / f"f{i}.dng", sample_raw, compression=JPEG_XL, seed=i) for i in range(3)]
    record = blend_stack(stack)
    frames = np.stack([read_frame(p).pixels for p in paths]).astype(np.int32)
    with rawpy.imread(str(record.output)) as raw:  # the blend is a DNG LibRaw reads
        blended = raw.raw_image.astype(np.int32)
    assert np.array_equal(blended, np.median(frames, axis=0).astype(np.int32))


def test_a_linear_jpeg_xl_dng_is_named_for_what_it_is(sample_raw: Path, tmp_path: Path) -> None:
    path = write_dng(tmp_path / "linear.dng", sample_raw, compression=JPEG_XL, linear=True)
    sentence = "a linear (demosaiced) DNG compressed with JPEG XL, which this LibRaw cannot decode"
    assert sniff.inspect(path).problem == sentence
    with pytest.raises(StackError) as caught:
        read_frame(path, "raw")
    assert str(caught.value) == f"{path}: {sentence}"
