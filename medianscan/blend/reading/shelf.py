"""Memory for blends: the stack buffer and output frame kept between blends of one size, and glibc told to give
freed frame-sized buffers back, so a long-lived worker neither grows nor pays first-touch page faults again.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from medianscan import heap
from medianscan.blend.reading import frames
from medianscan.blend.reading.frames import Frame
from medianscan.formats import FrameKind


def return_freed_buffers_to_os() -> None:
    """Keep glibc from hoarding freed frame-sized buffers (LibRaw's, in each decode thread's arena): with a fixed
    mmap threshold every large buffer goes back to the OS when freed, so a blend peaks at the stack plus the
    frames in flight, and a long-lived worker does not grow. Set at every blend: a stitch in the same worker
    sets its own (`medianscan.heap`)."""
    heap.map_from(1 << 20)


class _Shelf:
    """The stack buffer and output frame of the last blend, kept for the next one of the same size.

    A blend worker lives for many stacks of one camera: reusing its buffers spares the page faults of touching
    a fresh stack's worth of memory every time (the notes measured 0.3-5 s spikes on first touch). One buffer per
    role; a concurrent blend simply allocates its own.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[str, npt.NDArray[np.generic]] = {}

    @contextlib.contextmanager
    def lend(self, role: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Iterator[npt.NDArray[np.generic]]:
        with self._lock:
            kept = self._kept.pop(role, None)
        array = kept if kept is not None and kept.shape == shape and kept.dtype == dtype else np.empty(shape, dtype)
        try:
            yield array
        finally:
            with self._lock:
                self._kept[role] = array


SHELF = _Shelf()


def allocate_frames(first: Path, kind: FrameKind, n: int, keep: contextlib.ExitStack) -> npt.NDArray[np.generic] | None:
    """One (N, ...) buffer for the whole stack, sized from the first frame's header; None if unknown, and None
    for TIFFs, which are memory-mapped (or, compressed, decoded one array each) and combined band by band."""
    if kind == "tiff":
        return None
    probed = frames.probe(first, kind)
    if probed is None:
        return None
    shape, dtype = probed
    return keep.enter_context(SHELF.lend("stack", (n, *shape), dtype))


FrameArrays = npt.NDArray[np.generic] | list[npt.NDArray[np.generic]]  # one (N, ...) array, or N frame arrays


def compact_good(buffer: npt.NDArray[np.generic] | None, good: Sequence[Frame]) -> FrameArrays:
    """The good frames as one contiguous (N, ...) array reusing the stack buffer, or as their own arrays when
    they do not live in one (memory-mapped TIFFs: the kernels read them where they lie, never copied)."""
    if buffer is None or any(not np.shares_memory(f.pixels, buffer) for f in good):
        return [f.pixels for f in good]
    for slot, frame in enumerate(good):
        if not np.shares_memory(frame.pixels, buffer[slot]):
            buffer[slot] = frame.pixels
    return buffer[: len(good)]
