"""A strip of 120 film shot in tiles without hands (`scan-tiles --strip`): each negative as a tile run (tile_run)
into a negative folder of its own, then on to the next along X, found in live view, until the strip ends.

After a negative's last tile the stage goes a format's width and the nominal gap on from its centre, where the
gap to the next should be, and finds it there (next_negative: finding.py's column rule); the next negative's
tiles are planned from the gap's far edge (its centre half a format on), so the gaps' own spacing and the
stage's slip never add up along the strip; across it, the stage moves each way at the gap until live view shows
the film's edge (next_negative.film_edge), and the next negative is planned on the film's centre line. A blank
negative is skipped and named; no film where a negative should be is the strip's end, and the run ends there
with a sentence; a view after the advance that is the last tile's picture again (the stage or the film did not
move) stops the run, as the roll run does. Without live view each negative is one pitch (the format's width and
the gap) on, for the configured number, and it is said.
A stop (the operator's, between tiles) or a fault leaves the negative under way unfinished; the next run carries
it on and then goes on to the next, never shooting a finished negative again. Where a strip run left the stage is
kept marked as on the strip (Resume.on_strip), so a plain `scan-tiles` after it goes on along the strip too, one
negative (`most`), and leaves the stage on the strip for the run after; an advance that did not find the next
negative, or a fault on the way, drops it (the operator puts the next negative under the lens).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from medianscan.capture.rig.base import Rig
from medianscan.capture.rig.finding import decode, fingerprint, same_picture
from medianscan.capture.rig.next_negative import GapFinder, GapSight, film_edge
from medianscan.capture.rig.port import RigError
from medianscan.capture.rig.roll_run import Flag
from medianscan.capture.rig.settle import measure_noise, settle
from medianscan.capture.rig.strip_summary import StripSummary, ordinal
from medianscan.capture.rig.tile_plan import PlanError, Slack, StageScale, TilePlan, Wanted, area_mm, route
from medianscan.capture.rig.tile_run import Resume, RunSettings, TileEyes, TileProgress, TileRun, shot_already
from medianscan.config.schema import TilesConfig
from medianscan.errors import MedianscanError
from medianscan.library.tile_set import is_tiled, read_tile_set

log = logging.getLogger(__name__)

FAR_GAPS, FAR_SHARE = 3.0, 0.1  # a next negative found farther than 3 gaps or a tenth of a format from the pitch
MOST_NEGATIVES = 40  # a strip longer than this is a mistake (a 120 roll holds 8 to 16 negatives; 220 twice that)


@dataclass(frozen=True)
class StripSettings:
    format_mm: float  # the negative's width along the strip (the format's, without margins)
    gap_mm: float = 4.0  # the nominal gap between negatives
    without_live_view: int = 3  # negatives shot by the pitch on a body without live view
    film_mm: float | None = 61.0  # the film's height across the strip (120): its edges measured at each gap
    gap_variation_mm: float = 1.5  # a 120 camera's gaps vary this much: a gap seen wider is the next picture's
    # dark leading edge (a shadow, as clear as the base) read as base


def strip_settings(tiles: TilesConfig) -> StripSettings:
    """The strip's advance from the config: the format's width (the plan's area without its margins) and the gap;
    refused for a grid of tiles, which has no width to advance by."""
    wanted = Wanted.of(tiles)
    area = area_mm(wanted)
    if area is None:
        raise PlanError("scan-tiles --strip needs the negatives' width to advance by: give tiles.format (645, 6x6, "
                        "6x7, ...) or tiles.width_mm and height_mm, not columns and rows")  # fmt: skip
    return StripSettings(area[0] - 2 * wanted.margin_mm, tiles.gap_mm, tiles.negatives_without_live_view)


def complete(negative: Path) -> bool:
    """Every tile of the negative shot (its tiles.json written by a run, each tile's folder shot)."""
    if not is_tiled(negative):
        return False
    try:
        return all(shot_already(f) for f in read_tile_set(negative).folders())
    except MedianscanError:
        return False


def begin_at(
    last: Path | None, saved: tuple[Path, Resume] | None, fresh: Callable[[], Path]
) -> tuple[Path, Resume | None]:
    """The negative a strip run begins with: the last one shot in tiles while tiles of it are missing (carried
    on), or while the stage is known from it (the run advances from it first, never shooting it again); else a
    fresh one, centred under the lens by the operator."""
    if last is not None and is_tiled(last):
        resume = saved[1] if saved is not None and saved[0] == last else None
        if resume is not None or not complete(last):
            return last, resume
    return fresh(), None


def holds_anything(folder: Path) -> bool:
    """A file, or a folder with anything in it: not a fresh negative's folder."""
    return folder.exists() and (not folder.is_dir() or any(folder.iterdir()))


def on_the_strip(saved: tuple[Path, Resume] | None, last: Path | None) -> tuple[Path, Resume] | None:
    """Where a strip run left the stage, when the roll's last negative is the one it left it at: a plain scan-tiles
    then goes on along the strip (one negative) rather than taking the stage for a fresh negative's centre."""
    if saved is not None and saved[1].on_strip and last is not None and saved[0] == last:
        return saved
    return None


class StripRun:
    """One run along a strip of negatives (see the module)."""

    def __init__(self, rig: Rig, eyes: TileEyes, plan: TilePlan, scale: StageScale, *, first: Path,
                 name_next: Callable[[], Path], strip: StripSettings, stop: Flag,
                 progress: Callable[[TileProgress], None] = lambda p: None, settings: RunSettings | None = None,
                 resume: Resume | None = None, most: int | None = None) -> None:  # fmt: skip
        """`most`: negatives to shoot in this run (None: to the strip's end)."""
        self.rig, self.eyes, self.plan, self.scale = rig, eyes, plan, scale
        self.most = most
        self.lost = False  # the stage's place on the strip no longer known (the operator puts the next negative)
        self.advancing = False  # between one negative's last tile and the next one's plan
        self.negative, self.name_next, self.strip = first, name_next, strip
        self.next = first  # the next negative's folder, named before each advance
        self.stop, self.report = stop, progress
        self.settings = settings or RunSettings()
        self.where = resume  # the stage from the current negative's centre (None: at it, as the operator put it)
        self.summary = StripSummary()
        self.place = 1  # the current negative's place on the strip, counted from this run's first
        self.finder = GapFinder(advance=1 if scale.x_axis[0] <= 0 else -1)  # +X shows what lies that way
        self.noise: float | None = None
        self.started = time.time()
        self.last_progress: TileProgress | None = None

    def run(self) -> StripSummary:
        started = time.monotonic()
        try:
            self._run()
        except MedianscanError as exc:  # the rig's faults, live view that will not settle, a camera gone
            self.summary.stopped = str(exc)
            if self.advancing:
                self.lost = True
                self.summary.stopped += (" (on the way to the next negative: the stage's place on the strip is lost; "
                                         "put the next negative under the lens and run scan-tiles again)")  # fmt: skip
        finally:
            self.summary.seconds = time.monotonic() - started
            self._tell("done", under_way=False)
        log.info("%s", self.summary.said())
        return self.summary

    def resume(self) -> tuple[Path, Resume] | None:
        """Where the next run carries on (the negative, the stage from its centre); None once the strip ended."""
        if self.summary.ended or self.lost or self.where is None:
            return None
        return self.negative, replace(self.where, on_strip=True)

    def _tell(self, doing: str, *, under_way: bool = True) -> None:
        last = self.last_progress
        if last is None:
            return
        self.report(replace(last, doing=doing, under_way=under_way, started=self.started))

    def _progress(self, p: TileProgress) -> None:
        """A tile run's progress, said as the strip's (the strip goes on when one negative is done)."""
        self.last_progress = replace(p, strip=f"negative {self.place} on the strip", started=self.started,
                                     under_way=True)  # fmt: skip
        self.report(self.last_progress)

    def _run(self) -> None:
        for _ in range(MOST_NEGATIVES):
            shoot = not complete(self.negative) or self.where is None  # a finished negative is never shot again
            if shoot and not self._shoot_negative():
                return
            if shoot and self.most is not None and len(self.summary.negatives) >= self.most:
                self.summary.enough = True
                return
            if self.stop.is_set():
                self.summary.stopped = "by the operator, between negatives"
                return
            if not self._take_next():
                return
            self.advancing = True
            if not self._advance():
                return
            self.advancing = False
        self.summary.stopped = f"{MOST_NEGATIVES} negatives and no end of the strip in sight"

    def _take_next(self) -> bool:
        """The next negative's folder, named before the stage moves: one that holds anything already (another run's
        negative further up the numbering) stops the run, the stage's place kept, so two pictures never mix."""
        self.next = self.name_next()
        if holds_anything(self.next):
            self.summary.stopped = (f"{self.next.name}, the next negative's folder after {self.negative.name}, holds "
                                    "files already: nothing shot into it (two pictures in one negative), the stage "
                                    f"not moved and its place kept; move {self.next} aside, or name a fresh folder "
                                    "for the strip's next negative, and run again")  # fmt: skip
            return False
        return True

    def _shoot_negative(self) -> bool:
        """The current negative's tiles; False (the run ends) when its run stopped."""
        run = TileRun(self.rig, self.eyes, self.plan, self.scale, self.negative, stop=self.stop,
                      progress=self._progress, settings=self.settings, resume=self.where, home=False)  # fmt: skip
        done = run.run()
        self.where = replace(run.where(), on_strip=True)
        self.noise = run.noise if run.noise is not None else self.noise
        self.summary.tiles += len(done.shot)
        self.summary.live_view = done.live_view
        if not done.complete:
            self.summary.stopped = done.stopped or "a tile not shot"
            self.summary.last = done.said()
            return False
        self.summary.negatives.append(self.negative.name)
        return True

    def _go(self, target: tuple[float, float]) -> None:
        """Move the stage to `target` (mm from the current negative's centre), the play taken up as a plan's."""
        assert self.where is not None
        slack = Slack(*self.where.slack) if self.where.known else Slack()
        for move in route([target], self.where.at, self.plan.backlash_mm, slack):
            self.rig.move_xy(move.dx_mm, move.dy_mm)
        self.where = replace(self.where, at=target, slack=(slack.x, slack.y), known=True)

    def _look(self, what: str) -> np.ndarray | None:
        """The view once it stands still (RGB), or None without live view."""
        if self.noise is None:
            self.noise = measure_noise(self.eyes.preview)
        if self.noise is None:
            return None
        settle(self.eyes.preview, self.noise, timeout=self.settings.settle_timeout, wait_without_live_view=0.0,
               what=what)  # fmt: skip
        jpeg = self.eyes.preview()
        if jpeg is None:
            raise RigError("live view stopped during the strip run; the stage is where it stopped")
        return decode(jpeg)

    def _advance(self) -> bool:
        """On to the next negative: found in live view (or one pitch on without it); False when the strip ended
        or the run stops (the summary says why)."""
        strip, pitch = self.strip, self.strip.format_mm + self.strip.gap_mm
        if self.where is None:
            self.where = Resume((0.0, 0.0), (0, 0), known=False)
        before = self.where.last_view
        gap_at = (strip.format_mm / 2 + strip.gap_mm / 2, 0.0)
        self._tell(f"advancing to the gap after {self.negative.name}")
        self._go(gap_at)
        view = self._look(f"the advance after {self.negative.name}")
        if view is None:
            return self._by_pitch(pitch)
        if before is not None and same_picture(fingerprint(before[..., None]), fingerprint(view)):
            self.summary.stopped = (f"the view after the advance is the picture of {self.negative.name}'s last tile "
                                    "again: did the stage (or the film in its holder) move? Put the next negative "
                                    "under the lens and run scan-tiles --strip again")  # fmt: skip
            self.lost = True
            return False
        sight = self.finder.at_gap(view)
        at, skipped = gap_at[0], 0
        while sight.kind in ("further", "blank"):
            if sight.kind == "blank":
                log.info("the %s negative on the strip is blank (unexposed): skipped", ordinal(self.place + 1))
                self.summary.blanks.append(self.place + 1)
                self.place += 1
                skipped += 1
                at += pitch / 2  # from the blank's centre to the gap after it
            else:
                at += pitch / 2  # to where the next negative's centre should be
            self._tell(f"looking {'past the blank negative' if sight.kind == 'blank' else 'for the next negative'}")
            self._go((at, 0.0))
            view = self._look("the advance along the strip")
            assert view is not None
            sight = self.finder.at_gap(view) if sight.kind == "blank" else self.finder.at_centre(view)
            if len(self.summary.blanks) > MOST_NEGATIVES:
                break
        return self._found(sight, at, view.shape, (1 + skipped) * pitch)

    def _found(self, sight: GapSight, at: float, shape: tuple[int, ...], nominal: float) -> bool:
        if sight.kind == "end":
            self.summary.ended, self.summary.after = True, self.negative.name
            log.info("the strip ended: %s", sight.why)
            return False
        if sight.kind != "gap":
            self.summary.stopped = (f"the next negative after {self.negative.name} not found in live view: "
                                    f"{sight.why}; put the next negative under the lens and run scan-tiles --strip "
                                    "again")  # fmt: skip
            self.lost = True
            return False
        mm = self.scale.preview_ratio(shape)[0] / abs(self.scale.x_axis[0])  # mm per preview pixel
        start, gap = at + sight.start_px * mm, sight.gap_px * mm  # the next picture's first column, mm; the gap
        centre = start + self.strip.format_mm / 2
        off = centre - nominal
        far = max(FAR_GAPS * self.strip.gap_mm, FAR_SHARE * self.strip.format_mm)
        if abs(off) > far:
            self.summary.stopped = (f"the gap after {self.negative.name} found {off:+.1f} mm from where the format and "
                                    f"the gap put it (more than {far:.1f} mm): is the film slipping in its holder, "
                                    "or was that no gap? Put the next negative under the lens and run scan-tiles "
                                    "--strip again")  # fmt: skip
            self.lost = True
            return False
        log.info("the next negative found %.2f mm from the nominal pitch (gap %.2f mm)", off, gap)
        if gap > self.strip.gap_mm + self.strip.gap_variation_mm:  # its far edge not trusted: the near one's is
            self.summary.wide_gaps.append(self.negative.name)
            log.warning("the gap after %s is %.1f mm wide, more than %.1f and its %.1f: the next picture's leading "
                        "edge taken for base; planned from the gap's near edge", self.negative.name, gap,
                        self.strip.gap_mm, self.strip.gap_variation_mm)  # fmt: skip
            centre += self.strip.gap_mm - gap
        across = self._across(at)
        assert self.where is not None
        here = self.where
        self.where = Resume((here.at[0] - centre, here.at[1] - across), here.slack, here.known, on_strip=True)
        self.negative = self.next
        self.place += 1
        return True

    def _across(self, at: float) -> float:
        """The film's centre line across the strip (mm of stage Y from the current negative's), from its two edges
        seen in live view at the gap `at`: the next negative is planned on it, so the film's drift across the
        strip (a strip not square to the stage's X, the stage's slip) never adds up; 0 (as planned) when an edge
        is not seen, said in the log."""
        film = self.strip.film_mm
        if film is None:
            return 0.0
        view_y = self.scale.view_mm[1]
        reach = film / 2 - view_y / 4  # each edge a quarter of the view from its centre, as planned
        if reach <= 0:
            return 0.0
        edges = []
        for side in (1.0, -1.0):
            self._tell("looking at the film's edge across the strip")
            self._go((at, side * reach))
            view = self._look("the move to the film's edge")
            row = None if view is None else film_edge(view)
            if row is None or view is None:
                self.summary.edges_unseen += 1
                log.warning("the film's edge not seen at the gap after %s: the next negative planned on the stage's "
                         "line", self.negative.name)  # fmt: skip
                return 0.0
            seen = row * self.scale.preview_ratio(view.shape)[1]  # photosites from the view's centre
            edges.append(side * reach - seen / self.scale.y_axis[1])
        centre, height = (edges[0] + edges[1]) / 2, abs(edges[0] - edges[1])
        if abs(height - film) > max(3.0, 0.1 * film):
            self.summary.edges_unseen += 1
            log.warning("the film's edges at the gap after %s are %.1f mm apart, not %.1f: the next negative planned "
                     "on the stage's line", self.negative.name, height, film)  # fmt: skip
            return 0.0
        log.info("the film across the strip: %.2f mm high, its centre %+.2f mm from the last negative's",
                 height, centre)  # fmt: skip
        return centre

    def _by_pitch(self, pitch: float) -> bool:
        """No live view: the next negative one pitch on, up to the configured number."""
        self.summary.live_view = False
        if self.place >= self.strip.without_live_view:
            self.summary.ended, self.summary.after = True, self.negative.name
            return False
        log.warning("no live view on this body: the next negative placed by the pitch (%.1f mm)", pitch)
        assert self.where is not None
        here = self.where
        self.where = Resume((here.at[0] - pitch, here.at[1]), here.slack, here.known, on_strip=True)
        self.negative = self.next
        self.place += 1
        return True
