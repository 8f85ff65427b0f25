"""The output built a band of rows at a time: every tile under the band copied or resampled into it, times its
gain and its feather, normalised by the weights, put back over the output's black levels in 16 bits.

Only the band being made (in `threads.WORKERS` parts at once), the one before it while it is written, and the
tile rows under them are in memory at once (the tiles come from the store by rows), so a stitch's peak memory does
not grow with the output.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from contextlib import closing
from dataclasses import dataclass
from functools import partial

import numpy as np
import numpy.typing as npt

from medianscan.metadata import UINT16_TOP
from medianscan.stitch import resample, seams, threads
from medianscan.stitch.place import Canvas, Placement
from medianscan.stitch.store import TileStore

Rows = Callable[[int, int], npt.NDArray[np.float32]]  # a tile's rows [start, stop), from the store
Box = tuple[int, int, int, int]  # top, left, bottom, right on the output
# A way of reading a tile onto a box of the output: its values there and its feather's weights (0 where it
# does not reach), or None when it covers none of the box
Reader = Callable[
    [Placement, Box, Rows, tuple[int, int], npt.NDArray[np.uint8]],
    tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None,
]


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
) -> Generator[npt.NDArray[np.uint16]]:
    """The output's mosaic, `rows` rows at a time, top to bottom. `channels` is the CFA pattern as colours
    (0 red, 1 green, 2 blue), the tiles' and the output's alike."""
    width = canvas.width
    ph, pw = channels.shape

    def rows_of_output(span: tuple[int, int]) -> npt.NDArray[np.uint16]:
        top, bottom = span
        num = np.zeros((bottom - top, width), dtype=np.float32)
        den = np.zeros_like(num)
        for placement, name, gain in zip(canvas.placements, names, gains, strict=True):
            box = _box_in(placement, canvas.tile_size, top, bottom, width)
            if box is None:
                continue
            found = _reader(placement)(placement, box, partial(store.rows, name), canvas.tile_size, channels)
            if found is not None:
                _accumulate(num, den, box, found, top=top, gain=gain)
        value = np.divide(num, den, out=num, where=den > 0)  # where no tile reaches, num is 0 already
        value *= np.float32(levels.scale)
        black = np.roll(levels.black, -top, axis=0)
        for dy in range(ph):  # each CFA position's black in place: no band-sized array of blacks
            for dx in range(pw):
                value[dy::ph, dx::pw] += black[dy, dx]
        np.clip(np.rint(value, out=value), 0, min(levels.white, UINT16_TOP), out=value)
        return value.astype(np.uint16)

    # Each band is made in WORKERS parts at once (the parts are independent) while the writer takes the band
    # before: the memory of one band in the making, where whole bands side by side took one more (60-70 MB).
    part = -(-rows // threads.WORKERS)
    spans = [
        (start, min(start + part, top + rows, canvas.height))
        for top in range(0, canvas.height, rows)
        for start in range(top, min(top + rows, canvas.height), part)
    ]
    made: list[npt.NDArray[np.uint16]] = []
    with closing(threads.in_order(rows_of_output, spans)) as parts:  # a writer that stops: no part starts after
        for (_, bottom), rows_made in zip(spans, parts, strict=True):
            made.append(rows_made)
            if bottom % rows == 0 or bottom == canvas.height:
                yield made[0] if len(made) == 1 else np.concatenate(made)
                made = []


def _reader(placement: Placement) -> Reader:
    """Copied photosite for photosite, shifted by a fraction (every point one fraction), or turned."""
    if placement.copied:
        return _copied
    return _shifted if placement.angle == 0 else _resampled


def _accumulate(
    num: npt.NDArray[np.float32],
    den: npt.NDArray[np.float32],
    box: Box,
    found: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]],
    *,
    top: int,
    gain: float,
) -> None:
    """A tile's values on `box`, times its gain and its feather, into the band's sums (in place)."""
    y0, x0, y1, x1 = box
    values, weight = found
    values *= weight
    values *= np.float32(gain)
    num[y0 - top : y1 - top, x0:x1] += values
    den[y0 - top : y1 - top, x0:x1] += weight


def _box_in(placement: Placement, size: tuple[int, int], top: int, bottom: int, width: int) -> Box | None:
    """The part of the band [top, bottom) the tile may cover (top, left, bottom, right), or None."""
    h, w = size
    corners = np.array([[0, 0], [0, w - 1], [h - 1, 0], [h - 1, w - 1]], dtype=np.float64)
    c, s = np.cos(placement.angle), np.sin(placement.angle)
    ys = placement.y + s * corners[:, 1] + c * corners[:, 0]
    xs = placement.x + c * corners[:, 1] - s * corners[:, 0]
    y0, y1 = max(top, int(np.floor(ys.min()))), min(bottom, int(np.ceil(ys.max())) + 1)
    x0, x1 = max(0, int(np.floor(xs.min()))), min(width, int(np.ceil(xs.max())) + 1)
    return (y0, x0, y1, x1) if y0 < y1 and x0 < x1 else None


def _copied(
    placement: Placement, box: Box, rows_of: Rows, size: tuple[int, int], channels: npt.NDArray[np.uint8]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """A copied tile: its photosites as they are, at whole offsets."""
    del channels  # the tile's CFA lands on the output's own
    y0, x0, y1, x1 = box
    ty, tx = int(placement.y), int(placement.x)
    values = rows_of(y0 - ty, y1 - ty)[:, x0 - tx : x1 - tx]
    v = np.arange(y0 - ty, y1 - ty, dtype=np.float32)[:, None]
    u = np.arange(x0 - tx, x1 - tx, dtype=np.float32)[None, :]
    return values, seams.feather(v, u, size)  # values: a view of rows read for this call alone


def _shifted(
    placement: Placement, box: Box, rows_of: Rows, size: tuple[int, int], channels: npt.NDArray[np.uint8]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """A tile moved by a fraction of a photosite, not turned: resampled per colour plane as a whole box."""
    y0, x0, y1, x1 = box
    corner = (y0 - placement.y, x0 - placement.x)
    wanted = np.roll(channels, (-y0, -x0), axis=(0, 1))
    values = resample.sample_shifted(rows_of, channels, corner, wanted, box=(y1 - y0, x1 - x0), tile_size=size)
    # each row's and column's place on the tile from the output's own (in float64, then float32): the same
    # weights whichever band or part of a band the row is made in
    v = (np.arange(y0, y1) - placement.y).astype(np.float32)[:, None]
    u = (np.arange(x0, x1) - placement.x).astype(np.float32)[None, :]
    return values, seams.feather(v, u, size)


def _resampled(
    placement: Placement, box: Box, rows_of: Rows, size: tuple[int, int], channels: npt.NDArray[np.uint8]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None:
    """A turned tile: each output photosite read from the tile's photosites of its own colour."""
    y0, x0, y1, x1 = box
    ph, pw = channels.shape
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    local = placement.to_tile(np.stack([yy, xx], axis=-1))
    v, u = local[..., 0], local[..., 1]
    weight = seams.feather(v, u, size)
    inside = weight > 0
    if not inside.any():
        return None
    colours = channels[(yy[inside].astype(np.int64)) % ph, (xx[inside].astype(np.int64)) % pw]
    values = np.zeros(v.shape, dtype=np.float32)
    values[inside] = resample.sample(rows_of, channels, v[inside], u[inside], colours, tile_height=size[0])
    return values, weight
