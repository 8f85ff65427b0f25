"""How a camera rendered its preview from its raw, learned from the frame itself, so that a blend's changed picture
can be rendered as that camera would have rendered it.

A camera's JPEG engine turns the raw's light into codes by its own colour (a saturation) and its own tone curve,
not by sRGB's. RawTherapee's default profile fits its curve to the preview's histogram, and on a scene of a few
coloured lights on near black it lands on another of its few curves when a changed preview is changed through
sRGB's curve instead of the camera's (docs/dng-and-editors.md). So the camera's rendering is learned from pairs of
a raw and the camera's preview of it (the reference frame's, and a bracket's shorter exposures'): the raw's plain
linear picture (black-subtracted, white-balanced, the camera's matrix to linear sRGB, per whole CFA repeat of the
active area, laid onto the preview) against the preview, both slightly smoothed (the preview is a point sample of
a textured picture, the plain picture a mean of its photosites; edges, where smoothing mixes codes rather than
light, left out), fitted as an exposure, a saturation about grey, sRGB's curve and a smooth tone curve in its
encoded values (a sine series with both ends fixed), by robust least squares, held lightly to sRGB's. A full 3x3
colour matrix found colours a scene of one hue cannot tell apart (a dark scene's blend then developed 0.08 EV
off). A fit that does not render the preview within MAX_RMS codes (another crop, a local tone mapping: the 30D's
JPEG is 5.6 codes off, RMS) is not used, and the preview changes through sRGB's curve as before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from medianscan.metadata import MosaicLayout
from medianscan.outputs.preview import bin_cells, camera_to_srgb, onto_preview

TONE_TERMS = 4  # sine terms of the tone curve over sRGB's
PRIOR = 0.2  # how hard the saturation is held to none and the tone curve to sRGB's, against a code per sample
SMOOTH = 1.5  # preview pixels: the smoothing of both sides of a pair
FIT_SIZE = 800  # a larger preview is fitted at a whole fraction of its size, its codes averaged in blocks
SAMPLES = 3000  # pixels fitted, spread over the pairs (a fit takes 0.3-0.5 s)
MAX_STEPS = 60  # evaluations of the fit at most: it settles in fewer
USABLE = 250  # a preview pixel with a code above this in any channel may be clipped: left out
EDGE = 1.0  # codes per pixel squared: a smoothed preview's curvature beyond this is an edge, left out
MAX_RMS = 4.0  # codes: a fit further off than this does not describe the camera's preview
_ENCODED = np.linspace(0.0, 1.0, 4097)
_STEPS = np.linspace(0.0, 1.0, 1 << 16)  # linear light, for image's table


def _encode(linear: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = np.where(
        linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(np.maximum(linear, 0), 1 / 2.4) - 0.055
    )
    return out


def _decode(encoded: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = np.where(
        encoded <= 0.04045, encoded / 12.92, np.power((np.maximum(encoded, 0) + 0.055) / 1.055, 2.4)
    )
    return out


@dataclass(frozen=True)
class CameraRendering:
    """A camera's rendering of plain linear sRGB (as plain_linear gives it) into 8-bit preview codes."""

    exposure: float
    matrix: npt.NDArray[np.float64]  # (3, 3): a saturation about grey (rows summing to one)
    tone: npt.NDArray[np.float64]  # (TONE_TERMS,): the curve's sine coefficients

    def _curve(self, encoded: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        out = encoded.copy()
        for k, a in enumerate(self.tone, 1):
            out += a * np.sin(k * np.pi * encoded) / (k * np.pi)
        return out

    def codes(self, linear: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The preview's codes (0-255, not rounded) of plain linear light (..., 3), exactly (what the fit needs)."""
        mixed = np.clip(self.exposure * linear @ self.matrix.T, 0, 1)
        out: npt.NDArray[np.float64] = 255 * np.clip(self._curve(_encode(mixed)), 0, 1)
        return out

    def image(self, linear: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
        """`linear` (h, w, 3) rendered as the camera's 8-bit preview, through a table (a preview's millions of values
        take a tenth of the time)."""
        mixed = np.clip(self.exposure * linear @ self.matrix.T, 0, 1)
        table = np.round(255 * np.clip(self._curve(_encode(_STEPS)), 0, 1)).astype(np.uint8)
        out: npt.NDArray[np.uint8] = table[np.rint(mixed * (len(_STEPS) - 1)).astype(np.int32)]
        return out

    def linear(self, codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        """The plain linear light (..., 3) the camera rendered as 8-bit `codes`; a clipped code gives its edge."""
        curve = np.maximum.accumulate(self._curve(_ENCODED))
        table = _decode(np.interp(np.arange(256) / 255, curve, _ENCODED))
        out: npt.NDArray[np.float64] = table[codes] @ np.linalg.inv(self.matrix).T / self.exposure
        return out


def plain_linear(
    mosaic: npt.NDArray[np.generic], layout: MosaicLayout, size: tuple[int, int]
) -> npt.NDArray[np.float64]:
    """The raw's active area as plain linear sRGB on a preview of `size` (height, width): per whole CFA repeat,
    black-subtracted, white-balanced (as_shot_neutral), scaled to the white level, the camera's matrix."""
    top, left, bottom, right = layout.active_area
    whole = dataclasses.replace(layout, default_crop=(0, 0, right - left, bottom - top))
    binned = bin_cells(np.asarray(mosaic, dtype=np.uint16), whole, max(size))
    neutral = np.asarray(layout.as_shot_neutral, dtype=np.float64)
    if not np.all(np.isfinite(neutral)) or np.any(neutral <= 0):
        neutral = np.ones(3)
    scale = (neutral.max() / neutral) / np.maximum(layout.white_level - binned.black, 1.0)
    camera = np.maximum(binned.means().astype(np.float64) * scale, 0)
    out: npt.NDArray[np.float64] = onto_preview(camera.transpose(2, 0, 1), layout, size) @ camera_to_srgb(layout).T
    return out


def _block_means(image: npt.NDArray[np.uint8], k: int) -> npt.NDArray[np.float64]:
    """The means of `image`'s k x k blocks (h, w, 3) in float64: whole sums of strided slices (exactly what a float64
    mean over the reshaped blocks gives, a third of its time: its reduction runs over two strided axes)."""
    total = np.zeros((image.shape[0] // k, image.shape[1] // k, image.shape[2]), np.uint32)
    for dy in range(k):
        for dx in range(k):
            total += image[dy::k, dx::k]
    out: npt.NDArray[np.float64] = total / float(k * k)
    return out


def _code_slopes(values: npt.NDArray[np.float64], light: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """d codes / d values (samples * 3, values) of _unpacked(values).codes(light), in closed form: the fit takes one
    evaluation a step instead of one per value more (a finite-difference Jacobian), and converges to the same
    rendering."""
    rendering = _unpacked(values)
    grey = light.mean(axis=-1, keepdims=True)
    exposed = rendering.exposure * (light @ rendering.matrix.T)
    inside = (exposed > 0) & (exposed < 1)
    mixed = np.clip(exposed, 0, 1)
    encoded = _encode(mixed)
    slope = np.where(mixed <= 0.0031308, 12.92, 1.055 / 2.4 * np.power(np.maximum(mixed, 1e-12), 1 / 2.4 - 1))
    curve, steep = rendering._curve(encoded), np.ones_like(encoded)
    for k, a in enumerate(rendering.tone, 1):
        steep += a * np.cos(k * np.pi * encoded)
    outer = 255 * ((curve > 0) & (curve < 1))
    through = outer * steep * slope * inside  # d codes / d exposed light
    columns = [through * exposed, through * rendering.exposure * (light - grey)]
    columns += [outer * np.sin(k * np.pi * encoded) / (k * np.pi) for k in range(1, len(rendering.tone) + 1)]
    return np.stack([c.ravel() for c in columns], axis=-1)


def _unpacked(values: npt.NDArray[np.float64]) -> CameraRendering:
    """log exposure, saturation less one, the tone curve's terms."""
    saturation = 1 + values[1]
    matrix = saturation * np.eye(3) + (1 - saturation) * np.full((3, 3), 1 / 3)
    return CameraRendering(float(np.exp(values[0])), matrix, values[2:].copy())


def camera_rendering(
    pairs: Sequence[tuple[npt.NDArray[np.uint8], npt.NDArray[np.generic], MosaicLayout]],
) -> CameraRendering | None:
    """The camera's rendering fitted on `pairs` of (its 8-bit RGB preview, the raw's full sensor array, its layout);
    None when the pairs do not describe one (no usable pixels, a raw without a mosaic, a fit off by more than
    MAX_RMS codes)."""
    rng = np.random.default_rng(0)  # the same blend gives the same preview
    previews, plains = [], []
    for preview, mosaic, layout in pairs:
        if layout.linear or preview.ndim != 3:
            return None
        k = -(-max(preview.shape[:2]) // FIT_SIZE)
        h, w = preview.shape[0] // k, preview.shape[1] // k
        blocks = _block_means(preview[: h * k, : w * k, :3], k)
        size = (h, w)
        seen = np.stack([ndimage.gaussian_filter(blocks[..., c], SMOOTH) for c in range(3)], -1)
        plain = plain_linear(mosaic, layout, size)
        plain = np.stack([ndimage.gaussian_filter(plain[..., c], SMOOTH) for c in range(3)], -1)
        edges = np.abs(ndimage.laplace(seen.mean(axis=-1))) > EDGE  # smoothing across an edge mixes codes, not light
        usable = np.flatnonzero(((seen.max(axis=-1) < USABLE) & ~edges).ravel())
        picked = rng.choice(usable, min(len(usable), SAMPLES // len(pairs)), replace=False)
        previews.append(seen.reshape(-1, 3)[picked])
        plains.append(plain.reshape(-1, 3)[picked])
    seen_codes, plain_light = np.concatenate(previews), np.concatenate(plains)
    if len(seen_codes) < 100:
        return None
    prior = PRIOR * np.sqrt(len(seen_codes))

    def residuals(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        off = _unpacked(values).codes(plain_light) - seen_codes
        return np.concatenate([off.ravel(), prior * values[1:]])

    from scipy import optimize  # here, not at import: every blend imports this module, few fit (0.2-0.3 s of CPU)

    def jacobian(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.concatenate([_code_slopes(values, plain_light), prior * np.eye(len(values))[1:]])

    fit = optimize.least_squares(
        residuals,
        np.zeros(2 + TONE_TERMS),
        jac=jacobian,
        loss="soft_l1",
        f_scale=1.0,
        tr_solver="lsmr",
        x_scale="jac",
        max_nfev=MAX_STEPS,
    )
    rendering = _unpacked(fit.x)
    rms = float(np.sqrt(np.mean((rendering.codes(plain_light) - seen_codes) ** 2)))
    if rms > MAX_RMS or np.linalg.cond(rendering.matrix) > 1e3:  # MAX_STEPS reached is fine: it settles early
        return None
    return rendering
