"""Tiled negatives for the pipeline's tests: a picture we know (tests/tiles.py) cut into overlapping CFA tiles on a
grid, each tile a stack folder of a few noisy frames beneath the negative's folder, with the negative's tiles.json
(`medianscan.library.tile_set.write_tile_set`, as the XY run will write it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from medianscan.library.manifest import Manifest, State, write_manifest
from medianscan.library.tile_set import TileEntry, TileLayout, TilePlace, TileSet, write_tile_set
from tests.tiles import Picture, TileSpec, write_tile

SHAPE: tuple[int, int] = (400, 600)  # a tile, photosites: big enough to register its overlaps
OVERLAP = 0.3
ORIGIN = (600.0, 900.0)  # the first tile's top-left photosite in the picture
FRAMES = 3


def spec(column: int, row: int, skew: float = 0.0) -> TileSpec:
    """Where the rig put tile (column, row): the grid's place plus a stage's few photosites of slip (odd ones:
    those tiles are resampled), and its own exposure. `skew`: photosites the picture moves down for each column
    (and left for each row), a stage far off square, so the tiles lie off the grid."""
    y, x = planned(column, row, skew)
    return TileSpec(ORIGIN[0] + y + (1 if row % 2 else 0), ORIGIN[1] + x + (3 if column % 2 else 0),
                    1.0 + 0.015 * (row - column))  # fmt: skip


def planned(column: int, row: int, skew: float = 0.0) -> tuple[float, float]:
    """Where the rig's plan puts tile (column, row), (y, x) in photosites from the first tile (without the slip)."""
    h, w = SHAPE
    return row * h * (1 - OVERLAP) + column * skew, column * w * (1 - OVERLAP) - row * skew


def folder_name(column: int, row: int) -> str:
    return f"tile-c{column}-r{row}"


def write_tile_stack(folder: Path, picture: Picture, where: TileSpec, seed: int, *, manifest: bool) -> Path:
    """A tile's stack: FRAMES frames of the same place, each with its own noise; with a `captured` stack.json
    when `manifest` (as the daemon's stacks have)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for k in range(FRAMES):
        write_tile(folder / f"IMG_{k:04d}.dng", picture, where, SHAPE, rng)
    if manifest:
        write_manifest(folder, Manifest(State.CAPTURED, folder.parent.parent.name, folder.name, FRAMES))
    return folder


def make_tiled_negative(
    negative: Path,
    picture: Picture,
    layout: tuple[int, int],
    shot: list[tuple[int, int]] | None = None,
    *,
    listed: list[tuple[int, int]] | None = None,
    manifest: bool = False,
    stage: Path | None = None,
    skew: float = 0.0,
) -> TileSet:
    """The negative's tiles.json listing `listed` (default: every cell of `layout`, columns x rows), written first
    as the XY run plans before it shoots, then the tile stacks of `shot` (default: the listed ones). With `stage`,
    each stack is written there and moved in whole (as a copy from another disk arrives). Each tile's place is
    the plan's (`planned`, a stage `skew` off square) in photosites."""
    columns, rows = layout
    cells = listed if listed is not None else [(c, r) for r in range(rows) for c in range(columns)]
    places = {(c, r): planned(c, r, skew) for c, r in cells}
    entries = [TileEntry(folder_name(c, r), c, r, TilePlace(places[c, r][1], places[c, r][0])) for c, r in cells]
    tile_set = write_tile_set(negative, TileLayout(columns, rows, OVERLAP), entries)
    where = stage if stage is not None else negative
    for c, r in shot if shot is not None else cells:
        tile = write_tile_stack(
            where / folder_name(c, r), picture, spec(c, r, skew), seed=10 * r + c, manifest=manifest
        )
        if stage is not None:
            negative.mkdir(parents=True, exist_ok=True)
            tile.rename(negative / tile.name)
    return tile_set


def placed_within(record_json: Path, tolerance: float = 0.5, skew: float = 0.0) -> list[str]:
    """The tiles of a stitched negative's record that are not where the picture says (empty when all are)."""
    record = json.loads(record_json.read_text())
    tiles = record["tiles"]
    first = tiles[0]
    c0, r0 = _cell(first["source"])
    base = spec(c0, r0, skew)
    wrong = []
    for tile in tiles:
        c, r = _cell(tile["source"])
        s = spec(c, r, skew)
        dy, dx = first["y"] + s.y - base.y, first["x"] + s.x - base.x
        if abs(tile["y"] - dy) > tolerance or abs(tile["x"] - dx) > tolerance:
            wrong.append(f"{tile['source']}: at {tile['x']:.2f}, {tile['y']:.2f}, expected {dx:.2f}, {dy:.2f}")
    return wrong


def _cell(source: str) -> tuple[int, int]:
    """(column, row) of a tile from its blend's path: .../tile-cC-rR/tile-cC-rR_median.dng."""
    name = Path(source).parent.name
    c, r = name.removeprefix("tile-c").split("-r")
    return int(c), int(r)
