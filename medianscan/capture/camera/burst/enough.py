"""How many frames a burst shoots: a fixed number, or (`frames: auto`) as many as its negative needs.

With auto, each of the first frames a burst takes is measured off the camera thread (a thread of its own, on a
subsample of the mosaic: blend.measuring.dense): from the first two, one frame's SNR in the negative's densest
tenth, and the frames that bring the blend there (blend.measuring.efficiency), within [min, max]. The burst
asks `wanted()` before each shot and never waits, except, with all the frames it wanted taken, for the measure
still running to say whether one more is needed (`settle()`).
"""

from __future__ import annotations

import io
import logging
import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt
import rawpy

from medianscan.config.schema import AutoFrames, BlendConfig
from medianscan.metadata import MosaicLayout
from medianscan.records import FramesRecord

if TYPE_CHECKING:
    from medianscan.blend.measuring.dense import DenseMeasure

# The measuring (blend.measuring, its numba kernels, scipy, the flat field) is imported by `frames: auto` alone:
# every process that shoots imports this module (its FrameCount), most never measure a frame

log = logging.getLogger(__name__)

MEASURED = 2  # the first frames measured: one pair's difference in the densest tenth (thousands of photosites
# per colour) gives one frame's noise to about 1 %; each measured frame costs a raw decode (LibRaw's, 0.15 s of
# CPU for a lossless-JPEG CR2), so no more are measured


class FrameCount(Protocol):
    """How many frames the burst shoots: asked before each shot; told each frame it took (its bytes)."""

    least: int
    most: int

    def wanted(self) -> int: ...

    def took(self, data: memoryview) -> None: ...

    def settle(self) -> int: ...

    def decided(self) -> bool:
        """Whether `wanted()` is final (a continuous burst holds its release for `most` until it is)."""
        ...

    def record(self, shot: int) -> FramesRecord | None: ...

    def close(self) -> None: ...


class Fixed:
    """`frames: N`."""

    def __init__(self, n: int) -> None:
        self.least = self.most = n

    def wanted(self) -> int:
        return self.most

    def took(self, data: memoryview) -> None:
        del data

    def settle(self) -> int:
        return self.most

    def decided(self) -> bool:
        return True

    def record(self, shot: int) -> FramesRecord | None:
        del shot
        return None

    def close(self) -> None:
        pass


def fixed_or(frames: int | FrameCount) -> FrameCount:
    return Fixed(frames) if isinstance(frames, int) else frames


class Auto:
    """`frames: auto`: shoot until the blend's SNR in the densest tenth reaches `auto.snr` (see the module)."""

    def __init__(self, auto: AutoFrames, blend: BlendConfig, gain: npt.NDArray[np.float32] | None = None) -> None:
        self.auto, self.blend, self.gain = auto, blend, gain
        self.least, self.most = auto.min, auto.max
        self._lock = threading.Lock()
        self._target = auto.min
        self._frames: list[npt.NDArray[np.float32]] = []  # subsampled (blend.measuring.dense.subsample)
        self._layout: MosaicLayout | None = None
        self._measure: DenseMeasure | None = None
        self._predicted: int | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="frames-auto")
        self._pending: list[Future[None]] = []
        self._failed = False  # a frame could not be measured: the burst shoots the most
        self.cpu_seconds = 0.0  # what the measuring cost (the benchmark reports it per frame)
        import medianscan.blend.measuring.dense  # noqa: F401  (loaded now, before the burst: not on its first frame)

    def wanted(self) -> int:
        with self._lock:
            return self._target

    def took(self, data: memoryview) -> None:
        """A frame's bytes, to measure (only the first MEASURED frames are)."""
        if len(self._pending) >= MEASURED:  # handed over already (only this thread hands over)
            return
        self._pending.append(self._pool.submit(self._add, bytes(data)))

    def _add(self, data: bytes) -> None:
        try:
            self._measure_frame(data)
        except Exception as exc:  # a frame LibRaw cannot read as a mosaic (a JPEG, a linear DNG), a dark frame
            log.warning("frames: auto could not measure this burst's frames (%s): shooting the most, %d", exc,
                        self.most)  # fmt: skip
            with self._lock:
                self._target, self._failed = self.most, True

    def _measure_frame(self, data: bytes) -> None:
        from medianscan.blend.measuring.dense import measure_subsampled, stride_for, subsample
        from medianscan.blend.measuring.efficiency import frames_for
        from medianscan.blend.reading.raw_layout import layout_from_rawpy

        started = time.thread_time()
        with rawpy.imread(io.BytesIO(data)) as raw:
            layout = self._layout or layout_from_rawpy(raw)
            step = stride_for(layout)
            sampled = subsample(raw.raw_image, layout, step)  # a copy: the decoded raw goes with `raw`
        with self._lock:
            self._frames.append(sampled)
            self._layout = layout
            frames = list(self._frames)
        if len(frames) == MEASURED:
            gain = None if self.gain is None else subsample(self.gain, layout, step)
            found = measure_subsampled(frames, layout, gain)
            n = frames_for(found.snr, self.auto.snr, self.blend.method, least=self.least, most=self.most,
                           blend=self.blend)  # fmt: skip
            with self._lock:
                self._measure, self._predicted, self._target = found, n, n
        self.cpu_seconds += time.thread_time() - started

    def settle(self) -> int:
        """Wait for the measures handed over; the frames wanted now."""
        for future in list(self._pending):
            future.result()
        return self.wanted()

    def decided(self) -> bool:
        with self._lock:
            return self._predicted is not None or self._failed

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def record(self, shot: int) -> FramesRecord | None:
        self.close()
        found, predicted = self._measure, self._predicted
        if found is None or predicted is None or self._failed:
            return None
        from medianscan.blend.measuring.efficiency import blend_snr

        expected = blend_snr(found.snr, self.blend.method, shot, self.blend) if math.isfinite(found.snr) else math.inf
        return FramesRecord(
            target=self.auto.snr,
            single_snr=found.snr,
            signal=found.signal,
            sigma=found.sigma,
            colour=found.colour,
            predicted=predicted,
            shot=shot,
            expected_snr=expected,
            least=self.least,
            most=self.most,
            measure_seconds=self.cpu_seconds,
        )


def flat_gain(master: Path | None) -> npt.NDArray[np.float32] | None:
    """The roll's flat-field gains per photosite, when its master flat is blended already (else none: the densest
    tenth is then taken as the light falls)."""
    if master is None or not master.is_file():
        return None
    from medianscan.blend.corrections.flat import load_master

    return load_master(master).gain
