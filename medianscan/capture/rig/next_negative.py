"""Finding the next negative of a 120 strip in live view, on an XY stage at 1:1, where the view shows only part of
a negative.

After a negative's last tile the stage goes to where the gap to the next should be (the format's width and the
nominal gap on from the negative's centre): the view then shows the end of the negative shot, the gap's clear
base, and the start of the next. Columns are classed by finding.py's rule (column_profile, column_runs): clear
base, picture, no film. The base's level is the view's brightest columns until a gap has been seen, then that
gap's (the same spot in the view each time, so the same falloff of the light). The clear run nearest the centre
is the gap, and the next negative starts where picture follows it; a view where that run has detail down its
columns (a picture's thin part, not base) or where picture stands no darker than the base is lost. Clear base
running to the view's far edge is either a blank (unexposed) negative or the trailer: a look at where the next
negative's centre should be tells them apart (no film there: the strip's end; clear base across the middle:
blank). Everything is said in the order the strip advances: the next negative comes in from the side of the view
a positive X move brings to the centre. Across the strip the view sees none of the film's edges at the gap; moved
across, it sees one (film_edge), and the strip run takes the film's centre line from the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from medianscan.capture.rig.finding import FILM_NEEDED, NO_FILM_BLUER, Run, column_profile, column_runs

GAP_CONTRAST = 0.9  # the pictures beside a gap: their columns' median below this share of the base's level
MIDDLE = 0.5  # a blank negative: clear base across this middle share of the view (the light falls off beyond)
LEVEL_PERCENTILE = 95  # the base's level in a view with a gap, before one was seen: its brightest columns
FLAT = 0.05  # clear base is flat down a column: its rows' spread under this share of the level (a picture's is not)

Columns = tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]
GapKind = Literal["gap", "further", "blank", "end", "lost"]


@dataclass(frozen=True)
class GapSight:
    """What a view at the gap (or at the next negative's centre) shows: the next negative's first column
    (`start_px`: preview pixels from the view's centre, positive the way the strip advances), clear base on to
    the view's edge (look further), a blank negative, the strip's end, or nothing to go on (`why`)."""

    kind: GapKind
    start_px: float = 0.0
    gap_px: float = 0.0  # the gap's width, when both its edges are in view
    why: str = ""


class GapFinder:
    """Finds the gap to the next negative in each look; keeps the base's level once a gap was seen."""

    def __init__(self, advance: int = 1) -> None:
        self.advance = 1 if advance >= 0 else -1  # +1: the next negative comes in from the view's right
        self.base: tuple[float, float] | None = None  # the clear base's level and blueness, once a gap was seen

    def _runs(self, rgb: npt.NDArray[np.float32]) -> tuple[list[Run], Columns, float, int]:
        """The view's columns as runs in the advance's order, their brightness, blueness and spread down the
        column, the base's level, the view's width."""
        profile, blue = column_profile(rgb)
        h = rgb.shape[0]
        spread = rgb[h // 4 : 3 * h // 4].mean(axis=-1).std(axis=0).astype(np.float32)
        if self.advance < 0:
            profile, blue, spread = profile[::-1].copy(), blue[::-1].copy(), spread[::-1].copy()
        if self.base is not None:
            level, base_blue = self.base
        else:
            base_blue = float(np.percentile(blue, 10))  # film (an orange mask) is the least blue thing in view
            film = blue <= NO_FILM_BLUER * base_blue
            level = float(np.percentile(profile[film] if film.any() else profile, LEVEL_PERCENTILE))
        runs, _ = column_runs(profile, blue, level, base_blue, level)
        return _dim_base(runs, profile, level), (profile, blue, spread), level, len(profile)

    def at_gap(self, rgb: npt.NDArray[np.float32]) -> GapSight:
        """The view where the gap should be."""
        runs, (profile, blue, spread), level, w = self._runs(rgb)
        centre = w / 2
        clear = [r for r in runs if r.kind == "clear"]
        if not clear:
            return GapSight("lost", why="no clear base in view where the gap to the next negative should be")
        gap = min(clear, key=lambda r: 0.0 if r.start <= centre < r.end else min(abs(r.start - centre),
                                                                                 abs(r.end - centre)))  # fmt: skip
        if float(np.median(spread[gap.start : gap.end])) > FLAT * level:
            return GapSight("lost", why="the brightest columns in view have detail down them: picture, not the clear "
                                        "base of a gap")  # fmt: skip
        picture = np.concatenate([profile[r.start : r.end] for r in runs if r.kind == "picture"] or [profile[:0]])
        if picture.size and float(np.median(picture)) > GAP_CONTRAST * level:
            return GapSight("lost", why="the picture beside the clear base is nearly as bright as the base: no gap "
                                        "to tell")  # fmt: skip
        at = runs.index(gap)
        after = runs[at + 1] if at + 1 < len(runs) else None
        if after is not None and after.kind == "none":
            return GapSight("end", why="clear base running into the bare light: the strip's end")
        if after is None:  # clear base to the view's far edge: a blank negative, or the trailer
            return GapSight("further", why="clear base on to the edge of the view")
        before = runs[at - 1] if at > 0 else None
        width = float(gap.end - gap.start) if before is not None and before.kind == "picture" else 0.0
        q = (gap.end - gap.start) // 4  # the gap's middle: its edges are blurred into the pictures
        self.base = (float(np.median(profile[gap.start + q : gap.end - q])),
                     float(np.median(blue[gap.start + q : gap.end - q])))  # fmt: skip
        return GapSight("gap", start_px=gap.end - centre, gap_px=width)

    def at_centre(self, rgb: npt.NDArray[np.float32]) -> GapSight:
        """The view where the next negative's centre should be (the gap's view showed clear base to its edge)."""
        runs, _, _, w = self._runs(rgb)
        centre = w / 2
        none = sum(r.end - r.start for r in runs if r.kind == "none")
        here = next(r for r in runs if r.start <= centre < r.end)
        if none > (1 - FILM_NEEDED) * w or here.kind == "none":
            return GapSight("end", why="the view shows the bare light where the next negative should be")
        middle = slice(int(w * (1 - MIDDLE) / 2), int(w * (1 + MIDDLE) / 2))
        kinds = np.zeros(w, dtype=bool)
        for r in runs:
            kinds[r.start : r.end] = r.kind == "picture"
        if not kinds[middle].any():
            return GapSight("blank", why="clear base across the view where the next negative should be")
        at = next((k for k, r in enumerate(runs) if r.kind == "picture"), None)
        if at is None or at == 0:
            return GapSight("lost", why="a picture where the next negative's start should be, and no gap before "
                                        "it in view")  # fmt: skip
        return GapSight("gap", start_px=runs[at].start - centre)


def _dim_base(runs: list[Run], profile: npt.NDArray[np.float32], level: float) -> list[Run]:
    """The runs with 'picture' no darker than GAP_CONTRAST x the base taken for clear base (the light falls off
    towards the view's edges, taking clear base there under CLEAR x the centre's level), neighbours joined."""
    out: list[Run] = []
    for run in runs:
        kind = run.kind
        if kind == "picture" and float(np.median(profile[run.start : run.end])) >= GAP_CONTRAST * level:
            kind = "clear"
        if out and out[-1].kind == kind:
            out[-1] = Run(out[-1].start, run.end, kind)
        else:
            out.append(Run(run.start, run.end, kind))
    return out


def film_edge(rgb: npt.NDArray[np.float32]) -> float | None:
    """The film's edge along the strip in a view that shows it (the stage moved across the strip, at a gap): the
    row where the bare light beyond the film begins, in preview pixels from the view's centre (positive down),
    interpolated between rows; None when the view shows no one edge (film or light across it, light at both
    ends). Rows are told by their blueness (blue over red, median across the row): the bare light is bluer than
    an orange mask by NO_FILM_BLUER (finding.py's rule), the rebate's clear base and the picture are not."""
    blue = np.median(rgb[..., 2] / (rgb[..., 0] + 1.0), axis=1)
    film, light = float(np.percentile(blue, 10)), float(np.percentile(blue, 90))
    if light <= NO_FILM_BLUER * film:
        return None
    cut = (film + light) / 2
    bare = blue > cut
    h = len(blue)
    changes = np.flatnonzero(np.diff(bare.astype(np.int8)))
    if len(changes) != 1:  # the light in one run at one end, the film in the other
        return None
    k = int(changes[0])  # rows k and k + 1 straddle the edge
    step = float(blue[k + 1] - blue[k])
    row = k + (cut - float(blue[k])) / step if step else k + 0.5
    return row + 0.5 - h / 2
