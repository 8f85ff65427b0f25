"""Flat-field correction on the raw mosaic: the light panel's unevenness, the lens falloff and sensor dust,
taken out of every negative before its DNG is written.

The master flat is a medianscan blend of frames of the bare light (its noise already down by the median). Each
CFA position is a plane of same-colour photosites, whatever the CFA (2x2 Bayer, 6x6 X-Trans): it is smoothed on
its own, robustly (block means, a median that ignores dust, a Gaussian), so the flat's noise does not print into
the negatives. Where the flat shows a local dip clearly beyond its noise (the shadow of dust on the sensor or
the lens, which sits at the same place in every negative) the correction takes the flat's own local value
instead, so the shadow divides out. Each position is normalised to its own centre value: the falloff goes and
the light's colour balance stays. Nothing is clipped: the corrected values keep their headroom above the
sensor's white level, or, where 16 bits cannot hold it, the gains are scaled down; the record says which. The
DNG's WhiteLevel is raised only as far as the corrected data reach, not by the whole gain (levels.tightened, after
`apply`), and BaselineExposure brings the brightness back: darktable and RawTherapee ignore BaselineExposure, so
headroom the data do not use would develop darker there.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from medianscan.blend.reading.frames import Frame, read_frame
from medianscan.blend.reading.recorded import recorded_frames
from medianscan.errors import StackError
from medianscan.metadata import UINT16_TOP, MosaicLayout, headroom, with_headroom
from medianscan.records import FlatRecord

SMALL_SIDE = 96  # each plane is smoothed at about this many block means on its short side
DUST_SIGMAS = 5.0  # a dip this many times the flat's local noise is a dust shadow...
DUST_DEPTH = 0.02  # ...and at least this deep
DUST_GROW = 2  # same-colour photosites around a detected shadow that take their own value too (its soft edge)
CLIPPED_SHARE = 1e-4  # a flat with more photosites than this at white is clipped
DARKEST = 0.05  # a flat whose centre is below this share of the raw range is too dark to divide by
DEEPEST = 0.1  # nor may any smoothed value fall below this share of its centre (gains over 10x)
STRUCTURE = 0.03  # a smoothed flat further than this (RMS, relative) from a smooth surface holds a picture


class FlatError(StackError):
    """A flat that cannot correct this stack; the message names the flat's file and the reason."""


@dataclasses.dataclass(frozen=True)
class MasterFlat:
    """The gains of one master flat, per photosite of the full sensor array (1 outside the active area)."""

    source: Path
    frame: Frame  # the master flat's own metadata and layout (its pixels are dropped)
    gain: npt.NDArray[np.float32]
    dust_photosites: int
    frames_sha256: tuple[str, ...]
    problem: str | None = None  # why it is no flat (too dark, clipped, a picture), held until check_matches

    def check_matches(self, negative: Frame) -> None:
        """The flat must come from this camera, at this size, CFA, ISO and aperture, and be a flat; the camera,
        size and CFA are named first (a flat of another camera is that, whatever else it is)."""
        flat, name = self.frame, self.source
        if negative.layout is not None and negative.layout.linear:
            raise FlatError(
                f"{name}: cannot correct {negative.path.name}: a flat field corrects colour-filter mosaics, and this "
                "raw holds linear RGB (correct it in your editor instead)"
            )
        problems = []
        if (flat.camera.model, flat.camera.serial) != (negative.camera.model, negative.camera.serial):
            problems.append(f"it comes from another camera ({_body(flat)}, the negative from {_body(negative)})")
        if flat.pixels.shape != negative.pixels.shape:
            problems.append(f"its size is {_size(flat)}, the negative's {_size(negative)}")
        fl, nl = flat.layout, negative.layout
        if fl is None or nl is None or fl.colors != nl.colors or not np.array_equal(fl.pattern, nl.pattern):
            problems.append("its colour filter pattern differs from the negative's")
        for label, a, b in (
            ("ISO", flat.exposure.iso, negative.exposure.iso),
            ("aperture f/", flat.exposure.f_number, negative.exposure.f_number),
        ):
            if a is not None and b is not None and not math.isclose(a, b, rel_tol=0.01):
                problems.append(f"it was shot at {label}{a:g}, the negative at {label}{b:g}")
        if problems:
            raise FlatError(f"{name}: cannot correct {negative.path.name} with this flat: {'; '.join(problems)}")
        if self.problem is not None:
            raise FlatError(self.problem)

    def apply(self, mosaic: npt.NDArray[np.uint16], layout: MosaicLayout) -> tuple[MosaicLayout, FlatRecord]:
        """Correct `mosaic` in place; the layout with its white level and BaselineExposure raised by the whole gain
        (which the writer lowers to what the data reach: levels.tightened) and what was done, for the sidecar."""
        black = np.asarray(layout.black_levels, dtype=np.float32)[np.asarray(layout.pattern)]
        ph, pw = black.shape
        room = headroom(layout, float(self.gain.max()), expand=False)
        scale = room.scale
        rows = max(ph, (1 << 20) // max(1, mosaic.shape[1]) // ph * ph)
        for start in range(0, mosaic.shape[0], rows):
            band = mosaic[start : start + rows]
            offset = np.tile(np.roll(black, -start, axis=0), (band.shape[0] // ph + 1, band.shape[1] // pw + 1))
            offset = offset[: band.shape[0], : band.shape[1]]
            values = band.astype(np.float32) - offset
            values *= self.gain[start : start + rows] * np.float32(scale)
            values += offset
            np.clip(np.rint(values, out=values), 0, UINT16_TOP, out=values)
            band[...] = values
        active = self.gain[self._active(layout)]
        record = FlatRecord(
            source=self.source,
            frames_sha256=self.frames_sha256,
            gain_range=(float(active.min()) * scale, float(active.max()) * scale),
            dust_photosites=self.dust_photosites,
            clip="headroom" if scale == 1.0 else "scaled",
            white_level=room.white_level,
            baseline_exposure_ev=round(room.baseline_ev, 4),
        )
        return with_headroom(layout, room), record

    @staticmethod
    def _active(layout: MosaicLayout) -> tuple[slice, slice]:
        top, left, bottom, right = layout.active_area
        return slice(top, bottom), slice(left, right)


def _body(frame: Frame) -> str:
    return " ".join(x for x in (frame.camera.model, frame.camera.serial and f"#{frame.camera.serial}") if x) or "?"


def _size(frame: Frame) -> str:
    return "x".join(str(v) for v in reversed(frame.pixels.shape))


@functools.lru_cache(maxsize=4)
def _load(path: Path, stamp: int, frames_sha256: tuple[str, ...]) -> MasterFlat:
    del stamp  # part of the key only: a flat rewritten in place is read again
    frame, meta = _read(path)
    assert frame.layout is not None
    try:
        gain, dust = flat_gains(path, frame.pixels.astype(np.uint16, copy=False), frame.layout)
    except FlatError as exc:
        return MasterFlat(path, meta, np.ones(frame.pixels.shape, np.float32), 0, frames_sha256, str(exc))
    return MasterFlat(path, meta, gain, dust, frames_sha256)


def _read(path: Path) -> tuple[Frame, Frame]:
    """The flat's frame, and the same without its pixels (their shape only) for the MasterFlat."""
    frame = read_frame(path, "raw", None)
    if frame.layout is None or frame.layout.linear:
        raise FlatError(f"{path}: not a raw flat (a flat must be a raw blend of the bare light, from a mosaic sensor)")
    return frame, dataclasses.replace(frame, pixels=np.broadcast_to(np.uint8(0), frame.pixels.shape))


def _recorded(path: Path) -> tuple[int, tuple[str, ...]]:
    """The flat's modification stamp and the hashes of the frames its sidecar says it was blended from."""
    try:
        stamp = path.stat().st_mtime_ns
    except OSError as exc:
        raise FlatError(f"{path}: cannot read the flat ({exc.strerror})") from exc
    recorded = recorded_frames(path.with_suffix(".json")) or {}
    return stamp, tuple(recorded[name] for name in sorted(recorded))


def load_master(path: Path, *, match_first: bool = False, keep: bool = True) -> MasterFlat:
    """The master flat in the DNG `path` (kept while the file is unchanged, for the next negatives of the roll;
    not with `keep` False, for a caller that holds its gains its own way), with the hashes of the frames its
    sidecar says it was blended from. A flat that is no flat is a FlatError, unless `match_first`: then it comes
    back holding its problem, which `check_matches` raises after naming a camera, size or CFA that does not match
    (a flat of another camera is refused as that, not as too dark)."""
    stamp, frames_sha256 = _recorded(path)
    load = _load if keep else _load.__wrapped__
    master = load(path, stamp, frames_sha256)
    if master.problem is not None and not match_first:
        raise FlatError(master.problem)
    return master


def master_by_planes(path: Path) -> tuple[MasterFlat, Iterator[PlaneGain]]:
    """The master flat in `path` without its gains (an empty array: `check_matches` reads its frame only), and
    those gains one CFA position at a time, made as they are asked for and never cached: for a caller that holds
    them its own way. A flat that is no flat is a FlatError, raised as its planes are made."""
    _, frames_sha256 = _recorded(path)
    frame, meta = _read(path)
    assert frame.layout is not None
    master = MasterFlat(path, meta, np.empty((0, 0), np.float32), 0, frames_sha256)
    return master, flat_planes(path, frame.pixels.astype(np.uint16, copy=False), frame.layout)


def flat_gains(name: Path, mosaic: npt.NDArray[np.uint16], layout: MosaicLayout) -> tuple[npt.NDArray[np.float32], int]:
    """Gain per photosite (reference / flat) and the number of dust photosites; FlatError for a bad flat."""
    gain = np.ones(mosaic.shape, dtype=np.float32)
    dust = 0
    for part in flat_planes(name, mosaic, layout):
        gain[part.rows, part.cols] = part.gain
        dust += part.dust
    return gain, dust


@dataclasses.dataclass(frozen=True)
class PlaneGain:
    """The gains of one CFA position over the active area: `gain` is the full array's [rows, cols]."""

    rows: slice
    cols: slice
    gain: npt.NDArray[np.float32]
    dust: int


def flat_planes(name: Path, mosaic: npt.NDArray[np.uint16], layout: MosaicLayout) -> Iterator[PlaneGain]:
    """The gains one CFA position at a time, each made only when asked for: a caller that holds the gains its own
    way (the stitch, as 16-bit steps) never has the whole sensor's as float32 (96 MB at 24 MP) beside the flat.
    FlatError for a bad flat, at the plane that shows it."""
    top, left, bottom, right = layout.active_area
    raw_range = layout.white_level - float(np.mean(layout.black_levels))
    at_white = np.count_nonzero(mosaic[top:bottom, left:right] >= layout.white_level)
    if at_white > CLIPPED_SHARE * (bottom - top) * (right - left):
        share = at_white / ((bottom - top) * (right - left))
        raise FlatError(f"{name}: the flat is clipped ({share:.2%} of its photosites at white): shoot it darker")
    for rows, cols, index in layout.photosites(layout.active_area):
        plane = mosaic[rows, cols].astype(np.float32)
        plane -= np.float32(layout.black_levels[index])
        corrected, found = _plane_gain(name, plane, raw_range, layout.colors[index])
        del plane
        yield PlaneGain(rows, cols, corrected, found)


def _plane_gain(
    name: Path, plane: npt.NDArray[np.float32], raw_range: float, colour: str
) -> tuple[npt.NDArray[np.float32], int]:
    """The plane's gains (`plane` is used up: its values are overwritten). Each full-plane array is made once and
    reused in place, and the shadow test runs by bands of rows: at most three plane-sized float32 arrays at once."""
    # A shadow is a photosite clearly below the smooth flat: beyond DUST_SIGMAS times the master flat's own noise
    # per photosite (already a median of several frames) and at least DUST_DEPTH deep. Photosite by photosite,
    # because on a sparse CFA plane (X-Trans red and blue) a shadow a few photosites wide covers one or two.
    steps = np.diff(plane, axis=1)
    noise = 1.4826 * float(np.median(np.abs(steps, out=steps), overwrite_input=True)) / math.sqrt(2)
    del steps  # before the smoothing: a 24 MP flat's plane is 24 MB a copy
    smooth, small = _smooth(plane)
    h, w = plane.shape
    centre = smooth[h * 9 // 20 : h * 11 // 20 + 1, w * 9 // 20 : w * 11 // 20 + 1]
    reference = float(np.median(centre))
    if reference < DARKEST * raw_range:
        raise FlatError(
            f"{name}: the flat is too dark to divide by ({colour} at {reference / raw_range:.1%} of the raw range "
            f"in the centre, at least {DARKEST:.0%} needed): shoot it brighter"
        )
    if float(small.min()) < DEEPEST * reference:
        raise FlatError(
            f"{name}: the flat falls below {DEEPEST:.0%} of its centre ({colour}): too dark there to divide by; "
            "is the light source covering the whole frame?"
        )
    structure = _structure(small)
    if structure > STRUCTURE:
        raise FlatError(
            f"{name}: this is not a flat: after smoothing it still holds structure ({structure:.1%} from a smooth "
            f"light, {STRUCTURE:.0%} at most): shoot the bare light source without film"
        )
    shadow = np.empty(plane.shape, dtype=bool)
    band = max(1, (1 << 18) // max(1, w))
    for start in range(0, h, band):
        part = slice(start, start + band)
        below = smooth[part] - plane[part]
        shadow[part] = (below > DUST_DEPTH * smooth[part]) & (below > DUST_SIGMAS * noise)
    if shadow.any():
        shadow = ndimage.binary_dilation(shadow, iterations=DUST_GROW)  # and its soft edge
        np.copyto(smooth, np.maximum(plane, 1.0, out=plane), where=shadow)  # the flat: its own value there
    gain = np.maximum(smooth, np.float32(1.0), out=smooth)
    return np.divide(np.float32(reference), gain, out=gain), int(shadow.sum())


def _smooth(plane: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The plane smoothed robustly, at full size and as its small block means (for the checks)."""
    h, w = plane.shape
    block = max(1, min(h, w) // SMALL_SIDE)
    sh, sw = h // block, w // block
    small = plane[: sh * block, : sw * block].reshape(sh, block, sw, block).mean(axis=(1, 3), dtype=np.float32)
    small = ndimage.median_filter(small, size=5, mode="nearest")  # dust and specks carry no weight
    small = ndimage.gaussian_filter(small, sigma=1.0, mode="nearest")
    full = ndimage.zoom(small, (h / sh, w / sw), order=1, mode="nearest", grid_mode=True)
    return full[:h, :w].astype(np.float32, copy=False), small


def _structure(small: npt.NDArray[np.float32]) -> float:
    """RMS distance, relative to its mean, of the smoothed flat from a 4th-order surface (light and falloff)."""
    h, w = small.shape
    y, x = np.mgrid[0:h, 0:w]
    y = (y.ravel() - (h - 1) / 2) / max(1, h / 2)
    x = (x.ravel() - (w - 1) / 2) / max(1, w / 2)
    terms = np.stack([x**i * y**j for i in range(5) for j in range(5 - i)], axis=1)
    values = small.ravel().astype(np.float64)
    fit = np.linalg.solve(terms.T @ terms, terms.T @ values)  # 15 terms, well conditioned: 8x quicker than lstsq
    return float(np.sqrt(np.mean((terms @ fit - values) ** 2)) / max(1e-9, values.mean()))
