"""How much noise each combine method leaves of N frames that differ only in Gaussian noise: its variance as a
multiple of the mean's (sigma^2 / N). What `frames: auto` predicts with, and what the blend's SNR is checked by.

- mean: 1.
- median: exact, from the order statistics of N standard normals (the variance of the middle one, or of the
  mean of the middle two for even N), integrated numerically once (scipy.integrate, 64 digits of N below;
  `tests/test_frames_auto.py` integrates some of them again): 1.346 at N = 3, 1.495 at 9, towards pi/2.
- sigma-clip and winsorized: measured with the blend's own kernels on Gaussian noise (they depend on kappa, the
  rounds and the fraction), once per method, parameters and N, and kept.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from medianscan.blend.kernels.combine import combine
from medianscan.config.schema import BlendConfig

MEDIAN_VARIANCE = (  # N x Var(median of N standard normals), N = 1..64
    1.0, 1.0, 1.346, 1.1928, 1.4342, 1.2885, 1.4731, 1.3454, 1.4949, 1.3833, 1.5088, 1.4102, 1.5184, 1.4303,
    1.5254, 1.446, 1.5308, 1.4585, 1.535, 1.4687, 1.5385, 1.4773, 1.5413, 1.4845, 1.5437, 1.4906, 1.5457, 1.496,
    1.5474, 1.5007, 1.5489, 1.5048, 1.5503, 1.5085, 1.5514, 1.5117, 1.5525, 1.5147, 1.5534, 1.5174, 1.5543,
    1.5198, 1.5551, 1.522, 1.5558, 1.524, 1.5564, 1.5259, 1.557, 1.5276, 1.5575, 1.5292, 1.558, 1.5307, 1.5585,
    1.5321, 1.5589, 1.5334, 1.5593, 1.5346, 1.5597, 1.5357, 1.5601, 1.5368,
)  # fmt: skip
_SAMPLES = 1 << 17  # Gaussian values per measurement of a robust mean: its factor to about 0.5 %
_SPREAD = 200.0  # their sigma in DN, around mid-range: no clipping, no rounding to speak of


def variance_factor(method: str, n: int, blend: BlendConfig | None = None) -> float:
    """N x the variance of the `method` blend of N frames of unit-variance noise (1 for the mean)."""
    if n < 1:
        raise ValueError(f"a blend of {n} frames")
    if method == "mean" or n <= 2:
        return 1.0
    if method == "median":
        if n <= len(MEDIAN_VARIANCE):
            return MEDIAN_VARIANCE[n - 1]
        # beyond the table: pi/2 with the table's own last correction, which shrinks as 1/N
        last = len(MEDIAN_VARIANCE) if n % 2 == len(MEDIAN_VARIANCE) % 2 else len(MEDIAN_VARIANCE) - 1
        return math.pi / 2 - (math.pi / 2 - MEDIAN_VARIANCE[last - 1]) * last / n
    cfg = blend or BlendConfig()
    return _measured(method, n, cfg.kappa, cfg.iterations, cfg.winsor_fraction)


@functools.lru_cache(maxsize=512)
def _measured(method: str, n: int, kappa: float, iterations: int, winsor_fraction: float) -> float:
    rng = np.random.default_rng(n)
    noise = rng.standard_normal((n, 1, _SAMPLES)) * _SPREAD + 32768.0
    stack = np.rint(noise).astype(np.uint16)
    blended = combine(stack, method, kappa=kappa, iterations=iterations, winsor_fraction=winsor_fraction)  # type: ignore[arg-type]
    mean = np.rint(stack.astype(np.float64).mean(axis=0))
    # against the mean of the same frames (rounded alike), so the sampling error of the samples cancels
    return float(np.var(blended.astype(np.float64)) / np.var(mean))


def blend_snr(single_snr: float, method: str, n: int, blend: BlendConfig | None = None) -> float:
    """The SNR `n` frames of one-frame SNR `single_snr` give, blended by `method`."""
    return single_snr * math.sqrt(n / variance_factor(method, n, blend))


def frames_for(
    single_snr: float, target: float, method: str, *, least: int, most: int, blend: BlendConfig | None = None
) -> int:
    """The fewest frames in [least, most] whose blend reaches `target`; `most` when none does."""
    for n in range(least, most + 1):
        if blend_snr(single_snr, method, n, blend) >= target:
            return n
    return most
