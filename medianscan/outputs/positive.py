"""A quick positive of a negative's blend, to judge framing, exposure and dust on the console's roll strip.

Not a conversion: the film base is taken as white (the brightest photosites of each colour), each colour's
densities are stretched to their own range (which removes the orange mask), and a gamma suits a screen. It
works on the binned raw mosaic, so it needs no demosaicing and costs some 40 ms for a 24 MP blend.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from medianscan.metadata import MosaicLayout
from medianscan.outputs.preview import bin_cells

BASE_PERCENTILE = 99.5  # the film base: the brightest photosites, a speck of bare light aside
LEVELS = (0.5, 99.5)  # each colour's density range, its outliers aside
GAMMA = 0.8  # on density, which is already a log scale


def render_positive(mosaic: npt.NDArray[np.uint16], layout: MosaicLayout, max_size: int = 640) -> npt.NDArray[np.uint8]:
    """(H, W, 3) 8-bit positive of the default crop of `mosaic`, at most `max_size` pixels on its long side."""
    linear = np.maximum(bin_cells(mosaic, layout, max_size).means(), np.float32(0.5))
    pixels = linear.reshape(-1, 3)
    base = np.maximum(np.percentile(pixels, BASE_PERCENTILE, axis=0), 1.0).astype(np.float32)
    density = np.log10(np.maximum(base / linear, np.float32(1.0)))  # 0 at the base, up for denser film
    flat = density.reshape(-1, 3)
    low, high = (p.astype(np.float32) for p in np.percentile(flat, LEVELS, axis=0))
    stretched = np.clip((density - low) / np.maximum(high - low, np.float32(1e-3)), 0.0, 1.0)
    out: npt.NDArray[np.uint8] = np.round(255 * stretched**GAMMA).astype(np.uint8)
    return out
