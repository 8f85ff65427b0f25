"""JPEG outputs, carrying the first frame's EXIF and colour profile."""

from __future__ import annotations

from pathlib import Path

import exiv2
import imagecodecs
import numpy as np
import numpy.typing as npt

from medianscan.atomic import atomic_path


def write_jpeg(
    path: Path, image: npt.NDArray[np.generic], *, exif_from: Path | None = None, icc: bytes | None = None
) -> None:
    """A quality-95 JPEG written atomically, carrying the EXIF of `exif_from` (the first frame) if given and the
    ICC profile of its colour space (without it, a JPEG exported in Adobe RGB would be read as sRGB)."""

    with atomic_path(path) as tmp:
        tmp.write_bytes(bytes(imagecodecs.jpeg8_encode(image, level=95)))
        dst = exiv2.ImageFactory.open(str(tmp))
        dst.readMetadata()
        if icc is not None:
            dst.setIccProfile(exiv2.DataBuf(icc))
        if exif_from is not None:
            try:
                src = exiv2.ImageFactory.open(str(exif_from))
                src.readMetadata()
                dst.setExifData(src.exifData())
            except exiv2.Exiv2Error:
                pass  # the pixels and their colours matter; EXIF is a courtesy
        dst.writeMetadata()
