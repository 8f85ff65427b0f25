"""Burst throughput on libgphoto2's real virtual camera: our Camera.burst() against a bare python-gphoto2 loop.

Both sides drive the same virtual camera (ptp2 driver over the vusb iolib) in the same run, interleaved, with a
source file the size of a raw (default 25 MB, a 24 MP body). Per frame:

- bare:        capture -> file_get -> CameraFile.save(path) -> file_delete (python-gphoto2's examples)
- bare+fsync:  the same, plus fsync of the saved file (the durability our frames get)
- ours:        Camera.burst(): events drained, raw recognised by content, temp name + fsync + rename + folder
               fsync, then delete; plus the re-lock before the burst (reads back the configured settings)

Two cases: no settings configured (the per-frame loop alone), and three settings locked (shutterspeed, f-number,
capturetarget; both sides read them back once per burst). Reading a setting makes libgphoto2's ptp2 driver wait
~0.3 s in each file_delete for about a second afterwards (its event poll), on both sides alike.
The virtual camera allows 26 captures per loaded camera, so each session is `--bursts` bursts of `--frames`.
Figures are medians over interleaved sessions; the ratio is ours / bare.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

SETTINGS = {"shutterspeed": "0.0100s", "aperture": "f/2.8", "capturetarget": "Internal RAM"}  # as found
WIDGETS = ("shutterspeed", "f-number", "capturetarget")
SHM = Path("/dev/shm")


def setup_virtual_camera(root: Path, size: int) -> Any:
    """Point libgphoto2 at its virtual camera, shooting a `size`-byte file; returns the gphoto2 module."""
    source = root / "vcamera"
    source.mkdir()
    # a TIFF header whose first IFD carries DNGVersion: a raw by content (as our burst checks), then noise
    header = b"II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHI4B", 50706, 1, 4, 1, 4, 0, 0) + bytes(4)
    noise = os.urandom(min(size, 1 << 20))
    data = (header + noise * (size // len(noise) + 1))[:size]
    (source / "source.JPG").write_bytes(data)
    import gphoto2 as gp

    os.environ["VCAMERADIR"] = str(source)
    os.environ["IOLIBS"] = str(Path(gp.__file__).parent / "libgphoto2" / "vusb")
    os.environ["XDG_CONFIG_HOME"] = str(root / "xdg")
    return gp


def bare_session(gp: Any, out: Path, frames: int, bursts: int, *, fsync: bool, read: bool) -> list[float]:
    """Seconds per frame of each burst of a bare capture-download-delete loop."""
    cam = gp.Camera()
    cam.init()
    result = []
    for b in range(bursts):
        start = time.perf_counter()
        if read:
            for name in WIDGETS:
                cam.get_single_config(name).get_value()
        for i in range(frames):
            path = cam.capture(gp.GP_CAPTURE_IMAGE)
            cam_file = cam.file_get(path.folder, path.name, gp.GP_FILE_TYPE_NORMAL)
            target = out / f"bare_{b}_{i:02d}.nef"
            cam_file.save(str(target))
            if fsync:
                fd = os.open(target, os.O_RDONLY)
                os.fsync(fd)
                os.close(fd)
            cam.file_delete(path.folder, path.name)
        result.append((time.perf_counter() - start) / frames)
    cam.exit()
    del cam
    gc.collect()
    return result


def our_session(out: Path, frames: int, bursts: int, *, read: bool) -> list[float]:
    """Seconds per frame of each Camera.burst() call (re-lock included)."""
    from medianscan.capture.camera.gphoto2.backend import Gphoto2Camera
    from medianscan.config.schema import CameraConfig

    # capture, like the bare loop (the virtual camera queues a trigger's events 80-120 ms late: bench_burst
    # measures the strategies on bodies with real timings)
    cfg = CameraConfig(backend="gphoto2", settings=dict(SETTINGS) if read else {}, strategy="capture")
    cam = Gphoto2Camera(cfg)
    cam.connect()
    result = []
    for b in range(bursts):
        start = time.perf_counter()
        cam.burst(frames, out / f"ours_{b}", "f")
        result.append((time.perf_counter() - start) / frames)
    cam.close()
    del cam
    gc.collect()
    return result


def bench_simulated(repeats: int) -> dict[str, float]:
    """Seconds per 1536x1024 simulated frame: generation alone, and generation + DNG write."""
    import numpy as np

    from medianscan.capture.camera.simulated.scene import Negative, layout
    from medianscan.metadata import CameraInfo, Exposure
    from medianscan.outputs.dng import write_dng

    h, w = 1024, 1536
    start = time.perf_counter()
    negative = Negative(1, 1, h, w)
    per_negative = time.perf_counter() - start
    gen, write = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(repeats):
            t0 = time.perf_counter()
            mosaic = negative.frame(k + 1)
            t1 = time.perf_counter()
            write_dng(Path(tmp) / f"f{k}.dng", mosaic, layout(h, w), CameraInfo(), Exposure())
            t2 = time.perf_counter()
            gen.append(t1 - t0)
            write.append(t2 - t1)
    assert isinstance(mosaic, np.ndarray)
    return {"negative": per_negative, "frame": statistics.median(gen), "write_dng": statistics.median(write)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_camera", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=float, default=25.0, help="bytes per frame, MB (25: a 24 MP raw)")
    parser.add_argument("--frames", type=int, default=9, help="frames per burst (9)")
    parser.add_argument("--bursts", type=int, default=2, help="bursts per session (frames x bursts <= 26)")
    parser.add_argument("--sessions", type=int, default=5, help="interleaved sessions per side (5)")
    parser.add_argument(
        "--dir",
        type=Path,
        default=SHM if SHM.is_dir() else None,
        help="where frames are written (default: /dev/shm, so disk write-back noise does not "
        "swamp the code's own cost; give a disk folder to include it)",
    )
    parser.add_argument("--quick", action="store_true", help="1 MB frames, 3 sessions")
    args = parser.parse_args(argv)
    if args.quick:
        args.size_mb, args.sessions = 1.0, 3
    if args.frames * args.bursts > 26:
        parser.error("the virtual camera allows 26 captures per session: lower --frames or --bursts")
    size = int(args.size_mb * 1e6)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        gp = setup_virtual_camera(root, size)
        print(
            f"camera burst on libgphoto2's virtual camera: {size / 1e6:.0f} MB frames, {args.frames} frames x "
            f"{args.bursts} bursts per session, {args.sessions} interleaved sessions, writing to {root}"
        )
        print(
            f"{'case':<22} {'bare ms':>9} {'bare+fsync ms':>14} {'ours ms':>9} {'ours/bare':>10} "
            f"{'ours/bare+fsync':>16}"
        )
        for read, label in ((False, "no settings locked"), (True, "3 settings re-locked")):
            runs: dict[str, list[float]] = {"bare": [], "bare+fsync": [], "ours": []}
            for s in range(args.sessions):
                order = ["bare", "bare+fsync", "ours"]
                for name in order[s % 3 :] + order[: s % 3]:  # rotate, so no side always runs first
                    out = root / f"out-{name}-{s}"
                    out.mkdir()
                    if name == "ours":
                        runs[name] += our_session(out, args.frames, args.bursts, read=read)
                    else:
                        runs[name] += bare_session(gp, out, args.frames, args.bursts, fsync=name != "bare", read=read)
                    shutil.rmtree(out)
            bare, durable, ours = (statistics.median(runs[k]) for k in ("bare", "bare+fsync", "ours"))
            print(
                f"{label:<22} {bare * 1e3:>9.2f} {durable * 1e3:>14.2f} {ours * 1e3:>9.2f} "
                f"{ours / bare:>9.2f}x {ours / durable:>15.2f}x"
            )
    sim = bench_simulated(repeats=9)
    print(
        f"simulated camera, 1536x1024: new negative {sim['negative'] * 1e3:.0f} ms (once per burst), "
        f"frame {sim['frame'] * 1e3:.1f} ms, write_dng {sim['write_dng'] * 1e3:.1f} ms, "
        f"frame + write {(sim['frame'] + sim['write_dng']) * 1e3:.1f} ms (target < 100 ms)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
