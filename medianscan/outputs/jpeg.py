"""JPEG outputs, carrying the first frame's EXIF."""

from __future__ import annotations

from pathlib import Path

import exiv2
import imagecodecs
import numpy as np
import numpy.typing as npt

from medianscan.atomic import atomic_path


def write_jpeg(path: Path, image: npt.NDArray[np.generic], *, exif_from: Path | None = None) -> None:
    """A quality-95 JPEG written atomically, carrying the EXIF of `exif_from` (the first frame) if given."""

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
