"""Tiles cut from a picture we know: the Canon CR2 developed to linear camera RGB at the sensor's resolution, then
sampled through the camera's own CFA at chosen (odd, half-pixel, turned) places, each tile with its own exposure
gain, a lens falloff and noise, written as DNG tiles the way a camera scanner would shoot them; with the flat
frame of that falloff. The stitch's output is then compared with the picture itself."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import rawpy
from scipy import ndimage

from medianscan.outputs import dng
from medianscan.outputs.preview import rgb_channels
from tests.stacks import Scene, load_scene

CORNER = 0.7  # the lens falloff at a tile's corners
BAYER = np.array([[0, 1], [1, 2]], dtype=np.uint8)  # as colours: 0 red, 1 green, 2 blue
XTRANS = np.array(  # Fujifilm's 6x6 repeat, as colours
    [
        [1, 1, 0, 1, 1, 2],
        [1, 1, 2, 1, 1, 0],
        [2, 0, 1, 0, 2, 1],
        [1, 1, 2, 1, 1, 0],
        [1, 1, 0, 1, 1, 2],
        [0, 2, 1, 2, 0, 1],
    ],
    dtype=np.uint8,
)


@dataclass(frozen=True)
class Picture:
    """The known picture: linear camera RGB over black, in raw units, (H, W, 3); and the camera that took it."""

    rgb: npt.NDArray[np.float32]
    scene: Scene

    @property
    def channels(self) -> npt.NDArray[np.uint8]:
        """The CFA pattern from the visible area's corner, as RGB channels."""
        layout = self.scene.layout
        top, left = layout.active_area[:2]
        local = np.roll(layout.pattern, (-top, -left), axis=(0, 1))
        return np.asarray(rgb_channels(layout.colors), dtype=np.uint8)[local]


@dataclass(frozen=True)
class TileSpec:
    y: float  # the tile's top-left photosite in the picture
    x: float
    gain: float
    angle_degrees: float = 0.0


def load_picture(raw: Path) -> Picture:
    scene = load_scene(raw)
    layout = scene.layout
    with rawpy.imread(str(raw)) as image:
        rgb = image.postprocess(
            gamma=(1, 1), no_auto_bright=True, output_bps=16, output_color=rawpy.ColorSpace.raw,
            user_wb=[1.0, 1.0, 1.0, 1.0], user_flip=0, demosaic_algorithm=rawpy.DemosaicAlgorithm.LINEAR,
        )  # fmt: skip
    span = layout.white_level - float(np.mean(layout.black_levels))
    values = rgb.astype(np.float32) * np.float32(0.6 * span / max(1.0, float(np.percentile(rgb, 99.5))))
    return Picture(np.ascontiguousarray(values), scene)


def falloff(shape: tuple[int, int]) -> npt.NDArray[np.float32]:
    h, w = shape
    y = (np.arange(h, dtype=np.float32) - (h - 1) / 2) / ((h - 1) / 2)
    x = (np.arange(w, dtype=np.float32) - (w - 1) / 2) / ((w - 1) / 2)
    return (1 - (1 - CORNER) * (y[:, None] ** 2 + x[None, :] ** 2) / 2).astype(np.float32)


def tile_points(spec: TileSpec, shape: tuple[int, int]) -> npt.NDArray[np.float64]:
    """Picture points (y, x) of each photosite of a tile placed by `spec`."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    a = np.radians(spec.angle_degrees)
    c, s = np.cos(a), np.sin(a)
    return np.stack([s * xx + c * yy + spec.y, c * xx - s * yy + spec.x], axis=-1)


def through_cfa(
    picture: Picture, points: npt.NDArray[np.float64], channels: npt.NDArray[np.uint8]
) -> npt.NDArray[np.float32]:
    """The picture's colour `channels[r % ph, c % pw]` at each point (bicubic), for a grid of photosites."""
    h, w = points.shape[:2]
    ph, pw = channels.shape
    wanted = np.tile(channels, (-(-h // ph), -(-w // pw)))[:h, :w]
    # the spline's prefilter run on the points' box and a margin, not on the whole picture (a second and more a
    # tile); its effect decays by 0.27 a photosite, so 32 photosites on give the same values to float precision
    margin = 32
    top = max(0, int(np.floor(points[..., 0].min())) - margin)
    left = max(0, int(np.floor(points[..., 1].min())) - margin)
    bottom = int(np.ceil(points[..., 0].max())) + margin + 1
    right = int(np.ceil(points[..., 1].max())) + margin + 1
    cut = picture.rgb[top:bottom, left:right]
    out = np.zeros((h, w), dtype=np.float32)
    for colour in range(3):
        which = wanted == colour
        coords = (points[which] - np.array([top, left])).T
        out[which] = ndimage.map_coordinates(cut[..., colour], coords, order=3, mode="nearest")
    return out


def write_tile(
    path: Path,
    picture: Picture,
    spec: TileSpec,
    shape: tuple[int, int],
    rng: np.random.Generator,
    *,
    noise: float = 3.0,
) -> Path:
    """A DNG tile of `shape` photosites: the picture through the CFA, times the gain and the falloff, plus noise."""
    signal = through_cfa(picture, tile_points(spec, shape), picture.channels) * np.float32(spec.gain) * falloff(shape)
    return _write(path, picture, signal, rng, noise)


def write_flat(path: Path, picture: Picture, shape: tuple[int, int], rng: np.random.Generator) -> Path:
    """The flat frame of the tiles' lens: the bare light through the falloff (a blend's noise)."""
    span = picture.scene.layout.white_level - float(np.mean(picture.scene.layout.black_levels))
    return _write(path, picture, np.full(shape, 0.6 * span, np.float32) * falloff(shape), rng, 1.0)


def _write(
    path: Path, picture: Picture, signal: npt.NDArray[np.float32], rng: np.random.Generator, noise: float
) -> Path:
    scene = picture.scene
    layout = scene.layout
    top, left = layout.active_area[:2]
    local = np.roll(layout.pattern, (-top, -left), axis=(0, 1))
    h, w = signal.shape
    ph, pw = local.shape
    black = np.tile(np.asarray(layout.black_levels, np.float32)[local], (-(-h // ph), -(-w // pw)))[:h, :w]
    sigma = np.sqrt(np.maximum(signal, 0) * 0.05 + noise**2)
    values = signal + black + rng.standard_normal(signal.shape, dtype=np.float32) * sigma
    mosaic = np.clip(np.rint(values), 0, layout.white_level).astype(np.uint16)
    tile_layout = replace(layout, pattern=local, active_area=(0, 0, h, w), default_crop=(0, 0, w, h))
    dng.write_dng(path, mosaic, tile_layout, scene.camera, scene.exposure, preview=False)
    return path


def truth(
    picture: Picture, origin: tuple[float, float], shape: tuple[int, int], channels: npt.NDArray[np.uint8]
) -> npt.NDArray[np.float32]:
    """What the output's visible mosaic of `shape` should hold when its (0, 0) is the picture's `origin`."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    points = np.stack([yy + origin[0], xx + origin[1]], axis=-1)
    return through_cfa(picture, points, channels)
