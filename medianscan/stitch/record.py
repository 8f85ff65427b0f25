"""OUT.json: what a stitch did, typed (each tile's place and gain, each seam's residual), and its one JSON form."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medianscan.records import RECORD_VERSION


@dataclass(frozen=True)
class TileRecord:
    """A tile's top-left visible photosite (x, y) in the output's visible mosaic (sub-pixel), its turn, its gain,
    and whether it was copied photosite for photosite or resampled."""

    source: Path
    x: float
    y: float
    gain: float
    rotation_degrees: float
    resampled: bool
    blended_now: bool = False


@dataclass(frozen=True)
class SeamRecord:
    """One overlap: how it was placed ("measured" from the pictures, or "prior" where it could not be), how far
    the solve leaves its two tiles apart (photosites) and their level difference after the gains (median and
    worst 1 % of 8x8-cell blocks, relative)."""

    a: int  # tile indices
    b: int
    placed_by: str
    residual_px: float | None
    level_median: float | None
    level_worst: float | None


@dataclass(frozen=True)
class StitchRecord:
    output: Path
    width: int
    height: int
    default_crop: tuple[int, int, int, int]  # x, y, width, height
    tiles: tuple[TileRecord, ...]
    seams: tuple[SeamRecord, ...]
    flat: Path | None
    compressed: bool
    seconds: float
    timings: dict[str, float]

    @property
    def resampled(self) -> list[TileRecord]:
        return [t for t in self.tiles if t.resampled]

    @property
    def placed_alone(self) -> list[TileRecord]:
        """The tiles no overlap placed from the pictures: where they sit is the prior's alone (a plain sky, too
        little overlap), which the operator should look at, not find out later."""
        if len(self.tiles) < 2:
            return []
        measured = {k for seam in self.seams if seam.placed_by == "measured" for k in (seam.a, seam.b)}
        return [t for k, t in enumerate(self.tiles) if k not in measured]

    def to_json(self) -> dict[str, Any]:
        return {"version": RECORD_VERSION, **_plain(dataclasses.asdict(self))}


def _plain(value: Any) -> Any:
    """Paths as strings, floats rounded to what they can tell (a thousandth of a photosite), tuples as lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float):
        return round(value, 6)
    return value
