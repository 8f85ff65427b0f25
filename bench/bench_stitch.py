"""Stitch speed and memory: `medianscan stitch` against hugin's command-line pipeline and against the floor, in
one run, on tiles cut from the real CR2's developed picture (tests/tiles.py: odd and half-pixel places, gains,
falloff, noise, flat field).

- ours:   `medianscan stitch TILES --flat FLAT --output OUT.dng` as a process (start-up included)
- ours, no flat: the same without --flat, as for a roll's tiles whose blends carry the roll's flat already (the
          daemon's case): no flat to make, so no SciPy to import
- hugin:  the same tiles developed to 16-bit TIFFs first (rawpy, not timed), then pto_gen, cpfind --multirow,
          cpclean, autooptimiser -a -m -l -s, pano_modify --canvas=AUTO --crop=AUTO, nona -m TIFF_m, enblend
- warm:   the same stitch called in this process, imports paid and the flat's gains cached (as in the daemon)
- floor:  reading the tiles (LibRaw decode) and writing an output-sized mosaic as a DNG (outputs.dng), in this
          process (imports already paid), and the same as a fresh process (Python, NumPy, rawpy start-up included:
          the floor of any command that does it; that process imports only what the floor needs)
Runs alternate (ours, ours without the flat, warm, hugin, floor, floor as a process) `--repeats` times; medians.
`--memory` adds nine 24 MP tiles made by scaling the picture up: the stitch process's peak memory (its own
ru_maxrss, from wait4) beside the peak of a process that only imports the stitch (what Python, NumPy and LibRaw
take), and its time against the floor as a process on the same tiles, alternating `--large-repeats` times.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medianscan.blend.reading.frames import read_frame
from medianscan.outputs import dng

if TYPE_CHECKING:
    from tests.tiles import Picture

# Only the floor's own imports above: the floor as a process (`--floor-of`) must not pay for SciPy, pytest and
# the test builders, which the rest of this module imports where it uses them.

# Runs its arguments as a process and prints its exit code and its own peak resident memory (kB, from wait4).
_PEAK = (
    "import os, subprocess, sys; c = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL); "
    "_, s, u = os.wait4(c.pid, 0); print(os.waitstatus_to_exitcode(s), u.ru_maxrss)"
)
HUGIN = ("pto_gen", "cpfind", "cpclean", "autooptimiser", "pano_modify", "nona", "enblend")


def make_set(picture: Picture, folder: Path, columns: int, rows: int, shape: tuple[int, int]) -> list[Path]:
    from tests.tiles import TileSpec, write_flat, write_tile

    rng = np.random.default_rng(1)
    h, w = shape
    gains = (1.0, 0.97, 1.03, 0.98, 1.02, 0.99, 1.01, 0.96, 1.04)
    paths = []
    for k in range(columns * rows):
        r, c = divmod(k, columns)
        spec = TileSpec(10 + r * h * 0.75 + (k % 2) * 0.5, 10 + c * w * 0.75 + (k % 3), gains[k % len(gains)])
        paths.append(write_tile(folder / f"tile{k}.dng", picture, spec, shape, rng))
    write_flat(folder / "flat.dng", picture, shape, rng)
    return paths


def ours(paths: list[Path], folder: Path, *, flat: bool = True) -> float:
    out = folder / ("ours.dng" if flat else "ours-no-flat.dng")
    out.unlink(missing_ok=True)
    t = time.perf_counter()
    args = [sys.executable, "-m", "medianscan", "stitch", *map(str, paths)]
    args += ["--flat", str(folder / "flat.dng")] if flat else []
    subprocess.run([*args, "--output", str(out)], check=True, capture_output=True)
    return time.perf_counter() - t


def warm(paths: list[Path], folder: Path) -> float:
    """The stitch called in this process (its imports paid, the flat's gains cached by the first call)."""
    from medianscan.stitch.pipeline import StitchOptions, stitch

    t = time.perf_counter()
    stitch(paths, folder / "warm.dng", StitchOptions(flat=folder / "flat.dng"))
    return time.perf_counter() - t


def develop(paths: list[Path], folder: Path) -> list[Path]:
    import rawpy
    import tifffile

    tiffs = []
    for path in paths:
        with rawpy.imread(str(path)) as raw:
            rgb = raw.postprocess(output_bps=16, use_camera_wb=True, no_auto_bright=True)
        tiffs.append(folder / f"{path.stem}.tif")
        tifffile.imwrite(tiffs[-1], rgb)
    return tiffs


def hugin(tiffs: list[Path], folder: Path) -> float:
    work = folder / "hugin"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    pto = str(work / "p.pto")
    steps = [
        ["pto_gen", "-o", pto, *map(str, tiffs)],
        ["cpfind", "--multirow", "-o", pto, pto],
        ["cpclean", "-o", pto, pto],
        ["autooptimiser", "-a", "-m", "-l", "-s", "-o", pto, pto],
        ["pano_modify", "--canvas=AUTO", "--crop=AUTO", "-o", pto, pto],
        ["nona", "-m", "TIFF_m", "-o", str(work / "part"), pto],
    ]
    t = time.perf_counter()
    for step in steps:
        subprocess.run(step, check=True, capture_output=True, cwd=work)
    parts = sorted(work.glob("part*.tif"))
    subprocess.run(["enblend", "-o", str(work / "out.tif"), *map(str, parts)], check=True, capture_output=True)
    return time.perf_counter() - t


def floor(paths: list[Path], folder: Path) -> float:
    size = json.loads((folder / "ours.json").read_text())
    t = time.perf_counter()
    frames = [read_frame(p, "raw") for p in paths]
    first = frames[0]
    assert first.layout is not None
    mosaic = np.zeros((size["height"], size["width"]), np.uint16)
    layout = replace(
        first.layout, active_area=(0, 0, *mosaic.shape), default_crop=(0, 0, mosaic.shape[1], mosaic.shape[0])
    )
    dng.write_dng(folder / "floor.dng", mosaic, layout, first.camera, first.exposure, preview=False)
    return time.perf_counter() - t


def floor_process(folder: Path) -> float:
    """The floor as its own process: `python -m bench stitch --floor-of FOLDER`."""
    t = time.perf_counter()
    args = [sys.executable, "-m", "bench", "stitch", "--floor-of", str(folder)]
    done = subprocess.run(args, capture_output=True, text=True, check=False, cwd=Path(__file__).resolve().parents[1])
    if done.returncode:
        raise SystemExit(f"the floor as a process failed: {done.stderr.strip()}")
    return time.perf_counter() - t


def large_set(picture: Picture, folder: Path) -> list[Path]:
    """Nine 24 MP tiles (the picture scaled up 4.3x, so that a 3x3 grid of 6000x4000 tiles at a quarter's overlap
    stays inside it) in `folder`, with their flat."""
    from scipy import ndimage

    from tests.tiles import Picture

    big = Picture(ndimage.zoom(picture.rgb, (4.3, 4.3, 1), order=1).astype(np.float32), picture.scene)
    return make_set(big, folder, 3, 3, (4000, 6000))


def memory(paths: list[Path], folder: Path, *, after_blend: bool = False) -> tuple[float, float, dict[str, int]]:
    """Peak memory (MB) and seconds of the stitch process on `paths`, and the output's size. The output is
    FOLDER/ours.dng, whose size the floor as a process then writes. `after_blend`: the process starts with the
    heap as a blend leaves it in a worker (glibc's mmap threshold fixed at 1 MiB), as a daemon's stitch may."""
    out = folder / "ours.dng"
    out.unlink(missing_ok=True)
    t = time.perf_counter()
    args = [sys.executable, "-m", "medianscan", "stitch", *map(str, paths), "--flat", str(folder / "flat.dng")]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(1 << 20)} if after_blend else None
    # Started from a small launcher: a child forked from this process (gigabytes of picture) would report this
    # process's size as its peak, since Linux keeps the highest RSS across exec.
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, *args, "--output", str(out)], capture_output=True, text=True, check=False, env=env
    )
    code, peak = (int(v) for v in done.stdout.split())
    if code:
        raise SystemExit(f"the 24 MP stitch failed: {done.stderr.strip()}")
    size = json.loads(out.with_suffix(".json").read_text())
    return peak / 1024, time.perf_counter() - t, {"width": size["width"], "height": size["height"]}


def imports_peak() -> float:
    """Peak memory (MB) of a process that imports the stitch and does nothing: the part of any peak that is
    Python, NumPy and LibRaw (SciPy too, before the stitch stopped importing it)."""
    args = [sys.executable, "-c", "import medianscan.stitch.pipeline"]
    done = subprocess.run([sys.executable, "-c", _PEAK, *args], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[1]) / 1024


def large(picture: Picture, folder: Path, repeats: int) -> None:
    """The nine 24 MP tiles' figures: peak memory, and time against the floor as a process, alternating."""
    from medianscan.stitch import write

    folder.mkdir()
    big = large_set(picture, folder)
    runs, floors, after_blend = [], [], []
    for _ in range(repeats):
        runs.append(memory(big, folder))
        floors.append(floor_process(folder))
        after_blend.append(memory(big, folder, after_blend=True)[1])
    peak, size = max(r[0] for r in runs), runs[0][2]
    seconds, fresh = statistics.median(r[1] for r in runs), statistics.median(floors)
    tile, band = 4000 * 6000 * 4, write.BAND_ROWS * size["width"] * 4
    base = imports_peak()
    print(
        f"nine 24 MP tiles -> {size['width']}x{size['height']}: {seconds:.1f} s, peak {peak:.0f} MB "
        f"({peak - base:.0f} MB over the {base:.0f} MB the imports alone take); two tiles as float32 and a "
        f"band ({write.BAND_ROWS} rows, float32): {(2 * tile + band) / 2**20:.0f} MB"
    )
    print(f"  floor as a process {fresh:.1f} s; ours / floor as a process (both fresh): {seconds / fresh:.2f}x")
    worker = statistics.median(after_blend)
    print(f"  as in a worker after a blend (its 1 MiB mmap threshold): {worker:.1f} s, {worker / seconds:.2f}x ours")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory", action="store_true", help="also nine 24 MP tiles: peak memory and speed")
    parser.add_argument("--large-repeats", type=int, default=1, help="runs of the 24 MP stitch and its floor")
    parser.add_argument("--floor-of", type=Path, help=argparse.SUPPRESS)  # the floor, run as its own process
    args = parser.parse_args(argv)
    if args.floor_of is not None:
        floor(sorted(args.floor_of.glob("tile*.dng")), args.floor_of)
        return 0
    from tests.conftest import find_sample_raw
    from tests.tiles import load_picture

    raw = find_sample_raw()
    if raw is None:
        print("the sample CR2 is missing (make test installs it)")
        return 1
    missing = [tool for tool in HUGIN if shutil.which(tool) is None]
    picture = load_picture(raw)
    with tempfile.TemporaryDirectory(prefix="bench-stitch-") as name:
        folder = Path(name)
        paths = make_set(picture, folder, 3, 2, (1000, 1400))  # six 1.4 MP tiles
        tiffs = develop(paths, folder)
        times: dict[str, list[float]] = {
            "ours": [], "ours, no flat": [], "warm": [], "hugin": [], "floor": [], "floor as a process": []
        }  # fmt: skip
        warm(paths, folder)  # imports, and the flat's gains into its cache
        for _ in range(args.repeats):
            times["ours"].append(ours(paths, folder))
            times["ours, no flat"].append(ours(paths, folder, flat=False))
            times["warm"].append(warm(paths, folder))
            if not missing:
                times["hugin"].append(hugin(tiffs, folder))
            times["floor"].append(floor(paths, folder))
            times["floor as a process"].append(floor_process(folder))
        median = {k: statistics.median(v) for k, v in times.items() if v}
        print(f"six 1.4 MP tiles, medians of {args.repeats}:")
        for key, value in median.items():
            print(f"  {key:18s} {value:7.2f} s")
        if "hugin" in median:
            print(f"  hugin / ours: {median['hugin'] / median['ours']:.1f}x")
        else:
            print(f"  hugin: missing {', '.join(missing)} (scripts/system-packages.sh bench)")
        fresh = median["floor as a process"]
        print(f"  ours / floor as a process (both fresh): {median['ours'] / fresh:.2f}x")
        print(f"  ours without the flat / floor as a process (both fresh): {median['ours, no flat'] / fresh:.2f}x")
        print(f"  warm / floor (both in this process): {median['warm'] / median['floor']:.1f}x")
        print(f"  ours / floor (fresh against warm): {median['ours'] / median['floor']:.1f}x")
        if args.memory:
            large(picture, folder / "large", args.large_repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
