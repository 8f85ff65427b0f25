"""Where one tile lies on another, from the picture in their overlap: translation to a tenth of a photosite and a
small rotation, measured on colour-balanced CFA cells (`cells`), robust to dust.

First a coarse offset: phase correlation of the two tiles' thumbnails (every candidate the correlation's
wrap-around allows is scored by its normalised cross-correlation over the overlap it implies), or the prior
position where one is known. Then robust Lucas-Kanade on the full planes, coarse to fine, for (dy, dx, angle):
Tukey weights on the residuals give a dust speck, a hair or a scratch in one tile no weight. Whether the overlap
holds enough texture to tell a tenth of a photosite is the shift check's own rule
(`blend.measuring.registration`), asked of the overlap once aligned: a plain sky is "not measurable", never a
wrong position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from medianscan.blend.measuring.registration import Reference
from medianscan.stitch.cells import FLATTEN_SIGMA, Plane, reached, shrink, window_of

MIN_NCC = 0.5  # a coarse candidate whose overlap correlates less than this is no match
TOLERANCE = 0.1  # photosites: an overlap that cannot tell its shift this well is not measurable
_ITERATIONS = 12
_CONVERGED = 0.002  # plane points
_COARSE_CONVERGED = 0.02  # a coarse level's points (each s plane points a side)
_TUKEY = 4.685
_MAX_POINTS = 20_000  # template points per step: a larger overlap is sampled at a stride
_MAX_TURN = 0.01  # radians: the most a tile may turn on the next (0.57 degrees), for what of i the overlap may reach
_LEVEL_STRIDE = 4  # the exposure fit reads every fourth point
_PEAKS = 2  # the correlation's highest peaks whose readings are scored
_MIN_SIDE = 24  # the pyramid stops when the overlap's short side would fall below this many points
# The shift check reads at most this many points of the aligned overlap, a window about its centre: on a 24 MP
# tile's overlap (1.4 M points) the full check took 0.15-0.25 s a pair. The window is held to the full
# tolerance, so it is, if anything, stricter than the whole (its error is that of fewer points).
_CHECK_POINTS = 512 * 512
_SMOOTH_TRUNCATE = 4.0  # ndimage.gaussian_filter's own: the pyramid's smoothing, sigma 1, reads 4 points a side
_CHECK_SIDE = 128  # the window's short side, where the overlap's own is longer


@dataclass(frozen=True)
class PairFit:
    """Tile j in tile i's plane: q_i = R(angle) (q_j - centre) + centre + shift, in plane points."""

    shift: tuple[float, float]  # (dy, dx)
    angle: float  # radians
    centre: tuple[float, float]  # in j's plane
    box: tuple[int, int, int, int]  # the overlap in j's plane: top, left, bottom, right
    error: float  # standard error of the shift, plane points


@dataclass(frozen=True)
class Thumb:
    """A tile's thumbnail and the spectrum the coarse search correlates: each tile's made once, not once a pair."""

    image: npt.NDArray[np.float32]
    spectrum: npt.NDArray[np.complex128]  # of the thumbnail less its mean, its edges tapered


def thumbnail(image: npt.NDArray[np.float32]) -> Thumb:
    h, w = image.shape
    # the edges tapered alone: the overlaps lie along them
    tapered = (image - image.mean()) * _taper(h)[:, None] * _taper(w)[None, :]
    return Thumb(image, np.fft.rfft2(tapered))


def coarse_offset(
    a: Thumb,
    b: Thumb,
    min_share: float,
    near: tuple[float, float] | None = None,
    reach: float = np.inf,
) -> tuple[float, float] | None:
    """Offset (dy, dx) of thumbnail `b`'s origin in `a`'s (thumbnails of one size, as a set's tiles are), whole
    thumbnail points; None when no candidate overlaps `min_share` of a tile and correlates; with `near`, only
    candidates within `reach` of it."""
    h, w = a.image.shape
    assert b.image.shape == (h, w), "a set's tiles are of one size (plan.set_problems)"
    cross = a.spectrum * np.conj(b.spectrum)
    surface = np.fft.irfft2(cross / np.maximum(np.abs(cross), 1e-12), s=(h, w))
    candidates: set[tuple[int, int]] = set()
    for flat in np.argpartition(surface, -_PEAKS, axis=None)[-_PEAKS:]:
        py, px = divmod(int(flat), w)
        candidates |= {(dy, dx) for dy in (py, py - h) for dx in (px, px - w)}  # the wrap-around's four readings
    if near is not None:
        candidates = {c for c in candidates if np.hypot(c[0] - near[0], c[1] - near[1]) <= reach}
    best: tuple[float, tuple[float, float]] | None = None
    for dy, dx in sorted(candidates):
        score = _ncc(a.image, b.image, dy, dx, min_share)
        if score is not None and score >= MIN_NCC and (best is None or score > best[0]):
            best = (score, (float(dy), float(dx)))
    return None if best is None else best[1]


def _taper(n: int, share: float = 0.08) -> npt.NDArray[np.float64]:
    """A window flat in the middle that falls to 0 over `share` of each end (a Tukey window)."""
    ramp = max(1, int(n * share))
    window = np.ones(n)
    edge = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp) + 0.5) / ramp)
    window[:ramp], window[n - ramp :] = edge, edge[::-1]
    return window


def _ncc(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], dy: int, dx: int, min_share: float) -> float | None:
    h, w = a.shape
    top, left, bottom, right = max(0, dy), max(0, dx), min(h, dy + b.shape[0]), min(w, dx + b.shape[1])
    if (bottom - top) * (right - left) < min_share * h * w or bottom - top < 4 or right - left < 4:
        return None
    pa = a[top:bottom, left:right]
    pb = b[top - dy : bottom - dy, left - dx : right - dx]
    pa = pa - np.float32(pa.mean(dtype=np.float64))
    pb = pb - np.float32(pb.mean(dtype=np.float64))
    norm = float(np.sqrt(_dot(pa, pa) * _dot(pb, pb)))
    return _dot(pa, pb) / norm if norm > 0 else None


def _dot(a: npt.NDArray[np.floating], b: npt.NDArray[np.floating]) -> float:
    """The sum of a * b, in NumPy's own loop: np.vdot and @ go to OpenBLAS, whose threads wake for a long
    vector and, on a machine whose cores are busy, cost 10-30 ms a call where the sum takes 0.02 ms."""
    return float(np.einsum("i,i->", a.ravel(), b.ravel()))


def overlap_box(
    shape_i: tuple[int, ...], shape_j: tuple[int, ...], shift: tuple[float, float]
) -> tuple[int, int, int, int]:
    """The part of j's plane that falls inside i's, for j's origin at `shift` in i (top, left, bottom, right)."""
    dy, dx = shift
    top, left = max(0, int(np.ceil(-dy))), max(0, int(np.ceil(-dx)))
    bottom = min(shape_j[0], int(np.floor(shape_i[0] - 1 - dy)) + 1)
    right = min(shape_j[1], int(np.floor(shape_i[1] - 1 - dx)) + 1)
    return top, left, max(top, bottom), max(left, right)


def refine(
    plane_i: Plane,
    plane_j: Plane,
    start: tuple[float, float],
    min_points: int,
    cell: int,
    *,
    coarse: int = 32,
) -> PairFit | None:
    """Robust Lucas-Kanade for (dy, dx, angle) of j in i from `start` (plane points, good to `coarse` of them);
    None when the overlap holds fewer than `min_points` points or too little texture to measure. Only windows
    about the overlap are read of either plane."""
    box = overlap_box(plane_i.shape, plane_j.shape, start)
    top, left, bottom, right = box
    margin = 4 + int(2 * FLATTEN_SIGMA)  # the flattened planes are less sure near a tile's edge
    inner = (top + margin, left + margin, bottom - margin, right - margin)
    if (inner[2] - inner[0]) * (inner[3] - inner[1]) < min_points or min(inner[2] - inner[0], inner[3] - inner[1]) < 16:
        return None
    centre = ((inner[0] + inner[2] - 1) / 2, (inner[1] + inner[3] - 1) / 2)
    levels = 0
    top_level = min(5, int(np.ceil(np.log2(max(1, coarse)))) + 1)  # the coarse offset is good to a thumbnail point
    while min(inner[2] - inner[0], inner[3] - inner[1]) >> (levels + 1) >= _MIN_SIDE and levels < top_level:
        levels += 1
    # Only the overlap is worked on: j's inner box and what of i it may reach (a coarse level's step, a turn)
    pad = (2 << levels) + int(np.ceil(_MAX_TURN * max(inner[2] - inner[0], inner[3] - inner[1])))
    oj, crop_j = _crop(plane_j, (inner[0] - pad, inner[1] - pad, inner[2] + pad, inner[3] + pad))
    reach_i = (
        inner[0] + start[0] - pad,
        inner[1] + start[1] - pad,
        inner[2] + start[0] + pad,
        inner[3] + start[1] + pad,
    )
    oi, crop_i = _crop(plane_i, tuple(int(np.floor(v)) for v in reach_i))  # type: ignore[arg-type]
    moved = np.array([oj[0] - oi[0], oj[1] - oi[1], 0.0])  # crop coordinates: shift + oj - oi
    params = np.array([start[0], start[1], 0.0]) + moved
    local_inner = (inner[0] - oj[0], inner[1] - oj[1], inner[2] - oj[0], inner[3] - oj[1])
    local_centre = (centre[0] - oj[0], centre[1] - oj[1])
    error = np.inf
    for level in range(levels, -1, -1):
        s = 1 << level
        ref = ndimage.gaussian_filter(shrink(crop_i, s), 1.0)
        gy, gx = np.gradient(ref)
        tpl = shrink(crop_j, s)
        t0, l0, b0, r0 = (v // s for v in local_inner)
        # a coarse level only brings the fit within the next one's reach: fewer points, a looser stop
        most, tolerance = (_MAX_POINTS, _CONVERGED) if level == 0 else (_MAX_POINTS // 4, _COARSE_CONVERGED * s)
        stride = max(1, int(np.ceil(np.sqrt((b0 - t0) * (r0 - l0) / most))))  # at most `most` points: 0.01 px
        qy, qx = np.mgrid[t0:b0:stride, l0:r0:stride].astype(np.float64)
        template = _smoothed_at(tpl, range(t0, b0, stride), range(l0, r0, stride)).astype(np.float64)
        for _ in range(_ITERATIONS):
            step = _step((ref, gy, gx), template, (qy, qx), params, centre=local_centre, s=s)
            if step is None:
                return None
            delta, error = step
            params += delta
            if abs(delta[0]) + abs(delta[1]) < tolerance and abs(delta[2]) * max(b0 - t0, r0 - l0) * s < tolerance:
                break
    params -= moved
    fit = PairFit((float(params[0]), float(params[1])), float(params[2]), centre, inner, float(error))
    return fit if measurable(plane_i, plane_j, fit, TOLERANCE / cell) else None


def _smoothed_at(image: npt.NDArray[np.float32], rows: range, cols: range) -> npt.NDArray[np.float32]:
    """ndimage.gaussian_filter(image, 1.0)[rows][:, cols], to the bit, filtering only about the rows asked for
    (the template's points are every few rows): each row's nine neighbours (reflected at the image's ends, as the
    filter reads them) stacked, filtered down, the middle rows kept, then filtered across as whole rows."""
    radius = int(_SMOOTH_TRUNCATE + 0.5)  # ndimage's radius for a sigma of 1
    h = image.shape[0]
    if h <= 2 * radius + 1 or len(rows) * (2 * radius + 1) >= h:
        smooth: npt.NDArray[np.float32] = ndimage.gaussian_filter(image, 1.0, truncate=_SMOOTH_TRUNCATE)
        return smooth[rows.start : rows.stop : rows.step, cols.start : cols.stop : cols.step]
    at = np.arange(rows.start, rows.stop, rows.step)[:, None] + np.arange(-radius, radius + 1)[None, :]
    at = np.where(at < 0, -at - 1, np.where(at >= h, 2 * h - 1 - at, at))  # 'reflect': d c b a | a b c d | d c b a
    down = ndimage.gaussian_filter1d(image[at.ravel()], 1.0, axis=0, truncate=_SMOOTH_TRUNCATE)
    kept = np.ascontiguousarray(down[radius :: 2 * radius + 1])
    across: npt.NDArray[np.float32] = ndimage.gaussian_filter1d(kept, 1.0, axis=1, truncate=_SMOOTH_TRUNCATE)
    return across[:, cols.start : cols.stop : cols.step]


def _crop(plane: Plane, box: tuple[int, int, int, int]) -> tuple[tuple[int, int], npt.NDArray[np.float32]]:
    """The part of `plane` inside `box` (top, left, bottom, right; clipped) and its top-left corner."""
    top, left = max(0, box[0]), max(0, box[1])
    return (top, left), window_of(plane, top, max(top, box[2]), left, max(left, box[3]))


def _step(
    level: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]],
    template: npt.NDArray[np.float64],
    points: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
    params: npt.NDArray[np.float64],
    *,
    centre: tuple[float, float],
    s: int,
) -> tuple[npt.NDArray[np.float64], float] | None:
    """One weighted Gauss-Newton step at pyramid scale `s` (parameters in full-scale plane points)."""
    ref, gy, gx = level
    qy, qx = points
    dy, dx, angle = params
    c, sn = np.cos(angle), np.sin(angle)
    # full-scale coordinates of the template's points (block means: point k stands for k * s + (s - 1) / 2)
    fy, fx = qy * s + (s - 1) / 2 - centre[0], qx * s + (s - 1) / 2 - centre[1]
    wy = sn * fx + c * fy + centre[0] + dy
    wx = c * fx - sn * fy + centre[1] + dx
    sy, sx = (wy - (s - 1) / 2) / s, (wx - (s - 1) / 2) / s
    inside = (sy >= 1) & (sy <= ref.shape[0] - 2) & (sx >= 1) & (sx <= ref.shape[1] - 2)
    if np.count_nonzero(inside) < 64:
        return None
    seen, jy, jx = _bilinear((ref, gy, gx), sy[inside], sx[inside])
    jy, jx = jy / s, jx / s
    ry, rx = (wy - centre[0] - dy)[inside], (wx - centre[1] - dx)[inside]
    ja = jy * rx - jx * ry  # d(warped point)/d(angle) = (x', -y') in (y, x)
    gain, offset = _levels(template[inside], seen)  # the tiles' exposures differ a little: fit that too
    seen = seen * gain + offset
    jy, jx, ja = jy * gain, jx * gain, ja * gain
    residual = template[inside] - seen
    centre_value = float(np.median(residual))
    sigma = 1.4826 * float(np.median(np.abs(residual - centre_value)))
    if sigma <= 0:
        return None
    residual -= centre_value
    u = residual / (_TUKEY * sigma)
    weight = np.clip(1 - u * u, 0, None) ** 2
    jac = np.stack([jy, jx, ja], axis=1)
    weighted = jac * weight[:, None]
    a = np.einsum("ki,kj->ij", weighted, jac)  # not @: see _dot
    b = np.einsum("ki,k->i", weighted, residual)
    try:
        cov = np.linalg.inv(a)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(cov)):
        return None
    error = sigma * float(np.sqrt(max(np.linalg.eigvalsh(cov[:2, :2]).max(), 0.0)))
    return cov @ b, error


def _levels(template: npt.NDArray[np.floating], seen: npt.NDArray[np.floating]) -> tuple[float, float]:
    """Gain and offset that bring `seen` to `template` (least squares on the middle 90 % of their ratio)."""
    # two numbers need no more points than every fourth
    template, seen = template[::_LEVEL_STRIDE].astype(np.float64), seen[::_LEVEL_STRIDE].astype(np.float64)
    usable = np.abs(seen) > 1e-6
    ratio = template[usable] / seen[usable]
    if ratio.size < 16:
        return 1.0, 0.0
    low, high = np.percentile(ratio, [5, 95])
    keep = (ratio >= low) & (ratio <= high)
    x, y = seen[usable][keep], template[usable][keep]
    if x.size < 16:
        return 1.0, 0.0
    mx, my = float(x.mean()), float(y.mean())
    spread = _dot(x - mx, x - mx)
    if spread <= 0:
        return 1.0, 0.0
    slope = _dot(x - mx, y - my) / spread
    return slope, my - slope * mx


def _bilinear(
    arrays: tuple[npt.NDArray[np.float32], ...], y: npt.NDArray[np.float64], x: npt.NDArray[np.float64]
) -> list[npt.NDArray[np.float64]]:
    """Each array read bilinearly at points (y, x), all inside it with a point to spare: one set of indices and
    weights for all (three map_coordinates calls cost three times the search)."""
    iy, ix = np.floor(y).astype(np.intp), np.floor(x).astype(np.intp)
    fy, fx = y - iy, x - ix
    w = arrays[0].shape[1]
    at = iy * w + ix
    weights = ((1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx)
    out = []
    for array in arrays:
        flat = array.ravel()
        out.append(sum(wk * flat[at + step] for wk, step in zip(weights, (0, 1, w, w + 1), strict=True)))
    return out


def measurable(plane_i: Plane, plane_j: Plane, fit: PairFit, tolerance: float) -> bool:
    """The shift check's verdict on the aligned overlap (a window of it at most _CHECK_POINTS points about its
    centre): does it hold texture enough to tell its shift?"""
    top, left, bottom, right = check_window(fit.box)
    c, s = np.cos(fit.angle), np.sin(fit.angle)
    fy = np.arange(top, bottom, dtype=np.float64)[:, None] - fit.centre[0]
    fx = np.arange(left, right, dtype=np.float64)[None, :] - fit.centre[1]
    coords = np.empty((2, bottom - top, right - left))  # one array of the box's coordinates, filled by rows
    np.add(s * fx + fit.centre[0] + fit.shift[0], c * fy, out=coords[0])
    np.add(c * fx + fit.centre[1] + fit.shift[1], -s * fy, out=coords[1])
    (r0, r1), (c0, c1) = reached(coords[0], plane_i.shape[0]), reached(coords[1], plane_i.shape[1])
    coords[0] -= r0  # exact (whole numbers off): the same values read from the window as from the plane
    coords[1] -= c0
    seen = ndimage.map_coordinates(
        window_of(plane_i, r0, r1, c0, c1), coords, order=1, mode="nearest", output=np.float32
    )
    del coords
    template = window_of(plane_j, top, bottom, left, right)
    gain, offset = _levels(template.ravel(), seen.ravel())
    seen *= np.float32(gain)
    seen += np.float32(offset)
    found = Reference(np.ascontiguousarray(template)).register(seen, tolerance)
    return found is not None and np.hypot(*found) < 0.5


def check_window(box: tuple[int, int, int, int], most: int = _CHECK_POINTS) -> tuple[int, int, int, int]:
    """The part of `box` (top, left, bottom, right) the shift check reads: the whole when it has at most `most`
    points, else a window of about `most` points about its centre, of the box's proportions (its short side not
    under _CHECK_SIDE where the box's is longer)."""
    top, left, bottom, right = box
    h, w = bottom - top, right - left
    if h * w <= most:
        return box
    scale = np.sqrt(most / (h * w))
    nh = max(min(h, _CHECK_SIDE), int(h * scale))
    nw = max(min(w, _CHECK_SIDE), int(w * scale))
    if nh == h:
        nw = max(1, most // nh)
    elif nw == w:
        nh = max(1, most // nw)
    y0, x0 = top + (h - nh) // 2, left + (w - nw) // 2
    return y0, x0, y0 + nh, x0 + nw
