"""What the camera's rendering (outputs/camera_rendering, learned for a changed preview) costs a flat-fielded blend,
and that a faster fit changes no output: `medianscan blend --flat` of 5 frames as a whole process, paired in one
run (the order alternating every round) for each revision given, on the CR2 sample (whose JPEG the fit cannot
match: sRGB's curve stands in) and on the stage scene of tests/layouts (a camera DNG whose rendering is learned).

`python -m bench flat_preview BASE [REV ...] [--files FILE ...]`: each REV is a revision's medianscan package
(compare.install); `--files` lays this checkout's files over the last revision's package (a change on top of it,
whatever else the checkout has in progress). Rows: median wall and CPU seconds per side, and the median of the
rounds' ratios against BASE. Then every side's blend of each stack once more: the embedded previews (what
RawTherapee's auto-matched curve reads) and the DNGs' raw data compared byte for byte with the last revision's.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.compare import ROOT, Row, Side, check_isolated, install, linked, run_process, time_row
from tests.conftest import find_sample_raw

FRAMES = 5


def make_stacks(where: Path) -> dict[str, tuple[Path, Path]]:
    """name -> (stack folder, master flat DNG), built once (the flats blended by this checkout)."""
    from medianscan.blend.options import BlendOptions
    from medianscan.blend.pipeline import blend_stack
    from medianscan.blend.reading.frames import read_frame
    from medianscan.outputs.dng import write_dng
    from tests.layouts import falloff, scene_dng

    where.mkdir()
    stacks: dict[str, tuple[Path, Path]] = {}
    light = falloff()
    bare = where / "stage-light"
    bare.mkdir()
    for i in range(3):
        scene_dng(bare / f"l_{i + 1:02d}.dng", "light", preview=True, light=light, seed=30 + i)
    stage = where / "stage"
    stage.mkdir()
    for i in range(FRAMES):
        scene_dng(stage / f"s_{i + 1:02d}.dng", "stage", preview=True, light=light, seed=40 + i)
    stacks["stage"] = (stage, blend_stack(bare, BlendOptions()).output)
    raw = find_sample_raw()
    if raw is None:
        print("cr2 row: skipped, no sample raw (set MEDIANSCAN_SAMPLE_RAW)")
        return stacks
    bare, cr2 = where / "cr2-light", where / "cr2"
    bare.mkdir()
    cr2.mkdir()
    frame = read_frame(raw)
    assert frame.layout is not None
    rows, columns = np.indices(frame.pixels.shape) / np.array(frame.pixels.shape)[:, None, None]
    level = frame.layout.white_level * (0.6 - 0.3 * ((rows - 0.5) ** 2 + (columns - 0.5) ** 2))  # the bare light
    rng = np.random.default_rng(3)
    for i in range(3):
        mosaic = np.rint(level + rng.normal(0, 8, level.shape)).astype(np.uint16)
        write_dng(bare / f"l_{i + 1:02d}.dng", mosaic, frame.layout, frame.camera, frame.exposure)
    for i in range(FRAMES):
        shutil.copyfile(raw, cr2 / f"c_{i + 1:02d}{raw.suffix}")
    stacks["cr2"] = (cr2, blend_stack(bare, BlendOptions()).output)
    return stacks


def overlaid(side: Side, files: list[str], where: Path) -> Side:
    """`side`'s package with this checkout's `files` laid over it (a copy: the installed one stays as it is)."""
    assert side.site is not None
    site = where / "overlaid-site"
    shutil.copytree(side.site, site)
    for name in files:
        shutil.copyfile(ROOT / name, site / name)
    return Side(f"{side.name} + {len(files)} files", site, where / "overlaid-kernels")


def blend_command(stack: Path, flat: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "medianscan", "blend", str(stack), "--flat", str(flat), "--output", str(out)]


def flat_row(label: str, sides: list[Side], repeats: int, *, stack: Path, flat: Path, where: Path) -> Row:
    folders = {s.name: linked(stack, where / f"{stack.name}-{i}") for i, s in enumerate(sides)}

    def one(side: Side) -> tuple[float, float]:
        outputs = folders[side.name].with_name(folders[side.name].name + "-out")
        shutil.rmtree(outputs, ignore_errors=True)
        outputs.mkdir()
        return run_process(blend_command(folders[side.name], flat, outputs / "blend.dng"), side, where)

    return time_row(Row(label), sides, repeats, one)


def output_digests(side: Side, stack: Path, flat: Path, where: Path) -> tuple[str, str]:
    """The sha256 of the blend's embedded preview and of its raw data, as `side` writes them."""
    out = where / f"check-{abs(hash(side.name))}-{stack.name}.dng"
    out.unlink(missing_ok=True)
    run_process(blend_command(stack, flat, out), side, where)
    code = (
        "import hashlib, sys; from pathlib import Path; import numpy as np;"
        "from medianscan.outputs.preview import stored_preview;"
        "from medianscan.blend.reading.frames import read_frame;"
        "p = Path(sys.argv[1]); s = stored_preview(p);"
        "print(hashlib.sha256(b'' if s is None else s.data).hexdigest(),"
        " hashlib.sha256(np.ascontiguousarray(read_frame(p, 'raw').pixels).tobytes()).hexdigest())"
    )
    found = subprocess.run(
        [sys.executable, "-c", code, str(out)], cwd=where, env=side.env(), check=True, capture_output=True, text=True
    ).stdout.split()
    return found[0], found[1]


def report(rows: list[Row], sides: list[Side]) -> None:
    base = sides[0].name
    print(f"\nbase = {base}; each row: median wall s (CPU s) per side, median of the rounds' ratios to base")
    for row in rows:
        print(f"  {row.name}", flush=True)
        for side in sides:
            runs = row.runs[side.name]
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            pairs = list(zip(runs, row.runs[base], strict=True))
            ratio = statistics.median(m[0] / t[0] for m, t in pairs)
            cpu_ratio = statistics.median(m[1] / t[1] for m, t in pairs)
            extra = statistics.median(m[0] - t[0] for m, t in pairs)
            print(
                f"    {side.name:<40} {wall:6.2f} s ({cpu:5.2f} CPU)  {ratio:5.3f}x wall, {cpu_ratio:5.3f}x CPU,"
                f" {1e3 * extra:+5.0f} ms a blend"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench flat_preview", description=__doc__)
    parser.add_argument("revisions", nargs="+", help="the base revision first, then the others")
    parser.add_argument("--files", nargs="*", default=[], help="this checkout's files over the last revision")
    parser.add_argument("--repeats", type=int, default=7, help="rounds per row (default 7)")
    parser.add_argument("--no-check", action="store_true", help="time only: compare no outputs")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-flat-preview-") as tmp:
        where = Path(tmp)
        sides = [install(rev) for rev in args.revisions]
        if args.files:
            sides.append(overlaid(sides[-1], args.files, where))
        for side in sides:
            check_isolated(side, where)
        stacks = make_stacks(where / "stacks")
        rows = []
        for name, (stack, flat) in stacks.items():
            label = f"medianscan blend --flat, {FRAMES} x {name} (whole process)"
            rows.append(flat_row(label, sides, args.repeats, stack=stack, flat=flat, where=where))
            print(f"  timed: {label} ({time.perf_counter() - started:.0f} s)", flush=True)
            report(rows[-1:], sides)
        if args.no_check:
            return 0
        same = True
        for name, (stack, flat) in stacks.items():
            digests = {side.name: output_digests(side, stack, flat, where) for side in sides[-2:]}
            first, last = digests.values()
            print(f"  {name}: preview {'same' if first[0] == last[0] else 'DIFFERS'},", end=" ")
            print(f"raw data {'same' if first[1] == last[1] else 'DIFFERS'} ({' vs '.join(digests)})")
            same &= first == last
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
