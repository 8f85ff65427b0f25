"""This checkout against another revision, row by row, in one run: is any blend slower than it was?

`python -m bench --against REV` (or `make bench-compare BASE=REV`) installs REV's `medianscan` package beside this
checkout (`git archive` into .bench/<commit>/site, put first on PYTHONPATH; this venv's Python and libraries, so
only the code differs) with its own kernel cache (.bench/<commit>/kernels; ours in .bench/work/kernels), then times
each headline row of the blend benches for both, interleaved (the order alternates every round: AB, BA, ...) and
prints the median of the per-round ratios ours / theirs. The rows:

- tiff: `medianscan blend` of 9 x 24 MP 16-bit RGB TIFFs, whole process (bench_blend's TIFF row)
- dng:  `medianscan blend` of 5 raw DNGs (the CR2 sample's mosaic plus fresh noise each), whole process
- cr2:  `medianscan blend` of 5 copies of the CR2 sample, whole process
- dng warm / cr2 warm: `blend_stack` in a long-lived process per side, as a blend worker runs it (bench_blend's
  raw row: 9 CR2 copies)

Both sides read the same files (hard links: one page cache) and write their own outputs, and each keeps its own
bytecode cache beside its kernels (compiled in the untimed first round, as an installed package has it). The host
is shared, so wall times wander: the ratio of each round's pair, its median over rounds, and the CPU-seconds ratio
(which other processes disturb less) are what to read. A row whose ratio is above --limit is marked SLOWER and the
exit status is 1.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.bench_blend import make_tiff_stack
from tests.conftest import find_sample_raw

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".bench"
WORKER = """
import json, sys, time
from pathlib import Path
import medianscan
from medianscan.blend.pipeline import blend_stack
print(json.dumps(medianscan.__file__), flush=True)
for line in sys.stdin:
    folder = Path(line.strip())
    wall, cpu = time.perf_counter(), time.process_time()
    blend_stack(folder)
    print(json.dumps([time.perf_counter() - wall, time.process_time() - cpu]), flush=True)
"""


@dataclass(frozen=True)
class Side:
    """One revision's environment: where its package is (None: this checkout) and its own kernel cache."""

    name: str
    site: Path | None
    kernels: Path

    def env(self) -> dict[str, str]:
        """The side's environment: its package first on the path, its kernel cache, and its own bytecode cache
        (written, whatever PYTHONDONTWRITEBYTECODE says: an installed package has its bytecode, and a side that
        compiled its modules in every timed process while the other read its .pyc would pay ~0.13 s of CPU a
        process that no user pays)."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
        env["MEDIANSCAN_KERNEL_CACHE"] = str(self.kernels)
        env["PYTHONPYCACHEPREFIX"] = str(self.kernels.with_name("bytecode"))
        if self.site is not None:
            env["PYTHONPATH"] = str(self.site)
        return env


@dataclass
class Row:
    """One headline row: both sides' (wall, CPU) seconds per round, in the order the rounds ran."""

    name: str
    runs: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def add(self, side: str, wall: float, cpu: float) -> None:
        self.runs.setdefault(side, []).append((wall, cpu))


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def install(revision: str, prefix: str = "") -> Side:
    """REV's medianscan package under .bench/<commit>/site (once: later runs reuse it)."""
    commit = git("rev-parse", "--verify", f"{revision}^{{commit}}")
    home = CACHE / commit[:12]
    site = home / "site"
    if not (site / "medianscan" / "__init__.py").is_file():
        tar = subprocess.run(["git", "archive", commit, "medianscan"], cwd=ROOT, check=True, capture_output=True)
        home.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix="site.", dir=home))
        with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as archive:
            archive.extractall(partial, filter="data")
        shutil.rmtree(site, ignore_errors=True)
        partial.rename(site)
        print(f"installed {revision} ({commit[:12]}) in {site.relative_to(ROOT)}", flush=True)
    theirs, ours = (
        _dependencies(git("show", f"{commit}:pyproject.toml")),
        _dependencies((ROOT / "pyproject.toml").read_text()),
    )
    if theirs != ours:
        print(f"note: {revision} and this checkout differ in {', '.join(sorted(theirs ^ ours))}; both run on this venv")
    return Side(f"{prefix}{revision} ({commit[:8]})", site, home / "kernels")


def _dependencies(pyproject: str) -> set[str]:
    """The runtime requirements a pyproject.toml lists (enough to say when two revisions differ)."""
    block = pyproject.split("dependencies = [", 1)[1].split("]", 1)[0]
    return {line.strip().strip(",").strip('"') for line in block.splitlines() if line.strip()}


def check_isolated(side: Side, where: Path) -> None:
    """Each side must import its own package (never this checkout's by the working directory)."""
    code = "import medianscan; print(medianscan.__file__)"
    found = Path(
        subprocess.run(
            [sys.executable, "-c", code], cwd=where, env=side.env(), check=True, capture_output=True, text=True
        ).stdout.strip()
    ).resolve()
    expected = (side.site or ROOT).resolve()
    if not found.is_relative_to(expected):
        raise SystemExit(f"{side.name} imports {found}, not its own package under {expected}")


def run_process(cmd: list[str], side: Side, where: Path) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one whole process, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=where, env=side.env(), check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{side.name}: {' '.join(cmd[2:])} failed: {proc.stderr.decode(errors='replace')[-600:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


class Worker:
    """A long-lived process of one side that blends the stacks it is sent, as a blend worker does."""

    def __init__(self, side: Side, where: Path) -> None:
        self.side = side
        self.log = (where / f"worker-{os.getpid()}-{id(self)}.log").open("w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER],
            cwd=where,
            env=side.env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        self._reply()  # the package it imported

    def _reply(self) -> object:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.log.seek(0)
            raise SystemExit(f"{self.side.name}: the blend worker died: {self.log.read()[-600:]}")
        return json.loads(line)

    def blend(self, folder: Path) -> tuple[float, float]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{folder}\n")
        self.proc.stdin.flush()
        reply = self._reply()
        assert isinstance(reply, list)
        return float(reply[0]), float(reply[1])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.log.close()


def raw_dng_stack(folder: Path, raw: Path, n: int) -> None:
    """N DNG frames of the raw's own mosaic plus fresh noise each (as a burst of one negative)."""
    from medianscan.blend.reading.frames import read_frame
    from medianscan.outputs.dng import write_dng

    frame = read_frame(raw)
    assert frame.layout is not None
    rng = np.random.default_rng(5)
    folder.mkdir()
    for i in range(n):
        noisy = frame.pixels.astype(np.float32) + rng.normal(0.0, 20.0, frame.pixels.shape).astype(np.float32)
        mosaic = np.clip(np.rint(noisy), 0, frame.layout.white_level).astype(np.uint16)
        write_dng(folder / f"neg_{i + 1:02d}.dng", mosaic, frame.layout, frame.camera, frame.exposure)


def copies(folder: Path, raw: Path, n: int) -> None:
    folder.mkdir()
    for i in range(n):
        shutil.copyfile(raw, folder / f"neg_{i + 1:02d}{raw.suffix}")


def linked(source: Path, target: Path) -> Path:
    """A folder of hard links to `source`'s frames: the same bytes in the page cache, outputs of its own."""
    target.mkdir()
    for path in sorted(source.iterdir()):
        os.link(path, target / path.name)
        path.read_bytes()  # into the page cache, for both sides alike
    return target


def rounds(repeats: int, sides: list[Side]) -> Iterator[Side]:
    """Every side once per round, the order alternating so neither always runs first."""
    for r in range(repeats):
        yield from sides if r % 2 == 0 else reversed(sides)


def time_row(row: Row, sides: list[Side], repeats: int, one: Callable[[Side], tuple[float, float]]) -> Row:
    for side in sides:  # untimed: kernels loaded (or compiled into each side's cache), pools and plans warm
        one(side)
    for side in rounds(repeats, sides):
        row.add(side.name, *one(side))
    return row


def report(rows: list[Row], base: Side, ours: Side, limit: float) -> bool:
    width = max(len(r.name) for r in rows) + 2
    told = "this checkout" if ours.site is None else ours.name.removeprefix("ours: ")
    print(f"\nours = {told}, base = {base.name}; each row: median times, median of the rounds' ratios")
    print(f"  {'row':<{width}} {'base s':>7} {'ours s':>7} {'ours/base':>10} {'CPU ratio':>10}")
    ok = True
    for row in rows:
        theirs, mine = row.runs[base.name], row.runs[ours.name]
        ratio = statistics.median(m[0] / t[0] for m, t in zip(mine, theirs, strict=True))
        cpu = statistics.median(m[1] / t[1] for m, t in zip(mine, theirs, strict=True))
        verdict = "ok" if ratio <= limit else "SLOWER"
        ok &= ratio <= limit
        print(
            f"  {row.name:<{width}} {statistics.median(t[0] for t in theirs):>7.2f} "
            f"{statistics.median(m[0] for m in mine):>7.2f} {ratio:>9.2f}x {cpu:>9.2f}x  ({verdict}, limit {limit}x)"
        )
    return ok


WHOLE = (  # key, stack, row
    ("tiff", "tiff", "medianscan blend, 9 x 24 MP TIFF (whole process)"),
    ("dng", "dng", "medianscan blend, 5 x raw DNG (whole process)"),
    ("cr2", "cr2", "medianscan blend, 5 x CR2 (whole process)"),
)
WARM = (("dng-warm", "dng", "blend_stack warm, 5 x raw DNG"), ("cr2-warm", "cr2-9", "blend_stack warm, 9 x CR2"))


def make_stacks(stacks: Path, wanted: set[str]) -> None:
    raw = find_sample_raw()
    stacks.mkdir()
    if "tiff" in wanted:
        (stacks / "tiff").mkdir()
        make_tiff_stack(stacks / "tiff", 9, (4000, 6000))
    if raw is None:
        if wanted - {"tiff"}:
            print("raw rows: skipped, no sample raw (set MEDIANSCAN_SAMPLE_RAW)")
        return
    if wanted & {"dng", "dng-warm"}:
        raw_dng_stack(stacks / "dng", raw, 5)
    if "cr2" in wanted:
        copies(stacks / "cr2", raw, 5)
    if "cr2-warm" in wanted:
        copies(stacks / "cr2-9", raw, 9)


@dataclass(frozen=True)
class Plan:
    """Where the run works, the two sides and how many rounds each row takes."""

    where: Path
    sides: list[Side]
    repeats: int


def whole_row(plan: Plan, key: str, stack: Path, label: str) -> Row:
    """`medianscan blend` as a whole process (Python start, imports, kernels loaded, checks, outputs)."""
    where, sides = plan.where, plan.sides
    folders = {s.name: linked(stack, where / f"{key}-{i}") for i, s in enumerate(sides)}
    suffix = ".tif" if key == "tiff" else ".dng"

    def one(side: Side) -> tuple[float, float]:
        outputs = folders[side.name].with_name(folders[side.name].name + "-out")
        shutil.rmtree(outputs, ignore_errors=True)  # a later revision never replaces outputs without --force
        outputs.mkdir()
        out = outputs / f"{key}{suffix}"
        cmd = [sys.executable, "-m", "medianscan", "blend", str(folders[side.name]), "--output", str(out)]
        return run_process(cmd, side, where)

    return time_row(Row(label), sides, plan.repeats, one)


def warm_row(plan: Plan, key: str, stack: Path, label: str) -> Row:
    """`blend_stack` in one long-lived process per side, as the daemon's blend workers run it."""
    where, sides = plan.where, plan.sides
    folders = {s.name: linked(stack, where / f"{key}-{i}") for i, s in enumerate(sides)}
    workers = {s.name: Worker(s, where) for s in sides}
    try:
        return time_row(Row(label), sides, plan.repeats, lambda s: workers[s.name].blend(folders[s.name]))
    finally:
        for worker in workers.values():
            with contextlib.suppress(Exception):
                worker.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench --against", description=__doc__)
    parser.add_argument("revision", help="the revision to compare with (a commit, tag or branch)")
    parser.add_argument(
        "--ours", metavar="REV", help="time this revision as ours instead of the checkout (others' edits in progress)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="rounds per row (default 5)")
    parser.add_argument("--limit", type=float, default=1.05, help="the slowest ratio accepted (default 1.05)")
    keys = [k for k, _, _ in WHOLE + WARM]
    parser.add_argument("--rows", default=",".join(keys), help=f"which rows, comma separated ({', '.join(keys)})")
    args = parser.parse_args(argv)
    wanted = set(args.rows.split(","))
    if wanted - set(keys):
        parser.error(f"unknown rows: {', '.join(sorted(wanted - set(keys)))}")
    base = install(args.revision)
    ours = Side("ours", None, CACHE / "work" / "kernels") if args.ours is None else install(args.ours, "ours: ")
    sides = [base, ours]
    rows: list[Row] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        where = Path(tmp)
        for side in sides:
            check_isolated(side, where)
        make_stacks(where / "stacks", wanted)
        for (key, stack, label), timed in [(r, whole_row) for r in WHOLE] + [(r, warm_row) for r in WARM]:
            if key in wanted and (where / "stacks" / stack).is_dir():
                rows.append(timed(Plan(where, sides, args.repeats), key, where / "stacks" / stack, label))
                print(f"  timed: {label} ({time.perf_counter() - started:.0f} s)", flush=True)
    if not rows:
        print("nothing to compare", file=sys.stderr)
        return 2
    return 0 if report(rows, base, ours, args.limit) else 1


if __name__ == "__main__":
    sys.exit(main())
