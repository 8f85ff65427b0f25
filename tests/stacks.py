"""Bursts made from the real Canon CR2: its mosaic plus known noise, dust and faults, written as DNG frames.

The scene is the CR2's own sensor data, so every burst has a real camera's CFA, levels and colour; the noise we
add is known, so the blend's noise can be compared with theory.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from medianscan.blend.measuring import dense
from medianscan.blend.measuring.noise import robust_sigma
from medianscan.blend.reading import frames
from medianscan.metadata import CameraInfo, Exposure, MosaicLayout
from medianscan.outputs import dng


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


X_TRANS = ("GGRGGB", "GGBGGR", "BRGRBG", "GGBGGR", "GGRGGB", "RBGBRG")
BAYER_RGGB = ("RG", "GB")
_MATRIX = np.array([[0.6257, -0.0303, -0.1], [-0.788, 1.5621, 0.2396], [-0.1714, 0.1904, 0.7046]])


def rgb_layout(
    letters: tuple[str, ...],
    height: int,
    width: int,
    neutral: tuple[float, float, float],
    matrix: npt.NDArray[np.float64] = _MATRIX,
) -> MosaicLayout:
    """A 14-bit mosaic seen through `letters` (the CFA repeat, rows of R/G/B), black 256, all of it active."""
    return MosaicLayout(
        pattern=np.array([["RGB".index(c) for c in row] for row in letters], dtype=np.uint8),
        colors="RGB",
        black_levels=(256, 256, 256),
        white_level=16383,
        active_area=(0, 0, height, width),
        default_crop=(0, 0, width, height),
        color_matrix=matrix,
        as_shot_neutral=neutral,
    )


def cfa_burst(
    folder: Path,
    letters: tuple[str, ...],
    n: int,
    *,
    texture: float,
    size: tuple[int, int] = (1200, 1800),
    sigma: float = 25.0,
    moved: dict[int, tuple[float, float]] | None = None,
    dust: dict[int, tuple[int, int, int]] | None = None,
    seed: int = 0,
    another: frozenset[int] = frozenset(),
    shaded: dict[int, tuple[float, float]] | None = None,
    hair: frozenset[int] = frozenset(),
) -> list[Path]:
    """A burst of DNG frames of a synthetic scene seen through any CFA (`letters`: the repeat, rows of R/G/B).

    The scene is a broad light falloff plus `texture`: smooth random structure of that amplitude (raw units)
    about 6 px across, so `texture` near 0 is a low-texture frame (a thin negative, a sky). `moved` shifts
    frames (0-based index -> (dy, dx) sensor px, sub-pixel by spline interpolation of the smooth scene);
    `dust` puts a 30 %-deep dark blob (index -> (y, x, radius)) into one frame only. Frames in `another` are of
    another negative at the same overall brightness (the same light, other texture); `shaded` darkens the left
    share of a frame (index -> (share, depth)); `hair` lays a thin dark curve across those frames.
    """
    from scipy import ndimage

    folder.mkdir(parents=True, exist_ok=True)
    h, w = size
    neutral = (0.5, 1.0, 0.7)
    layout = rgb_layout(letters, h, w, neutral)
    pattern = layout.pattern
    colours = np.tile(pattern, (h // pattern.shape[0] + 1, w // pattern.shape[1] + 1))[:h, :w]
    gain = np.asarray(neutral)[colours]
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    falloff = 3000 + 600 * np.cos((yy - h / 2) / h * 2) * np.cos((xx - w / 2) / w * 2)

    def field_of(light: npt.NDArray[np.float64], generator: np.random.Generator) -> npt.NDArray[np.float64]:
        detail = ndimage.gaussian_filter(generator.normal(0, 1, (h, w)), 3.0)
        field: npt.NDArray[np.float64] = light + texture * detail / detail.std()
        return field

    field = field_of(falloff, rng)
    # another plain negative: its light falls off the other way round, at the same mean level
    other_light = 3000 + 600 * np.sin((yy - h / 3) / h * 5) * np.cos((xx - w / 4) / w * 4)
    other = field_of(other_light + (falloff.mean() - other_light.mean()), np.random.default_rng(seed + 1000))
    scene = Scene(np.zeros((h, w), np.uint16), layout, CameraInfo("Medianscan", "Synthetic CFA"), Exposure(iso=100))
    paths = []
    for i in range(n):
        shift = (moved or {}).get(i)
        picture = other if i in another else field
        seen = ndimage.shift(picture, shift, order=3, mode="nearest") if shift else picture
        if shaded and i in shaded:
            share, depth = shaded[i]
            seen = np.where(xx < share * w, seen * (1 - depth), seen)
        if i in hair:
            seen = np.where(np.abs(yy - h / 2 - 80 * np.sin(xx / w * 6)) < 1.5, seen * 0.5, seen)
        values = 256 + gain * seen
        if dust and i in dust:
            cy, cx, radius = dust[i]
            blob = (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
            values = np.where(blob, 256 + (values - 256) * 0.7, values)
        values += rng.normal(0, sigma, values.shape)
        mosaic = np.clip(np.rint(values), 0, 16383).astype(np.uint16)
        paths.append(write_frame(folder / f"{folder.name}_{i + 1:02d}.dng", mosaic, scene))
    return paths


def true_snr(blended: npt.NDArray[np.generic], clean: npt.NDArray[np.float32], layout: MosaicLayout) -> float:
    """The SNR a blend has in the densest tenth (as blend.measuring.dense places it), its noise measured against
    the clean signal the frames were made from: in the colour that limits."""
    truth, got = dense.subsample(clean, layout, 1), dense.subsample(blended, layout, 1)
    pattern = np.asarray(layout.pattern)
    signal = truth - dense.black_of(layout)[None, :, None, :]
    where = dense.densest_tenth(signal.mean(axis=(1, 3)))
    found = []
    for index in np.unique(pattern):
        s = signal.transpose(0, 2, 1, 3)[where][:, pattern == index].ravel()
        r = (got - truth).transpose(0, 2, 1, 3)[where][:, pattern == index].ravel()
        found.append(float(np.median(s)) / robust_sigma(r))
    return min(found)
