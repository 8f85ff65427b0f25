"""Whole blends, side by side in one run: medianscan against the tools people use today, and against the floor
a raw blend cannot beat (decoding its raws).

1. The same 16-bit RGB TIFF stack, from the page cache, as whole processes: `medianscan blend` (Python start,
   checks, sha256 of every frame, fsynced output included), `hugin_stacker --mode=median` and ImageMagick
   `convert -evaluate-sequence median` (its resource policy raised for the run, as it otherwise refuses).
2. A stack of real raws (the Canon CR2 sample, N copies): `blend_stack` in a warm process, as a blend worker runs
   it, against decoding the same raws spread over the cores (rawpy open + unpack + copy, nothing else).
3. Peak memory of that raw blend in a child process, against the stack itself plus three frames.
4. The same raw blend with a flat-field correction (`--flat`, a master flat of the same body made for the run)
   against it without.

Timings are medians of repeats; other processes add noise, so compare the ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tests.conftest import find_sample_raw

ROOT = Path(__file__).resolve().parent.parent
# ImageMagick 7's `magick`, else Debian's ImageMagick 6 by its own name (a PATH `convert` may be something else)
IMAGEMAGICK = next(
    (found for name in ("magick", "convert-im6.q16", "/usr/bin/convert") if (found := shutil.which(name))),
    "magick",
)
GNU_TIME = "/usr/bin/time"
MAGICK_POLICY = """<policymap>
  <policy domain="resource" name="memory" value="16GiB"/>
  <policy domain="resource" name="map" value="32GiB"/>
  <policy domain="resource" name="area" value="16GP"/>
  <policy domain="resource" name="disk" value="64GiB"/>
</policymap>
"""


def run_timed(cmd: Sequence[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one command, which must succeed.

    The peak comes from GNU time: a child forked from this (large) process would report our own high-water
    mark in ru_maxrss, not its own."""
    start = time.perf_counter()
    proc = subprocess.run(
        [GNU_TIME, "-f", "%M", *cmd], check=False, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    seconds = time.perf_counter() - start
    lines = proc.stderr.decode(errors="replace").strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {' '.join(lines)[-400:]}")
    return seconds, int(lines[-1]) / 1024


def make_tiff_stack(folder: Path, n: int, shape: tuple[int, int]) -> list[Path]:
    """N 16-bit RGB TIFFs of one scene with fresh noise each (uncompressed, as raw editors export them)."""
    import tifffile

    h, w = shape
    rng = np.random.default_rng(7)
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    xx = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    scene = 8000 + 30000 * yy * xx + 6000 * np.sin(25 * xx) * np.cos(17 * yy) * np.array([1.0, 0.8, 0.6], np.float32)
    paths = []
    for i in range(n):
        frame = scene + rng.normal(0, 400, (h, w, 3)).astype(np.float32)
        path = folder / f"frame_{i + 1:02d}.tif"
        tifffile.imwrite(path, np.clip(frame, 0, 65535).astype(np.uint16), photometric="rgb")
        paths.append(path)
    return paths


def bench_tiff(n: int, shape: tuple[int, int], repeats: int, imagemagick: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-blend-") as tmp:
        folder = Path(tmp) / "stack"
        folder.mkdir()
        paths = make_tiff_stack(folder, n, shape)
        for p in paths:  # into the page cache, for every tool alike
            p.read_bytes()
        files = [str(p) for p in paths]
        ours_cmd = [sys.executable, "-m", "medianscan", "blend", str(folder), "--output", f"{tmp}/ours.tif"]
        hugin_cmd = ["hugin_stacker", "--mode=median", f"--output={tmp}/hugin.tif", *files]
        im_cmd = [IMAGEMAGICK, *files, "-evaluate-sequence", "median", f"{tmp}/im.tif"]
        policy = Path(tmp) / "magick"
        policy.mkdir()
        (policy / "policy.xml").write_text(MAGICK_POLICY)
        im_env = {**os.environ, "MAGICK_CONFIGURE_PATH": str(policy)}

        run_timed(ours_cmd)  # loads the kernel cache once, as any later run would find it
        ours, hugin = [], []
        for _ in range(repeats):  # interleaved, so both see the same machine
            ours.append(run_timed(ours_cmd))
            hugin.append(run_timed(hugin_cmd))
        im = [run_timed(im_cmd, im_env)] if imagemagick else []
        check_result(Path(tmp) / "ours.tif", paths)

        t_ours = statistics.median(t for t, _ in ours)
        print(f"\n16-bit RGB TIFF stack, N={n}, {shape[0]}x{shape[1]} ({n * shape[0] * shape[1] * 6 / 2**20:.0f} MiB)")
        print(f"  {'tool':<42} {'seconds':>8} {'peak MiB':>9} {'vs medianscan':>14}")
        print(f"  {'medianscan blend (whole process)':<42} {t_ours:>8.2f} {max(m for _, m in ours):>9.0f} {'1.0x':>14}")
        rows = [("hugin_stacker --mode=median", hugin, 5.0)]
        if im:
            rows.append(("ImageMagick -evaluate-sequence median", im, 50.0))
        for name, runs, target in rows:
            t = statistics.median(s for s, _ in runs)
            verdict = "ok" if t / t_ours >= target else "MISSED"
            print(
                f"  {name:<42} {t:>8.2f} {max(m for _, m in runs):>9.0f} {t / t_ours:>13.1f}x"
                f"  (target >= {target:.0f}x: {verdict})"
            )


def check_result(ours: Path, frames: Sequence[Path]) -> None:
    """Our output is the per-channel median (on a band of rows; hugin's median picks whole pixels instead)."""
    import tifffile

    band = slice(1000, 1064)
    expected = np.median(np.stack([tifffile.imread(p)[band] for p in frames]), axis=0).astype(np.uint16)
    if not np.array_equal(tifffile.imread(ours)[band], expected):
        raise SystemExit("medianscan's TIFF is not the per-channel median")


def decode_all(paths: Sequence[Path]) -> None:
    """The floor: open, unpack and copy every raw, spread over the cores; nothing else."""
    import rawpy

    def one(path: Path) -> np.ndarray:
        with rawpy.imread(str(path)) as raw:
            return np.array(raw.raw_image, copy=True)

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(one, paths))


def bench_raw(n: int, repeats: int) -> None:
    raw = find_sample_raw()
    if raw is None:
        print("\nraw stack: skipped, no sample raw (set MEDIANSCAN_SAMPLE_RAW)")
        return
    from medianscan.blend.kernels.combine import warm_up
    from medianscan.blend.options import BlendOptions
    from medianscan.blend.pipeline import blend_stack

    warm_up(n)
    with tempfile.TemporaryDirectory(prefix="bench-raw-") as tmp:
        folder = Path(tmp) / "neg"
        folder.mkdir()
        paths = [folder / f"neg_{i + 1:02d}{raw.suffix}" for i in range(n)]
        for p in paths:
            shutil.copyfile(raw, p)
        blend_stack(folder, BlendOptions())  # warm: thread pool, FFT plans, page cache
        decode, blend, parts, cpu_decode, cpu_blend = [], [], [], [], []
        for _ in range(repeats):  # interleaved; CPU seconds too, which other processes disturb less
            start, cpu = time.perf_counter(), time.process_time()
            decode_all(paths)
            decode.append(time.perf_counter() - start)
            cpu_decode.append(time.process_time() - cpu)
            start, cpu = time.perf_counter(), time.process_time()
            result = blend_stack(folder, BlendOptions())
            blend.append(time.perf_counter() - start)
            cpu_blend.append(time.process_time() - cpu)
            parts.append(result.timings)
        t_decode, t_blend = statistics.median(decode), statistics.median(blend)
        verdict = "ok" if t_blend / t_decode <= 1.2 else "MISSED"
        print(f"\nraw stack: {n} x {raw.name} ({paths[0].stat().st_size / 2**20:.1f} MiB each), warm process")
        print(f"  decode only, {os.cpu_count()} threads      {t_decode:6.2f} s")
        ratio = t_blend / t_decode
        print(f"  blend_stack end to end        {t_blend:6.2f} s  = {ratio:.2f}x decode (target <= 1.2x: {verdict})")
        cpu = statistics.median(cpu_blend) / statistics.median(cpu_decode)
        print(f"  CPU seconds, blend / decode   {cpu:6.2f}x")
        steps = {k: statistics.median(p.get(k, 0.0) for p in parts) for k in parts[0]}
        print("  of which: " + ", ".join(f"{k} {v:.3f} s" for k, v in steps.items()))
        memory(folder, n)
        flat_cost(folder, paths[0], Path(tmp) / "flat", repeats)


def write_flat_frames(folder: Path, like: Path, n: int = 5) -> None:
    """Frames of a bare light through a lens falling to 0.62 at the corners, as the body of `like` shot them."""
    from medianscan.blend.reading.frames import read_frame
    from medianscan.outputs.dng import write_dng

    frame = read_frame(like)
    assert frame.layout is not None
    h, w = frame.pixels.shape
    y = np.linspace(-1.0, 1.0, h, dtype=np.float32)[:, None]
    x = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :]
    black = float(np.mean(frame.layout.black_levels))
    light = (frame.layout.white_level - black) * 0.6 * (1 - 0.38 * (y**2 + x**2) / 2)
    rng = np.random.default_rng(1)
    folder.mkdir()
    for i in range(n):
        values = black + light + rng.standard_normal((h, w), dtype=np.float32) * np.sqrt(light * 0.4 + 9)
        mosaic = np.clip(np.rint(values), 0, frame.layout.white_level).astype(np.uint16)
        write_dng(folder / f"flat_{i + 1:02d}.dng", mosaic, frame.layout, frame.camera, frame.exposure)


def flat_cost(folder: Path, like: Path, flat_folder: Path, repeats: int) -> None:
    """A blend with the flat-field correction against the same blend without, both warm (a worker keeps the
    roll's master flat loaded)."""
    from medianscan.blend.options import BlendOptions
    from medianscan.blend.pipeline import blend_stack, prepare_flat

    write_flat_frames(flat_folder, like)
    start = time.perf_counter()
    master = prepare_flat(flat_folder)
    made = time.perf_counter() - start
    with_flat = BlendOptions(flat=master)
    start = time.perf_counter()
    blend_stack(folder, with_flat)  # loads the master's gains, once per roll in a worker
    loaded = time.perf_counter() - start
    plain, flat, applying = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        blend_stack(folder, BlendOptions())
        plain.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = blend_stack(folder, with_flat)
        flat.append(time.perf_counter() - start)
        applying.append(result.timings.get("flat", 0.0))
    ratio = statistics.median(flat) / statistics.median(plain)
    verdict = "ok" if ratio <= 1.1 else "MISSED"
    print(
        f"  with --flat: {statistics.median(flat):.2f} s against {statistics.median(plain):.2f} s without = "
        f"{ratio:.2f}x (target <= 1.1x: {verdict}); applying it {statistics.median(applying):.3f} s"
    )
    print(f"  (once per roll: blending the flat's 5 frames {made:.2f} s, its first use with loading {loaded:.2f} s)")


def memory(folder: Path, n: int) -> None:
    """Peak resident growth of a blend in a child process that has already warmed up, against the floor."""
    code = f"""
import resource, sys
from pathlib import Path
from medianscan.blend.pipeline import blend_stack
from medianscan.blend.kernels.combine import warm_up
from medianscan.blend.reading.frames import probe
warm_up({n})
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS'):
            return int(line.split()[1]) * 1024
def hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM'):
            return int(line.split()[1]) * 1024
open('/proc/self/clear_refs', 'w').write('5')  # reset the high-water mark after imports and warm-up
before = rss()
blend_stack(Path({str(folder)!r}))
shape, dtype = probe(sorted(Path({str(folder)!r}).glob('neg_*'))[0], 'raw')
print(before, hwm(), shape[0] * shape[1] * dtype.itemsize)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    before, peak, frame = (int(v) for v in out)
    extra = peak - before
    limit = (n + 3) * frame
    verdict = "ok" if extra <= limit else "MISSED"
    print(
        f"  peak memory added by the blend: {extra / 2**20:.0f} MiB = stack + {(extra - n * frame) / frame:.1f} frames"
        f" (limit stack + 3 frames = {limit / 2**20:.0f} MiB: {verdict})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench blend", description=__doc__)
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="12 MP TIFFs, fewer repeats, no ImageMagick")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-imagemagick", action="store_true", help="skip ImageMagick (about a minute at N=9)")
    parser.add_argument("--only", choices=("raw", "tiff"), help="run one part")
    args = parser.parse_args(argv)
    shape = (3000, 4000) if args.quick else (4000, 6000)
    repeats = 1 if args.quick else args.repeats
    for tool in ("hugin_stacker", IMAGEMAGICK, GNU_TIME):
        if not shutil.which(tool):
            print(f"{tool} is missing: `make bench` installs hugin-tools, imagemagick and time", file=sys.stderr)
            return 1
    if args.only != "tiff":
        bench_raw(args.frames, max(repeats, 3))
    if args.only != "raw":
        bench_tiff(args.frames, shape, repeats, not (args.quick or args.no_imagemagick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
