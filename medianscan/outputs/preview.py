"""A quick 8-bit sRGB look at a raw mosaic, for the DNG's embedded preview, in the tone of the camera's own.

Raw editors show the embedded preview before (or instead of) developing, and RawTherapee's default profile
("Auto-Matched Curve") fits its tone curve to it: it matches the luminance histogram of the preview with that of
its own neutral rendering of the raw (docs/dng-and-editors.md says how). So a blend that is the same picture as its
frames carries the source frame's own preview, as stored (`StoredPreview`), and then RawTherapee fits the curve it
fits to the source; a blend whose picture changed carries that preview changed alike (preview_change). Where the
camera's preview cannot be read back (and for a stitch) a blend gets a rendering of its own: plain (without
demosaicing: every block of whole CFA repeats becomes one RGB pixel, the mean of each colour's photosites in it, so
any pattern works; 8.5 MP take 30-45 ms here), then given the luminance curve that maps the source frame's plain
rendering onto its camera preview (`Tone`), each pixel's luminance set exactly and its hue kept. Orientation is
left to the Orientation tag.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from medianscan.errors import MedianscanError
from medianscan.metadata import MosaicLayout

# sRGB primaries -> CIE XYZ, D65 white (IEC 61966-2-1).
_SRGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_CHANNEL = {"R": 0, "G": 1, "B": 2}
LUT_BITS = 12


def rgb_channels(colors: str) -> list[int]:
    """The RGB channel (0, 1, 2) of each colour index of `colors` ("RGBG" -> [0, 1, 2, 1]).

    Raises MedianscanError for filters other than red, green and blue (CMYG, RGBE sensors).
    """
    try:
        channels = [_CHANNEL[letter] for letter in colors.upper()]
    except KeyError:
        raise MedianscanError(
            f"colour filters {colors!r} are not supported: only red, green and blue filter mosaics can be "
            "written as DNG"
        ) from None
    if set(channels) != {0, 1, 2}:
        raise MedianscanError(f"colour filters {colors!r} lack red, green or blue: cannot develop them as RGB")
    return channels


def camera_to_srgb(layout: MosaicLayout) -> npt.NDArray[np.float64]:
    """3x3 matrix from white-balanced camera RGB to linear sRGB (rows normalised so neutral stays neutral)."""
    cam_from_srgb = np.asarray(layout.color_matrix, dtype=np.float64) @ _SRGB_TO_XYZ
    sums = cam_from_srgb.sum(axis=1, keepdims=True)
    if not np.all(np.isfinite(cam_from_srgb)) or np.any(np.abs(sums) < 1e-6):
        return np.eye(3)
    try:
        return np.linalg.inv(cam_from_srgb / sums)
    except np.linalg.LinAlgError:
        return np.eye(3)


def _srgb_lut() -> npt.NDArray[np.uint8]:
    x = np.linspace(0.0, 1.0, (1 << LUT_BITS))
    y = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return np.round(y * 255).astype(np.uint8)


SRGB_LUT = _srgb_lut()  # linear codes of LUT_BITS bits -> 8-bit sRGB (the simulated live view uses it too)
_BAND_BYTES = 2 << 20  # the binning's temporaries stay this small, whatever the sensor


@dataclass(frozen=True)
class BinnedCells:
    """A mosaic binned by whole CFA repeats: per RGB plane, the sum of its photosites in each output pixel."""

    planes: npt.NDArray[np.float32]  # (3, ny, nx)
    sites: npt.NDArray[np.float64]  # photosites summed into each pixel of each plane
    black: npt.NDArray[np.float64]  # the mean black level of each plane's photosites

    def means(self) -> npt.NDArray[np.float32]:
        """Black-subtracted mean signal per pixel, (ny, nx, 3), in DN."""
        scale = (1.0 / self.sites).astype(np.float32)[:, None, None]
        out = self.planes * scale - self.black.astype(np.float32)[:, None, None]
        return np.ascontiguousarray(out.transpose(1, 2, 0))


def bin_cells(mosaic: npt.NDArray[np.uint16], layout: MosaicLayout, max_size: int) -> BinnedCells:
    """The default-crop area of `mosaic`, binned to at most `max_size` pixels on its long side, any CFA (or
    linear RGB)."""
    if layout.linear:
        return _bin_linear(mosaic, layout, max_size)
    channels = rgb_channels(layout.colors)
    pattern = np.asarray(layout.pattern)
    ph, pw = pattern.shape
    top, left, _, _ = layout.active_area
    cx, cy, cw, ch = layout.default_crop
    y0, x0 = top + cy, left + cx
    # Repeats per output pixel along each axis, so the long side fits max_size.
    k = max(1, math.ceil(max(ch / ph, cw / pw) / max(1, max_size)))
    by, bx = k * ph, k * pw
    ny, nx = ch // by, cw // bx
    if ny < 1 or nx < 1:
        raise MedianscanError(f"image area {cw}x{ch} is smaller than one colour filter repeat ({pw}x{ph})")
    # Sum the k x k repeats of each block per colour, rows first (whole-row adds are the fast ones), then the
    # k repeats along each row straight into the colour planes (about half the preview's time).
    block = mosaic[y0 : y0 + ny * by, x0 : x0 + nx * bx].reshape(ny, k, ph, nx * bx)
    local = np.roll(pattern, (-y0, -x0), axis=(0, 1))  # the pattern seen from the crop's corner
    black = np.asarray(layout.black_levels, dtype=np.float64)
    planes = np.zeros((3, ny, nx), dtype=np.float32)
    counts = np.zeros(3)
    black_sum = np.zeros(3)
    for py in range(ph):
        for px in range(pw):
            index = int(local[py, px])
            counts[channels[index]] += 1
            black_sum[channels[index]] += black[index]
    band = max(1, _BAND_BYTES // (k * ph * nx * bx * 4))  # output rows per band: bounded temporaries
    for start in range(0, ny, band):
        part = block[start : start + band]
        rows = part[:, 0] if k == 1 else np.add(part[:, 0], part[:, 1], dtype=np.uint32)
        for i in range(2, k):
            rows += part[:, i]
        columns = rows.reshape(len(part), ph, nx, k, pw)
        for py in range(ph):
            for px in range(pw):
                target = planes[channels[int(local[py, px])], start : start + band]
                for j in range(k):
                    target += columns[:, py, :, j, px]
    return BinnedCells(planes, counts * k * k, black_sum / counts)


@dataclass(frozen=True)
class Tone:
    """The tone of the source's own preview (the camera's rendering): a luminance curve from the plain rendering of
    the source frame (render_preview without a tone) to the camera's preview of it (see tone_like)."""

    curve: npt.NDArray[np.float64]  # (256,): plain luminance code -> the camera's luminance


@dataclass(frozen=True)
class StoredPreview:
    """The source frame's own embedded preview, as the raw stores it. A blend that is the same picture as its
    frames carries it itself, at its own size: RawTherapee's default profile fits its tone curve to the embedded
    preview, so the camera's very preview makes it fit the very curve it fits to the source."""

    data: bytes  # a JPEG stream (`jpeg`), or 8-bit RGB samples, row by row
    width: int
    height: int
    jpeg: bool
    subsampling: tuple[int, int] = (1, 1)  # a JPEG's chroma subsampling (horizontal, vertical)
    source: Path | None = field(default=None, compare=False)  # the raw it was read from, whose camera rendered it


def stored_preview(path: Path) -> StoredPreview | None:
    """The largest preview embedded in the raw at `path` (what LibRaw, dcraw and RawTherapee take for it), as it
    is stored; None when it has no readable preview of at least MIN_PREVIEW_PIXELS."""
    import rawpy

    try:
        with rawpy.imread(str(path)) as raw:
            thumb = raw.extract_thumb()
    except Exception:  # no preview, or a damaged one: LibRaw raises many types
        return None
    if thumb.format == rawpy.ThumbFormat.JPEG:
        data = bytes(thumb.data)
        found = jpeg_size(data)
        if found is None or found[0] * found[1] < MIN_PREVIEW_PIXELS:
            return None
        return StoredPreview(data, found[0], found[1], jpeg=True, subsampling=found[2:], source=path)
    rgb = np.asarray(thumb.data)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or rgb.shape[0] * rgb.shape[1] < MIN_PREVIEW_PIXELS:
        return None
    return StoredPreview(np.ascontiguousarray(rgb).tobytes(), rgb.shape[1], rgb.shape[0], jpeg=False, source=path)


_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def jpeg_size(stream: bytes) -> tuple[int, int, int, int] | None:
    """(width, height, horizontal and vertical chroma subsampling) of a JPEG stream of three 8-bit components,
    from its frame header; None for anything else (a grey or CMYK JPEG, a damaged stream)."""
    at = 2 if stream[:2] == b"\xff\xd8" else len(stream)
    while at + 4 <= len(stream):
        if stream[at] != 0xFF:
            return None
        marker = stream[at + 1]
        if marker == 0xFF:
            at += 1
            continue
        length = int.from_bytes(stream[at + 2 : at + 4], "big")
        if marker in _SOF_MARKERS:
            if at + 13 > len(stream):
                return None
            bits, height, width, components = (
                stream[at + 4],
                *struct.unpack(">HH", stream[at + 5 : at + 9]),
                stream[at + 9],
            )
            luma = stream[at + 11]  # the first component's sampling factors, horizontal << 4 | vertical
            if bits != 8 or components != 3 or not width or not height:
                return None
            return width, height, max(1, luma >> 4), max(1, luma & 15)
        at += 2 + length
    return None


# Rec. 709 luminance of 8-bit sRGB codes, as RawTherapee's histogram matching weighs them (Color::rgbLuminance).
LUMINANCE = np.array([0.2126729, 0.7151521, 0.0721750])
TONE_RANGE = (0.001, 0.999)  # the histogram's tails are matched no further: beyond, the curve runs straight
MIN_PREVIEW_PIXELS = 19200  # RawTherapee matches no smaller preview (160x120); a blend carries none smaller either


def luminance(image: npt.NDArray[np.generic]) -> npt.NDArray[np.float64]:
    """Per pixel luminance of (h, w, 3) 8-bit sRGB codes, in codes."""
    out: npt.NDArray[np.float64] = np.asarray(image, dtype=np.float64) @ LUMINANCE
    return out


def tone_like(reference: npt.NDArray[np.uint8], plain: npt.NDArray[np.uint8]) -> Tone:
    """The curve (256 luminance codes -> luminance) that gives `plain` (a plain rendering of a frame) the
    luminance histogram of `reference` (the camera's preview of that frame), as RawTherapee's histogram matching
    compares a preview with its own neutral rendering. Matching histograms needs no alignment: previews are cropped
    and scaled as each camera likes. Beyond the codes the plain rendering uses, the curve runs straight to white
    and from black, so no code the frame lacked clips."""
    codes = np.arange(256, dtype=np.float64)
    ours = _midpoint_cdf(np.clip(np.round(luminance(plain)), 0, 255).astype(np.uint8))
    theirs = _midpoint_cdf(np.clip(np.round(luminance(reference)), 0, 255).astype(np.uint8))
    matched = np.interp(ours, theirs, codes)
    low, high = (int(np.searchsorted(ours, q)) for q in TONE_RANGE)
    high = min(max(high, low + 1), 255)
    matched[:low] = codes[:low] * (matched[low] / max(low, 1))
    matched[high:] = matched[high] + (codes[high:] - high) * (255 - matched[high]) / max(255 - high, 1)
    return Tone(np.clip(np.maximum.accumulate(matched), 0, 255))


def with_luminance(image: npt.NDArray[np.uint8], curve: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
    """`image` whose every pixel's luminance is `curve` of its own, its hue kept: scaled, and where a channel would
    pass white, blended toward the grey of that luminance instead, so the luminance is met exactly and a histogram
    match of the result finds `curve` again."""
    rgb = np.asarray(image, dtype=np.float32)
    lum = rgb @ LUMINANCE.astype(np.float32)
    target = np.interp(lum, np.arange(256), curve).astype(np.float32)[..., None]
    scaled = rgb * (target / np.maximum(lum, np.float32(1e-3))[..., None])
    scaled[lum <= 1e-3] = target[lum <= 1e-3]  # black stays neutral
    top = scaled.max(axis=-1, keepdims=True)
    over = top > 255
    mix = np.where(over, (255 - target) / np.maximum(top - target, np.float32(1e-3)), np.float32(1))
    out = target + np.clip(mix, 0, 1) * (scaled - target)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _midpoint_cdf(values: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """The share of `values` below each code, counting half of the code itself (a symmetric CDF)."""
    counts = np.bincount(values.reshape(-1), minlength=256)[:256].astype(np.float64)
    counts /= max(1.0, counts.sum())
    return np.cumsum(counts) - counts / 2


def _bin_linear(pixels: npt.NDArray[np.uint16], layout: MosaicLayout, max_size: int) -> BinnedCells:
    """A linear-RGB raw's default-crop area, summed over k x k blocks per channel."""
    top, left, _, _ = layout.active_area
    cx, cy, cw, ch = layout.default_crop
    k = max(1, math.ceil(max(ch, cw) / max(1, max_size)))
    ny, nx = ch // k, cw // k
    if ny < 1 or nx < 1:
        raise MedianscanError(f"image area {cw}x{ch} is empty")
    y0, x0 = top + cy, left + cx
    block = pixels[y0 : y0 + ny * k, x0 : x0 + nx * k, :3].reshape(ny, k, nx, k, 3)
    planes = np.ascontiguousarray(block.sum(axis=(1, 3), dtype=np.float32).transpose(2, 0, 1))
    black = np.asarray(layout.black_levels[:3], dtype=np.float64)
    return BinnedCells(planes, np.full(3, float(k * k)), black)


def render_preview(
    mosaic: npt.NDArray[np.uint16], layout: MosaicLayout, max_size: int = 1024, tone: Tone | None = None
) -> npt.NDArray[np.uint8]:
    """The default-crop area of `mosaic` as 8-bit sRGB, at most `max_size` pixels on its long side, in `tone`.

    Binned by whole CFA repeats, black-subtracted, white-balanced by `as_shot_neutral`, brightened by the
    DNG's BaselineExposure as editors do (a flat-corrected or bracket blend keeps headroom above its white),
    converted by `color_matrix`, sRGB gamma, then `tone` (the camera preview's, when known); not rotated.
    """
    binned = bin_cells(mosaic, layout, max_size)
    planes, sites, black_mean = binned.planes, binned.sites, binned.black
    _, ny, nx = planes.shape
    neutral = np.asarray(layout.as_shot_neutral, dtype=np.float64)
    if not np.all(np.isfinite(neutral)) or np.any(neutral <= 0):
        neutral = np.ones(3)
    # One affine map from the plane sums to LUT codes: black, scale to white, white balance and the
    # camera -> sRGB matrix folded together, applied plane by plane (a BLAS matmul on (N, 3) pixels is ten
    # times slower here).
    top_code = (1 << LUT_BITS) - 1
    exposure = 2.0**layout.baseline_ev
    gain = exposure * (neutral.max() / neutral) / (sites * np.maximum(layout.white_level - black_mean, 1.0))
    matrix = camera_to_srgb(layout) * gain[np.newaxis, :] * top_code
    offset = 0.5 - matrix @ (black_mean * sites)  # +0.5: round to the nearest code
    planar = np.empty((3, ny, nx), dtype=np.uint8)
    mixed = np.empty((ny, nx), dtype=np.float32)
    term = np.empty_like(mixed)
    for channel in range(3):
        np.multiply(planes[0], np.float32(matrix[channel, 0]), out=mixed)
        for source in (1, 2):
            np.multiply(planes[source], np.float32(matrix[channel, source]), out=term)
            mixed += term
        mixed += np.float32(offset[channel])
        np.clip(mixed, 0.0, top_code, out=mixed)
        np.take(SRGB_LUT, mixed.astype(np.uint16), out=planar[channel])
    image = np.ascontiguousarray(planar.transpose(1, 2, 0))
    return image if tone is None else with_luminance(image, tone.curve)


def onto_preview(
    planes: npt.NDArray[np.float64], layout: MosaicLayout, size: tuple[int, int]
) -> npt.NDArray[np.float64]:
    """`planes` (3, rows, columns: R, G, B over the active area) laid onto a camera preview of `size` (height,
    width) as (height, width, 3): turned as the preview is when its shape says so (EXIF orientation 5-8 and a
    preview of the other aspect), centred and cropped to the preview's aspect ratio, resampled to its size."""
    _, ny, nx = planes.shape
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
    from scipy import ndimage  # here: only a changed picture's preview needs it, and every DNG write imports us

    zoomed = [ndimage.zoom(p, (h / ny, w / nx), order=1, mode="nearest", grid_mode=True) for p in planes]
    return np.stack([z[:h, :w] for z in zoomed], axis=-1)
