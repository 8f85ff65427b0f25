"""A blend opens in the editors like its source raw: darktable and RawTherapee with the defaults a new user gets,
and LibRaw, render the median of copies of a raw (the same pixels) as they render the raw itself, per channel,
in linear light, within 0.05 EV. On the real CR2 and on the layouts other tools write (tests/layouts.py): a DNG
with the raw in IFD0, a white level below its container's maximum and an exposure compensation; a CinemaDNG-
style frame with a linearization table; and a raw without a mosaic (linear RGB).

The 30D is also the body where darktable's camera data (white 3398) and LibRaw's (4095) disagree about the CR2
itself; there a DNG can follow one of them (blend.white_level), and the other renders it by exactly the tables'
gap. The tests hold both sides of that to the measured figure (the README says it too).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import NamedTuple

import imagecodecs
import numpy as np
import numpy.typing as npt
import pytest

from medianscan.blend.frames import camera_preview, read_frame
from medianscan.blend.options import BlendOptions
from medianscan.blend.pipeline import blend_stack
from medianscan.outputs.dng import PREVIEW_SIZE, write_dng
from medianscan.outputs.preview import StoredPreview, render_preview, stored_preview, tone_like
from tests.layouts import SCENES, another_tools_dng, linear_rgb_dng, linearized_dng, scene_dng
from tests.readers import (
    exiftool_tags,
    exiftool_validate,
    exposure_gap,
    linear_light,
    mean_colour,
    render_libraw,
    start_darktable,
    start_rawtherapee,
)

SAME = 0.05  # EV, per channel
TABLES_GAP = math.log2((4095 - 128) / (3398 - 127))  # LibRaw's and darktable's white for the 30D, over black


class Pair(NamedTuple):
    source: Path
    blend: Path


def _blend_copies(source: Path, folder: Path, options: BlendOptions) -> Path:
    folder.mkdir(parents=True)
    for i in range(3):
        shutil.copy(source, folder / f"{folder.name}_{i + 1:02d}{source.suffix.lower()}")
    return blend_stack(folder, options).output


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory, sample_raw: Path) -> dict[str, Pair]:
    root = tmp_path_factory.mktemp("renders")
    made = root / "sources"
    made.mkdir()
    sources = {
        "cr2": sample_raw,
        "cr2_libraw": sample_raw,
        "tool": another_tools_dng(sample_raw, made / "tool.dng"),
        "cinema": linearized_dng(sample_raw, made / "cinema.dng"),
        "scanner": linear_rgb_dng(sample_raw, made / "scanner.dng"),
    }
    found = {}
    for name, source in sources.items():
        options = BlendOptions(white_level="libraw" if name == "cr2_libraw" else "darktable")
        found[name] = Pair(source, _blend_copies(source, root / name, options))
    return found


class Renders(NamedTuple):
    darktable: dict[Path, npt.NDArray[np.float64]]
    rawtherapee: dict[Path, npt.NDArray[np.float64]]
    libraw_linear: dict[Path, npt.NDArray[np.float64]]
    libraw_default: dict[Path, npt.NDArray[np.float64]]


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory, pairs: dict[str, Pair]) -> Renders:
    out = tmp_path_factory.mktemp("rendered")
    files = list(dict.fromkeys(p for pair in pairs.values() for p in pair))
    # darktable and RawTherapee name renders after the input's stem: the sample and our made sources differ
    darktable = start_darktable(files, out / "dt")
    rawtherapee = start_rawtherapee(files, out / "rt", default_profile=True)
    libraw_linear = {f: render_libraw(f, linear=True) for f in files}
    libraw_default = {f: render_libraw(f, linear=False) for f in files}
    dt, rt = darktable.wait(), rawtherapee.wait()
    return Renders(
        {f: linear_light(i) for f, i in dt.items()},
        {f: linear_light(i) for f, i in rt.items()},
        libraw_linear,
        libraw_default,
    )


def gap(images: dict[Path, npt.NDArray[np.float64]], pair: Pair) -> npt.NDArray[np.float64]:
    return exposure_gap(images[pair.blend], images[pair.source])


@pytest.mark.parametrize("name", ["cr2", "tool", "cinema", "scanner"])
@pytest.mark.parametrize("tool", ["darktable", "rawtherapee", "libraw_default"])
def test_the_blend_develops_like_its_source(name: str, tool: str, pairs: dict[str, Pair], renders: Renders) -> None:
    measured = gap(getattr(renders, tool), pairs[name])
    assert np.abs(measured).max() <= SAME, f"{tool} renders the {name} blend {np.round(measured, 3)} EV off"


@pytest.mark.parametrize("name", ["cr2_libraw", "tool", "cinema", "scanner"])
def test_linear_libraw_develops_the_blend_like_its_source(name: str, pairs: dict[str, Pair], renders: Renders) -> None:
    measured = gap(renders.libraw_linear, pairs[name])
    assert np.abs(measured).max() <= SAME, f"LibRaw renders the {name} blend {np.round(measured, 3)} EV off"


def test_where_the_editors_tables_disagree_each_choice_matches_its_editor(
    pairs: dict[str, Pair], renders: Renders
) -> None:
    """The 30D: following darktable (the default) matches darktable, RawTherapee's default profile and LibRaw's
    default processing, and LibRaw's linear development shows the blend brighter by exactly the tables' gap;
    following LibRaw matches LibRaw and RawTherapee, and darktable shows it darker by that gap."""
    following_darktable, following_libraw = pairs["cr2"], pairs["cr2_libraw"]
    assert np.abs(gap(renders.libraw_linear, following_darktable) - TABLES_GAP).max() <= 0.01
    assert np.abs(gap(renders.darktable, following_libraw) + TABLES_GAP).max() <= 0.02  # darktable's curve, 8 bits
    assert np.abs(gap(renders.rawtherapee, following_libraw)).max() <= SAME


# --- what the DNG carries of its source ----------------------------------------------------------------------


def test_every_exif_tag_and_the_maker_note_of_the_source_are_carried(pairs: dict[str, Pair]) -> None:
    source, blend = (exiftool_tags(p) for p in pairs["cr2"])
    exif = {k.split(":", 1)[1]: v for k, v in source.items() if k.startswith("ExifIFD:")}
    carried = {k.split(":", 1)[1]: v for k, v in blend.items() if k.startswith("ExifIFD:")}
    assert len(exif) >= 25
    assert {k: v for k, v in exif.items() if k in carried} == exif  # every tag, with its value
    maker = {k for k in source if k.startswith("Canon:")}
    assert len(maker) > 50 and maker <= set(blend)  # the maker note, decoded the same
    assert blend["Canon:LensModel"] == source["Canon:LensModel"]
    assert blend["IFD0:MakerNoteSafety"] == 1
    assert exiftool_validate(pairs["cr2"].blend) == []


def test_an_exposure_compensation_and_a_dng_sources_own_tags_are_carried(pairs: dict[str, Pair]) -> None:
    source, blend = (exiftool_tags(p) for p in pairs["tool"])
    assert source["ExifIFD:ExposureCompensation"] == blend["ExifIFD:ExposureCompensation"] == -1
    assert blend["IFD0:BaselineExposure"] == pytest.approx(0.25)
    assert blend["IFD0:CalibrationIlluminant2"] == 17
    white = next(v for k, v in blend.items() if k.endswith(":WhiteLevel"))
    assert white == 15360  # the DNG's own WhiteLevel, not its container's maximum


def test_a_preview_exactly_when_the_source_has_one_in_the_cameras_tone(pairs: dict[str, Pair]) -> None:
    """The CR2's blend has a preview that looks like the camera's JPEG; a source without a preview gives a blend
    without one (RawTherapee's default profile develops the two cases differently)."""
    camera = camera_preview(pairs["cr2"].source)
    ours = camera_preview(pairs["cr2"].blend)
    assert camera is not None and ours is not None
    assert np.abs(mean_colour(ours) - mean_colour(camera)).max() <= 3.0  # 8-bit levels
    for name in ("tool", "cinema", "scanner"):
        assert camera_preview(pairs[name].source) is None and camera_preview(pairs[name].blend) is None


# --- bodies we have no raw of: small scenes, strongly coloured, dark and bright, with and without a preview ------

FULL = 8000  # a render size no source reaches: every editor renders at full size, so sizes compare exactly


def _rendered_like_a_changed_picture(source: Path, blend: Path, target: Path) -> Path:
    """The blend written again as a changed picture is (a flat field's, a bracket's): our rendering in the
    source's tone as its preview, instead of the camera's own. The mosaic is the same, so every editor must still
    develop it like the source: this measures the rendering an auto-matched curve sees."""
    frame, blended = read_frame(source, "raw"), read_frame(blend, "raw")
    assert frame.layout is not None and blended.layout is not None
    camera = stored_preview(source)
    assert camera is not None
    plain = render_preview(frame.pixels, frame.layout, PREVIEW_SIZE)  # type: ignore[arg-type]
    tone = tone_like(_decoded(camera), plain)
    write_dng(
        target,
        blended.pixels,  # type: ignore[arg-type]
        blended.layout,
        blended.camera,
        blended.exposure,
        tone=tone,
        metadata_from=blend,
    )
    return target


def _decoded(preview: StoredPreview) -> npt.NDArray[np.uint8]:
    if preview.jpeg:
        return np.asarray(imagecodecs.jpeg8_decode(preview.data))[..., :3]
    return np.frombuffer(preview.data, np.uint8).reshape(preview.height, preview.width, 3)


@pytest.fixture(scope="module")
def scene_pairs(tmp_path_factory: pytest.TempPathFactory, sample_raw: Path) -> dict[str, Pair]:
    root = tmp_path_factory.mktemp("scenes")
    made = root / "sources"
    made.mkdir()
    found = {}
    for kind in SCENES:
        for preview in (True, False):
            name = f"{kind}_{'preview' if preview else 'bare'}"
            source = scene_dng(made / f"{name}.dng", kind, preview=preview)
            found[name] = Pair(source, _blend_copies(source, root / name, BlendOptions()))
        pair = found[f"{kind}_preview"]
        found[f"{kind}_rendered"] = Pair(
            pair.source, _rendered_like_a_changed_picture(pair.source, pair.blend, made / f"{kind}_rendered.dng")
        )
    cr2 = Pair(sample_raw, _blend_copies(sample_raw, root / "cr2", BlendOptions()))
    found["cr2"] = cr2
    found["cr2_rendered"] = Pair(sample_raw, _rendered_like_a_changed_picture(sample_raw, cr2.blend, made / "cr2r.dng"))
    return found


class FullRenders(NamedTuple):
    darktable: dict[Path, npt.NDArray[np.uint8]]
    rawtherapee: dict[Path, npt.NDArray[np.uint8]]
    libraw: dict[Path, npt.NDArray[np.float64]]


@pytest.fixture(scope="module")
def full_renders(tmp_path_factory: pytest.TempPathFactory, scene_pairs: dict[str, Pair]) -> FullRenders:
    """Every file at full size: one darktable and one RawTherapee process, side by side (two cores)."""
    out = tmp_path_factory.mktemp("full")
    files = list(dict.fromkeys(p for pair in scene_pairs.values() for p in pair))
    darktable = start_darktable(files, out / "dt", size=FULL)
    rawtherapee = start_rawtherapee(files, out / "rt", size=FULL, default_profile=True)
    libraw = {f: render_libraw(f, linear=False, half_size=False) for f in files}
    return FullRenders(darktable.wait(), rawtherapee.wait(), libraw)


SAME_PICTURE = [f"{kind}_{how}" for kind in SCENES for how in ("preview", "bare")] + ["cr2"]
RENDERED = [f"{kind}_rendered" for kind in SCENES] + ["cr2_rendered"]


def _gap(tool: str, full_renders: FullRenders, pair: Pair) -> npt.NDArray[np.float64]:
    images = getattr(full_renders, tool)
    blend, source = images[pair.blend], images[pair.source]
    assert blend.shape == source.shape, f"{tool} shows the blend {blend.shape[:2]}, its source {source.shape[:2]}"
    if tool == "libraw":
        return exposure_gap(blend, source)
    return exposure_gap(linear_light(blend), linear_light(source))


@pytest.mark.parametrize("name", SAME_PICTURE)
@pytest.mark.parametrize("tool", ["darktable", "rawtherapee", "libraw"])
def test_every_editor_develops_the_blend_like_its_source_at_its_size(
    name: str, tool: str, scene_pairs: dict[str, Pair], full_renders: FullRenders
) -> None:
    """The same picture and size: per channel within SAME in linear light, and not one row or column more or less
    (RawTherapee with its default profile, whose curve follows the embedded preview)."""
    measured = _gap(tool, full_renders, scene_pairs[name])
    print(f"{name} {tool}: {' / '.join(f'{g:+.3f}' for g in measured)} EV")
    assert np.abs(measured).max() <= SAME, f"{tool} renders the {name} blend {np.round(measured, 3)} EV off"


@pytest.mark.parametrize("name", RENDERED)
@pytest.mark.parametrize("tool", ["darktable", "libraw"])
def test_a_rendered_preview_leaves_the_editors_that_ignore_it_alone(
    name: str, tool: str, scene_pairs: dict[str, Pair], full_renders: FullRenders
) -> None:
    """A changed picture's preview is ours (in the source's luminance tone): darktable and LibRaw develop the raw
    alone, at the source's size. RawTherapee's default profile fits its curve to the preview, and there our
    rendering is not yet treated like the camera's (measured in the README: up to +2.5 EV on the stage scene's
    green, +0.3 EV on the CR2), so it is not held to SAME here."""
    measured = _gap(tool, full_renders, scene_pairs[name])
    assert np.abs(measured).max() <= SAME, f"{tool} renders the {name} blend {np.round(measured, 3)} EV off"


def test_the_blend_of_the_same_picture_carries_the_cameras_own_preview(scene_pairs: dict[str, Pair]) -> None:
    """Byte for byte, at its own size; a source without a preview gives a blend without one."""
    for name in ("cr2", *(f"{kind}_preview" for kind in SCENES)):
        pair = scene_pairs[name]
        assert stored_preview(pair.blend) == stored_preview(pair.source), name
    for kind in SCENES:
        pair = scene_pairs[f"{kind}_bare"]
        assert stored_preview(pair.source) is None and stored_preview(pair.blend) is None
