"""A blend's preview where its picture is not its reference frame's: the camera's own preview, changed as the
picture changed.

RawTherapee's default profile (Auto-Matched Curve) fits its tone curve by matching the luminance histogram of the
embedded preview with that of its own neutral rendering of the raw; darktable and LibRaw never look at the
preview. A blend that is the picture of its frames carries the reference frame's preview as stored
(preview.stored_preview). Where the picture changed, the closest thing to what the camera would have shown of it
is the camera's own preview changed the same way: a flat field's gain per colour, in linear light, resampled to
the preview; the exposure the DNG shows without BaselineExposure (the headroom above the frame's white level,
which darktable and RawTherapee ignore); and for a bracket, where the longest exposure's preview clipped, the
shorter exposures' previews. Rendering our own picture in the camera's tone instead made RawTherapee develop a
strongly coloured scene up to 2.5 EV off.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import imagecodecs
import numpy as np
import numpy.typing as npt
from scipy import ndimage

from medianscan.metadata import MosaicLayout
from medianscan.outputs.preview import StoredPreview, camera_to_srgb, jpeg_size, rgb_channels

PREVIEW_CLIP = (235, 250)  # a preview's codes from which a bracket's shorter exposure takes over, smoothly
PREVIEW_QUALITY = 92  # a changed camera preview is stored again as a JPEG of this quality
_SRGB_TO_LINEAR = np.where(
    np.arange(256) <= 10, np.arange(256) / 255 / 12.92, ((np.arange(256) / 255 + 0.055) / 1.055) ** 2.4
)  # 8-bit sRGB code -> linear light


def changed_preview(
    stored: StoredPreview,
    layout: MosaicLayout,
    gain: npt.NDArray[np.float32] | None,
    ev: float = 0.0,
    shorter: Sequence[tuple[StoredPreview, float]] = (),
) -> StoredPreview | None:
    """The camera's own preview of the reference frame, changed as its picture changed: times `gain` (per
    photosite of the full array: a flat field's, per raw colour, so in the camera's colour space) and 2**`ev`, in
    linear light (sRGB's curve undone: a camera's own curve is unknown, and guessing it from the preview did
    worse), and stored again as it was stored
    (a JPEG at its own size, or 8-bit RGB). Where the preview clipped, the `shorter` exposures' previews (each with
    its exposure over the reference's, a bracket's) stand in, brought to its exposure, the longest that holds the
    pixel. RawTherapee's auto-matched curve compares the preview with its neutral rendering of the raw, so a
    preview close to what the camera would have shown of the changed picture makes it fit close to the curve it
    fits to a camera's raw of that picture. None when the stored preview cannot be decoded."""
    image = decoded_preview(stored)
    if image is None:
        return None
    linear = _SRGB_TO_LINEAR[image] * 2.0**ev
    clipped = _clipped(image)
    for other, ratio in sorted(shorter, key=lambda pair: -pair[1]):
        held = decoded_preview(other)
        if held is None or held.shape != image.shape or not np.any(clipped):
            continue
        linear += clipped[..., None] * (_SRGB_TO_LINEAR[held] * (2.0**ev / ratio) - linear)
        clipped *= _clipped(held)
    if gain is not None:  # the gain is the camera's, per raw colour: applied there, between the colour matrices
        to_srgb = camera_to_srgb(layout)
        camera = linear @ np.linalg.inv(to_srgb).T * colour_gains(gain, layout, image.shape[:2])
        linear = camera @ to_srgb.T
    toned = 255 * np.where(
        linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(np.maximum(linear, 0), 1 / 2.4) - 0.055
    )
    out = np.ascontiguousarray(np.clip(np.round(toned), 0, 255).astype(np.uint8))
    if not stored.jpeg:
        return dataclasses.replace(stored, data=out.tobytes())
    data = bytes(imagecodecs.jpeg8_encode(out, level=PREVIEW_QUALITY))
    found = jpeg_size(data)
    assert found is not None  # our own encoder's stream
    return StoredPreview(data, found[0], found[1], jpeg=True, subsampling=found[2:])


def _clipped(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """How far each pixel of an 8-bit preview is clipped, 0 to 1 over PREVIEW_CLIP of its brightest channel."""
    low, high = PREVIEW_CLIP
    top = image.max(axis=-1).astype(np.float64)
    t = np.clip((top - low) / (high - low), 0, 1)
    out: npt.NDArray[np.float64] = t * t * (3 - 2 * t)
    return out


def decoded_preview(stored: StoredPreview) -> npt.NDArray[np.uint8] | None:
    """The stored preview as (height, width, 3) 8-bit RGB; None for a stream that does not decode to that."""
    if not stored.jpeg:
        return np.frombuffer(stored.data, np.uint8).reshape(stored.height, stored.width, 3)
    try:
        image = np.asarray(imagecodecs.jpeg8_decode(stored.data))
    except Exception:  # imagecodecs raises its own error types for a stream libjpeg refuses
        return None
    if image.ndim != 3 or image.shape[2] < 3 or image.dtype != np.uint8:
        return None
    return np.ascontiguousarray(image[..., :3])


def colour_gains(gain: npt.NDArray[np.float32], layout: MosaicLayout, size: tuple[int, int]) -> npt.NDArray[np.float64]:
    """`gain` (per photosite of the full array) as (height, width, 3) per R, G, B over a preview of `size`: the
    mean of each colour's photosites in each whole CFA repeat of the active area (what a camera's preview shows),
    turned as the preview is when its shape says so (EXIF orientation 5-8 and a preview of the other aspect),
    centred and cropped to the preview's aspect ratio, resampled to its size. A flat's gain is smooth: a camera's
    slightly other crop of its preview changes nothing that shows."""
    pattern = np.asarray(layout.pattern)
    ph, pw = pattern.shape
    channels = rgb_channels(layout.colors)
    y0, x0, bottom, right = layout.active_area
    ny, nx = (bottom - y0) // ph, (right - x0) // pw
    cells = gain[y0 : y0 + ny * ph, x0 : x0 + nx * pw].reshape(ny, ph, nx, pw)
    planes, counts = np.zeros((3, ny, nx)), np.zeros(3)
    for py in range(ph):
        for px in range(pw):
            channel = channels[int(pattern[(y0 + py) % ph, (x0 + px) % pw])]
            planes[channel] += cells[:, py, :, px]
            counts[channel] += 1
    planes /= counts[:, None, None]
    if layout.orientation >= 5 and (size[0] > size[1]) != (ny > nx):
        planes = np.rot90(planes, 1 if layout.orientation in (7, 8) else -1, axes=(1, 2))
    h, w = size
    _, ny, nx = planes.shape
    if nx * h > ny * w:  # wider than the preview: crop the width
        keep = max(1, round(ny * w / h))
        planes = planes[:, :, (nx - keep) // 2 : (nx - keep) // 2 + keep]
    else:
        keep = max(1, round(nx * h / w))
        planes = planes[:, (ny - keep) // 2 : (ny - keep) // 2 + keep, :]
    _, ny, nx = planes.shape
    zoomed = [ndimage.zoom(p, (h / ny, w / nx), order=1, mode="nearest", grid_mode=True) for p in planes]
    return np.stack([z[:h, :w] for z in zoomed], axis=-1)
