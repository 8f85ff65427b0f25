"""Bursts at the body's own speed: a burst of N frames on the simulated body standing for each real body (the
presets of capture.camera.simulated.timing, from the figures users reported), by each strategy the body allows,
against the best a perfect host could do with it (the model's bound) and against the serial loop peers run
(fire, wait for the file, download, fsync, rename, delete, and only then fire again), side by side in one run.

The last column is the daemon's own answer ("burst done, 9 frames in X s") with `camera.strategy: auto`, the
figure the operator sees: the daemon runs in this process as `medianscan run` does.

    python -m bench burst [--frames 9] [--presets sony-a7iv,...] [--size 768x512]
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path

from medianscan.atomic import atomic_path
from medianscan.capture.camera.burst.link import Announced
from medianscan.capture.camera.simulated.camera import SimulatedCamera
from medianscan.capture.camera.simulated.timing import PRESETS, BodyTiming
from medianscan.capture.events import Answer
from medianscan.config.schema import CameraConfig, Config
from medianscan.service.capture import Daemon
from medianscan.vocabulary import Strategy, StrategyChoice


def camera_config(preset: str, strategy: StrategyChoice, size: tuple[int, int], card: Path) -> CameraConfig:
    cfg = CameraConfig(backend="simulated", strategy=strategy)
    cfg.simulated.width, cfg.simulated.height = size
    cfg.simulated.timing.preset = preset
    cfg.simulated.card = card
    return cfg


def engine_burst(preset: str, strategy: Strategy, frames: int, size: tuple[int, int], root: Path) -> float:
    """Seconds of one burst through the burst engine (what `camera burst` and the daemon run)."""
    cam = SimulatedCamera(camera_config(preset, strategy, size, root / "card"))
    cam.connect()
    try:
        record = cam.burst(frames, root / f"{strategy}", "s")
    finally:
        cam.close()
    assert len(record.frames) == frames, record.error
    return record.seconds


def serial_burst(preset: str, frames: int, size: tuple[int, int], root: Path) -> float:
    """Seconds of the serial loop on the same simulated body: each frame fired, awaited, downloaded, written
    (temp, fsync, rename) and deleted before the next is fired; a body whose quirk wants its events drained after
    each shot (Fuji) gets the drain here too, as peers give it."""
    cam = SimulatedCamera(camera_config(preset, "capture", size, root / "card"))
    cam.connect()
    cam.lock()
    body = cam.body
    body.new_burst(cam._renderer(cam._negative(1)))  # the engine's own renderer: the same DNGs
    out = root / "serial"
    out.mkdir()
    started = time.perf_counter()
    for k in range(1, frames + 1):
        body.trigger()
        file: Announced | None = None
        while file is None:
            event = body.next_event(30.0)
            file = event.file if event.kind == "file" else None
        time.sleep(cam.quirk.after_shot_seconds)
        download = body.download(file)
        with atomic_path(out / f"s_{k:02d}.dng") as tmp, tmp.open("wb") as fh:
            fh.write(download.data)
        body.delete(file)
    seconds = time.perf_counter() - started
    cam.close()
    return seconds


def daemon_answer(preset: str, frames: int, size: tuple[int, int], root: Path) -> tuple[float, str]:
    """The daemon's own figure for one press (camera.strategy: auto), from its answer, and the answer."""
    cfg = Config(library=root / "library", frames=frames, workers=1)
    cfg.camera = camera_config(preset, "auto", size, root / "card")
    cfg.console.listen = None
    cfg.triggers.socket = root / "control.sock"
    daemon = Daemon(cfg, triggers=False)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        daemon.link.tried.wait(30)
        reply: Future[Answer] = Future()
        daemon.hub.emit("capture", "bench", reply)
        answer = reply.result(300)
    finally:
        daemon.stop()
        thread.join(60)
    found = re.search(r"in ([\d.]+) s", answer.text)
    if not answer.ok or found is None:
        raise RuntimeError(answer.text)
    return float(found.group(1)), answer.text


def strategies(timing: BodyTiming) -> list[Strategy]:
    return ["capture", "trigger", *(["native"] if timing.native_burst else [])]  # type: ignore[list-item]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_burst", description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated preset names")
    parser.add_argument("--size", default="768x512", help="the simulated raws' size (their rendering is the body's)")
    args = parser.parse_args(argv)
    size = tuple(int(v) for v in args.size.split("x"))
    assert len(size) == 2
    n = args.frames
    print(f"{n}-frame bursts on the simulated body, wall-clock seconds (bound: the best a host could do)")
    print(f"{'body':<13} {'strategy':<9} {'seconds':>8} {'bound':>7} {'x bound':>8} {'serial':>7} {'x serial':>9}")
    for preset in args.presets.split(","):
        timing = PRESETS[preset][0]
        bound = timing.bound_seconds(n)
        root = Path(tempfile.mkdtemp(prefix="bench-burst-"))
        try:
            serial = serial_burst(preset, n, size, root / "serial")
            for strategy in strategies(timing):
                seconds = engine_burst(preset, strategy, n, size, root / strategy)
                print(
                    f"{preset:<13} {strategy:<9} {seconds:8.2f} {bound:7.2f} {seconds / bound:8.3f} "
                    f"{serial:7.2f} {seconds / serial:9.3f}",
                    flush=True,
                )
            said, text = daemon_answer(preset, n, size, root / "daemon")
            print(f"{preset:<13} {'daemon':<9} {said:8.2f} {bound:7.2f} {said / bound:8.3f} {serial:7.2f} "
                  f"{said / serial:9.3f}   \"{text}\"", flush=True)  # fmt: skip
        finally:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
