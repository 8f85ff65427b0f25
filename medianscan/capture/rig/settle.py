"""Settling by live view: after a move, the picture is still once two successive live-view frames differ by no
more than two frames at rest do (their noise, measured at rest), rather than after a fixed wait. DIY rigs wait
5 s per tile; a stage that stops in 0.3 s is shot 0.3 s later, and one still ringing is waited for.

Pure parts (`view`, `difference`, `still`, `measure_noise`) and the loop (`settle`), which asks for previews
until two agree, stops with one sentence naming the fault when the picture will not stand still, and without
live view (a body that has none, libgphoto2's virtual camera answering -6 Unsupported) waits the configured
time instead, and says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import imagecodecs
import numpy as np
import numpy.typing as npt

from medianscan.capture.rig.port import RigError

STILL_FACTOR = 1.3  # two frames differing by at most this many times two frames at rest do: still (a pixel of
# movement over a negative's texture shows as 1.5x the noise of a typical preview)
FLOOR = 0.25  # code values: a body whose previews at rest are identical (a JPEG encoder's same answer)
BIN = 2  # previews are compared as 2x2 means of their luminance: the noise falls, any movement stays
REST_PAIRS = 3  # pairs of frames measured at rest for the noise

Preview = Callable[[], bytes | None]
View = npt.NDArray[np.float32]


def view(jpeg: bytes) -> View:
    """A preview JPEG as luminance (the mean of its channels), float."""
    pixels = np.asarray(imagecodecs.jpeg8_decode(jpeg), dtype=np.float32)
    return pixels.mean(axis=-1, dtype=np.float32) if pixels.ndim == 3 else pixels


def _binned(a: View) -> View:
    h, w = a.shape[0] // BIN * BIN, a.shape[1] // BIN * BIN
    out: View = a[:h, :w].reshape(h // BIN, BIN, w // BIN, BIN).mean(axis=(1, 3), dtype=np.float32)
    return out


def difference(a: View, b: View) -> float:
    """RMS difference of two views (binned), in code values; infinite when their sizes differ."""
    if a.shape != b.shape:
        return float("inf")
    d = _binned(a) - _binned(b)
    return float(np.sqrt(np.mean(d * d, dtype=np.float64)))


def still(a: View, b: View, noise: float) -> bool:
    """The picture has not moved between `a` and `b`: they differ no more than frames at rest do."""
    return difference(a, b) <= max(STILL_FACTOR * noise, FLOOR)


def measure_noise(preview: Preview, pairs: int = REST_PAIRS) -> float | None:
    """The RMS difference of successive previews at rest: the least of `pairs` pairs (a stage still coming to
    rest, after a fault, would make the others larger; at rest they agree within a percent); None without live
    view."""
    first = preview()
    if first is None:
        return None
    before = view(first)
    seen = []
    for _ in range(pairs):
        jpeg = preview()
        if jpeg is None:
            return None
        now = view(jpeg)
        seen.append(difference(before, now))
        before = now
    return float(min(seen))


@dataclass(frozen=True)
class Settled:
    """How a move settled: by live view (the last frame, after `previews` of them) or by waiting (no live
    view), and how long it took."""

    seconds: float
    previews: int
    frame: View | None  # the still picture; None when waited for

    @property
    def by_wait(self) -> bool:
        return self.frame is None

    def said(self) -> str:
        if self.frame is None:
            return f"no live view: waited {self.seconds:.1f} s for the stage to settle"
        return f"still after {self.seconds:.2f} s ({self.previews} live-view frames)"


def settle(
    preview: Preview,
    noise: float | None,
    *,
    timeout: float,
    wait_without_live_view: float,
    what: str,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Settled:
    """Previews until two in a row are still (see the module); without live view (`noise` None, or a preview
    that is None) the configured wait. RigError naming `what` when the picture moves on past `timeout`."""
    started = clock()
    if noise is None:
        sleep(wait_without_live_view)
        return Settled(wait_without_live_view, 0, None)
    jpeg = preview()
    if jpeg is None:
        sleep(wait_without_live_view)
        return Settled(wait_without_live_view, 0, None)
    before, count = view(jpeg), 1
    while True:
        jpeg = preview()
        if jpeg is None:
            raise RigError(f"live view stopped while waiting for {what} to settle; the stage is where it stopped")
        now = view(jpeg)
        count += 1
        if still(before, now, noise):
            return Settled(clock() - started, count, now)
        if clock() - started > timeout:
            raise RigError(
                f"live view did not stand still within {timeout:g} s of {what} (frames differing by "
                f"{difference(before, now):.1f} against {noise:.1f} at rest): is the stage still moving (a loose "
                "belt, a motor ringing), or the light flickering? The stage is where it stopped"
            )
        before = now
