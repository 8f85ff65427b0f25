"""`calibrate exposure` on the simulated camera (1536x1024, the body's third-stop list): probes and seconds from
several starting speeds, against the time of one bare probe (a one-frame burst and its metering), the floor."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from medianscan.capture.calibrate import ExposureCalibration, meter
from medianscan.capture.camera.files import PROBE_STEM
from medianscan.capture.camera.simulated.camera import SimulatedCamera
from medianscan.config.schema import CameraConfig


def main() -> int:
    starts = ("1/125", "1/4000", "1/15", "1")
    cfg = CameraConfig()
    camera = SimulatedCamera(cfg)
    camera.connect()
    with tempfile.TemporaryDirectory(prefix="bench-calibrate-") as tmp:
        bare = []
        for i in range(5):
            start = time.perf_counter()
            record = camera.burst(1, Path(tmp), f"{PROBE_STEM}-bare-{i}")
            meter(record.frames[0], "1/125")
            bare.append(time.perf_counter() - start)
    probe = statistics.median(bare)
    print(f"one bare probe (a one-frame burst, metered on the raw): {probe:.3f} s")
    for first in starts:
        cfg.settings.clear()
        began = time.perf_counter()
        result = ExposureCalibration(camera, cfg.settings).run(first)
        seconds = time.perf_counter() - began
        print(
            f"from {first:>6}: {result.shutterspeed} in {len(result.probes)} probes, {seconds:.2f} s "
            f"= {seconds / probe:.1f} probe times ({result.headroom_ev:.2f} EV headroom)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
