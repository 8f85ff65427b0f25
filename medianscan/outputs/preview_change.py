"""A blend's preview where its picture is not its reference frame's: the camera's own preview, changed as the
picture changed.

RawTherapee's default profile (Auto-Matched Curve) fits its tone curve by matching the luminance histogram of the
embedded preview with that of its own neutral rendering of the raw; darktable and LibRaw never look at the
preview. A blend that is the picture of its frames carries the reference frame's preview as stored
(preview.stored_preview). Where the picture changed, the closest thing to what the camera would have shown of it
is the camera's own preview changed the same way, in the light the camera rendered (its rendering learned from
the frame's raw and preview, camera_rendering): a flat field's gain per colour, resampled to the preview; the
exposure the DNG shows without BaselineExposure (the headroom above the frame's white level, which darktable and
RawTherapee ignore); and for a bracket, where the longest exposure's preview clipped, the shorter exposures'
previews. Rendering our own picture in the camera's tone instead made RawTherapee develop a strongly coloured scene
up to 2.5 EV off; changing the preview through sRGB's curve rather than the camera's rendering, 0.3 EV.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import imagecodecs
import numpy as np
import numpy.typing as npt

from medianscan.metadata import MosaicLayout
from medianscan.outputs.camera_rendering import TONE_TERMS, CameraRendering, camera_rendering
from medianscan.outputs.preview import StoredPreview, camera_to_srgb, jpeg_size, onto_preview, rgb_channels

PREVIEW_CLIP = (235, 250)  # a preview's codes from which a bracket's shorter exposure takes over, smoothly
PREVIEW_QUALITY = 92  # a changed camera preview is stored again as a JPEG of this quality
SRGB = CameraRendering(1.0, np.eye(3), np.zeros(TONE_TERMS))  # sRGB's curve alone: where no rendering is learned


def changed_preview(
    stored: StoredPreview,
    layout: MosaicLayout,
    gain: npt.NDArray[np.float32] | None,
    ev: float = 0.0,
    shorter: Sequence[tuple[StoredPreview, float]] = (),
) -> StoredPreview | None:
    """The camera's own preview of the reference frame, changed as its picture changed: times `gain` (per
    photosite of the full array: a flat field's, per raw colour, so in the camera's colour space) and 2**`ev`, in
    the light the camera rendered (its rendering undone, learned from the raws the previews were read from:
    camera_rendering; sRGB's curve where that cannot be learned), and stored again as it was stored (a JPEG at its
    own size, or 8-bit RGB). Where the preview clipped, the `shorter` exposures' previews (each with its exposure
    over the reference's, a bracket's) stand in, brought to its exposure, the longest that holds the pixel.
    RawTherapee's auto-matched curve compares the preview with its neutral rendering of the raw, so a preview close
    to what the camera would have shown of the changed picture makes it fit the curve it fits to a camera's raw of
    that picture. None when the stored preview cannot be decoded."""
    image = decoded_preview(stored)
    if image is None:
        return None
    held, sources = [], [(image, stored.source)]
    for other, ratio in shorter:
        decoded = decoded_preview(other)
        if decoded is not None and decoded.shape == image.shape:
            held.append((decoded, ratio))
            sources.append((decoded, other.source))
    rendering = learned_rendering(layout, sources)
    linear = rendering.linear(image) * 2.0**ev
    clipped = _clipped(image)
    for shown, ratio in sorted(held, key=lambda pair: -pair[1]):
        if not np.any(clipped):
            break
        linear += clipped[..., None] * (rendering.linear(shown) * (2.0**ev / ratio) - linear)
        clipped *= _clipped(shown)
    if gain is not None:  # the gain is the camera's, per raw colour: applied there, between the colour matrices
        to_srgb = camera_to_srgb(layout)
        camera = linear @ np.linalg.inv(to_srgb).T * colour_gains(gain, layout, image.shape[:2])
        linear = camera @ to_srgb.T
    out = np.ascontiguousarray(rendering.image(linear))
    if not stored.jpeg:
        return dataclasses.replace(stored, data=out.tobytes())
    data = bytes(imagecodecs.jpeg8_encode(out, level=PREVIEW_QUALITY))
    found = jpeg_size(data)
    assert found is not None  # our own encoder's stream
    return StoredPreview(data, found[0], found[1], jpeg=True, subsampling=found[2:], source=stored.source)


def learned_rendering(
    layout: MosaicLayout, previews: Sequence[tuple[npt.NDArray[np.uint8], Path | None]]
) -> CameraRendering:
    """The camera's rendering learned from `previews` (each decoded, with the raw it was read from, of the body
    `layout` describes), or sRGB's plain curve (SRGB) when a raw cannot be read or the fit fails."""
    pairs = []
    for image, source in previews:
        mosaic = None if source is None else _raw_mosaic(source)
        if mosaic is None:
            return SRGB
        pairs.append((image, mosaic, layout))
    return camera_rendering(pairs) or SRGB


def _raw_mosaic(path: Path) -> npt.NDArray[np.uint16] | None:
    """The full sensor array of the raw at `path`, as LibRaw reads it; None when it cannot (no mosaic, damaged)."""
    import rawpy

    try:
        with rawpy.imread(str(path)) as raw:
            mosaic = raw.raw_image
            return None if mosaic is None or mosaic.ndim != 2 else np.array(mosaic, dtype=np.uint16)
    except Exception:  # LibRaw raises many types; the preview then changes through sRGB's curve
        return None


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
    laid onto the preview (preview.onto_preview). A flat's gain is smooth: a camera's slightly other crop of its
    preview changes nothing that shows."""
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
    return onto_preview(planes, layout, size)
