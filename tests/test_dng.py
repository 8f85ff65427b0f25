"""The DNG writer, judged by independent readers: LibRaw (rawpy) must read back exactly the mosaic written,
exiftool's validator must say OK, and darktable, RawTherapee and dcraw must develop the DNG made from the real
CR2's mosaic like the CR2 itself (mean colour, orientation, aspect). Synthetic grey scenes on an X-Trans and
a GBRG mosaic must develop grey: a wrong CFA phase or misplaced black level casts them by 25 % or more.

The renders are slow, so every file is written once per module and each tool renders all of them in one
process (darktable and RawTherapee side by side).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

import imagecodecs
import numpy as np
import numpy.typing as npt
import pytest
import rawpy
import tifffile

from medianscan.blend.corrections import levels
from medianscan.blend.reading.frames import read_frame, read_metadata
from medianscan.blend.reading.raw_layout import layout_from_rawpy
from medianscan.errors import MedianscanError
from medianscan.metadata import CameraInfo, Exposure, MosaicLayout, headroom, with_headroom
from medianscan.outputs import tiff_ifd
from medianscan.outputs.dng import write_dng
from medianscan.outputs.preview import jpeg_size, render_preview, stored_preview
from tests.readers import (
    Image,
    darktable_white_level,
    exiftool_tags,
    exiftool_validate,
    mean_colour,
    render_dcraw,
    start_darktable,
    start_rawtherapee,
)

X_TRANS = ("GGRGGB", "GGBGGR", "BRGRBG", "GGBGGR", "GGRGGB", "RBGBRG")
GBRG = ("GB", "RG")
# XYZ -> camera of the Canon EOS 30D (Adobe's), reused for the synthetic scenes.
MATRIX_30D = np.array([[0.6257, -0.0303, -0.1], [-0.788, 1.5621, 0.2396], [-0.1714, 0.1904, 0.7046]])

# Same mosaic, same tool, two containers: the renders differ only by JPEG/PNG rounding and by the CR2's black
# level, which darktable measures in the masked border (127) where the DNG says 128/127 per channel.
SAME_COLOUR = 1.0  # 8-bit levels, per channel
# Synthetic grey: R, G and B means within 3 % of their average. Per-channel white scaling conventions differ
# by <= 1.2 % at the levels used; a wrong CFA phase or misplaced black errs by 25 % or more.
GREY = 0.03


class Source(NamedTuple):
    mosaic: npt.NDArray[np.uint16]
    layout: MosaicLayout
    camera: CameraInfo
    exposure: Exposure


@pytest.fixture(scope="module")
def cr2(sample_raw: Path) -> Source:
    with rawpy.imread(str(sample_raw)) as raw:
        mosaic = raw.raw_image.copy()
        layout = layout_from_rawpy(raw)
    meta = read_metadata(sample_raw)
    camera, exposure = meta.camera, meta.exposure
    return Source(mosaic, layout, camera, exposure)


def gbrg_crop(source: Source) -> Source:
    """The CR2 without its first row, active area one row lower: a real GBRG mosaic (CFA at the area's
    corner), still aligned with its own repeat."""
    layout = source.layout
    top, left, bottom, right = layout.active_area
    cx, cy, cw, ch = layout.default_crop
    cropped = dataclasses.replace(
        layout,
        pattern=np.roll(layout.pattern, -1, axis=0),
        active_area=(top, left, bottom - 1, right),  # rows 13.. of the original, now 12..
        default_crop=(cx, cy - 1, cw, ch),
    )
    return source._replace(mosaic=np.ascontiguousarray(source.mosaic[1:]), layout=cropped)


def grey_scene(letters: tuple[str, ...], top: int, left: int, black: tuple[int, int, int]) -> Source:
    """A flat grey card seen through `letters` (the CFA at the array's corner), 14-bit, with a distinctly
    non-white as-shot neutral so that any swapped colour shows."""
    pattern = np.array([["RGB".index(c) for c in row] for row in letters], dtype=np.uint8)
    height, width = 600 + top, 900 + left
    colours = np.tile(pattern, (height // pattern.shape[0] + 1, width // pattern.shape[1] + 1))[:height, :width]
    neutral = (0.5, 1.0, 0.7)
    rng = np.random.default_rng(7)
    level = 1600.0  # camera units in the green channel; white is 16383
    values = np.asarray(black)[colours] + level * np.asarray(neutral)[colours] + rng.normal(0, 4, colours.shape)
    mosaic = np.clip(np.round(values), 0, 16383).astype(np.uint16)
    layout = MosaicLayout(
        pattern=pattern,
        colors="RGB",
        black_levels=black,
        white_level=16383,
        active_area=(top, left, height, width),
        default_crop=(0, 0, 900, 600),
        color_matrix=MATRIX_30D,
        as_shot_neutral=neutral,
    )
    return Source(mosaic, layout, CameraInfo("Medianscan", "Synthetic Grey"), Exposure(iso=100))


@pytest.fixture(scope="module")
def sources(cr2: Source) -> dict[str, Source]:
    white = darktable_white_level(cr2.camera.make, cr2.camera.model)
    assert white is not None, "darktable's camera data lacks the sample's camera"
    for_darktable = cr2._replace(layout=dataclasses.replace(cr2.layout, white_level=white))
    return {
        "plain": cr2,
        "packed": cr2,
        "rot6": cr2._replace(layout=dataclasses.replace(cr2.layout, orientation=6)),
        "gbrg": gbrg_crop(cr2),
        "dt_plain": for_darktable,
        "dt_packed": for_darktable,
        "dt_rot6": for_darktable._replace(layout=dataclasses.replace(for_darktable.layout, orientation=6)),
        "dt_gbrg": gbrg_crop(for_darktable),
        # Aligned GBRG with per-colour blacks; odd offsets (CFA rolled, one black); X-Trans at offsets that
        # are not multiples of 6, lossless-JPEG.
        "grey_gbrg": grey_scene(GBRG, 2, 4, (100, 200, 300)),
        "grey_gbrg_odd": grey_scene(GBRG, 3, 1, (200, 200, 200)),
        "grey_xtrans": grey_scene(X_TRANS, 2, 4, (256, 256, 256)),
    }


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory, sources: dict[str, Source]) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("dng")
    paths = {}
    for name, (mosaic, layout, camera, exposure) in sources.items():
        paths[name] = folder / f"{name}.dng"
        compress = "packed" in name or "xtrans" in name
        write_dng(paths[name], mosaic, layout, camera, exposure, compress=compress, description=name)
    return paths


class Renders(NamedTuple):
    darktable: dict[Path, Image]
    rawtherapee: dict[Path, Image]
    dcraw: dict[Path, Image]


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory, written: dict[str, Path], sample_raw: Path) -> Renders:
    out = tmp_path_factory.mktemp("renders")
    grey = [written[n] for n in ("grey_gbrg", "grey_gbrg_odd", "grey_xtrans")]
    darktable = start_darktable(
        [sample_raw, *(written[n] for n in ("dt_plain", "dt_packed", "dt_rot6", "dt_gbrg")), *grey], out / "dt"
    )
    rawtherapee = start_rawtherapee(
        [sample_raw, *(written[n] for n in ("plain", "packed", "rot6", "gbrg")), *grey], out / "rt"
    )
    dcraw = {p: render_dcraw(p) for p in (sample_raw, *(written[n] for n in ("plain", "packed", "rot6", "gbrg")))}
    return Renders(darktable.wait(), rawtherapee.wait(), dcraw)


def by_tool(renders: Renders, tool: str) -> dict[Path, Image]:
    result: dict[Path, Image] = getattr(renders, tool)
    return result


def tool_file(written: dict[str, Path], tool: str, name: str) -> Path:
    """darktable gets the DNGs carrying its own white point (see readers.darktable_white_level)."""
    return written[f"dt_{name}" if tool == "darktable" else name]


# --- LibRaw reads back exactly what was written --------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["plain", "packed", "gbrg", "grey_gbrg", "grey_gbrg_odd", "grey_xtrans"])
def test_libraw_reads_back_the_exact_mosaic(name: str, written: dict[str, Path], sources: dict[str, Source]):
    mosaic, layout, _, _ = sources[name]
    top, left, bottom, right = layout.active_area
    with rawpy.imread(str(written[name])) as raw:
        assert np.array_equal(raw.raw_image, mosaic)
        sizes = raw.sizes
        if top % 2 or left % 2:
            # LibRaw moves an odd-placed visible area to the next even row and column (its choice, not the
            # file's); the window it shows must still be ours.
            vt, vl = sizes.top_margin, sizes.left_margin
            assert (vt - top, vl - left) == (top % 2, left % 2)
            assert (vt + sizes.height, vl + sizes.width) == (bottom, right)
            top, left, bottom, right = vt, vl, vt + sizes.height, vl + sizes.width
        assert np.array_equal(raw.raw_image_visible, mosaic[top:bottom, left:right])
        assert raw.white_level == layout.white_level
        assert raw.raw_pattern is not None
        read_letters = np.array(list(raw.color_desc.decode()))[raw.raw_pattern]
        read_blacks = np.asarray(raw.black_level_per_channel)[raw.raw_pattern]
        pattern, colors, blacks = raw.raw_pattern.copy(), raw.color_desc.decode(), raw.black_level_per_channel
    assert np.array_equal(read_letters, np.array(list(layout.colors))[layout.pattern])
    if name in ("plain", "packed", "gbrg"):  # the CR2's own description, exactly
        assert np.array_equal(pattern, layout.pattern)
        assert colors == layout.colors
        assert list(blacks) == list(layout.black_levels)
    elif name == "grey_gbrg":  # per-colour blacks, each at its own photosites
        assert np.array_equal(read_blacks, np.asarray(layout.black_levels)[layout.pattern])


# --- exiftool: a valid DNG with its metadata where readers look for it ----------------------------------------


@pytest.mark.parametrize("name", ["plain", "packed", "rot6", "gbrg", "grey_xtrans"])
def test_exiftool_validates(name: str, written: dict[str, Path]):
    assert exiftool_validate(written[name]) == []


def test_exif_and_dng_tags_are_where_readers_look(written: dict[str, Path], cr2: Source):
    tags = exiftool_tags(written["plain"])
    assert tags["IFD0:SubfileType"] == 1 and tags["SubIFD:SubfileType"] == 0
    assert tags["IFD0:DNGVersion"] == "1 4 0 0" and tags["IFD0:DNGBackwardVersion"] == "1 1 0 0"
    assert (tags["IFD0:Make"], tags["IFD0:Model"], tags["IFD0:UniqueCameraModel"]) == (
        "Canon",
        "Canon EOS 30D",
        "Canon EOS 30D",
    )
    assert tags["IFD0:CameraSerialNumber"] == tags["ExifIFD:SerialNumber"] == 1530910263
    assert tags["ExifIFD:ISO"] == 640
    assert tags["ExifIFD:ExposureTime"] == pytest.approx(1 / 400)
    assert tags["ExifIFD:FNumber"] == 22 and tags["ExifIFD:FocalLength"] == 22
    assert tags["ExifIFD:DateTimeOriginal"] == "2009:07:21 13:03:20"
    assert tags["ExifIFD:LensModel"] == cr2.camera.lens
    assert tags["IFD0:Orientation"] == 1
    assert tags["IFD0:CalibrationIlluminant1"] == 21
    assert tags["SubIFD:PhotometricInterpretation"] == 32803
    assert tags["SubIFD:CFARepeatPatternDim"] == "2 2"
    assert tags["SubIFD:CFAPattern2"] == "0 1 1 2"  # RGGB
    assert tags["SubIFD:ActiveArea"] == "12 74 2360 3596"
    assert tags["SubIFD:DefaultCropOrigin"] == "10 8" and tags["SubIFD:DefaultCropSize"] == "3504 2335"
    assert tags["SubIFD:WhiteLevel"] == 4095
    assert exiftool_tags(written["gbrg"])["SubIFD:CFAPattern2"] == "1 2 0 1"  # GBRG
    assert exiftool_tags(written["packed"])["SubIFD:Compression"] == 7


def test_dng_colour_tags_from_a_dng_source_are_carried_over(tmp_path: Path, cr2: Source):
    """A DNG source's colour tags survive frames.read_frame -> write_dng, as tifffile reads them."""
    extra = {
        50722: (10, 9, (7000, 10000, -1500, 10000, -500, 10000, -8000, 10000, 15500, 10000, 2600, 10000,
                        -1800, 10000, 2100, 10000, 6600, 10000)),  # ColorMatrix2, as numerator/denominator pairs
        50779: (3, 1, 17),  # CalibrationIlluminant2: standard light A
        50936: (2, 13, "Test Profile"),  # ProfileName
        51009: (7, 4, b"\x00\x00\x00\x00"),  # OpcodeList2: an empty list, raw IFD
    }  # fmt: skip
    first = tmp_path / "first.dng"
    write_dng(first, cr2.mosaic, dataclasses.replace(cr2.layout, extra_tags=extra), cr2.camera, cr2.exposure)
    frame = read_frame(first)
    assert frame.layout is not None
    second = tmp_path / "second.dng"
    write_dng(second, frame.pixels, frame.layout, frame.camera, frame.exposure)  # type: ignore[arg-type]
    first_ifd0, first_raw = dng_ifds(first)
    assert 51009 in first_raw and 51009 not in first_ifd0  # opcode lists belong to the raw IFD
    ifd0, _ = dng_ifds(second)
    assert ifd0[50722] == extra[50722][2]
    assert ifd0[50779] == 17 and ifd0[50936] == "Test Profile"
    assert exiftool_validate(second) == []


def dng_ifds(path: Path) -> tuple[dict[int, object], dict[int, object]]:
    """The tag values of IFD0 and of the raw SubIFD, as tifffile reads them."""
    with tifffile.TiffFile(path) as tif:
        ifd0 = tif.pages[0]
        assert isinstance(ifd0, tifffile.TiffPage) and ifd0.pages is not None
        raw = ifd0.pages[0]
        assert isinstance(raw, tifffile.TiffPage)
        return {t.code: t.value for t in ifd0.tags.values()}, {t.code: t.value for t in raw.tags.values()}


# --- the renders: same colour, same orientation as the source raw ---------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["darktable", "rawtherapee", "dcraw"])
@pytest.mark.parametrize("name", ["plain", "packed"])
def test_renders_like_the_source_raw(
    tool: str, name: str, renders: Renders, written: dict[str, Path], sample_raw: Path
):
    images = by_tool(renders, tool)
    source, copy = images[sample_raw], images[tool_file(written, tool, name)]
    assert copy.shape == source.shape
    assert np.abs(mean_colour(copy) - mean_colour(source)).max() <= SAME_COLOUR


@pytest.mark.parametrize("tool", ["darktable", "rawtherapee", "dcraw"])
def test_orientation_6_renders_portrait_turned_clockwise(tool: str, renders: Renders, written: dict[str, Path]):
    images = by_tool(renders, tool)
    landscape = images[tool_file(written, tool, "plain")].astype(np.float64)
    portrait = images[tool_file(written, tool, "rot6")].astype(np.float64)
    assert landscape.shape[1] > landscape.shape[0]
    assert portrait.shape == (landscape.shape[1], landscape.shape[0], 3)
    # Compared in 8x8 blocks: resampling after the turn may pick other pixels, but the same image stays.
    clockwise = np.abs(coarse(portrait) - coarse(np.rot90(landscape, k=-1))).mean()
    counter = np.abs(coarse(portrait) - coarse(np.rot90(landscape, k=1))).mean()
    assert clockwise < 2.0 and counter > 10.0, (clockwise, counter)  # 8-bit levels


def coarse(image: npt.NDArray[np.float64], block: int = 8) -> npt.NDArray[np.float64]:
    """Mean of each block x block tile (edges that do not fill a tile are dropped)."""
    h, w = image.shape[0] // block * block, image.shape[1] // block * block
    tiles: npt.NDArray[np.float64] = image[:h, :w].reshape(h // block, block, w // block, block, -1).mean(axis=(1, 3))
    return tiles


@pytest.mark.parametrize("tool", ["darktable", "rawtherapee", "dcraw"])
def test_gbrg_crop_develops_like_the_source(tool: str, renders: Renders, written: dict[str, Path], sample_raw: Path):
    images = by_tool(renders, tool)
    source, crop = images[sample_raw], images[tool_file(written, tool, "gbrg")]
    assert abs(crop.shape[0] - source.shape[0]) <= 1 and crop.shape[1] == source.shape[1]
    assert np.abs(mean_colour(crop) - mean_colour(source)).max() <= SAME_COLOUR


def grey_error(rgb: npt.NDArray[np.generic]) -> float:
    """How far the mean R, G, B of the central area are from their average (0 = neutral grey)."""
    h, w = rgb.shape[:2]
    mean = mean_colour(rgb[h // 6 : -h // 6, w // 6 : -w // 6])
    return float(np.abs(mean / mean.mean() - 1).max())


@pytest.mark.parametrize("name", ["grey_gbrg", "grey_gbrg_odd", "grey_xtrans"])
def test_grey_scene_develops_grey(name: str, renders: Renders, written: dict[str, Path]):
    with rawpy.imread(str(written[name])) as raw:
        linear = raw.postprocess(use_camera_wb=True, no_auto_bright=True, gamma=(1, 1), output_bps=16)
    assert grey_error(linear) <= GREY, "LibRaw"
    assert grey_error(renders.darktable[written[name]]) <= GREY, "darktable"
    assert grey_error(renders.rawtherapee[written[name]]) <= GREY, "RawTherapee"


@pytest.mark.parametrize("letters", [GBRG, X_TRANS])
def test_photosites_cover_an_odd_area_once_each_with_its_own_colour(letters: tuple[str, ...]) -> None:
    _, layout, _, _ = grey_scene(letters, 3, 5, (100, 200, 300))
    shape = (40, 50)
    colours = np.tile(layout.pattern, (10, 10))[: shape[0], : shape[1]]  # the pattern from the array's corner
    area = (7, 11, 31, 47)  # starts off the pattern's grid on both axes
    seen = np.zeros(shape, dtype=int)
    for rows, cols, colour in layout.photosites(area):
        seen[rows, cols] += 1
        assert np.all(colours[rows, cols] == colour)
    inside = np.zeros(shape, dtype=bool)
    inside[7:31, 11:47] = True
    assert np.all(seen[inside] == 1) and not seen[~inside].any()
    sampled = layout.photosites(area, row_step=2)
    assert sum(seen[r, c].size for r, c, _ in sampled) < inside.sum() * 0.6  # every second repeat of rows


# --- the embedded preview --------------------------------------------------------------------------------------


@pytest.mark.parametrize("letters", [GBRG, X_TRANS])
def test_preview_of_grey_is_grey_and_fits(letters: tuple[str, ...]):
    mosaic, layout, _, _ = grey_scene(letters, 3, 5, (100, 200, 300))
    preview = render_preview(mosaic, layout, max_size=256)
    assert max(preview.shape[:2]) <= 256 and preview.shape[2] == 3 and preview.dtype == np.uint8
    assert preview.shape[1] > preview.shape[0]  # not rotated
    assert grey_error(preview) <= GREY


def test_preview_has_the_colours_of_a_development(cr2: Source, sample_raw: Path):
    """Against LibRaw's own sRGB development (camera white balance, no auto-brightening, sRGB curve)."""
    preview = render_preview(cr2.mosaic, cr2.layout)
    with rawpy.imread(str(sample_raw)) as raw:
        developed = raw.postprocess(
            use_camera_wb=True, no_auto_bright=True, gamma=(2.4, 12.92), half_size=True, output_bps=8
        )
    assert max(preview.shape[:2]) <= 1024
    assert np.abs(mean_colour(preview) - mean_colour(developed)).max() <= 3.0


def test_the_preview_of_a_blend_with_headroom_is_as_bright_as_an_editor_shows_it(cr2: Source):
    """A flat-corrected or bracket blend raises its WhiteLevel and sets BaselineExposure so that editors show it
    as bright as before; its embedded preview (file managers, thumbnails) must too, not a stop darker."""
    room = headroom(cr2.layout, 2.0, expand=False)
    assert room.scale == 1.0 and room.baseline_ev == pytest.approx(1.0)  # the same codes, white one stop up
    plain = render_preview(cr2.mosaic, cr2.layout, max_size=256).astype(np.float64)
    with_room = render_preview(cr2.mosaic, with_headroom(cr2.layout, room), max_size=256).astype(np.float64)
    assert np.abs(with_room - plain).mean() < 1.0


# --- atomic, and clear about what it cannot write ---------------------------------------------------------------


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path, cr2: Source, monkeypatch: pytest.MonkeyPatch):
    target = tmp_path / "blend.dng"
    target.write_bytes(b"the previous blend")
    real_pack = tiff_ifd.Ifd.pack
    calls = {"n": 0}

    def pack_then_fail(self: tiff_ifd.Ifd, at: int) -> bytes:
        calls["n"] += 1
        if calls["n"] == 3:  # header, IFD0 and the raw IFD are on disk by now
            raise OSError(28, "No space left on device")
        return real_pack(self, at)

    monkeypatch.setattr(tiff_ifd.Ifd, "pack", pack_then_fail)
    with pytest.raises(OSError, match="No space"):
        write_dng(target, cr2.mosaic, cr2.layout, cr2.camera, cr2.exposure)
    assert calls["n"] == 3
    assert target.read_bytes() == b"the previous blend"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blend.dng"]


def test_unsupported_colour_filters_are_refused_by_name(tmp_path: Path, cr2: Source):
    target = tmp_path / "cmyg.dng"
    layout = dataclasses.replace(cr2.layout, colors="CMYG")
    with pytest.raises(MedianscanError, match=r"cmyg\.dng.*'CMYG'.*red, green and blue"):
        write_dng(target, cr2.mosaic, layout, cr2.camera, cr2.exposure)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"active_area": (0, 0, 9999, 9999)}, "active area"),
        ({"default_crop": (0, 0, 4000, 100)}, "default crop"),
        ({"as_shot_neutral": (0.5, 0.0, 0.7)}, "as-shot neutral"),
        ({"color_matrix": np.zeros((3, 3))}, "colour matrix"),
        ({"orientation": 9}, "orientation"),
        ({"pattern": np.array([[0, 1], [4, 2]], dtype=np.uint8)}, "CFA pattern"),
    ],
)
def test_impossible_layouts_are_refused_before_writing(
    tmp_path: Path, cr2: Source, change: dict[str, object], reason: str
):
    target = tmp_path / "bad.dng"
    with pytest.raises(MedianscanError, match=rf"bad\.dng: .*{reason}"):
        write_dng(target, cr2.mosaic, dataclasses.replace(cr2.layout, **change), cr2.camera, cr2.exposure)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


# --- the white level: never below the data, not moved by stuck photosites ------------------------------------


def test_the_white_level_is_raised_to_data_that_overshoot_it_but_not_by_a_few_stuck_photosites(cr2: Source):
    """A lossy-compressed raw overshoots its nominal white (a Sony's data reach 16628 against 15360): the DNG's
    white level follows the data up; a handful of stuck photosites at the container's maximum do not count."""
    layout = dataclasses.replace(cr2.layout, white_level=1200)  # below what the CR2's highlights reach
    mosaic = cr2.mosaic.copy()
    top, left, bottom, right = layout.active_area
    assert levels.floored(layout, mosaic).white_level >= int(np.percentile(mosaic[top:bottom, left:right], 99.99))
    quiet = (mosaic * 0.6).astype(np.uint16)  # highlights up to 890, no pile-up
    quiet[top + 99, left + 100 : left + 105] = 4095  # five stuck photosites (on a row the floor reads)
    assert levels.floored(layout, quiet).white_level == 1200


def test_a_baseline_exposure_stored_as_a_rational_is_read_as_its_value(cr2: Source):
    """tifffile reads a DNG's SRATIONAL as (numerator, denominator); +0.25 must not become 2^2500 (the
    OverflowError a Blackmagic CinemaDNG frame gave the preview)."""
    rational = dataclasses.replace(cr2.layout, extra_tags={50730: (10, 1, (2500, 10000))})
    assert rational.baseline_ev == pytest.approx(0.25)
    assert render_preview(cr2.mosaic, rational, max_size=64).dtype == np.uint8
    damaged = dataclasses.replace(cr2.layout, extra_tags={50730: (10, 1, (99999, 1))})
    assert damaged.baseline_ev == 0.0  # a damaged tag is taken as none, not as 2^99999


def test_darktables_camera_data_gives_the_30ds_white(cr2: Source):
    white = darktable_white_level(cr2.camera.make, cr2.camera.model)
    assert white is not None
    assert levels.darktable_levels(cr2.camera.make, cr2.camera.model, 640) == levels.SensorLevels(127, white)
    assert levels.darktable_levels("Nobody", "Unknown Camera", 100) is None


def test_the_camera_facts_come_with_the_package_not_from_the_host(cr2: Source, monkeypatch: pytest.MonkeyPatch):
    """The same DNG on every host: with no darktable data anywhere on the disk the 30D still gets darktable's white
    and crop (the whole visible area, as darktable shows the CR2), and an unknown body LibRaw's white and its whole
    active area (not the camera JPEG's crop LibRaw reports, which no editor applies to the native raw)."""
    real_is_file = Path.is_file
    monkeypatch.setattr(Path, "is_file", lambda self: "darktable" not in str(self) and real_is_file(self))
    levels._all_facts.cache_clear()
    shape = cr2.mosaic.shape
    for source in ("darktable", "libraw"):
        written = levels.with_camera_facts(cr2.layout, cr2.camera.make, cr2.camera.model, 640, source, shape=shape)
        assert written.default_crop == (0, 0, 3522, 2348)
        assert written.white_level == (3398 if source == "darktable" else cr2.layout.white_level)
    unknown = levels.with_camera_facts(cr2.layout, "Nobody", "Unknown Camera", 100, "darktable", shape=shape)
    assert unknown.default_crop == (0, 0, 3522, 2348) != cr2.layout.default_crop
    assert unknown.white_level == cr2.layout.white_level


def test_a_relative_darktable_crop_is_clipped_to_the_active_area_on_the_cfa_phase(cr2: Source):
    """rawspeed's crop (width <= 0: that many from the right edge) as a DefaultCrop inside the active area."""
    layout = cr2.layout  # active area rows 12-2360, columns 74-3596 of a 2360x3596 array
    assert levels.darktable_crop(layout, (0, 0, -20, 0), cr2.mosaic.shape) == (0, 0, 3502, 2348)
    assert levels.darktable_crop(layout, (75, 13, 3000, 2000), cr2.mosaic.shape) == (2, 2, 2999, 1999)
    assert levels.darktable_crop(layout, None, cr2.mosaic.shape) == (0, 0, 3522, 2348)


def test_a_camera_jpegs_size_and_sampling_are_read_from_its_frame_header(sample_raw: Path):
    preview = stored_preview(sample_raw)
    assert preview is not None and preview.jpeg
    decoded = imagecodecs.jpeg8_decode(preview.data)
    assert (preview.width, preview.height) == (decoded.shape[1], decoded.shape[0])
    assert preview.subsampling in {(1, 1), (2, 1), (2, 2)}
    assert jpeg_size(b"not a jpeg") is None


def test_a_film_base_the_sensor_clipped_below_the_white_level_still_reads_as_clipped(cr2: Source):
    """A body that saturates below the white level its tables give (3700 of 4095 here): the photosites piled up
    at that one top value are where white is, and the DNG says so; LibRaw's default processing does the same with
    the source (it lowers its maximum to the data's when they come near)."""
    top, left, _, _ = cr2.layout.active_area
    mosaic = cr2.mosaic.astype(np.int32) * 3
    mosaic[top + 200 : top + 500, left + 100 : left + 900] = 3700  # the clear film base, clipped
    clipped = np.clip(mosaic, 0, 3700).astype(np.uint16)
    assert levels.floored(cr2.layout, clipped).white_level == 3700
    unclipped = np.minimum(cr2.mosaic, 3000)  # no pile-up: the white level the tables give stays
    assert levels.floored(cr2.layout, unclipped).white_level == cr2.layout.white_level
