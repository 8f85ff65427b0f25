"""The stitch's passes on two threads: a tile that cannot be decoded, while the tile before it is being cut into
cells on the other thread, is still named in one sentence with nothing written; the pairs registered two at a
time, each from windows of the store, come back the same as one at a time from whole planes; the output's bands
made in parts on two threads are the bands made whole on one, on Bayer and X-Trans."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from scipy import ndimage

from medianscan.cli import main
from medianscan.stitch import cells, compose, gains, register, solve, threads
from medianscan.stitch.pipeline import StitchOptions, stitch
from medianscan.stitch.place import Canvas, Placement
from medianscan.stitch.store import TEMP_PREFIX, Steps, TileStore
from tests.tiles import BAYER, XTRANS, TileSpec, load_picture, write_tile

pytestmark = pytest.mark.slow  # stitches real tiles

SHAPE = (500, 700)
SPECS = (TileSpec(200, 300, 1.0), TileSpec(200, 821, 0.98), TileSpec(573.5, 300.5, 1.02), TileSpec(574, 821, 1.0))


@pytest.fixture(scope="module")
def tiles(sample_raw: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    picture = load_picture(sample_raw)
    folder = tmp_path_factory.mktemp("tiles")
    rng = np.random.default_rng(11)
    return [write_tile(folder / f"t{k}.dng", picture, spec, SHAPE, rng) for k, spec in enumerate(SPECS)]


def test_a_tile_cut_short_is_named_and_nothing_is_written(
    tiles: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its header reads (the set's checks pass); its pixels do not, found by the thread decoding ahead."""
    short = tmp_path / "short.dng"
    data = tiles[3].read_bytes()
    short.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out" / "negative.dng"
    out.parent.mkdir()
    assert main(["stitch", *map(str, tiles[:3]), str(short), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("medianscan: tile short.dng: ") and "truncated" in err, err
    assert list(out.parent.iterdir()) == []  # no output, no sidecar, no store left behind (TEMP_PREFIX)
    assert not any(p.name.startswith(TEMP_PREFIX) for p in tmp_path.iterdir())


def test_two_threads_give_the_stitch_of_one(tiles: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same placements, gains and output bytes with the passes on two threads as on one (two asked for even
    on a one-core machine: the passes then go through the pool all the same)."""
    monkeypatch.setattr(threads, "WORKERS", 2)
    two = stitch(tiles, tmp_path / "two.dng", StitchOptions())
    monkeypatch.setattr(threads, "WORKERS", 1)
    one = stitch(tiles, tmp_path / "one.dng", StitchOptions())
    assert [(t.x, t.y, t.gain, t.rotation_degrees) for t in two.tiles] == [
        (t.x, t.y, t.gain, t.rotation_degrees) for t in one.tiles
    ]
    assert two.seams == one.seams
    assert (tmp_path / "two.dng").read_bytes() == (tmp_path / "one.dng").read_bytes()


def test_a_window_of_the_store_is_that_part_of_the_array(tmp_path: Path) -> None:
    """Float32 arrays and those held as 16-bit steps, windows inside and across the edges (clipped)."""
    rng = np.random.default_rng(2)
    plain = rng.normal(100, 30, (90, 70)).astype(np.float32)
    steps = Steps.spanning(-10, 400)
    with TileStore(tmp_path) as store:
        store.put("plain", plain)
        store.append_held("held", steps.encode(plain.copy()), steps)
        held = store.get("held")
        for top, bottom, left, right in ((0, 90, 0, 70), (5, 17, 3, 61), (-4, 30, 60, 99), (80, 200, -1, 5)):
            want = (slice(max(0, top), bottom), slice(max(0, left), right))
            assert np.array_equal(store.window("plain", top, bottom, left, right), plain[want])
            assert np.array_equal(store.window("held", top, bottom, left, right), held[want])


def test_a_pair_registered_from_stored_windows_is_the_pair_from_whole_planes(tmp_path: Path) -> None:
    """refine reads only windows about the overlap from the store: the same fit, to the bit, as from the arrays."""
    rng = np.random.default_rng(4)
    field = ndimage.gaussian_filter(rng.normal(0, 1, (400, 700)), 2.0) * 0.2 + 5
    seen = [field[:300, :420], field[37:337, 300:720]]  # j 37 down and 300 right of i, each with its own noise
    plane_i, plane_j = (cells.flattened((p + rng.normal(0, 0.002, p.shape)).astype(np.float32)) for p in seen)
    with TileStore(tmp_path) as store:
        store.put("i", plane_i)
        store.put("j", plane_j)
        stored = [cells.StoredPlane(store.shape(n), functools.partial(store.window, n)) for n in ("i", "j")]
        whole = register.refine(plane_i, plane_j, (36.0, 301.0), 2000, 2, coarse=4)
        windows = register.refine(stored[0], stored[1], (36.0, 301.0), 2000, 2, coarse=4)
    assert whole is not None and abs(whole.shift[0] - 37) < 0.01 and abs(whole.shift[1] - 300) < 0.01, whole
    assert windows == whole


def test_an_overlap_sampled_from_stored_windows_is_the_one_from_whole_planes(tmp_path: Path) -> None:
    """The gains' samples of an overlap (a turned, fractional place) read from windows of the store are those
    read from the whole planes, to the bit."""
    rng = np.random.default_rng(8)
    plane_i, plane_j = (rng.normal(500, 50, (300, 420)).astype(np.float32) for _ in range(2))
    poses = [solve.Pose(0.0, 0.0, 0.0), solve.Pose(74.3, 601.7, 0.004)]
    with TileStore(tmp_path) as store:
        store.put("i", plane_i)
        store.put("j", plane_j)
        stored = [cells.StoredPlane(store.shape(n), functools.partial(store.window, n)) for n in ("i", "j")]
        whole = gains.sample_overlap(0, 1, plane_i, plane_j, poses=poses, cell=(2, 2))
        windows = gains.sample_overlap(0, 1, stored[0], stored[1], poses=poses, cell=(2, 2))
    assert whole is not None and windows is not None
    assert np.array_equal(whole.a, windows.a, equal_nan=True) and np.array_equal(whole.b, windows.b, equal_nan=True)
    assert np.isfinite(whole.a).sum() > 1000


@pytest.mark.parametrize("pattern", [BAYER, XTRANS], ids=["bayer", "xtrans"])
def test_bands_made_in_parts_are_the_bands_made_whole(
    pattern: npt.NDArray[np.uint8], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One tile shifted by a fraction, its last row alone in the second part of a band (two threads, 96-row bands:
    parts of 48 rows and 1): every photosite its own colour's value, and the same as one thread's whole band."""
    h, w = 48, 60
    ph, pw = pattern.shape
    tile = np.tile(pattern, (h // ph, w // pw)).astype(np.float32) * 100 + 7  # each colour's photosites: its number
    canvas = Canvas(49, 61, pattern, (Placement(0.3, 0.6, 0.0, False),), (h, w))
    levels = compose.Levels(np.zeros(pattern.shape, np.float32), 1.0, 65535)
    made = {}
    with TileStore(tmp_path) as store:
        store.put("tile0", tile)
        for workers in (1, 2):
            monkeypatch.setattr(threads, "WORKERS", workers)
            bands = compose.bands(canvas, store, names=["tile0"], gains=[1.0], channels=pattern, levels=levels, rows=96)
            made[workers] = np.concatenate(list(bands))
    np.testing.assert_array_equal(made[2], made[1])
    expected = pattern[np.arange(49)[:, None] % ph, np.arange(61)[None, :] % pw] * 100 + 7
    np.testing.assert_array_equal(made[2][:, 1:], expected[:, 1:])  # column 0 lies before the tile (x 0.6)
