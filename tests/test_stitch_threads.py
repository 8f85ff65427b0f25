"""The stitch's passes on two threads: a tile that cannot be decoded, while the tile before it is being cut into
cells on the other thread, is still named in one sentence with nothing written, and the read-ahead's LibRaw
buffer is given back; the pairs registered two at a time come back in the same order as one at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medianscan.cli import main
from medianscan.stitch import threads
from medianscan.stitch.pipeline import StitchOptions, stitch
from medianscan.stitch.store import TEMP_PREFIX
from tests.tiles import TileSpec, load_picture, write_tile

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
    """The same placements, gains and output bytes with the passes on two threads as on one."""
    if threads.WORKERS < 2:
        pytest.skip("one core: nothing runs on a second thread")
    two = stitch(tiles, tmp_path / "two.dng", StitchOptions())
    monkeypatch.setattr(threads, "WORKERS", 1)
    one = stitch(tiles, tmp_path / "one.dng", StitchOptions())
    assert [(t.x, t.y, t.gain, t.rotation_degrees) for t in two.tiles] == [
        (t.x, t.y, t.gain, t.rotation_degrees) for t in one.tiles
    ]
    assert two.seams == one.seams
    assert (tmp_path / "two.dng").read_bytes() == (tmp_path / "one.dng").read_bytes()
