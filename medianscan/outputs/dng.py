"""Write a raw sensor mosaic as a DNG that darktable, RawTherapee, LibRaw and Lightroom open like a camera raw.

The TIFF structure is written by hand (medianscan.outputs.tiff_ifd) rather than through tifffile: tifffile
refuses the ExifIFD pointer (tag 34665) and types SubIFDs as IFD (13), which validators flag, and patching its
output afterwards or rewriting it through exiv2 costs a second pass over the file. Writing the few IFDs ourselves
gives every tag the type the DNG 1.4 specification asks for, in one pass, straight from the mosaic's memory.

Layout (little-endian TIFF): IFD0 = 8-bit RGB preview (NewSubFileType 1) carrying the camera, colour and DNG
tags; its SubIFD = the raw mosaic (NewSubFileType 0, CFA, levels, areas); its ExifIFD = exposure and lens. A blend
then gets its source frame's whole EXIF, maker note included, through Exiv2 (medianscan.outputs.exif).
Compression is none or lossless JPEG (256x256 tiles, two columns per JPEG sample as Adobe writes them); never
Deflate, which is invalid for a CFA DNG and which LibRaw, darktable and RawTherapee cannot read.
"""

from __future__ import annotations

import os
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import imagecodecs
import numpy as np
import numpy.typing as npt

from medianscan import __version__
from medianscan.atomic import atomic_path
from medianscan.errors import MedianscanError
from medianscan.formats import DNG_VERSION_TAG
from medianscan.metadata import CameraInfo, Exposure, MosaicLayout
from medianscan.outputs.exif import carry_exif
from medianscan.outputs.preview import StoredPreview, Tone, render_preview, rgb_channels
from medianscan.outputs.tiff_ifd import (
    BYTE,
    LONG,
    RATIONAL,
    SHORT,
    SRATIONAL,
    UNDEFINED,
    Ifd,
    pack_given,
)

# Tags that belong to the raw IFD when they come in a layout's extra_tags (everything else goes to IFD0).
RAW_IFD_TAGS = frozenset({50712, 50733, 50737, 50738, 50780, 51008, 51009, 51022, 51041, 51125})

TILE = 256
ROWS_PER_STRIP = 256
PREVIEW_SIZE = 1024
CFA_COLOUR_CODES = {"R": 0, "G": 1, "B": 2, "C": 3, "M": 4, "Y": 5, "W": 6}


def write_dng(
    path: Path,
    mosaic: npt.NDArray[np.uint16],
    layout: MosaicLayout,
    camera: CameraInfo,
    exposure: Exposure,
    *,
    compress: bool = False,
    software: str = f"medianscan {__version__}",
    description: str = "",
    xmp: bytes | None = None,
    preview: bool = True,
    tone: Tone | None = None,
    camera_preview: StoredPreview | None = None,
    metadata_from: Path | None = None,
) -> None:
    """Write `mosaic` (the full sensor array, masked border included) as a DNG at `path`, atomically.

    `compress` stores the mosaic as lossless-JPEG tiles: files half the size, 7-9x slower to write. `xmp` is an
    XMP packet for IFD0's XMLPacket tag (the film's metadata, medianscan.outputs.xmp). `preview` embeds an 8-bit
    preview in IFD0 (without one the raw is IFD0, as when the source has none: RawTherapee's default profile
    develops a file with and without a preview differently). The preview is `camera_preview` (the source's own, as
    stored) when given: for a mosaic that is the source's picture (no flat field, no bracket merge); else our
    rendering, in `tone` (the source preview's) when given (see medianscan.outputs.preview).
    `metadata_from` is the source frame whose EXIF and maker note the DNG carries.
    Raises MedianscanError naming `path` for layouts a DNG cannot describe.
    """
    path = Path(path)
    mosaic = np.asarray(mosaic)
    check_mosaic(path, mosaic, layout)
    raw = raw_ifd(layout, mosaic.shape)
    exif = exif_ifd(camera, exposure)
    offsets_tag, segments = _store_mosaic(raw, mosaic, layout, compress=compress)
    if preview and camera_preview is not None:
        image, ifd0 = _camera_preview_ifd(camera_preview)
    elif preview:
        rendered = np.ascontiguousarray(render_preview(mosaic, layout, PREVIEW_SIZE, tone))
        image, ifd0 = rendered.reshape(-1), preview_ifd(rendered.reshape(-1), rendered.shape[1], rendered.shape[0])
    else:  # the raw is IFD0 itself, as in a DNG whose source had no preview either
        image, ifd0, raw = np.empty(0, np.uint8), raw, Ifd()
    file_tags(ifd0, camera, exposure, layout, software=software, description=description)
    for tag, (type_code, count, value) in layout.extra_tags.items():
        packed = pack_given(tag, int(type_code), int(count), value)
        (raw if preview and tag in RAW_IFD_TAGS else ifd0).set_packed(tag, int(type_code), packed)
    if xmp is not None:
        ifd0.set_packed(700, BYTE, (len(xmp), xmp))  # XMLPacket

    # Placeholders have their final size, so every position is known before any offset is written.
    if preview:
        ifd0.set(330, LONG, [0])  # SubIFDs
    ifd0.set(34665, LONG, [0])  # ExifIFD
    ifd0_at = 8
    raw_at = ifd0_at + ifd0.nbytes()
    exif_at = raw_at + (raw.nbytes() if raw.entries else 0)
    image_at = exif_at + exif.nbytes()
    sizes = [memoryview(s).nbytes for s in segments]
    offsets = np.cumsum([image_at + image.nbytes + (image.nbytes & 1), *sizes[:-1]]).tolist()
    if offsets[-1] + sizes[-1] >= 1 << 32:
        raise MedianscanError(f"{path}: the mosaic is too large for a (non-Big)TIFF DNG")
    if preview:
        ifd0.set(273, LONG, [image_at])
        ifd0.set(330, LONG, [raw_at])
    ifd0.set(34665, LONG, [exif_at])
    (raw if preview else ifd0).set(offsets_tag, LONG, offsets)

    with atomic_path(path) as tmp:
        with tmp.open("wb") as fh:
            fh.write(b"II*\x00" + struct.pack("<I", ifd0_at))
            fh.write(ifd0.pack(ifd0_at))
            fh.write(raw.pack(raw_at) if raw.entries else b"")
            fh.write(exif.pack(exif_at))
            fh.write(image.data)
            fh.write(b"\x00" * (image.nbytes & 1))
            for segment in segments:
                fh.write(segment)
        if metadata_from is not None:
            carry_exif(tmp, metadata_from)


def check_mosaic(path: Path, mosaic: npt.NDArray[np.generic], layout: MosaicLayout) -> None:
    """Refuse what a CFA DNG cannot hold, with the reason, before anything is written."""
    shape_ok = mosaic.ndim == 3 and mosaic.shape[2] == 3 if layout.linear else mosaic.ndim == 2
    if not shape_ok or mosaic.dtype.kind != "u" or mosaic.dtype.itemsize > 2:
        what = "an (H, W, 3) array" if layout.linear else "a 2-D array"
        raise MedianscanError(
            f"{path}: a DNG {'of linear RGB' if layout.linear else 'mosaic'} must be {what} of 8- or 16-bit "
            f"unsigned integers, not {mosaic.dtype} with shape {mosaic.shape}"
        )
    try:
        rgb_channels(layout.colors)
    except MedianscanError as exc:
        raise MedianscanError(f"{path}: {exc}") from None
    pattern = np.asarray(layout.pattern)
    if pattern.ndim != 2 or pattern.size == 0 or int(pattern.max()) >= len(layout.colors):
        raise MedianscanError(f"{path}: CFA pattern {pattern.tolist()} does not match colours {layout.colors!r}")
    height, width = mosaic.shape[:2]
    top, left, bottom, right = layout.active_area
    if not (0 <= top < bottom <= height and 0 <= left < right <= width):
        raise MedianscanError(f"{path}: active area {layout.active_area} lies outside the {width}x{height} mosaic")
    cx, cy, cw, ch = layout.default_crop
    if not (cx >= 0 and cy >= 0 and cw > 0 and ch > 0 and cx + cw <= right - left and cy + ch <= bottom - top):
        raise MedianscanError(f"{path}: default crop {layout.default_crop} lies outside the active area")
    if len(layout.black_levels) < len(layout.colors):
        raise MedianscanError(f"{path}: {len(layout.black_levels)} black levels for colours {layout.colors!r}")
    neutral = np.asarray(layout.as_shot_neutral, dtype=np.float64)
    if neutral.shape != (3,) or not np.all(np.isfinite(neutral)) or np.any(neutral <= 0):
        raise MedianscanError(f"{path}: as-shot neutral {layout.as_shot_neutral} is not three positive numbers")
    matrix = np.asarray(layout.color_matrix, dtype=np.float64)
    if matrix.shape != (3, 3) or not np.all(np.isfinite(matrix)) or abs(np.linalg.det(matrix)) < 1e-9:
        raise MedianscanError(f"{path}: colour matrix {matrix.tolist()} is not an invertible 3x3 matrix")
    if not 1 <= layout.orientation <= 8:
        raise MedianscanError(f"{path}: EXIF orientation {layout.orientation} is not 1..8")


def _camera_preview_ifd(stored: StoredPreview) -> tuple[npt.NDArray[np.uint8], Ifd]:
    """The source's own preview as IFD0, stored as the source stores it (a camera's JPEG is not decoded)."""
    data = np.frombuffer(stored.data, np.uint8)
    ifd = preview_ifd(data, stored.width, stored.height)
    if stored.jpeg:
        ifd.set(259, SHORT, [7])  # Compression: JPEG
        ifd.set(262, SHORT, [6])  # YCbCr
        ifd.set(530, SHORT, list(stored.subsampling))  # YCbCrSubSampling, as the stream says
    return data, ifd


def preview_ifd(data: npt.NDArray[np.uint8], pw: int, ph: int) -> Ifd:
    """IFD0 as a preview image of `data`: 8-bit RGB, one strip (its offset is filled by the caller)."""
    ifd = Ifd()
    ifd.set(254, LONG, [1])  # NewSubFileType: reduced-resolution preview
    ifd.set(256, LONG, [pw])
    ifd.set(257, LONG, [ph])
    ifd.set(258, SHORT, [8, 8, 8])
    ifd.set(259, SHORT, [1])
    ifd.set(262, SHORT, [2])  # RGB
    ifd.set(273, LONG, [0])  # StripOffsets, filled by the caller
    ifd.set(277, SHORT, [3])
    ifd.set(278, LONG, [ph])
    ifd.set(279, LONG, [data.nbytes])
    ifd.set(284, SHORT, [1])
    ifd.set(50970, LONG, [2])  # PreviewColorSpace: sRGB
    return ifd


def file_tags(
    ifd: Ifd, camera: CameraInfo, exposure: Exposure, layout: MosaicLayout, *, software: str, description: str
) -> None:
    """The tags of IFD0 that describe the whole file: camera, orientation, colour and DNG version."""
    if description:
        ifd.set_text(270, description)
    make = camera.make or "Unknown"
    model = camera.model or "Camera"
    ifd.set_text(271, make)
    ifd.set_text(272, model)
    ifd.set(274, SHORT, [layout.orientation])
    ifd.set_text(305, software)
    if exposure.taken:
        ifd.set_text(306, exposure.taken)
    ifd.set(DNG_VERSION_TAG, BYTE, [1, 4, 0, 0])
    ifd.set(50707, BYTE, [1, 1, 0, 0])  # DNGBackwardVersion: 1.1 for ActiveArea
    unique = model if model.lower().startswith(make.lower()) else f"{make} {model}"
    ifd.set_text(50708, unique)  # UniqueCameraModel
    ifd.set(50721, SRATIONAL, np.asarray(layout.color_matrix, dtype=np.float64).reshape(-1))  # ColorMatrix1
    ifd.set(50728, RATIONAL, list(layout.as_shot_neutral))  # AsShotNeutral
    if camera.serial:
        ifd.set_text(50735, camera.serial)  # CameraSerialNumber
    ifd.set(50778, SHORT, [21])  # CalibrationIlluminant1: D65


def raw_ifd(layout: MosaicLayout, shape: tuple[int, ...]) -> Ifd:
    """The raw SubIFD: mosaic geometry, CFA, levels and areas (the pixel data's tags come later)."""
    if layout.linear:
        return _linear_raw_ifd(layout, shape)
    ifd = Ifd()
    height, width = shape
    top, left, bottom, right = layout.active_area
    cx, cy, cw, ch = layout.default_crop
    # The DNG CFA and black-level patterns start at the active area's corner; the layout's at the array's.
    local = np.roll(np.asarray(layout.pattern), (-top, -left), axis=(0, 1))
    ph, pw = local.shape
    letters = [layout.colors[i] for i in local.reshape(-1)]
    black = np.asarray(layout.black_levels, dtype=np.int64)[local]
    ifd.set(254, LONG, [0])  # NewSubFileType: main image
    ifd.set(256, LONG, [width])
    ifd.set(257, LONG, [height])
    ifd.set(258, SHORT, [16])
    ifd.set(262, SHORT, [32803])  # CFA
    ifd.set(277, SHORT, [1])
    ifd.set(284, SHORT, [1])
    ifd.set(33421, SHORT, [ph, pw])  # CFARepeatPatternDim
    ifd.set(33422, BYTE, [CFA_COLOUR_CODES[c.upper()] for c in letters])  # CFAPattern
    ifd.set(50710, BYTE, [0, 1, 2])  # CFAPlaneColor
    ifd.set(50711, SHORT, [1])  # CFALayout: rectangular
    # Per-position black levels only where every reader places them alike. LibRaw, RawTherapee and darktable
    # anchor the BlackLevel pattern at the array's corner (unlike the CFA pattern), the DNG SDK at the active
    # area's, and darktable reads at most a 2x2 pattern. Elsewhere one level, the mean, for all: real cameras'
    # per-channel blacks differ by a few units at most, and a wrongly placed pattern would cast the image.
    aligned = top % ph == 0 and left % pw == 0 and (ph, pw) == (2, 2)
    if aligned and np.any(black != black.flat[0]):
        ifd.set(50713, SHORT, [ph, pw])  # BlackLevelRepeatDim
        ifd.set(50714, LONG, black.reshape(-1).tolist())  # BlackLevel, per CFA position
    else:
        ifd.set(50713, SHORT, [1, 1])
        ifd.set(50714, LONG, [round(float(black.mean()))])
    ifd.set(50717, LONG, [int(layout.white_level)])  # WhiteLevel
    ifd.set(50718, RATIONAL, [1, 1])  # DefaultScale
    ifd.set(50719, LONG, [cx, cy])  # DefaultCropOrigin
    ifd.set(50720, LONG, [cw, ch])  # DefaultCropSize
    ifd.set(50829, LONG, [top, left, bottom, right])  # ActiveArea
    return ifd


def _linear_raw_ifd(layout: MosaicLayout, shape: tuple[int, ...]) -> Ifd:
    """The raw SubIFD of a raw without a mosaic: three samples per pixel (LinearRaw), a black and white level
    per sample, and the areas."""
    ifd = Ifd()
    height, width, _ = shape
    top, left, bottom, right = layout.active_area
    cx, cy, cw, ch = layout.default_crop
    ifd.set(254, LONG, [0])  # NewSubFileType: main image
    ifd.set(256, LONG, [width])
    ifd.set(257, LONG, [height])
    ifd.set(258, SHORT, [16, 16, 16])
    ifd.set(262, SHORT, [34892])  # LinearRaw
    ifd.set(277, SHORT, [3])
    ifd.set(284, SHORT, [1])
    ifd.set(50713, SHORT, [1, 1])  # BlackLevelRepeatDim
    ifd.set(50714, LONG, [int(b) for b in layout.black_levels[:3]])  # BlackLevel, one per sample
    ifd.set(50717, LONG, [int(layout.white_level)] * 3)  # WhiteLevel, one per sample
    ifd.set(50718, RATIONAL, [1, 1])  # DefaultScale
    ifd.set(50719, LONG, [cx, cy])  # DefaultCropOrigin
    ifd.set(50720, LONG, [cw, ch])  # DefaultCropSize
    ifd.set(50829, LONG, [top, left, bottom, right])  # ActiveArea
    return ifd


def _store_mosaic(
    ifd: Ifd, mosaic: npt.NDArray[np.generic], layout: MosaicLayout, *, compress: bool
) -> tuple[int, list[bytes | memoryview]]:
    """Add the pixel-data tags to the raw IFD; return the offsets tag to fill and the data segments.

    Uncompressed: strips of 256 rows that are views of the mosaic's memory (no copy).
    """
    segments: list[bytes | memoryview]
    if compress:
        segments = list(lossless_jpeg_tiles(mosaic, _bit_depth(mosaic, layout)))
        ifd.set(259, SHORT, [7])  # Compression: lossless JPEG
        ifd.set(322, SHORT, [TILE])  # TileWidth
        ifd.set(323, SHORT, [TILE])  # TileLength
        ifd.set(324, LONG, [0] * len(segments))  # TileOffsets
        ifd.set(325, LONG, [len(s) for s in segments])  # TileByteCounts
        return 324, segments
    data = np.ascontiguousarray(mosaic, dtype="<u2")
    strips = [data[y : y + ROWS_PER_STRIP].data for y in range(0, data.shape[0], ROWS_PER_STRIP)]
    ifd.set(259, SHORT, [1])
    ifd.set(273, LONG, [0] * len(strips))  # StripOffsets
    ifd.set(278, LONG, [ROWS_PER_STRIP])  # RowsPerStrip
    ifd.set(279, LONG, [s.nbytes for s in strips])  # StripByteCounts
    return 273, list(strips)


def exif_ifd(camera: CameraInfo, exposure: Exposure) -> Ifd:
    """The ExifIFD: raw editors read ISO, exposure, aperture, focal length, date and lens only from here."""
    ifd = Ifd()
    if exposure.exposure_time:
        ifd.set(33434, RATIONAL, [exposure.exposure_time])
    if exposure.f_number:
        ifd.set(33437, RATIONAL, [exposure.f_number])
    if exposure.iso:
        ifd.set(34855, SHORT, [min(65535, round(exposure.iso))])  # PhotographicSensitivity
    ifd.set(36864, UNDEFINED, b"0231")  # ExifVersion 2.31
    if exposure.taken:
        ifd.set_text(36867, exposure.taken)  # DateTimeOriginal
    if exposure.focal_length:
        ifd.set(37386, RATIONAL, [exposure.focal_length])
    if camera.serial:
        ifd.set_text(42033, camera.serial)  # BodySerialNumber
    if camera.lens:
        ifd.set_text(42036, camera.lens)  # LensModel
    return ifd


def _bit_depth(mosaic: npt.NDArray[np.generic], layout: MosaicLayout) -> int:
    """Sample precision for the lossless JPEG header: LibRaw rejects samples wider than it declares."""
    top = max(int(mosaic.max()), int(layout.white_level), 3)
    return min(16, top.bit_length())


def lossless_jpeg_tiles(mosaic: npt.NDArray[np.generic], bits: int) -> list[bytes]:
    """256x256 tiles, each a lossless JPEG of 128 two-component columns (same-colour prediction, ~30 % smaller
    than one component) for a mosaic, or of three components for linear RGB, encoded on all cores. Edge tiles
    are padded by repeating the last row and column."""

    height, width = mosaic.shape[:2]
    samples = mosaic.shape[2] if mosaic.ndim == 3 else 1

    def encode(corner: tuple[int, int]) -> bytes:
        y, x = corner
        tile = mosaic[y : y + TILE, x : x + TILE]
        if tile.shape[:2] != (TILE, TILE):
            pad = ((0, TILE - tile.shape[0]), (0, TILE - tile.shape[1]), *(((0, 0),) if samples > 1 else ()))
            tile = np.pad(tile, pad, mode="edge")
        shape = (TILE, TILE, samples) if samples > 1 else (TILE, TILE // 2, 2)
        tile = np.ascontiguousarray(tile, dtype=np.uint16).reshape(shape)
        return bytes(imagecodecs.jpeg8_encode(tile, lossless=True, bitspersample=bits))

    corners = [(y, x) for y in range(0, height, TILE) for x in range(0, width, TILE)]
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        return list(pool.map(encode, corners))
