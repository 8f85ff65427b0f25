"""JPEG outputs, carrying the first frame's EXIF and colour profile."""

from __future__ import annotations

from pathlib import Path

import imagecodecs
import numpy as np
import numpy.typing as npt

from medianscan.atomic import atomic_path
from medianscan.exiv2_once import Exiv2Error, exiv2, read_image, write_image


def write_jpeg(
    path: Path, image: npt.NDArray[np.generic], *, exif_from: Path | None = None, icc: bytes | None = None
) -> None:
    """A quality-95 JPEG written atomically, carrying the EXIF of `exif_from` (the first frame) if given and the
    ICC profile of its colour space (without it, a JPEG exported in Adobe RGB would be read as sRGB)."""

    with atomic_path(path) as tmp:
        tmp.write_bytes(bytes(imagecodecs.jpeg8_encode(image, level=95)))
        dst = read_image(tmp)
        if icc is not None:
            dst.setIccProfile(exiv2.DataBuf(icc))
        if exif_from is not None:
            try:
                src = read_image(exif_from)
                dst.setExifData(src.exifData())
            except Exiv2Error:
                pass  # the pixels and their colours matter; EXIF is a courtesy
        write_image(dst)
