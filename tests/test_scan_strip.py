"""A strip of 120 film shot in tiles without hands (`scan-tiles --strip`): three 6x7 negatives on the simulated XY
stage (gaps of 4 +- 1.5 mm drawn by seed, 2 % slip, 0.2 degrees off square, 0.05 mm of play), 2x2 tiles each;
after each negative the gap to the next is found in live view and the next planned from its far edge; each
negative in a folder of its own, named by the library as a press's, stitched by the service's own job and
compared with its own picture; a blank negative skipped and named, the strip's end found, a stop mid-strip
carried on by a second run that never shoots a finished negative again, a stage that did not move stopping the
run. Everything is the real part: the simulated camera's live view and bursts, the GRBL emulator over the
simulated stage, the GrblRig a serial port gets. (The stage's `held` is a test's fault: the controller counts
a move the carriage never makes, which the emulator cannot do by itself.)"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

import numpy as np
import pytest

from medianscan.blend.options import BlendOptions
from medianscan.blend.pipeline import blend_stack
from medianscan.capture.camera.simulated.scene import BASE_TRANSMISSION
from medianscan.capture.rig.open import open_rig
from medianscan.capture.rig.tile_run import RunSettings
from medianscan.capture.rig.tile_strip import StripRun, StripSettings
from medianscan.library.flats import FLAT_STEM
from medianscan.library.tile_set import read_tile_set
from medianscan.service.stitch_job import stitch_job
from medianscan.service.tiled import TiledNegatives
from tests.sheet_stage import StripTiles, strip_on
from tests.test_scan_tiles import against_picture
from tests.test_tile_run import gphoto_eyes
from tests.vcam import virtual_camera

SLIP_MISS = 40  # photosites: a tile's place against the plan over its negative, off by the slip of the advance
# and the tile moves only (2.6 mm: 2 % of the 75 mm advance and of the tile moves); a negative planned from the
# wrong gap would be off by a gap or a negative (60 or 1000+ photosites)


@pytest.mark.slow
def test_a_strip_of_three_6x7_negatives_is_three_folders_each_stitched_as_its_own_picture(tmp_path: Path) -> None:
    strip = strip_on(tmp_path)
    gaps = strip.eyes.sheet.strip.gaps_mm if strip.eyes.sheet.strip else ()
    assert max(gaps) - min(gaps) > 1.0, gaps  # the gaps differ, as a 120 camera spaces its frames
    run = strip.run()
    summary = run.summary
    assert summary.ended and summary.stopped is None, summary.said()
    names = [f"frame-{k:03d}" for k in (1, 2, 3)]
    assert summary.negatives == names, summary.said()
    assert re.match(r"strip run: 3 negatives shot \(frame-001 to frame-003\), 12 tiles in \d+ s; the strip ended "
                    r"after 3 negatives; the stage is past its end: put the next strip's first negative under the "
                    r"lens for the next run$", summary.said()), summary.said()  # fmt: skip
    assert len(strip.eyes.shot_stacks) == len(set(strip.eyes.shot_stacks)) == 12  # each tile once
    assert any(p.strip == "negative 2 on the strip" and p.doing.startswith("settling") for p in strip.progress)
    assert not strip.progress[-1].under_way and all(p.under_way for p in strip.progress[:-1])
    flat = tmp_path / "flat"
    strip.eyes.camera.burst(9, flat, FLAT_STEM)  # the bare light: the lens's falloff, for the stitch to divide out
    for place, name in enumerate(names, start=1):
        assert max(strip.misses(name, place)) < SLIP_MISS, (name, strip.misses(name, place))
        stitched_as_its_picture(strip, name, place, flat)


def stitched_as_its_picture(strip: StripTiles, name: str, place: int, flat: Path) -> None:
    """The negative `name` (the strip's `place`th) blended and stitched by the service's own job, each tile where
    the sheet really showed it, the mosaic against the negative's own picture."""
    sheet = strip.eyes.sheet
    negative = strip.library.roll / name
    for folder in read_tile_set(negative).folders():
        blend_stack(folder, BlendOptions())
    service = TiledNegatives(lambda: "median", flat=lambda tile_set: flat)
    service.check(negative)
    assert len(service.due) == 1, name
    record = stitch_job(service.due[0].key, service.due[0])
    assert record.output.is_file() and record.output.parent == negative.resolve()
    ordered = read_tile_set(negative).ordered()
    left, top, width, height = sheet.negative_box(place)
    origin = np.array(strip.eyes.placed[(name, ordered[0].folder)]) - (left, top)  # on its own picture
    misses = []
    for entry, placed in zip(ordered, record.tiles, strict=True):
        want = np.array(strip.eyes.placed[(name, entry.folder)]) - (left, top) - origin
        misses.append(float(np.abs(np.array([placed.x - record.tiles[0].x, placed.y - record.tiles[0].y])
                                   - want).max()))  # fmt: skip
    own = sheet.picture[top : top + height, left : left + width, 0]
    median, seams = against_picture(record, own, origin)
    print(f"{name}: tiles within {max(misses):.3f} photosites; against its own picture {median:.2%} (median), "
          f"seams' worst 1 % {seams:.2%}")  # fmt: skip
    assert max(misses) < 0.5, (name, misses)
    assert median < 0.005 and seams < 0.02, name


def test_a_blank_negative_is_skipped_and_named_and_the_strip_ends_after_the_last(tmp_path: Path) -> None:
    strip = strip_on(tmp_path, blank=[2])
    summary = strip.run().summary
    assert summary.ended, summary.said()
    assert summary.negatives == ["frame-001", "frame-002"] and summary.blanks == [2], summary.said()
    assert "1 blank negative skipped (the 2nd on the strip); the strip ended after 2 negatives" in summary.said()
    assert max(strip.misses("frame-001", 1)) < SLIP_MISS
    assert max(strip.misses("frame-002", 3)) < SLIP_MISS  # the second folder is the strip's third negative
    assert strip.saved is None  # the strip ended: the next run starts on a new strip, centred by the operator


def test_a_stop_mid_strip_is_carried_on_by_a_second_run_that_never_shoots_a_finished_negative_again(
    tmp_path: Path,
) -> None:
    strip = strip_on(tmp_path)
    stop = threading.Event()
    strip.eyes.after_shot = lambda shot: stop.set() if shot == 6 else None  # in the second negative
    first = strip.run(stop).summary
    assert not first.ended and first.stopped == "by the operator", first.said()
    assert first.negatives == ["frame-001"] and first.tiles == 6
    assert "scan-tiles again shoots the 2 missing" in first.said()
    assert strip.saved is not None and strip.saved[0].name == "frame-002"
    strip.eyes.after_shot = None
    second = strip.run().summary
    assert second.ended and second.negatives == ["frame-002", "frame-003"] and second.tiles == 6, second.said()
    shot = strip.eyes.shot_stacks
    assert len(shot) == len(set(shot)) == 12, shot  # every tile of the strip once, none of frame-001 again
    assert max(strip.misses("frame-002", 2)) < SLIP_MISS and max(strip.misses("frame-003", 3)) < SLIP_MISS


def test_a_stop_between_negatives_goes_on_from_the_finished_one_without_shooting_it(tmp_path: Path) -> None:
    strip = strip_on(tmp_path)
    stop = threading.Event()
    strip.eyes.after_shot = lambda shot: stop.set() if shot == 4 else None  # the first negative's last tile
    first = strip.run(stop).summary
    assert first.negatives == ["frame-001"] and first.stopped == "by the operator, between negatives", first.said()
    strip.eyes.after_shot = None
    second = strip.run().summary
    assert second.ended and second.negatives == ["frame-002", "frame-003"], second.said()
    assert len(strip.eyes.shot_stacks) == len(set(strip.eyes.shot_stacks)) == 12
    assert max(strip.misses("frame-002", 2)) < SLIP_MISS


@pytest.mark.slow
def test_a_plain_scan_tiles_after_a_strip_stopped_between_negatives_shoots_the_next_one_whole(tmp_path: Path) -> None:
    """The stage was left at the first negative's last tile: a plain scan-tiles goes on along the strip to the
    second negative (never taking the stage for a fresh negative's centre), shoots it whole, and leaves the stage
    on the strip, so a strip run after it goes on to the third."""
    strip = strip_on(tmp_path)
    stop = threading.Event()
    strip.eyes.after_shot = lambda shot: stop.set() if shot == 4 else None  # the first negative's last tile
    first = strip.run(stop).summary
    assert first.stopped == "by the operator, between negatives", first.said()
    strip.eyes.after_shot = None
    plain = strip.run(plain=True).summary
    assert plain.enough and plain.negatives == ["frame-002"] and plain.tiles == 4, plain.said()
    assert plain.said().endswith("one negative, as scan-tiles without --strip asks: the stage stays on the strip, "
                                 "and the next scan-tiles goes on to the next negative"), plain.said()  # fmt: skip
    assert max(strip.misses("frame-002", 2)) < SLIP_MISS
    assert strip.saved is not None and strip.saved[0].name == "frame-002" and strip.saved[1].on_strip
    flat = tmp_path / "flat"
    strip.eyes.camera.burst(9, flat, FLAT_STEM)
    stitched_as_its_picture(strip, "frame-002", 2, flat)
    rest = strip.run().summary
    assert rest.ended and rest.negatives == ["frame-003"], rest.said()
    assert max(strip.misses("frame-003", 3)) < SLIP_MISS
    assert len(strip.eyes.shot_stacks) == len(set(strip.eyes.shot_stacks)) == 12
    assert strip.saved is None  # the strip ended: the next run is a fresh negative's, centred by the operator


@pytest.mark.slow
def test_the_films_drift_across_the_strip_is_measured_at_each_gap_and_never_adds_up(tmp_path: Path) -> None:
    """Five negatives on the 0.2-degree stage with 2 % slip: the stage's line leaves the film by 0.3-0.4 mm a
    negative (1.5 mm by the fifth on this seed, measured with the edges unseen), more than the tiles' 1 mm margin.
    With the film's two edges seen at each gap every negative is planned on the film's centre line."""
    strip = strip_on(tmp_path, negatives=5, seed=11)
    summary = strip.run().summary
    assert summary.ended and len(summary.negatives) == 5, summary.said()
    across = [strip.across(name, place) for place, name in enumerate(summary.negatives, start=1)]
    print("across the strip, mm:", [f"{a:+.2f}" for a in across])
    assert max(abs(a) for a in across) < 0.6, across


def test_a_stage_that_did_not_move_on_the_advance_stops_the_run_with_a_sentence(tmp_path: Path) -> None:
    strip = strip_on(tmp_path)
    sheet = strip.eyes.sheet

    def hold(shot: int) -> None:
        if shot == 4:  # after the first negative's last tile, the carriage no longer follows the controller
            sheet.stage.held = True

    strip.eyes.after_shot = hold
    summary = strip.run().summary
    assert summary.negatives == ["frame-001"] and not summary.ended
    assert summary.stopped is not None and summary.stopped.startswith(
        "the view after the advance is the picture of frame-001's last tile again: did the stage"
    ), summary.said()
    assert not (strip.library.roll / "frame-002").exists()  # nothing shot twice, no folder for a negative not found


def test_without_live_view_each_negative_is_one_pitch_on_for_the_configured_count_and_it_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stage is the simulated strip's; the eyes are libgphoto2's virtual camera (-6 on live view)."""
    strip = strip_on(tmp_path)
    library = strip.library
    with virtual_camera(tmp_path, monkeypatch) as vcam:
        eyes = gphoto_eyes(vcam)
        rig = open_rig(strip.cfg)
        try:
            run = StripRun(rig, eyes, strip.plan, strip.scale, first=library.roll / library.next_negative(),
                           name_next=lambda: library.roll / library.next_negative(),
                           strip=StripSettings(70.0, 4.0, without_live_view=2), stop=threading.Event(),
                           settings=RunSettings(wait_without_live_view=0.1))  # fmt: skip
            summary = run.run()
        finally:
            rig.close()
            eyes.camera.close()
    said = summary.said()
    assert summary.ended and not summary.live_view and summary.negatives == ["frame-001", "frame-002"], said
    assert "each negative placed by the pitch alone (no live view on this body); 2 negatives one pitch apart, as " \
           "tiles.negatives_without_live_view says" in said, said  # fmt: skip
    assert all(len(list((library.roll / "frame-002" / t.name).glob("*.dng"))) == 2 for t in strip.plan.tiles)
    x, _ = strip.eyes.sheet.stage.commanded()  # the controller's count: the second negative one pitch (74 mm) on,
    assert x == pytest.approx(74.0 + 37.0, abs=0.06), x  # and the look for a third half a pitch past (+ a take-up)


def test_a_next_negative_found_far_from_the_pitch_stops_the_run_with_a_sentence(tmp_path: Path) -> None:
    """The strip's gaps are 12 mm where tiles.gap_mm says 1: the negative found 11 mm past where the format and
    the gap put it (more than a tenth of the format) is not taken."""
    strip = strip_on(tmp_path, gap_mm=12.0, gap_variation_mm=0.0)
    strip.cfg.tiles.gap_mm = 1.0
    summary = strip.run().summary
    assert summary.negatives == ["frame-001"] and not summary.ended, summary.said()
    assert summary.stopped is not None and re.match(
        r"the gap after frame-001 found \+1\d\.\d mm from where the format and the gap put it \(more than 7\.0 mm\)",
        summary.stopped,
    ), summary.said()


def test_the_films_edges_not_seen_at_a_gap_are_warned_and_counted_in_the_summary(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The strip's film is 70 mm high where the run expects 120's 61: the edges it finds at each gap are not the
    film's, so each of the two gaps' next negative is planned on the stage's line, warned and said."""
    strip = strip_on(tmp_path, film_mm=70.0)
    with caplog.at_level(logging.WARNING, logger="medianscan.capture.rig.tile_strip"):
        summary = strip.run().summary
    assert summary.ended and len(summary.negatives) == 3 and summary.edges_unseen == 2, summary.said()
    assert "; the film's edges not seen at 2 gaps: those negatives planned on the stage's line" in summary.said()
    warned = [r for r in caplog.records if r.levelno == logging.WARNING and "the film's edges at the gap" in r.message]
    assert len(warned) == 2, caplog.text


def test_a_next_picture_whose_leading_edge_reads_as_base_is_planned_from_the_gaps_near_edge(tmp_path: Path) -> None:
    """The second negative's first 5 mm are as clear as the base (a deep shadow along its edge, which a negative
    shows clear): the gap after frame-001 reads 9 mm where the strip's gaps are 4. Its far edge is not trusted:
    frame-002 is planned from the gap's near edge and the nominal gap, and it is said; from the far edge it
    would be 5 mm (76 photosites) off. (The sheet's picture is changed by the test: the simulated strip draws no
    shadow at a negative's edge.)"""
    strip = strip_on(tmp_path, gap_variation_mm=0.0)
    sheet = strip.eyes.sheet
    left, top, _, height = sheet.negative_box(2)
    sheet.picture[top : top + height, left : left + round(5.0 / sheet.mm_per_photosite)] = BASE_TRANSMISSION
    summary = strip.run().summary
    assert summary.ended and len(summary.negatives) == 3 and summary.wide_gaps == ["frame-001"], summary.said()
    assert "; the gap after frame-001 seen wider than tiles.gap_mm allows: the next negative planned from the gap's " \
           "near edge and the nominal gap" in summary.said(), summary.said()  # fmt: skip
    assert max(strip.misses("frame-002", 2)) < SLIP_MISS, strip.misses("frame-002", 2)
    assert max(strip.misses("frame-003", 3)) < SLIP_MISS, strip.misses("frame-003", 3)
