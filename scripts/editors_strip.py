"""Makes docs/roll-as-the-editors-develop-it.jpg: a simulated roll of six negatives (the 3rd carries a step wedge
on the orange mask), blended by `medianscan blend`, its film base measured once, shown three ways, one row each:
the blend as it opens without a sidecar (LibRaw, camera white balance: an orange negative), and as darktable-cli
and rawtherapee-cli develop it with the sidecars medianscan wrote beside it (positives, inverted alike).
Run: .venv/bin/python -m scripts.editors_strip"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import imagecodecs
import numpy as np
import numpy.typing as npt
import rawpy

from medianscan.capture.camera import open_camera
from medianscan.cli import main as medianscan
from medianscan.config.schema import CameraConfig, SimulatedConfig
from medianscan.library.roll_record import write_roll_record
from medianscan.outputs.editors import roll_blends
from medianscan.records import FilmRecord
from tests.test_editors import develop

NEGATIVES = 6
SIZE = {"width": 576, "height": 384}
TILE = 240  # each picture's width in the strip
OUT = Path("docs/roll-as-the-editors-develop-it.jpg")


def shoot_roll(folder: Path) -> list[Path]:
    folder.mkdir(parents=True)
    write_roll_record(folder, FilmRecord(film="Kodak Portra 400", film_type="color negative", iso=400))
    camera = open_camera(CameraConfig(backend="simulated", simulated=SimulatedConfig(**SIZE)))  # type: ignore[arg-type]
    camera.connect()
    try:
        stacks = [folder / f"frame-{n:03d}" for n in range(1, NEGATIVES + 1)]
        for stack in stacks:
            camera.burst(3, stack, stack.name)
    finally:
        camera.close()
    if medianscan(["blend", *map(str, stacks)]) != 0:
        raise SystemExit("the roll did not blend")
    return roll_blends(folder)


def as_opened(dng: Path) -> npt.NDArray[np.float64]:
    """The blend without a sidecar, as a raw developer shows it: camera white balance, sRGB, no inversion."""
    with rawpy.imread(str(dng)) as raw:
        rgb = raw.postprocess(use_camera_wb=True, output_bps=16, no_auto_bright=True)
    return np.asarray(rgb, dtype=np.float64) / 65535


def shrunk(picture: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
    """`picture` (0-1) at TILE pixels wide, by area averaging, as 8-bit."""
    step = max(1, picture.shape[1] // TILE)
    h, w = picture.shape[0] // step * step, picture.shape[1] // step * step
    small: npt.NDArray[np.float64] = picture[:h, :w].reshape(h // step, step, w // step, step, 3).mean(axis=(1, 3))
    return np.clip(np.rint(small * 255), 0, 255).astype(np.uint8)


def row(pictures: list[npt.NDArray[np.uint8]], gap: int = 6) -> npt.NDArray[np.uint8]:
    height = min(p.shape[0] for p in pictures)
    parts: list[npt.NDArray[np.uint8]] = []
    for picture in pictures:
        parts += [picture[:height], np.full((height, gap, 3), 255, np.uint8)]
    return np.concatenate(parts[:-1], axis=1)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        blends = shoot_roll(Path(tmp) / "2026-12-06-roll001")
        rows = [[shrunk(as_opened(b)) for b in blends]]
        for editor in ("darktable", "rawtherapee"):
            rows.append([shrunk(develop(b, editor, Path(tmp) / f"{editor}-{b.stem}.tif")) for b in blends])
    strips = [row(r) for r in rows]
    width = min(s.shape[1] for s in strips)
    gap = np.full((6, width, 3), 255, np.uint8)
    picture = np.concatenate([x for s in strips for x in (s[:, :width], gap)][:-1], axis=0)
    OUT.write_bytes(imagecodecs.jpeg_encode(picture, level=90))
    print(f"{OUT}: {picture.shape[1]}x{picture.shape[0]}, rows: as opened without a sidecar, darktable, RawTherapee")
    return 0


if __name__ == "__main__":
    sys.exit(main())
