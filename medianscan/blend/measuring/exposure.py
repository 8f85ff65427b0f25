"""What the raw frames say of the exposure: the share of photosites clipped at the white level, per colour.

The camera's histogram and zebras are of its JPEG, which clips before (or after) the raw does; the operator
judges the exposure on these figures instead. Every second row pair of every good frame is counted: clipped
areas are blobs, and the figure costs a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medianscan.blend.reading.frames import Frame

ROW_STEP = 2  # count every ROW_STEP-th repeat of the CFA pattern's rows


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
        top, left, bottom, right = layout.active_area
        places = (
            [(slice(top, bottom, ROW_STEP), slice(left, right), channel) for channel in range(3)]
            if layout.linear
            else [(rows, cols, index) for rows, cols, index in layout.photosites(layout.active_area, ROW_STEP)]
        )
        for rows, cols, index in places:
            letter = layout.colors[index].upper()
            values = frame.pixels[rows, cols, index] if layout.linear else frame.pixels[rows, cols]
            sites = np.asarray(values, dtype=np.uint16)
            clipped[letter] = clipped.get(letter, 0) + int(np.count_nonzero(sites >= layout.white_level))
            counted[letter] = counted.get(letter, 0) + sites.size
        for letter, count in counted.items():
            worst[letter] = max(worst.get(letter, 0.0), clipped[letter] / max(1, count))
    return worst
