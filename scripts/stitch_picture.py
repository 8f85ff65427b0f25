"""Makes docs/stitched-negative.jpg for the README: six overlapping tiles cut from the CR2's developed picture (the
test case of tests/test_stitch.py, at a size that reads: odd and half-photosite places, two tiles turned, each
with its own exposure, lens falloff and noise) above the negative `medianscan stitch --flat` makes of them, each
tile and the stitched DNG developed by darktable-cli with a new user's defaults. Prints where each tile went
against where it was cut, and the seams the stitch's own OUT.json reports.
Run: .venv/bin/python -m scripts.stitch_picture"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import numpy.typing as npt

from medianscan.cli import main as medianscan
from tests.conftest import find_sample_raw
from tests.readers import start_darktable
from tests.tiles import TileSpec, load_picture, write_flat, write_tile

SHAPE: tuple[int, int] = (800, 1200)  # a tile, photosites (rows, columns): a 3x2 grid overlapping by about a quarter
# Row by row, as a camera scanner shoots them: odd columns and half photosites (resampled), two tiles turned a
# little (a stage not quite square to the sensor), exposures 0.96-1.04.
SPECS = (
    TileSpec(150, 200, 1.00),
    TileSpec(151, 1101, 0.97),
    TileSpec(149.5, 2000.5, 1.03),
    TileSpec(750.5, 201.5, 0.96),
    TileSpec(751, 1100.5, 1.04, 0.3),
    TileSpec(749, 2001.5, 0.98, -0.2),
)
COLUMNS = 3
WIDTH = 1400  # the picture's width
GAP = 14  # white between the tiles, and between the tiles and the negative
SEED = 30


def main() -> int:
    raw = find_sample_raw()
    if raw is None:
        print("no sample raw (Debian's rawtran-doc or MEDIANSCAN_SAMPLE_RAW; make test installs it)", file=sys.stderr)
        return 1
    picture = load_picture(raw)
    cell = (WIDTH - (COLUMNS - 1) * GAP) // COLUMNS
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rng = np.random.default_rng(SEED)
        tiles = [write_tile(root / f"tile{k + 1}.dng", picture, spec, SHAPE, rng) for k, spec in enumerate(SPECS)]
        flat = write_flat(root / "flat.dng", picture, SHAPE, rng)
        out = root / "negative.dng"
        args = ["stitch", *map(str, tiles), "--flat", str(flat), "--output", str(out)]
        args += ["--layout", f"{COLUMNS}x{len(SPECS) // COLUMNS}", "--overlap", "0.25"]
        if medianscan(args) != 0:
            return 1
        record = json.loads(out.with_suffix(".json").read_text())
        report(record)
        small = start_darktable(tiles, root / "dt-tiles", size=cell)
        whole = start_darktable([out], root / "dt-negative", size=WIDTH)
        tile_renders, negative = small.wait(), whole.wait()[out]
    picture_out = compose([tile_renders[t] for t in tiles], negative, cell)
    target = Path(__file__).resolve().parent.parent / "docs" / "stitched-negative.jpg"
    target.write_bytes(bytes(imagecodecs.jpeg8_encode(picture_out, level=85)))
    print(f"{target}: {picture_out.shape[1]}x{picture_out.shape[0]}, {target.stat().st_size // 1024} KB")
    return 0


def report(record: dict[str, Any]) -> None:
    """Each tile's place against where it was cut (relative to the first tile), and the seams as OUT.json has them."""
    first, spec0 = record["tiles"][0], SPECS[0]
    worst = 0.0
    for k, (tile, spec) in enumerate(zip(record["tiles"], SPECS, strict=True)):
        dy = tile["y"] - first["y"] - (spec.y - spec0.y)
        dx = tile["x"] - first["x"] - (spec.x - spec0.x)
        worst = max(worst, math.hypot(dx, dy))
        turn = tile["rotation_degrees"] - spec.angle_degrees
        print(
            f"tile {k + 1}: x {tile['x']:.2f} y {tile['y']:.2f}, off by ({dx:+.3f}, {dy:+.3f}) px, "
            f"turn off by {turn:+.3f} deg, gain {tile['gain']:.4f} (x cut exposure {tile['gain'] * spec.gain:.4f}), "
            f"{'resampled' if tile['resampled'] else 'copied'}"
        )
    print(f"placement: worst {worst:.3f} px from where the tile was cut")
    for seam in record["seams"]:
        print(
            f"seam {seam['a'] + 1}-{seam['b'] + 1}: {seam['placed_by']}, residual {seam['residual_px']} px, "
            f"level median {seam['level_median']}, worst 1 % {seam['level_worst']}"
        )
    residuals = [s["residual_px"] for s in record["seams"] if s["residual_px"] is not None]
    medians = [s["level_median"] for s in record["seams"] if s["level_median"] is not None]
    worsts = [s["level_worst"] for s in record["seams"] if s["level_worst"] is not None]
    print(
        f"{len(record['seams'])} seams: residual at most {max(residuals):.3f} px; level median at most "
        f"{max(medians):.4f}, worst 1 % at most {max(worsts):.4f}; output {record['width']}x{record['height']}, "
        f"crop {record['default_crop']}, {record['seconds']:.1f} s"
    )


def compose(tiles: list[npt.NDArray[np.uint8]], negative: npt.NDArray[np.uint8], cell: int) -> npt.NDArray[np.uint8]:
    """The tiles in their grid as shot, white between them, above the stitched negative; on white, WIDTH wide."""
    rows = math.ceil(len(tiles) / COLUMNS)
    cell_h = max(t.shape[0] for t in tiles)
    neg_h = negative.shape[0]
    height = rows * cell_h + rows * GAP + neg_h
    canvas = np.full((height, WIDTH, 3), 255, dtype=np.uint8)
    for k, tile in enumerate(tiles):
        top, left = (k // COLUMNS) * (cell_h + GAP), (k % COLUMNS) * (cell + GAP)
        h, w = tile.shape[:2]
        canvas[top : top + h, left + (cell - w) // 2 : left + (cell - w) // 2 + w] = tile
    top, w = rows * (cell_h + GAP), negative.shape[1]
    canvas[top : top + neg_h, (WIDTH - w) // 2 : (WIDTH - w) // 2 + w] = negative
    return np.ascontiguousarray(canvas)


if __name__ == "__main__":
    raise SystemExit(main())
