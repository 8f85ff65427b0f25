"""Selection networks: which comparators a rank depends on; how many values a winsorized mean may clamp.

The median is a selection network: Batcher's odd-even merge sort pruned to the comparators the middle rank(s)
depend on. The robust means reuse the idea: winsorized mean is a network pruned to the clamped tails.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np

log = logging.getLogger(__name__)


def sorting_network(n: int) -> list[tuple[int, int]]:
    """Batcher's odd-even merge sort for any n, as comparators (i, j), i < j: min goes to i, max to j."""
    pairs: list[tuple[int, int]] = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


def selection_program(n: int, ranks: Iterable[int]) -> tuple[list[tuple[str, str, str, str]], list[str]]:
    """Straight-line min/max code giving the values of `ranks` (0 = smallest) among inputs a0..a{n-1}.

    The sorting network is written in single-assignment form, then every min or max that no wanted rank depends
    on is dropped. Returns (ops as (target, "min"|"max", x, y), the variable holding each wanted rank).
    """
    wires = [f"a{i}" for i in range(n)]
    ops: list[tuple[str, str, str, str]] = []
    for count, (i, j) in enumerate(sorting_network(n)):
        lo, hi = f"t{2 * count}", f"t{2 * count + 1}"
        ops.append((lo, "min", wires[i], wires[j]))
        ops.append((hi, "max", wires[i], wires[j]))
        wires[i], wires[j] = lo, hi
    outputs = [wires[r] for r in ranks]
    live = set(outputs)
    kept: list[tuple[str, str, str, str]] = []
    for op in reversed(ops):
        if op[0] in live:
            kept.append(op)
            live.update(op[2:])
    kept.reverse()
    return kept, outputs


def winsor_count(n: int, fraction: float) -> int:
    """How many values are clamped at each end: floor(fraction*n), at least 1 for n >= 3, below the middle."""
    g = int(np.floor(fraction * n))
    if n >= 3:
        g = max(g, 1)
    return max(0, min(g, (n - 1) // 2))
