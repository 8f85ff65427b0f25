"""A bracket merge against a plain blend of the same size, side by side in one run: 2 x 9 frames at 1/400 s
and 1/100 s merged (`--bracket`) against a median of 18 frames at one speed, both of the real CR2's full
sensor, in a warm process (goal: the bracket at most 1.2x). Prints the bracket's noise figures."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from medianscan.blend.kernels.combine import warm_up
from medianscan.blend.options import BlendOptions
from medianscan.blend.pipeline import blend_stack
from tests.conftest import find_sample_raw
from tests.stacks import Scene, load_scene, write_frame


def write_burst(folder: Path, scene: Scene, groups: dict[float, int], seed: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    black = float(np.mean(scene.layout.black_levels))
    base = scene.mosaic.astype(np.float32) - np.float32(black)
    n = 0
    for seconds, count in groups.items():
        light = base * np.float32(seconds / (1 / 100) * 2.5)
        for _ in range(count):
            n += 1
            noisy = black + light + rng.standard_normal(light.shape, dtype=np.float32) * np.sqrt(light * 0.3 + 16)
            mosaic = np.clip(np.rint(noisy), 0, scene.layout.white_level).astype(np.uint16)
            write_frame(folder / f"{folder.name}_{n:02d}.dng", mosaic, scene, exposure_time=seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench bracket", description=__doc__)
    parser.add_argument("--frames", type=int, default=9, help="per group")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    raw = find_sample_raw()
    if raw is None:
        print("no sample raw (set MEDIANSCAN_SAMPLE_RAW)")
        return 1
    scene = load_scene(raw)
    n = args.frames
    warm_up(n)
    warm_up(2 * n)
    with tempfile.TemporaryDirectory(prefix="bench-bracket-") as tmp:
        bracket_dir, plain_dir = Path(tmp) / "bracket", Path(tmp) / "plain"
        write_burst(bracket_dir, scene, {1 / 400: n, 1 / 100: n}, seed=1)
        write_burst(plain_dir, scene, {1 / 100: 2 * n}, seed=2)
        options = BlendOptions(bracket=True)
        blend_stack(bracket_dir, options)
        blend_stack(plain_dir)
        merged, plain = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = blend_stack(bracket_dir, options)
            merged.append(time.perf_counter() - start)
            start = time.perf_counter()
            blend_stack(plain_dir)
            plain.append(time.perf_counter() - start)
        record = json.loads(result.sidecar.read_text())["bracket"]
    t_merged, t_plain = statistics.median(merged), statistics.median(plain)
    verdict = "ok" if t_merged / t_plain <= 1.2 else "MISSED"
    shape = "x".join(str(v) for v in scene.mosaic.shape[::-1])
    print(f"{shape}: bracket 2 x {n} frames {t_merged:.2f} s, median of {2 * n} frames {t_plain:.2f} s")
    print(f"  ratio {t_merged / t_plain:.2f}x (target <= 1.2x: {verdict}); steps {result.timings}")
    ratio = record["ratios"][0]
    print(f"  measured ratios {ratio['measured']} against the labels' {ratio['nominal']}")
    print(
        f"  deep-shadow noise: {record['shadow_noise_vs_longest']}x the long group's alone, "
        f"{record['shadow_noise_vs_shortest']}x the short group's; clipped even at 1/400: {record['clipped_share']:.2%}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
