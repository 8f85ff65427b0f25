"""Which downloaded file is the raw frame: by content first, extension second, never by arrival order.

With RAW+JPEG bodies send the two files in vendor order (Sony sends the JPEG first), and some name files oddly
(libgphoto2's virtual camera calls everything .JPG). The content's magic bytes decide; the camera's extension
is kept when it agrees, so a NEF stays .nef.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

Kind = Literal["raw", "jpeg", "other"]

RAW_EXTS = frozenset(
    {"dng", "cr2", "cr3", "crw", "nef", "nrw", "arw", "srf", "sr2", "orf", "rw2", "raf", "pef", "srw", "3fr",
     "iiq", "x3f", "erf", "mef", "mos", "rwl", "kdc", "dcr"}
)
JPEG_EXTS = frozenset({"jpg", "jpeg", "jpe"})
_DNG_VERSION_TAG = 50706


@dataclass(frozen=True)
class FileKind:
    """What a camera file is, and the extension it gets on disk (lower case, no dot)."""

    kind: Kind
    ext: str


def _ext(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def _tiff_has_tag(head: bytes, tag: int) -> bool:
    """True when IFD0 of the TIFF in `head` carries `tag` (enough to tell a DNG from a plain TIFF)."""
    order = "<" if head[:2] == b"II" else ">"
    try:
        (offset,) = struct.unpack_from(order + "I", head, 4)
        (count,) = struct.unpack_from(order + "H", head, offset)
        for i in range(count):
            (entry_tag,) = struct.unpack_from(order + "H", head, offset + 2 + 12 * i)
            if entry_tag == tag:
                return True
    except struct.error:
        return False
    return False


# (offset, magic bytes, extension) of raw containers that are not plain TIFF
_RAW_MAGIC = (
    (4, b"ftypcrx ", "cr3"),
    (0, b"FUJIFILMCCD-RAW", "raf"),
    (0, b"IIRO", "orf"),
    (0, b"IIRS", "orf"),
    (0, b"MMOR", "orf"),
    (0, b"IIU\x00", "rw2"),
    (0, b"FOVb", "x3f"),
    (6, b"HEAPCCDR", "crw"),
)


def _tiff_kind(ext: str, head: bytes) -> FileKind:
    """A TIFF-based file: most raws (NEF, CR2, ARW, DNG...) or a plain TIFF."""
    if ext in RAW_EXTS:
        return FileKind("raw", ext)
    if head[8:10] == b"CR":
        return FileKind("raw", "cr2")
    if _tiff_has_tag(head, _DNG_VERSION_TAG):
        return FileKind("raw", "dng")
    return FileKind("other", "tif")


def classify(name: str, head: bytes) -> FileKind:
    """Kind and on-disk extension of camera file `name` whose first bytes are `head` (64 KiB is plenty)."""
    ext = _ext(name)
    if head[:3] == b"\xff\xd8\xff":
        return FileKind("jpeg", ext if ext in JPEG_EXTS else "jpg")
    for offset, magic, raw_ext in _RAW_MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return FileKind("raw", raw_ext)
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff_kind(ext, head)
    if ext in RAW_EXTS:  # an unknown raw container: trust the camera's name
        return FileKind("raw", ext)
    return FileKind("other", ext or "bin")


def frame_name(stem: str, index: int, total: int, ext: str) -> str:
    """`<stem>_<NN>.<ext>`, NN from 01 (three digits for bursts of 100 or more)."""
    width = max(2, len(str(total)))
    return f"{stem}_{index:0{width}d}.{ext}"


def choose(kinds: list[FileKind], keep_jpeg: bool) -> tuple[int, list[int]]:
    """Of one shot's files: the index of the frame (the first raw, else the first file) and of the JPEGs kept."""
    raws = [i for i, k in enumerate(kinds) if k.kind == "raw"]
    frame = raws[0] if raws else 0
    kept = [i for i, k in enumerate(kinds) if i != frame and k.kind == "jpeg" and keep_jpeg]
    return frame, kept
