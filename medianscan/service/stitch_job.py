"""What a worker runs for a tiled negative: the stitch of its blended tiles into `<negative>_median.dng`, by the
stitch's public entry (`medianscan.stitch.pipeline.stitch`), in the same spawned pool as the blends.

A stitch's temps (its folder of tiles, `.medianscan-stitch-XXXX.<pid>.part`, and the DNG's `.part`) carry the
worker's pid, as every temp of ours does (`medianscan.atomic`): a stitch killed mid-way leaves them, and the
next stitch of the negative (the pool's second try, a restart's) removes those whose writer is dead first, as
the daemon's start-up scan does."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from medianscan.atomic import remove_dead_temps
from medianscan.library.tile_set import TILES_FILE
from medianscan.stitch.record import StitchRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StitchTask:
    """One negative to stitch: its blended tiles in grid order (row by row, left to right), where the result
    goes, the prior (each tile's planned position in photosites when every tile has one, the rig's; else the
    grid when every cell has its tile), and the roll's flat (the stitch leaves alone a tile
    whose blend already carries it). It crosses to the worker pickled."""

    negative: Path
    tiles: tuple[Path, ...]  # each tile's blend (a DNG)
    output: Path
    layout: str | None = None  # "COLSxROWS", only when the tiles fill the grid
    overlap: float = 0.25
    flat: Path | None = None
    inputs: tuple[tuple[str, str, int, int], ...] = ()  # what the status records it was stitched from
    positions: tuple[tuple[float, float], ...] | None = None  # (y, x) photosites per tile, in the tiles' order
    DOING: ClassVar[tuple[str, str]] = ("stitching", "negative")  # the pool's words when its worker dies

    @property
    def key(self) -> Path:
        """The pool's name for this job: the negative's tiles.json (never a stack, so never taken for one)."""
        return self.negative / TILES_FILE


def stitch_job(key: Path, task: StitchTask) -> StitchRecord:
    """Stitch `task` (known to the pool as `key`); a StitchError (a MedianscanError) names what is wrong."""
    del key
    from medianscan.stitch.pipeline import StitchOptions, stitch  # here: the daemon and the watcher never stitch
    from medianscan.stitch.store import TEMP_PREFIX

    # a stitch's own temps only: in a hot folder other tools write beside the negative too
    ours = (TEMP_PREFIX, f".{task.output.name}.", f".{task.output.with_suffix('.json').name}.")
    for left in remove_dead_temps(task.output.parent, ours):
        log.info("%s: removed what a stitch cut off left: %s", task.negative.name, left.name)
    options = StitchOptions(flat=task.flat, layout=task.layout, overlap=task.overlap, positions=task.positions)
    return stitch(list(task.tiles), task.output, options)
