"""The output built a band of rows at a time: every tile under the band copied or resampled into it, times its
gain and its feather, normalised by the weights, put back over the output's black levels in 16 bits.

Only the band and the tile rows under it are in memory at once (the tiles come from the store by rows), so a
stitch's peak memory does not grow with the output.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from medianscan.metadata import UINT16_TOP
from medianscan.stitch import resample, seams
from medianscan.stitch.place import Canvas, Placement
from medianscan.stitch.store import TileStore


@dataclass(frozen=True)
class Levels:
    """How a band's values (over black, in the first tile's units) go into the output's 16 bits."""

    black: npt.NDArray[np.float32]  # per output CFA position
    scale: float
    white: int


def bands(
    canvas: Canvas,
    store: TileStore,
    *,
    names: Sequence[str],
    gains: Sequence[float],
    channels: npt.NDArray[np.uint8],
    levels: Levels,
    rows: int,
) -> Iterator[npt.NDArray[np.uint16]]:
    """The output's mosaic, `rows` rows at a time, top to bottom. `channels` is the CFA pattern as colours
    (0 red, 1 green, 2 blue), the tiles' and the output's alike."""
    width = canvas.width
    ph, pw = channels.shape
    for top in range(0, canvas.height, rows):
        bottom = min(canvas.height, top + rows)
        num = np.zeros((bottom - top, width), dtype=np.float32)
        den = np.zeros_like(num)
        for placement, name, gain in zip(canvas.placements, names, gains, strict=True):
            box = _box_in(placement, canvas.tile_size, top, bottom, width)
            if box is None:
                continue
            if placement.angle == 0 and not placement.copied:
                _add_shifted(
                    num, den, placement, box, top=top, store=store, name=name, size=canvas.tile_size, gain=gain,
                    channels=channels,
                )  # fmt: skip
            elif placement.copied:
                _add_copy(num, den, placement, box, top=top, store=store, name=name, size=canvas.tile_size, gain=gain)
            else:
                _add_resampled(
                    num,
                    den,
                    placement,
                    box,
                    top=top,
                    store=store,
                    name=name,
                    size=canvas.tile_size,
                    gain=gain,
                    channels=channels,
                )
        value = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
        value *= np.float32(levels.scale)
        value += np.tile(np.roll(levels.black, -top, axis=0), (-(-(bottom - top) // ph), -(-width // pw)))[
            : bottom - top, :width
        ]
        np.clip(np.rint(value, out=value), 0, min(levels.white, UINT16_TOP), out=value)
        yield value.astype(np.uint16)


def _box_in(
    placement: Placement, size: tuple[int, int], top: int, bottom: int, width: int
) -> tuple[int, int, int, int] | None:
    """The part of the band [top, bottom) the tile may cover (top, left, bottom, right), or None."""
    h, w = size
    corners = np.array([[0, 0], [0, w - 1], [h - 1, 0], [h - 1, w - 1]], dtype=np.float64)
    c, s = np.cos(placement.angle), np.sin(placement.angle)
    ys = placement.y + s * corners[:, 1] + c * corners[:, 0]
    xs = placement.x + c * corners[:, 1] - s * corners[:, 0]
    y0, y1 = max(top, int(np.floor(ys.min()))), min(bottom, int(np.ceil(ys.max())) + 1)
    x0, x1 = max(0, int(np.floor(xs.min()))), min(width, int(np.ceil(xs.max())) + 1)
    return (y0, x0, y1, x1) if y0 < y1 and x0 < x1 else None


def _add_copy(
    num: npt.NDArray[np.float32],
    den: npt.NDArray[np.float32],
    placement: Placement,
    box: tuple[int, int, int, int],
    *,
    top: int,
    store: TileStore,
    name: str,
    size: tuple[int, int],
    gain: float,
) -> None:
    """A copied tile: its photosites as they are, at whole offsets."""
    y0, x0, y1, x1 = box
    ty, tx = int(placement.y), int(placement.x)
    values = store.rows(name, y0 - ty, y1 - ty)[:, x0 - tx : x1 - tx]
    v = np.arange(y0 - ty, y1 - ty, dtype=np.float32)[:, None]
    u = np.arange(x0 - tx, x1 - tx, dtype=np.float32)[None, :]
    weight = seams.feather(v, u, size)
    num[y0 - top : y1 - top, x0:x1] += weight * values * np.float32(gain)
    den[y0 - top : y1 - top, x0:x1] += weight


def _add_resampled(
    num: npt.NDArray[np.float32],
    den: npt.NDArray[np.float32],
    placement: Placement,
    box: tuple[int, int, int, int],
    *,
    top: int,
    store: TileStore,
    name: str,
    size: tuple[int, int],
    gain: float,
    channels: npt.NDArray[np.uint8],
) -> None:
    """A resampled tile: each output photosite read from the tile's photosites of its own colour."""
    y0, x0, y1, x1 = box
    ph, pw = channels.shape
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    local = placement.to_tile(np.stack([yy, xx], axis=-1))
    v, u = local[..., 0], local[..., 1]
    weight = seams.feather(v, u, size)
    inside = weight > 0
    if not inside.any():
        return
    colours = channels[(yy[inside].astype(np.int64)) % ph, (xx[inside].astype(np.int64)) % pw]
    values = resample.sample(
        lambda a, b: store.rows(name, a, b), channels, v[inside], u[inside], colours, tile_height=size[0]
    )
    part_num = np.zeros(v.shape, dtype=np.float32)
    part_num[inside] = values * np.float32(gain) * weight[inside]
    num[y0 - top : y1 - top, x0:x1] += part_num
    den[y0 - top : y1 - top, x0:x1] += weight


def _add_shifted(
    num: npt.NDArray[np.float32],
    den: npt.NDArray[np.float32],
    placement: Placement,
    box: tuple[int, int, int, int],
    *,
    top: int,
    store: TileStore,
    name: str,
    size: tuple[int, int],
    gain: float,
    channels: npt.NDArray[np.uint8],
) -> None:
    """A tile moved by a fraction of a photosite, not turned: resampled per colour plane as a whole box."""
    y0, x0, y1, x1 = box
    corner = (y0 - placement.y, x0 - placement.x)
    wanted = np.roll(channels, (-y0, -x0), axis=(0, 1))
    values = resample.sample_shifted(
        lambda a, b: store.rows(name, a, b), channels, corner, wanted, box=(y1 - y0, x1 - x0), tile_size=size
    )
    v = (np.arange(y1 - y0, dtype=np.float32) + np.float32(corner[0]))[:, None]
    u = (np.arange(x1 - x0, dtype=np.float32) + np.float32(corner[1]))[None, :]
    weight = seams.feather(v, u, size)
    num[y0 - top : y1 - top, x0:x1] += weight * values * np.float32(gain)
    den[y0 - top : y1 - top, x0:x1] += weight
