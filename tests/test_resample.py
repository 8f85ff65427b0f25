"""A shifted tile's stencils (`resample.sample_shifted`) read the same values as the general path (`sample`: each
colour's plane filled in, then read bilinearly at every point), on Bayer and X-Trans, inside the tile; at its
edges each photosite keeps its own colour."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from medianscan.stitch import resample
from tests.tiles import BAYER, XTRANS


def _tile(shape: tuple[int, int]) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(3)
    return (rng.random(shape) * 1000).astype(np.float32)


@pytest.mark.parametrize("pattern", [BAYER, XTRANS], ids=["bayer", "xtrans"])
@pytest.mark.parametrize("corner", [(10.5, 20.25), (33.0, 41.75), (17.9, 9.1), (40.0, 12.0)])
def test_the_stencils_read_what_the_planes_read(pattern: npt.NDArray[np.uint8], corner: tuple[float, float]) -> None:
    tile = _tile((120, 160))
    box = (30, 50)
    ph, pw = pattern.shape
    wanted = np.roll(pattern, (-int(np.floor(corner[0])) % ph, -int(np.floor(corner[1])) % pw), axis=(0, 1))
    wanted = np.roll(wanted, (1, 0), axis=(0, 1))  # the output's CFA need not fall on the tile's own
    shifted = resample.sample_shifted(
        lambda a, b: tile[max(0, a) : b].copy(), pattern, corner, wanted, box=box, tile_size=tile.shape
    )
    yy, xx = np.mgrid[0 : box[0], 0 : box[1]]
    colours = wanted[yy % ph, xx % pw]
    general = resample.sample(
        lambda a, b: tile[max(0, a) : b].copy(),
        pattern,
        (yy + corner[0]).astype(np.float64),
        (xx + corner[1]).astype(np.float64),
        colours,
        tile_height=tile.shape[0],
    )
    assert np.abs(shifted - general).max() < 1e-3  # float32's rounding of values up to 1000


@pytest.mark.parametrize("pattern", [BAYER, XTRANS], ids=["bayer", "xtrans"])
def test_beyond_the_edge_each_photosite_keeps_its_colour(pattern: npt.NDArray[np.uint8]) -> None:
    """A tile whose every photosite of a colour holds that colour's number: read past its edges (a box that
    starts 3.5 photosites before its corner and ends past its far side), every point gets its own colour's."""
    shape = (48, 60)
    ph, pw = pattern.shape
    tile = np.tile(pattern, (shape[0] // ph, shape[1] // pw)).astype(np.float32) * 100 + 7
    corner = (-3.5, -2.25)
    box = (shape[0] + 6, shape[1] + 6)
    wanted = np.roll(pattern, (2, 1), axis=(0, 1))
    shifted = resample.sample_shifted(
        lambda a, b: tile[max(0, a) : b].copy(), pattern, corner, wanted, box=box, tile_size=shape
    )
    yy, xx = np.mgrid[0 : box[0], 0 : box[1]]
    expected = wanted[yy % ph, xx % pw].astype(np.float32) * 100 + 7
    np.testing.assert_allclose(shifted, expected, rtol=1e-5)


def test_a_stencils_weights_sum_to_one_and_hold_only_its_colour() -> None:
    for pattern in (BAYER, XTRANS):
        ph, pw = pattern.shape
        for colour in (0, 1, 2):
            for phase in ((0, 0), (1, 0), (ph - 1, pw - 1)):
                stencil = resample.shift_stencil(pattern, colour, phase, (0.3, 0.8))
                assert abs(sum(t.weight for t in stencil) - 1) < 1e-9
                assert all(pattern[(phase[0] + t.dy) % ph, (phase[1] + t.dx) % pw] == colour for t in stencil)


@pytest.mark.parametrize("pattern", [BAYER, XTRANS], ids=["bayer", "xtrans"])
def test_a_few_rows_at_the_tiles_edge_keep_their_colours(pattern: npt.NDArray[np.uint8]) -> None:
    """A band or a part of one may hold only a tile's first or last row (the output's rows split where they fall):
    read past the tile's edge from so few rows, each point still gets its own colour's photosite, not the nearest
    row's (on X-Trans the nearest row holds other colours)."""
    shape = (48, 60)
    ph, pw = pattern.shape
    tile = np.tile(pattern, (shape[0] // ph, shape[1] // pw)).astype(np.float32) * 100 + 7
    for cy in (-1.5, -0.5, -0.25, 46.5, 47.5):
        for rows in (1, 2, 3):
            for cx, cols in ((-0.5, 40), (57.5, 3), (10.3, 1)):
                wanted = np.roll(pattern, (1, 1), axis=(0, 1))
                shifted = resample.sample_shifted(
                    lambda a, b: tile[max(0, a) : b].copy(),
                    pattern,
                    (cy, cx),
                    wanted,
                    box=(rows, cols),
                    tile_size=shape,
                )
                yy, xx = np.mgrid[0:rows, 0:cols]
                expected = wanted[yy % ph, xx % pw].astype(np.float32) * 100 + 7
                np.testing.assert_allclose(shifted, expected, rtol=1e-5, err_msg=f"corner {(cy, cx)}, {rows} rows")
