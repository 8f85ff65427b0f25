"""A negative in tiles without hands: `scan-tiles`' run (move, settle by live view, burst) on the simulated XY
stage and sheet, timed against the model's bound for the same plan (each move at the feed with the controller's
start-up, one live-view frame to see the picture still, each burst at the body's own best), and against the
open-loop way DIY rigs shoot (the same moves and bursts, a fixed 5 s settle per tile, then hugin's pipeline on
the tiles: bench_stitch's runner, imported), side by side in one run; the closed loop's own stitch (the
service's stitch job on the tiles' blends) beside it. The tiles' blends are the same for both and not timed.
A strip row: `scan-tiles --strip` over a strip of 120 negatives (the advance to each gap, found in live view),
seconds per negative against the model's bound (its moves with the advance and the looks across at the film's
edges, settles, the look at each gap, bursts). Printed: seconds per negative, each part of them, and the ratios.

    python -m bench tiles [--grid 3x3] [--preset sony-a7iv] [--burst 5] [--width 1536] [--negatives 3]
                          [--no-hugin]
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
from medianscan.capture.rig.tile_strip import StripRun, StripSettings
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


def config(root: Path, args: argparse.Namespace, negatives: int = 1) -> Config:
    cfg = Config(library=root / "library", frames=args.burst, workers=1)
    cfg.camera.backend = "simulated"
    sim = cfg.camera.simulated
    sim.width, sim.height = args.width, args.width * 2 // 3
    sim.timing.preset = args.preset
    sim.card = root / "card"
    mm_per_pixel = 34.8 / args.width  # a 34.8 mm view across: 3x3 tiles at 25 % cover a 6x7 negative
    sim.sheet = SheetConfig(width_mm=70.0, height_mm=56.0, mm_per_pixel=mm_per_pixel, slip=0.02, rotation_degrees=0.2,
                            backlash_mm=0.05, seed=5, negatives=negatives)  # fmt: skip
    cfg.rig.port, cfg.rig.axes = "simulated", "xy"
    return cfg


def scale_of(cfg: Config) -> StageScale:
    """The stage's scale as the sheet is built (what `calibrate rig` measures, to its errors)."""
    sheet, sim = cfg.camera.simulated.sheet, cfg.camera.simulated
    a, k = math.radians(sheet.rotation_degrees), 1 / sheet.mm_per_pixel
    x_axis, y_axis = (-k * math.cos(a), -k * math.sin(a)), (k * math.sin(a), -k * math.cos(a))
    return StageScale(x_axis, y_axis, (sim.width, sim.height), (sheet.backlash_mm, sheet.backlash_mm), (2.0, 2.0))


def bound_of(cfg: Config, moves: list[tuple[float, float]], tiles: int, burst: int) -> tuple[float, float, float]:
    """The model's bound for `moves` (relative, mm) and `tiles` bursts: (all, the moves, the bursts); the settles
    are one live-view frame a tile (the picture seen still), the noise at rest four."""
    feed = cfg.rig.feed_mm_per_minute / 60
    motion = sum(START_SECONDS + math.hypot(dx, dy) / feed for dx, dy in moves)
    bursts = tiles * timing_of(cfg.camera.simulated).bound_seconds(burst)
    frame = 1 / cfg.camera.simulated.preview_fps
    return motion + tiles * frame + bursts + 4 * frame, motion, bursts


def one_negative(root: Path, args: argparse.Namespace) -> None:
    """The 6x7 negative: closed loop and its stitch against the model and the open loop with hugin."""
    columns, rows = (int(v) for v in args.grid.split("x"))
    cfg = config(root, args)
    scale = scale_of(cfg)
    plan = make_plan(Wanted(columns=columns, rows=rows), scale)
    eyes = Eyes(cfg, args.burst)
    rig = Timed(open_rig(cfg))
    negative = root / "roll" / "frame-001"
    started = time.monotonic()
    try:
        summary = TileRun(rig, eyes, plan, scale, negative, stop=threading.Event()).run()
    finally:
        rig.close()
    seconds = time.monotonic() - started
    if not summary.complete:
        raise RuntimeError(summary.said())
    moves = route([t.stage_mm for t in plan.tiles], (0.0, 0.0), plan.backlash_mm, home=(0.0, 0.0))
    tiles = len(plan.tiles)
    bound, motion, bursts = bound_of(cfg, [(m.dx_mm, m.dy_mm) for m in moves], tiles, args.burst)
    frame = 1 / cfg.camera.simulated.preview_fps
    open_loop = rig.seconds + tiles * OPEN_LOOP_SETTLE + eyes.bursts
    settles = sum(summary.settles)
    print(f"a 6x7 negative in {plan.columns}x{plan.rows} tiles ({len(moves)} moves), {args.burst}-frame bursts on the "
          f"simulated {args.preset}, a {cfg.camera.simulated.width}x{cfg.camera.simulated.height} sensor, 2 % slip, "
          "0.2 degrees off square, 0.05 mm backlash")  # fmt: skip
    print(f"{'':<34} {'seconds':>8} {'moves':>7} {'settles':>8} {'bursts':>7} {'stitch':>7} {'in all':>7}")
    stitch = hugin_seconds = None
    if not args.no_hugin:
        stitch, hugin_seconds = stitches(eyes, negative, root)
    ours = f"{stitch:7.1f} {seconds + stitch:7.1f}" if stitch is not None else ""
    theirs = f"{hugin_seconds:7.1f} {open_loop + hugin_seconds:7.1f}" if hugin_seconds is not None else ""
    print(f"{'scan-tiles (settled by live view)':<34} {seconds:8.1f} {rig.seconds:7.1f} {settles:8.1f} "
          f"{eyes.bursts:7.1f} {ours}")  # fmt: skip
    print(f"{'the model bound':<34} {bound:8.1f} {motion:7.1f} {tiles * frame:8.1f} {bursts:7.1f}")
    print(f"{'open loop (a fixed 5 s settle)':<34} {open_loop:8.1f} {rig.seconds:7.1f} {tiles * OPEN_LOOP_SETTLE:8.1f} "
          f"{eyes.bursts:7.1f} {theirs}")  # fmt: skip
    print(f"scan-tiles: {seconds / bound:.2f}x the model's bound; {seconds / open_loop:.2f}x the open-loop time")
    if stitch is not None and hugin_seconds is not None:
        closed, opened = seconds + stitch, open_loop + hugin_seconds
        print(f"shot and stitched: {closed:.1f} s closed loop with the service's stitch against {opened:.1f} s open "
              f"loop with hugin ({opened / closed:.1f}x)")  # fmt: skip


def stitches(eyes: Eyes, negative: Path, root: Path) -> tuple[float, float | None]:
    """The tiles blended (not timed), then the service's stitch job on them (with a flat of the bare light) and
    hugin's pipeline on the same blends developed to TIFFs (developing not timed): their seconds (hugin None when
    it is not installed)."""
    from bench.bench_stitch import HUGIN, develop, hugin
    from medianscan.blend.options import BlendOptions
    from medianscan.blend.pipeline import blend_stack
    from medianscan.library.flats import FLAT_STEM
    from medianscan.library.tile_set import read_tile_set
    from medianscan.service.stitch_job import stitch_job
    from medianscan.service.tiled import TiledNegatives, tile_blend

    flat = root / "flat"
    eyes.camera.burst(9, flat, FLAT_STEM)
    blends = []
    for folder in read_tile_set(negative).folders():
        blend_stack(folder, BlendOptions())
        found = tile_blend(folder, "median")
        assert found is not None, folder
        blends.append(found)
    service = TiledNegatives(lambda: "median", flat=lambda tile_set: flat)
    service.check(negative)
    task = service.due[0]
    started = time.perf_counter()
    stitch_job(task.key, task)
    ours = time.perf_counter() - started
    if any(shutil.which(tool) is None for tool in HUGIN):
        print(f"hugin: missing {', '.join(t for t in HUGIN if shutil.which(t) is None)}")
        return ours, None
    work = root / "hugin-tiles"
    work.mkdir()
    return ours, hugin(develop(blends, work), work)


def strip_row(root: Path, args: argparse.Namespace) -> None:
    """A strip of 6x7 negatives in tiles: seconds per negative against the model's bound."""
    cfg = config(root, args, negatives=args.negatives)
    scale = scale_of(cfg)
    plan = make_plan(Wanted(format="6x7"), scale)
    eyes = Eyes(cfg, args.burst)
    rig = Timed(open_rig(cfg))
    names = iter(f"frame-{k:03d}" for k in range(1, 100))
    strip = StripSettings(70.0, cfg.camera.simulated.sheet.gap_mm)
    started = time.monotonic()
    try:
        run = StripRun(rig, eyes, plan, scale, first=root / "strip" / next(names),
                       name_next=lambda: root / "strip" / next(names), strip=strip, stop=threading.Event())  # fmt: skip
        summary = run.run()
    finally:
        rig.close()
    seconds = time.monotonic() - started
    if not summary.ended:
        raise RuntimeError(summary.said())
    n = len(summary.negatives)
    pitch = strip.format_mm + strip.gap_mm
    gap = (pitch / 2, 0.0)
    # at each gap found, the looks across the strip at the film's two edges (tile_strip's reach)
    reach = max(0.0, (strip.film_mm or 0.0) / 2 - scale.view_mm[1] / 4) if strip.film_mm else 0.0
    moves: list[tuple[float, float]] = []
    start = (0.0, 0.0)
    for k in range(n):  # each negative's tiles from where the last advance left the stage, then on to its gap
        route_ = route([t.stage_mm for t in plan.tiles], start, plan.backlash_mm, home=gap)
        moves += [(m.dx_mm, m.dy_mm) for m in route_]
        if k < n - 1 and reach:
            moves += [(0.0, reach), (0.0, -2 * reach)]
        start = (gap[0] - pitch, -reach if k < n - 1 else 0.0)
    moves.append((pitch / 2, 0.0))  # past the last: the look where the next negative would be, the strip's end
    tiles = n * len(plan.tiles)
    frame = 1 / cfg.camera.simulated.preview_fps
    bound, motion, bursts = bound_of(cfg, moves, tiles, args.burst)
    looks = (n + 1) + (2 * (n - 1) if reach else 0)  # each gap's, the strip's end, each film edge's
    bound += (n - 1) * 4 * frame + looks * 2 * frame  # each negative's noise at rest; each look, still
    print(f"a strip of {n} 6x7 negatives (gaps {cfg.camera.simulated.sheet.gap_mm:g} +- "
          f"{cfg.camera.simulated.sheet.gap_variation_mm:g} mm) in {plan.columns}x{plan.rows} tiles each, "
          f"{len(moves)} moves in the model")  # fmt: skip
    print(f"{'':<34} {'per neg.':>8} {'moves':>7} {'bursts':>7}")
    print(f"{'scan-tiles --strip':<34} {seconds / n:8.1f} {rig.seconds / n:7.1f} {eyes.bursts / n:7.1f}")
    print(f"{'the model bound':<34} {bound / n:8.1f} {motion / n:7.1f} {bursts / n:7.1f}")
    print(f"scan-tiles --strip: {seconds / bound:.2f}x the model's bound ({summary.said()})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_tiles", description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", default="3x3", help="columns x rows")
    parser.add_argument("--preset", default="sony-a7iv", help="the simulated body's timing")
    parser.add_argument("--burst", type=int, default=5, help="frames per burst")
    parser.add_argument("--width", type=int, default=1536, help="the simulated sensor's width (3:2)")
    parser.add_argument("--negatives", type=int, default=3, help="the strip's negatives (0: no strip row)")
    parser.add_argument("--no-hugin", action="store_true", help="leave out the stitches (ours and hugin's)")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench-tiles-"))
    try:
        one_negative(root / "one", args)
        if args.negatives > 0:
            print()
            strip_row(root / "strip", args)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
