"""Which downloaded file is the raw frame: by content first, extension second, never by arrival order.

With RAW+JPEG bodies send the two files in vendor order (Sony sends the JPEG first), and some name files oddly
(libgphoto2's virtual camera calls everything .JPG). The content's magic bytes decide; the camera's extension
is kept when it agrees, so a NEF stays .nef.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from medianscan.formats import JPEG_EXTS, RAW_EXTS, extension, is_dng, is_jpeg, is_tiff, raw_container

ShotFileKind = Literal["raw", "jpeg", "other"]  # what one file of a shot is (a frame of a stack is a FrameKind)

PROBE_STEM = "probe"  # exposure probes (calibrate) are probe-NN_01.<ext>; the simulator shows the film base


@dataclass(frozen=True)
class FileKind:
    """What a camera file is, and the extension it gets on disk (lower case, no dot)."""

    kind: ShotFileKind
    ext: str


def _tiff_kind(ext: str, head: bytes) -> FileKind:
    """A TIFF-based file: most raws (NEF, CR2, ARW, DNG...) or a plain TIFF."""
    if ext in RAW_EXTS:
        return FileKind("raw", ext)
    if head[8:10] == b"CR":
        return FileKind("raw", "cr2")
    if is_dng(head):
        return FileKind("raw", "dng")
    return FileKind("other", "tif")


def classify(name: str, head: bytes) -> FileKind:
    """Kind and on-disk extension of camera file `name` whose first bytes are `head` (64 KiB is plenty)."""
    ext = extension(name)
    if is_jpeg(head):
        return FileKind("jpeg", ext if ext in JPEG_EXTS else "jpg")
    container = raw_container(head)
    if container is not None:
        return FileKind("raw", container)
    if is_tiff(head):
        return _tiff_kind(ext, head)
    if ext in RAW_EXTS:  # an unknown raw container: trust the camera's name
        return FileKind("raw", ext)
    return FileKind("other", ext or "bin")


def frame_name(stem: str, index: int, total: int, ext: str) -> str:
    """`<stem>_<NN>.<ext>`, NN from 01 (three digits for bursts of 100 or more)."""
    width = max(2, len(str(total)))
    return f"{stem}_{index:0{width}d}.{ext}"


def choose(kinds: list[FileKind], keep_jpeg: bool, frame: int | None = None) -> tuple[int, list[int]]:
    """Of one shot's files: the index of the frame (`frame`, else the first raw, else the first file) and of the
    JPEGs kept."""
    raws = [i for i, k in enumerate(kinds) if k.kind == "raw"]
    frame = frame if frame is not None else raws[0] if raws else 0
    kept = [i for i, k in enumerate(kinds) if i != frame and k.kind == "jpeg" and keep_jpeg]
    return frame, kept
