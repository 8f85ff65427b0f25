"""Read an output back as a user's software would and hash its pixels: every blend is checked before it is trusted
(and before retention releases its raws).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import rawpy

from medianscan.blend.reading import frames, sniff
from medianscan.errors import StackError
from medianscan.outputs import tiff
from medianscan.records import BlendRecord


def output_digest(path: Path) -> str:
    """sha256 of the pixels a reader gets from `path` (a DNG through LibRaw, hashed in its own buffer)."""
    kind = sniff.sniff(path)
    if kind != "raw":
        try:
            stored = tiff.stored_pixels_sha256(path) if kind == "tiff" else None
        except OSError as exc:
            raise StackError(f"{path}: cannot read the file back ({exc.strerror or exc})") from exc
        return stored or pixels_sha256(frames.read_frame(path).pixels)

    try:
        with rawpy.imread(str(path)) as raw:
            values = raw.raw_image
            return pixels_sha256(values[..., :3] if values.ndim == 3 else values)  # linear RGB comes as 4 planes
    except rawpy.LibRawError as exc:
        raise StackError(f"{path}: the written DNG does not read back ({exc})") from exc


def verify_output(result: BlendRecord) -> None:
    """Check a blend on disk against its sidecar (before raws are deleted or archived)."""
    try:
        record = json.loads(result.sidecar.read_text())
        expected = record["output"]["pixels_sha256"]
    except (OSError, ValueError, KeyError) as exc:
        raise StackError(f"{result.sidecar}: missing or unreadable sidecar ({exc})") from exc
    try:
        digest = output_digest(result.output)
    except StackError as exc:
        raise StackError(f"{result.output}: the blend does not read back ({exc})") from exc
    if digest != expected:
        raise StackError(f"{result.output}: its pixels differ from what was blended (sidecar {result.sidecar.name})")


def pixels_sha256(pixels: npt.NDArray[np.generic]) -> str:
    """sha256 of an image's pixel values (row by row when the rows are padded, so nothing is copied)."""
    digest = hashlib.sha256()
    if pixels.flags.c_contiguous:
        digest.update(pixels.data)
    else:
        for row in pixels:
            digest.update(np.ascontiguousarray(row).data)
    return digest.hexdigest()
