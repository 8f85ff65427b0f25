"""Multi-exposure: a bracket of median-blended bursts merged linearly on the raw mosaic into one integer DNG.

Each exposure group (same body, ISO and aperture; its own shutter time) is blended on its own first, so noise
and dust go per exposure. The exposure ratios are measured from the data, per CFA colour, over the photosites
well exposed in both groups (the EXIF labels are rounded), and checked against the labels. The merge is per
photosite and inverse-variance weighted: a group of exposure t weighs (t / t_longest)^2, the optimum for
read-noise-limited signal, times a smoothstep roll-off from ROLL_OFF[0] to ROLL_OFF[1] of its white level, so no
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

from medianscan.blend.kernels.merge_kernel import merge_rows
from medianscan.errors import StackError
from medianscan.metadata import MosaicLayout, Photosites, headroom, with_headroom
from medianscan.records import BracketGroup, BracketRecord, PairRatio

MIN_GROUP = 3  # frames per exposure group
ROLL_OFF = (0.90, 0.995)  # of a group's white level over black: full weight below, none above
RATIO_TOLERANCE = 0.10  # a measured ratio this far from the labels' is an error (flicker, a setting not landed)
WELL_EXPOSED = (0.02, 0.85)  # photosites both groups expose within this share of the range measure a ratio
MIN_OVERLAP = 500  # photosites per colour both groups expose well, at least (in the sample)
SAMPLE_STEP = 3  # the statistics read every third repeat of the CFA pattern's rows
SHADOWS = (0.002, 0.01)  # the longest group's deep shadows (read-noise limited), share of the range: noise figures


@dataclass(frozen=True)
class Exposure:
    """One group's blend and what it was shot at."""

    seconds: float
    label: str
    frames: tuple[str, ...]
    blend: npt.NDArray[np.uint16]
    noise: float  # one frame's noise in the shadows, in this group's DN (from two of its frames)


def _letters(layout: MosaicLayout) -> dict[int, str]:
    return {i: layout.colors[i].upper() for i in range(len(layout.colors))}


def _positions(layout: MosaicLayout) -> dict[str, list[Photosites]]:
    """Per colour letter, its CFA positions in the active area, every SAMPLE_STEP-th repeat of rows:
    statistics need a sample of the mosaic, not all of it."""
    found: dict[str, list[Photosites]] = {}
    for sites in layout.photosites(layout.active_area, SAMPLE_STEP):
        found.setdefault(layout.colors[sites.colour].upper(), []).append(sites)
    return found


def _sample(image: npt.NDArray[np.generic], layout: MosaicLayout, spots: list[Photosites]) -> np.ndarray:
    """The photosites at `spots` (one colour's positions) over black, as one float32 vector."""
    parts = [
        image[rows, cols].astype(np.float32).ravel() - np.float32(layout.black_levels[index])
        for rows, cols, index in spots
    ]
    return np.concatenate(parts)


def measure_ratio(short: Exposure, long: Exposure, layout: MosaicLayout) -> PairRatio:
    """long / short per CFA colour over the photosites both expose well; StackError when they share too few or
    the ratio disagrees with the labels.

    Each colour is measured on the sample where it holds MIN_OVERLAP such photosites, else on the whole mosaic;
    a colour still short of them (a long exposure that clips nearly all of it) takes the ratio pooled over every
    colour: a shutter ratio is the same for all. Only a pair with too few in all colours together is refused."""
    span = float(layout.white_level) - float(np.mean(layout.black_levels))
    nominal = long.seconds / short.seconds
    names = f"the {short.label} group and the {long.label} group"

    def ratios(spots: list[Photosites]) -> npt.NDArray[np.float32]:
        lo, sh = _sample(long.blend, layout, spots), _sample(short.blend, layout, spots)
        good = (lo < WELL_EXPOSED[1] * span) & (sh > WELL_EXPOSED[0] * span)  # both well exposed: lo > sh
        ratio: npt.NDArray[np.float32] = lo[good] / sh[good]
        return ratio

    sampled = _positions(layout)
    found = {letter: ratios(spots) for letter, spots in sampled.items()}
    whole: dict[str, list[Photosites]] = {}
    for sites in layout.photosites(layout.active_area):
        whole.setdefault(layout.colors[sites.colour].upper(), []).append(sites)
    found |= {letter: ratios(whole[letter]) for letter, values in found.items() if values.size < MIN_OVERLAP}
    pooled = [letter for letter, values in found.items() if values.size < MIN_OVERLAP]
    if pooled:
        together = np.concatenate(list(found.values()))
        if together.size < MIN_OVERLAP:
            counts = ", ".join(f"{letter}: {values.size}" for letter, values in sorted(found.items()))
            raise StackError(
                f"{names} share too few well-exposed photosites ({counts}): their exposures are too far apart to "
                "merge; add a group in between"
            )
        found |= dict.fromkeys(pooled, together)
    measured = {letter: float(np.median(values)) for letter, values in sorted(found.items())}
    for letter, value in measured.items():
        if abs(value / nominal - 1) > RATIO_TOLERANCE:
            raise StackError(
                f"{names}: the measured exposure ratio ({letter}) is {value:.2f}, the shutter times say {nominal:.2f}: "
                "more than 10 % apart (flicker, or a setting that did not land)"
            )
    return PairRatio(
        short.label, long.label, round(nominal, 4), {k: round(v, 4) for k, v in measured.items()}, tuple(pooled)
    )


class ShadowNoise:
    """One frame's noise in the longest group's deep shadows, from two frames of a group: the robust spread of
    their difference over sqrt 2, on a sample of the mosaic (the shadows are found once, in the longest blend)."""

    def __init__(self, longest: npt.NDArray[np.generic], layout: MosaicLayout) -> None:
        span = float(layout.white_level) - float(np.min(layout.black_levels))
        self.layout = layout
        self.spots = list(_positions(layout).values())
        self.masks = []
        for spots in self.spots:
            ref = _sample(longest, layout, spots)
            self.masks.append((ref > SHADOWS[0] * span) & (ref < SHADOWS[1] * span))

    def of(self, a: npt.NDArray[np.generic], b: npt.NDArray[np.generic]) -> float:
        diffs = [
            _sample(a, self.layout, spots)[mask] - _sample(b, self.layout, spots)[mask]
            for spots, mask in zip(self.spots, self.masks, strict=True)
        ]
        diff = np.concatenate(diffs)
        if diff.size < 100:
            return float("nan")
        return 1.4826 * float(np.median(np.abs(diff - np.median(diff)))) / math.sqrt(2)


def _weighted(
    groups: Sequence[Exposure], gains: np.ndarray, layout: MosaicLayout, span: np.float32, scale: float
) -> npt.NDArray[np.uint16]:
    """The weighted merge of every photosite, scaled into 16 bits (the compiled loop of merge_kernel)."""
    blends = np.stack([g.blend for g in groups]) if len(groups) > 1 else groups[0].blend[np.newaxis]
    out = np.empty(blends.shape[1:], dtype=np.uint16)
    longest = groups[-1].seconds
    merge_rows(
        np.ascontiguousarray(blends, dtype=np.uint16),
        np.ascontiguousarray(np.asarray(layout.pattern, dtype=np.uint8)),
        np.asarray(layout.black_levels, dtype=np.float64),
        np.ascontiguousarray(gains, dtype=np.float64),
        np.array([(g.seconds / longest) ** 2 for g in groups], dtype=np.float64),
        float(span),
        ROLL_OFF[0],
        ROLL_OFF[1],
        float(scale),
        out,
    )
    return out


def merge(
    groups: Sequence[Exposure], layout: MosaicLayout
) -> tuple[npt.NDArray[np.uint16], MosaicLayout, BracketRecord]:
    """The merged mosaic (16-bit, in the longest group's units scaled to fit), its layout and the record."""
    groups = sorted(groups, key=lambda g: g.seconds)
    pairs = [measure_ratio(a, b, layout) for a, b in itertools.pairwise(groups)]
    # gain of each group to the longest's units, per colour index: the product of the measured ratios above it
    letters = _letters(layout)
    gains = np.ones((len(groups), len(letters)), dtype=np.float64)
    for k in range(len(groups) - 2, -1, -1):
        gains[k] = gains[k + 1] * np.array([pairs[k].measured[letters[i]] for i in range(len(letters))])
    span = float(layout.white_level) - float(min(layout.black_levels))
    room = headroom(layout, float(gains[0].max()), expand=True)
    out = _weighted(groups, gains, layout, np.float32(span), room.scale)
    record = BracketRecord(
        groups=tuple(BracketGroup(g.label, g.seconds, g.frames) for g in groups),
        ratios=tuple(pairs),
        roll_off=ROLL_OFF,
        scale=round(room.scale, 6),
        white_level=room.white_level,
        baseline_exposure_ev=round(room.baseline_ev, 4),
        clipped_share=_clipped_share(groups[0], layout),
        **_noise_gains(groups, gains),
    )
    return out, with_headroom(layout, room), record


def _clipped_share(shortest: Exposure, layout: MosaicLayout) -> float:
    """Photosites past the roll-off even in the shortest group (a sample): clipped in the merge too."""
    span = float(layout.white_level) - float(np.min(layout.black_levels))
    values = np.concatenate([_sample(shortest.blend, layout, spots) for spots in _positions(layout).values()])
    share: float = round(float(np.count_nonzero(values >= ROLL_OFF[1] * span)) / values.size, 6)
    return share


def _noise_gains(groups: Sequence[Exposure], gains: np.ndarray) -> dict[str, float | None]:
    """The merge's noise in the longest group's deep shadows against the longest group alone and the shortest
    alone, from each group's measured frame noise (in the longest group's units) and the weights."""
    if any(not math.isfinite(g.noise) or g.noise <= 0 for g in groups):  # no noise to compare: copies of a frame
        return {"shadow_noise_vs_longest": None, "shadow_noise_vs_shortest": None}
    longest = groups[-1].seconds
    sigmas = [g.noise * float(np.mean(gains[k])) for k, g in enumerate(groups)]
    weights = [(g.seconds / longest) ** 2 for g in groups]
    merged = math.sqrt(sum((w * s) ** 2 for w, s in zip(weights, sigmas, strict=True))) / sum(weights)
    return {
        "shadow_noise_vs_longest": round(merged / sigmas[-1], 4),
        "shadow_noise_vs_shortest": round(merged / sigmas[0], 4),
    }
