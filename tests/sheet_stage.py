"""The simulated XY stage and sheet for the tile run's tests: a 6x7 negative (2 % slip, 0.2 degrees off square,
0.05 mm of play), the simulated camera's live view and bursts noting where on the sheet's picture each tile
really was (`sheet.view_origin_px()`, the truth), and a run of a plan over it through the real GrblRig."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import rawpy

from medianscan.capture.camera.simulated.camera import SimulatedCamera
from medianscan.capture.camera.simulated.sheet import SimulatedSheet, sheet_of
from medianscan.capture.events import Answer
from medianscan.capture.rig import calibrate_rig
from medianscan.capture.rig.calibrate_rig import AxisMeasure, RigCalibration
from medianscan.capture.rig.grbl_firmware import Faults
from medianscan.capture.rig.open import open_rig
from medianscan.capture.rig.tile_plan import StageScale, TilePlan, Wanted, make_plan
from medianscan.capture.rig.tile_run import Resume, RunSettings, TileProgress, TileRun
from medianscan.capture.rig.tile_strip import StripRun, StripSettings, begin_at, on_the_strip
from medianscan.config.schema import Config, SheetConfig
from medianscan.library.rolls import Library
from tests.daemon_thread import capture_config

MM_PER_PIXEL = 0.0453  # a 768 x 512 view of 34.8 x 23.2 mm: 3x3 tiles at 25 % cover a 6x7 negative (70 x 56 mm)
# A brisk stage (500 mm/s) and live view (60 fps): these tests are about where the tiles land and what is said,
# not a stage's pace (the time per negative at a real one's is bench/bench_tiles.py's); a move and its settle then
# cost the tests little wall time (the calibration makes some 70 moves, a 3x3 run 15)
FEED_MM_PER_MINUTE = 30_000.0
PREVIEW_FPS = 60.0
STEP = 0.75 * 768  # photosites from one tile to the next along X (2 % slip: each move lands up to 12 off)


def sheet_config(tmp_path: Path, **sheet: object) -> Config:
    cfg = capture_config(tmp_path / "library")
    given: dict[str, object] = {"width_mm": 70.0, "height_mm": 56.0, "mm_per_pixel": MM_PER_PIXEL, "slip": 0.02,
                                "rotation_degrees": 0.2, "backlash_mm": 0.05, "seed": 5, **sheet}  # fmt: skip
    cfg.camera.simulated.sheet = SheetConfig(**given)  # type: ignore[arg-type]
    cfg.rig.port, cfg.rig.axes = "simulated", "xy"
    cfg.rig.move_timeout_seconds = 3.0
    cfg.rig.feed_mm_per_minute = FEED_MM_PER_MINUTE
    cfg.camera.simulated.preview_fps = PREVIEW_FPS
    return cfg


def true_scale(cfg: Config) -> StageScale:
    """The stage's scale as the sheet is built (what a calibration would measure, without its errors)."""
    sheet = cfg.camera.simulated.sheet
    a, k = math.radians(sheet.rotation_degrees), 1 / sheet.mm_per_pixel
    sim = cfg.camera.simulated
    x_axis, y_axis = (-k * math.cos(a), -k * math.sin(a)), (k * math.sin(a), -k * math.cos(a))
    # a live-view pixel is a 2x2 cell of the sensor (its preview crops a few pixels of the edges)
    return StageScale(x_axis, y_axis, (sim.width, sim.height), (sheet.backlash_mm, sheet.backlash_mm), (2.0, 2.0))


def tiles_yaml(tmp_path: Path, *, sheet: str, tiles: str) -> Path:
    """TMP/medianscan.yaml for the CLI's tile runs, as a user writes one: the simulated camera over the sheet
    `sheet` (its YAML mapping), the simulated stage, `tiles` (the tiles section's mapping), 3 frames a tile, the
    library TMP/library and the control socket in TMP."""
    config = tmp_path / "medianscan.yaml"
    config.write_text(
        f"library: {tmp_path / 'library'}\nframes: 3\n"
        "camera:\n  backend: simulated\n  simulated:\n    width: 768\n    height: 512\n"
        f"    preview_fps: {PREVIEW_FPS}\n"
        f"    sheet: {sheet}\n"
        # (rig.line is the line protocol's, unused by GRBL; the config's check asks for its {y} on any XY stage)
        f"rig: {{port: simulated, axes: xy, move_timeout_seconds: 3, feed_mm_per_minute: {FEED_MM_PER_MINUTE}, "
        "line: {move: 'M{x} {y}'}}\n"
        f"tiles: {tiles}\n"
        f"triggers: {{socket: {tmp_path / 'control.sock'}}}\n"
    )
    return config


def save_true_calibration(cfg: Config) -> None:
    """The library's rig calibration written as the sheet is built (`true_scale`), as `medianscan calibrate rig`
    would leave it: for tests of what comes after the calibration."""
    scale = true_scale(cfg)
    sim = cfg.camera.simulated
    calibrate_rig.save(RigCalibration(AxisMeasure(scale.x_axis, scale.backlash_mm[0], 2.0),
                                      AxisMeasure(scale.y_axis, scale.backlash_mm[1], 2.0),
                                      (sim.width, sim.height), (sim.width // 2, sim.height // 2), 1.0),
                       cfg.library)  # fmt: skip


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
        self.shot_stacks: list[str] = []  # 'frame-002/tile-r1c2', in the order shot (a strip's negatives apart)
        self.placed: dict[tuple[str, str], tuple[float, float]] = {}  # (negative, tile) -> the view's corner
        self.after_shot: Callable[[int], None] | None = None  # called with the count of tiles shot so far
        self.stills = 0
        self.root = self.cfg.library / "stills"

    def preview(self) -> bytes | None:
        return self.camera.preview()

    def still(self) -> npt.NDArray[np.float32]:
        """One raw where the stage is now (the calibration's scale from the preview to the sensor)."""
        self.stills += 1
        record = self.camera.burst(1, self.root / f"still{self.stills}", "still")
        with rawpy.imread(str(record.frames[0])) as raw:
            mosaic: npt.NDArray[np.float32] = raw.raw_image_visible.astype(np.float32)
        return mosaic

    def shoot(self, stack: Path) -> Answer:
        self.at[stack.name] = self.sheet.view_origin_px()
        self.placed[(stack.parent.name, stack.name)] = self.at[stack.name]
        self.shots.append(stack.name)
        self.shot_stacks.append(f"{stack.parent.name}/{stack.name}")
        if self.after_shot is not None:
            self.after_shot(len(self.shot_stacks))
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


# A strip of three 6x7 negatives (tiles_on's stage, 2 % slip, 0.2 degrees, 0.05 mm play) under a wider view: a
# 768 x 512 view of 50.7 x 33.8 mm, so 2x2 tiles cover each negative (72 x 58 mm with its margins)
STRIP_MM_PER_PIXEL = 0.066


@dataclass
class StripTiles:
    """A strip run over the simulated strip, each negative named by the library as a press's, and where the
    last run left the stage (as the daemon keeps it between runs)."""

    cfg: Config
    eyes: SheetEyes
    plan: TilePlan
    scale: StageScale
    library: Library
    saved: tuple[Path, Resume] | None = None
    progress: list[TileProgress] = field(default_factory=list)

    def run(
        self, stop: threading.Event | None = None, faults: Faults | None = None, *, plain: bool = False
    ) -> StripRun:
        """The whole strip; `plain`: a scan-tiles without --strip where the last run left the stage on the strip,
        as the daemon runs it (one negative along the strip)."""
        library = self.library
        first, resume = begin_at(library.last_stack(), self.saved, lambda: library.roll / library.next_negative())
        if plain:
            on_strip = on_the_strip(self.saved, library.last_stack())
            assert on_strip is not None, "the stage is not on the strip"
            first, resume = on_strip
        rig = open_rig(self.cfg, faults)
        strip = StripSettings(70.0, self.cfg.tiles.gap_mm)
        run = StripRun(rig, self.eyes, self.plan, self.scale, first=first,
                       name_next=lambda: library.roll / library.next_negative(), strip=strip,
                       stop=stop or threading.Event(), progress=self.progress.append,
                       settings=RunSettings(settle_timeout=5.0), resume=resume,
                       most=1 if plain else None)  # fmt: skip
        try:
            run.run()
        finally:
            rig.close()
        self.saved = run.resume()
        return run

    def misses(self, negative: str, place: int) -> list[float]:
        """Each tile of `negative` (a folder) against where the plan put it over the strip's `place`th negative
        (its centre under the plan's centre): the distance in photosites."""
        sheet = self.eyes.sheet
        left, top, width, height = sheet.negative_box(place)
        mpp = sheet.mm_per_photosite
        out = []
        for tile in self.plan.tiles:
            x, y = self.eyes.placed[(negative, tile.name)]
            want_x = left + width / 2 + tile.stage_mm[0] / mpp - sheet.width / 2
            want_y = top + height / 2 + tile.stage_mm[1] / mpp - sheet.height / 2
            out.append(float(np.hypot(x - want_x, y - want_y)))
        return out

    def across(self, negative: str, place: int) -> float:
        """How far across the strip (mm, the mean over its tiles) `negative` was shot from where the plan put it
        over the strip's `place`th negative."""
        sheet = self.eyes.sheet
        _, top, _, height = sheet.negative_box(place)
        mpp = sheet.mm_per_photosite
        off = [self.eyes.placed[(negative, t.name)][1] - (top + height / 2 + t.stage_mm[1] / mpp - sheet.height / 2)
               for t in self.plan.tiles]  # fmt: skip
        return float(np.mean(off)) * mpp


def strip_on(tmp_path: Path, **sheet: object) -> StripTiles:
    """Three 6x7 negatives on a strip (gaps of 4 +- 1.5 mm, seeded), `sheet` overriding any of it."""
    given: dict[str, object] = {"mm_per_pixel": STRIP_MM_PER_PIXEL, "negatives": 3, **sheet}
    cfg = sheet_config(tmp_path, **given)
    cfg.tiles.format, cfg.tiles.strip = "6x7", True
    scale = true_scale(cfg)
    plan = make_plan(Wanted.of(cfg.tiles), scale)
    assert (plan.columns, plan.rows) == (2, 2), plan.said()
    return StripTiles(cfg, SheetEyes(cfg), plan, scale, Library.from_config(cfg))
