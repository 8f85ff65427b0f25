"""`medianscan stitch` against a picture we know (tests/tiles.py): tiles of the CR2's developed picture, sampled
through its CFA at odd, half-pixel and turned places, each with its own gain, falloff and noise, stitched on
the mosaic and compared with the picture; bad sets refused in one sentence with nothing written; the output
opened by LibRaw, darktable and RawTherapee."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import rawpy
from scipy import ndimage

from medianscan.blend.corrections.flat import load_master
from medianscan.cli import main
from medianscan.stitch import cells, plan, register, sources
from medianscan.stitch.pipeline import StitchOptions, stitch
from medianscan.stitch.record import StitchRecord
from medianscan.stitch.sources import StitchError
from tests.readers import exiftool_validate, start_darktable, start_rawtherapee
from tests.tiles import XTRANS, Picture, TileSpec, load_picture, truth, write_flat, write_tile

pytestmark = pytest.mark.slow  # stitches real tiles and develops them in the editors: `make test-fast` leaves it out

SHAPE: tuple[int, int] = (700, 1000)  # a tile, photosites (rows, columns)
# Tile 0 is the reference; 1 lands at an odd column (resampled), 2 at half a photosite both ways, 3 at half a
# photosite and turned 0.3 degrees; the gains are the tiles' exposures.
SPECS = (
    TileSpec(200, 300, 1.00),
    TileSpec(200, 1051, 0.97),
    TileSpec(725.5, 301.5, 1.03),
    TileSpec(727, 1050.5, 0.98, 0.3),
)
BLOCK = 64


@pytest.fixture(scope="module")
def picture(sample_raw: Path) -> Picture:
    return load_picture(sample_raw)


@pytest.fixture(scope="module")
def tiles(picture: Picture, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path]:
    folder = tmp_path_factory.mktemp("tiles")
    rng = np.random.default_rng(7)
    paths = [write_tile(folder / f"tile{k}.dng", picture, spec, SHAPE, rng) for k, spec in enumerate(SPECS)]
    return paths, write_flat(folder / "flat.dng", picture, SHAPE, rng)


@pytest.fixture(scope="module")
def stitched(tiles: tuple[list[Path], Path], tmp_path_factory: pytest.TempPathFactory) -> StitchRecord:
    paths, flat = tiles
    return stitch(paths, tmp_path_factory.mktemp("out") / "negative.dng", StitchOptions(flat=flat))


def _expected(record: StitchRecord, k: int) -> tuple[float, float]:
    """Where tile k's top-left photosite should be in the output, from the picture's places."""
    first = record.tiles[0]
    return first.y + SPECS[k].y - SPECS[0].y, first.x + SPECS[k].x - SPECS[0].x


def test_each_tile_is_placed_within_half_a_photosite(stitched: StitchRecord) -> None:
    for k, tile in enumerate(stitched.tiles):
        y, x = _expected(stitched, k)
        assert abs(tile.y - y) < 0.5 and abs(tile.x - x) < 0.5, (k, tile, (y, x))
        assert abs(tile.rotation_degrees - SPECS[k].angle_degrees) < 0.02, (k, tile)


def test_whole_repeats_are_copied_and_the_rest_resampled(stitched: StitchRecord) -> None:
    assert [t.resampled for t in stitched.tiles] == [False, True, True, True]


def test_gains_undo_the_exposures(stitched: StitchRecord) -> None:
    for k, tile in enumerate(stitched.tiles):
        assert tile.gain == pytest.approx(SPECS[0].gain / SPECS[k].gain, rel=0.008), k
    assert all(seam.placed_by == "measured" for seam in stitched.seams)
    assert all(seam.residual_px is not None and seam.residual_px < 0.2 for seam in stitched.seams)


def _blocks(values: npt.NDArray[np.float32], channels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """Mean of each colour's photosites in each BLOCK x BLOCK block: (colour, rows, cols)."""
    h, w = (n // BLOCK * BLOCK for n in values.shape)
    ph, pw = channels.shape
    wanted = np.tile(channels, (h // ph, w // pw))
    out = []
    for colour in range(3):
        mask = (wanted == colour).astype(np.float64)
        total = (values[:h, :w] * mask).reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).sum(axis=(1, 3))
        out.append(total / mask.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).sum(axis=(1, 3)))
    return np.asarray(out)


def test_the_output_is_the_picture_without_seams(stitched: StitchRecord, picture: Picture) -> None:
    """After one global gain, 64x64 blocks per colour within 0.5 % of the picture (median), and the worst 1 % of
    the blocks on a seam within 2 %."""
    with rawpy.imread(str(stitched.output)) as raw:
        mosaic = raw.raw_image.astype(np.float32)
        black = np.asarray(raw.black_level_per_channel, np.float32)[raw.raw_pattern]
    ph, pw = black.shape
    mosaic -= np.tile(black, (mosaic.shape[0] // ph + 1, mosaic.shape[1] // pw + 1))[
        : mosaic.shape[0], : mosaic.shape[1]
    ]
    cx, cy, cw, ch = stitched.default_crop
    cx, cy = cx // 2 * 2, cy // 2 * 2  # keep the CFA's phase
    inside = mosaic[cy : cy + ch, cx : cx + cw]
    first = stitched.tiles[0]
    origin = (SPECS[0].y - first.y + cy, SPECS[0].x - first.x + cx)
    want = truth(picture, origin, inside.shape, picture.channels)
    got_blocks, want_blocks = _blocks(inside, picture.channels), _blocks(want, picture.channels)
    bright = want_blocks > 0.02 * (picture.scene.layout.white_level - 128)
    gain = float(np.median(got_blocks[bright] / want_blocks[bright]))
    error = np.abs(got_blocks / (want_blocks * gain) - 1)
    assert float(np.median(error[bright])) < 0.005
    # blocks on a seam: those a tile's edge crosses
    seam = np.zeros((bright.shape[1], bright.shape[2]), dtype=bool)
    for tile in stitched.tiles[1:]:
        for edge_y in (tile.y - cy, tile.y + SHAPE[0] - cy):
            row = int(edge_y // BLOCK)
            if 0 <= row < seam.shape[0]:
                seam[row, :] = True
        for edge_x in (tile.x - cx, tile.x + SHAPE[1] - cx):
            col = int(edge_x // BLOCK)
            if 0 <= col < seam.shape[1]:
                seam[:, col] = True
    on_seam = error[:, seam][bright[:, seam]]
    assert on_seam.size > 50
    assert float(np.percentile(on_seam, 99)) < 0.02


def test_the_flat_is_held_as_16_bit_steps_of_its_gains(tiles: tuple[list[Path], Path]) -> None:
    """The stitch holds the flat's gains over the active area as 16-bit steps (half the memory of float32), a step
    for each CFA position, each band turned back within half its position's step of the flat's own gains, and
    keeps no float32 copy of them."""
    _, flat = tiles
    held = sources.load_flat(flat)
    assert held is not None
    gains = load_master(flat).gain
    layout = held.master.frame.layout
    assert layout is not None
    top, left, bottom, right = layout.active_area
    assert held.steps.dtype == np.uint16 and held.steps.shape == (bottom - top, right - left)
    assert held.master.gain.size == 0
    assert held.top == pytest.approx(float(gains.max()))
    ph, pw = held.step.shape
    rows, cols = slice(top + 101, top + 101 + 256), slice(left + 3, right)  # odd corners: each position's step
    band = held.gain(rows, cols)
    steps = np.tile(np.roll(held.step, (-101, -3), axis=(0, 1)), (256 // ph + 1, band.shape[1] // pw + 1))
    assert np.all(np.abs(band - gains[rows, cols]) <= 0.51 * steps[: band.shape[0], : band.shape[1]])
    assert float(held.step.max()) < 1e-4 * float(gains.min())  # a gain of 1 to better than 1e-4
    assert len(set(held.step.ravel().tolist())) > 1  # each position its own step


def test_record_says_where_each_tile_went(stitched: StitchRecord) -> None:
    data = json.loads(stitched.output.with_suffix(".json").read_text())
    assert [Path(t["source"]).name for t in data["tiles"]] == [f"tile{k}.dng" for k in range(4)]
    assert {"source", "x", "y", "gain"} <= set(data["tiles"][0])
    assert len(data["seams"]) == len(stitched.seams) >= 4


def test_the_output_carries_the_first_tiles_metadata_and_validates(stitched: StitchRecord) -> None:
    assert exiftool_validate(stitched.output) == []
    with rawpy.imread(str(stitched.output)) as raw:
        assert (raw.sizes.raw_width, raw.sizes.raw_height) == (stitched.width, stitched.height)
        assert raw.postprocess(half_size=True).shape[2] == 3


def test_darktable_and_rawtherapee_develop_it(stitched: StitchRecord, tmp_path: Path) -> None:
    darktable = start_darktable([stitched.output], tmp_path / "dt", size=300)
    rawtherapee = start_rawtherapee([stitched.output], tmp_path / "rt", size=300)
    for renders in (darktable.wait(), rawtherapee.wait()):
        image = renders[stitched.output]
        assert image.shape[2] == 3 and 20 < float(image.mean()) < 235  # a picture, neither black nor white


def test_a_prior_grid_and_lossless_jpeg(tiles: tuple[list[Path], Path], tmp_path: Path) -> None:
    paths, flat = tiles
    out = tmp_path / "grid.dng"
    code = main(["stitch", *map(str, paths), "--output", str(out), "--flat", str(flat), "--layout", "2x2",
                 "--overlap", "0.25", "--compress"])  # fmt: skip
    assert code == 0
    record = json.loads(out.with_suffix(".json").read_text())
    first = record["tiles"][0]
    for k, tile in enumerate(record["tiles"]):
        assert abs(tile["x"] - first["x"] - (SPECS[k].x - SPECS[0].x)) < 0.5
        assert abs(tile["y"] - first["y"] - (SPECS[k].y - SPECS[0].y)) < 0.5
    assert exiftool_validate(out) == []
    with rawpy.imread(str(out)) as raw:
        assert raw.raw_image.shape == (record["height"], record["width"])


def _refused(args: list[str], output: Path, capsys: pytest.CaptureFixture[str]) -> str:
    before = output.read_bytes() if output.exists() else None
    assert main(["stitch", *args, "--output", str(output)]) == 2
    assert (output.read_bytes() if output.exists() else None) == before  # untouched, or still absent
    assert not output.with_suffix(".json").exists()
    err = capsys.readouterr().err.strip()
    assert err.startswith("medianscan: ") and "Traceback" not in err
    return err


def test_tiles_alike_at_both_ends_are_compared_whole_before_one_is_called_a_duplicate(
    tiles: tuple[list[Path], Path], tmp_path: Path
) -> None:
    """The duplicate check reads a tile whole only where its size and both ends agree with another's: a tile that
    differs from tile1 in one bit in its middle is not a duplicate, its byte-for-byte copy is."""
    paths, _ = tiles
    twin = tmp_path / "twin.dng"
    shutil.copy(paths[1], twin)
    data = bytearray(paths[1].read_bytes())
    data[len(data) // 2] ^= 1
    (tmp_path / "middle.dng").write_bytes(data)
    named = [sources.Tile(p, p) for p in (paths[1], tmp_path / "middle.dng", twin)]
    facts = [sources.read_facts(t) for t in named]
    assert facts[0].sample == facts[1].sample == facts[2].sample
    assert plan.set_problems(named, facts) == ["tile twin.dng is the same picture as tile tile1.dng (a duplicate)"]


def test_bad_sets_are_named_and_nothing_is_written(
    tiles: tuple[list[Path], Path], picture: Picture, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths, _ = tiles
    out = tmp_path / "out.dng"
    copy = tmp_path / "again.dng"
    shutil.copy(paths[1], copy)
    assert "again.dng is the same picture as tile tile1.dng" in _refused([*map(str, paths), str(copy)], out, capsys)

    rng = np.random.default_rng(3)
    scene = picture.scene
    iso = replace(picture, scene=replace(scene, exposure=replace(scene.exposure, iso=1600.0)))
    odd = write_tile(tmp_path / "iso.dng", iso, SPECS[1], SHAPE, rng)
    assert "iso.dng was shot at ISO 1600" in _refused([str(paths[0]), str(odd)], out, capsys)

    small = write_tile(tmp_path / "small.dng", picture, SPECS[1], (600, 1000), rng)
    assert "small.dng is 1000x600 photosites" in _refused([str(paths[0]), str(small)], out, capsys)

    far = write_tile(tmp_path / "far.dng", picture, TileSpec(1600, 2400, 1.0), SHAPE, rng)
    said = _refused([str(paths[0]), str(paths[1]), str(far)], out, capsys)
    assert "far.dng overlaps no other tile" in said

    assert "is one of the tiles" in _refused([str(paths[0]), str(paths[1])], paths[1], capsys)
    assert "does not exist" in _refused([str(paths[0]), str(paths[1])], tmp_path / "nowhere" / "x.dng", capsys)
    assert "holds 4 tiles, but 2" in _refused([str(paths[0]), str(paths[1]), "--layout", "2x2"], out, capsys)


def test_a_plan_beyond_the_readers_limits_is_refused_before_any_work(
    tiles: tuple[list[Path], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths, _ = tiles
    many = [tmp_path / f"t{k}.dng" for k in range(100)]
    for k, path in enumerate(many):  # a hundred distinct tiles in a row: 75,000 photosites wide
        path.write_bytes(paths[0].read_bytes())
        with path.open("r+b") as fh:  # a different picture, as far as the duplicate check can tell
            fh.seek(-1, 2)
            fh.write(bytes([k]))
    said = _refused([*map(str, many), "--layout", "100x1"], tmp_path / "wide.dng", capsys)
    assert "65,000" in said and "halves" in said


def _xtrans(picture: Picture) -> tuple[Picture, npt.NDArray[np.uint8]]:
    """The same picture seen through a 6x6 X-Trans pattern, and the pattern."""
    layout = replace(picture.scene.layout, pattern=XTRANS, colors="RGBG", active_area=(0, 0, 1, 1))
    return replace(picture, scene=replace(picture.scene, layout=layout)), XTRANS


def test_a_tile_of_another_cfa_is_refused_by_name_with_nothing_written(picture: Picture, tmp_path: Path) -> None:
    """The CFA is compared as each tile is decoded (LibRaw tells it only then): a Bayer tile and an X-Trans tile of
    the same camera, size and exposure are refused in one sentence naming both, and no output appears."""
    x_picture, _ = _xtrans(picture)
    rng = np.random.default_rng(6)
    bayer = write_tile(tmp_path / "bayer.dng", picture, TileSpec(300, 400, 1.0), SHAPE, rng)
    xtrans = write_tile(tmp_path / "xtrans.dng", x_picture, TileSpec(303, 1152, 1.0), SHAPE, rng)
    out = tmp_path / "mixed.dng"
    said = r"^cannot stitch: tile xtrans\.dng has CFA 6x6 [RGB]{36}, tile bayer\.dng [RGB]{4}$"
    with pytest.raises(StitchError, match=said):
        stitch([bayer, xtrans], out, StitchOptions())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bayer.dng", "xtrans.dng"]


def test_xtrans_tiles_are_resampled_onto_the_xtrans_mosaic(picture: Picture, tmp_path: Path) -> None:
    """Any CFA: the same picture through a 6x6 X-Trans pattern, a tile at an offset of half a repeat."""
    x_picture, xtrans = _xtrans(picture)
    assert np.array_equal(x_picture.channels, xtrans)
    rng = np.random.default_rng(5)
    specs = (TileSpec(300, 400, 1.0), TileSpec(303, 1152, 1.0))  # 3 rows, 752 columns on: colours differ
    paths = [write_tile(tmp_path / f"x{k}.dng", x_picture, s, SHAPE, rng) for k, s in enumerate(specs)]
    record = stitch(paths, tmp_path / "x.dng", StitchOptions())
    a, b = record.tiles
    assert abs(b.x - a.x - 752) < 0.5 and abs(b.y - a.y - 3) < 0.5
    assert [t.resampled for t in record.tiles] == [False, True]
    with rawpy.imread(str(record.output)) as raw:
        assert raw.raw_pattern is not None and raw.raw_pattern.shape == (6, 6)
        assert raw.postprocess(half_size=True).shape[2] == 3


def test_a_stack_folder_tile_is_blended_first_then_its_blend_reused(
    picture: Picture, tiles: tuple[list[Path], Path], tmp_path: Path
) -> None:
    """A TILE that is a stack folder of raw frames: its median blend is made first (none was there), stitched like
    any tile, and a second stitch takes the blend as it is."""
    paths, flat = tiles
    stack = tmp_path / "neg01_tile0"
    stack.mkdir()
    rng = np.random.default_rng(11)
    for k in range(3):  # three frames of tile 0's place, each with its own noise
        write_tile(stack / f"IMG_{k:04d}.dng", picture, SPECS[0], SHAPE, rng)
    given = [stack, *paths[1:]]
    record = stitch(given, tmp_path / "a.dng", StitchOptions(flat=flat))
    assert record.tiles[0].blended_now and record.tiles[0].source == stack.resolve()
    assert not any(t.blended_now for t in record.tiles[1:])
    blends = sorted(stack.glob("*_median.dng"))
    assert len(blends) == 1
    for k, tile in enumerate(record.tiles):
        y, x = _expected(record, k)
        assert abs(tile.y - y) < 0.5 and abs(tile.x - x) < 0.5, (k, tile, (y, x))
    made = blends[0].stat().st_mtime_ns
    again = stitch(given, tmp_path / "b.dng", StitchOptions(flat=flat))
    assert not again.tiles[0].blended_now
    assert blends[0].stat().st_mtime_ns == made


def test_a_stack_blended_with_its_flat_is_not_divided_again(
    picture: Picture, tiles: tuple[list[Path], Path], tmp_path: Path
) -> None:
    """A stack folder whose blend already carries the flat (`medianscan blend --flat`, as a roll's blends do): the
    stitch given --flat leaves that tile alone and divides only the others. Divided twice, its edges, where the
    overlaps lie, would stand 15-30 % above the others and the gains would show it."""
    paths, flat = tiles
    stack = tmp_path / "neg02_tile0"
    stack.mkdir()
    rng = np.random.default_rng(13)
    for k in range(3):
        write_tile(stack / f"IMG_{k:04d}.dng", picture, SPECS[0], SHAPE, rng)
    assert main(["blend", str(stack), "--flat", str(flat)]) == 0
    blend = next(stack.glob("*_median.dng"))
    assert json.loads(blend.with_suffix(".json").read_text())["flat"]
    record = stitch([stack, *paths[1:]], tmp_path / "c.dng", StitchOptions(flat=flat))
    assert not record.tiles[0].blended_now
    for k, tile in enumerate(record.tiles):
        assert tile.gain == pytest.approx(SPECS[0].gain / SPECS[k].gain, rel=0.01), k
    assert all(seam.level_median is not None and seam.level_median < 0.01 for seam in record.seams)


# --- Known positions (the rig's planned places) in place of the grid ----------------------------------------------


@pytest.mark.parametrize(
    ("positions", "said"),
    [
        (((0.0, 0.0), (0.0, 751.0)), "2 tile positions were given for 4 tiles: give one per tile"),
        (((0.0, 0.0), (0.0, 751.0), (525.5, 1.5), (float("nan"), 750.5)), r"tile tile3.dng: its position .* finite"),
    ],
    ids=["one per tile", "finite"],
)
def test_known_positions_are_one_finite_pair_per_tile_or_the_stitch_is_refused(
    tiles: tuple[list[Path], Path], tmp_path: Path, positions: tuple[tuple[float, float], ...], said: str
) -> None:
    paths, _ = tiles
    out = tmp_path / "known.dng"
    with pytest.raises(StitchError, match=said):
        stitch(paths, out, StitchOptions(positions=positions))
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_the_shift_check_on_a_window_of_a_large_overlap_keeps_its_verdicts(picture: Picture) -> None:
    """A 24 MP tile's overlap (over a million plane points) is checked on a window about its centre: a textured
    overlap aligned to a fraction of a point is still measurable, and a plain one (noise alone) still refused."""
    rng = np.random.default_rng(11)
    luminance = picture.rgb[:1200, :1200].sum(axis=2).astype(np.float32)
    shift = (0.37, -0.62)  # j's origin in i, plane points
    moved = ndimage.shift(luminance, (-shift[0], -shift[1]), order=3, mode="nearest")
    box = (20, 20, 1180, 1180)  # 1.35 M points: beyond the window
    assert register.check_window(box) != box
    fit = register.PairFit(shift, 0.0, (599.5, 599.5), box, 0.01)

    def noisy(plane: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        level = float(plane.mean())
        return cells.flattened((plane + rng.normal(0, 0.002 * level, plane.shape)).astype(np.float32))

    assert register.measurable(noisy(luminance), noisy(moved), fit, register.TOLERANCE / 2)
    plain = np.full_like(luminance, float(luminance.mean()))
    assert not register.measurable(noisy(plain), noisy(plain), fit, register.TOLERANCE / 2)
    # the window is the overlap's centre, of its proportions
    top, left, bottom, right = register.check_window((20, 20, 480, 2980))
    assert (bottom - top) * (right - left) <= 512 * 512 and 240 < (top + bottom) / 2 < 260 and right - left > 1000


def test_the_template_smoothed_at_its_points_is_the_whole_smoothing_there() -> None:
    """register filters only about the template's rows: the same float32 values, to the bit, as smoothing the
    whole crop and taking its points, at strides and offsets up to the crop's edges (reflected there)."""
    rng = np.random.default_rng(12)
    for _ in range(60):
        h, w = (int(n) for n in rng.integers(12, 260, 2))
        image = (rng.normal(0, 1, (h, w)) * rng.uniform(0.1, 1000)).astype(np.float32)
        stride, start = int(rng.integers(4, 20)), int(rng.integers(0, 4))  # from 10 on: rows filtered alone
        rows, cols = range(start, h - int(rng.integers(0, 4)), stride), range(start, w, stride)
        whole = ndimage.gaussian_filter(image, 1.0)[rows.start : rows.stop : stride, cols.start : cols.stop : stride]
        assert np.array_equal(register._smoothed_at(image, rows, cols), whole)
