"""A negative shot in tiles on the simulated XY stage: the plan walked (move, settle by live view, burst), each
tile a stack folder beneath the negative's, `tiles.json` written for the service's stitch; faults stop the run
with a sentence, the tiles shot stay, and a second run shoots only the missing ones.

Everything here is the real part: the simulated camera (live view and bursts of real DNGs), the GRBL emulator
driving the simulated sheet's stage (slip, an angle off square, backlash), the same GrblRig a serial port gets,
the blend and the stitch. The truth is the sheet's own: which photosite of its picture the view's corner saw at
each burst (`sheet.view_origin_px()`).
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from medianscan.capture.camera.simulated.camera import SimulatedCamera
from medianscan.capture.camera.simulated.sheet import SimulatedSheet, sheet_of
from medianscan.capture.events import Answer
from medianscan.capture.rig.grbl_firmware import Faults
from medianscan.capture.rig.open import open_rig
from medianscan.capture.rig.tile_plan import StageScale, TilePlan, Wanted, make_plan
from medianscan.capture.rig.tile_run import Resume, RunSettings, TileProgress, TileRun, TileSummary
from medianscan.config.schema import Config, SheetConfig
from medianscan.library.tile_set import read_tile_set
from tests.daemon_thread import capture_config

MM_PER_PIXEL = 0.0453  # a 768 x 512 view of 34.8 x 23.2 mm: 3x3 tiles at 25 % cover a 6x7 negative (70 x 56 mm)
STEP = 0.75 * 768  # photosites from one tile to the next along X (2 % slip: each move lands up to 12 off)


def sheet_config(tmp_path: Path, **sheet: object) -> Config:
    cfg = capture_config(tmp_path / "library")
    given: dict[str, object] = {"width_mm": 70.0, "height_mm": 56.0, "mm_per_pixel": MM_PER_PIXEL, "slip": 0.02,
                                "rotation_degrees": 0.2, "backlash_mm": 0.05, "seed": 5, **sheet}  # fmt: skip
    cfg.camera.simulated.sheet = SheetConfig(**given)  # type: ignore[arg-type]
    cfg.rig.port, cfg.rig.axes = "simulated", "xy"
    cfg.rig.move_timeout_seconds = 3.0
    return cfg


def true_scale(cfg: Config) -> StageScale:
    """The stage's scale as the sheet is built (what a calibration would measure, without its errors)."""
    sheet = cfg.camera.simulated.sheet
    a, k = math.radians(sheet.rotation_degrees), 1 / sheet.mm_per_pixel
    sim = cfg.camera.simulated
    x_axis, y_axis = (-k * math.cos(a), -k * math.sin(a)), (k * math.sin(a), -k * math.cos(a))
    return StageScale(x_axis, y_axis, (sim.width, sim.height), (sheet.backlash_mm, sheet.backlash_mm))


@dataclass
class SheetEyes:
    """The simulated camera's live view and bursts, noting where on the sheet's picture each tile really was."""

    cfg: Config
    frames: int = 3
    at: dict[str, tuple[float, float]] = field(default_factory=dict)  # tile -> the view's corner on the picture

    def __post_init__(self) -> None:
        self.camera = SimulatedCamera(self.cfg.camera)
        self.camera.connect()
        found = sheet_of(self.cfg.camera.simulated)
        assert found is not None
        self.sheet: SimulatedSheet = found
        self.shots: list[str] = []

    def preview(self) -> bytes | None:
        return self.camera.preview()

    def shoot(self, stack: Path) -> Answer:
        self.at[stack.name] = self.sheet.view_origin_px()
        self.shots.append(stack.name)
        record = self.camera.burst(self.frames, stack, stack.name)
        return Answer(True, "capture", f"{len(record.frames)} frames", stack=str(stack))


@dataclass
class Tiles:
    cfg: Config
    eyes: SheetEyes
    plan: TilePlan
    scale: StageScale
    negative: Path
    progress: list[TileProgress] = field(default_factory=list)

    def run(self, faults: Faults | None = None, resume: Resume | None = None) -> TileRun:
        rig = open_rig(self.cfg, faults)
        settings = RunSettings(settle_timeout=5.0)
        run = TileRun(rig, self.eyes, self.plan, self.scale, self.negative, stop=threading.Event(),
                      progress=self.progress.append, resume=resume, settings=settings)  # fmt: skip
        try:
            run.run()
        finally:
            rig.close()
        return run

    def worst_miss(self) -> float:
        """The largest distance (photosites) of a tile's true place from the plan's, against the first tile's."""
        first = self.plan.tiles[0]
        t0 = np.array(self.eyes.at[first.name])
        worst = 0.0
        for tile in self.plan.tiles:
            seen = np.array(self.eyes.at[tile.name]) - t0  # (x, y) on the picture
            want = np.array([tile.prior[1] - first.prior[1], tile.prior[0] - first.prior[0]])
            worst = max(worst, float(np.hypot(*(seen - want))))
        return worst


def tiles_on(tmp_path: Path, **sheet: object) -> Tiles:
    cfg = sheet_config(tmp_path, **sheet)
    scale = true_scale(cfg)
    plan = make_plan(Wanted(columns=3, rows=3), scale)
    return Tiles(cfg, SheetEyes(cfg), plan, scale, tmp_path / "library" / "roll" / "frame-001")


@pytest.mark.slow
def test_nine_tiles_are_shot_once_each_where_the_plan_puts_them_and_tiles_json_holds_the_plan(
    tmp_path: Path,
) -> None:
    tiles = tiles_on(tmp_path)
    summary = tiles.run().summary
    assert summary.complete, summary.said()
    print(summary.said(), f"worst miss {tiles.worst_miss():.1f} photosites")
    assert re.match(r"tile run frame-001: 9 tiles shot of 9, settled by live view in \d\.\d\d s on average, \d+ "
                    r"moves in \d+ s; every tile shot", summary.said()), summary.said()  # fmt: skip
    assert sorted(tiles.eyes.shots) == sorted(t.name for t in tiles.plan.tiles)  # each once
    assert tiles.worst_miss() < STEP / 4  # each tile where the plan put it, off by the slip only (a mix-up: a step)
    tile_set = read_tile_set(tiles.negative)
    assert (tile_set.layout.columns, tile_set.layout.rows) == (3, 3) and tile_set.full_grid
    assert {t.folder for t in tile_set.tiles} == {t.name for t in tiles.plan.tiles}
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
