"""A negative in tiles without hands: `scan-tiles`' run (move, settle by live view, burst) on the simulated XY
stage and sheet, timed against the model's bound for the same plan (each move at the feed with the controller's
start-up, one live-view frame to see the picture still, each burst at the body's own best), and against the
open-loop way DIY rigs shoot (the same moves and bursts, a fixed 5 s settle per tile), side by side in one run.
Printed: seconds per negative, each part of them, and the ratios. The stitch is bench_stitch's (against hugin's
command-line pipeline), not repeated here.

    python -m bench tiles [--grid 3x3] [--preset sony-a7iv] [--burst 5] [--width 1536]
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import threading
import time
from pathlib import Path

from medianscan.capture.camera.simulated.camera import SimulatedCamera
from medianscan.capture.camera.simulated.strip import START_SECONDS
from medianscan.capture.camera.simulated.timing import timing_of
from medianscan.capture.events import Answer
from medianscan.capture.rig.base import Rig
from medianscan.capture.rig.open import open_rig
from medianscan.capture.rig.tile_plan import StageScale, Wanted, make_plan, route
from medianscan.capture.rig.tile_run import TileRun
from medianscan.config.schema import Config, SheetConfig

OPEN_LOOP_SETTLE = 5.0  # enderscanner's fixed wait before each shot (the field notes, tiles.md)


class Timed:
    """The rig, each move's wall time noted (the run's own rig, passed through)."""

    def __init__(self, rig: Rig) -> None:
        self.rig, self.seconds, self.port = rig, 0.0, rig.port

    def start(self) -> None:
        self.rig.start()

    def move(self, mm: float) -> None:
        self.rig.move(mm)

    def move_xy(self, dx_mm: float, dy_mm: float) -> None:
        started = time.monotonic()
        self.rig.move_xy(dx_mm, dy_mm)
        self.seconds += time.monotonic() - started

    def close(self) -> None:
        self.rig.close()


class Eyes:
    """The simulated camera's live view and bursts, each burst's wall time noted."""

    def __init__(self, cfg: Config, frames: int) -> None:
        self.camera = SimulatedCamera(cfg.camera)
        self.camera.connect()
        self.frames, self.bursts = frames, 0.0

    def preview(self) -> bytes | None:
        return self.camera.preview()

    def shoot(self, stack: Path) -> Answer:
        started = time.monotonic()
        record = self.camera.burst(self.frames, stack, stack.name)
        self.bursts += time.monotonic() - started
        return Answer(True, "capture", f"{len(record.frames)} frames", stack=str(stack))


def config(root: Path, args: argparse.Namespace) -> Config:
    cfg = Config(library=root / "library", frames=args.burst, workers=1)
    cfg.camera.backend = "simulated"
    sim = cfg.camera.simulated
    sim.width, sim.height = args.width, args.width * 2 // 3
    sim.timing.preset = args.preset
    sim.card = root / "card"
    mm_per_pixel = 34.8 / args.width  # a 34.8 mm view across: 3x3 tiles at 25 % cover a 6x7 negative
    sim.sheet = SheetConfig(width_mm=70.0, height_mm=56.0, mm_per_pixel=mm_per_pixel, slip=0.02, rotation_degrees=0.2,
                            backlash_mm=0.05, seed=5)  # fmt: skip
    cfg.rig.port, cfg.rig.axes = "simulated", "xy"
    return cfg


def scale_of(cfg: Config) -> StageScale:
    """The stage's scale as the sheet is built (what `calibrate rig` measures, to its errors)."""
    sheet, sim = cfg.camera.simulated.sheet, cfg.camera.simulated
    a, k = math.radians(sheet.rotation_degrees), 1 / sheet.mm_per_pixel
    x_axis, y_axis = (-k * math.cos(a), -k * math.sin(a)), (k * math.sin(a), -k * math.cos(a))
    return StageScale(x_axis, y_axis, (sim.width, sim.height), (sheet.backlash_mm, sheet.backlash_mm), (2.0, 2.0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_tiles", description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", default="3x3", help="columns x rows")
    parser.add_argument("--preset", default="sony-a7iv", help="the simulated body's timing")
    parser.add_argument("--burst", type=int, default=5, help="frames per burst")
    parser.add_argument("--width", type=int, default=1536, help="the simulated sensor's width (3:2)")
    args = parser.parse_args(argv)
    columns, rows = (int(v) for v in args.grid.split("x"))
    root = Path(tempfile.mkdtemp(prefix="bench-tiles-"))
    try:
        cfg = config(root, args)
        scale = scale_of(cfg)
        plan = make_plan(Wanted(columns=columns, rows=rows), scale)
        eyes = Eyes(cfg, args.burst)
        rig = Timed(open_rig(cfg))
        started = time.monotonic()
        try:
            summary = TileRun(rig, eyes, plan, scale, root / "negative", stop=threading.Event()).run()
        finally:
            rig.close()
        seconds = time.monotonic() - started
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if not summary.complete:
        raise RuntimeError(summary.said())
    moves = route([t.stage_mm for t in plan.tiles], (0.0, 0.0), plan.backlash_mm, home=(0.0, 0.0))
    feed = cfg.rig.feed_mm_per_minute / 60
    motion = sum(START_SECONDS + math.hypot(m.dx_mm, m.dy_mm) / feed for m in moves)
    timing = timing_of(cfg.camera.simulated)
    tiles = len(plan.tiles)
    frame = 1 / cfg.camera.simulated.preview_fps
    bound = motion + tiles * (frame + timing.bound_seconds(args.burst)) + 4 * frame  # + the noise at rest
    open_loop = rig.seconds + tiles * OPEN_LOOP_SETTLE + eyes.bursts
    settles = sum(summary.settles)
    print(f"a 6x7 negative in {plan.columns}x{plan.rows} tiles ({len(moves)} moves), {args.burst}-frame bursts on the "
          f"simulated {args.preset}, a {cfg.camera.simulated.width}x{cfg.camera.simulated.height} sensor, 2 % slip, "
          "0.2 degrees off square, 0.05 mm backlash")  # fmt: skip
    print(f"{'':<34} {'seconds':>8} {'moves':>7} {'settles':>8} {'bursts':>7}")
    print(
        f"{'scan-tiles (settled by live view)':<34} {seconds:8.1f} {rig.seconds:7.1f} {settles:8.1f} {eyes.bursts:7.1f}"
    )
    print(f"{'the model bound':<34} {bound:8.1f} {motion:7.1f} {tiles * frame:8.1f} "
          f"{tiles * timing.bound_seconds(args.burst):7.1f}")  # fmt: skip
    print(f"{'open loop (a fixed 5 s settle)':<34} {open_loop:8.1f} {rig.seconds:7.1f} {tiles * OPEN_LOOP_SETTLE:8.1f} "
          f"{eyes.bursts:7.1f}")  # fmt: skip
    print(f"scan-tiles: {seconds / bound:.2f}x the model's bound; {seconds / open_loop:.2f}x the open-loop time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
