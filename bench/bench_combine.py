"""Combine kernels against the memory-bandwidth floor and `np.median`, side by side in one run.

Per N: the floor (read the stack once: a generated bitwise-OR kernel or `np.bitwise_or.reduce` into a
preallocated frame, whichever is faster in this run), the median kernel and its ratio to the floor, `np.median`
(on a band of rows, scaled, when the frame is large) and its ratio to the median kernel, the robust means and the
mean relative to the median kernel, the robust means on a worst-case stack (frame 0 an outlier at every pixel), the
time to measure the stack's noise model (once per stack, as the pipeline does: the robust means are timed with it
measured), and the peak memory a combine adds (ru_maxrss in a child process). Timings are
medians of interleaved repeats; other processes on the machine add noise, so compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

from medianscan.blend.kernels import combine, kernel_cache
from medianscan.blend.kernels.noise_model import measure_rows
from medianscan.vocabulary import Method

FULL = (4000, 6000)  # 24 MP
QUICK = (1000, 1500)
NS = (3, 5, 9, 15, 31)
NP_MEDIAN_ROWS = 256  # np.median runs on this many rows and is scaled when the frame is taller
OUTLIER = 2000  # added to every pixel of frame 0 for the worst case (scene + noise stays far below 65535)


def synthetic_stack(n: int, shape: tuple[int, int], seed: int = 1) -> np.ndarray:
    """A negative-like scene plus Gaussian noise (~sqrt of the level), uint16, built without (N,H,W) floats."""
    h, w = shape
    rng = np.random.default_rng(seed)
    yy = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    xx = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :]
    scene = 3000 + 9000 * yy * xx + 2000 * np.sin(20 * xx) * np.cos(13 * yy)
    sd = np.sqrt(scene)
    pool = [rng.standard_normal(shape, dtype=np.float32) for _ in range(min(n, 4))]
    stack = combine.frames_buffer(n, shape, np.uint16)
    for k in range(n):
        noise = np.roll(pool[k % len(pool)], 7 * k + 3 * (k // len(pool)), axis=1)
        np.clip(scene + sd * noise + 0.5, 0, 65535, out=noise)
        stack[k] = noise
    return stack


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def peak_extra_mib(n: int, shape: tuple[int, int], method: str) -> float:
    """Peak resident growth (MiB) of a child process while it combines an already-touched stack.

    The child resets the kernel's high-water mark (/proc/self/clear_refs) after warm-up, so compilation memory
    does not hide the combine's own peak.
    """
    code = f"""
import numpy as np
from pathlib import Path
from medianscan.blend.kernels import combine
def status(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
stack = combine.frames_buffer({n}, {shape!r}, np.uint16)
stack[:] = 1000
stack[0] += 7
if {method!r} != "np.median":
    combine.warm_up({n}, np.uint16, [{method!r}])
Path("/proc/self/clear_refs").write_text("5")
before = status("VmRSS:")
if {method!r} == "np.median":
    np.median(stack, axis=0)
else:
    combine.combine(stack, {method!r})
print(status("VmHWM:") - before)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def bench_n(n: int, shape: tuple[int, int], repeats: int, memory: bool, stat: str) -> dict[str, float]:
    h = shape[0]
    stack = synthetic_stack(n, shape)
    out = np.empty(shape, np.uint16)
    floor_kernel = kernel_cache.load_kernel("floor", n)
    methods: tuple[Method, ...] = ("median", "sigma-clip", "winsorized", "mean")

    def warm() -> None:
        combine.warm_up(n, np.uint16, methods)
        floor_kernel(stack[:, :2], out[:2])

    compile_s = timed(warm)
    model = measure_rows(stack)
    measuring = [timed(lambda: measure_rows(stack)) for _ in range(max(1, repeats // 2))]
    rows = min(h, NP_MEDIAN_ROWS)
    band = stack[:, :rows]
    runs: dict[str, list[float]] = {k: [] for k in ("floor-gen", "floor-np", *methods)}
    for _ in range(repeats):
        runs["floor-gen"].append(timed(lambda: floor_kernel(stack, out)))
        runs["floor-np"].append(timed(lambda: np.bitwise_or.reduce(stack, axis=0, out=out)))
        for method in methods:
            runs[method].append(timed(lambda m=method: combine.combine(stack, m, noise=model, out=out)))  # type: ignore[misc]
    np_times = [timed(lambda: np.median(band, axis=0)) * h / rows for _ in range(max(1, repeats // 3))]
    # Worst case for sigma-clip: one frame is an outlier at every pixel (a flicker, a bumped frame), so every
    # pixel rejects a value. Done in place, after the clean runs, to avoid a second stack in memory.
    stack[0] += OUTLIER
    model = measure_rows(stack)
    for _ in range(repeats):
        for method in ("sigma-clip", "winsorized"):
            runs.setdefault(f"{method} outlier", []).append(
                timed(lambda m=method: combine.combine(stack, m, noise=model, out=out))  # type: ignore[misc]
            )
    pick = statistics.median if stat == "median" else min
    row = {k: pick(v) for k, v in runs.items()}
    row["floor"] = min(row["floor-gen"], row["floor-np"])
    row["np.median"] = pick(np_times)
    row["np_rows"] = rows
    row["compile"] = compile_s
    row["measure"] = pick(measuring)
    if memory:
        for name in ("median", "sigma-clip", "winsorized", "np.median"):
            row[f"mem {name}"] = peak_extra_mib(n, shape, name)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_combine", description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK[0]}x{QUICK[1]} frames instead of 24 MP")
    parser.add_argument("--n", type=int, nargs="+", default=list(NS), help="stack sizes")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-memory", action="store_true", help="skip the child-process memory runs")
    parser.add_argument("--json", action="store_true", help="also print the raw figures as JSON")
    parser.add_argument(
        "--stat",
        choices=("median", "min"),
        default="median",
        help="summary of the repeats (min: best case, steadier when other processes load the machine)",
    )
    args = parser.parse_args(argv)
    shape = QUICK if args.quick else FULL
    h, w = shape
    print(f"combine kernels, {h}x{w} uint16 ({h * w / 1e6:.0f} MP), {args.stat} of {args.repeats} interleaved runs")
    print(f"np.median timed on {min(h, NP_MEDIAN_ROWS)} rows and scaled to {h}" if h > NP_MEDIAN_ROWS else "")
    print(f"output frame: {h * w * 2 / 2**20:.0f} MiB")
    head = (
        f"{'N':>3} {'floor ms':>9} {'median ms':>10} {'/floor':>7} {'np.median ms':>13} {'np/med':>7} "
        f"{'sigma ms':>9} {'/med':>5} {'winsor ms':>10} {'/med':>5} {'mean ms':>8} {'/med':>5} "
        f"{'outlier: sigma':>14} {'/med':>5} {'winsor':>7} {'/med':>5} {'compile s':>9} {'model ms':>8}"
    )
    if not args.no_memory:
        head += "  extra MiB: median / sigma / winsor / np.median"
    print(head)
    results = {}
    for n in args.n:
        r = bench_n(n, shape, args.repeats, not args.no_memory, args.stat)
        results[n] = r
        med = r["median"]
        line = (
            f"{n:>3} {r['floor'] * 1e3:>9.1f} {med * 1e3:>10.1f} {med / r['floor']:>6.2f}x "
            f"{r['np.median'] * 1e3:>13.0f} {r['np.median'] / med:>6.0f}x "
            f"{r['sigma-clip'] * 1e3:>9.1f} {r['sigma-clip'] / med:>4.1f}x "
            f"{r['winsorized'] * 1e3:>10.1f} {r['winsorized'] / med:>4.1f}x "
            f"{r['mean'] * 1e3:>8.1f} {r['mean'] / med:>4.1f}x "
            f"{r['sigma-clip outlier'] * 1e3:>14.1f} {r['sigma-clip outlier'] / med:>4.1f}x "
            f"{r['winsorized outlier'] * 1e3:>7.1f} {r['winsorized outlier'] / med:>4.1f}x {r['compile']:>9.1f} "
            f"{r['measure'] * 1e3:>8.0f}"
        )
        if not args.no_memory:
            line += "  " + " / ".join(
                f"{r[f'mem {m}']:.0f}" for m in ("median", "sigma-clip", "winsorized", "np.median")
            )
        print(line, flush=True)
    print("floor = min(generated read-once kernel, np.bitwise_or.reduce); compile s = first warm-up (or cache load)")
    print(f"outlier: frame 0 + {OUTLIER} at every pixel (every pixel rejects a value); /med = over the clean median")
    print("model ms: measuring the stack's noise model (noise_model.measure_rows), once per stack, not in the rest")
    if args.json:
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
