"""Flat-field correction on real raws: the Canon CR2's mosaic as the scene, seen through a lens falling to 0.62
at the corners and past sensor dust 30 % deep; flats of the bare light through the same lens and dust. The
corrected blend must be flat against the true scene within 3 %, in every CFA colour, dust shadows included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from medianscan.blend.corrections.flat import FlatError, load_master, master_by_planes
from medianscan.blend.options import BlendOptions
from medianscan.blend.pipeline import blend_stack, prepare_flat
from medianscan.blend.reading import frames
from medianscan.errors import StackError
from medianscan.library.recovery import recover
from tests.flats import dust_centres, flat_light, truth, write_stack
from tests.stacks import Scene, load_scene, tree_digest, write_frame

FRAMES = 5


@pytest.fixture(scope="module")
def scene(sample_raw: Path) -> Scene:
    return load_scene(sample_raw).crop(300, 400, 640, 960)


@pytest.fixture(scope="module")
def case(scene: Scene, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a folder of flat frames, a negative's stack folder)."""
    root = tmp_path_factory.mktemp("flatcase")
    write_stack(root / "flat", scene, flat_light(scene), FRAMES, seed=1)
    write_stack(root / "frame-001", scene, truth(scene), FRAMES, seed=2)
    return root / "flat", root / "frame-001"


def ratios(output: Path, scene: Scene) -> npt.NDArray[np.float32]:
    """The blend's signal over the true scene's, per photosite (NaN where the scene is too dark to tell)."""
    blended = frames.read_frame(output)
    assert blended.layout is not None
    got = blended.pixels.astype(np.float32) - np.float32(np.mean(blended.layout.black_levels))
    true = truth(scene)
    return np.where(true > 60, got / np.maximum(true, 1), np.nan).astype(np.float32)


def box_medians(ratio: npt.NDArray[np.float32], top: int, left: int, size: int) -> list[float]:
    """The median ratio of each of the four Bayer positions in a box."""
    box = ratio[top : top + size, left : left + size]
    return [float(np.nanmedian(box[py::2, px::2])) for py in (0, 1) for px in (0, 1)]


def corners_and_centre(ratio: npt.NDArray[np.float32]) -> tuple[list[float], list[list[float]]]:
    h, w = ratio.shape
    size = 40
    centre = box_medians(ratio, h // 2 - size // 2, w // 2 - size // 2, size)
    corners = [box_medians(ratio, t, lt, size) for t in (4, h - size - 4) for lt in (4, w - size - 4)]
    return centre, corners


@pytest.mark.slow
def test_the_flat_takes_out_the_falloff_and_the_dust_in_every_colour(case: tuple[Path, Path], scene: Scene) -> None:
    flat_dir, negative = case
    plain = blend_stack(negative, BlendOptions(output=negative.parent / "plain.dng"))
    centre, corners = corners_and_centre(ratios(plain.output, scene))
    assert max(max(c) for c in corners) < 0.7 * min(centre)  # the case is real: dark corners uncorrected

    master = prepare_flat(flat_dir)
    assert master == flat_dir / "flat_median.dng"  # the flat's frames are blended like any stack
    result = blend_stack(negative, BlendOptions(flat=master))
    ratio = ratios(result.output, scene)
    centre, corners = corners_and_centre(ratio)
    for corner in corners:
        for colour, (c, k) in enumerate(zip(centre, corner, strict=True)):
            assert abs(k / c - 1) < 0.03, f"CFA position {colour}: corner {k:.3f} against centre {c:.3f}"
    for y, x in dust_centres(ratio.shape):
        spot = float(np.nanmedian(ratio[y - 2 : y + 3, x - 2 : x + 3]))
        ring = np.concatenate(
            [ratio[y - 12 : y - 7, x - 12 : x + 13].ravel(), ratio[y + 8 : y + 13, x - 12 : x + 13].ravel()]
        )
        around = float(np.nanmedian(ring))
        assert abs(spot / around - 1) < 0.03, f"the dust shadow at {y},{x}: {spot:.3f} against {around:.3f} around it"
    uncorrected = ratios(plain.output, scene)
    y, x = dust_centres(ratio.shape)[0]
    assert float(np.nanmedian(uncorrected[y - 1 : y + 2, x - 1 : x + 2])) < 0.8 * float(
        np.nanmedian(uncorrected[y - 12 : y - 7, x - 12 : x + 13])
    )

    assert result.flat is not None
    assert result.flat.source == master and len(result.flat.frames_sha256) == FRAMES
    low, high = result.flat.gain_range
    assert 0.95 < low < 1.02 and 1 / 0.62 * 0.95 < high < 1 / (0.62 * 0.7) * 1.05  # falloff, and the dust on it
    assert result.flat.dust_photosites > 0 and result.flat.clip == "headroom"
    assert result.flat.white_level > scene.layout.white_level  # nothing pushed past white: headroom kept
    sidecar = json.loads(result.sidecar.read_text())
    assert sidecar["flat"]["dust_photosites"] == result.flat.dust_photosites
    assert sidecar["flat"]["frames_sha256"] == list(result.flat.frames_sha256)
    assert 0 <= sidecar["flat"]["baseline_exposure_ev"] < 0.5  # white raised only as far as the data reach


def test_the_corrected_dng_is_valid_and_keeps_its_headroom(case: tuple[Path, Path], scene: Scene) -> None:
    flat_dir, negative = case
    result = blend_stack(negative, BlendOptions(flat=prepare_flat(flat_dir), output=negative.parent / "checked.dng"))
    assert result.flat is not None
    out = subprocess.run(
        ["exiftool", "-validate", "-warning", "-a", "-WhiteLevel", "-BaselineExposure", str(result.output)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Validate                        : OK" in out, out
    assert f"White Level                     : {result.flat.white_level}" in out
    blended = frames.read_frame(result.output)
    assert int(blended.pixels.max()) <= result.flat.white_level  # nothing past the (raised) white level


def test_a_flat_folder_already_blended_is_not_blended_again(case: tuple[Path, Path]) -> None:
    flat_dir, _ = case
    master = prepare_flat(flat_dir)
    stamp = master.stat().st_mtime_ns
    assert prepare_flat(flat_dir) == master and master.stat().st_mtime_ns == stamp
    assert prepare_flat(master) == master  # a flat DNG is used as it is


def bad_flat(root: Path, scene: Scene, name: str, signal: npt.NDArray[np.float32], **changes: object) -> Path:
    write_stack(root / name, scene, signal, 3, seed=7, changes=changes)
    return prepare_flat(root / name)


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("camera", "comes from another camera"),
        ("iso", "shot at ISO"),
        ("aperture", "shot at aperture f/"),
        ("size", "its size is"),
        ("clipped", "the flat is clipped"),
        ("picture", "this is not a flat"),
        ("dark", "too dark to divide by"),
    ],
)
def test_a_bad_flat_is_named_with_its_reason_and_changes_nothing(
    case: tuple[Path, Path], scene: Scene, tmp_path: Path, kind: str, words: str
) -> None:
    _, negative = case
    light = flat_light(scene)
    if kind == "size":
        small = scene.crop(0, 0, 320, 480)
        master = bad_flat(tmp_path, small, kind, flat_light(small))
    elif kind == "camera":
        master = bad_flat(tmp_path, scene, kind, light, model="Canon EOS 5D")
    elif kind == "iso":
        master = bad_flat(tmp_path, scene, kind, light, iso=800.0)
    elif kind == "aperture":
        master = bad_flat(tmp_path, scene, kind, light, f_number=2.0)
    elif kind == "clipped":
        master = bad_flat(tmp_path, scene, kind, light * 1.6)
    elif kind == "picture":  # the negative itself, brought up to a flat's level
        picture = truth(scene)
        master = bad_flat(
            tmp_path, scene, kind, picture * (0.7 * float(light.max()) / float(np.percentile(picture, 99)))
        )
    else:
        master = bad_flat(tmp_path, scene, kind, light * 0.02)
    before = tree_digest(negative)
    with pytest.raises(FlatError) as caught:
        blend_stack(negative, BlendOptions(flat=master, output=tmp_path / "never.dng"))
    assert str(caught.value).startswith(f"{master}: ") and words in str(caught.value)
    assert isinstance(caught.value, StackError)
    assert not (tmp_path / "never.dng").exists() and tree_digest(negative) == before


def test_the_gains_a_plane_at_a_time_are_the_cached_flats_own(
    case: tuple[Path, Path], scene: Scene, tmp_path: Path
) -> None:
    """master_by_planes (how the stitch takes a flat, never the whole sensor's gains as float32) gives each CFA
    position of the active area the very gains and dust the blend's cached flat holds; a flat that is no flat
    is refused as its planes are made."""
    flat_dir, _ = case
    path = prepare_flat(flat_dir)
    master = load_master(path)
    bare, planes = master_by_planes(path)
    assert bare.gain.size == 0 and bare.frames_sha256 == master.frames_sha256 and bare.problem is None
    rebuilt, dust = np.ones_like(master.gain), 0
    for part in planes:
        rebuilt[part.rows, part.cols] = part.gain
        dust += part.dust
    assert np.array_equal(rebuilt, master.gain) and dust == master.dust_photosites > 0
    dark = bad_flat(tmp_path, scene, "dark", flat_light(scene) * 0.02)
    _, planes = master_by_planes(dark)
    with pytest.raises(FlatError, match="too dark to divide by"):
        next(planes)


@pytest.mark.slow
@pytest.mark.parametrize("dim", [True, False])
def test_a_raw_of_another_size_or_camera_is_refused_as_that_before_as_no_flat(
    sample_raw: Path, scene: Scene, tmp_path: Path, dim: bool
) -> None:
    """The issue's case: the camera's own CR2 (a picture, not a flat) given as the flat of 1536x1024 negatives.
    Its size is named first, not that it is too dark or no flat; a flat of another body names the camera too;
    and a no-flat of the right size and camera still says why it is no flat."""
    big = load_scene(sample_raw).crop(200, 300, 1024, 1536)
    negative = tmp_path / "frame-001"
    write_stack(negative, big, truth(big) * (0.05 if dim else 1.0), 3, seed=5, changes={"model": "Canon EOS 5D"})
    before = tree_digest(negative)
    with pytest.raises(FlatError) as caught:
        blend_stack(negative, BlendOptions(flat=sample_raw, output=tmp_path / "never.dng"))
    said = str(caught.value)
    assert said.startswith(f"{sample_raw}: cannot correct frame-001_01.dng with this flat: "), said
    assert "it comes from another camera (Canon EOS 30D #" in said and "the negative from Canon EOS 5D #" in said
    h, w = load_scene(sample_raw).mosaic.shape
    assert f"its size is {w}x{h}, the negative's 1536x1024" in said
    assert "too dark" not in said and "not a flat" not in said
    assert not (tmp_path / "never.dng").exists() and tree_digest(negative) == before
    same = tmp_path / "frame-002"  # the CR2's own size and camera: now what is wrong with it as a flat is said
    full = load_scene(sample_raw)
    same.mkdir()
    write_frame(same / "frame-002_01.dng", full.mosaic, full)
    write_frame(same / "frame-002_02.dng", full.mosaic, full)
    write_frame(same / "frame-002_03.dng", full.mosaic, full)
    with pytest.raises(FlatError) as caught:
        blend_stack(same, BlendOptions(flat=sample_raw, output=tmp_path / "never.dng"))
    assert str(caught.value).startswith(f"{sample_raw}: ") and "with this flat" not in str(caught.value)
    assert "too dark" in str(caught.value) or "not a flat" in str(caught.value)


@pytest.mark.slow
def test_blend_flat_from_the_command_line(case: tuple[Path, Path], tmp_path: Path) -> None:
    flat_dir, negative = case
    out = tmp_path / "cli.dng"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "medianscan",
            "blend",
            str(negative),
            "--flat",
            str(flat_dir),
            "--output",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout.splitlines()[-1])
    assert record["flat"]["source"] == str(flat_dir / "flat_median.dng") and out.is_file()
    missing = subprocess.run(
        [sys.executable, "-m", "medianscan", "blend", str(negative), "--flat", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2 and "nowhere: no such flat" in missing.stderr and "Traceback" not in missing.stderr


def xtrans_scene(h: int = 720, w: int = 1080) -> Scene:
    """A textured scene seen through a 6x6 X-Trans filter: the flat must work per colour on any CFA."""
    from scipy import ndimage

    from medianscan.metadata import CameraInfo, Exposure
    from tests.stacks import X_TRANS, rgb_layout

    layout = rgb_layout(X_TRANS, h, w, (0.55, 1.0, 0.75), matrix=np.eye(3))
    colours = np.tile(layout.pattern, (h // 6, w // 6))
    rng = np.random.default_rng(5)
    detail = ndimage.gaussian_filter(rng.normal(0, 1, (h, w)), 4.0)
    signal = (2500 + 1200 * detail / detail.std()) * np.asarray((0.55, 1.0, 0.75))[colours]
    mosaic = np.clip(np.rint(256 + np.maximum(signal, 50)), 0, 16383).astype(np.uint16)
    return Scene(mosaic, layout, CameraInfo("Medianscan", "X-Trans test"), Exposure(iso=200.0, f_number=8.0))


@pytest.mark.slow
def test_on_x_trans_every_colour_is_flat_too(tmp_path: Path) -> None:
    scene = xtrans_scene()
    write_stack(tmp_path / "flat", scene, flat_light(scene, 0.5), FRAMES, seed=3)
    write_stack(tmp_path / "frame-001", scene, truth(scene), FRAMES, seed=4)
    result = blend_stack(tmp_path / "frame-001", BlendOptions(flat=prepare_flat(tmp_path / "flat")))
    ratio = ratios(result.output, scene)
    colours = np.tile(np.asarray(scene.layout.pattern), (ratio.shape[0] // 6, ratio.shape[1] // 6))
    h, w = ratio.shape
    size = 48
    for colour in range(3):

        def median(top: int, left: int, colour: int = colour) -> float:
            box = ratio[top : top + size, left : left + size]
            return float(np.nanmedian(box[colours[top : top + size, left : left + size] == colour]))

        centre = median(h // 2 - size // 2, w // 2 - size // 2)
        for top, left in ((0, 0), (0, w - size), (h - size, 0), (h - size, w - size)):
            corner = median(top, left)
            assert abs(corner / centre - 1) < 0.03, f"{'RGB'[colour]}: corner {corner:.3f} against {centre:.3f}"
        for y, x in dust_centres(ratio.shape):
            spot = ratio[y - 2 : y + 3, x - 2 : x + 3][colours[y - 2 : y + 3, x - 2 : x + 3] == colour]
            assert abs(float(np.nanmedian(spot)) - 1) < 0.03


# --- the daemon: a flat burst for the roll ---------------------------------------------------------------------


def test_the_daemon_shoots_a_flat_and_corrects_the_rolls_later_negatives(tmp_path: Path) -> None:
    from medianscan.capture.camera.simulated.scene import Negative, light_path
    from medianscan.library.manifest import State, read_manifest
    from tests.daemon_thread import RunningDaemon, capture_config

    cfg = capture_config(tmp_path / "library")
    cfg.roll.flat = "required"
    sim = cfg.camera.simulated
    with RunningDaemon(cfg, triggers=False) as running:
        refused = running.ask("capture")
        assert not refused.ok and refused.outcome == "refused" and "no flat field yet" in refused.text
        assert running.daemon.library.stacks() == []  # nothing was shot

        answer = running.ask("flat")
        assert answer.ok, answer.text
        roll = running.daemon.library.roll
        flat = roll / "flat" / "flat-001"
        assert answer.stack == "flat-001" and "put the film back" in answer.text
        assert sorted(p.name for p in flat.iterdir()) == ["flat_01.dng", "flat_02.dng", "flat_03.dng"]
        assert not (roll / ".flat-shooting").exists()

        assert running.ask("capture").ok
        stack = running.wait_for_state("frame-001", State.BLENDED)
        manifest = read_manifest(stack)
        assert manifest.flat == flat and manifest.blend is not None and manifest.blend.flat is not None
        assert manifest.blend.flat.source == flat / "flat-001_median.dng"  # the flat's frames, blended on first use
        assert manifest.blend.flat.dust_photosites > 0  # the simulated sensor's two dust shadows

        blended = frames.read_frame(manifest.blend.output)
        assert blended.layout is not None
        got = blended.pixels.astype(np.float32) - np.float32(np.mean(blended.layout.black_levels))
        negative = Negative(sim.seed, 1, sim.height, sim.width)
        scene = negative.signal / light_path(sim.height, sim.width)  # what the film itself lets through
        ratio = got / np.maximum(scene, 1)
        h, w = ratio.shape
        centre = float(np.median(ratio[h // 2 - 20 : h // 2 + 20, w // 2 - 20 : w // 2 + 20]))
        for corner in (ratio[8:48, 8:48], ratio[-48:-8, -48:-8]):
            assert abs(float(np.median(corner)) / centre - 1) < 0.03  # the simulated 0.8 falloff is gone

        old_roll = roll
        assert running.ask("new-roll").ok
        carried = running.daemon.library.roll / "flat" / "flat-001"
        assert (carried / "flat_01.dng").stat().st_ino == (flat / "flat_01.dng").stat().st_ino  # linked, not copied
        assert running.daemon.library.roll != old_roll
        assert running.ask("capture").ok  # the new roll has the old flat: not refused


def test_a_flat_burst_cut_off_by_a_stop_is_set_aside_at_the_next_start(tmp_path: Path) -> None:
    from medianscan.library import flats
    from medianscan.library.rolls import Library

    library = Library(tmp_path / "library")
    roll = library.roll
    shot = flats.shooting_folder(roll)
    (shot / "flat_01.dng").write_bytes(b"a frame that got there")
    found = recover(library)
    assert found.cut_off_flats == [roll / "discarded" / "flat-cut-off"]
    assert (roll / "discarded" / "flat-cut-off" / "flat_01.dng").is_file()  # kept, never deleted
    assert flats.current_flat(roll) is None  # and not used
