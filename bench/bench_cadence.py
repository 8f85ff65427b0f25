"""The operator's cadence: negatives per minute through the whole daemon, blending on against blending off.

The daemon runs in this process exactly as `medianscan run` does (camera thread, spawned blend worker,
manifests, fsyncs) on the simulated camera with `seconds_per_frame` standing in for shutter + USB time. An
automatic operator presses, waits for the burst to be done, spends `--advance` seconds moving to the next
negative, and presses again. "Off" is the same daemon whose worker skips the blend (it returns at once), so the
only difference is the blending competing for the CPU and the disk. Runs alternate off/on; the figure is the
median seconds per negative from the first press to the last burst-done, and the ratio on/off is the cost of
blending to the operator (target: at most 1.05x).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medianscan.config.schema import Config
from medianscan.records import BlendRecord
from medianscan.service.capture import Daemon
from medianscan.service.jobs import BlendTask
from medianscan.service.loop import make_pool
from medianscan.service.pool import BlendPool
from medianscan.service.progress import BlendDone, BurstDone, Progress, ServiceError


def skip_blend(stack: Path, task: BlendTask) -> BlendRecord:
    """The 'off' worker job: no blend at all (module level, so the spawned worker can import it)."""
    output = stack / f"{stack.name}_median.dng"
    return BlendRecord(stack, output, output.with_suffix(".json"), (), (), (), 0.0, None)


def start_watching(daemon: Daemon, watch: Callable[[str], Any] | None, deadline: float) -> Any:
    """The console client `watch` starts, once live view runs for it (None without one)."""
    if watch is None or daemon.console is None:
        return None
    client = watch(daemon.console.url)
    while not daemon.live.state().running and time.monotonic() < deadline:
        time.sleep(0.05)
    return client


def one_run(
    root: Path, args: argparse.Namespace, blend: bool, watch: Callable[[str], Any] | None = None
) -> tuple[float, float]:
    """Seconds per negative (press to burst-done, advancing included) and seconds until the last blend.
    With `watch`, the console is served and `watch(url)` starts a client on it (bench_console)."""

    cfg = Config()
    cfg.camera.backend = "simulated"
    cfg.library = root / ("on" if blend else "off")
    cfg.frames = args.frames
    cfg.queue_size = max(4, args.negatives)
    sim = cfg.camera.simulated
    sim.width, sim.height, sim.seconds_per_frame = args.width, args.height, args.seconds_per_frame
    pool = make_pool(cfg) if blend else BlendPool(1, cfg.queue_size, job=skip_blend)
    cfg.console.listen = "127.0.0.1:0" if watch else None
    cfg.triggers.socket = root / f"{'on' if blend else 'off'}.sock"
    daemon = Daemon(cfg, triggers=watch is not None, pool=pool)
    cond = threading.Condition()
    counts: dict[type[Progress], int] = {BurstDone: 0, BlendDone: 0, ServiceError: 0}
    times: dict[str, float] = {}

    def listen(news: Progress) -> None:
        with cond:
            counts[type(news)] = counts.get(type(news), 0) + 1
            if isinstance(news, BlendDone):
                times["blended"] = time.perf_counter()
            cond.notify_all()

    daemon.listeners.append(listen)

    def operator() -> None:
        try:
            deadline = time.monotonic() + 60
            while not daemon.pool.ready() and time.monotonic() < deadline:  # warm, as after a real start-up
                time.sleep(0.05)
            client = start_watching(daemon, watch, deadline)
            times["start"] = time.perf_counter()
            for i in range(args.negatives):
                daemon.request("capture")
                with cond:
                    cond.wait_for(lambda: counts[BurstDone] + counts[ServiceError] > i, 120)  # noqa: B023
                if i + 1 < args.negatives:
                    time.sleep(args.advance)
            times["captured"] = time.perf_counter()
            with cond:
                cond.wait_for(lambda: counts[BlendDone] + counts[ServiceError] >= args.negatives, 300)
            if client is not None:
                client.terminate()
        finally:
            daemon.stop()

    feeder = threading.Thread(target=operator, daemon=True)
    feeder.start()
    daemon.run()
    feeder.join()
    if counts[ServiceError]:
        raise SystemExit(f"{counts[ServiceError]} error(s) during the {'on' if blend else 'off'} run")
    per_negative = (times["captured"] - times["start"]) / args.negatives
    return per_negative, times.get("blended", times["captured"]) - times["start"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_cadence", description=__doc__.splitlines()[0])
    parser.add_argument("--negatives", type=int, default=5)
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--seconds-per-frame", type=float, default=0.5, help="shutter + USB time per frame")
    parser.add_argument("--advance", type=float, default=0.5, help="operator time to move to the next negative")
    parser.add_argument("--width", type=int, default=1536)
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    off: list[float] = []
    on: list[float] = []
    tail: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-cadence-") as tmp:
        for r in range(args.rounds):
            for blend, out in ((False, off), (True, on)):
                per, last = one_run(Path(tmp) / f"round{r}", args, blend)
                out.append(per)
                if blend:
                    tail.append(last - per * args.negatives)
                print(f"  round {r + 1} blending {'on ' if blend else 'off'}: {per:.2f} s per negative", flush=True)
    m_off, m_on = statistics.median(off), statistics.median(on)
    print(
        f"{args.negatives} negatives x {args.frames} frames of {args.width}x{args.height}, "
        f"{args.seconds_per_frame} s per frame, {args.advance} s to advance"
    )
    print(f"blending off: {m_off:.2f} s per negative = {60 / m_off:.1f} negatives per minute")
    print(f"blending on:  {m_on:.2f} s per negative = {60 / m_on:.1f} negatives per minute")
    print(
        f"ratio on/off: {m_on / m_off:.3f}x (target <= 1.05x); last blend done {statistics.median(tail):.1f} s "
        "after the last burst"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
