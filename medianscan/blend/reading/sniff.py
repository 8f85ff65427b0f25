"""What a file holds, by its content, checked against what its name promises: the frame kinds medianscan blends,
or the reason a file that could be a frame cannot be read (empty, cut short, another format, refused by LibRaw).
"""

from __future__ import annotations

import logging
from pathlib import Path

import rawpy
import tifffile

from medianscan.blend.reading.dng_jxl import jpeg_xl_dng
from medianscan.formats import DNG_VERSION_TAG, FrameKind, Sniffed, is_jpeg, is_tiff, kind_by_name, raw_container

logging.getLogger("tifffile").setLevel(logging.CRITICAL)  # it logs damage as errors; we name it in one sentence


def sniff(path: Path) -> FrameKind | None:
    """What kind of image `path` holds, by its content; None for anything we do not blend."""
    return inspect(path).kind


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


def _content_kind(path: Path, head: bytes) -> tuple[FrameKind, str | None] | None:
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


def _tiff_structured_kind(path: Path) -> tuple[FrameKind, str | None]:
    """A camera raw is usually TIFF-structured (CR2, NEF, ARW, DNG, PEF...): LibRaw decides between raw and
    TIFF, after the structure is checked whole."""
    cut = _cut_short(path)
    refused = _libraw_refuses(path)
    jxl = jpeg_xl_dng(path)  # LibRaw opens some (it reads their header) and fails only at decoding them
    if jxl is not None:  # a DNG 1.7 LibRaw cannot decode: blended through tifffile, or named for what it is
        return "raw", cut or (None if jxl.decodable else jxl.problem)
    kind: FrameKind = "raw" if refused is None and not _plain_greyscale_tiff(path) else "tiff"
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
        return libraw_reason(exc)
    finally:
        raw.close()
    return None


def libraw_reason(exc: Exception) -> str:
    reason = exc.args[0] if exc.args else exc
    return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)


def _cut_short(path: Path) -> str | None:
    """Why a TIFF-structured file is truncated (an image's data runs past its end), or None if it is whole.

    Every IFD and SubIFD (where DNGs keep the raw) is checked: LibRaw fills a cut-off raw with zeros without a
    word for some containers, and a half frame would blend as a plausible, wrong picture."""

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

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            if page.photometric not in (0, 1) or page.samplesperpixel != 1 or DNG_VERSION_TAG in page.tags:
                return False
    except Exception:  # tifffile raises many types for damaged files; then LibRaw's reading stands
        return False
    try:
        with rawpy.RawPy() as raw:
            raw.open_file(str(path))
            return not raw.rgb_xyz_matrix.any()
    except rawpy.LibRawError:
        return False
