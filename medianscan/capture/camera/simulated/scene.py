"""What the simulated camera's sensor sees: an RGGB 14-bit sensor, the light panel and lens falling off to the
corners with two fixed sensor-dust shadows, and the negative under the lens (an orange-masked, inverted scene
with edges and grain, deterministic by seed), or the bare light (a flat field) or the clear film base. Each
frame adds fresh shot and read noise and drifting dust on the film."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from medianscan.metadata import MosaicLayout

BLACK = 512
WHITE = 16383  # 14-bit
GAIN = 0.45  # DN per electron at base ISO: sets the shot noise
READ_NOISE = 2.5  # DN
ORANGE_MASK = (0.75, 0.88, 0.27)  # R, G, B transmission of the film base, in camera space (orange once white-balanced)
DUST_PER_FRAME = 4
FALLOFF = 0.8  # the light panel and lens at the corners, against the centre
SENSOR_DUST = ((0.35, 0.3, 4.0), (0.6, 0.72, 5.0))  # (y, x) as fractions of the sensor, radius in photosites
SENSOR_DUST_DEPTH = 0.25
BARE_LIGHT = 0.7  # the bare light panel (no film) at this share of the raw range, in the centre
FILM_LIGHT = 0.8  # the light through a fully transparent film, at this share of the raw range


Subject = Literal["negative", "bare light", "film base"]
BASE_TRANSMISSION = 0.85  # the clear film base (no image), before its orange mask
# A step wedge of known densities over the base (grey: the same density in every colour), exposed onto the odd
# negatives of a roll (3, 7, 11, ...) across their middle, so that a positive developed from them can be judged:
# the first step is the clear base itself.
WEDGE_DENSITIES = (0.0, 0.15, 0.3, 0.45, 0.6, 0.8, 1.0, 1.2)
WEDGE_ROWS = (0.42, 0.58)  # the wedge's band, as fractions of the height
WEDGE_COLUMNS = (0.08, 0.92)  # its steps side by side, as fractions of the width


def mask(height: int, width: int) -> npt.NDArray[np.float32]:
    """The orange mask's transmission per photosite of the RGGB sensor."""
    mask = np.empty((height, width), dtype=np.float32)
    mask[0::2, 0::2] = ORANGE_MASK[0]
    mask[0::2, 1::2] = ORANGE_MASK[1]
    mask[1::2, 0::2] = ORANGE_MASK[1]
    mask[1::2, 1::2] = ORANGE_MASK[2]
    return mask


def light_path(height: int, width: int) -> npt.NDArray[np.float32]:
    """What the light panel, the lens and the sensor dust let through to each photosite: 1 in the centre, falling
    to FALLOFF at the corners, with two fixed dust shadows (the same in every frame, as on a real sensor)."""
    y = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
    light = 1 - np.float32(1 - FALLOFF) * (y * y + x * x) / 2
    for fy, fx, radius in SENSOR_DUST:
        cy, cx = fy * height, fx * width
        top, left = max(0, int(cy - 3 * radius)), max(0, int(cx - 3 * radius))
        box = light[top : int(cy + 3 * radius) + 1, left : int(cx + 3 * radius) + 1]
        yy = np.arange(top, top + box.shape[0], dtype=np.float32)[:, None]
        xx = np.arange(left, left + box.shape[1], dtype=np.float32)[None, :]
        box *= 1 - SENSOR_DUST_DEPTH * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (radius / 1.5) ** 2))
    return light.astype(np.float32)


def layout(height: int, width: int) -> MosaicLayout:
    """An RGGB 14-bit sensor, as a Canon-like body would describe it."""
    return MosaicLayout(
        pattern=np.array([[0, 1], [3, 2]], dtype=np.uint8),
        colors="RGBG",
        black_levels=(BLACK,) * 4,
        white_level=WHITE,
        active_area=(0, 0, height, width),
        default_crop=(8, 8, width - 16, height - 16),
        color_matrix=np.array(
            [[0.4716, 0.0603, -0.0830], [-0.7798, 1.5474, 0.2480], [-0.1496, 0.1937, 0.6651]], dtype=np.float64
        ),
        as_shot_neutral=(0.47, 1.0, 0.67),
    )


def picture(seed: int, index: int, h: int, w: int) -> npt.NDArray[np.float32]:
    """Negative `index`'s transmission per photosite, before its orange mask: an inverted positive scene (smooth
    light, a gradient, hard-edged shapes, discs) with the film's clumped grain, deterministic by seed."""
    rng = np.random.default_rng([seed, index, 0])
    # a positive scene: smooth light (a separable Gaussian: two 1-D profiles), a gradient, hard-edged shapes
    cy, cx = rng.uniform(0.2, 0.8, 2)
    ys = np.linspace(0.0, 1.0, h, dtype=np.float32)
    xs = np.linspace(0.0, 1.0, w, dtype=np.float32)
    scene = np.outer(np.exp(-((ys - cy) ** 2) / 0.08), np.exp(-((xs - cx) ** 2) / 0.08)).astype(np.float32)
    scene *= np.float32(0.3)
    scene += np.float32(0.35) + np.float32(0.15) * xs
    for _ in range(6):  # hard edges: what alignment locks on to
        y0, x0 = int(rng.integers(0, h * 3 // 4)), int(rng.integers(0, w * 3 // 4))
        y1, x1 = y0 + int(rng.integers(h // 16 + 1, h // 3 + 2)), x0 + int(rng.integers(w // 16 + 1, w // 3 + 2))
        scene[y0:y1, x0:x1] += np.float32(rng.uniform(-0.3, 0.3))
    for _ in range(3):  # discs, drawn in their bounding box only
        ry, rx, rad = rng.uniform(0.1, 0.9) * h, rng.uniform(0.1, 0.9) * w, rng.uniform(h / 50, h / 6)
        top, left = max(0, int(ry - rad)), max(0, int(rx - rad))
        box = scene[top : int(ry + rad) + 1, left : int(rx + rad) + 1]
        yy = np.arange(top, top + box.shape[0], dtype=np.float32)[:, None]
        xx = np.arange(left, left + box.shape[1], dtype=np.float32)[None, :]
        box[(yy - ry) ** 2 + (xx - rx) ** 2 < rad**2] += np.float32(rng.uniform(-0.25, 0.25))
    # film grain: clumped, multiplicative, fixed for this negative
    grain = rng.standard_normal(((h + 1) // 2 + 1, (w + 1) // 2 + 1), dtype=np.float32)  # odd sizes too
    grain = (grain[:-1, :-1] + grain[1:, 1:]) * np.float32(0.5)
    grain = np.repeat(np.repeat(grain, 2, axis=0), 2, axis=1)[:h, :w]
    scene = np.clip(scene * (1 + np.float32(0.05) * grain), 0.02, 1.0)
    # negative: bright scene -> dense film -> little light; seen through the orange base
    negative = (np.float32(BASE_TRANSMISSION) - np.float32(0.7) * scene).astype(np.float32)
    if has_wedge(index):
        for step, (top, left, bottom, right) in enumerate(wedge_steps(h, w)):
            negative[top:bottom, left:right] = np.float32(BASE_TRANSMISSION * 10 ** -WEDGE_DENSITIES[step])
    return negative


def has_wedge(index: int) -> bool:
    """Whether negative `index` of a roll carries the step wedge (the 3rd, 7th, 11th, ...)."""
    return index % 4 == 3


def wedge_steps(h: int, w: int) -> list[tuple[int, int, int, int]]:
    """Each step of the wedge as (top, left, bottom, right) in photosites, on whole CFA cells, densest last."""
    top, bottom = (int(f * h) // 2 * 2 for f in WEDGE_ROWS)
    edges = np.linspace(WEDGE_COLUMNS[0] * w, WEDGE_COLUMNS[1] * w, len(WEDGE_DENSITIES) + 1)
    columns = [int(e) // 2 * 2 for e in edges]
    return [(top, columns[i], bottom, columns[i + 1]) for i in range(len(WEDGE_DENSITIES))]


class Negative:
    """One negative under the lens: the noiseless signal per photosite and its noise sigma (DN). `through`, when
    given, is what the film lets through per photosite, orange mask included (a strip seen through the light,
    capture.camera.simulated.strip); else negative `index`'s picture fills the view."""

    def __init__(
        self,
        seed: int,
        index: int,
        height: int,
        width: int,
        exposure_scale: float = 1.0,
        *,
        subject: Subject = "negative",
        through: npt.NDArray[np.float32] | None = None,
    ) -> None:
        self.seed, self.index, self.film, self.scale = seed, index, subject != "bare light", exposure_scale
        self.signal: npt.NDArray[np.float32]
        self.sigma: npt.NDArray[np.float32]
        if subject != "negative":  # the bare light (a flat field), or the clear film base (exposure calibration)
            level = BARE_LIGHT * (WHITE - BLACK) * exposure_scale
            light = light_path(height, width) * np.float32(level)
            if subject == "film base":
                light *= mask(height, width) * np.float32(BASE_TRANSMISSION * FILM_LIGHT / BARE_LIGHT)
            self.signal = light.astype(np.float32)
            self.sigma = np.sqrt(GAIN * self.signal + READ_NOISE**2).astype(np.float32)
            return
        film = picture(seed, index, height, width) * mask(height, width) if through is None else through
        film_level = np.float32(FILM_LIGHT * (WHITE - BLACK) * exposure_scale)
        self.signal = (film * light_path(height, width) * film_level).astype(np.float32)
        self.sigma = np.sqrt(GAIN * self.signal + READ_NOISE**2).astype(np.float32)

    def frame(self, number: int, *, flicker: bool = False, shift: bool = False) -> npt.NDArray[np.uint16]:
        """Frame `number` (1-based) of this negative: fresh shot/read noise and drifting dust."""
        rng = np.random.default_rng([self.seed, self.index, number])
        noise = rng.standard_normal(self.signal.shape, dtype=np.float32)
        level = np.float32(1.08 if flicker else 1.0)
        values = self.signal * level + self.sigma * noise
        values += np.float32(BLACK + 0.5)
        h, w = values.shape
        for _ in range(DUST_PER_FRAME if self.film else 0):  # dust on the film moves between frames
            y, x, r = int(rng.integers(8, h - 8)), int(rng.integers(8, w - 8)), int(rng.integers(2, 6))
            patch = values[y - r : y + r, x - r : x + r]
            patch -= (patch - BLACK) * np.float32(0.75)
        np.clip(values, 0, WHITE, out=values)
        mosaic = values.astype(np.uint16)
        if shift:
            mosaic = np.roll(mosaic, 2, axis=1)
        return mosaic
