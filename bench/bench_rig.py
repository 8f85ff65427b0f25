"""A roll without hands: a simulated strip with slip shot by `scan-roll` on the simulated GRBL rig, against the
same strip shot by pressing (the operator advancing each frame by hand, taken as 4 s a frame, then pressing the
pedal), side by side in one run, both through the daemon on the same simulated body. Printed: minutes per strip,
frames found and shot, blank frames skipped, correcting moves per frame, and the worst centring error, measured
against where the film really was at each burst (the strip's own geometry), not taken from the finder.

    python -m bench rig [--frames 8] [--blank 4] [--slip 0.05] [--preset sony-a7iv] [--burst 9]
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from medianscan.capture.camera.simulated.camera import SimulatedCamera
from medianscan.capture.camera.simulated.strip import SimulatedStrip, strip_of
from medianscan.capture.events import Answer
from medianscan.config.schema import Config, StripConfig
from medianscan.service.capture import Daemon

HAND_ADVANCE_SECONDS = 4.0  # the operator's advance of one frame by hand, watching it into place
PICTURE_MM = 36.0


def config(root: Path, args: argparse.Namespace) -> Config:
    cfg = Config(library=root / "library", frames=args.burst, workers=1)
    cfg.camera.backend = "simulated"
    cfg.camera.simulated.timing.preset = args.preset
    cfg.camera.simulated.card = root / "card"
    blank = [int(v) for v in args.blank.split(",") if v]
    cfg.camera.simulated.strip = StripConfig(frames=args.frames, slip=args.slip, blank=blank, seed=5, start_mm=1.5)
    cfg.rig.port = "simulated"
    cfg.console.listen = None
    cfg.triggers.socket = root / "control.sock"
    return cfg


@contextmanager
def daemon_of(cfg: Config) -> Iterator[Daemon]:
    daemon = Daemon(cfg, triggers=False)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        daemon.link.tried.wait(30)
        yield daemon
    finally:
        daemon.stop()
        thread.join(120)


def ask(daemon: Daemon, action: str) -> Answer:
    reply: Future[Answer] = Future()
    daemon.hub.emit(action, "bench", reply)  # type: ignore[arg-type]
    return reply.result(3600)


@contextmanager
def noting_positions(strip: SimulatedStrip) -> Iterator[list[float]]:
    """Where the film is at each burst (the truth): noted as the real burst starts."""
    at: list[float] = []
    real = SimulatedCamera.burst

    def burst(self: SimulatedCamera, *args: Any, **kwargs: Any) -> Any:
        at.append(strip.carriage.position())
        return real(self, *args, **kwargs)

    SimulatedCamera.burst = burst  # type: ignore[method-assign]
    try:
        yield at
    finally:
        SimulatedCamera.burst = real  # type: ignore[method-assign]


def by_rig(root: Path, args: argparse.Namespace) -> tuple[float, str, list[float], SimulatedStrip]:
    cfg = config(root, args)
    strip = strip_of(cfg.camera.simulated)
    assert strip is not None
    with daemon_of(cfg) as daemon, noting_positions(strip) as at:
        started = time.monotonic()
        answer = ask(daemon, "scan-roll")
        seconds = time.monotonic() - started
    if not answer.ok:
        raise RuntimeError(answer.text)
    return seconds, answer.text, at, strip


def by_hand(root: Path, args: argparse.Namespace) -> tuple[float, int]:
    """The strip by pressing: each exposed frame put exactly in place by hand (HAND_ADVANCE_SECONDS, counted, not
    slept), then the pedal; the daemon's own seconds for each burst."""
    cfg = config(root, args)
    strip = strip_of(cfg.camera.simulated)
    assert strip is not None
    total, pressed = 0.0, 0
    with daemon_of(cfg) as daemon:
        for frame in range(1, args.frames + 1):
            total += HAND_ADVANCE_SECONDS
            if frame in strip.cfg.blank:
                continue  # the operator sees it is blank and moves on
            strip.carriage.go(strip.centre_of(frame) - strip.carriage.position(), 1e6)
            time.sleep(0.06)
            answer = ask(daemon, "capture")
            found = re.search(r"in ([\d.]+) s", answer.text)
            if not answer.ok or found is None:
                raise RuntimeError(answer.text)
            total += float(found[1])
            pressed += 1
    return total, pressed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_rig", description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=8, help="frames on the strip")
    parser.add_argument("--blank", default="4", help="blank frames, comma-separated")
    parser.add_argument("--slip", type=float, default=0.05, help="each move's random error, a fraction of it")
    parser.add_argument("--preset", default="sony-a7iv", help="the simulated body's timing")
    parser.add_argument("--burst", type=int, default=9, help="frames per burst")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench-rig-"))
    try:
        rig_seconds, said, at, strip = by_rig(root / "rig", args)
        hand_seconds, pressed = by_hand(root / "hand", args)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    frames = [strip.frame_at(p) for p in at]
    errors = [abs(p - strip.centre_of(k)) / PICTURE_MM for p, k in zip(at, frames, strict=True) if k is not None]
    corrections = int(m[1]) if (m := re.search(r"(\d+) corrections?", said)) else 0
    print(f"a strip of {args.frames} frames (blank: {args.blank or 'none'}), {args.slip:.0%} slip per move, "
          f"{args.burst}-frame bursts on the simulated {args.preset}")  # fmt: skip
    print(f"{'':<28} {'minutes':>8} {'frames shot':>12}")
    print(f"{'scan-roll (the rig)':<28} {rig_seconds / 60:8.2f} {len(at):12d}")
    print(f"{'pressing (4 s advance)':<28} {hand_seconds / 60:8.2f} {pressed:12d}")
    print(f"scan-roll against pressing: {rig_seconds / hand_seconds:.2f}x the time")
    print(f"frames shot: {frames} (each once: {len(set(frames)) == len(frames)}); corrections: {corrections} "
          f"({corrections / max(1, len(at)):.2f} a frame); worst centring error {max(errors, default=0):.2%} of the "
          "picture's width (the truth)")  # fmt: skip
    print(f'the daemon\'s answer: "{said}"')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
