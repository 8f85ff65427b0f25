"""Flat-field cases made from the real Canon CR2: its mosaic is the true scene, seen through a lens that falls
to 0.62 at the corners and past sensor dust that shades a few photosites by 30 %; flats of the bare light are
seen through the same lens and dust."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from tests.stacks import Scene, write_frame

CORNER = 0.62  # the falloff at the corners
DUST = ((0.3, 0.4, 3.0), (0.7, 0.25, 2.5), (0.55, 0.8, 3.5))  # (y, x) as fractions, radius in photosites
DUST_DEPTH = 0.30


def falloff(shape: tuple[int, int]) -> npt.NDArray[np.float32]:
    """1 in the centre, CORNER at the corners, smooth (a lens's cos^4-like vignetting)."""
    h, w = shape
    y = (np.arange(h, dtype=np.float32) - (h - 1) / 2) / ((h - 1) / 2)
    x = (np.arange(w, dtype=np.float32) - (w - 1) / 2) / ((w - 1) / 2)
    r2 = (y[:, None] ** 2 + x[None, :] ** 2) / 2  # 1 at the corners
    return (1 - (1 - CORNER) * r2).astype(np.float32)


Spots = tuple[tuple[float, float, float], ...]


def dust(shape: tuple[int, int], spots: Spots = DUST) -> npt.NDArray[np.float32]:
    """Transmission of the sensor dust: soft shadows DUST_DEPTH deep."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    shade = np.ones(shape, dtype=np.float32)
    for fy, fx, radius in spots:
        d2 = (yy - fy * h) ** 2 + (xx - fx * w) ** 2
        shade *= 1 - DUST_DEPTH * np.exp(-d2 / (2 * (radius / 1.5) ** 2))
    return shade


def dust_centres(shape: tuple[int, int]) -> list[tuple[int, int]]:
    return [(round(fy * shape[0]), round(fx * shape[1])) for fy, fx, _ in DUST]


def seen(
    signal: npt.NDArray[np.float32], scene: Scene, rng: np.random.Generator, spots: Spots = DUST
) -> npt.NDArray[np.uint16]:
    """`signal` (over black) through the lens and the dust, plus shot and read noise, as a sensor gives it."""
    shape = signal.shape
    light = signal * falloff(shape) * dust(shape, spots)
    sigma = np.sqrt(np.maximum(light, 0) * 0.4 + 9.0)
    black = float(np.mean(scene.layout.black_levels))
    values = light + black + rng.standard_normal(shape, dtype=np.float32) * sigma
    out: npt.NDArray[np.uint16] = np.clip(np.rint(values), 0, scene.layout.white_level).astype(np.uint16)
    return out


def truth(scene: Scene) -> npt.NDArray[np.float32]:
    """The scene's signal over black, per photosite."""
    return scene.mosaic.astype(np.float32) - np.float32(np.mean(scene.layout.black_levels))


def write_stack(
    folder: Path,
    scene: Scene,
    signal: npt.NDArray[np.float32],
    n: int,
    seed: int,
    *,
    spots: Spots = DUST,
    changes: dict[str, object] | None = None,
) -> list[Path]:
    """`n` frames of `signal` through the lens and dust, as DNGs `<folder name>_NN.dng`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    return [
        write_frame(folder / f"{folder.name}_{i:02d}.dng", seen(signal, scene, rng, spots), scene, **(changes or {}))
        for i in range(1, n + 1)
    ]


def flat_light(scene: Scene, level: float = 0.7) -> npt.NDArray[np.float32]:
    """The bare light panel at `level` of the raw range (in the centre)."""
    black = float(np.mean(scene.layout.black_levels))
    return np.full(scene.mosaic.shape, level * (scene.layout.white_level - black), dtype=np.float32)
