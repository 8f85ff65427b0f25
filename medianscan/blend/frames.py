"""Read one frame of a stack, whatever its format, into pixels plus the metadata the checks and writers need.

File types are recognised by content, never by name: camera raws through LibRaw (rawpy), 16-bit or 8-bit
TIFFs through tifffile, JPEGs through imagecodecs, metadata of all of them through exiv2. Each file is read
from disk once: its bytes are hashed and decoded from the same buffer.
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import exiv2
import numpy as np
import numpy.typing as npt
import rawpy

from medianscan import diskio
from medianscan.atomic import atomic_path
from medianscan.errors import StackError
from medianscan.formats import FrameKind, is_jpeg, is_tiff, kind_by_name, raw_container
from medianscan.metadata import CameraInfo, Exposure, MosaicLayout

Kind = FrameKind

exiv2.LogMsg.setLevel(exiv2.LogMsg.Level.mute)

# LibRaw's flip (sizes.flip) -> EXIF Orientation, mirrored flips included.
_FLIP_TO_ORIENTATION = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}

# DNG colour tags (IFD0) carried over from a DNG source so the blend develops exactly like it.
# fmt: off
_DNG_COLOUR_TAGS = (
    50721, 50722,  # ColorMatrix1/2
    50723, 50724,  # CameraCalibration1/2
    50727,  # AnalogBalance
    50730,  # BaselineExposure
    50778, 50779,  # CalibrationIlluminant1/2
    50932,  # ProfileCalibrationSignature
    50936,  # ProfileName
    50937, 50938, 50939,  # ProfileHueSatMapDims, ProfileHueSatMapData1/2
    50940,  # ProfileToneCurve
    50941,  # ProfileEmbedPolicy
    50942,  # ProfileCopyright
    50964, 50965,  # ForwardMatrix1/2
    50981, 50982,  # ProfileLookTableDims/Data
)
# Opcode lists live with the raw data, in the CFA SubIFD.
_DNG_RAW_TAGS = (51008, 51009, 51022)  # OpcodeList1/2/3
# fmt: on


@dataclass(frozen=True)
class Frame:
    """One decoded frame: pixels, what it is, and what the file says about how it was taken."""

    path: Path
    kind: Kind
    pixels: npt.NDArray[np.generic]  # raw: full sensor array (H, W); tiff/jpeg: (H, W) or (H, W, C)
    camera: CameraInfo
    exposure: Exposure
    sha256: str
    layout: MosaicLayout | None = None  # raws only
    orientation: int = 1


def sniff(path: Path) -> Kind | None:
    """What kind of image `path` holds, by its content; None for anything we do not blend."""
    return inspect(path).kind


@dataclass(frozen=True)
class Sniffed:
    """What a file that could be a frame holds: its kind, or why it cannot be read as one."""

    kind: Kind | None
    problem: str | None = None  # set when kind is None: one phrase, e.g. "empty file (0 bytes)"


_KIND_NAMES = {"raw": "a camera raw", "tiff": "a TIFF", "jpeg": "a JPEG"}


def inspect(path: Path) -> Sniffed:
    """The kind of frame `path` holds, by content, checked against what its name promises.

    Only the header is read (about a millisecond), but that is enough to catch what a failed download or copy
    leaves: an empty file, a TIFF-structured file (CR2, NEF, DNG, ...) cut short before its image data ends, a
    file whose content is not the format its extension says, or a raw LibRaw does not know.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        return Sniffed(None, f"cannot read the file ({exc.strerror or exc})")
    if size == 0:
        return Sniffed(None, "empty file (0 bytes): a download or copy that never arrived")
    promised = kind_by_name(path.name)
    found = _content_kind(path, head)
    if found is None:
        what = _KIND_NAMES[promised] if promised else "a camera raw, TIFF or JPEG"
        return Sniffed(None, f"not {what}: its content is no image format medianscan reads")
    kind, problem = found
    if problem is not None:
        return Sniffed(None, problem)
    if promised is not None and promised != kind and not (promised == "tiff" and kind == "raw"):
        return Sniffed(None, f"named as {_KIND_NAMES[promised]} but holds {_KIND_NAMES[kind]}")
    return Sniffed(kind)


def _content_kind(path: Path, head: bytes) -> tuple[Kind, str | None] | None:
    """The kind the first bytes (and, for TIFF structures, LibRaw and tifffile) say; with a problem when the
    file is damaged; None when it is no image we read."""
    if is_jpeg(head):
        return "jpeg", None
    if is_tiff(head):
        return _tiff_structured_kind(path)
    refused = _libraw_refuses(path)
    if raw_container(head) or (head[4:8] == b"ftyp" and head[8:11] == b"crx"):
        return "raw", None if refused is None else f"unreadable raw (LibRaw: {refused})"
    return None if refused is not None else ("raw", None)


def _tiff_structured_kind(path: Path) -> tuple[Kind, str | None]:
    """A camera raw is usually TIFF-structured (CR2, NEF, ARW, DNG, PEF...): LibRaw decides between raw and
    TIFF, after the structure is checked whole."""
    cut = _cut_short(path)
    refused = _libraw_refuses(path)
    kind: Kind = "raw" if refused is None and not _plain_greyscale_tiff(path) else "tiff"
    if cut is not None:
        return kind, cut
    if refused is not None and kind_by_name(path.name) == "raw":
        return "raw", f"unreadable raw (LibRaw: {refused})"
    return kind, None


def _libraw_refuses(path: Path) -> str | None:
    """LibRaw's reason for not opening the file as a raw (parses the header only), or None if it opens."""
    raw = rawpy.RawPy()
    try:
        raw.open_file(str(path))
    except rawpy.LibRawError as exc:
        return _libraw_reason(exc)
    finally:
        raw.close()
    return None


def _libraw_reason(exc: Exception) -> str:
    reason = exc.args[0] if exc.args else exc
    return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)


def _cut_short(path: Path) -> str | None:
    """Why a TIFF-structured file is truncated (an image's data runs past its end), or None if it is whole.

    Every IFD and SubIFD (where DNGs keep the raw) is checked: LibRaw fills a cut-off raw with zeros without a
    word for some containers, and a half frame would blend as a plausible, wrong picture."""
    import tifffile

    size = path.stat().st_size
    try:
        with tifffile.TiffFile(path) as tif:
            todo = list(tif.pages)
            while todo:
                page = todo.pop()
                if not isinstance(page, tifffile.TiffPage):
                    continue
                ends = [o + n for o, n in zip(page.dataoffsets, page.databytecounts, strict=False) if n]
                if ends and max(ends) > size:
                    end = max(ends)
                    return f"unreadable or truncated: its image data ends at byte {end}, but the file has {size} bytes"
                todo.extend(page.pages or [])
    except Exception as exc:  # tifffile raises many types for damaged files
        return f"damaged TIFF structure ({exc})"
    return None


def _plain_greyscale_tiff(path: Path) -> bool:
    """A one-channel image TIFF of no camera (a black-and-white scan, say), which LibRaw also opens, as the
    mosaic of an unknown camera. Blended as a raw it would come out as a colour DNG of a greyscale picture.

    The TIFF structure is checked first (MinIsBlack/MinIsWhite, one sample, not a DNG: about a millisecond, and
    false for CR2, NEF, ARW and the like); only then LibRaw's colour matrix, which costs it a full unpack: a raw
    that stores its mosaic that way (Leaf, some Kodak backs) has a camera LibRaw knows.
    """
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            if page.photometric not in (0, 1) or page.samplesperpixel != 1 or 50706 in page.tags:  # DNGVersion
                return False
    except Exception:  # tifffile raises many types for damaged files; then LibRaw's reading stands
        return False
    try:
        with rawpy.RawPy() as raw:
            raw.open_file(str(path))
            return not raw.rgb_xyz_matrix.any()
    except rawpy.LibRawError:
        return False


def probe(path: Path, kind: Kind) -> tuple[tuple[int, ...], np.dtype[np.generic]] | None:
    """Pixel array shape and dtype from the header alone (to preallocate a stack), or None if unknown."""
    try:
        if kind == "raw":
            with rawpy.RawPy() as raw:
                raw.open_file(str(path))
                return (int(raw.sizes.raw_height), int(raw.sizes.raw_width)), np.dtype(np.uint16)
        if kind == "tiff":
            import tifffile

            with tifffile.TiffFile(path) as tif:
                page = tif.pages[0]
                return tuple(page.shape), np.dtype(page.dtype)
    except (rawpy.LibRawError, OSError, ValueError):
        return None
    return None  # JPEG: decoding is the only reliable way


def read_frame(path: Path, kind: Kind | None = None, out: npt.NDArray[np.generic] | None = None) -> Frame:
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
        camera, exposure, orientation = read_metadata(path)
        if kind == "raw":
            digest = _sha256(path)
            pixels, layout = _decode_raw(path, out)
            return Frame(path, kind, pixels, camera, exposure, digest, layout, layout.orientation)
        mapped = _map_tiff(path) if kind == "tiff" and out is None else None
        if mapped is not None:
            digest, decoded = mapped
        else:
            digest = _sha256(path)
            decoded = _decode_tiff(path, out) if kind == "tiff" else _decode_jpeg(path, path.read_bytes())
    except OSError as exc:
        raise StackError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    if out is not None and out.shape == decoded.shape and out.dtype == decoded.dtype and decoded is not out:
        out[...] = decoded
        decoded = out
    return Frame(path, kind, decoded, camera, exposure, digest, None, orientation)


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


def file_sha256(path: Path) -> str | None:
    """sha256 of a file's bytes, or None when it cannot be read (it is named with its reason elsewhere)."""
    try:
        return _sha256(path)
    except OSError:
        return None


def _sha256(path: Path) -> str:
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
            if raw.raw_type != rawpy.RawType.Flat or raw.raw_pattern is None:
                raise StackError(
                    f"{path}: this raw is not a colour-filter mosaic (linear DNG, sRAW or Foveon), which "
                    "medianscan does not blend; export 16-bit TIFFs and blend those instead"
                )
            mosaic = raw.raw_image
            if out is not None and out.shape == mosaic.shape and out.dtype == mosaic.dtype:
                out[...] = mosaic
                pixels = out
            else:
                pixels = np.array(mosaic, dtype=np.uint16, copy=True)
            layout = layout_from_rawpy(raw)
    except rawpy.LibRawError as exc:
        raise StackError(f"{path}: unreadable or truncated raw (LibRaw: {_libraw_reason(exc)})") from exc
    with path.open("rb") as fh:
        tiff_structured = is_tiff(fh.read(4))
    if tiff_structured:
        layout = _with_dng_colour_tags(layout, path)
    return pixels, _with_dng_matrix(layout)  # type: ignore[return-value]


def _with_dng_matrix(layout: MosaicLayout) -> MosaicLayout:
    """LibRaw knows no matrix for a body missing from its tables; a DNG of such a body still carries its own
    ColorMatrix1, which is the one to use."""
    if np.any(layout.color_matrix) or 50721 not in layout.extra_tags:
        return layout
    _, count, value = layout.extra_tags[50721]
    numbers = np.asarray(value, dtype=np.float64).ravel()
    if count != 9 or numbers.size not in (9, 18):
        return layout
    matrix = numbers if numbers.size == 9 else numbers[0::2] / numbers[1::2]
    from dataclasses import replace

    return replace(layout, color_matrix=matrix.reshape(3, 3))


def layout_from_rawpy(raw: rawpy.RawPy) -> MosaicLayout:
    """The CFA layout, levels, areas and colour of an unpacked rawpy object, as a DNG writer needs them."""
    sizes = raw.sizes
    pattern = np.asarray(raw.raw_pattern, dtype=np.uint8)
    colors = raw.color_desc.decode()
    n_colors = len(colors)
    black = tuple(int(b) for b in raw.black_level_per_channel[:n_colors])
    per_channel_white = raw.camera_white_level_per_channel
    white = int(max(per_channel_white)) if per_channel_white else int(raw.white_level)
    top, left = int(sizes.top_margin), int(sizes.left_margin)
    active = (top, left, top + int(sizes.height), left + int(sizes.width))
    crop = _default_crop(sizes, active)
    matrix = np.asarray(raw.rgb_xyz_matrix, dtype=np.float64)[:3, :3]
    wb = [float(v) for v in raw.camera_whitebalance[:3]]
    if min(wb) <= 0:
        wb = [float(v) for v in raw.daylight_whitebalance[:3]]
    if min(wb) <= 0:
        wb = [1.0, 1.0, 1.0]
    neutral = (wb[1] / wb[0], 1.0, wb[1] / wb[2])
    return MosaicLayout(
        pattern=pattern,
        colors=colors,
        black_levels=black,
        white_level=white,
        active_area=active,
        default_crop=crop,
        color_matrix=matrix,
        as_shot_neutral=neutral,
        orientation=_FLIP_TO_ORIENTATION.get(int(sizes.flip), 1),
    )


def _default_crop(sizes: rawpy.ImageSizes, active: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """LibRaw's camera crop (when it knows one) relative to the active area, else the whole active area."""
    top, left, bottom, right = active
    width, height = right - left, bottom - top
    cx, cy = int(sizes.crop_left_margin) - left, int(sizes.crop_top_margin) - top
    cw, ch = int(sizes.crop_width), int(sizes.crop_height)
    if cw > 0 and ch > 0 and cx >= 0 and cy >= 0 and cx + cw <= width and cy + ch <= height:
        return (cx, cy, cw, ch)
    return (0, 0, width, height)


def _with_dng_colour_tags(layout: MosaicLayout, path: Path) -> MosaicLayout:
    """Carry a DNG source's colour tags (profiles, forward matrices) and opcode lists over to the blend."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            ifd0 = tif.pages.first
            if 50706 not in ifd0.tags:  # DNGVersion: not a DNG
                return layout
            found: list[tuple[Any, tuple[int, ...]]] = [(ifd0.tags, _DNG_COLOUR_TAGS)]
            raw_ifds = [p for p in [ifd0, *(ifd0.pages or [])] if p.tags.valueof(254, 0) == 0]
            if raw_ifds:
                found.append((raw_ifds[0].tags, _DNG_RAW_TAGS))
            extra = {
                code: (tags[code].dtype, tags[code].count, tags[code].value)
                for tags, codes in found
                for code in codes
                if code in tags
            }
    except (tifffile.TiffFileError, ValueError, OSError):
        return layout
    from dataclasses import replace

    return replace(layout, extra_tags=extra)


def _decode_tiff(path: Path, out: npt.NDArray[np.generic] | None) -> npt.NDArray[np.generic]:
    """The first image of a TIFF, decoded straight into `out` when it fits (no intermediate copy)."""
    import tifffile

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
    import imagecodecs

    try:
        pixels = imagecodecs.jpeg8_decode(data)
    except Exception as exc:  # imagecodecs raises its own error types per codec
        raise StackError(f"{path}: unreadable or truncated JPEG ({exc})") from exc
    return np.ascontiguousarray(pixels)


def read_metadata(data: bytes | Path) -> tuple[CameraInfo, Exposure, int]:
    """Camera, exposure and EXIF orientation from a file's metadata (any format exiv2 knows)."""
    try:
        image = exiv2.ImageFactory.open(data if isinstance(data, bytes) else str(data))
        image.readMetadata()
    except exiv2.Exiv2Error:
        return CameraInfo(), Exposure(), 1
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
    return camera, exposure, orientation if 1 <= orientation <= 8 else 1


def write_tiff(path: Path, image: npt.NDArray[np.generic], *, compress: bool = False, description: str = "") -> None:
    """An 8- or 16-bit TIFF (grey or RGB) written atomically; `compress` = deflate with a predictor, which
    every TIFF reader opens (uncompressed is several times faster to write, and goes straight to the disk)."""
    import tifffile

    if not compress:
        written = write_tiff_rows(path, image.shape, image.dtype, [image], description=description)
        if written.stored_sha256 != written.sha256:  # the read-back the direct write makes anyway
            path.unlink(missing_ok=True)
            raise OSError(errno.EIO, f"{path.name} reads back different pixels; it was removed")
        return
    with atomic_path(path) as tmp:
        tifffile.imwrite(
            tmp,
            image,
            photometric=_photometric(image.shape),
            compression="adobe_deflate",
            compressionargs={"level": 1},
            predictor=True,
            description=description or None,
            metadata=None,
        )


def write_tiff_rows(
    path: Path,
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
    bands: Iterable[npt.NDArray[np.generic]],
    *,
    description: str = "",
) -> diskio.Written:
    """An uncompressed TIFF of `shape` whose pixels arrive as bands of whole rows, top to bottom (a blend as it
    is combined), written atomically; returns the sha256 of the pixels given and of the pixels read back from the
    disk.

    tifffile lays the file out with the pixel block at an aligned offset; `diskio` streams the bands into it
    straight to the disk."""
    import tifffile

    with atomic_path(path) as tmp:
        placed = tifffile.imwrite(
            tmp,
            shape=shape,
            dtype=dtype,
            photometric=_photometric(shape),
            description=description or None,
            metadata=None,
            align=diskio.ALIGN,
            returnoffset=True,
        )
        assert placed is not None  # uncompressed data always has one place
        return diskio.write_stream(tmp, placed[0], bands)


def _photometric(shape: tuple[int, ...]) -> str:
    return "rgb" if len(shape) == 3 and shape[2] in (3, 4) else "minisblack"


@dataclass(frozen=True)
class PixelBlock:
    """Where an uncompressed TIFF keeps its first image, stored as `read_frame` returns it (contiguous, this
    machine's byte order): the file's bytes there are the pixels."""

    offset: int
    size: int
    shape: tuple[int, ...]
    dtype: np.dtype[Any]


def pixel_block(path: Path) -> PixelBlock | None:
    """The first image's PixelBlock as tifffile reads the file; None for any other storage (compressed, tiled,
    Motorola byte order...) or an unreadable file."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            native = (tif.byteorder == "<" and sys.byteorder == "little") or page.dtype == np.uint8
            if not (native and page.is_final and page.dtype in (np.uint8, np.uint16)):
                return None
            return PixelBlock(page.dataoffsets[0], page.nbytes, tuple(page.shape), np.dtype(page.dtype))
    except Exception:  # tifffile raises many types for damaged files; the decoder reports them
        return None


def stored_pixels_sha256(path: Path) -> str | None:
    """sha256 of an uncompressed TIFF's pixels (as `read_frame` would return them) read from the disk itself;
    None for any other file, which is decoded instead."""
    block = pixel_block(path)
    return None if block is None else diskio.sha256_at(path, block.offset, block.size)


def write_jpeg(path: Path, image: npt.NDArray[np.generic], *, exif_from: Path | None = None) -> None:
    """A quality-95 JPEG written atomically, carrying the EXIF of `exif_from` (the first frame) if given."""
    import imagecodecs

    with atomic_path(path) as tmp:
        tmp.write_bytes(bytes(imagecodecs.jpeg8_encode(image, level=95)))
        if exif_from is not None:
            try:
                src = exiv2.ImageFactory.open(str(exif_from))
                src.readMetadata()
                dst = exiv2.ImageFactory.open(str(tmp))
                dst.readMetadata()
                dst.setExifData(src.exifData())
                dst.writeMetadata()
            except exiv2.Exiv2Error:
                pass  # the pixels matter; EXIF is a courtesy


def develop_linear(dng: Path) -> npt.NDArray[np.uint16]:
    """A 16-bit linear RGB rendering of a raw (camera white balance, no gamma, no auto-brightening)."""
    with rawpy.imread(str(dng)) as raw:
        rgb = raw.postprocess(gamma=(1, 1), no_auto_bright=True, output_bps=16, use_camera_wb=True, user_flip=0)
    return np.asarray(rgb, dtype=np.uint16)
