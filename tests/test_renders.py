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

from medianscan.blend.frames import camera_preview
from medianscan.blend.options import BlendOptions
from medianscan.blend.pipeline import blend_stack
from tests.layouts import another_tools_dng, linear_rgb_dng, linearized_dng
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
