"""What the operator console costs, measured side by side in one run on the simulated camera:

- live-view rate: frames per second a browser-like client (another process reading the MJPEG stream) gets from
  the console, against the backend's bare preview loop (`camera.preview()` back to back); goal 0.9x or better;
- press to shutter: the time from a press to the first frame's shutter, live view watched against not watched;
  goal at most 50 ms more (a press waits for at most the preview frame under way);
- cadence: negatives per minute through the whole daemon (bench_cadence) with a console client watching
  against none; goal 1.05x or better;
- CPU: the daemon's CPU (all its threads) while one client watches at 10 fps, against the bare loop at 10 fps.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from urllib.parse import urlsplit

from bench import bench_cadence
from medianscan.capture.camera.simulated.camera import SimulatedCamera
from medianscan.capture.events import Answer
from medianscan.config.schema import Config
from medianscan.library.manifest import read_manifest
from medianscan.service.capture import Daemon


def client(url: str, seconds: float | None = None) -> subprocess.Popen[bytes]:
    """A browser-like client in its own process: it reads the MJPEG stream and prints the frames it got."""
    args = [sys.executable, "-m", "bench.bench_console", "--client", url]
    if seconds is not None:
        args += ["--seconds", str(seconds)]
    return subprocess.Popen(args, stdout=subprocess.PIPE)


def read_events(url: str) -> None:
    """What the page does beside the live view: follow the state and focus events."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    conn.request("GET", "/api/events")
    response = conn.getresponse()
    while response.readline():
        pass


def read_stream(url: str, seconds: float | None) -> int:
    """Count whole JPEG parts of the MJPEG stream at `url` for `seconds` (None: until killed), following the
    event stream meanwhile, as the console's page does."""
    threading.Thread(target=read_events, args=(url,), daemon=True).start()
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    conn.request("GET", "/api/live.mjpg")
    response = conn.getresponse()
    count, started = 0, None
    while seconds is None or started is None or time.monotonic() - started < seconds:
        line = response.readline()
        if not line:
            break
        if line.startswith(b"Content-Length:"):
            response.readline()
            response.read(int(line.split(b":")[1]))
            if started is None:
                started = time.monotonic()  # count from the first frame: start-up is not the rate
            else:
                count += 1
    print(count, flush=True)
    return count


def bare_loop(fps: float, seconds: float) -> tuple[float, float]:
    """Frames per second and CPU seconds per second of `camera.preview()` back to back."""
    cfg = Config().camera
    cfg.simulated.preview_fps = fps
    camera = SimulatedCamera(cfg)
    camera.connect()
    camera.preview()
    cpu0, t0, count = time.process_time(), time.monotonic(), 0
    while time.monotonic() - t0 < seconds:
        camera.preview()
        count += 1
    wall = time.monotonic() - t0
    return count / wall, (time.process_time() - cpu0) / wall


def console_daemon(root: Path, fps: float) -> Daemon:
    cfg = Config(library=root, frames=3)
    cfg.camera.backend = "simulated"
    cfg.camera.simulated.preview_fps = fps
    cfg.console.listen, cfg.console.live_fps = "127.0.0.1:0", fps
    cfg.triggers.socket = root.parent / f"{root.name}.sock"
    return Daemon(cfg)


def console_rate(root: Path, fps: float, seconds: float, watched: bool = True) -> tuple[float, float]:
    """Frames per second one client gets from the console, and the daemon's CPU seconds per second meanwhile
    (`watched` False: no client, the daemon idle)."""
    daemon = console_daemon(root, fps)
    result: list[float] = []

    def watch() -> None:
        try:
            while daemon.console is None or not daemon.link.tried.is_set():
                time.sleep(0.05)
            if not watched:
                time.sleep(1.0)
                cpu0, t0 = _cpu(), time.monotonic()
                time.sleep(seconds)
                result.extend([0.0, (_cpu() - cpu0) / (time.monotonic() - t0)])
                return
            reader = client(daemon.console.url, seconds)
            time.sleep(1.0)  # the client's start-up and the first frame
            cpu0, t0 = _cpu(), time.monotonic()
            out, _ = reader.communicate(timeout=seconds + 30)
            result.extend([int(out) / seconds, (_cpu() - cpu0) / (time.monotonic() - t0)])
        finally:
            daemon.stop()

    threading.Thread(target=watch, daemon=True).start()
    daemon.run()
    return result[0], result[1]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def press_delays(root: Path, presses: int, watched: bool) -> list[float]:
    """Seconds from each press to its burst's first shutter, with or without a console client watching."""
    daemon = console_daemon(root, 30.0)
    delays: list[float] = []

    def operator() -> None:
        reader = None
        try:
            while daemon.console is None or not daemon.link.tried.is_set():
                time.sleep(0.05)
            if watched:
                reader = client(daemon.console.url)
                while not daemon.live.state().running:
                    time.sleep(0.05)
            for i in range(presses):
                time.sleep(0.113 * (i % 3 + 1))  # anywhere into a preview frame
                reply: Future[Answer] = Future()
                pressed = time.time()
                daemon.hub.emit("capture", "bench", reply)
                reply.result(60)
                burst = read_manifest(daemon.library.last_stack() or root).burst
                assert burst is not None
                delays.append(burst.started - pressed)
        finally:
            if reader is not None:
                reader.terminate()
            daemon.stop()

    threading.Thread(target=operator, daemon=True).start()
    daemon.run()
    return delays


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_console", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--fps", type=float, default=30.0, help="the simulated body's live-view rate")
    parser.add_argument("--presses", type=int, default=9)
    parser.add_argument("--negatives", type=int, default=5, help="for the cadence runs")
    parser.add_argument("--client", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        read_stream(args.client, args.seconds if "--seconds" in (argv or sys.argv) else None)
        return 0
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        root = Path(tmp)
        bare_fps, _ = bare_loop(args.fps, args.seconds)
        seen_fps, _ = console_rate(root / "rate", args.fps, args.seconds)
        print(
            f"live view at {args.fps:.0f} fps from the body: bare preview loop {bare_fps:.1f} fps, through the "
            f"console to one client {seen_fps:.1f} fps: {seen_fps / bare_fps:.2f}x (goal >= 0.9x)"
        )

        closed = press_delays(root / "closed", args.presses, watched=False)
        opened = press_delays(root / "open", args.presses, watched=True)
        extra = statistics.median(opened) - statistics.median(closed)
        print(
            f"press to shutter: {1000 * statistics.median(closed):.0f} ms without a console client, "
            f"{1000 * statistics.median(opened):.0f} ms while one watches (worst {1000 * max(opened):.0f} ms): "
            f"{1000 * extra:+.0f} ms (goal <= 50 ms)"
        )

        cadence = argparse.Namespace(
            negatives=args.negatives, frames=9, seconds_per_frame=0.5, advance=0.5, width=1536, height=1024
        )
        off = bench_cadence.one_run(root / "cadence-closed", cadence, blend=True)[0]
        on = bench_cadence.one_run(root / "cadence-open", cadence, blend=True, watch=client)[0]
        print(
            f"cadence: {60 / off:.1f} negatives per minute without a console client, {60 / on:.1f} with one "
            f"watching: {on / off:.3f}x the time per negative (goal <= 1.05x)"
        )

        _, bare10 = bare_loop(10.0, args.seconds)
        _, idle = console_rate(root / "idle", 10.0, args.seconds, watched=False)
        _, console10 = console_rate(root / "cpu", 10.0, args.seconds)
        print(
            f"CPU at 10 fps: bare preview loop {100 * bare10:.1f} % of a core; the daemon idle {100 * idle:.1f} %, "
            f"serving one client {100 * console10:.1f} %: the console costs "
            f"{100 * (console10 - idle - bare10):.1f} % of a core beyond the preview calls themselves"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
