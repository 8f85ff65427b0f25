"""TIFF outputs: 8/16-bit grey or RGB, compressed or streamed straight to the disk band by band, the pixel block
of an uncompressed TIFF (where its image lies, to map it or read it back), and the linear rendering of a DNG.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import numpy.typing as npt
import rawpy
import tifffile

from medianscan import diskio
from medianscan.atomic import atomic_path
from medianscan.pixel_block import pixel_block


def write_tiff(
    path: Path,
    image: npt.NDArray[np.generic],
    *,
    compress: bool = False,
    description: str = "",
    icc: bytes | None = None,
) -> None:
    """An 8- or 16-bit TIFF (grey or RGB) written atomically, carrying the ICC profile `icc` of its colour space;
    `compress` = deflate with a predictor, which every TIFF reader opens (uncompressed is several times faster to
    write, and goes straight to the disk)."""

    if not compress:
        written = write_tiff_rows(path, image.shape, image.dtype, [image], description=description, icc=icc)
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
            iccprofile=icc,
        )


def write_tiff_rows(
    path: Path,
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
    bands: Iterable[npt.NDArray[np.generic]],
    *,
    description: str = "",
    icc: bytes | None = None,
) -> diskio.Written:
    """An uncompressed TIFF of `shape` whose pixels arrive as bands of whole rows, top to bottom (a blend as it
    is combined), written atomically; returns the sha256 of the pixels given and of the pixels read back from the
    disk.

    tifffile lays the file out with the pixel block at an aligned offset; `diskio` streams the bands into it
    straight to the disk."""

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
            iccprofile=icc,
        )
        assert placed is not None  # uncompressed data always has one place
        return diskio.write_stream(tmp, placed[0], bands)


def _photometric(shape: tuple[int, ...]) -> str:
    return "rgb" if len(shape) == 3 and shape[2] in (3, 4) else "minisblack"


def stored_pixels_sha256(path: Path) -> str | None:
    """sha256 of an uncompressed TIFF's pixels (as `read_frame` would return them) read from the disk itself;
    None for any other file, which is decoded instead."""
    block = pixel_block(path)
    return None if block is None else diskio.sha256_at(path, block.offset, block.size)


def develop_linear(dng: Path) -> npt.NDArray[np.uint16]:
    """A 16-bit linear RGB rendering of a raw (camera white balance, no gamma, no auto-brightening) in
    `LINEAR_SRGB`'s colour space."""
    with rawpy.imread(str(dng)) as raw:
        rgb = raw.postprocess(
            output_color=rawpy.ColorSpace.sRGB,
            gamma=(1, 1),
            no_auto_bright=True,
            output_bps=16,
            use_camera_wb=True,
            user_flip=0,
        )
    return np.asarray(rgb, dtype=np.uint16)


# `develop_linear`'s colour space as an ICC profile, built by Little CMS: sRGB's primaries and D65 white with a
# straight tone curve (editors then read the TIFF's values as the linear light they are, not as sRGB's gamma)
LINEAR_SRGB = imagecodecs.cms_profile(
    "rgb",
    whitepoint=(0.3127, 0.3290, 1.0),
    primaries=(0.64, 0.33, 1.0, 0.30, 0.60, 1.0, 0.15, 0.06, 1.0),
    gamma=1.0,
)
