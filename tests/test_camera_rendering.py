"""The camera's rendering of its preview, learned from a frame (medianscan.outputs.camera_rendering): on camera DNGs
built by tests/layouts.py, whose camera renders its preview with its own saturation and S-curve, not sRGB's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from medianscan.blend.reading.frames import read_frame
from medianscan.metadata import MosaicLayout
from medianscan.outputs.camera_rendering import SMOOTH, USABLE, CameraRendering, camera_rendering, plain_linear
from medianscan.outputs.preview import stored_preview
from medianscan.outputs.preview_change import SRGB, decoded_preview
from tests.layouts import falloff, scene_dng

Pair = tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint16], MosaicLayout]


def _pair(path: Path) -> Pair:
    stored = stored_preview(path)
    assert stored is not None
    image = decoded_preview(stored)
    frame = read_frame(path, "raw")
    assert image is not None and frame.layout is not None
    return image, np.asarray(frame.pixels, dtype=np.uint16), frame.layout


def _off(rendering: CameraRendering, pair: Pair) -> float:
    """RMS codes between the camera's preview and `rendering` of the raw, both smoothed, where nothing clipped."""
    image, mosaic, layout = pair

    def smooth(a: npt.NDArray[np.generic]) -> npt.NDArray[np.float64]:
        planes = [ndimage.gaussian_filter(np.asarray(a[..., c], dtype=np.float64), SMOOTH) for c in range(3)]
        return np.stack(planes, axis=-1)

    want = smooth(image)
    got = rendering.codes(smooth(plain_linear(mosaic, layout, (image.shape[0], image.shape[1]))))
    usable = want.max(axis=-1) < USABLE
    return float(np.sqrt(np.mean((got - want)[usable] ** 2)))


def test_the_rendering_learned_from_a_frame_renders_another_raw_as_the_camera_did(tmp_path: Path) -> None:
    """Learned on a frame of the stage scene shot through a falloff, it renders the camera's preview of the scene
    evenly lit from that raw within two codes (RMS); sRGB's curve alone is more than ten times as far."""
    lit = _pair(scene_dng(tmp_path / "lit.dng", "stage", preview=True, light=falloff()))
    even = _pair(scene_dng(tmp_path / "even.dng", "stage", preview=True))
    rendering = camera_rendering([lit])
    assert rendering is not None
    learned, plain = _off(rendering, even), _off(SRGB, even)
    print(f"learned {learned:.2f}, sRGB {plain:.2f} codes RMS")
    assert learned <= 2.0
    assert plain >= 10 * learned


def test_a_preview_of_another_picture_teaches_no_rendering(tmp_path: Path) -> None:
    """A preview that is not of its raw (another crop, another picture) is no camera's rendering of it: None, and
    the changed preview then goes through sRGB's curve."""
    image, _, _ = _pair(scene_dng(tmp_path / "bright.dng", "bright", preview=True))
    _, mosaic, layout = _pair(scene_dng(tmp_path / "stage.dng", "stage", preview=True))
    assert camera_rendering([(image, mosaic, layout)]) is None
