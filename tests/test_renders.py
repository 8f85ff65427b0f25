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

import numpy as np
import numpy.typing as npt
import pytest

from medianscan.blend.options import BlendOptions
from medianscan.blend.pipeline import blend_stack
from medianscan.blend.reading.frames import camera_preview, read_frame
from medianscan.outputs.preview import StoredPreview, stored_preview
from medianscan.outputs.preview_change import decoded_preview
from tests.layouts import SCENES, another_tools_dng, falloff, linear_rgb_dng, linearized_dng, scene_dng
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

pytestmark = pytest.mark.slow  # real editors, browsers or whole processes: `make test-fast` leaves it out

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
    found["cr2"] = Pair(sample_raw, _blend_copies(sample_raw, root / "cr2", BlendOptions()))
    found.update(_changed_pictures(root, made, found))
    return found


def _changed_pictures(root: Path, made: Path, found: dict[str, Pair]) -> dict[str, Pair]:
    """Blends whose picture is not their frames': each scene shot through a lens and panel that fall off to the
    corners (tests/layouts.falloff) and flat-fielded by a flat of that light; and a bracket of the stage scene, 3
    frames at 1/60 s and 3 at 1/15 s whose lights clip. Each against a camera's raw of the picture the DNG
    shows without BaselineExposure (as darktable and RawTherapee develop it): the scene evenly lit, at the
    longest exposure less the DNG's headroom (levels.tightened: none for these flats, about 1 EV for the bracket)."""
    light = falloff()
    bare = scene_dng(made / "light.dng", "light", preview=True, light=light)
    flat = _blend_copies(bare, root / "flat", BlendOptions())  # a master flat is a blend of the bare light
    changed = {}
    for kind in SCENES:
        lit = scene_dng(made / f"{kind}_lit.dng", kind, preview=True, light=light)
        blend = _blend_copies(lit, root / f"{kind}_flat", BlendOptions(flat=flat))
        changed[f"{kind}_flat"] = Pair(_shown(made, kind, blend, 1.0, found[f"{kind}_preview"].source), blend)
    bracket = root / "stage_bracket"
    bracket.mkdir()
    for i in range(3):  # frames with their own noise: a group's noise is measured between two of its frames
        scene_dng(bracket / f"b_{i + 1:02d}.dng", "stage", preview=True, exposure=1.0, seconds="1/60", seed=10 + i)
        scene_dng(bracket / f"b_{i + 4:02d}.dng", "stage", preview=True, exposure=4.0, seconds="1/15", seed=20 + i)
    merged = blend_stack(bracket, BlendOptions(bracket=True)).output
    changed["stage_bracket"] = Pair(_shown(made, "stage", merged, 4.0, None), merged)
    return changed


def _shown(made: Path, kind: str, blend: Path, exposure: float, same: Path | None) -> Path:
    """A camera's raw of the scene `kind`, evenly lit, at the exposure `blend` shows without its BaselineExposure
    (`exposure` less the headroom it says); `same` when that is the exposure it was shot at."""
    layout = read_frame(blend, "raw").layout
    assert layout is not None
    shown = exposure * 2.0**-layout.baseline_ev
    if same is not None and abs(shown - 1.0) < 1e-4:
        return same
    return scene_dng(made / f"{blend.stem}_shown.dng", kind, preview=True, exposure=shown)


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
CHANGED = [f"{kind}_flat" for kind in SCENES] + ["stage_bracket"]


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


@pytest.mark.parametrize("name", CHANGED)
@pytest.mark.parametrize("tool", ["darktable", "rawtherapee", "libraw"])
def test_a_changed_picture_develops_like_a_raw_of_that_picture(
    name: str, tool: str, scene_pairs: dict[str, Pair], full_renders: FullRenders
) -> None:
    """A flat-fielded blend develops like the scene shot evenly lit, and a bracket's merge like a raw at the
    exposure it shows without BaselineExposure, at that raw's size, per channel within SAME: in RawTherapee's
    default profile too, whose curve is fitted to the preview (the camera's own preview of the reference frame,
    changed by the flat's gain in the camera's colours, the headroom, and for a bracket the shorter exposures where
    it clipped, through the camera's rendering learned from the frames' raws and previews). On the stage scene (near
    black, a few coloured lights) RawTherapee's fit lands on one of a few curves: through sRGB's curve instead of
    the camera's rendering the flat-fielded blend developed +0.31 EV off in green, the bracket -0.064."""
    measured = _gap(tool, full_renders, scene_pairs[name])
    print(f"{name} {tool}: {' / '.join(f'{g:+.3f}' for g in measured)} EV")
    assert np.abs(measured).max() <= SAME, f"{tool} renders the {name} blend {np.round(measured, 3)} EV off"


def test_a_changed_pictures_preview_is_the_cameras_changed_alike(scene_pairs: dict[str, Pair]) -> None:
    """The blend's preview is the camera's preview of its reference frame brought to the picture the DNG shows:
    at most half as far from the camera's own preview of that picture as the frame's preview is (per channel,
    mean codes), and for a flat field within two codes of it."""
    for name in CHANGED:
        pair = scene_pairs[name]
        frame = pair.blend.parent / ("b_04.dng" if name.endswith("bracket") else f"{pair.blend.parent.name}_01.dng")
        camera = _decoded(stored_preview(pair.source))
        ours, unchanged = (
            np.abs(_decoded(stored_preview(p)) - camera).reshape(-1, 3).mean(axis=0) for p in (pair.blend, frame)
        )
        print(f"{name}: ours {np.round(ours, 2)}, the frame's {np.round(unchanged, 2)} codes off")
        assert np.all(ours <= unchanged / 2), f"{name}: {np.round(ours, 2)} codes off, the frame's {unchanged}"
        assert name.endswith("bracket") or ours.max() <= 2.0, f"{name}: {np.round(ours, 2)} codes off"


def _decoded(stored: StoredPreview | None) -> npt.NDArray[np.float64]:
    image = None if stored is None else decoded_preview(stored)
    assert image is not None
    return np.asarray(image, dtype=np.float64)


def test_the_blend_of_the_same_picture_carries_the_cameras_own_preview(scene_pairs: dict[str, Pair]) -> None:
    """Byte for byte, at its own size; a source without a preview gives a blend without one."""
    for name in ("cr2", *(f"{kind}_preview" for kind in SCENES)):
        pair = scene_pairs[name]
        assert stored_preview(pair.blend) == stored_preview(pair.source), name
    for kind in SCENES:
        pair = scene_pairs[f"{kind}_bare"]
        assert stored_preview(pair.source) is None and stored_preview(pair.blend) is None
