"""Back-to-back continuous bursts whose release is let go late, as a real body's is: one press after another to the
capture daemon (`medianscan run`, in this process, `camera.strategy: native`) on the simulated body the burst
failed on in issue 27 (preset usb3-8fps: trigger 1.0 s, 8 frames/s, 40 MB raws at 150 MB/s; it shoots a random
0-3 shots past the release, seeded), the second half with both CPUs taken by busy-loop processes.

Each burst's time is the daemon's own ("burst done, 9 frames in X s") against the model's bound for it: the best a
perfect host could do for the frames alone (`bound N`), and for what this body gave it, the frames and the extra
shots it took (fetched as spares with `camera.extra_shots: keep`, only waited for with `delete`). After each burst
the body's card must be empty and every extra shot named in the stack's manifest.

The simulated body renders each shot (a real DNG) in this process, as a real body does not: its raws are kept small
(384x256, about 10 ms a shot) so that what is measured is the host's burst, not the simulator's rendering; the
link's time is the model's 40 MB whatever their size.

    python -m bench burst_late [--bursts 50] [--frames 9] [--extra keep|delete] [--size 384x256]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Literal, cast

from medianscan.capture.camera.simulated.camera import SimulatedCamera
from medianscan.capture.camera.simulated.timing import PRESETS
from medianscan.capture.events import Answer
from medianscan.config.schema import CameraConfig, Config
from medianscan.library.manifest import read_manifest
from medianscan.service.capture import Daemon

PRESET = "usb3-8fps"


@contextlib.contextmanager
def cpus_busy(count: int) -> Iterator[None]:
    """`count` busy-loop processes while the block runs."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def press(daemon: Daemon) -> Answer:
    reply: Future[Answer] = Future()
    daemon.hub.emit("capture", "bench", reply)
    return reply.result(300)


def daemon_config(root: Path, n: int, extra: str, size: str) -> Config:
    """The daemon's config: the simulated body's continuous burst, its card and library under `root`."""
    width, height = (int(v) for v in size.split("x"))
    cfg = Config(library=root / "library", frames=n, workers=1)
    cfg.camera = CameraConfig(backend="simulated", strategy="native")
    cfg.camera.extra_shots = cast(Literal["keep", "delete"], extra)
    cfg.camera.simulated.width, cfg.camera.simulated.height = width, height
    cfg.camera.simulated.timing.preset = PRESET
    cfg.camera.simulated.card = root / "card"
    cfg.console.listen = None
    cfg.triggers.socket = root / "control.sock"
    return cfg


def summary(worst: list[tuple[float, float, int]], bursts: int, n: int) -> None:
    """The worst and the mean ratio of the idle half and of the busy half."""
    for label, part in (("idle", [w for w in worst if w[2] <= bursts // 2]),
                        ("busy", [w for w in worst if w[2] > bursts // 2])):  # fmt: skip
        if part:
            top = max(part)
            print(f"worst {label}: burst {top[2]}, {top[0]:.3f}x its bound ({top[1]:.3f}x the bound for the "
                  f"{n} frames alone); mean {sum(w[0] for w in part) / len(part):.3f}x")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_burst_late", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bursts", type=int, default=50)
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--extra", choices=("keep", "delete"), default="keep", help="camera.extra_shots")
    parser.add_argument("--busy", type=int, default=2, help="busy-loop processes for the second half")
    parser.add_argument("--size", default="384x256", help="the simulated raws' size (rendered in this process)")
    args = parser.parse_args(argv)
    n, timing = args.frames, PRESETS[PRESET][0]
    keep = args.extra == "keep"
    root = Path(tempfile.mkdtemp(prefix="bench-burst-late-"))
    cfg = daemon_config(root, n, args.extra, args.size)
    card = root / "card"
    daemon = Daemon(cfg, triggers=False)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    print(f"{args.bursts} back-to-back {n}-frame native bursts on the simulated {PRESET} body (release late by "
          f"0-{timing.late_shots} shots), extra_shots: {args.extra}; bursts {args.bursts // 2 + 1}.. with "
          f"{args.busy} busy-loop processes")  # fmt: skip
    print(f"{'burst':>5} {'busy':>4} {'seconds':>8} {'late':>4} {'extra':>5} {'bound N':>8} {'x N':>6} "
          f"{'bound':>7} {'x bound':>8}")  # fmt: skip
    worst: list[tuple[float, float, int]] = []  # (x bound, x N, burst)
    failures = []
    try:
        daemon.link.tried.wait(30)
        for k in range(1, args.bursts + 1):
            busy = k > args.bursts // 2
            with cpus_busy(args.busy) if busy else contextlib.nullcontext():
                answer = press(daemon)
            found = re.search(r"burst done, (\d+) frames in ([\d.]+) s", answer.text)
            camera = daemon.link.camera
            late = camera.body.late_taken[-1] if isinstance(camera, SimulatedCamera) else -1
            left = sorted(p.name for p in card.iterdir())
            if not answer.ok or found is None or int(found.group(1)) != n or left:
                failures.append(f"burst {k}: {answer.text}; left on the body: {left or 'none'}")
                continue
            stack = next(p for p in (root / "library").rglob(str(answer.stack)) if p.is_dir())
            record = read_manifest(stack).burst
            if record is None:  # pragma: no cover - the daemon always records its burst
                failures.append(f"burst {k}: no burst record")
                continue
            extra = len(record.spares) + len([f for f in record.spares_deleted if f.upper().endswith(".DNG")])
            seconds = record.seconds
            alone, given = timing.bound_seconds(n), timing.bound_seconds(n, extra, fetch_extra=keep)
            worst.append((seconds / given, seconds / alone, k))
            print(f"{k:>5} {'yes' if busy else 'no':>4} {seconds:8.2f} {late:>4} {extra:>5} {alone:8.2f} "
                  f"{seconds / alone:6.3f} {given:7.2f} {seconds / given:8.3f}", flush=True)  # fmt: skip
    finally:
        daemon.stop()
        thread.join(60)
        shutil.rmtree(root, ignore_errors=True)
    for line in failures:
        print("FAILED", line)
    summary(worst, args.bursts, n)
    print(f"{len(worst)} of {args.bursts} bursts done with {n} frames and nothing left on the body")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
