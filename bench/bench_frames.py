"""As many frames as each negative needs: a simulated roll of thin and dense negatives shot by the daemon with
`frames: auto`, and again with the fixed N that gives the same worst-case SNR (the N auto chose for the densest),
side by side in one run: frames shot, seconds of shooting (the daemon's own answer), and the SNR each negative's
blend reached in its densest tenth, measured independently: the blend DNG against the simulated scene's noiseless
signal (the truth), not taken from the prediction. Blending runs as in use, beside the shooting.

Then what the measuring costs per frame (CPU, off the camera thread): on the roll's raws, on the real CR2 (a
lossless-JPEG raw, whose decode is most of it), and against the body's time per frame (hidden when below it).

    python -m bench frames [--preset sony-a7iv] [--snr 100] [--lights 1,0.8,...] [--size 1536x1024]
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medianscan.blend.reading import frames
from medianscan.capture.camera.burst.enough import Auto
from medianscan.capture.camera.simulated.camera import light_on_sensor
from medianscan.capture.camera.simulated.scene import BLACK, Negative
from medianscan.capture.camera.simulated.timing import PRESETS
from medianscan.capture.events import Answer
from medianscan.config.schema import AutoFrames, BlendConfig, Config
from medianscan.library.manifest import State, read_manifest
from medianscan.service.capture import Daemon
from tests.conftest import find_sample_raw
from tests.stacks import true_snr

ROLL = (1.0, 0.8, 0.55, 0.4, 1.0, 0.3, 0.7, 0.45)  # each negative's light: thin ones near 1, dense ones below 0.5


@dataclass(frozen=True)
class Shot:
    """One negative of a run: what the daemon said and what its blend reached, measured against the truth."""

    light: float
    frames: int
    seconds: float
    snr: float
    measure_seconds: float  # CPU, with frames: auto


def run(cfg: Config, lights: tuple[float, ...]) -> list[Shot]:
    """Press once per negative, each at its light, then wait for every blend and measure it."""
    daemon = Daemon(cfg, triggers=False)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    said: list[tuple[int, float]] = []
    try:
        daemon.link.tried.wait(30)
        for light in lights:
            daemon.cfg.camera.simulated.light = light  # the next negative under the lens
            reply: Future[Answer] = Future()
            daemon.hub.emit("capture", "bench", reply)
            answer = reply.result(600)
            found = re.search(r"burst done, (\d+) frames.* in ([\d.]+) s", answer.text)
            if not answer.ok or found is None:
                raise RuntimeError(answer.text)
            said.append((int(found[1]), float(found[2])))
        stacks = wait_blended(daemon, len(lights))
    finally:
        daemon.stop()
        thread.join(120)
    sim = cfg.camera.simulated
    shots = []
    for index, (stack, light, (n, seconds)) in enumerate(zip(stacks, lights, said, strict=True), 1):
        manifest = read_manifest(stack)
        assert manifest.blend is not None and manifest.burst is not None
        blend = frames.read_frame(manifest.blend.output)
        assert blend.layout is not None
        scale = light_on_sensor(cfg.camera.settings) * light
        clean = Negative(sim.seed, index, sim.height, sim.width, scale).signal + np.float32(BLACK)
        count = manifest.burst.auto
        measured = true_snr(blend.pixels, clean, blend.layout)
        shots.append(Shot(light, n, seconds, measured, 0.0 if count is None else count.measure_seconds))
    return shots


def wait_blended(daemon: Daemon, count: int, timeout: float = 600.0) -> list[Path]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stacks = sorted(daemon.library.stacks())
        if len(stacks) == count and all(read_manifest(s).state == State.BLENDED for s in stacks):
            return stacks
        time.sleep(0.2)
    raise RuntimeError(f"the {count} stacks were not blended within {timeout:.0f} s")


def config(root: Path, preset: str, size: tuple[int, int], frames_: int | str, auto: AutoFrames) -> Config:
    cfg = Config(library=root / "library", frames=frames_, auto_frames=auto, workers=1)  # type: ignore[arg-type]
    cfg.camera.backend = "simulated"
    cfg.camera.simulated.width, cfg.camera.simulated.height = size
    cfg.camera.simulated.timing.preset = preset
    cfg.camera.simulated.card = root / "card"
    cfg.console.listen = None
    cfg.triggers.socket = root / "control.sock"
    return cfg


def cr2_cost(repeats: int = 4) -> float:
    """CPU seconds per measured frame of the real CR2 (its decode by LibRaw, then the subsample's measure)."""
    path = find_sample_raw()
    if path is None:
        raise SystemExit("the sample CR2 is missing: see tests/conftest.py")
    data = memoryview(path.read_bytes())
    total = 0.0
    for _ in range(repeats):
        count = Auto(AutoFrames(), BlendConfig())
        count.took(data)
        count.took(data)
        count.settle()
        total += count.cpu_seconds / 2
    return total / repeats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_frames", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="sony-a7iv", choices=sorted(PRESETS))
    parser.add_argument("--snr", type=float, default=100.0)
    parser.add_argument("--lights", default=",".join(map(str, ROLL)), help="each negative's light, comma-separated")
    parser.add_argument("--size", default="1536x1024", help="the simulated raws' size")
    args = parser.parse_args(argv)
    size = tuple(int(v) for v in args.size.split("x"))
    lights = tuple(float(v) for v in args.lights.split(","))
    auto = AutoFrames(snr=args.snr, min=3, max=40)
    root = Path(tempfile.mkdtemp(prefix="bench-frames-"))
    try:
        counted = run(config(root / "auto", args.preset, size, "auto", auto), lights)  # type: ignore[arg-type]
        fixed_n = max(s.frames for s in counted)
        fixed = run(config(root / "fixed", args.preset, size, fixed_n, auto), lights)  # type: ignore[arg-type]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"a roll of {len(lights)} negatives on the simulated {args.preset}, {size[0]}x{size[1]}; target SNR "
          f"{args.snr:g} in each negative's densest tenth (measured against the truth)")  # fmt: skip
    timing = PRESETS[args.preset][0]
    print(f"{'negative':<9} {'light':>5} | {'auto: frames':>12} {'seconds':>8} {'x bound':>8} {'SNR':>6} | "
          f"{f'fixed {fixed_n}: frames':>16} {'seconds':>8} {'SNR':>6}")  # fmt: skip
    for i, (a, f) in enumerate(zip(counted, fixed, strict=True), 1):
        bound = a.seconds / timing.bound_seconds(a.frames)  # the body's best for that many: the measure is hidden
        print(f"{i:<9} {a.light:5.2f} | {a.frames:12d} {a.seconds:8.1f} {bound:8.3f} {a.snr:6.0f} | "
              f"{f.frames:16d} {f.seconds:8.1f} {f.snr:6.0f}")  # fmt: skip
    frames_a, frames_f = sum(s.frames for s in counted), sum(s.frames for s in fixed)
    secs_a, secs_f = sum(s.seconds for s in counted), sum(s.seconds for s in fixed)
    worst_a, worst_f = min(s.snr for s in counted), min(s.snr for s in fixed)
    print(f"{'roll':<15} | {frames_a:12d} {secs_a:8.1f} {'':>8} {worst_a:6.0f} | {frames_f:16d} {secs_f:8.1f} "
          f"{worst_f:6.0f}")  # fmt: skip
    print(f"auto against fixed {fixed_n}: {frames_a / frames_f:.2f}x the frames, {secs_a / secs_f:.2f}x the seconds; "
          f"worst SNR {worst_a:.0f} against {worst_f:.0f} ({worst_a / args.snr:.2f}x the target)")  # fmt: skip
    per_frame_body = secs_f / frames_f
    on_roll = sum(s.measure_seconds for s in counted) / (2 * len(counted))
    cr2 = cr2_cost()
    print(f"measuring (CPU, off the camera thread, the first 2 frames of each burst): {on_roll * 1e3:.0f} ms per "
          f"measured frame of the roll's DNGs, {cr2 * 1e3:.0f} ms of the real CR2 (mostly LibRaw's decode); "
          f"{on_roll * 2 * len(counted) / frames_a * 1e3:.1f} ms per frame shot; the body takes "
          f"{per_frame_body * 1e3:.0f} ms per frame ({timing.trigger_seconds:g} s a shot by its preset)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
