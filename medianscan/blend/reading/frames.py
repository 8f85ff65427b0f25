"""Read one frame of a stack, whatever its format, into pixels plus the metadata the checks and writers need.

Camera raws through LibRaw (rawpy), 16-bit or 8-bit TIFFs through tifffile, JPEGs through imagecodecs,
metadata of all of them through exiv2. Each file is read from disk once: its bytes are hashed and decoded from
the same buffer (or, for uncompressed TIFFs, mapped and hashed from the same mapping). A raw's layout and colour
(what the DNG writer needs of it) are read by raw_layout.
"""

from __future__ import annotations

import hashlib
import mmap
from dataclasses import dataclass, field
from pathlib import Path

import imagecodecs
import numpy as np
import numpy.typing as npt
import rawpy
import tifffile

from medianscan.blend.reading import dng_jxl
from medianscan.blend.reading.raw_layout import layout_from_rawpy, with_source_colour
from medianscan.blend.reading.sniff import inspect, libraw_reason
from medianscan.errors import StackError
from medianscan.exiv2_once import Exiv2Error, exiv2, read_image
from medianscan.formats import FrameKind, is_dng
from medianscan.metadata import CameraInfo, Exposure, MosaicLayout
from medianscan.pixel_block import pixel_block
from medianscan.wording import counted


@dataclass(frozen=True)
class Frame:
    """One decoded frame: pixels, what it is, and what the file says about how it was taken."""

    path: Path
    kind: FrameKind
    pixels: npt.NDArray[np.generic]  # raw: full sensor array (H, W); tiff/jpeg: (H, W) or (H, W, C)
    camera: CameraInfo
    exposure: Exposure
    sha256: str
    layout: MosaicLayout | None = None  # raws only
    orientation: int = 1
    icc: bytes | None = None  # the embedded ICC colour profile (TIFFs and JPEGs have them; a blend carries it)


def is_dng_file(path: Path) -> bool:
    """True for a DNG (every editor reads its levels from its own tags); False for other files or unreadable."""
    try:
        with path.open("rb") as fh:
            return is_dng(fh.read(1 << 16))
    except OSError:
        return False


def probe(path: Path, kind: FrameKind) -> tuple[tuple[int, ...], np.dtype[np.generic]] | None:
    """Pixel array shape and dtype from the header alone (to preallocate a stack), or None if unknown."""
    try:
        if kind == "raw":
            with rawpy.RawPy() as raw:  # raw_type would unpack the whole raw (60-80 ms): the header is enough
                raw.open_file(str(path))
                shape = (int(raw.sizes.raw_height), int(raw.sizes.raw_width))
            return (*shape, 3) if _linear_dng(path) else shape, np.dtype(np.uint16)
        if kind == "tiff":
            with tifffile.TiffFile(path) as tif:
                page = tif.pages[0]
                return tuple(page.shape), np.dtype(page.dtype)
    except (rawpy.LibRawError, OSError, ValueError):
        return None
    return None  # JPEG: decoding is the only reliable way


def _linear_dng(path: Path) -> bool:
    """A DNG whose full-size image is linear (demosaiced) RGB, from its tags. Another raw LibRaw unpacks as RGB (an
    sRAW) is taken for a mosaic here: its frames then keep arrays of their own (see read_frame)."""
    if not is_dng_file(path):
        return False
    with tifffile.TiffFile(path) as tif:
        first = tif.pages[0]
        assert isinstance(first, tifffile.TiffPage)
        for page in (first, *(first.pages or ())):
            if isinstance(page, tifffile.TiffPage) and page.tags.valueof(254, 0) == 0:
                return bool(page.photometric == tifffile.PHOTOMETRIC.LINEAR_RAW)
    return False


def read_frame(path: Path, kind: FrameKind | None = None, out: npt.NDArray[np.generic] | None = None) -> Frame:
    """Read and decode one frame; any problem becomes a StackError naming the file and the reason.

    With `out` (a slot of a preallocated stack) the pixels are decoded into it when shape and dtype match,
    so a stack costs one buffer and no copies; otherwise the frame keeps its own array (and the size check
    will name it).
    """
    path = Path(path)
    if kind is None:
        sniffed = inspect(path)
        if sniffed.kind is None:
            raise StackError(f"{path}: {sniffed.problem}")
        kind = sniffed.kind
    try:
        meta = read_metadata(path)
        if kind == "raw":
            digest = sha256_file(path)
            pixels, layout = _decode_raw(path, out)
            return Frame(path, kind, pixels, meta.camera, meta.exposure, digest, layout, layout.orientation)
        mapped = _map_tiff(path) if kind == "tiff" and out is None else None
        if mapped is not None:
            digest, decoded = mapped
        else:
            digest = sha256_file(path)
            decoded = _decode_tiff(path, out) if kind == "tiff" else _decode_jpeg(path, path.read_bytes())
    except OSError as exc:
        raise StackError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    if out is not None and out.shape == decoded.shape and out.dtype == decoded.dtype and decoded is not out:
        out[...] = decoded
        decoded = out
    return Frame(path, kind, decoded, meta.camera, meta.exposure, digest, None, meta.orientation, meta.icc)


def _map_tiff(path: Path) -> tuple[str, npt.NDArray[np.generic]] | None:
    """An uncompressed 8/16-bit TIFF as a read-only view of the page cache, and the sha256 of the file hashed
    from the same mapping: a stack of them costs no memory of its own, and the pages are mapped in one go
    (MAP_POPULATE) rather than faulted in one by one. None when the image is not stored that simply (Motorola
    byte order, Photoshop's "Macintosh", is decoded, which swaps it)."""
    block = pixel_block(path)
    if block is None or block.offset % block.dtype.itemsize:
        return None
    with path.open("rb") as fh:
        mapping = mmap.mmap(
            fh.fileno(), 0, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0), prot=mmap.PROT_READ
        )
    if block.offset + block.size > len(mapping):
        return None  # truncated: the decoder names the problem
    digest = hashlib.sha256(mapping).hexdigest()
    count = block.size // block.dtype.itemsize
    return digest, np.frombuffer(mapping, dtype=block.dtype, count=count, offset=block.offset).reshape(block.shape)


def sha256_if_readable(path: Path) -> str | None:
    """sha256 of a file's bytes, or None when it cannot be read (it is named with its reason elsewhere)."""
    try:
        return sha256_file(path)
    except OSError:
        return None


def sha256_file(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB chunks (OSError when it cannot be read)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _decode_raw(path: Path, out: npt.NDArray[np.generic] | None) -> tuple[npt.NDArray[np.uint16], MosaicLayout]:
    try:
        with rawpy.RawPy() as raw:
            raw.open_file(str(path))
            raw.unpack()
            mosaic = _sensor_values(path, raw)
            if out is not None and out.shape == mosaic.shape and out.dtype == mosaic.dtype:
                out[...] = mosaic
                pixels = out
            else:
                pixels = np.array(mosaic, dtype=np.uint16, copy=True)
            layout = layout_from_rawpy(raw)
    except rawpy.LibRawError as exc:
        jxl = dng_jxl.jpeg_xl_dng(path)
        if jxl is None:
            raise StackError(f"{path}: unreadable or truncated raw (LibRaw: {libraw_reason(exc)})") from exc
        if not jxl.decodable:
            raise StackError(f"{path}: {jxl.problem}") from exc
        try:
            pixels, layout = dng_jxl.decode(path, out)
        except Exception as why:  # tifffile and libjxl raise many types for damaged files
            raise StackError(f"{path}: unreadable or truncated DNG compressed with JPEG XL ({why})") from why
    return pixels, with_source_colour(layout, path)  # type: ignore[return-value]


def _sensor_values(path: Path, raw: rawpy.RawPy) -> npt.NDArray[np.uint16]:
    """The raw's values as LibRaw unpacked them: the (H, W) mosaic of a colour-filter sensor, or (H, W, 3) linear
    RGB for a raw without one (a linear DNG, a film scanner's RGB raw, an sRAW). Anything else is named."""
    if raw.raw_type == rawpy.RawType.Flat and raw.raw_pattern is not None:
        return raw.raw_image
    values = raw.raw_image
    if raw.raw_type == rawpy.RawType.Stack and values is not None and values.ndim == 3 and raw.num_colors == 3:
        return values[..., :3]
    raise StackError(
        f"{path}: this raw holds {counted(raw.num_colors, 'colour')} per pixel in a layout medianscan cannot blend "
        "(neither a colour-filter mosaic nor linear RGB); export 16-bit TIFFs and blend those instead"
    )


def camera_preview(path: Path) -> npt.NDArray[np.uint8] | None:
    """The source's own rendering of itself, as 8-bit RGB: the largest preview embedded in a raw (a camera's JPEG,
    or a DNG's preview image); None when it has none that can be read. The blend's preview takes its tone."""
    try:
        with rawpy.imread(str(path)) as raw:
            thumb = raw.extract_thumb()
        if thumb.format == rawpy.ThumbFormat.JPEG:
            rgb = np.asarray(imagecodecs.jpeg8_decode(bytes(thumb.data)))
        else:
            rgb = np.asarray(thumb.data)
    except Exception:  # no preview, or a damaged one: LibRaw and imagecodecs raise many types
        return None
    if rgb.ndim != 3 or rgb.shape[2] < 3 or rgb.dtype != np.uint8 or min(rgb.shape[:2]) < 16:
        return None
    return np.ascontiguousarray(rgb[..., :3])


def _decode_tiff(path: Path, out: npt.NDArray[np.generic] | None) -> npt.NDArray[np.generic]:
    """The first image of a TIFF, decoded straight into `out` when it fits (no intermediate copy)."""

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            fits = out is not None and out.shape == page.shape and out.dtype == page.dtype
            pixels = page.asarray(out=out if fits else None)
    except Exception as exc:  # tifffile raises many types for damaged files
        raise StackError(f"{path}: unreadable or truncated TIFF ({exc})") from exc
    if pixels.dtype not in (np.uint8, np.uint16) or pixels.ndim not in (2, 3):
        raise StackError(
            f"{path}: TIFF of {pixels.dtype} with shape {pixels.shape} is not supported "
            "(expected 8- or 16-bit greyscale or RGB)"
        )
    return np.ascontiguousarray(pixels)


def _decode_jpeg(path: Path, data: bytes) -> npt.NDArray[np.generic]:

    try:
        pixels = imagecodecs.jpeg8_decode(data)
    except Exception as exc:  # imagecodecs raises its own error types per codec
        raise StackError(f"{path}: unreadable or truncated JPEG ({exc})") from exc
    return np.ascontiguousarray(pixels)


@dataclass(frozen=True)
class FileMetadata:
    """What a frame's file says of itself beside its pixels."""

    camera: CameraInfo = field(default_factory=CameraInfo)
    exposure: Exposure = field(default_factory=Exposure)
    orientation: int = 1  # EXIF's, 1-8
    icc: bytes | None = None  # the embedded colour profile


def read_metadata(data: bytes | Path) -> FileMetadata:
    """Camera, exposure, EXIF orientation and colour profile from a file's metadata (any format exiv2 knows)."""
    try:
        image = read_image(data)
    except Exiv2Error:
        return FileMetadata()
    exif = image.exifData()

    def text(*keys: str) -> str:
        for key in keys:
            datum = exif.findKey(exiv2.ExifKey(key))
            if datum != exif.end():
                value = str(datum.toString()).strip().strip("\x00").strip()
                if value:
                    return value
        return ""

    def number(*keys: str) -> float | None:
        for key in keys:
            datum = exif.findKey(exiv2.ExifKey(key))
            if datum != exif.end() and datum.count() > 0:
                value = float(datum.toFloat(0))
                if np.isfinite(value) and value > 0:
                    return value
        return None

    camera = CameraInfo(
        make=text("Exif.Image.Make"),
        model=text("Exif.Image.Model"),
        serial=text(
            "Exif.Photo.BodySerialNumber",
            "Exif.Image.CameraSerialNumber",
            "Exif.Canon.SerialNumber",
            "Exif.Nikon3.SerialNumber",
            "Exif.Fujifilm.SerialNumber",
            "Exif.Sony2.SerialNumber",
            "Exif.OlympusEq.SerialNumber",
            "Exif.Panasonic.InternalSerialNumber",
        ),
        lens=text("Exif.Photo.LensModel", "Exif.Canon.LensModel"),
    )
    exposure = Exposure(
        iso=number("Exif.Photo.ISOSpeedRatings", "Exif.Photo.RecommendedExposureIndex", "Exif.Image.ISOSpeedRatings"),
        exposure_time=number("Exif.Photo.ExposureTime", "Exif.Image.ExposureTime"),
        f_number=number("Exif.Photo.FNumber", "Exif.Image.FNumber"),
        focal_length=number("Exif.Photo.FocalLength", "Exif.Image.FocalLength"),
        taken=text("Exif.Photo.DateTimeOriginal", "Exif.Image.DateTimeOriginal", "Exif.Image.DateTime") or None,
    )
    orientation = int(number("Exif.Image.Orientation") or 1)
    icc = bytes(image.iccProfile().data()) if image.iccProfileDefined() else None
    return FileMetadata(camera, exposure, orientation if 1 <= orientation <= 8 else 1, icc or None)
