"""The stitch's read pass: each tile decoded once, its corrected mosaic and its cell planes set aside in the store,
its thumbnail kept for the coarse search; on the stitch's threads, the next tile decoded while this one's plane
is flattened."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import closing
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from medianscan.blend.reading.frames import Frame
from medianscan.blend.stack_files import preview_tone
from medianscan.metadata import MosaicLayout
from medianscan.outputs.preview import Tone
from medianscan.stitch import cells, plan, register, sources, threads, write
from medianscan.stitch.sources import StitchError
from medianscan.stitch.store import Steps, TileStore
from medianscan.stitch.threads import in_order


def read_all(
    tiles: Sequence[sources.Tile], store: TileStore, flat: sources.TileFlat | None
) -> tuple[Frame, Tone | None, list[register.Thumb]]:
    """Read each tile once: its corrected mosaic, its cell plane and that plane flattened go to the store; the
    first tile's frame (its metadata, without its pixels), its preview's tone and every tile's thumbnail stay.
    The next tile is decoded on a thread once this one is cut into cells and its buffer (LibRaw's own, not
    copied) given back, while its plane is flattened: one decoded tile at a time, as the flat's 16-bit gains
    and the cell planes are held beside it (two decoded at once peaked 20-30 MB over the bound at 24 MP)."""
    thumbs = []
    first: Frame | None = None
    tone: Tone | None = None
    with threads.pool(1) as decoder:
        upcoming = decoder.submit(sources.decode_tile, tiles[0])
        try:
            for k, tile in enumerate(tiles):
                with upcoming.result() as decoded:
                    if first is None:
                        tone = preview_tone(decoded.frame)
                        first = replace(decoded.frame, pixels=np.empty((0, 0), np.uint16))
                    plane = _cut(k, tile, decoded.frame, store, flat=flat, first_tile=tiles[0], first=first)
                if k + 1 < len(tiles):  # once this tile's buffer is given back: two decoded tiles are never held
                    upcoming = decoder.submit(sources.decode_tile, tiles[k + 1])
                # the plane written while it is flattened (a 24 MB write took 50-80 ms in the pass, as long as the
                # flattening): the two on threads, both done before the next tile is cut
                jobs: list[Callable[[], register.Thumb | None]] = [
                    functools.partial(store.put, f"plane{k}", plane),
                    functools.partial(_flatten, k, plane, store),
                ]
                thumb = list(in_order(_run, jobs))[1]
                assert thumb is not None
                thumbs.append(thumb)
                del plane, jobs  # the jobs hold the plane too
        except BaseException:
            if not upcoming.cancel():  # a decode under way when the pass stopped: its buffer goes when it ends
                upcoming.add_done_callback(_close_decoded)
            raise
    assert first is not None
    return first, tone, thumbs


def _close_decoded(done: Future[sources.Decoded]) -> None:
    if done.exception() is None:
        done.result().close()


def _run(job: Callable[[], register.Thumb | None]) -> register.Thumb | None:
    return job()


def _flatten(k: int, plane: npt.NDArray[np.float32], store: TileStore) -> register.Thumb:
    """Tile k's plane flattened, to the store, and its thumbnail."""
    flattened = cells.flattened(plane)
    store.put(f"flat{k}", flattened)
    return register.thumbnail(cells.shrink(flattened, cells.thumb_factor(plane.shape)))


def _cut(
    k: int, tile: sources.Tile, frame: Frame, store: TileStore, *, flat: sources.TileFlat | None,
    first_tile: sources.Tile, first: Frame,
) -> npt.NDArray[np.float32]:  # fmt: skip
    """Tile k's corrected mosaic into the store band by band, and its cell plane; its CFA checked against the
    first tile's, its flat against it."""
    layout, first_layout = frame.layout, first.layout
    assert layout is not None and first_layout is not None
    problem = plan.cfa_problem(tile, sources.cfa_name(layout), first_tile, sources.cfa_name(first_layout))
    if problem:
        raise StitchError(problem)
    use_flat = flat if flat is not None and not sources.flat_already_applied(tile) else None
    if use_flat is not None:
        sources.check_flat(use_flat, frame)
    cell = cells.cell_size(sources.local_pattern(layout))
    top, left, bottom, right = layout.active_area
    plane = np.zeros(cells.plane_shape((bottom - top, right - left), cell), dtype=np.float32)
    steps = _tile_steps(layout, use_flat.top if use_flat is not None else 1.0)
    height, rows = bottom - top, _band_rows(layout, cell)

    def cut(start: int) -> npt.NDArray[np.uint16]:
        """One band corrected, its cells added to its own rows of the plane, encoded for the store."""
        values = sources.visible_band(frame, use_flat, start, min(height, start + rows))
        cells.add_cells(plane, values, start, cell)
        return steps.encode(values)

    # two bands at once (the other core is free while a tile is cut), added to the store in their order
    with closing(in_order(cut, range(0, height, rows))) as bands:
        for held in bands:
            store.append_held(f"tile{k}", held, steps)
    return plane


def _tile_steps(layout: MosaicLayout, top_gain: float) -> Steps:
    """The span a tile's values over black can take (a photosite at 0 to one at the white level, times the
    flat's largest gain), for the store's 16-bit steps: 1/65,535 of it a step (0.09 of a raw unit for a
    12-bit camera, 0.37 for a 14-bit one, under a flat whose largest gain is 1.5)."""
    black = np.asarray(layout.black_levels, dtype=np.float64)
    return Steps.spanning(-float(black.max()) * top_gain, (layout.white_level - float(black.min())) * top_gain)


def _band_rows(layout: MosaicLayout, cell: tuple[int, int]) -> int:
    """Rows of a tile read at a time: about BAND_ROWS, whole CFA repeats and whole cells."""
    step = int(np.lcm(layout.pattern.shape[0], cell[0]))
    return max(step, write.BAND_ROWS // step * step)
