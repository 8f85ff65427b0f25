"""The simulated camera's live view: the negative now under the lens, as a body's preview JPEG would show it.

The focus drifts through sharp and soft and the framing sways a few pixels, so the console's focus meter and
magnifier can be tried with no camera. It runs at a body's rate (`camera.simulated.preview_fps`); the frames
are white-balanced and gamma-encoded like a camera JPEG, so, like one, it clips before the raw does. A body
makes its preview JPEGs itself: each distinct view is encoded once and kept, so the simulator's own drawing
does not count as the daemon's CPU after its first focus sweep.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import imagecodecs
import numpy as np
import numpy.typing as npt
from scipy import ndimage

from medianscan.config.schema import SimulatedConfig
from medianscan.outputs.preview import LUT_BITS, SRGB_LUT

BLUR_LEVELS = (0.0, 0.6, 1.2, 2.0, 3.0, 4.5)  # preview blur (px) from in focus to far out
SWAY_PX = 4  # the framing drifts this far each way
SWAY_STEP = 2  # in steps of this many pixels
SHARP_SPAN = 0.25  # the share of each focus period the view is in focus
BODY_ZOOM = 4  # the body magnifier's enlargement
_CODES = (1 << LUT_BITS) - 1
_GAINS = np.array([2.13, 1.0, 1.49], dtype=np.float32) * np.float32(0.55)  # white balance, then a JPEG's exposure


def _defocus(phase: float) -> float:
    """A focus ring turned slowly to and fro: soft at the ends of its travel, sharp over the middle quarter."""
    travel = abs(2.0 * phase - 1.0)
    return max(0.0, travel - SHARP_SPAN) / (1.0 - SHARP_SPAN)


class SimulatedLiveView:
    """Preview frames of the negative `signal_of(index)` gives (photosite signal in DN over black)."""

    def __init__(self, cfg: SimulatedConfig, full_scale: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.full_scale = full_scale
        self.clock = clock
        self._index: int | None = None
        self._sharp = np.zeros((1, 1, 3), dtype=np.float32)
        self._levels: dict[int, npt.NDArray[np.float32]] = {}  # blur step -> the view, made when first shown
        self._grain = np.zeros((1, 1), dtype=np.float32)
        self._encoded: dict[tuple[int, int, int], bytes] = {}
        self._next_at = 0.0
        self.zoom_at: tuple[float, float] | None = None  # the body magnifier, when on

    def frame(self, index: int, signal: Callable[[], npt.NDArray[np.float32]]) -> bytes:
        """The next preview JPEG of negative `index`, no sooner than the body's frame interval allows."""
        wait = self._next_at - self.clock()
        if wait > 0:
            time.sleep(wait)
        if index != self._index:
            self._prepare(index, signal())
        t = self.clock()
        period = self.cfg.preview_focus_period_seconds
        if self.cfg.strip.frames > 0 or self.cfg.sheet.present:  # a rig's copy stand: rigid and focused once
            key = (0, SWAY_PX, SWAY_PX)
        else:
            defocus = _defocus((t / period) % 1.0) if period > 0 else 0.0
            key = (
                round(defocus * (len(BLUR_LEVELS) - 1)),
                SWAY_STEP * round(SWAY_PX * (1 + math.sin(t * 0.7)) / SWAY_STEP),
                SWAY_STEP * round(SWAY_PX * (1 + math.cos(t * 0.5)) / SWAY_STEP),
            )
        if self.zoom_at is not None:
            jpeg = self._zoomed(key[0], self.zoom_at)
        elif key in self._encoded:
            jpeg = self._encoded[key]
        else:
            jpeg = self._encoded[key] = self._encode(*key)
        self._next_at = self.clock() + 1.0 / max(0.1, self.cfg.preview_fps)
        return jpeg

    def _level(self, level_index: int) -> npt.NDArray[np.float32]:
        level = self._levels.get(level_index)
        if level is None:
            sigma = BLUR_LEVELS[level_index]
            level = (
                self._sharp if sigma == 0 else ndimage.gaussian_filter(self._sharp, (sigma, sigma, 0), mode="nearest")
            )
            self._levels[level_index] = level
        return level

    def _zoomed(self, level_index: int, at: tuple[float, float]) -> bytes:
        """The body magnifier's view: BODY_ZOOM times around `at`, at the preview's own size."""
        level = self._level(level_index)
        h, w = level.shape[0] - 2 * SWAY_PX, level.shape[1] - 2 * SWAY_PX
        ch, cw = max(1, h // BODY_ZOOM), max(1, w // BODY_ZOOM)
        top = min(max(0, round(at[1] * level.shape[0]) - ch // 2), level.shape[0] - ch)
        left = min(max(0, round(at[0] * level.shape[1]) - cw // 2), level.shape[1] - cw)
        crop = level[top : top + ch, left : left + cw]
        view = np.repeat(np.repeat(crop, BODY_ZOOM, axis=0), BODY_ZOOM, axis=1)
        view = np.clip(view + self._grain[: view.shape[0], : view.shape[1], None], 0, _CODES)
        return bytes(imagecodecs.jpeg8_encode(SRGB_LUT[view.astype(np.uint16)], level=85))

    def _encode(self, level_index: int, dy: int, dx: int) -> bytes:
        level = self._level(level_index)
        h, w = level.shape[0] - 2 * SWAY_PX, level.shape[1] - 2 * SWAY_PX
        grain = self._grain[(dy + dx + level_index) % 7 :][:h, :w, None]  # the sensor's noise differs per view
        view = level[dy : dy + h, dx : dx + w] + grain
        np.clip(view, 0, _CODES, out=view)
        return bytes(imagecodecs.jpeg8_encode(SRGB_LUT[view.astype(np.uint16)], level=85))

    def _prepare(self, index: int, signal: npt.NDArray[np.float32]) -> None:
        """Bin the mosaic to RGB (one pixel per 2x2 cell); its blurred views are made as the focus reaches them."""
        h, w = signal.shape[0] // 2 * 2, signal.shape[1] // 2 * 2
        cells = signal[:h, :w]
        rgb = np.stack(
            [cells[0::2, 0::2], (cells[0::2, 1::2] + cells[1::2, 0::2]) * np.float32(0.5), cells[1::2, 1::2]],
            axis=-1,
        )
        rgb *= _GAINS * np.float32(_CODES / self.full_scale)
        self._sharp = rgb
        self._levels.clear()
        rng = np.random.default_rng(abs(index))
        self._grain = rng.normal(0.0, 12.0, (rgb.shape[0] + 7, rgb.shape[1])).astype(np.float32)
        self._encoded.clear()
        self._index = index
