"""The blend engine end to end on bursts made from the real CR2: outputs, statistics, and every bad input."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Literal

import exiv2
import numpy as np
import pytest
import rawpy
import tifffile

from medianscan.blend.measuring.noise import noise_warnings
from medianscan.blend.options import BlendOptions
from medianscan.blend.pipeline import blend_stack
from medianscan.blend.reading import frames, sniff
from medianscan.blend.verify import verify_output
from medianscan.cli import main
from medianscan.errors import StackError
from medianscan.library.contents import read_folder
from medianscan.library.manifest import Manifest, State, read_manifest, write_manifest
from tests.readers import exiftool_tags
from tests.stacks import Scene, load_scene, make_burst, noisy, tree_digest, write_frame

SIGMA = 20.0


@pytest.fixture(scope="module")
def scene(sample_raw: Path) -> Scene:
    return load_scene(sample_raw)


@pytest.fixture(scope="module")
def small(scene: Scene) -> Scene:
    """A 384x576 crop: a real sensor's CFA and levels at a size that keeps the many cases quick."""
    return scene.crop(800, 1400, 384, 576)


def visible(path: Path) -> np.ndarray:
    with rawpy.imread(str(path)) as raw:
        return np.array(raw.raw_image_visible, dtype=np.float64)


@pytest.mark.slow
def test_median_of_a_burst_removes_dust_and_lowers_noise_as_theory_says(tmp_path: Path, scene: Scene) -> None:
    """Nine full-size frames with noise and moving dust: the median holds no dust and ~sqrt(pi/2/N) noise."""
    folder = tmp_path / "frame-001"
    paths = make_burst(folder, scene, 9, sigma=SIGMA, seed=1, dust=40)
    before = tree_digest(folder)

    result = blend_stack(folder, BlendOptions())

    assert result.output == folder / "frame-001_median.dng"
    assert result.sidecar == folder / "frame-001_median.json"
    assert tree_digest(folder).items() >= before.items()  # inputs untouched, only outputs added
    truth = scene.mosaic[scene.layout.active_area[0] :, scene.layout.active_area[1] :].astype(np.float64)
    residual = visible(result.output) - truth
    single = visible(paths[0]) - truth
    # Dust specks (0 or white, 5x5 px) are gone: nothing in the blend strays beyond 6 sigma of the truth.
    assert np.abs(single).max() > 1000
    assert np.abs(residual).max() < 6 * SIGMA
    # Efficiency of the median of 9 Gaussian samples: std ratio 0.41 (exact order statistics; 0.42 asymptotic).
    ratio = residual.std() / SIGMA
    assert 0.38 < ratio < 0.45, ratio
    # The sidecar's own measurement (leave-one-out, from the frames alone) agrees with the truth.
    assert result.noise_ratio == pytest.approx(ratio, abs=0.04)


@pytest.mark.parametrize(
    ("method", "low", "high"),
    [("mean", 0.31, 0.36), ("sigma-clip", 0.31, 0.37), ("winsorized", 0.31, 0.38), ("median", 0.38, 0.45)],
)
@pytest.mark.slow
def test_each_method_reaches_its_statistical_efficiency(
    tmp_path: Path, small: Scene, method: str, low: float, high: float
) -> None:
    folder = tmp_path / "stack"
    make_burst(folder, small, 9, sigma=SIGMA, seed=2)
    result = blend_stack(folder, BlendOptions(method=method))  # type: ignore[arg-type]
    assert result.output.name == f"stack_{method}.dng"
    ratio = (visible(result.output) - small.mosaic).std() / SIGMA
    assert low < ratio < high, (method, ratio)


@pytest.mark.slow
def test_an_outlier_frame_is_removed_by_the_median_and_the_robust_means(tmp_path: Path, small: Scene) -> None:
    """One frame with a large bright streak (a hair, a light leak): the median and the robust means ignore it,
    the mean does not. (At kappa 3 a sigma-clip needs 9 frames to reject a lone outlier: it inflates the std.)"""
    folder = tmp_path / "stack"
    paths = make_burst(folder, small, 9, sigma=SIGMA, seed=3)
    rng = np.random.default_rng(9)
    streaked = noisy(small, rng, SIGMA)
    streaked[100:120, :] = small.layout.white_level
    write_frame(paths[3], streaked, small)
    errors = {}
    for method in ("median", "sigma-clip", "winsorized", "mean"):
        out = blend_stack(folder, BlendOptions(method=method))
        errors[method] = np.abs(visible(out.output)[100:120] - small.mosaic[100:120]).mean()
    assert errors["median"] < 2 * SIGMA
    assert errors["sigma-clip"] < 2 * SIGMA
    assert errors["winsorized"] < 2 * SIGMA
    assert errors["mean"] > 10 * SIGMA


def test_odd_median_is_bit_identical_to_numpy_and_even_rounds_the_middle_pair(tmp_path: Path, small: Scene) -> None:
    for n in (3, 4):
        folder = tmp_path / f"n{n}"
        paths = make_burst(folder, small, n, seed=n)
        stack = np.stack([rawpy.imread(str(p)).raw_image.copy() for p in paths])
        result = blend_stack(folder)
        with rawpy.imread(str(result.output)) as raw:
            got = raw.raw_image.copy()
        if n % 2:
            expected = np.median(stack, axis=0).astype(np.uint16)
        else:
            ordered = np.sort(stack.astype(np.uint32), axis=0)
            expected = ((ordered[n // 2 - 1] + ordered[n // 2] + 1) // 2).astype(np.uint16)
        np.testing.assert_array_equal(got, expected)


def test_sidecar_records_method_frames_hashes_exposure_and_levels(tmp_path: Path, small: Scene) -> None:
    folder = tmp_path / "frame-007"
    paths = make_burst(folder, small, 5)
    result = blend_stack(folder, BlendOptions(method="sigma-clip", kappa=2.5, iterations=3))
    record = json.loads(result.sidecar.read_text())
    assert record["method"] == "sigma-clip"
    assert record["parameters"]["kappa"] == 2.5 and record["parameters"]["iterations"] == 3
    assert [f["file"] for f in record["frames"]] == [p.name for p in paths]
    assert record["frames"][0]["sha256"] == frames.read_frame(paths[0]).sha256
    assert record["frames"][0]["exposure"] == {
        "iso": 640.0,
        "exposure_time": pytest.approx(1 / 400),
        "f_number": 22.0,
    }
    assert all(f["mean_level"] > 0 for f in record["frames"])
    assert record["camera"]["model"] == "Canon EOS 30D"
    assert record["rejected"] == []
    assert record["versions"]["rawpy"]
    verify_output(result)


def test_the_stack_folder_lists_frames_by_content_and_never_its_own_outputs(
    tmp_path: Path, small: Scene, sample_raw: Path
) -> None:
    folder = tmp_path / "s"
    paths = make_burst(folder, small, 3)
    unnamed = folder / "s_04"  # a raw without an extension is still a raw: content decides
    shutil.copy(paths[0], unnamed)
    (folder / "notes.txt").write_text("exposure 1/50")
    blend_stack(folder)
    assert read_folder(folder, sniff.inspect).frames == (*paths, unnamed)
    assert sniff.sniff(unnamed) == "raw"
    assert sniff.sniff(sample_raw) == "raw"
    assert sniff.sniff(folder / "notes.txt") is None


def test_tiff_and_jpeg_stacks_blend_to_their_own_format(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    base = rng.integers(2000, 60000, (64, 96, 3)).astype(np.float64)
    tiffs, jpegs = tmp_path / "tiffs", tmp_path / "jpegs"
    tiffs.mkdir()
    jpegs.mkdir()
    import imagecodecs

    stack16 = []
    for i in range(5):
        frame = np.clip(base + rng.normal(0, 300, base.shape), 0, 65535).astype(np.uint16)
        stack16.append(frame)
        tifffile.imwrite(tiffs / f"t_{i}.tif", frame, photometric="rgb")
        (jpegs / f"j_{i}.jpeg").write_bytes(imagecodecs.jpeg8_encode((frame >> 8).astype(np.uint8), level=95))
    t = blend_stack(tiffs)
    assert t.output.name == "tiffs_median.tif"
    recorded = {f["file"]: f["sha256"] for f in json.loads(t.sidecar.read_text())["frames"]}
    assert recorded == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(tiffs.glob("t_*.tif"))}
    np.testing.assert_array_equal(tifffile.imread(t.output), np.median(np.stack(stack16), axis=0).astype(np.uint16))
    j = blend_stack(jpegs)
    assert j.output.name == "jpegs_median.jpg" and sniff.sniff(j.output) == "jpeg"
    assert frames.read_frame(j.output).pixels.shape == (64, 96, 3)


def test_tiffs_in_motorola_byte_order_blend_to_their_values(tmp_path: Path) -> None:
    """Photoshop's "Macintosh" byte order: big-endian 16-bit TIFFs are decoded (swapped), never mapped as is."""
    rng = np.random.default_rng(8)
    stack = rng.integers(0, 65535, (3, 40, 50, 3), dtype=np.uint16)
    folder = tmp_path / "mac"
    folder.mkdir()
    for i, frame in enumerate(stack):
        tifffile.imwrite(folder / f"m_{i}.tif", frame, photometric="rgb", byteorder=">")
    result = blend_stack(folder)
    np.testing.assert_array_equal(tifffile.imread(result.output), np.median(stack, axis=0).astype(np.uint16))
    verify_output(result)


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_greyscale_tiffs_blend_to_a_greyscale_tiff_not_a_raw(tmp_path: Path, byteorder: Literal["<", ">"]) -> None:
    """LibRaw opens a 16-bit greyscale TIFF as the mosaic of an unknown camera; a black-and-white scan must stay
    a greyscale TIFF with the median of its values."""
    stack = np.random.default_rng(9).integers(0, 65535, (5, 48, 64), dtype=np.uint16)
    folder = tmp_path / "bw"
    folder.mkdir()
    for i, frame in enumerate(stack):
        tifffile.imwrite(folder / f"bw_{i}.tif", frame, photometric="minisblack", byteorder=byteorder)
    assert sniff.sniff(folder / "bw_0.tif") == "tiff"
    result = blend_stack(folder)
    assert result.output.name == "bw_median.tif"
    with tifffile.TiffFile(result.output) as tif:
        assert tif.pages.first.photometric == tifffile.PHOTOMETRIC.MINISBLACK
        np.testing.assert_array_equal(tif.asarray(), np.median(stack, axis=0).astype(np.uint16))


def test_tiff_and_compressed_dng_outputs(tmp_path: Path, small: Scene) -> None:
    folder = tmp_path / "s"
    make_burst(folder, small, 3)
    plain = blend_stack(folder, BlendOptions(method="mean"))
    packed = blend_stack(folder, BlendOptions(method="mean", compress=True, tiff=True, output=tmp_path / "o.dng"))
    assert packed.output == tmp_path / "o.dng" and packed.sidecar == tmp_path / "o.json"
    assert packed.output.stat().st_size < plain.output.stat().st_size
    np.testing.assert_array_equal(visible(packed.output), visible(plain.output))
    (tiff,) = packed.extra_outputs
    rgb = tifffile.imread(tiff)
    assert rgb.dtype == np.uint16 and rgb.ndim == 3 and rgb.shape[2] == 3


def test_the_linear_tiff_says_its_colour_space_is_linear_srgb(tmp_path: Path, small: Scene) -> None:
    """The 16-bit TIFF of `--tiff` holds linear light in sRGB's primaries; its embedded ICC profile says so, as
    exiftool finds it and as Little CMS (the colour engine of GIMP, darktable and RawTherapee) applies it: the
    TIFF's linear 18 % grey is sRGB's 0.46, and its primaries are sRGB's."""
    import imagecodecs

    folder = tmp_path / "s"
    make_burst(folder, small, 3)
    (tiff,) = blend_stack(folder, BlendOptions(tiff=True)).extra_outputs
    tags = exiftool_tags(tiff)
    assert tags["ICC-header:ColorSpaceData"] == "RGB " and "ICC_Profile:RedMatrixColumn" in tags
    with tifffile.TiffFile(tiff) as tif:
        icc = tif.pages.first.tags["InterColorProfile"].value
    imagecodecs.cms_profile_validate(icc)
    probe = np.array([[[11796, 11796, 11796], [65535, 0, 0], [0, 65535, 0]]], np.uint16)
    as_srgb = (
        imagecodecs.cms_transform(probe, icc, imagecodecs.cms_profile("srgb"), colorspace="rgb", outcolorspace="rgb")
        / 65535
    )
    expected = np.array([[[0.4613] * 3, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    assert np.abs(as_srgb - expected).max() < 0.002, as_srgb


@pytest.mark.parametrize("compress", [False, True], ids=["streamed", "compressed"])
def test_tiff_and_jpeg_blends_carry_their_frames_colour_profile(tmp_path: Path, compress: bool) -> None:
    """Frames exported in Adobe RGB blend to an output in Adobe RGB (read as sRGB they would lose their colour);
    a frame exported in another colour space is named."""
    import imagecodecs

    adobe = imagecodecs.cms_profile("adobergb")
    rng = np.random.default_rng(5)
    tiffs, jpegs = tmp_path / "tiffs", tmp_path / "jpegs"
    for folder in (tiffs, jpegs):
        folder.mkdir()
    for i in range(3):
        frame = rng.integers(1000, 60000, (32, 48, 3)).astype(np.uint16)
        tifffile.imwrite(tiffs / f"t_{i}.tif", frame, photometric="rgb", iccprofile=adobe)
        jpeg_path = jpegs / f"j_{i}.jpg"
        jpeg_path.write_bytes(imagecodecs.jpeg8_encode((frame >> 8).astype(np.uint8), level=95))
        with_profile = exiv2_image(jpeg_path)
        with_profile.setIccProfile(exiv2.DataBuf(adobe))
        with_profile.writeMetadata()
    for folder in (tiffs, jpegs):
        result = blend_stack(folder, BlendOptions(compress=compress))
        assert frames.read_frame(result.output).icc == adobe, result.output
    tifffile.imwrite(tiffs / "t_1.tif", rng.integers(1000, 60000, (32, 48, 3)).astype(np.uint16), photometric="rgb")
    with pytest.raises(StackError, match=r"t_1\.tif: colour profile none differs from the other frames' of \d+ bytes"):
        blend_stack(tiffs, BlendOptions(compress=compress))


def exiv2_image(path: Path) -> exiv2.Image:
    image = exiv2.ImageFactory.open(str(path))
    image.readMetadata()
    return image


# --- bad input: a clear sentence naming stack, frame and reason; non-zero exit; no output; inputs untouched ---


def _run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    code = main(["blend", *(str(a) for a in args)])
    return code, capsys.readouterr().err


def _assert_refused(folder: Path, before: dict[str, bytes], code: int, err: str, *needles: str) -> None:
    assert code != 0
    for needle in needles:
        assert needle in err, err
    assert "Traceback" not in err
    assert err.count("\n") <= 2
    assert tree_digest(folder) == before  # no output written, inputs untouched


@pytest.mark.parametrize(
    ("fault", "needles"),
    [
        ("iso", ["s_02.dng", "ISO 800 differs", "640"]),
        ("shutter", ["s_02.dng", "shutter 1/50 s", "1/400 s"]),
        ("model", ["s_02.dng", "camera Canon EOS 5D"]),
        ("serial", ["s_02.dng", "camera serial 42"]),
        ("size", ["s_02.dng", "size 384x574"]),
        ("flicker", ["s_02.dng", "brighter than the other frames"]),
        ("shift", ["s_02.dng", "shifted by -2.", "px horizontally"]),
        ("truncated", ["s_02.dng", "unreadable or truncated"]),
        ("black", ["s_02.dng", "black level (256, 256, 256, 256) differs"]),
        ("white", ["s_02.dng", "white level 16383 differs", "4095"]),
        ("pattern", ["s_02.dng", "CFA pattern GRBG differs from the other frames' RGGB"]),
    ],
)
def test_a_frame_that_breaks_the_stack_is_named(
    tmp_path: Path, small: Scene, capsys: pytest.CaptureFixture[str], fault: str, needles: list[str]
) -> None:
    folder = tmp_path / "s"
    paths = make_burst(folder, small, 4, seed=5)
    rng = np.random.default_rng(6)
    bad = paths[1]
    mosaic = noisy(small, rng, SIGMA)
    if fault == "iso":
        write_frame(bad, mosaic, small, iso=800.0)
    elif fault == "shutter":
        write_frame(bad, mosaic, small, exposure_time=1 / 50)
    elif fault == "model":
        write_frame(bad, mosaic, small, model="Canon EOS 5D")
    elif fault == "serial":
        write_frame(bad, mosaic, small, serial="42")
    elif fault == "size":
        narrow = replace(
            small, layout=replace(small.layout, active_area=(0, 0, 384, 574), default_crop=(0, 0, 574, 384))
        )
        write_frame(bad, np.ascontiguousarray(mosaic[:, :574]), narrow)
    elif fault == "flicker":
        black = 128
        write_frame(bad, np.clip((mosaic.astype(np.float32) - black) * 1.15 + black, 0, 4095).astype(np.uint16), small)
    elif fault == "shift":
        shifted = np.roll(small.mosaic, -2, axis=1).astype(np.float32) + rng.normal(0, SIGMA, small.mosaic.shape)
        write_frame(bad, np.clip(np.rint(shifted), 0, 4095).astype(np.uint16), small)
    elif fault == "black":
        write_frame(bad, mosaic, replace(small, layout=replace(small.layout, black_levels=(256, 256, 256, 256))))
    elif fault == "white":
        write_frame(bad, mosaic, replace(small, layout=replace(small.layout, white_level=16383)))
    elif fault == "pattern":  # the same sensor read one column over: the colour filters start G R
        gbrg = replace(small.layout, pattern=np.roll(small.layout.pattern, -1, axis=1))
        write_frame(bad, mosaic, replace(small, layout=gbrg))
    elif fault == "truncated":
        bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    before = tree_digest(folder)

    code, err = _run_cli(capsys, folder)

    _assert_refused(folder, before, code, err, "s: cannot blend", *needles)


def test_drop_bad_frames_blends_the_rest_and_says_which(
    tmp_path: Path, small: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "s"
    paths = make_burst(folder, small, 5, seed=7)
    write_frame(paths[2], (noisy(small, np.random.default_rng(1), SIGMA) // 2).astype(np.uint16), small)
    code, err = _run_cli(capsys, folder, "--drop-bad-frames")
    assert code == 0, err
    record = json.loads((folder / "s_median.json").read_text())
    assert [r["file"] for r in record["rejected"]] == ["s_03.dng"]
    assert "darker" in record["rejected"][0]["reason"]
    assert len(record["frames"]) == 4
    assert "dropped s_03.dng" in err


def test_too_few_frames_and_non_images_are_refused(
    tmp_path: Path, small: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "s"
    paths = make_burst(folder, small, 2)
    before = tree_digest(folder)
    code, err = _run_cli(capsys, folder)
    _assert_refused(folder, before, code, err, "s: cannot blend: 2 frames", "at least 3")
    (folder / "readme.bin").write_text("hello")
    before = tree_digest(folder)
    code, err = _run_cli(capsys, *paths, folder / "readme.bin")
    _assert_refused(folder, before, code, err, "readme.bin: not a camera raw, TIFF or JPEG")
    code, err = _run_cli(capsys, tmp_path / "missing")
    assert code != 0 and "no such" in err


def test_keep_going_blends_every_good_stack_of_a_batch(
    tmp_path: Path, small: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    good1, bad, good2 = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    make_burst(good1, small, 3, seed=1)
    make_burst(bad, small, 2, seed=2)
    make_burst(good2, small, 3, seed=3)
    code, err = _run_cli(capsys, good1, bad, good2)
    assert code == 1 and not (good2 / "c_median.dng").exists()
    assert "stopped; 1 more stack not attempted (c); --keep-going blends the rest" in err
    lines = err.splitlines()
    assert lines[0].startswith("[1/3] a: ")  # not a terminal: numbered lines, a failure said once, as a sentence
    assert lines[1].startswith("medianscan: [2/3] b: cannot blend: 2 frames") and err.count(" b:") == 1
    code = main(["blend", "--keep-going", "--json", str(good1), str(bad), str(good2)])
    out, err = capsys.readouterr()
    assert code == 1
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["ok"] for r in records] == [True, False, True]
    assert (good2 / "c_median.dng").is_file() and "b: cannot blend: 2 frames" in err


@pytest.mark.slow
def test_an_output_folder_takes_a_whole_batch_from_a_read_only_card(tmp_path: Path, small: Scene) -> None:
    """Two stacks on a real read-only filesystem (a tmpfs remounted read-only in the test's own mount namespace):
    `--output DIR/` puts both outputs in DIR under their stacks' names and the card is left as it was."""
    card = tmp_path / "mnt"
    staged = tmp_path / "staged"
    for name, seed in (("a", 1), ("b", 2)):
        make_burst(staged / name, small, 3, seed=seed)
    out = tmp_path / "out"
    done = _in_own_mount(
        tmp_path,
        f'mount -t tmpfs tmpfs "$M" && cp -r {staged}/a {staged}/b "$M" && mount -o remount,ro "$M" && '
        f'"$MEDIANSCAN" blend "$M/a" "$M/b" --output {out}/ && ls -R "$M"',
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a_median.dng", "a_median.json", "b_median.dng", "b_median.json"]
    assert "median" not in done.stdout  # nothing written on the card
    with rawpy.imread(str(out / "b_median.dng")) as raw:
        assert raw.raw_image_visible.shape == (384, 576)
    assert json.loads((out / "a_median.json").read_text())["frames"][0]["file"] == "a_01.dng"
    assert not card.exists() or not any(card.iterdir())


def test_output_names_a_file_for_one_stack_and_a_folder_for_many(
    tmp_path: Path, small: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    make_burst(tmp_path / "x" / "s", small, 3, seed=1)
    make_burst(tmp_path / "y" / "s", small, 3, seed=2)
    code, err = _run_cli(capsys, tmp_path / "x" / "s", tmp_path / "y" / "s", "--output", tmp_path / "o.dng")
    assert code != 0 and "2 stacks were given; give a folder (ending in /)" in err
    code, err = _run_cli(capsys, tmp_path / "x" / "s", tmp_path / "y" / "s", "--output", f"{tmp_path}/o/")
    assert code != 0 and "several stacks are named s" in err and not list((tmp_path / "o").iterdir())
    existing = tmp_path / "here"
    existing.mkdir()
    code, err = _run_cli(capsys, tmp_path / "x" / "s", "--output", existing)  # an existing folder, no slash
    assert code == 0, err
    assert (existing / "s_median.dng").is_file() and not (tmp_path / "x" / "s" / "s_median.dng").exists()


def test_frames_of_two_cameras_in_equal_numbers_name_the_split(
    tmp_path: Path, small: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "s"
    paths = make_burst(folder, small, 6, seed=4)
    for path in paths[3:]:
        write_frame(path, noisy(small, np.random.default_rng(path.stat().st_size), SIGMA), small, model="EOS 5D")
    before = tree_digest(folder)
    code, err = _run_cli(capsys, folder, "--drop-bad-frames")
    _assert_refused(folder, before, code, err, "frames of 2 cameras and none is most of them")
    assert "3 of EOS 5D (s_04.dng, s_05.dng, s_06.dng)" in err
    assert "3 of " in err.replace("3 of EOS 5D", "") and "blend each camera's frames as a stack of its own" in err
    assert "differs from the other frames'" not in err  # no body taken as the reference


def test_a_burst_marked_incomplete_needs_force(
    tmp_path: Path, small: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "s"
    make_burst(folder, small, 3)
    write_manifest(folder, Manifest(state=State.INCOMPLETE, roll="roll", frame="s", frames_expected=9))
    code, err = _run_cli(capsys, folder)
    assert code != 0 and "cut off" in err and not (folder / "s_median.dng").exists()
    code, err = _run_cli(capsys, folder, "--force")
    assert code == 0 and (folder / "s_median.dng").is_file()
    m = read_manifest(folder)  # recorded exactly as the daemon records its blends
    assert m.state == State.BLENDED and m.error is None
    assert m.blend is not None and m.blend.output == folder / "s_median.dng" and len(m.blend.frames) == 3
    assert [h["state"] for h in m.history][-1] == "blended"


def test_a_burst_cut_off_before_enough_frames_does_not_suggest_force() -> None:
    from medianscan.library.recovery import cut_off_note

    assert "--force" in cut_off_note(5, 9)
    assert "--force" not in cut_off_note(0, 9) and "nothing to blend" in cut_off_note(0, 9)
    assert "--force" not in cut_off_note(2, 9) and "too few" in cut_off_note(2, 9)


def test_unsupported_stacks_raise_stack_error_not_a_traceback(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    for i in range(3):
        tifffile.imwrite(folder / f"{i}.tif", np.zeros((8, 8), np.float32))
    with pytest.raises(StackError, match=r"0\.tif: TIFF of float32"):
        blend_stack(folder)


def test_a_raw_without_a_mosaic_blends_to_a_linear_dng(tmp_path: Path) -> None:
    """A linear DNG (demosaiced RGB, as film scanners' raws, sRAW and some converters write) is blended as RGB into
    a linear DNG (PhotometricInterpretation LinearRaw) that LibRaw reads back exactly."""
    folder = tmp_path / "linear"
    folder.mkdir()
    rng = np.random.default_rng(8)
    scene = rng.integers(500, 3500, (64, 96, 3))
    for i in range(3):
        rgb = (scene + rng.integers(-40, 40, scene.shape)).astype(np.uint16)
        tifffile.imwrite(
            folder / f"l_{i}.dng",
            rgb,
            photometric=34892,  # LinearRaw
            extratags=[(50706, "B", 4, (1, 4, 0, 0), True), (50708, "s", 0, "Test Linear", True)],
        )
    result = blend_stack(folder)
    stack = np.stack([tifffile.imread(folder / f"l_{i}.dng") for i in range(3)])
    with rawpy.imread(str(result.output)) as raw:
        assert raw.raw_type == rawpy.RawType.Stack
        assert np.array_equal(raw.raw_image[..., :3], np.median(stack, axis=0).astype(np.uint16))
    assert exiftool_tags(result.output)["IFD0:PhotometricInterpretation"] == 34892  # no preview: the source had none


def _in_own_mount(tmp_path: Path, script: str) -> subprocess.CompletedProcess[str]:
    """Run `script` in a mount namespace of its own (unshare, util-linux) where `$M` is a fresh tmpfs: a real
    small or read-only filesystem without touching the host's mounts."""
    mnt = tmp_path / "mnt"
    mnt.mkdir(exist_ok=True)
    medianscan = Path(sys.executable).parent / "medianscan"
    return subprocess.run(
        ["unshare", "-rm", "sh", "-euc", script],
        env={**os.environ, "M": str(mnt), "MEDIANSCAN": str(medianscan)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("mount", "output", "needle"),
    [
        ('mount -t tmpfs -o size=1m tmpfs "$M"', "$M/out.dng", "too little free space in"),
        ('mount -t tmpfs tmpfs "$M" && mount -o remount,ro "$M"', "$M/out.dng", "cannot write into"),
        ("true", "$M/gone/out.dng", "the output folder"),
    ],
    ids=["full", "read-only", "missing"],
)
def test_output_problems_are_found_before_any_frame_is_decoded(
    tmp_path: Path, small: Scene, mount: str, output: str, needle: str
) -> None:
    """Real filesystems (a 1 MiB tmpfs, a read-only one) in a mount namespace of the test's own. The stack
    also has a frame at another ISO, which only decoding would find: the output's problem must come first."""
    folder = tmp_path / "s"
    paths = make_burst(folder, small, 3)
    write_frame(paths[2], noisy(small, np.random.default_rng(3), SIGMA), small, iso=1600)
    before = tree_digest(folder)
    done = _in_own_mount(tmp_path, f'{mount}; "$MEDIANSCAN" blend {folder} --output "{output}"')
    assert done.returncode == 1, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("medianscan:")]
    assert len(lines) == 1 and needle in lines[0], done.stderr
    assert "ISO" not in done.stderr and "Traceback" not in done.stderr
    assert tree_digest(folder) == before


def test_a_blend_of_copies_and_a_noisier_blend_are_never_silent_successes(
    tmp_path: Path, small: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "copies"
    folder.mkdir()
    first = write_frame(folder / "f1.dng", noisy(small, np.random.default_rng(1), 20), small)
    for i in (2, 3):
        shutil.copy(first, folder / f"f{i}.dng")
    assert main(["blend", str(folder)]) == 0
    assert (
        "warning: copies: the 3 frames are identical copies of one file (a copy, not a burst)"
        in capsys.readouterr().err
    )
    assert json.loads((folder / "copies_median.json").read_text())["warnings"]
    shutil.copy(first, folder / "f2.dng")  # one copy among frames of a burst
    for i in (3, 4):
        write_frame(folder / f"f{i}.dng", noisy(small, np.random.default_rng(i), 20), small)
    shutil.copy(folder / "f3.dng", folder / "f5.dng")
    assert main(["blend", str(folder)]) == 0
    assert (
        "warning: copies: f2.dng is a byte-identical copy of f1.dng; f5.dng is a byte-identical copy of f3.dng "
        "(a copied file, not a frame of the burst)" in capsys.readouterr().err
    )
    frames_ = [frames.read_frame(p) for p in sorted(folder.glob("f*.dng"))]
    assert noise_warnings(1.3, [replace(f, sha256=str(i)) for i, f in enumerate(frames_)])[0].startswith(
        "the blend is noisier than one frame (noise ratio 1.30)"
    )
    assert noise_warnings(0.4, [replace(f, sha256=str(i)) for i, f in enumerate(frames_)]) == ()
