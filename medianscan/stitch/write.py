"""The stitched mosaic streamed into a DNG band by band, never whole in memory.

`outputs.dng.write_dng` takes the whole mosaic: right for a blend, wrong for a 200 MP negative. Here the raw
goes to the file as each band of 256 rows arrives: a row of 256x256 lossless JPEG tiles with `compress`, else
one uncompressed strip, and the IFDs, whose tile offsets are only known then, go after the data: a TIFF's
header may point to
its first IFD anywhere in the file. The IFDs themselves are `outputs.dng`'s (the same tags, each with its
reason) and so is the preview's rendering, from whole CFA repeats kept from every band at a stride.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from medianscan import __version__
from medianscan.atomic import atomic_path
from medianscan.errors import MedianscanError
from medianscan.metadata import CameraInfo, Exposure, MosaicLayout
from medianscan.outputs import dng
from medianscan.outputs.exif import carry_exif
from medianscan.outputs.preview import Tone, render_preview
from medianscan.outputs.tiff_ifd import BYTE, LONG, SHORT, Ifd, pack_given

TILE = dng.TILE
BAND_ROWS = TILE


def write_bands(
    path: Path,
    shape: tuple[int, int],
    bands: Iterable[npt.NDArray[np.uint16]],
    layout: MosaicLayout,
    *,
    camera: CameraInfo,
    exposure: Exposure,
    compress: bool = False,
    description: str = "",
    xmp: bytes | None = None,
    tone: Tone | None = None,
    metadata_from: Path | None = None,
) -> None:
    """Write the mosaic of `shape` arriving as `bands` of BAND_ROWS rows (the last may be shorter) as a tiled DNG
    at `path`, atomically, with an embedded preview and `metadata_from`'s EXIF."""
    height, width = shape
    dng.check_mosaic(path, np.broadcast_to(np.uint16(0), shape), layout)
    bits = min(16, max(int(layout.white_level), 3).bit_length())
    ph, pw = layout.pattern.shape
    stride = max(1, max(height // ph, width // pw) // dng.PREVIEW_SIZE)  # CFA repeats between kept ones
    kept_cols = (np.arange(width) // pw) % stride == 0
    kept_rows: list[npt.NDArray[np.uint16]] = []
    offsets: list[int] = []
    counts: list[int] = []
    with atomic_path(path) as tmp:
        with tmp.open("wb") as fh:
            fh.write(b"II*\x00" + struct.pack("<I", 0))
            at, done = 8, 0
            for band in bands:
                if band.shape[1] != width or (band.shape[0] != BAND_ROWS and done + band.shape[0] != height):
                    raise MedianscanError(f"{path}: a band of {band.shape} does not fit a {width}x{height} mosaic")
                rows = (np.arange(done, done + band.shape[0]) // ph) % stride == 0
                kept_rows.append(band[rows][:, kept_cols])
                for segment in _tiles(band, compress, bits):
                    fh.write(segment)
                    offsets.append(at)
                    counts.append(len(segment))
                    at += len(segment)
                done += band.shape[0]
            if done != height:
                raise MedianscanError(f"{path}: {done} rows arrived of {height}")
            at += _pad(fh, at)
            small = np.ascontiguousarray(np.concatenate(kept_rows))
            small_layout = _small_layout(layout, small.shape, stride)
            image = np.ascontiguousarray(render_preview(small, small_layout, dng.PREVIEW_SIZE, tone))
            image_at = at
            fh.write(image.data)
            at += image.nbytes
            at += _pad(fh, at)
            ifd0, raw, exif = _ifds(
                layout,
                shape,
                image,
                camera=camera,
                exposure=exposure,
                compress=compress,
                offsets=offsets,
                counts=counts,
                description=description,
                xmp=xmp,
            )
            raw_at = at + ifd0.nbytes()
            exif_at = raw_at + raw.nbytes()
            if exif_at + exif.nbytes() >= 1 << 32:
                raise MedianscanError(f"{path}: the mosaic is too large for a (non-Big)TIFF DNG; stitch it in halves")
            ifd0.set(273, LONG, [image_at])
            ifd0.set(330, LONG, [raw_at])
            ifd0.set(34665, LONG, [exif_at])
            fh.write(ifd0.pack(at))
            fh.write(raw.pack(raw_at))
            fh.write(exif.pack(exif_at))
            fh.seek(4)
            fh.write(struct.pack("<I", at))
        if metadata_from is not None:
            carry_exif(tmp, metadata_from)


def _pad(fh: object, at: int) -> int:
    """Word-align the next offset (TIFF wants even offsets)."""
    if at & 1:
        fh.write(b"\x00")  # type: ignore[attr-defined]
        return 1
    return 0


def _tiles(band: npt.NDArray[np.uint16], compress: bool, bits: int) -> list[bytes | memoryview]:
    """The band's segments: its row of 256x256 lossless JPEG tiles, left to right (edge tiles padded), or, not
    compressed, the band as one strip (uncompressed tiles would be padded past the image, which validators flag),
    its own memory as bytes (no copy of the band: 300 MB of copying for a 15,005 x 10,003 output)."""
    if compress:
        return list(dng.lossless_jpeg_tiles(band, bits))
    return [np.ascontiguousarray(band, dtype="<u2").data.cast("B")]


def _small_layout(layout: MosaicLayout, shape: tuple[int, ...], stride: int) -> MosaicLayout:
    """The preview mosaic's layout: whole CFA repeats at a stride keep the pattern; the crop shrinks with it."""
    cx, cy, cw, ch = layout.default_crop
    h, w = shape[0], shape[1]
    crop = (min(cx // stride, w - 1), min(cy // stride, h - 1), 0, 0)
    crop = (crop[0], crop[1], max(1, min(cw // stride, w - crop[0])), max(1, min(ch // stride, h - crop[1])))
    return replace(layout, active_area=(0, 0, h, w), default_crop=crop)


def _ifds(
    layout: MosaicLayout,
    shape: tuple[int, int],
    image: npt.NDArray[np.uint8],
    *,
    camera: CameraInfo,
    exposure: Exposure,
    compress: bool,
    offsets: list[int],
    counts: list[int],
    description: str,
    xmp: bytes | None,
) -> tuple[Ifd, Ifd, Ifd]:
    """IFD0 (the preview, the file's tags), the raw SubIFD (tiled) and the ExifIFD, as outputs.dng makes them."""
    raw = dng.raw_ifd(layout, shape)
    if compress:
        raw.set(259, SHORT, [7])  # Compression: lossless JPEG
        raw.set(322, SHORT, [TILE])  # TileWidth
        raw.set(323, SHORT, [TILE])  # TileLength
        raw.set(324, LONG, offsets)  # TileOffsets
        raw.set(325, LONG, counts)  # TileByteCounts
    else:
        raw.set(259, SHORT, [1])  # Compression: none
        raw.set(273, LONG, offsets)  # StripOffsets: one strip per band
        raw.set(278, LONG, [BAND_ROWS])  # RowsPerStrip
        raw.set(279, LONG, counts)  # StripByteCounts
    exif = dng.exif_ifd(camera, exposure)
    ifd0 = dng.preview_ifd(image.reshape(-1), image.shape[1], image.shape[0])
    dng.file_tags(ifd0, camera, exposure, layout, software=f"medianscan {__version__}", description=description)
    for tag, (type_code, count, value) in layout.extra_tags.items():
        packed = pack_given(tag, int(type_code), int(count), value)
        (raw if tag in dng.RAW_IFD_TAGS else ifd0).set_packed(tag, int(type_code), packed)
    if xmp is not None:
        ifd0.set_packed(700, BYTE, (len(xmp), xmp))  # XMLPacket
    ifd0.set(330, LONG, [0])  # SubIFDs, filled by the caller
    ifd0.set(34665, LONG, [0])  # ExifIFD, filled by the caller
    return ifd0, raw, exif
