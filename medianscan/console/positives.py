"""The roll strip's positives: each blend's quick inversion (medianscan.outputs.positive) as a JPEG, made on
first request and kept while the blend's file is unchanged."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import imagecodecs
import numpy as np

from medianscan.blend.reading.frames import read_frame
from medianscan.errors import MedianscanError
from medianscan.outputs.positive import render_positive

KEPT = 64  # positives held in memory (a roll and a half)


class Positives:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: OrderedDict[tuple[Path, int], bytes] = OrderedDict()

    def jpeg(self, blend: Path) -> bytes:
        """The positive of the blended DNG `blend`; MedianscanError naming it when it cannot be read."""
        try:
            key = (blend, blend.stat().st_mtime_ns)
        except OSError as exc:
            raise MedianscanError(f"{blend}: cannot read the blend ({exc.strerror})") from exc
        with self._lock:
            if key in self._made:
                self._made.move_to_end(key)
                return self._made[key]
        frame = read_frame(blend, "raw", None)
        if frame.layout is None:
            raise MedianscanError(f"{blend}: not a raw blend")
        made = bytes(
            imagecodecs.jpeg8_encode(
                render_positive(frame.pixels.astype(np.uint16, copy=False), frame.layout), level=88
            )
        )
        with self._lock:
            self._made[key] = made
            while len(self._made) > KEPT:
                self._made.popitem(last=False)
        return made
