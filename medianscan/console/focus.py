"""The focus aid and the preview's clipping, measured on the live-view JPEG: they need nothing from the body.

Sharpness is the Laplacian's energy over the mean level squared (so it does not rise with brightness), smoothed
a little and shown against the peak seen since the last reset: turn the focus ring until the bar tops out. It is
taken on the green channel, which carries most of a preview's detail. Each frame is measured once, however many
pages watch; a 760x504 preview costs about 3 ms.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import imagecodecs
import numpy as np
import numpy.typing as npt

from medianscan.capture.live_view import LiveFrame

SMOOTHING = 0.5  # weight of the newest frame's figure
CLIPPED_CODE = 250  # a preview pixel at or above this in any channel counts as clipped (the JPEG's clipping)
CROP_SIZE = 160  # the magnifier's 1:1 crop, in preview pixels


@dataclass(frozen=True)
class FocusReading:
    frame: int
    sharpness: float  # smoothed Laplacian energy / mean^2
    peak: float  # the highest since the last reset
    clipped: float  # share of preview pixels clipped (the camera JPEG's, which clips before the raw)

    @property
    def of_peak(self) -> float:
        return self.sharpness / self.peak if self.peak > 0 else 0.0

    def to_json(self) -> dict[str, float]:
        return {
            "frame": self.frame,
            "sharpness": self.sharpness,
            "peak": self.peak,
            "of_peak": self.of_peak,
            "clipped": self.clipped,
        }


def sharpness(grey: npt.NDArray[np.float32]) -> float:
    """Laplacian energy over mean^2 of a greyscale image (its border row and column left out)."""
    mean = float(grey.mean())
    if mean <= 0 or min(grey.shape) < 3:
        return 0.0
    inner = grey[1:-1, 1:-1]
    laplacian = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * inner
    return float(np.einsum("ij,ij->", laplacian, laplacian)) / laplacian.size / (mean * mean)


def clipped_share(rgb: npt.NDArray[np.uint8]) -> float:
    """The share of pixels at CLIPPED_CODE or above in any channel."""
    if rgb.ndim == 2:
        return float(np.count_nonzero(rgb >= CLIPPED_CODE)) / rgb.size
    brightest = np.maximum(np.maximum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])
    return float(np.count_nonzero(brightest >= CLIPPED_CODE)) / brightest.size


class FocusMeter:
    """Thread-safe: every client's request for the reading measures the newest frame at most once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reading: FocusReading | None = None
        self._smoothed: float | None = None
        self._peak = 0.0

    def reading(self, frame: LiveFrame | None) -> FocusReading | None:
        with self._lock:
            if frame is None or (self._reading is not None and self._reading.frame >= frame.number):
                return self._reading
            rgb = imagecodecs.jpeg8_decode(frame.jpeg)
            value = sharpness((rgb[..., 1] if rgb.ndim == 3 else rgb).astype(np.float32))
            self._smoothed = value if self._smoothed is None else SMOOTHING * value + (1 - SMOOTHING) * self._smoothed
            self._peak = max(self._peak, self._smoothed)
            self._reading = FocusReading(frame.number, self._smoothed, self._peak, clipped_share(rgb))
            return self._reading

    def reset(self) -> None:
        """Forget the peak (a new negative, a new focus)."""
        with self._lock:
            self._peak = self._smoothed or 0.0


def crop(frame: LiveFrame, x: float, y: float, size: int = CROP_SIZE) -> bytes:
    """A 1:1 crop of the preview centred on (x, y), fractions of its width and height, as JPEG."""
    rgb = imagecodecs.jpeg8_decode(frame.jpeg)
    h, w = rgb.shape[:2]
    size = min(size, h, w)
    top = int(np.clip(round(y * h) - size // 2, 0, h - size))
    left = int(np.clip(round(x * w) - size // 2, 0, w - size))
    return bytes(imagecodecs.jpeg8_encode(np.ascontiguousarray(rgb[top : top + size, left : left + size]), level=90))
