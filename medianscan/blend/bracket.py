"""Multi-exposure: a bracket of median-blended bursts merged linearly on the raw mosaic into one integer DNG.

Each exposure group (same body, ISO and aperture; its own shutter time) is blended on its own first, so noise
and dust go per exposure. The exposure ratios are measured from the data, per CFA colour, over the photosites
well exposed in both groups (the EXIF labels are rounded), and checked against the labels. The merge is per
photosite and inverse-variance weighted: a group of exposure t weighs (t / t_longest)^2, the optimum for
read-noise-limited signal, times a smooth roll-off from ROLL_OFF[0] to ROLL_OFF[1] of its white level, so no
clipped photosite ever contributes and there are no seams. The result, in the longest exposure's units, is
scaled to fit 16 bits; WhiteLevel says where white now is and BaselineExposure brings editors back to the long
exposure's brightness.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from medianscan.errors import StackError
from medianscan.metadata import MosaicLayout
from medianscan.records import BracketGroup, BracketRecord, PairRatio

MIN_GROUP = 3  # frames per exposure group
ROLL_OFF = (0.90, 0.995)  # of a group's white level over black: full weight below, none above
RATIO_TOLERANCE = 0.10  # a measured ratio this far from the labels' is an error (flicker, a setting not landed)
WELL_EXPOSED = (0.02, 0.85)  # photosites both groups expose within this share of the range measure a ratio
MIN_OVERLAP = 500  # photosites per colour both groups expose well, at least
SHADOWS = (0.002, 0.01)  # the longest group's deep shadows (read-noise limited), share of the range: noise figures
UINT16_TOP = 65535
BASELINE_EXPOSURE, SRATIONAL = 50730, 10


@dataclass(frozen=True)
class Exposure:
    """One group's blend and what it was shot at."""

    seconds: float
    label: str
    frames: tuple[str, ...]
    blend: npt.NDArray[np.uint16]
    noise: float  # one frame's noise in the shadows, in this group's DN (from two of its frames)


def _colour_map(layout: MosaicLayout, shape: tuple[int, ...]) -> npt.NDArray[np.uint8]:
    """The colour index of every photosite of the full array."""
    pattern = np.asarray(layout.pattern)
    ph, pw = pattern.shape
    reps = (shape[0] // ph + 1, shape[1] // pw + 1)
    return np.ascontiguousarray(np.tile(pattern, reps)[: shape[0], : shape[1]])


def _letters(layout: MosaicLayout) -> dict[int, str]:
    return {i: layout.colors[i].upper() for i in range(len(layout.colors))}


def frame_noise(a: npt.NDArray[np.generic], b: npt.NDArray[np.generic], mask: npt.NDArray[np.bool_]) -> float:
    """One frame's noise where `mask` is set: the robust spread of the difference of two frames, over sqrt 2."""
    diff = a[mask].astype(np.float32) - b[mask].astype(np.float32)
    if diff.size < 100:
        return float("nan")
    return 1.4826 * float(np.median(np.abs(diff - np.median(diff)))) / math.sqrt(2)


def measure_ratio(
    short: Exposure, long: Exposure, layout: MosaicLayout, colours: npt.NDArray[np.uint8], area: tuple[slice, slice]
) -> PairRatio:
    """long / short per CFA colour over the photosites both expose well; StackError when they share too few or
    the ratio disagrees with the labels."""
    black = np.asarray(layout.black_levels, dtype=np.float32)[colours[area]]
    span = float(layout.white_level) - float(np.mean(layout.black_levels))
    nominal = long.seconds / short.seconds
    measured: dict[str, float] = {}
    names = f"the {short.label} group and the {long.label} group"
    letters = _letters(layout)
    for letter in sorted(set(letters.values())):
        sites = np.isin(colours[area], [i for i, c in letters.items() if c == letter])
        lo = long.blend[area][sites].astype(np.float32) - black[sites]
        sh = short.blend[area][sites].astype(np.float32) - black[sites]
        good = (lo < WELL_EXPOSED[1] * span) & (sh > WELL_EXPOSED[0] * span)  # both well exposed: lo > sh
        if np.count_nonzero(good) < MIN_OVERLAP:
            raise StackError(
                f"{names} share no well-exposed photosites ({letter}: {np.count_nonzero(good)}): their exposures are "
                "too far apart to merge; add a group in between"
            )
        value = float(np.median(lo[good] / sh[good]))
        if abs(value / nominal - 1) > RATIO_TOLERANCE:
            raise StackError(
                f"{names}: the measured exposure ratio ({letter}) is {value:.2f}, the shutter times say {nominal:.2f}: "
                "more than 10 % apart (flicker, or a setting that did not land)"
            )
        measured[letter] = value
    return PairRatio(short.label, long.label, round(nominal, 4), {k: round(v, 4) for k, v in measured.items()})


def _roll_off(u: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """1 below ROLL_OFF[0], 0 above ROLL_OFF[1], a raised cosine between."""
    low, high = ROLL_OFF
    x = np.clip((u - low) / (high - low), 0.0, 1.0)
    weight: npt.NDArray[np.float32] = (0.5 + 0.5 * np.cos(np.pi * x)).astype(np.float32)
    return weight


def merge(
    groups: Sequence[Exposure], layout: MosaicLayout
) -> tuple[npt.NDArray[np.uint16], MosaicLayout, BracketRecord]:
    """The merged mosaic (16-bit, in the longest group's units scaled to fit), its layout and the record."""
    groups = sorted(groups, key=lambda g: g.seconds)
    shape = groups[0].blend.shape
    colours = _colour_map(layout, shape)
    top, left, bottom, right = layout.active_area
    area = (slice(top, bottom), slice(left, right))
    pairs = [measure_ratio(a, b, layout, colours, area) for a, b in itertools.pairwise(groups)]
    # gain of each group to the longest's units, per colour index: the product of the measured ratios above it
    letters = _letters(layout)
    gains = np.ones((len(groups), len(letters)), dtype=np.float64)
    for k in range(len(groups) - 2, -1, -1):
        gains[k] = gains[k + 1] * np.array([pairs[k].measured[letters[i]] for i in range(len(letters))])
    black = np.asarray(layout.black_levels, dtype=np.float32)
    span = float(layout.white_level) - float(black.min())
    longest = groups[-1].seconds
    top_gain = float(gains[0].max())
    scale = (UINT16_TOP - float(black.max())) / (span * top_gain)
    out = np.empty(shape, dtype=np.uint16)
    rows = max(1, (4 << 20) // max(1, shape[1] * 4))
    black_map = black[colours]
    for start in range(0, shape[0], rows):
        band = slice(start, start + rows)
        offset = black_map[band]
        total = np.zeros(offset.shape, dtype=np.float32)
        weights = np.zeros(offset.shape, dtype=np.float32)
        for k, group in enumerate(groups):
            signal = group.blend[band].astype(np.float32) - offset
            weight = _roll_off(signal / np.float32(span)) * np.float32((group.seconds / longest) ** 2)
            total += weight * signal * gains[k].astype(np.float32)[colours[band]]
            weights += weight
        shortest = (groups[0].blend[band].astype(np.float32) - offset) * gains[0].astype(np.float32)[colours[band]]
        merged = np.where(weights > 0, total / np.maximum(weights, np.float32(1e-12)), shortest)
        out[band] = np.clip(np.rint(offset + merged * np.float32(scale)), 0, UINT16_TOP).astype(np.uint16)
    white = min(UINT16_TOP, math.ceil(float(black.min()) + span * top_gain * scale))
    ev = math.log2(top_gain)
    extra = dict(layout.extra_tags)
    before = extra.get(BASELINE_EXPOSURE)
    baseline = ev + (float(np.asarray(before[2], dtype=np.float64).reshape(-1)[0]) if before else 0.0)
    extra[BASELINE_EXPOSURE] = (SRATIONAL, 1, [baseline])
    merged_layout = MosaicLayout(
        pattern=layout.pattern,
        colors=layout.colors,
        black_levels=layout.black_levels,
        white_level=white,
        active_area=layout.active_area,
        default_crop=layout.default_crop,
        color_matrix=layout.color_matrix,
        as_shot_neutral=layout.as_shot_neutral,
        orientation=layout.orientation,
        extra_tags=extra,
    )
    record = BracketRecord(
        groups=tuple(BracketGroup(g.label, g.seconds, g.frames) for g in groups),
        ratios=tuple(pairs),
        roll_off=ROLL_OFF,
        scale=round(scale, 6),
        white_level=white,
        baseline_exposure_ev=round(ev, 4),
        clipped_share=_clipped_share(groups[0], layout, colours, area),
        **_shadow_noise(groups, gains, layout, colours, area),
    )
    return out, merged_layout, record


def _clipped_share(shortest: Exposure, layout: MosaicLayout, colours: np.ndarray, area: tuple[slice, slice]) -> float:
    """Photosites past the roll-off even in the shortest group: clipped in the merge too."""
    black = np.asarray(layout.black_levels, dtype=np.float32)[colours[area]]
    span = float(layout.white_level) - float(np.min(layout.black_levels))
    u = (shortest.blend[area].astype(np.float32) - black) / np.float32(span)
    share: float = round(float(np.count_nonzero(u >= ROLL_OFF[1])) / u.size, 6)
    return share


def _shadow_noise(
    groups: Sequence[Exposure], gains: np.ndarray, layout: MosaicLayout, colours: np.ndarray, area: tuple[slice, slice]
) -> dict[str, float | None]:
    """The merge's noise in the longest group's shadows against the longest group alone and the shortest alone,
    from each group's measured frame noise (in the longest group's units) and the weights."""
    del colours, area, layout
    if any(not math.isfinite(g.noise) for g in groups):
        return {"shadow_noise_vs_longest": None, "shadow_noise_vs_shortest": None}
    longest = groups[-1].seconds
    sigmas = [g.noise * float(np.mean(gains[k])) for k, g in enumerate(groups)]
    weights = [(g.seconds / longest) ** 2 for g in groups]
    merged = math.sqrt(sum((w * s) ** 2 for w, s in zip(weights, sigmas, strict=True))) / sum(weights)
    return {
        "shadow_noise_vs_longest": round(merged / sigmas[-1], 4),
        "shadow_noise_vs_shortest": round(merged / sigmas[0], 4),
    }
