"""Registration of one plane against another: the sub-pixel shift between two frames of a stack, robust to dust,
or "not measurable" when the scene holds too little texture to tell (never a false "the camera moved").

Robust Lucas-Kanade, coarse to fine: at each level of an image pyramid the shift is refined by least squares on
the reference's gradients, with Tukey weights on the residuals, so a dust speck, a hair or a hot cluster in one
frame carries no weight instead of pulling the estimate (phase correlation locks onto such outliers on a
low-texture scene). The same least squares give the estimate's standard error from the residual noise.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage

MIN_PLANE_SIDE = 64  # below this many plane pixels a side, a shift cannot be measured reliably
MIN_TEXTURE = 4.0  # the reference's gradient energy over what its noise alone gives, below which no shift is told


def measure_shift(reference: npt.NDArray[np.floating], moving: npt.NDArray[np.floating]) -> tuple[float, float] | None:
    """Sub-pixel translation (dy, dx) of `moving` against `reference`, in plane pixels; None if the images hold
    too little structure for the estimate to be good to a tenth of a pixel."""
    return Reference(np.asarray(reference, dtype=np.float32)).register(np.asarray(moving, np.float32), 0.1)


class Reference:
    """A reference plane prepared for registration: an image pyramid and its gradients, shared by every frame."""

    def __init__(self, plane: npt.NDArray[np.float32]) -> None:
        self.levels: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]] = []
        image = plane
        while True:
            smooth = ndimage.gaussian_filter(image, 1.0)
            gy, gx = np.gradient(smooth)
            self.levels.append((smooth, gy.astype(np.float32), gx.astype(np.float32)))
            if min(image.shape) < 2 * MIN_PLANE_SIDE:
                break
            image = _half(image)

    def register(self, plane: npt.NDArray[np.float32], tolerance: float) -> tuple[float, float] | None:
        """The shift of `plane` against the reference, or None when its standard error exceeds `tolerance`."""
        moving = [plane]
        while len(moving) < len(self.levels):
            moving.append(_half(moving[-1]))
        shift = np.zeros(2)
        error = np.inf
        for level in range(len(self.levels) - 1, -1, -1):
            shift *= 2 if level < len(self.levels) - 1 else 1
            smooth = ndimage.gaussian_filter(moving[level], 1.0)
            for _ in range(_ITERATIONS):
                solved = _step(self.levels[level], smooth, shift)
                if solved is None:
                    return None
                step, error = solved
                shift -= step
                if np.hypot(*step) < _CONVERGED:
                    break
        if not np.isfinite(error) or error > tolerance:
            return None
        return float(shift[0]), float(shift[1])


_ITERATIONS = 10
_CONVERGED = 0.005  # plane px: a step this small changes nothing the limit could see
_TUKEY = 4.685  # Tukey biweight constant, in robust sigmas: 95% efficiency on Gaussian noise


def seen_back(image: npt.NDArray[np.float32], shift: npt.NDArray[np.float64], margin: int) -> npt.NDArray[np.float32]:
    """`image` moved back by `shift` (bilinear), inside a border of `margin` (at least the shift plus one):
    four weighted views of the image, with no copy of the whole and no edge handling needed."""
    iy, ix = int(np.floor(shift[0])), int(np.floor(shift[1]))
    fy, fx = np.float32(shift[0] - iy), np.float32(shift[1] - ix)
    h, w = image.shape

    def view(dy: int, dx: int) -> npt.NDArray[np.float32]:
        return image[margin + dy : h - margin + dy, margin + dx : w - margin + dx]

    if fy == 0 and fx == 0:  # a whole-pixel shift: the weights are 1 and 0, the values the view's own
        return np.array(view(iy, ix), dtype=np.float32)
    gx, gy = np.float32(1) - fx, np.float32(1) - fy
    top = np.multiply(view(iy, ix), gx, dtype=np.float32)  # the same products and sums in place: 3 arrays, not 9
    part = np.multiply(view(iy, ix + 1), fx, dtype=np.float32)
    top += part
    bottom = np.multiply(view(iy + 1, ix), gx, dtype=np.float32)
    np.multiply(view(iy + 1, ix + 1), fx, out=part)
    bottom += part
    top *= gy
    bottom *= fy
    top += bottom
    return top


def _half(image: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    half: npt.NDArray[np.float32] = image[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3), dtype=np.float32)
    return half


def _step(
    level: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]],
    moving: npt.NDArray[np.float32],
    shift: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], float] | None:
    """One weighted least-squares refinement: (the correction to subtract from `shift`, its standard error)."""
    reference, gy, gx = level
    margin = int(np.ceil(np.abs(shift).max())) + 3
    if 2 * margin >= min(reference.shape) - 8:
        return None  # shifted by most of the window: nothing left to compare
    inner = (slice(margin, -margin), slice(margin, -margin))
    residual = seen_back(moving, shift, margin) - reference[inner]
    jy, jx = gy[inner], gx[inner]
    some = residual[::3, ::3]  # a robust spread needs no more than every ninth pixel
    centre = np.float32(np.median(some))
    sigma = 1.4826 * float(np.median(np.abs(some - centre)))
    residual -= centre
    if sigma <= 0:
        return None
    u = residual * np.float32(1 / (_TUKEY * sigma))
    weight = np.clip(1 - u * u, 0, None) ** 2
    wy, wx = weight * jy, weight * jx
    syy, sxy, sxx = float(np.vdot(wy, jy)), float(np.vdot(wy, jx)), float(np.vdot(wx, jx))
    a = np.array([[syy, sxy], [sxy, sxx]])
    b = np.array([float(np.vdot(wy, residual)), float(np.vdot(wx, residual))])
    try:
        inverse = np.linalg.inv(a)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(inverse)):
        return None
    # The reference's own noise makes gradients too: below a few times that energy there is no texture to
    # register on (a blank or defocused frame), and the least squares would fit noise to noise.
    noise_energy = _GRADIENT_GAIN * sigma**2 / 2 * float(np.sum(weight))
    if np.trace(a) < MIN_TEXTURE * noise_energy:
        return None
    error = sigma * float(np.sqrt(max(np.linalg.eigvalsh(inverse).max(), 0.0)))
    return inverse @ b, error


def _gradient_gain() -> float:
    """E[|gradient|^2] / variance of white noise after the smoothing the registration applies (measured once):
    the residual's spread, which is of smoothed noise, then tells the gradient energy noise alone gives."""
    noise = np.random.default_rng(0).normal(0.0, 1.0, (256, 256)).astype(np.float32)
    smooth = ndimage.gaussian_filter(noise, 1.0)
    gy, gx = np.gradient(smooth)
    smooth = smooth[8:-8, 8:-8]
    return float((np.var(gy[8:-8, 8:-8]) + np.var(gx[8:-8, 8:-8])) / np.var(smooth))


_GRADIENT_GAIN = _gradient_gain()
