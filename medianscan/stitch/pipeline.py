"""Stitch tiles into one DNG: the one path `medianscan stitch` takes (and the daemon will).

Nothing is written until the set, the output and the plan have passed their checks; the output appears
atomically, with OUT.json beside it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from medianscan import __version__, heap
from medianscan.atomic import write_json
from medianscan.metadata import MosaicLayout, headroom, with_headroom
from medianscan.outputs.preview import rgb_channels
from medianscan.stitch import cells, compose, gains, place, plan, read_pass, register, solve, sources, threads, write
from medianscan.stitch.record import SeamRecord, StitchRecord, TileRecord
from medianscan.stitch.sources import StitchError
from medianscan.stitch.store import TileStore
from medianscan.stitch.threads import WORKERS, in_order
from medianscan.timing import timed
from medianscan.wording import counted


@dataclass(frozen=True)
class StitchOptions:
    flat: Path | None = None
    compress: bool = False
    layout: str | None = None  # "COLSxROWS": the prior grid
    overlap: float = 0.25
    # each tile's known top-left (y, x) in output photosites, in the order given (the rig's plan): the prior in
    # place of the grid. No rotation goes with it: an XY stage off square turns where the tiles land, not the
    # tiles (each sees the film as the sensor does), so every tile's angle to the first stays near 0, as the
    # solve holds it; the stage's angle is already in these positions.
    positions: tuple[tuple[float, float], ...] | None = None


def stitch(given: Sequence[Path], output: Path, options: StitchOptions | None = None) -> StitchRecord:
    """Stitch the tiles `given` into `output`; StitchError naming the tile and the problem, nothing written."""
    options = options or StitchOptions()
    threads.settle()  # a blend before it in this process may have set its own
    started = time.perf_counter()
    timings: dict[str, float] = {}
    checked = _check_set(given, output, options)
    tiles, size, prior, columns = checked.tiles, checked.size, checked.prior, checked.columns
    with timed(timings, "flat"):  # not made at all when every tile's blend already carries it (a roll's tiles)
        wanted = any(not sources.flat_already_applied(tile) for tile in tiles)
        flat = sources.load_flat(options.flat) if wanted else None

    with TileStore(output.parent) as store:
        with timed(timings, "read"):
            first, tone, thumbs = read_pass.read_all(tiles, store, flat)
            flat_top = flat.top if flat is not None else 1.0
            del flat  # its gains are in the tiles now: not held through the rest
            layout = first.layout
            assert layout is not None
            xmp = sources.xmp_packet(tiles[0].raw)
            pattern = sources.local_pattern(layout)
            cell = cells.cell_size(pattern)

        with timed(timings, "register"):
            links, measured, tried = _register(
                store, thumbs, count=len(tiles), size=size, cell=cell, prior=prior, overlap=options.overlap
            )
            prior_pairs = [pair for pair in tried if pair not in measured] if prior else []
            poses = _solve(tiles, links, prior, prior_pairs, size)

        with timed(timings, "gains"):
            raw_range = float(layout.white_level - np.mean(layout.black_levels))
            overlaps = _overlaps(store, sorted(set(measured) | set(prior_pairs)), poses, cell)
            tile_gains = gains.solve_gains(len(tiles), overlaps, raw_range)

        canvas = place.lay_out(poses, size, pattern)
        problem = plan.limit_problem(output, (canvas.height, canvas.width), size, columns)
        if problem:
            raise StitchError(problem)
        out_layout, levels = _output_levels(layout, canvas, pattern, tile_gains, flat_top)
        channels = np.asarray(rgb_channels(layout.colors), dtype=np.uint8)[pattern]

        with timed(timings, "compose_write"):
            names = [f"tile{k}" for k in range(len(tiles))]
            bands = compose.bands(
                canvas, store, names=names, gains=tile_gains, channels=channels, levels=levels, rows=write.BAND_ROWS
            )
            with closing(bands):  # a write that fails ends the bands' threads here, before the store goes
                write.write_bands(
                    output,
                    (canvas.height, canvas.width),
                    bands,
                    out_layout,
                    camera=first.camera,
                    exposure=first.exposure,
                    compress=options.compress,
                    description=f"medianscan {__version__} stitch of {counted(len(tiles), 'tile')}",
                    xmp=xmp,
                    tone=tone,
                    metadata_from=tiles[0].raw,
                )

    seams = _seams(
        links,
        overlaps,
        measured=measured,
        prior_pairs=prior_pairs,
        poses=poses,
        tile_gains=tile_gains,
        raw_range=raw_range,
    )
    record = StitchRecord(
        output=output.resolve(),
        width=canvas.width,
        height=canvas.height,
        default_crop=out_layout.default_crop,
        tiles=tuple(
            TileRecord(tile.given.resolve(), p.x, p.y, g, float(np.degrees(p.angle)), not p.copied, tile.blended_now)
            for tile, p, g in zip(tiles, canvas.placements, tile_gains, strict=True)
        ),
        seams=tuple(seams),
        flat=options.flat,
        compressed=options.compress,
        seconds=time.perf_counter() - started,
        timings=timings,
    )
    write_json(output.with_suffix(".json"), record.to_json())
    return record


@dataclass(frozen=True)
class _CheckedSet:
    """A set of tiles that passed the checks made before any pixel is read."""

    tiles: list[sources.Tile]
    size: tuple[int, int]  # a tile's visible height, width
    prior: list[tuple[float, float]] | None  # the known positions, else the --layout grid's
    columns: int | None


def _check_set(given: Sequence[Path], output: Path, options: StitchOptions) -> _CheckedSet:
    """The arguments, the set and the output checked (and stack folders blended) before any tile is decoded."""
    if len(given) < 2:
        raise StitchError("a stitch needs at least two tiles")
    grid = plan.parse_layout(options.layout, options.overlap, len(given))
    named = [sources.Tile(p, p) for p in given]
    known = plan.check_positions(options.positions, named) if options.positions is not None else None
    plan.check_output(output, named, 0)
    tiles = [sources.resolve_tile(p) for p in given]
    facts = [sources.read_facts(t) for t in tiles]
    problems = plan.set_problems(tiles, facts)
    if problems:
        raise StitchError("cannot stitch: " + "; ".join(problems))
    size = facts[0].size
    columns = grid.columns if grid else None
    prior = known if known is not None else [grid.position(k, size) for k in range(len(tiles))] if grid else None
    if prior is not None:
        problem = plan.limit_problem(output, plan.extent(prior, size), size, columns)
        if problem:
            raise StitchError(problem)
    plan.check_output(output, tiles, int(2.2 * sum(t.raw.stat().st_size for t in tiles)))
    return _CheckedSet(tiles, size, prior, columns)


def _overlaps(
    store: TileStore, pairs: Sequence[tuple[int, int]], poses: Sequence[solve.Pose], cell: tuple[int, int]
) -> list[gains.Overlap]:
    """Each overlap's two planes on one grid, for the gains and the seams' residuals: two pairs at a time on
    threads, each reading windows about its overlap from the store, taken in their order."""

    def sample(pair: tuple[int, int]) -> gains.Overlap | None:
        i, j = pair
        return gains.sample_overlap(
            i, j, _stored(store, f"plane{i}"), _stored(store, f"plane{j}"), poses=poses, cell=cell
        )

    found = in_order(sample, pairs)
    with closing(found):
        return [overlap for overlap in found if overlap is not None]


def _register(
    store: TileStore,
    thumbs: Sequence[register.Thumb],
    *,
    count: int,
    size: tuple[int, int],
    cell: tuple[int, int],
    prior: Sequence[tuple[float, float]] | None,
    overlap: float,
) -> tuple[list[solve.Link], list[tuple[int, int]], list[tuple[int, int]]]:
    """Measure every pair that may overlap: the links for the solve, the pairs measured, and the pairs tried. The
    pairs are independent: measured two at a time on threads (each reads its two planes from the store), taken
    in their order, so the links are those of one at a time."""
    plane_shape = store.shape("plane0")
    factor = cells.thumb_factor(plane_shape)
    tile_area = size[0] * size[1]
    min_points = int(plan.MIN_OVERLAP * plane_shape[0] * plane_shape[1])
    pairs: list[tuple[int, int, tuple[float, float] | None]] = []  # with the prior's offset in thumbnail points
    for i in range(count):
        for j in range(i + 1, count):
            if prior is None:
                pairs.append((i, j, None))
                continue
            dy, dx = prior[j][0] - prior[i][0], prior[j][1] - prior[i][1]
            shared = max(0.0, size[0] - abs(dy)) * max(0.0, size[1] - abs(dx))
            if shared >= plan.MIN_OVERLAP * tile_area:
                pairs.append((i, j, (dy / cell[0] / factor, dx / cell[1] / factor)))

    def measure(pair: tuple[int, int, tuple[float, float] | None]) -> tuple[bool, register.PairFit | None]:
        """Whether the pair was tried (its thumbnails overlap, or the prior says so) and its fit."""
        i, j, expect = pair
        if expect is not None:
            reach = 0.1 * max(thumbs[i].image.shape)
            found = register.coarse_offset(thumbs[i], thumbs[j], plan.MIN_OVERLAP, expect, reach)
            coarse = found if found is not None else expect
        else:
            found = register.coarse_offset(thumbs[i], thumbs[j], plan.MIN_OVERLAP)
            if found is None:
                return False, None
            coarse = found
        start = (coarse[0] * factor, coarse[1] * factor)
        heap.give_back_freed()  # what this thread's last pair freed, before its windows are read
        return True, register.refine(_stored(store, f"flat{i}"), _stored(store, f"flat{j}"), start, min_points,
                                     cell[0], coarse=2 * factor)  # fmt: skip

    links: list[solve.Link] = []
    measured, tried = [], []
    # a pair's result is small: several may wait while a slow pair ends, the threads kept busy (two run at most)
    found = in_order(measure, pairs, ahead=2 * WORKERS)
    with closing(found):
        for (i, j, _), (was_tried, fit) in zip(pairs, found, strict=True):
            if was_tried:
                tried.append((i, j))
            if fit is not None:
                measured.append((i, j))
                links.append(_link(i, j, fit, cell))
    # and all the threads' heaps keep, however little: the passes after this allocate on this thread alone, and
    # could not reuse it (20-30 MB more at the output's peak when left)
    heap.give_back_freed(least=0)
    return links, measured, tried


def _stored(store: TileStore, name: str) -> cells.StoredPlane:
    return cells.StoredPlane(store.shape(name), functools.partial(store.window, name))


def _link(i: int, j: int, fit: register.PairFit, cell: tuple[int, int]) -> solve.Link:
    """The fit's overlap corners and centre as photosite correspondences."""
    top, left, bottom, right = fit.box
    qj = np.array(
        [[top, left], [top, right - 1], [bottom - 1, left], [bottom - 1, right - 1], list(fit.centre)], dtype=np.float64
    )
    centre = np.array(fit.centre)
    qi = solve.rotate(qj - centre, fit.angle) + centre + np.array(fit.shift)
    sigma = max(fit.error * cell[0], 0.02)
    return solve.Link(i, j, cells.to_photosites(qi, cell), cells.to_photosites(qj, cell), sigma)


def _check_duplicates(tiles: Sequence[sources.Tile], poses: Sequence[solve.Pose], size: tuple[int, int]) -> None:
    """Two tiles at the same place (nine tenths of each on the other) are one tile given twice."""
    for i in range(len(poses)):
        for j in range(i + 1, len(poses)):
            dy, dx = abs(poses[i].y - poses[j].y), abs(poses[i].x - poses[j].x)
            if (size[0] - dy) * (size[1] - dx) > 0.9 * size[0] * size[1] and dy < size[0] and dx < size[1]:
                raise StitchError(
                    f"cannot stitch: tile {tiles[j].name} shows the same part of the picture as tile "
                    f"{tiles[i].name} (a duplicate)"
                )


def _output_levels(
    layout: MosaicLayout, canvas: place.Canvas, pattern: npt.NDArray[np.uint8], tile_gains: Sequence[float],
    flat_top: float,
) -> tuple[MosaicLayout, compose.Levels]:  # fmt: skip
    """The output's layout (the whole array visible, DefaultCrop on the covered area, headroom for the gains)
    and how its values go into 16 bits."""
    top_gain = max(tile_gains) * flat_top  # the flat's largest gain (1 without one)
    room = headroom(layout, top_gain, expand=False) if top_gain > 1 else None
    out_layout = replace(
        layout,
        pattern=pattern,
        active_area=(0, 0, canvas.height, canvas.width),
        default_crop=place.covered_area(canvas),
    )
    if room is not None:
        out_layout = with_headroom(out_layout, room)
    black = np.asarray(layout.black_levels, dtype=np.float32)[pattern]
    return out_layout, compose.Levels(black, room.scale if room else 1.0, out_layout.white_level)


def _seams(
    links: Sequence[solve.Link], overlaps: Sequence[gains.Overlap], *, measured: Sequence[tuple[int, int]],
    prior_pairs: Sequence[tuple[int, int]], poses: Sequence[solve.Pose], tile_gains: Sequence[float],
    raw_range: float,
) -> list[SeamRecord]:  # fmt: skip
    """Each overlap's record: placed how, the solve's residual there, the levels' residual after the gains."""
    seams = []
    for i, j in sorted(set(measured) | set(prior_pairs)):
        link = next((lk for lk in links if (lk.i, lk.j) == (i, j)), None)
        overlap = next((o for o in overlaps if (o.i, o.j) == (i, j)), None)
        level = gains.level_residual(overlap, tile_gains, raw_range) if overlap is not None else None
        seams.append(
            SeamRecord(
                i, j, "measured" if link else "prior",
                solve.residual(link, poses) if link else None,
                level[0] if level else None,
                level[1] if level else None,
            )
        )  # fmt: skip
    return seams


def _solve(
    tiles: Sequence[sources.Tile], links: Sequence[solve.Link], prior: Sequence[tuple[float, float]] | None,
    prior_pairs: Sequence[tuple[int, int]], size: tuple[int, int],
) -> list[solve.Pose]:  # fmt: skip
    """Every tile's pose; a tile joined to no other (by a measured overlap or the prior) is named, as is a tile
    lying on another."""
    joined = solve.connected(len(tiles), [(link.i, link.j) for link in links] + list(prior_pairs))
    alone = [tiles[k].name for k in range(len(tiles)) if k not in joined]
    if alone:
        raise StitchError(
            "cannot stitch: "
            + "; ".join(f"tile {name} overlaps no other tile (no shared picture found)" for name in alone)
        )
    poses = solve.solve(len(tiles), links, prior, float(max(size)), prior_pairs)
    _check_duplicates(tiles, poses, size)
    return poses
