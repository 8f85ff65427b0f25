"""A negative shot in tiles: `<negative>/tiles.json`, the marker that a folder is one negative whose picture is
stitched from the tile stacks beneath it (issue 30's pipeline hook, written by the XY run of issue 31).

The file holds the plan (the layout: columns, rows, overlap; each tile's stack folder, column, row and its
planned place as a prior: the stage's in mm with, where the rig was calibrated, the picture's in photosites;
or photosites alone, as files before the rig's mm read) and the stitch's status: `pending` until every tile
is blended, `stitching`, `stitched` (with what it was stitched from) or `failed` (with the reason, one sentence).
The status lives here rather than in a `stack.json` of its own: a tiled negative is not a stack (no frames of
its own), and one file says both what the negative is and how far it got. The plan's writer (`write_tile_set`)
keeps the status; the service's `record_stitch` keeps the plan. Each tile folder is a stack like any other.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from medianscan.atomic import write_json
from medianscan.errors import MedianscanError
from medianscan.library.manifest import now
from medianscan.record_json import read_record_file

TILES_FILE = "tiles.json"
TILE_SET_VERSION = 1
STITCHED_METHOD = "median"  # the stitched negative is `<negative>_median.dng`, as issue 31 names it
Unit = Literal["photosites", "mm"]


class StitchState(enum.StrEnum):
    """How far the negative's stitch got: pending (tiles still to shoot or blend) -> stitching -> stitched |
    failed."""

    PENDING = "pending"
    STITCHING = "stitching"
    STITCHED = "stitched"
    FAILED = "failed"


@dataclass(frozen=True)
class TilePlace:
    """Where the plan put a tile (x to the right, y down), as a prior for the stitch: in `unit`, and when that is
    the stage's mm, the tile's top-left photosite in the stitched picture too (`photosites`, x then y: the move
    through the calibration's per-axis vectors), when the rig was calibrated. tiles.json: `"place": {"x", "y",
    "unit", "photosites": {"x", "y"}}`; a place without `photosites` reads as before."""

    x: float
    y: float
    unit: Unit = "photosites"
    photosites: tuple[float, float] | None = None  # (x, y), with a place in mm

    def in_photosites(self) -> tuple[float, float] | None:
        """The tile's top-left photosite (x, y) in the stitched picture, or None when only mm are known."""
        return (self.x, self.y) if self.unit == "photosites" else self.photosites


@dataclass(frozen=True)
class TileEntry:
    """One tile: its stack folder beneath the negative (a plain name), its column and row (from 0)."""

    folder: str
    column: int
    row: int
    place: TilePlace | None = None


@dataclass(frozen=True)
class TileLayout:
    columns: int
    rows: int
    overlap: float = 0.25  # the share of a tile each overlaps the next


@dataclass(frozen=True)
class StitchStatus:
    """The stitch's last word: its state, when, why it failed, and what a stitched negative was made from
    (each tile folder with its blend's file, size and mtime: a changed or added tile makes it stale)."""

    state: StitchState
    updated: str = field(default_factory=now)
    error: str | None = None
    output: str | None = None  # the stitched DNG's name in the negative's folder
    inputs: tuple[tuple[str, str, int, int], ...] = ()  # (tile folder, blend name, size, mtime_ns)
    seconds: float | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class TileSet:
    """What `<negative>/tiles.json` says; `negative` is the folder it was read from (not stored)."""

    negative: Path
    layout: TileLayout
    tiles: tuple[TileEntry, ...]
    status: StitchStatus = field(default_factory=lambda: StitchStatus(StitchState.PENDING))
    version: int = TILE_SET_VERSION

    @property
    def name(self) -> str:
        return self.negative.name

    @property
    def output(self) -> Path:
        """The stitched negative: `<negative>/<negative-name>_median.dng` (its record `.json` beside it)."""
        return self.negative / f"{self.negative.name}_{STITCHED_METHOD}.dng"

    def ordered(self) -> list[TileEntry]:
        """The tiles row by row, left to right: the order a `COLSxROWS` prior grid takes them in."""
        return sorted(self.tiles, key=lambda t: (t.row, t.column))

    def folders(self) -> list[Path]:
        return [self.negative / t.folder for t in self.ordered()]

    @property
    def shown_state(self) -> StitchState:
        """The state as the operator is told it: `pending` again once the plan lists tiles a stitched negative was
        not made from (a second run's), until it is stitched from them too."""
        s = self.status
        made_from = {folder for folder, *_ in s.inputs}
        if s.state == StitchState.STITCHED and made_from != {t.folder for t in self.tiles}:
            return StitchState.PENDING
        return s.state

    def positions(self) -> tuple[tuple[float, float], ...] | None:
        """Each tile's planned (y, x) in photosites in grid order, as the stitch takes them; None unless every
        tile has one."""
        found = [t.place.in_photosites() if t.place is not None else None for t in self.ordered()]
        return tuple((at[1], at[0]) for at in found if at is not None) if all(found) else None

    @property
    def full_grid(self) -> bool:
        """Every cell of the layout has its tile (only then is the grid a prior for the stitch)."""
        return len(self.tiles) == self.layout.columns * self.layout.rows

    def to_json(self) -> dict[str, Any]:
        s = self.status
        return {
            "version": self.version,
            "layout": {"columns": self.layout.columns, "rows": self.layout.rows, "overlap": self.layout.overlap},
            "tiles": [_tile_json(t) for t in self.tiles],
            "stitch": {
                "state": s.state.value,
                "updated": s.updated,
                "error": s.error,
                "output": s.output,
                "inputs": [list(i) for i in s.inputs],
                "seconds": s.seconds,
                "width": s.width,
                "height": s.height,
            },
        }


def _tile_json(t: TileEntry) -> dict[str, Any]:
    data: dict[str, Any] = {"folder": t.folder, "column": t.column, "row": t.row}
    if t.place is not None:
        data["place"] = {"x": t.place.x, "y": t.place.y, "unit": t.place.unit}
        if t.place.photosites is not None:
            data["place"]["photosites"] = {"x": t.place.photosites[0], "y": t.place.photosites[1]}
    return data


def is_tiled(folder: Path) -> bool:
    """A folder holding `tiles.json` is a tiled negative."""
    return (folder / TILES_FILE).is_file()


def read_tile_set(negative: Path) -> TileSet:
    """The tile set of `negative`; MedianscanError naming the file and what is wrong, in one sentence."""
    path = negative / TILES_FILE
    data = read_record_file(path, "the tile set", f"{negative}: no {TILES_FILE} here, so this is not a tiled negative")
    try:
        layout = TileLayout(int(data["layout"]["columns"]), int(data["layout"]["rows"]),
                            float(data["layout"].get("overlap", 0.25)))  # fmt: skip
        tiles = tuple(_tile(t) for t in data["tiles"])
        said = data.get("stitch") or {"state": "pending"}
        status = StitchStatus(
            StitchState(said["state"]),
            str(said.get("updated") or now()),
            said.get("error"),
            said.get("output"),
            tuple((str(a), str(b), int(c), int(d)) for a, b, c, d in said.get("inputs") or ()),
            said.get("seconds"),
            said.get("width"),
            said.get("height"),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MedianscanError(f"{path}: not a valid tile set ({type(exc).__name__}: {exc})") from exc
    problem = plan_problem(layout, tiles)
    if problem:
        raise MedianscanError(f"{path}: {problem}")
    return TileSet(negative, layout, tiles, status, int(data.get("version", TILE_SET_VERSION)))


def _tile(data: dict[str, Any]) -> TileEntry:
    place = data.get("place")
    return TileEntry(
        str(data["folder"]), int(data["column"]), int(data["row"]), None if place is None else _place(place)
    )


def _place(data: dict[str, Any]) -> TilePlace:
    """A tile's place; one without `photosites` (a file before the rig's mm, or a place given in photosites)."""
    seen = data.get("photosites")
    photosites = None if seen is None else (float(seen["x"]), float(seen["y"]))
    return TilePlace(float(data["x"]), float(data["y"]), data.get("unit", "photosites"), photosites)


def plan_problem(layout: TileLayout, tiles: tuple[TileEntry, ...]) -> str | None:
    """What is wrong with a plan, in one sentence, or None."""
    if layout.columns < 1 or layout.rows < 1:
        return f"a layout of {layout.columns}x{layout.rows} tiles has no tile"
    if not 0.0 < layout.overlap < 0.9:
        return f"overlap {layout.overlap:g}: give the share of a tile each overlaps the next, e.g. 0.25"
    if not tiles:
        return "it lists no tile"
    folders: set[str] = set()
    cells: dict[tuple[int, int], str] = {}
    for t in tiles:
        problem = _tile_problem(t, layout, folders, cells)
        if problem:
            return problem
        folders.add(t.folder)
        cells[(t.column, t.row)] = t.folder
    return None


def _tile_problem(t: TileEntry, layout: TileLayout, folders: set[str], cells: dict[tuple[int, int], str]) -> str | None:
    problem = None
    if not t.folder or Path(t.folder).name != t.folder or t.folder.startswith("."):
        problem = f"tile folder {t.folder!r} is not a plain folder name beneath the negative"
    elif t.folder in folders:
        problem = f"tile folder {t.folder} is listed twice"
    elif not (0 <= t.column < layout.columns and 0 <= t.row < layout.rows):
        grid = f"{layout.columns}x{layout.rows}"
        problem = f"tile {t.folder} at column {t.column}, row {t.row} lies outside the {grid} layout"
    elif (t.column, t.row) in cells:
        problem = f"tiles {cells[(t.column, t.row)]} and {t.folder} are both at column {t.column}, row {t.row}"
    elif t.place is not None and t.place.unit not in ("photosites", "mm"):
        problem = f"tile {t.folder}: its place is in {t.place.unit!r}; give photosites or mm"
    elif t.place is not None and not all(math.isfinite(v) for v in (t.place.x, t.place.y, *(t.place.photosites or ()))):
        problem = f"tile {t.folder}: its place is not finite numbers"
    return problem


def write_tile_set(negative: Path, layout: TileLayout, tiles: list[TileEntry] | tuple[TileEntry, ...]) -> TileSet:
    """Create `<negative>/tiles.json` (and the folder), or update its plan: a run that shot more tiles lists
    them all. The stitch's status is kept (the service sees the added tiles and stitches again). A bad plan
    is refused in one sentence, nothing written."""
    tiles = tuple(tiles)
    problem = plan_problem(layout, tiles)
    if problem:
        raise MedianscanError(f"{negative / TILES_FILE}: {problem}")
    negative.mkdir(parents=True, exist_ok=True)
    status = read_tile_set(negative).status if is_tiled(negative) else StitchStatus(StitchState.PENDING)
    tile_set = TileSet(negative, layout, tiles, status)
    write_json(negative / TILES_FILE, tile_set.to_json())
    return tile_set


def record_stitch(negative: Path, status: StitchStatus) -> TileSet:
    """The stitch's new status written into `tiles.json`, the plan as it is on disk now (atomically)."""
    tile_set = replace(read_tile_set(negative), status=status)
    write_json(negative / TILES_FILE, tile_set.to_json())
    return tile_set
