"""A negative shot in tiles on the simulated XY stage: the plan walked (move, settle by live view, burst), each
tile a stack folder beneath the negative's, `tiles.json` written for the service's stitch; faults stop the run
with a sentence, the tiles shot stay, and a second run shoots only the missing ones.

Everything here is the real part: the simulated camera (live view and bursts of real DNGs), the GRBL emulator
driving the simulated sheet's stage (slip, an angle off square, backlash), the same GrblRig a serial port gets;
and libgphoto2's virtual camera where a body without live view is needed. The truth is the sheet's own
(tests/sheet_stage.py).
"""

from __future__ import annotations

import json
import math
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from medianscan.capture.camera.gphoto2.backend import Gphoto2Camera
from medianscan.capture.events import Answer
from medianscan.capture.rig.grbl_firmware import Faults
from medianscan.capture.rig.open import open_rig
from medianscan.capture.rig.tile_plan import StageScale, Wanted, make_plan
from medianscan.capture.rig.tile_run import RunSettings, TileProgress, TileRun, TileSummary, planned_place
from medianscan.cli.tiles_parts import Eyes
from medianscan.config.schema import CameraConfig, Config
from medianscan.library.tile_set import TILES_FILE, TileEntry, TileLayout, read_tile_set, write_tile_set
from tests.sheet_stage import STEP, SheetEyes, sheet_config, tiles_on, true_scale
from tests.vcam import RewritingCamera, VirtualCamera, virtual_camera


@pytest.mark.slow
def test_nine_tiles_are_shot_once_each_where_the_plan_puts_them_and_tiles_json_holds_the_plan(
    tmp_path: Path,
) -> None:
    tiles = tiles_on(tmp_path)
    summary = tiles.run().summary
    assert summary.complete, summary.said()
    assert re.match(r"tile run frame-001: 9 tiles shot of 9, settled by live view in \d\.\d\d s on average, \d+ "
                    r"moves in \d+ s; every tile shot", summary.said()), summary.said()  # fmt: skip
    assert sorted(tiles.eyes.shots) == sorted(t.name for t in tiles.plan.tiles)  # each once
    assert tiles.worst_miss() < STEP / 4  # each tile where the plan put it, off by the slip only (a mix-up: a step)
    tile_set = read_tile_set(tiles.negative)
    assert (tile_set.layout.columns, tile_set.layout.rows) == (3, 3) and tile_set.full_grid
    assert {t.folder for t in tile_set.tiles} == {t.name for t in tiles.plan.tiles}
    for entry in tile_set.tiles:  # each place in the stage's mm, and in photosites through the calibration
        assert entry.place is not None and entry.place.unit == "mm" and entry.place.photosites is not None
    positions = tile_set.positions()
    assert positions is not None and positions[0] == (0.0, 0.0)
    assert all((tiles.negative / t.name).is_dir() for t in tiles.plan.tiles)
    last = tiles.progress[-1]
    assert not last.under_way and all(line.state == "shot" for line in last.tiles)
    assert any(p.doing.startswith("settling tile-r2c2") for p in tiles.progress)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("faults", "said"),
    [
        (Faults(jam_at=6), r"did not finish a move of X[-+][\d.]+ Y[-+][\d.]+ mm within 3 s \(no reply\): a jam"),
        (Faults(alarm_at=6), r"refused a move of X[-+][\d.]+ Y[-+][\d.]+ mm: ALARM:1 \(hard limit triggered\)"),
        (Faults(vanish_at=6), r"the rig's port simulated vanished"),
    ],
    ids=["jam", "alarm", "port vanishes"],
)
def test_a_fault_stops_the_run_with_a_sentence_and_a_second_run_shoots_only_the_missing_tiles(
    tmp_path: Path, faults: Faults, said: str
) -> None:
    tiles = tiles_on(tmp_path)
    first = tiles.run(faults)
    stopped: TileSummary = first.summary
    assert not stopped.complete and stopped.stopped is not None and re.search(said, stopped.stopped), stopped.said()
    assert 1 <= len(stopped.shot) < 9 and stopped.said().endswith(
        f"scan-tiles again shoots the {9 - len(stopped.shot)} missing"
    )
    assert all((tiles.negative / name).is_dir() for name in stopped.shot)  # the tiles shot stay
    resume = first.resume()
    assert resume is not None and not resume.known  # a fault mid-move: the stage is found again in live view
    second = tiles.run(resume=resume).summary
    assert second.complete, second.said()
    assert sorted(second.kept) == sorted(stopped.shot)
    assert sorted(tiles.eyes.shots) == sorted(t.name for t in tiles.plan.tiles)  # across both runs, each tile once
    assert tiles.worst_miss() < STEP / 4


def gphoto_eyes(vcam: VirtualCamera) -> Eyes:
    """The CLI's eyes on libgphoto2's real virtual camera (it advertises live view and answers -6 Unsupported,
    and shoots), two frames a tile."""
    camera = Gphoto2Camera(CameraConfig(backend="gphoto2"), factory=lambda: RewritingCamera(vcam))
    camera.connect()
    return Eyes(camera, Config(frames=2))


def test_without_live_view_each_tile_settles_by_the_configured_wait_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stage is the simulated one; the eyes are libgphoto2's virtual camera (-6 on live view)."""
    cfg = sheet_config(tmp_path)
    scale = true_scale(cfg)
    plan = make_plan(Wanted(columns=2, rows=2), scale)
    progress: list[TileProgress] = []
    with virtual_camera(tmp_path, monkeypatch) as vcam:
        eyes = gphoto_eyes(vcam)
        rig = open_rig(cfg)
        try:
            run = TileRun(rig, eyes, plan, scale, tmp_path / "frame-001", stop=threading.Event(),
                          progress=progress.append, settings=RunSettings(wait_without_live_view=0.2))  # fmt: skip
            summary = run.run()
        finally:
            rig.close()
            eyes.camera.close()
    assert summary.complete and not summary.live_view, summary.said()
    assert "4 tiles shot of 4, each settled by a fixed wait (no live view on this body)" in summary.said()
    assert summary.settles == [0.2] * 4
    assert all(line.settled == "no live view: waited 0.2 s for the stage to settle" for line in progress[-1].tiles)
    assert all(len(list((tmp_path / "frame-001" / t.name).glob("*.dng"))) == 2 for t in plan.tiles)


def test_the_operator_stops_between_tiles_and_the_next_run_carries_on_from_there(tmp_path: Path) -> None:
    tiles = tiles_on(tmp_path)
    stop = threading.Event()
    real_shoot = tiles.eyes.shoot

    def shoot(stack: Path) -> Answer:  # the pedal pressed during the fourth tile's burst
        if len(tiles.eyes.shots) == 3:
            stop.set()
        return real_shoot(stack)

    tiles.eyes.shoot = shoot  # type: ignore[method-assign]
    rig = open_rig(tiles.cfg)
    try:
        first = TileRun(rig, tiles.eyes, tiles.plan, tiles.scale, tiles.negative, stop=stop)
        stopped = first.run()
    finally:
        rig.close()
    assert stopped.stopped == "by the operator" and len(stopped.shot) == 4, stopped.said()
    resume = first.resume()
    assert resume is not None and resume.known and resume.at == tiles.plan.tiles[3].stage_mm  # where it stopped
    second = tiles.run(resume=resume).summary
    assert second.complete and len(second.shot) == 5 and sorted(second.kept) == sorted(stopped.shot)
    assert sorted(tiles.eyes.shots) == sorted(t.name for t in tiles.plan.tiles)
    assert tiles.worst_miss() < STEP / 4


@pytest.mark.slow
def test_a_burst_cut_off_stops_the_run_its_frames_set_aside_and_the_next_run_shoots_that_tile_again(
    tmp_path: Path,
) -> None:
    """The simulated camera drops off the bus in the third tile's burst (a real BurstError, the body back after)."""
    tiles = tiles_on(tmp_path)
    tiles.cfg.camera.simulated.dead_after_frames = 7
    tiles.eyes = SheetEyes(tiles.cfg)
    first = tiles.run()
    stopped = first.summary
    assert stopped.stopped is not None and stopped.stopped.startswith("the burst of "), stopped.said()
    failed = tiles.eyes.shots[2]
    assert f"the burst of {failed} failed: " in stopped.stopped and len(stopped.shot) == 2
    assert not (tiles.negative / failed).exists()
    aside = list((tiles.negative / "discarded").glob(f"{failed}-*"))
    assert len(aside) == 1 and list(aside[0].glob("*.dng")), "its frames kept apart"
    second = tiles.run(resume=first.resume()).summary
    assert second.complete and failed in second.shot and len(second.shot) == 7, second.said()
    assert tiles.worst_miss() < STEP / 4


def test_a_tile_landing_far_from_the_plan_stops_the_run_and_each_landing_is_said(tmp_path: Path) -> None:
    """Closed loop: each tile's landing is measured in live view against the tile before (the picture's shift);
    a stage slipping 30 % of a move is stopped with the sentence, where 2 % is said and goes on."""
    slipping = tiles_on(tmp_path / "slipping", slip=0.3)
    summary = slipping.run().summary
    assert summary.stopped is not None and re.search(
        r"^tile-r\dc\d landed \d\.\d\d mm from where the plan put it \(more than 1\.86 mm\): is the stage losing "
        r"steps, or slipping\? The stage is where it stopped$", summary.stopped), summary.said()  # fmt: skip
    steady = tiles_on(tmp_path / "steady")
    progress: list[TileProgress] = []
    steady.progress = progress
    assert steady.run().summary.complete
    said = [line.settled for line in progress[-1].tiles]
    landed = [float(m[1]) for text in said if (m := re.search(r", landed (\d\.\d\d) mm off$", text))]
    assert len(landed) == 8 and max(landed) < 0.02 * 0.75 * 34.8 + 0.1, said  # each move's slip, the first unsaid


def test_a_tiles_planned_place_is_its_stage_move_in_mm_and_through_the_calibration_in_photosites(
    tmp_path: Path,
) -> None:
    """A stage 0.2 degrees off square, 25 photosites per mm on X and 24 on Y: tiles.json holds each tile's stage
    position in mm and the picture's place in photosites, each move through the axes' turned vectors, so a tile
    one column on lies several photosites lower as well as a step to the left (worked out here by hand, the
    picture moving against the film). An older tiles.json (places in photosites) reads as before, and one
    whose places are in mm alone gives the stitch no positions (the grid then)."""
    a = math.radians(0.2)
    kx, ky = 25.0, 24.0
    scale = StageScale((-kx * math.cos(a), -kx * math.sin(a)), (ky * math.sin(a), -ky * math.cos(a)), (6000, 4000))
    plan = make_plan(Wanted(columns=3, rows=2, overlap=0.25), scale)
    negative = tmp_path / "neg"
    written = write_tile_set(negative, TileLayout(3, 2, 0.25),
                             [TileEntry(t.name, t.column, t.row, planned_place(t)) for t in plan.tiles])  # fmt: skip
    places = json.loads((negative / TILES_FILE).read_text())["tiles"]
    assert all(p["place"]["unit"] == "mm" and set(p["place"]["photosites"]) == {"x", "y"} for p in places)
    tile_set = read_tile_set(negative)
    assert tile_set.tiles == written.tiles
    positions = tile_set.positions()
    assert positions is not None
    first = next(t for t in plan.tiles if (t.column, t.row) == (0, 0)).stage_mm
    for entry, (y, x) in zip(tile_set.ordered(), positions, strict=True):
        assert entry.place is not None
        dx, dy = entry.place.x - first[0], entry.place.y - first[1]  # the stage's move from the first tile, mm
        want_x = kx * dx * math.cos(a) - ky * dy * math.sin(a)
        want_y = kx * dx * math.sin(a) + ky * dy * math.cos(a)
        assert (x, y) == pytest.approx((want_x, want_y), abs=1e-6), entry.folder
    step = plan.step_mm[0] * kx
    assert positions[1][1] == pytest.approx(step * math.cos(a)) and positions[1][0] == pytest.approx(step * math.sin(a))
    assert positions[2][0] == pytest.approx(2 * step * math.sin(a)) and positions[2][0] > 30  # two columns on

    tiles: list[dict[str, Any]] = [{"folder": "a", "column": 0, "row": 0, "place": {"x": 0.0, "y": 0.0}},
             {"folder": "b", "column": 1, "row": 0, "place": {"x": 420.0, "y": 2.5, "unit": "photosites"}}]  # fmt: skip
    old = {"version": 1, "layout": {"columns": 2, "rows": 1, "overlap": 0.3}, "tiles": tiles}
    (negative / TILES_FILE).write_text(json.dumps(old))
    assert read_tile_set(negative).positions() == ((0.0, 0.0), (2.5, 420.0))
    for tile in tiles:
        tile["place"] = {"x": 1.5 * tile["column"], "y": 0.0, "unit": "mm"}
    (negative / TILES_FILE).write_text(json.dumps(old))
    assert read_tile_set(negative).positions() is None
