"""Bursts made from the real Canon CR2: its mosaic plus known noise, dust and faults, written as DNG frames.

The scene is the CR2's own sensor data, so every burst has a real camera's CFA, levels and colour; the noise we
add is known, so the blend's noise can be compared with theory.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from medianscan import dng, frames
from medianscan.metadata import CameraInfo, Exposure, MosaicLayout


@dataclass(frozen=True)
class Scene:
    """A clean mosaic (the truth every frame of a burst is made from) and how to write it."""

    mosaic: npt.NDArray[np.uint16]
    layout: MosaicLayout
    camera: CameraInfo
    exposure: Exposure

    def crop(self, top: int, left: int, height: int, width: int) -> Scene:
        """A crop of the visible area at even offsets (keeps the RGGB phase), as a sensor of its own."""
        a_top, a_left, _, _ = self.layout.active_area
        assert top % 2 == 0 and left % 2 == 0
        mosaic = np.ascontiguousarray(
            self.mosaic[a_top + top : a_top + top + height, a_left + left : a_left + left + width]
        )
        layout = replace(self.layout, active_area=(0, 0, height, width), default_crop=(0, 0, width, height))
        return replace(self, mosaic=mosaic, layout=layout)


def load_scene(raw: Path) -> Scene:
    frame = frames.read_frame(raw)
    assert frame.layout is not None
    return Scene(np.asarray(frame.pixels, dtype=np.uint16), frame.layout, frame.camera, frame.exposure)


def noisy(scene: Scene, rng: np.random.Generator, sigma: float) -> npt.NDArray[np.uint16]:
    """The scene plus Gaussian noise of `sigma` raw units, rounded and clipped like a sensor."""
    values = scene.mosaic.astype(np.float32) + rng.normal(0.0, sigma, scene.mosaic.shape).astype(np.float32)
    return np.clip(np.rint(values), 0, scene.layout.white_level).astype(np.uint16)


def add_dust(
    mosaic: npt.NDArray[np.uint16], rng: np.random.Generator, specks: int, white: int
) -> list[tuple[int, int]]:
    """Dark specks of a few pixels at random places (dust on the negative moves between frames)."""
    h, w = mosaic.shape
    spots = []
    for _ in range(specks):
        y, x = int(rng.integers(8, h - 8)), int(rng.integers(8, w - 8))
        mosaic[y - 2 : y + 3, x - 2 : x + 3] = 0 if rng.random() < 0.5 else white
        spots.append((y, x))
    return spots


def write_frame(path: Path, mosaic: npt.NDArray[np.uint16], scene: Scene, **changes: object) -> Path:
    """Write one frame as a DNG; `changes` override camera or exposure fields (model=..., iso=...)."""
    camera_fields = {k: v for k, v in changes.items() if k in CameraInfo.__dataclass_fields__}
    exposure_fields = {k: v for k, v in changes.items() if k in Exposure.__dataclass_fields__}
    dng.write_dng(
        path,
        mosaic,
        scene.layout,
        replace(scene.camera, **camera_fields),  # type: ignore[arg-type]
        replace(scene.exposure, **exposure_fields),  # type: ignore[arg-type]
    )
    return path


def make_burst(
    folder: Path,
    scene: Scene,
    n: int,
    *,
    sigma: float = 20.0,
    seed: int = 0,
    dust: int = 0,
    stem: str | None = None,
) -> list[Path]:
    """A burst of `n` DNG frames `<stem>_NN.dng` in `folder`: the scene plus fresh noise (and dust) each."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = stem or folder.name
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        mosaic = noisy(scene, rng, sigma)
        if dust:
            add_dust(mosaic, rng, dust, scene.layout.white_level)
        paths.append(write_frame(folder / f"{stem}_{i + 1:02d}.dng", mosaic, scene))
    return paths


def tree_digest(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes, to prove inputs were left untouched."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
