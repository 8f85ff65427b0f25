"""Gaussian smoothing, short correlations and bilinear reading of a plane in NumPy alone: what registration (the
blend's shift check and the stitch's overlaps) asks of scipy.ndimage, without SciPy's import (0.2-0.3 s of CPU in
every fresh process, most of it SciPy's array-API layer cloning NumPy's namespace).

Each gives ndimage's own result to float rounding: `gaussian` is ndimage.gaussian_filter (truncated at 4 sigma,
the kernel normalised to 1), `correlate1d` ndimage.correlate1d, `bilinear` ndimage.map_coordinates(order=1,
mode="nearest"); the edges are ndimage's "reflect" (d c b a | a b c d) or "nearest" (a a a | a b c d).
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar, cast

import numpy as np
import numpy.typing as npt

Mode = Literal["reflect", "nearest"]
_PAD = {"reflect": "symmetric", "nearest": "edge"}  # ndimage's modes as np.pad names them
TRUNCATE = 4.0  # sigmas: where the Gaussian's kernel ends (ndimage's default)
CHUNK = 1 << 16  # points read bilinearly at a time

F = TypeVar("F", bound=np.floating[Any])  # float32 in, float32 out; float64 in, float64 out


def gaussian_kernel(sigma: float) -> npt.NDArray[np.float64]:
    """ndimage's Gaussian weights: radius int(4 sigma + 0.5), summing to 1."""
    radius = int(TRUNCATE * sigma + 0.5)
    d = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (d / sigma) ** 2)
    kernel /= kernel.sum()
    return kernel


def gaussian(image: npt.NDArray[F], sigma: float, mode: Mode = "reflect") -> npt.NDArray[F]:
    """`image` (2-D, float) smoothed by a Gaussian of `sigma` along both axes: ndimage.gaussian_filter."""
    kernel = gaussian_kernel(sigma)
    return correlate1d(correlate1d(image, kernel, 0, mode), kernel, 1, mode)


def gradients(image: npt.NDArray[F]) -> tuple[npt.NDArray[F], npt.NDArray[F]]:
    """A plane's derivatives along its rows and its columns: np.gradient's central differences, as the pair of
    planes they are (NumPy's stubs type its result as for any number of axes)."""
    gy, gx = np.gradient(image)
    return cast("npt.NDArray[F]", gy), cast("npt.NDArray[F]", gx)


def correlate1d(
    values: npt.NDArray[F], kernel: npt.NDArray[np.float64], axis: int, mode: Mode = "nearest"
) -> npt.NDArray[F]:
    """`values` correlated with the odd-length `kernel` along `axis`, as sums of shifted slices (each tap one pass
    over contiguous memory, where ndimage.correlate1d walks axis 0 a column at a time: 1.5-3.5x slower on a band's
    rows), the few points within the kernel's reach of an end given their edge's values. In `values`' float type."""
    dtype = np.result_type(values.dtype, np.float32)
    reach = len(kernel) // 2
    moved = np.moveaxis(np.asarray(values, dtype=dtype), axis, 0)
    n = moved.shape[0]
    if n <= reach:  # shorter than the kernel's reach: the edges padded out (reflected more than once)
        pads = [(reach, reach)] + [(0, 0)] * (moved.ndim - 1)
        padded = np.pad(moved, pads, mode=_PAD[mode])  # type: ignore[call-overload]
        out = padded[reach : reach + n] * dtype.type(kernel[reach])
        for k in range(len(kernel)):
            if k != reach:
                out += padded[k : k + n] * dtype.type(kernel[k])
        return np.moveaxis(out, 0, axis)
    out = moved * dtype.type(kernel[reach])
    for d in range(1, reach + 1):
        before, after = dtype.type(kernel[reach - d]), dtype.type(kernel[reach + d])
        out[d:] += moved[:-d] * before
        out[:-d] += moved[d:] * after
        if mode == "nearest":  # beyond the first, the first; beyond the last, the last
            out[:d] += moved[0] * before
            out[n - d :] += moved[-1] * after
        else:  # reflected about the edge: d c b a | a b c d
            out[:d] += moved[:d][::-1] * before
            out[n - d :] += moved[n - d :][::-1] * after
    return np.moveaxis(out, 0, axis)


def bilinear(plane: npt.NDArray[F], y: npt.NDArray[np.float64], x: npt.NDArray[np.float64]) -> npt.NDArray[F]:
    """`plane` read bilinearly at points (`y`, `x`) (arrays of one shape), beyond its edges its edge's value:
    ndimage.map_coordinates(plane, (y, x), order=1, mode="nearest"), in the plane's float type. The points are
    read CHUNK at a time, so that their indices and weights are never held for all of them at once (a 24 MP
    tile's overlap holds over a million)."""
    h, w = plane.shape
    if h < 2 or w < 2:  # a row or a column: read as two of them
        plane = np.pad(plane, ((0, int(h < 2)), (0, int(w < 2))), mode="edge")
        y, x = np.minimum(y, h - 1), np.minimum(x, w - 1)
    out = np.empty(y.shape, dtype=plane.dtype)
    into, ys, xs = out.reshape(-1), y.reshape(-1), x.reshape(-1)
    for start in range(0, into.size, CHUNK):
        part = slice(start, start + CHUNK)
        into[part] = _bilinear(plane, ys[part], xs[part])
    return out


def _bilinear(plane: npt.NDArray[F], y: npt.NDArray[np.float64], x: npt.NDArray[np.float64]) -> npt.NDArray[F]:
    h, w = plane.shape
    y = np.clip(y, 0, h - 1)
    x = np.clip(x, 0, w - 1)
    # the point's cell's top-left corner, the last cell's at the far edges (where the fraction is then 1)
    y0 = np.minimum(y.astype(np.intp), h - 2)
    x0 = np.minimum(x.astype(np.intp), w - 2)
    fy, fx = (y - y0).astype(plane.dtype), (x - x0).astype(plane.dtype)
    at = y0 * w
    at += x0
    flat = plane.reshape(-1)
    top: npt.NDArray[F] = flat[at]
    top += (flat[at + 1] - top) * fx
    at += w
    bottom = flat[at]
    bottom += (flat[at + 1] - bottom) * fx
    bottom -= top
    bottom *= fy
    top += bottom
    return top
