"""Where an uncompressed TIFF keeps its pixels: what the frame reader maps straight from the disk, the TIFF writer
streams into and the verifier hashes in place.

Both the reading side (`blend.reading.frames`) and the writers (`outputs.tiff`) need it, so it lives below both:
the frame reader no longer reaches up into the writers.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile


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

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            native = (tif.byteorder == "<" and sys.byteorder == "little") or page.dtype == np.uint8
            if not (native and page.is_final and page.dtype in (np.uint8, np.uint16)):
                return None
            return PixelBlock(page.dataoffsets[0], page.nbytes, tuple(page.shape), np.dtype(page.dtype))
    except Exception:  # tifffile raises many types for damaged files; the decoder reports them
        return None
