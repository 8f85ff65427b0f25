"""`medianscan scan-tiles` from the command line stitches the negative itself (cli.tiles_parts.stitch): the tiles no
overlap placed are named to the operator in one sentence on stderr, by the rule the daemon and `medianscan stitch`
use (StitchRecord.placed_alone). The tiles are tests/tiled_negatives' (cut from the CR2's picture), a stage far
off square whose tiles.json gives no places: the grid alone cannot find their overlaps."""

from __future__ import annotations

from pathlib import Path

import pytest

from medianscan.cli.tiles_parts import stitch
from medianscan.library.tile_set import TileEntry, read_tile_set, write_tile_set
from tests.daemon_thread import capture_config
from tests.tiled_negatives import make_tiled_negative
from tests.tiles import load_picture

SKEW = 80.0  # photosites down per column: beyond what the grid's search reaches (test_tiled_negative's)


@pytest.mark.slow  # blends and stitches four tiles
def test_the_tiles_no_overlap_placed_are_named_after_the_command_lines_stitch(
    sample_raw: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    negative = tmp_path / "roll" / "frame-001"
    make_tiled_negative(negative, load_picture(sample_raw), (2, 2), skew=SKEW)
    planned = read_tile_set(negative)
    write_tile_set(negative, planned.layout, [TileEntry(t.folder, t.column, t.row) for t in planned.tiles])
    stitch(negative, capture_config(tmp_path / "library"))
    said = capsys.readouterr()
    assert read_tile_set(negative).output.is_file(), said.out
    names = ", ".join(t.folder for t in read_tile_set(negative).ordered())
    assert said.err.splitlines() == [
        f"medianscan: warning: frame-001: no overlap registered for 4 tiles ({names}): placed by the grid alone, so "
        "look at their seams before trusting the stitch"
    ], said.err
