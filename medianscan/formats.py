"""The file formats medianscan knows by name and by content: one table of extensions and magic bytes.

Both the camera's download (which file of a shot is the raw) and the stack reader (is this file a frame) ask
here, so a container recognised in one place is recognised in the other.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

FrameKind = Literal["raw", "tiff", "jpeg"]  # what a frame of a stack can be, in order of preference


@dataclass(frozen=True)
class Sniffed:
    """What a file that could be a frame holds: its kind, or why it cannot be read as one."""

    kind: FrameKind | None
    problem: str | None = None  # set when kind is None: one phrase, e.g. "empty file (0 bytes)"


RAW_EXTS = frozenset(
    {
        *("dng", "cr2", "cr3", "crw", "nef", "nrw", "arw", "srf", "sr2", "orf", "rw2", "raf", "pef", "srw"),
        *("3fr", "iiq", "x3f", "erf", "mef", "mos", "rwl", "kdc", "dcr", "mrw", "raw", "rwz", "fff", "gpr"),
    }
)
JPEG_EXTS = frozenset({"jpg", "jpeg", "jpe"})
TIFF_EXTS = frozenset({"tif", "tiff"})

TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF, either byte order
JPEG_MAGIC = b"\xff\xd8\xff"
DNG_VERSION_TAG = 50706

# (offset, magic bytes, extension) of raw containers that are not TIFF-structured. Anything else LibRaw opens is
# a raw too; this table spares a LibRaw call and names the extension a download gets.
RAW_CONTAINERS = (
    (4, b"ftypcrx ", "cr3"),
    (0, b"FUJIFILMCCD-RAW", "raf"),
    (0, b"FUJIFILM", "raf"),
    (0, b"IIRO", "orf"),
    (0, b"IIRS", "orf"),
    (0, b"MMOR", "orf"),
    (0, b"IIU\x00", "rw2"),
    (0, b"FOVb", "x3f"),
    (0, b"\x00MRM", "mrw"),
    (6, b"HEAPCCDR", "crw"),
)


def extension(name: str) -> str:
    """The extension of a file name, lower case, without the dot ('' when there is none)."""
    return name.rsplit(".", 1)[-1].lower() if "." in name.lstrip(".") else ""


def kind_by_name(name: str) -> FrameKind | None:
    """The kind of frame a file's extension promises, or None for a name that promises none."""
    ext = extension(name)
    if ext in RAW_EXTS:
        return "raw"
    if ext in JPEG_EXTS:
        return "jpeg"
    if ext in TIFF_EXTS:
        return "tiff"
    return None


def raw_container(head: bytes) -> str | None:
    """The extension of the non-TIFF raw container whose first bytes are `head`, or None."""
    for offset, magic, ext in RAW_CONTAINERS:
        if head[offset : offset + len(magic)] == magic:
            return ext
    return None


def is_tiff(head: bytes) -> bool:
    return head[:4] in TIFF_MAGIC


def is_jpeg(head: bytes) -> bool:
    return head.startswith(JPEG_MAGIC)


def is_dng(head: bytes) -> bool:
    """True when `head` (a file's first bytes; 64 KiB is plenty) is a TIFF whose IFD0 carries DNGVersion."""
    if not is_tiff(head):
        return False
    order = "<" if head[:2] == b"II" else ">"
    try:
        (offset,) = struct.unpack_from(order + "I", head, 4)
        (count,) = struct.unpack_from(order + "H", head, offset)
        return any(
            struct.unpack_from(order + "H", head, offset + 2 + 12 * i)[0] == DNG_VERSION_TAG for i in range(count)
        )
    except struct.error:
        return False
