"""The plan of a negative shot in tiles on an XY stage (`medianscan scan-tiles`): how many tiles, where the stage
goes for each, in which order, and where each tile lies in the stitched picture (the stitch's prior). Pure: no
rig, no camera.

The film lies on the stage, so the tiles are laid out along the stage's axes, in mm from the negative's centre
(where the operator put it, under the lens). The calibration (capture.rig.calibrate_rig) says how the picture
moves on the sensor for a millimetre of each axis: a 2x2 matrix whose columns are the picture's shift in
photosites per mm of X and of Y. Its inverse scale gives the field of view in mm, and the matrix itself turns
each tile's stage position into its place in the stitched picture: a stage a fraction of a degree off square
lays its tiles out turned by that much, which the stitch is told.

Order: a serpentine along the axis with more tiles (fewest lines, so fewest reversals); every tile is one move
from the one before. Backlash: the slack of a lead screw or a belt is lost motion where an axis reverses, so the
plan takes it up there with an extra small move of the calibrated backlash in the new direction, before the move
to the tile; the stage then lands where asked. The first tile is approached from a known side (past it, then
back), since where the slack lies at the start is not known.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from medianscan.config.schema import TilesConfig
from medianscan.errors import MedianscanError

# The films' image areas in mm, (across the film, along it), as the roll-film table of Wikipedia's "120 film"
# article gives their nominal sizes (bodies differ by a millimetre or two: an RB67 frame is 56 x 69.5, a Pentax 67
# 55 x 70); 4x5 is the whole sheet, 4 x 5 in (101.6 x 127 mm): the holder masks a few mm of its edges, and the
# sheet is copied whole, notches and rebate included. The long side lies along the stage's X (the sensor's width).
FORMATS_MM: dict[str, tuple[float, float]] = {
    "645": (56.0, 41.5),
    "6x6": (56.0, 56.0),
    "6x7": (70.0, 56.0),
    "6x8": (77.0, 56.0),
    "6x9": (84.0, 56.0),
    "6x12": (118.0, 56.0),
    "4x5": (127.0, 101.6),
}
DEFAULT_OVERLAP = 0.25
MAX_TILES = 400  # a plan beyond this is a mistake in the calibration or the size (a 4x5 at 2:1 is ~30)
TAKE_UP_SHARE = 1.5  # the first tile is approached from this many backlashes past it (at least MIN_TAKE_UP_MM)
MIN_TAKE_UP_MM = 0.2

MoveKind = Literal["approach", "take-up", "tile", "home"]


class PlanError(MedianscanError):
    """A plan that cannot be made; the sentence says which setting to change."""


@dataclass(frozen=True)
class Wanted:
    """What is to be covered: a film format's image area, or a width and height in mm, or a grid of tiles; each
    tile `overlap` into the next. `margin_mm` beyond the image area on every side keeps its edges in the
    picture."""

    format: str | None = None
    width_mm: float | None = None
    height_mm: float | None = None
    columns: int | None = None
    rows: int | None = None
    overlap: float = DEFAULT_OVERLAP
    margin_mm: float = 1.0

    @classmethod
    def of(cls, tiles: TilesConfig) -> Wanted:
        """The config's `tiles` section."""
        return cls(tiles.format, tiles.width_mm, tiles.height_mm, tiles.columns, tiles.rows, tiles.overlap,
                   tiles.margin_mm)  # fmt: skip


@dataclass(frozen=True)
class StageScale:
    """How the picture moves on the sensor for a stage move, from the calibration: the picture's shift (dx, dy)
    in sensor photosites for +1 mm of X and of Y, the sensor's size, each axis's backlash in mm, and the live
    view's scale to the sensor."""

    x_axis: tuple[float, float]
    y_axis: tuple[float, float]
    sensor: tuple[int, int]  # width, height in photosites
    backlash_mm: tuple[float, float] = (0.0, 0.0)
    preview_px: tuple[float, float] | None = None  # photosites per live-view pixel, measured (None: by the sizes)

    def preview_ratio(self, view: tuple[int, ...]) -> tuple[float, float]:
        """Sensor photosites per pixel of a live view of `view` (height, width) pixels, along x and y."""
        if self.preview_px is not None:
            return self.preview_px
        return self.sensor[0] / view[1], self.sensor[1] / view[0]

    @property
    def matrix(self) -> np.ndarray:
        """[[dx/dX, dx/dY], [dy/dX, dy/dY]]: photosites (x, y) of the picture's shift per mm of (X, Y)."""
        return np.array([[self.x_axis[0], self.y_axis[0]], [self.x_axis[1], self.y_axis[1]]], dtype=np.float64)

    @property
    def photosites_per_mm(self) -> tuple[float, float]:
        return math.hypot(*self.x_axis), math.hypot(*self.y_axis)

    @property
    def view_mm(self) -> tuple[float, float]:
        """The field of view along X and Y, in mm of stage travel."""
        px, py = self.photosites_per_mm
        return self.sensor[0] / px, self.sensor[1] / py

    def shift(self, dx_mm: float, dy_mm: float) -> tuple[float, float]:
        """The picture's shift (x, y) in photosites for a stage move."""
        moved = self.matrix @ np.array([dx_mm, dy_mm])
        return float(moved[0]), float(moved[1])


@dataclass(frozen=True)
class Tile:
    """One tile: its place in the grid, the stage's position for it (mm from the negative's centre) and where its
    top-left photosite lies in the stitched picture, the first tile of the grid (column 0, row 0) at (0, 0)."""

    column: int
    row: int
    stage_mm: tuple[float, float]  # (x, y)
    prior: tuple[float, float]  # (y, x) photosites, as the stitch takes positions

    @property
    def name(self) -> str:
        """The tile's stack folder beneath the negative's: tile-r1c2 (1-based, row first, as one reads)."""
        return f"tile-r{self.row + 1}c{self.column + 1}"


@dataclass(frozen=True)
class Move:
    """One relative stage move; `tile` is the index (in the plan's order) of the tile it arrives at, if any."""

    dx_mm: float
    dy_mm: float
    kind: MoveKind
    tile: int | None = None


@dataclass(frozen=True)
class TilePlan:
    """Tiles in shooting order (a serpentine), the grid, and the overlap each axis really gets."""

    columns: int
    rows: int
    tiles: tuple[Tile, ...]
    overlap: tuple[float, float]  # along X and Y, as planned (the view's share shared with the next tile)
    covered_mm: tuple[float, float]
    step_mm: tuple[float, float]
    backlash_mm: tuple[float, float]
    format: str | None = None  # the film format asked for, as the config spells it
    image_mm: tuple[float, float] | None = None  # its image area (or the width and height asked), margins apart
    margin_mm: float = 0.0  # beyond the image area on every side

    def said(self) -> str:
        """'6x7 (70 x 56 mm and 1 mm margins) in 2x2 tiles covering 87.1 x 58.0 mm, 25% overlap': what was asked
        and what the tiles cover, which is more (the views are whole and the overlap one for both axes)."""
        grid = f"{self.columns}x{self.rows} tiles covering {self.covered_mm[0]:.1f} x {self.covered_mm[1]:.1f} mm"
        overlap = f", {max(self.overlap):.0%} overlap"
        if self.image_mm is None:
            return grid + overlap
        area = f"{self.image_mm[0]:g} x {self.image_mm[1]:g} mm"
        area += f" and {self.margin_mm:g} mm margins" if self.margin_mm > 0 else ""
        return f"{f'{self.format} ({area})' if self.format else area} in {grid}{overlap}"


def area_mm(wanted: Wanted) -> tuple[float, float] | None:
    """The area to cover (width along X, height along Y), margins included; None for a grid of tiles."""
    if wanted.format is not None:
        key = wanted.format.lower().replace("\N{MULTIPLICATION SIGN}", "x").replace(" ", "")
        if key not in FORMATS_MM:
            raise PlanError(f"tiles.format {wanted.format!r}: use one of {', '.join(FORMATS_MM)}, or give "
                            "tiles.width_mm and tiles.height_mm")  # fmt: skip
        width, height = FORMATS_MM[key]
    elif wanted.width_mm is not None and wanted.height_mm is not None:
        width, height = wanted.width_mm, wanted.height_mm
        if width <= 0 or height <= 0:
            raise PlanError(f"tiles.width_mm and height_mm must be above 0 (got {width:g} x {height:g})")
    elif wanted.columns is not None and wanted.rows is not None:
        return None
    else:
        raise PlanError("tiles: give a format (645, 6x6, 6x7, 6x8, 6x9, 6x12, 4x5), or width_mm and height_mm, "
                        "or columns and rows")  # fmt: skip
    return width + 2 * wanted.margin_mm, height + 2 * wanted.margin_mm


def _axis(length: float | None, view: float, overlap: float, count: int | None) -> tuple[int, float]:
    """Tiles along one axis and the step between them (mm): the fewest that cover `length` with at least
    `overlap` of the view shared, spread evenly; or `count` tiles at the overlap. (make_plan then gives both axes
    the smaller of their two overlaps.)"""
    if length is None:
        assert count is not None
        return count, view * (1 - overlap)
    if length <= view:
        return 1, 0.0
    n = math.ceil((length - view) / (view * (1 - overlap)) - 1e-9) + 1
    return n, (length - view) / (n - 1)


def make_plan(wanted: Wanted, scale: StageScale) -> TilePlan:
    """The tiles for `wanted` under the calibrated `scale` (see the module)."""
    if not 0.0 <= wanted.overlap < 0.9:
        raise PlanError(f"tiles.overlap {wanted.overlap:g}: give the share of a tile each overlaps the next, "
                        "e.g. 0.25")  # fmt: skip
    if min(wanted.columns or 1, wanted.rows or 1) < 1:
        raise PlanError("tiles.columns and tiles.rows must be at least 1")
    if abs(float(np.linalg.det(scale.matrix))) < 1e-9:
        raise PlanError("the rig's calibration says its axes do not move the picture apart: run "
                        "`medianscan calibrate rig` again")  # fmt: skip
    area = area_mm(wanted)
    view_x, view_y = scale.view_mm
    columns, step_x = _axis(None if area is None else area[0], view_x, wanted.overlap, wanted.columns)
    rows, step_y = _axis(None if area is None else area[1], view_y, wanted.overlap, wanted.rows)
    # one overlap for both axes, the smaller of what each needs (so each still covers its side, centred): the
    # stitch's prior grid (COLSxROWS at one overlap) is then where the tiles are
    shared = [1 - step / view for n, step, view in ((columns, step_x, view_x), (rows, step_y, view_y)) if n > 1]
    if shared:
        step_x, step_y = view_x * (1 - min(shared)), view_y * (1 - min(shared))
    if columns * rows > MAX_TILES:
        raise PlanError(f"the plan would take {columns}x{rows} tiles (the view is {view_x:.1f} x {view_y:.1f} mm): "
                        "is the rig's calibration right?")  # fmt: skip
    grid = [(c, r) for r in range(rows) for c in range(columns)]
    stage = {(c, r): ((c - (columns - 1) / 2) * step_x, (r - (rows - 1) / 2) * step_y) for c, r in grid}
    origin = stage[(0, 0)]
    tiles = []
    for c, r in serpentine(columns, rows):
        x, y = stage[(c, r)]
        # the film seen at the sensor's top-left after a stage move d was, before it, at -(picture shift of d)
        sx, sy = scale.shift(x - origin[0], y - origin[1])
        tiles.append(Tile(c, r, (x, y), (-sy, -sx)))
    return TilePlan(
        columns=columns,
        rows=rows,
        tiles=tuple(tiles),
        overlap=(1 - step_x / view_x if columns > 1 else 0.0, 1 - step_y / view_y if rows > 1 else 0.0),  # equal
        covered_mm=(view_x + (columns - 1) * step_x, view_y + (rows - 1) * step_y),
        step_mm=(step_x, step_y),
        backlash_mm=scale.backlash_mm,
        format=wanted.format,
        image_mm=None if area is None else (area[0] - 2 * wanted.margin_mm, area[1] - 2 * wanted.margin_mm),
        margin_mm=0.0 if area is None else wanted.margin_mm,
    )


def serpentine(columns: int, rows: int) -> list[tuple[int, int]]:
    """(column, row) in shooting order: lines along the axis with more tiles (X on a tie), every other line
    reversed, so each tile is the nearest to the one before and the axes reverse as seldom as they can."""
    if columns >= rows:
        return [(c if r % 2 == 0 else columns - 1 - c, r) for r in range(rows) for c in range(columns)]
    return [(c, r if c % 2 == 0 else rows - 1 - r) for c in range(columns) for r in range(rows)]


@dataclass
class Slack:
    """Which way each axis last moved (+1, -1; 0 not known), so where its backlash's slack lies."""

    x: int = 0
    y: int = 0


def route(
    targets: Sequence[tuple[float, float]],
    start: tuple[float, float],
    backlash_mm: tuple[float, float],
    slack: Slack | None = None,
    *,
    home: tuple[float, float] | None = None,
) -> list[Move]:
    """The moves from `start` through every target in turn (then to `home`, when given): a reversal of an axis
    is preceded by a take-up of its backlash in the new direction; an axis whose slack is not known approaches
    its first target from beyond it. `slack` is updated as the moves go."""
    slack = slack if slack is not None else Slack()
    moves: list[Move] = []
    here = start
    stops: list[tuple[tuple[float, float], int | None]] = [(t, k) for k, t in enumerate(targets)]
    if home is not None:
        stops.append((home, None))
    for target, index in stops:
        dx, dy = target[0] - here[0], target[1] - here[1]
        kind: MoveKind = "tile" if index is not None else "home"
        past = [0.0, 0.0]  # per axis whose slack is not known: go this far beyond the target first
        for axis, delta in enumerate((dx, dy)):
            if abs(delta) > 1e-9 and _way(slack, axis) == 0:
                past[axis] = math.copysign(max(MIN_TAKE_UP_MM, TAKE_UP_SHARE * backlash_mm[axis]), delta)
        if past != [0.0, 0.0]:  # a move longer than the slack: it lies the way that move went, from then on
            moves.append(Move(dx + past[0], dy + past[1], "approach"))
            for axis, delta in enumerate((dx + past[0], dy + past[1])):
                if abs(delta) > 1e-9:
                    _set(slack, axis, 1 if delta > 0 else -1)
            dx, dy = -past[0] if past[0] else 0.0, -past[1] if past[1] else 0.0
        take = [0.0, 0.0]
        for axis, delta in enumerate((dx, dy)):
            way = 0 if abs(delta) <= 1e-9 else (1 if delta > 0 else -1)
            if way and _way(slack, axis) == -way and backlash_mm[axis] > 0:
                take[axis] = way * backlash_mm[axis]
        if take != [0.0, 0.0]:
            moves.append(Move(take[0], take[1], "take-up"))
        moves.append(Move(dx, dy, kind, index))
        for axis, delta in enumerate((dx, dy)):
            if abs(delta) > 1e-9:
                _set(slack, axis, 1 if delta > 0 else -1)
        here = target
    return moves


def _way(slack: Slack, axis: int) -> int:
    return slack.x if axis == 0 else slack.y


def _set(slack: Slack, axis: int, way: int) -> None:
    if axis == 0:
        slack.x = way
    else:
        slack.y = way
