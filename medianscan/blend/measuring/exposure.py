"""What the raw frames say of the exposure: the share of photosites clipped at the white level, per colour.

The camera's histogram and zebras are of its JPEG, which clips before (or after) the raw does; the operator
judges the exposure on these figures instead. Every second row pair of every good frame is counted: clipped
areas are blobs, and the figure costs a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

from medianscan.blend.reading.frames import Frame
from medianscan.metadata import MosaicLayout

ROW_STEP = 2  # count every ROW_STEP-th repeat of the CFA pattern's rows
CHUNK_BYTES = 1 << 18  # rows compared at a time


def raw_clipping(frames: Sequence[Frame]) -> dict[str, float]:
    """Colour letter ('R', 'G', 'B') -> the largest fraction of its photosites at or above the white level in
    any of `frames`; empty for frames that are not raw."""
    worst: dict[str, float] = {}
    for frame in frames:
        layout = frame.layout
        if layout is None:
            continue
        clipped: dict[str, int] = {}
        counted: dict[str, int] = {}
        for letter, count, size in _clipped_sites(frame.pixels, layout):
            clipped[letter] = clipped.get(letter, 0) + count
            counted[letter] = counted.get(letter, 0) + size
        for letter, count in counted.items():
            worst[letter] = max(worst.get(letter, 0.0), clipped[letter] / max(1, count))
    return worst


def _clipped_sites(pixels: npt.NDArray[np.generic], layout: MosaicLayout) -> Iterator[tuple[str, int, int]]:
    """(colour letter, photosites at or above white, photosites counted) for each CFA position (each channel of
    linear RGB) in every ROW_STEP-th repeat of the active area's rows."""
    top, left, bottom, right = layout.active_area
    white = layout.white_level
    if layout.linear:
        for channel in range(3):
            sites = np.asarray(pixels[top:bottom:ROW_STEP, left:right, channel], dtype=np.uint16)
            yield layout.colors[channel].upper(), int(np.count_nonzero(sites >= white)), sites.size
        return
    ph, pw = layout.pattern.shape
    width = right - left
    over = np.empty((max(1, CHUNK_BYTES // max(1, width)), width), dtype=bool)  # reused: cached, never mmapped
    for py in range(ph):  # a row phase's rows whole (contiguous compares); its positions apart only when clipped
        y0 = top + (py - top) % ph
        rows = pixels[y0 : bottom : ph * ROW_STEP, left:right]
        starts = [(px - left) % pw for px in range(pw)]  # each position's first column, from the area's left edge
        counts = [0] * pw
        for r in range(0, rows.shape[0], over.shape[0]):
            chunk = over[: min(over.shape[0], rows.shape[0] - r)]
            np.greater_equal(rows[r : r + chunk.shape[0]], white, out=chunk)
            if chunk.any():
                for i, x0 in enumerate(starts):
                    counts[i] += int(np.count_nonzero(chunk[:, x0::pw]))
        for i, x0 in enumerate(starts):
            index = int(layout.pattern[y0 % ph, (left + x0) % pw])
            yield layout.colors[index].upper(), counts[i], rows.shape[0] * len(range(x0, width, pw))
