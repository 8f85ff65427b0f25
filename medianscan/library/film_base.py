"""The roll's film base, measured once per roll: what the clear film (no image, only its orange mask) lets through,
per colour, in raw units over black after the flat field, and the roll's density range per colour.

Both editors' inversions hinge on it (darktable's negadoctor calls it D-min, RawTherapee's Film Negative its
reference input): picked by hand on each frame, the same grey comes out differently on two frames of one roll.
Measured once and handed to every negative's sidecar (medianscan.outputs.editors), the roll inverts alike.

Where it comes from, best first: a frame of clear film shot on purpose (`medianscan base`, the leader or the
rebate in the holder) or an exposure probe of it; failing those, the clearest film found across the roll's blends.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rawpy

from medianscan.errors import MedianscanError

COLOURS = "RGB"
BLOCK = 16  # photosites a side of the blocks the clearest film and the densest film are looked for in (8 CFA cells)
MARGIN = 0.05  # of each side, left out (the holder's edge, the lens' corners)
CLIPPED = 0.98  # a block with a photosite this near the white level is bare light or a highlight, not film
DENSEST = 0.5  # percentile of the blocks' transmission taken as a negative's densest film (not one speck of dust)

SOURCE_CLEAR = "clear film"  # a frame of clear film shot on purpose (`medianscan base`)
SOURCE_PROBE = "exposure probe"  # `calibrate exposure`'s probe of the clear film
SOURCE_BLENDS = "clearest film across the roll's blends"


@dataclass(frozen=True)
class FilmBase:
    """The roll's film base per colour (R, G, B: raw units over black, after the flat field), the raw's white
    level over black (so that the base is also a share of the raw range), where it came from, and the roll's
    density range per colour (the densest film of its negatives over the base, log10), when known."""

    base: tuple[float, float, float]
    white: float
    source: str
    measured_from: tuple[str, ...]
    density_range: tuple[float, float, float] | None = None

    @property
    def share(self) -> tuple[float, float, float]:
        """The base per colour as a share of the raw range."""
        r, g, b = (v / self.white for v in self.base)
        return r, g, b

    def to_json(self) -> dict[str, Any]:
        return {
            "base": dict(zip(COLOURS, (round(v, 2) for v in self.base), strict=True)),
            "white": round(self.white, 2),
            "source": self.source,
            "measured_from": list(self.measured_from),
            "density_range": None
            if self.density_range is None
            else dict(zip(COLOURS, (round(v, 4) for v in self.density_range), strict=True)),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FilmBase:
        """ValueError/KeyError/TypeError on a record that is not one."""
        base = tuple(float(data["base"][c]) for c in COLOURS)
        dr = data.get("density_range")
        density = None if dr is None else tuple(float(dr[c]) for c in COLOURS)
        white = float(data["white"])
        if white <= 0 or min(base) <= 0:
            raise ValueError("the base and the white level must be above black")
        return cls(
            (base[0], base[1], base[2]),
            white,
            str(data["source"]),
            tuple(str(p) for p in data.get("measured_from", ())),
            None if density is None else (density[0], density[1], density[2]),
        )


@dataclass(frozen=True)
class _Mosaic:
    """One raw's mosaic as per-colour block means (R, G, B planes of blocks) with its white level over black."""

    blocks: npt.NDArray[np.float64]  # (3, rows, columns): each block's mean per colour, over black
    clipped: npt.NDArray[np.bool_]  # (rows, columns): a block with a photosite at the white level
    white: float


def _read(path: Path) -> _Mosaic:
    """The mosaic of a raw or DNG (LibRaw), inside its margins, as per-colour block means."""
    try:
        with rawpy.imread(str(path)) as raw:
            values = raw.raw_image_visible.astype(np.float64)
            colours = raw.raw_colors_visible.copy()
            blacks = list(raw.black_level_per_channel)
            white = float(raw.white_level)
            names = raw.color_desc.decode()
    except (rawpy.LibRawError, OSError) as exc:
        raise MedianscanError(f"{path}: cannot be read as a raw to measure the film base ({exc})") from exc
    h, w = values.shape
    top, left = int(h * MARGIN) // BLOCK * BLOCK, int(w * MARGIN) // BLOCK * BLOCK
    rows, cols = (h - 2 * top) // BLOCK, (w - 2 * left) // BLOCK
    if rows < 1 or cols < 1:
        raise MedianscanError(f"{path}: too small to measure the film base in")
    values = values[top : top + rows * BLOCK, left : left + cols * BLOCK]
    colours = colours[top : top + rows * BLOCK, left : left + cols * BLOCK]
    black = np.asarray(blacks, dtype=np.float64)[colours]
    clipped = (values >= white - (1 - CLIPPED) * (white - float(min(blacks)))).reshape(rows, BLOCK, cols, BLOCK)
    over = values - black
    planes = np.empty((3, rows, cols))
    for c, name in enumerate(COLOURS):
        indices = [i for i, n in enumerate(names) if n == name]
        if not indices:
            raise MedianscanError(f"{path}: no {name} photosites (colours {names}): not a colour raw")
        chosen = np.isin(colours, indices).reshape(rows, BLOCK, cols, BLOCK)
        sums = np.where(chosen, over.reshape(rows, BLOCK, cols, BLOCK), 0.0).sum(axis=(1, 3))
        planes[c] = sums / np.maximum(chosen.sum(axis=(1, 3)), 1)
    return _Mosaic(planes, np.asarray(clipped.any(axis=(1, 3)), dtype=np.bool_), white - float(np.mean(blacks)))


def clear_film(paths: Sequence[Path], source: str = SOURCE_CLEAR) -> FilmBase:
    """The base from frames of clear film (the leader or the rebate filling the view): per colour, the median of
    the blocks of every frame, unclipped. MedianscanError naming the file when a frame is no clear film."""
    if not paths:
        raise MedianscanError("no frame of clear film to measure the film base from")
    values: list[npt.NDArray[np.float64]] = []
    white = 0.0
    for path in paths:
        mosaic = _read(path)
        good = ~mosaic.clipped
        if good.mean() < 0.5:
            raise MedianscanError(f"{path}: more than half of it is at the white level: lower the exposure")
        values.append(mosaic.blocks[:, good])
        white = mosaic.white
    joined = np.concatenate(values, axis=1)
    base = np.median(joined, axis=1)
    spread = np.percentile(joined[1], 95) / max(np.percentile(joined[1], 5), 1e-9)
    if min(base) <= 0:
        raise MedianscanError(f"{paths[0]}: black in a colour: is the light on?")
    if spread > 1.5:
        raise MedianscanError(
            f"{paths[0]}: not clear film (its green varies {spread:.1f}x across the view): put the leader or "
            "the rebate in the holder, with no picture in the view"
        )
    return FilmBase((base[0], base[1], base[2]), white, source, tuple(str(p) for p in paths))


def clearest_film(blends: Sequence[Path]) -> FilmBase:
    """The base as the clearest film found across a roll's blends: the unclipped block with the most green light.
    Each blend is read once; the density range comes with it."""
    if not blends:
        raise MedianscanError("no blend in the roll to find its clearest film in")
    best: tuple[float, npt.NDArray[np.float64], Path] | None = None
    densest: list[npt.NDArray[np.float64]] = []
    white = 0.0
    for path in blends:
        mosaic = _read(path)
        white = mosaic.white
        good = ~mosaic.clipped
        if not good.any():
            continue
        green = np.where(good, mosaic.blocks[1], -np.inf)
        at = np.unravel_index(int(np.argmax(green)), green.shape)
        if best is None or float(green[at]) > best[0]:
            best = (float(green[at]), mosaic.blocks[:, at[0], at[1]], path)
        densest.append(np.percentile(mosaic.blocks[:, good], DENSEST, axis=1))
    if best is None or min(best[1]) <= 0:
        raise MedianscanError(f"{blends[0]}: no film in the roll's blends that is not at the white level or black")
    base = best[1]
    used = (base[0], base[1], base[2])
    return FilmBase(used, white, SOURCE_BLENDS, (str(best[2]),), _range(used, densest))


def density_range(base: FilmBase, blends: Iterable[Path]) -> FilmBase:
    """`base` with the roll's density range per colour measured on `blends` (the densest of them, per colour)."""
    densest = []
    for path in blends:
        mosaic = _read(path)
        good = ~mosaic.clipped
        if good.any():
            densest.append(np.percentile(mosaic.blocks[:, good], DENSEST, axis=1))
    return FilmBase(base.base, base.white, base.source, base.measured_from, _range(base.base, densest))


def _range(
    base: tuple[float, float, float], densest: Sequence[npt.NDArray[np.float64]]
) -> tuple[float, float, float] | None:
    """Per colour, log10 of the base over the densest film of any negative (0 when none is denser)."""
    if not densest:
        return None
    least = np.min(np.stack(densest), axis=0)
    r, g, b = (max(0.0, math.log10(base[c] / max(float(least[c]), 1e-3))) for c in range(3))
    return r, g, b
