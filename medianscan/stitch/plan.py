"""The plan of a stitch, checked before any pixel is read: the set of tiles (one camera, size, CFA, ISO and
shutter, no duplicates), the output path, the prior (the grid of `--layout COLSxROWS --overlap F`, or each tile's
known position, the rig's) and the output's size against what the readers of a DNG can open."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medianscan import atomic
from medianscan.stitch.sources import Facts, StitchError, Tile, content_digest, same_exposure

# What the readers of a DNG open (the field notes, tiles.md): a side in photosites, and LibRaw's default cap on
# one allocation (LIBRAW_MAX_ALLOC_MB_DEFAULT), which its raw buffer (2 bytes a photosite) must fit.
DNG_SDK_SIDE = 65_000
RAWSPEED_SIDE = 65_535
LIBRAW_SIDE = 64_000
LIBRAW_ALLOC = 2 << 30
MIN_OVERLAP = 0.05  # of a tile's area: below it an overlap is too small to register


@dataclass(frozen=True)
class Grid:
    """The prior layout: tiles given row by row, left to right, top to bottom, each `overlap` into the next."""

    columns: int
    rows: int
    overlap: float

    def position(self, index: int, size: tuple[int, int]) -> tuple[float, float]:
        """The prior (y, x) of tile `index`'s top-left visible photosite, the first tile's at (0, 0)."""
        row, column = divmod(index, self.columns)
        h, w = size
        return row * h * (1 - self.overlap), column * w * (1 - self.overlap)

    def extent(self, size: tuple[int, int]) -> tuple[int, int]:
        h, w = size
        last = self.position(self.columns * self.rows - 1, size)
        return round(last[0]) + h, round(last[1]) + w


def parse_layout(text: str | None, overlap: float, count: int) -> Grid | None:
    """`--layout COLSxROWS` with `--overlap`, checked against the number of tiles."""
    if text is None:
        return None
    try:
        columns, rows = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise StitchError(f"--layout {text}: give columns and rows as COLSxROWS, e.g. 3x2") from None
    if columns < 1 or rows < 1 or columns * rows != count:
        raise StitchError(f"--layout {text} holds {columns * rows} tiles, but {count} were given")
    if not 0.0 < overlap < 0.9:
        raise StitchError(f"--overlap {overlap:g}: give the share of a tile each overlaps the next, e.g. 0.25")
    return Grid(columns, rows, overlap)


def check_positions(positions: Sequence[tuple[float, float]], tiles: Sequence[Tile]) -> list[tuple[float, float]]:
    """Known (y, x) positions, one per tile in the order given, each finite; returned with the first tile's at
    (0, 0), as the solve holds it."""
    if len(positions) != len(tiles):
        raise StitchError(f"{len(positions)} tile positions were given for {len(tiles)} tiles: give one per tile")
    for tile, at in zip(tiles, positions, strict=True):
        if len(at) != 2 or not all(np.isfinite(v) for v in at):
            raise StitchError(f"tile {tile.name}: its position {at!r} is not two finite numbers (y, x)")
    y0, x0 = positions[0]
    return [(float(y) - y0, float(x) - x0) for y, x in positions]


def extent(positions: Sequence[tuple[float, float]], size: tuple[int, int]) -> tuple[int, int]:
    """The (height, width) the tiles at `positions` cover, before any is measured."""
    ys, xs = [p[0] for p in positions], [p[1] for p in positions]
    return round(max(ys) - min(ys)) + size[0], round(max(xs) - min(xs)) + size[1]


def check_output(output: Path, tiles: Sequence[Tile], need_bytes: int) -> None:
    """The output is a new .dng (never a tile) in a folder that takes files and has room: before any work."""
    if output.suffix.lower() != ".dng":
        raise StitchError(f"{output}: the stitched output is a DNG; name it OUT.dng")
    given = {t.given.resolve() for t in tiles} | {t.raw.resolve() for t in tiles}
    if output.resolve() in given:
        raise StitchError(f"{output}: this is one of the tiles; name another output")
    problem = atomic.room_problem(output, need_bytes, "the stitch")
    if problem is not None:
        raise StitchError(problem)


def cfa_problem(tile: Tile, cfa: str, first: Tile, first_cfa: str) -> str | None:
    """A tile whose CFA (sources.cfa_name) is not the first tile's, in one sentence."""
    return None if cfa == first_cfa else f"cannot stitch: tile {tile.name} has CFA {cfa}, tile {first.name} {first_cfa}"


def set_problems(tiles: Sequence[Tile], facts: Sequence[Facts]) -> list[str]:
    """One sentence per tile that does not belong with the first: another camera, size, ISO or shutter, or the
    same picture given twice (the CFA: cfa_problem, as each tile is decoded)."""
    first, base = tiles[0], facts[0]
    problems = []
    seen: dict[str, list[Tile]] = {}  # by their samples: only tiles whose samples agree are read whole
    digests: dict[Path, str] = {}
    for tile, fact in zip(tiles, facts, strict=True):
        alike = seen.setdefault(fact.sample, [])
        if alike:
            whole = _digest(tile, digests)
            twin = next((other for other in alike if _digest(other, digests) == whole), None)
            if twin is not None:
                problems.append(f"tile {tile.name} is the same picture as tile {twin.name} (a duplicate)")
                continue
        alike.append(tile)
        if tile is first:
            continue
        body, base_body = _body(fact), _body(base)
        if body != base_body:
            problems.append(f"tile {tile.name} comes from another camera ({body}; tile {first.name}: {base_body})")
        elif fact.size != base.size:
            problems.append(
                f"tile {tile.name} is {fact.size[1]}x{fact.size[0]} photosites, tile {first.name} "
                f"{base.size[1]}x{base.size[0]}"
            )
        elif not same_exposure(fact.exposure.iso, base.exposure.iso):
            problems.append(
                f"tile {tile.name} was shot at ISO {fact.exposure.iso:g}, "
                f"tile {first.name} at ISO {base.exposure.iso:g}"
            )
        elif not same_exposure(fact.exposure.exposure_time, base.exposure.exposure_time):
            problems.append(
                f"tile {tile.name} was shot at {_shutter(fact.exposure.exposure_time)}, tile {first.name} at "
                f"{_shutter(base.exposure.exposure_time)} (tiles differ only by a small gain, not a shutter step)"
            )
    return problems


def _digest(tile: Tile, digests: dict[Path, str]) -> str:
    if tile.raw not in digests:
        digests[tile.raw] = content_digest(tile)
    return digests[tile.raw]


def _body(fact: Facts) -> str:
    model = " ".join(x for x in (fact.camera.make, fact.camera.model) if x) or "unknown camera"
    return f"{model} #{fact.camera.serial}" if fact.camera.serial else model


def _shutter(value: float | None) -> str:
    if value is None:
        return "an unknown shutter"
    return f"1/{round(1 / value)} s" if value < 0.3 else f"{value:g} s"


def limit_problem(output: Path, size: tuple[int, int], tile_size: tuple[int, int], columns: int | None) -> str | None:
    """Why readers would refuse an output of `size` (height, width) photosites, with halves to stitch instead;
    None when every reader opens it."""
    height, width = size
    said = []
    if max(height, width) > DNG_SDK_SIDE:
        said.append(f"the DNG SDK (Lightroom, Camera Raw) opens at most {DNG_SDK_SIDE:,} photosites a side")
    if max(height, width) > RAWSPEED_SIDE:
        said.append(f"darktable's rawspeed at most {RAWSPEED_SIDE:,}")
    if max(height, width) > LIBRAW_SIDE:
        said.append(f"LibRaw (RawTherapee, rawpy) at most {LIBRAW_SIDE:,}")
    if 2 * height * width > LIBRAW_ALLOC:
        said.append(f"LibRaw refuses its {2 * height * width / 2**30:.1f} GB raw buffer (2 GB by default)")
    if not said:
        return None
    long_side = "wide" if width >= height else "tall"
    half = (
        f"the left {columns // 2} and the right {columns - columns // 2} columns"
        if columns and columns > 1
        else "halves"
    )
    return (
        f"{output}: the stitched mosaic would be {width:,}x{height:,} photosites ({long_side}): "
        + "; ".join(said)
        + f"; stitch it in two halves instead ({half} of tiles, each its own DNG)"
    )
