"""The other-picture check's coarse picture: binned fast, and the same picture as its plain definition."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from scipy import ndimage

from medianscan.blend.measuring import binning, consistency
from medianscan.blend.pipeline import blend_stack
from medianscan.blend.reading.frames import read_frame
from medianscan.errors import StackError
from medianscan.outputs.preview import bin_cells
from tests.stacks import BAYER_RGGB, X_TRANS, cfa_burst


def reference(region: np.ndarray, cell: tuple[int, int], weights: np.ndarray) -> np.ndarray:
    """The weighted block sums the slow, obvious way, in float64."""
    cy, cx = cell
    ny, nx = region.shape[0] // cy, region.shape[1] // cx
    tiled = np.tile(weights, (ny * cy // weights.shape[0], nx * cx // weights.shape[1]))
    values = region[: ny * cy, : nx * cx].astype(np.float64) * tiled
    sums: np.ndarray = values.reshape(ny, cy, nx, cx).sum(axis=(1, 3))
    return sums


def test_block_sums_of_integers_are_exact_and_drop_the_edges() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 65536, (203, 3 * 301), dtype=np.uint16)  # an RGB image seen as rows of samples
    sums = binning.block_sums(image, (16, 48))
    assert sums.shape == (12, 18) and sums.dtype == np.float32
    exact = reference(image, (16, 48), np.ones((1, 1)))
    assert np.array_equal(sums, exact.astype(np.float32))  # at most 768 x 65535: exact before the last cast


@pytest.mark.parametrize(("repeat", "k"), [((2, 2), 5), ((6, 6), 3), ((2, 2), 1)], ids=["bayer", "xtrans", "k1"])
def test_block_sums_weigh_each_position_of_the_repeat(repeat: tuple[int, int], k: int) -> None:
    rng = np.random.default_rng(2)
    ph, pw = repeat
    mosaic = rng.integers(0, 16384, (ph * k * 23 + ph - 1, pw * k * 31 + 1), dtype=np.uint16)
    weights = rng.uniform(0.01, 1.0, repeat)
    sums = binning.block_sums(mosaic, (ph * k, pw * k), weights)
    assert sums.shape == (23, 31)
    np.testing.assert_allclose(sums, reference(mosaic, (ph * k, pw * k), weights), rtol=2e-6)


@pytest.mark.parametrize("weighted", [False, True], ids=["image", "mosaic"])
def test_block_sums_from_every_nth_row_of_repeats_scale_to_the_whole_block(weighted: bool) -> None:
    rng = np.random.default_rng(3)
    mosaic = rng.integers(0, 65536, (16 * 7 + 5, 48 * 9), dtype=np.uint16)
    weights = rng.uniform(0.1, 1.0, (2, 3)) if weighted else np.ones((1, 1))
    ph = weights.shape[0]
    sums = binning.block_sums(mosaic, (16, 48), weights if weighted else None, every=3)
    kept = np.arange(16 * 7).reshape(7, 16 // ph, ph)[:, ::3].ravel()  # repeat rows 0, 3, 6, ... of each block
    rows = mosaic[kept].astype(np.float64) * np.tile(weights, (len(kept) // ph, 9 * 48 // weights.shape[1]))
    expected = rows.reshape(7, -1, 9, 48).sum(axis=(1, 3)) * (8 / 3)
    np.testing.assert_allclose(sums, expected, rtol=2e-6)


def test_a_repeat_that_does_not_tile_the_block_is_refused() -> None:
    with pytest.raises(ValueError, match="does not tile"):
        binning.block_sums(np.zeros((12, 12), np.uint16), (4, 4), np.ones((3, 3)))


@pytest.mark.slow
@pytest.mark.parametrize("letters", [X_TRANS, BAYER_RGGB], ids=["xtrans", "bayer"])
def test_a_raw_picture_is_the_sum_of_its_colours_black_subtracted_means(
    tmp_path: Path, letters: tuple[str, ...]
) -> None:
    """What the check compares is unchanged by the fast binning: per cell, the red, green and blue means above
    black, summed (as the preview's binning gives them)."""
    path = cfa_burst(tmp_path / "neg", letters, 1, texture=15.0)[0]
    frame = read_frame(path)
    assert frame.layout is not None
    picture, scale = consistency.picture_plane(frame)
    means = bin_cells(frame.pixels, frame.layout, consistency.PICTURE_SIDE).means().sum(axis=2)  # type: ignore[arg-type]
    assert picture.shape == means.shape and max(picture.shape) <= consistency.PICTURE_SIDE
    np.testing.assert_allclose(picture, means, rtol=1e-5, atol=1e-3)
    _, _, width, height = frame.layout.default_crop
    assert scale == (height / picture.shape[0], width / picture.shape[1])


def test_the_sample_raws_picture_is_unchanged(sample_raw: Path) -> None:
    frame = read_frame(sample_raw)
    assert frame.layout is not None
    picture, _ = consistency.picture_plane(frame)
    means = bin_cells(frame.pixels, frame.layout, consistency.PICTURE_SIDE).means().sum(axis=2)  # type: ignore[arg-type]
    np.testing.assert_allclose(picture, means, rtol=1e-5, atol=1e-3)


def tiff_burst(folder: Path, n: int, another: int | None = None) -> list[Path]:
    """16-bit RGB TIFFs of a plain, low-texture negative (no shift measurable on it) plus fresh noise each;
    frame `another` is another negative at the same overall brightness."""
    folder.mkdir()
    h, w = 640, 960
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 20000 - 6000 * ((yy / h - 0.5) ** 2 + (xx / w - 0.5) ** 2)

    def texture(seed: int) -> np.ndarray:
        field = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal((h, w)), 6)
        return np.asarray(field / field.std() * 15.0, dtype=np.float32)

    rng = np.random.default_rng(3)
    paths = []
    for i in range(n):
        scene = light + texture(99 if i == another else 1)
        rgb = scene[..., None] * np.array([1.0, 0.8, 0.6], np.float32) + rng.normal(0, 25, (h, w, 3))
        paths.append(folder / f"neg_{i + 1:02d}.tif")
        tifffile.imwrite(paths[-1], np.clip(rgb, 0, 65535).astype(np.uint16), photometric="rgb")
    return paths


@pytest.mark.slow
def test_a_tiff_of_another_picture_is_named_and_a_plain_tiff_stack_blends(tmp_path: Path) -> None:
    """The images' fast path (integer sums over pixel blocks) still finds another negative among TIFFs."""
    tiff_burst(tmp_path / "odd", 5, another=3)
    with pytest.raises(
        StackError, match=r"neg_04\.tif: not the same picture as the others: \d+% of the area"
    ) as refused:
        blend_stack(tmp_path / "odd")
    assert str(refused.value).count(".tif:") == 1
    tiff_burst(tmp_path / "plain", 5)
    record = json.loads(blend_stack(tmp_path / "plain").sidecar.read_text())
    assert max(f["differs"] for f in record["frames"]) < 0.02
