"""Per-pixel combine kernels for a stack of frames: median, mean, sigma-clipped mean, winsorized mean.

Arrays only (no files, no metadata). The median is a selection network (Batcher's odd-even merge sort pruned to
the comparators the middle rank(s) depend on) unrolled for the stack's N into numba source, so each pixel's N
values stay in registers and the loop over a row vectorises: the kernel runs near the speed of reading the stack
once, with no (N, H, W) temporaries. The robust means reuse the same idea: winsorized mean is one pass with a
network pruned to the clamped tails; sigma-clip decides per pixel in one vectorised pass (median, min, max, sums)
whether anything is rejected at all, and runs the exact iterative algorithm only for the pixels where something
is: a vectorised network gives just the ranks it can touch (up to k = 2 rejections per end) and the exact sums,
then short per-pixel rounds finish; only pixels rejecting more go through a full sort (`clip_sorted`).

"winsorized" is the plain winsorized mean (clamp the g lowest and highest values to their neighbours, then
average), not Siril's winsorized sigma clipping: it is one pass with a fixed cost, tolerates up to g outliers at
each end of every pixel by construction, and the iterative kappa-sigma behaviour is already the sigma-clip
method's job.

Generated source is content-addressed (`<kind>_<n>_<hash>.py`) in a cache folder and written atomically, so
numba's `cache=True` can reuse the machine code across processes and concurrent writers never see a partial file.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import math
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from medianscan import atomic
from medianscan.vocabulary import METHODS, Method

SUPPORTED_DTYPES = (np.dtype(np.uint16), np.dtype(np.uint8))
GENERATOR_VERSION = 2  # bump when the generated code's meaning changes without its text changing
CACHE_ENV = "MEDIANSCAN_KERNEL_CACHE"
_CLIP_TILE = 512  # columns per sigma-clip tile: the flagged pixels are re-read while still in L1/L2
_CLIP_BUDGET = 2  # rejected values per end that the vectorised exact clip follows

Kernel = Callable[..., Any]
log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------------------
# Networks


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


def can_reject(n: int, kappa: float) -> bool:
    """Whether sigma-clipping n values at kappa can ever reject one (if not, the clipped mean is the plain mean).

    Even n: no value lies further than sqrt(n-1) sd from the mean (Samuelson) and the median lies within one sd
    of the mean. Odd n, tight: with the median at 0 and the largest deviation D above it, the variance is least
    when (n+1)/2 values sit at 0 and the other (n-3)/2 at the mean, 2D/(n+3) (a convex problem: its KKT point);
    that gives the largest |x - median| / sd (2.58 at n=5, 2.96 at n=7, 3.29 at n=9). A relative margin covers
    rounding.
    """
    if n % 2:
        a = 2.0 / (n + 3)
        bound = 1.0 / math.sqrt(((1.0 - a) ** 2 + (n + 1) / 2 * a * a) / n)
    else:
        bound = math.sqrt(n - 1) + 1
    return kappa <= bound * (1 + 1e-6)


def winsor_count(n: int, fraction: float) -> int:
    """How many values are clamped at each end: floor(fraction*n), at least 1 for n >= 3, below the middle."""
    g = int(np.floor(fraction * n))
    if n >= 3:
        g = max(g, 1)
    return max(0, min(g, (n - 1) // 2))


# ---------------------------------------------------------------------------------------------------------------
# Source generation

_HEADER = """\
# Generated by medianscan.blend.kernels ({kind}, n={n}); do not edit: the file name is a hash of this text.
import math

import numpy as np
from numba import njit, prange
"""

# The exact iterative sigma-clip of one pixel from its sorted values (float64): the kept values are
# always a run lo..hi-1 of the sorted ones, and their sums are updated as the run shrinks (exact: integer-valued
# float64). Kept in every sigma-clip module so the file hash covers it.
_CLIP_SORTED = """

@njit(cache=True, nogil=True)
def clip_sorted(vals, kappa, iterations):
    n = vals.shape[0]
    s1 = 0.0
    s2 = 0.0
    for k in range(n):
        v = vals[k]
        s1 += v
        s2 += v * v
    lo = 0
    hi = n
    for _ in range(iterations):
        cnt = hi - lo
        m = lo + (cnt - 1) // 2
        if cnt % 2 == 1:
            centre = vals[m]
        else:
            centre = (vals[m] + vals[m + 1]) * 0.5
        fc = float(cnt)
        var = (fc * s2 - s1 * s1) / (fc * fc)
        sd = math.sqrt(max(var, 0.0))
        lower = centre - kappa * sd
        upper = centre + kappa * sd
        nlo = lo
        while nlo < hi and vals[nlo] < lower:
            nlo += 1
        nhi = hi
        while nhi > nlo and vals[nhi - 1] > upper:
            nhi -= 1
        if nlo >= nhi:  # everything would go: keep the median
            return int(math.floor(centre + 0.5))
        if nlo == lo and nhi == hi:
            break
        for k in range(lo, nlo):
            v = vals[k]
            s1 -= v
            s2 -= v * v
        for k in range(nhi, hi):
            v = vals[k]
            s1 -= v
            s2 -= v * v
        lo = nlo
        hi = nhi
    cnt = hi - lo
    total = int(s1)
    return (2 * total + cnt) // (2 * cnt)
"""

# A pixel is sent to `clip_sorted` when its first round might reject a value; this float32 test errs towards
# sending (relative margin far above float32's error on n*sum(d^2) - sum(d)^2 with d = value - median).
_CLIP_MARGIN = 1e-4


def _row_prologue(name: str, n: int, args: str, parallel: bool = True, options: str = "") -> list[str]:
    lines = [
        "",
        "",
        f"@njit(parallel={parallel}, cache=True, nogil=True{options})",
        f"def {name}({args}):",
        "    h = out.shape[0]",
        "    w = out.shape[1]",
        "    for y in prange(h):",
    ]
    lines += [f"        s{i} = stack[{i}][y]" for i in range(n)]  # an (N, H, W) array or a tuple of N (H, W) frames
    lines.append("        o = out[y]")
    return lines


def _ops(ops: list[tuple[str, str, str, str]], indent: str) -> list[str]:
    return [f"{indent}{target} = {fn}({x}, {y})" for target, fn, x, y in ops]


def _sum_type(n: int) -> str:
    """float32 sums are exact (and twice as wide per vector) while n * 65535 < 2**24."""
    return "np.float32" if n * 65535 < 2**24 else "float"


def _float_sum(names: Iterable[str], conv: str = "float") -> str:
    return " + ".join(f"{conv}({name})" for name in names)


def _rounded_mean(total: str, n: int) -> str:
    """floor(total/n + 1/2) for an integer-valued total; the +0.25 keeps the reciprocal's error harmless."""
    return f"np.int32((float({total}) + {n / 2 + 0.25!r}) * {1.0 / n!r})"


def median_source(n: int) -> str:
    ranks = sorted({(n - 1) // 2, n // 2})
    ops, outs = selection_program(n, ranks)
    lines = _HEADER.format(kind="median", n=n).splitlines()
    lines += _row_prologue("kernel", n, "stack, out")
    lines.append("        for x in range(w):")
    lines += [f"            a{i} = s{i}[x]" for i in range(n)]
    lines += _ops(ops, "            ")
    if len(outs) == 1:
        lines.append(f"            o[x] = {outs[0]}")
    else:  # the two middle values' mean, rounded half up, without overflowing the dtype
        a, b = outs
        lines.append(f"            o[x] = ({a} >> 1) + ({b} >> 1) + (({a} | {b}) & 1)")
    return "\n".join(lines) + "\n"


def mean_source(n: int) -> str:
    lines = _HEADER.format(kind="mean", n=n).splitlines()
    lines += _row_prologue("kernel", n, "stack, out")
    lines.append("        for x in range(w):")
    lines.append(f"            total = {_float_sum((f's{i}[x]' for i in range(n)), _sum_type(n))}")
    lines.append(f"            o[x] = {_rounded_mean('total', n)}")
    return "\n".join(lines) + "\n"


def winsorized_source(n: int, g: int) -> str:
    """Mean after the g lowest values are raised to rank g and the g highest lowered to rank n-1-g."""
    low, high = list(range(g + 1)), list(range(n - 1 - g, n))
    ops, outs = selection_program(n, low + high)
    low_vars, high_vars = outs[: g + 1], outs[g + 1 :]
    lines = _HEADER.format(kind="winsorized", n=n).splitlines()
    lines += _row_prologue("kernel", n, "stack, out")
    lines.append("        for x in range(w):")
    lines += [f"            a{i} = s{i}[x]" for i in range(n)]
    lines += _ops(ops, "            ")
    conv = _sum_type(n)
    lines.append(f"            total = {_float_sum((f'a{i}' for i in range(n)), conv)}")
    if g:
        tails = _float_sum(low_vars[:g] + high_vars[1:], conv)
        clamps = f"{conv}({float(g)!r}) * ({_float_sum([low_vars[g], high_vars[0]], conv)})"
        lines.append(f"            total = total - ({tails}) + {clamps}")
    lines.append(f"            o[x] = {_rounded_mean('total', n)}")
    return "\n".join(lines) + "\n"


def clip_budget(n: int) -> int:
    """Values per end the vectorised clip follows (k): pixels rejecting more go to `clip_sorted` one by one.

    n >= 2k+1 keeps at least one value however the budget is spent, so 'everything rejected' never happens there.
    """
    return max(0, min(_CLIP_BUDGET, (n - 1) // 2))


def _select(key: str, choices: list[tuple[int, str]]) -> str:
    """An expression for the value paired with `key`'s value among `choices` (ascending integer keys covering every
    value `key` takes): nested selects, which vectorise (no branches), with runs of equal values merged."""
    merged: list[tuple[int, str]] = []
    for at, value in choices:
        if not merged or merged[-1][1] != value:
            merged.append((at, value))
    expr = merged[-1][1]
    for (_, value), (at, _) in zip(reversed(merged[:-1]), reversed(merged[1:]), strict=True):
        expr = f"({value} if {key} < {at - 0.5!r} else {expr})"
    return expr


def clip_rounds(n: int) -> int:
    """Rounds the vectorised clip runs for every flagged pixel; one still rejecting after them goes to
    `clip_sorted`. After an outlier frame is rejected, a second rejection is rare at small n (under 1e-4 of pixels
    at n=9) but common at large n (6% at n=31), where a third round keeps the slow path rare."""
    return min(2 * clip_budget(n) + 1, 2 if n < 12 else 3)


def _clip_ranks(n: int) -> list[int]:
    """The ranks the budgeted clip can look at: 0..k and n-1-k..n-1 (the values it may reject and the first kept
    one beyond) and the middle ranks any kept run lo..hi (lo <= k, hi >= n-k) takes its median from."""
    k = clip_budget(n)
    low = range(k + 1)
    high = range(n - 1 - k, n)
    mid = range((n - k - 1) // 2, (n + k) // 2 + 1)
    return sorted({*low, *high, *mid})


def _clip_block_lines(n: int) -> list[str]:
    """`clip_block`: the exact sigma-clip of f gathered pixels, vectorised over the pixels.

    Input: per pixel the values of `_clip_ranks` (rows of rbuf, from the kernel's vectorised network) and the
    float64 sums of values and squares (exact: integers below 2**53). Per pixel the same float64 rounds as
    `clip_sorted`, reading only those ranks, for `clip_rounds(n)` rounds; the first (nothing rejected yet) is
    specialised. The rounds are unrolled and branch-free: a settled or over-budget pixel just stops moving. A pixel
    that would reject more than k values at one end, or is still rejecting when the rounds run out, gets 65536
    added to its result and is left to `clip_sorted`.
    """
    k = clip_budget(n)
    rounds = clip_rounds(n)
    fk, fn = float(k), float(n)
    ranks = _clip_ranks(n)
    lines = [
        "",
        "",
        '@njit(cache=True, nogil=True, error_model="numpy")',
        "def clip_block(rbuf, pbuf, res, f, kappa, iterations):",
    ]
    lines += [f"    r{r} = rbuf[{j}]" for j, r in enumerate(ranks)]
    lines += ["    p1 = pbuf[0]", "    p2 = pbuf[1]"]
    lines += [f"    live{i} = 1.0 if iterations > {i} else 0.0" for i in range(rounds + 1)]
    lines += ["    for q in range(f):"]
    lines += [f"        v{r} = float(r{r}[q])" for r in ranks]
    lines += ["        t1 = p1[q]", "        t2 = p2[q]"]
    for j in range(1, k + 1):  # sums of the j lowest / highest values
        lines.append(f"        l1_{j} = {' + '.join(f'v{i}' for i in range(j))}")
        lines.append(f"        l2_{j} = {' + '.join(f'v{i} * v{i}' for i in range(j))}")
        lines.append(f"        h1_{j} = {' + '.join(f'v{n - 1 - i}' for i in range(j))}")
        lines.append(f"        h2_{j} = {' + '.join(f'v{n - 1 - i} * v{n - 1 - i}' for i in range(j))}")
    ind = "        "
    sums = range(n - k, n + k + 1)

    def kept_sums() -> list[str]:  # q1, q2: sums over the kept run lo..hi-1
        out = [f"{ind}e = {fn!r} - hi"]
        for s in ("1", "2"):
            low = _select("lo", [(0, "0.0")] + [(j, f"l{s}_{j}") for j in range(1, k + 1)])
            high = _select("e", [(0, "0.0")] + [(j, f"h{s}_{j}") for j in range(1, k + 1)])
            out.append(f"{ind}q{s} = t{s} - {low} - {high}")
        return out

    lines += [f"{ind}lo = 0.0", f"{ind}hi = {fn!r}", f"{ind}bad = 0.0", f"{ind}go = 0.0", f"{ind}moved = 0.0"]
    for i in range(rounds):
        lines.append(f"{ind}# round {i + 1}")
        if i == 0:
            lines += [f"{ind}centre = (v{(n - 1) // 2} + v{n // 2}) * 0.5", f"{ind}fc = {fn!r}", f"{ind}q1 = t1"]
            lines.append(f"{ind}q2 = t2")
        else:
            lines.append(f"{ind}t = lo + hi")
            ca = _select("t", [(s, f"v{(s - 1) // 2}") for s in sums])
            cb = _select("t", [(s, f"v{s // 2}") for s in sums])
            lines += [f"{ind}centre = ({ca} + {cb}) * 0.5", f"{ind}fc = hi - lo"]
            lines += kept_sums()
        lines += [
            f"{ind}var = (fc * q2 - q1 * q1) / (fc * fc)",
            f"{ind}sd = math.sqrt(max(var, 0.0))",
            f"{ind}lower = centre - kappa * sd",
            f"{ind}upper = centre + kappa * sd",
            f"{ind}cl = {' + '.join(f'(v{j} < lower) * 1.0' for j in range(k + 1))}",
            f"{ind}ch = {' + '.join(f'(v{j} > upper) * 1.0' for j in range(n - 1 - k, n))}",
            f"{ind}act = live{i} * (1.0 - bad)",
            f"{ind}over = (max(cl, ch) > {fk!r}) * act",
            f"{ind}bad = bad + over",
            f"{ind}go = act - over",
            f"{ind}nlo = max(lo, cl)",
            f"{ind}nhi = min(hi, {fn!r} - ch)",
            f"{ind}moved = ((nlo != lo) | (nhi != hi)) * go",
            f"{ind}lo = lo + go * (nlo - lo)",
            f"{ind}hi = hi + go * (nhi - hi)",
        ]
    lines.append(f"{ind}bad = max(bad, moved * live{rounds})  # rounds left and still rejecting")
    lines += kept_sums()
    lines += [
        "        fc = hi - lo",
        "        res[q] = np.int32(math.floor((2.0 * q1 + fc) / (2.0 * fc)) + 65536.0 * bad)",
    ]
    return lines


def sigma_clip_source(n: int) -> str:
    """Per tile: a vectorised pass giving every pixel the plain mean and a flag where its first round might
    reject something; then the exact clip, vectorised, for the flagged pixels (gathered into a compact buffer,
    or the whole tile when most are flagged, as with an outlier frame); `clip_sorted` for the rare rest.

    The hot loop stores one int32 per pixel (mean | flag << 16) into a tile buffer: a single store stream keeps
    LLVM's alias checks few enough to vectorise at large N.
    """
    ranks = sorted({0, (n - 1) // 2, n // 2, n - 1})
    ops, outs = selection_program(n, ranks)
    lo_var, mid_a, mid_b, hi_var = outs[0], outs[ranks.index((n - 1) // 2)], outs[ranks.index(n // 2)], outs[-1]
    f32 = "np.float32"
    centre = f"{f32}({mid_a})" if n % 2 else f"({f32}({mid_a}) + {f32}({mid_b})) * {f32}(0.5)"
    clip_ranks = _clip_ranks(n)
    clip_ops, clip_outs = selection_program(n, clip_ranks)
    lines = _HEADER.format(kind="sigma-clip", n=n).splitlines()
    lines += _CLIP_SORTED.splitlines()
    lines += _clip_block_lines(n)
    # error_model numpy: no ZeroDivisionError branch (which stops vectorising) on divisions by counts >= 1
    lines += _row_prologue("kernel", n, "stack, out, kappa, kk, iterations", options=', error_model="numpy"')
    lines += [
        f"        res = np.empty({_CLIP_TILE}, np.int32)",
        f"        idx = np.empty({_CLIP_TILE}, np.int64)",
        f"        cbuf = np.empty(({n}, {_CLIP_TILE}), out.dtype)",
        f"        rbuf = np.empty(({len(clip_ranks)}, {_CLIP_TILE}), out.dtype)",
        f"        pbuf = np.empty((2, {_CLIP_TILE}), np.float64)",
    ]
    lines += [f"        c{i} = cbuf[{i}]" for i in range(n)]
    lines += [f"        g{j} = rbuf[{j}]" for j in range(len(clip_ranks))]
    lines += [
        "        p1 = pbuf[0]",
        "        p2 = pbuf[1]",
        f"        vals = np.empty({n}, np.float64)",
        f"        nf = {f32}({float(n)!r})",
        f"        nn = {f32}({float(n * n)!r})",
        f"        kk32 = {f32}(kk)",
        f"        for x0 in range(0, w, {_CLIP_TILE}):",
        f"            m = min({_CLIP_TILE}, w - x0)",
    ]
    lines += [f"            u{i} = s{i}[x0:x0 + m]" for i in range(n)]
    lines += [
        "            for j in range(m):",
    ]
    lines += [f"                a{i} = u{i}[j]" for i in range(n)]
    lines += _ops(ops, "                ")
    lines += [
        f"                centre = {centre}",
        f"                d1 = {' + '.join(f'({f32}(a{i}) - centre)' for i in range(n))}",
        "                d2 = " + " + ".join(f"({f32}(a{i}) - centre) * ({f32}(a{i}) - centre)" for i in range(n)),
        "                nvar = nf * d2 - d1 * d1",
        f"                dmax = max(centre - {f32}({lo_var}), {f32}({hi_var}) - centre)",
        "                total = d1 + nf * centre",  # exact: half-integers below 2**22
        f"                mean = {_rounded_mean('total', n)}",
        "                res[j] = mean + (65536 if dmax * dmax * nn > kk32 * nvar else 0)",
        "            ot = o[x0:x0 + m]",
        "            for j in range(m):",
        "                ot[j] = res[j] & 65535",
        "            f = 0",
        "            for j in range(m):",
        "                if res[j] > 65535:",
        "                    idx[f] = j",
        "                    f += 1",
        "            if f == 0:",
        "                continue",
        "            if 4 * f > m:  # most flagged (an outlier frame): clip the whole tile, no gather",
    ]
    lines += [f"                c{i}[:m] = u{i}" for i in range(n)]
    lines += [
        "                for j in range(m):",
        "                    idx[j] = j",
        "                f = m",
        "            else:",
        "                for q in range(f):",
        "                    j = idx[q]",
    ]
    lines += [f"                    c{i}[q] = u{i}[j]" for i in range(n)]
    lines += ["            for q in range(f):  # the ranks clip_block reads, then the sums: one loop per output"]
    lines += [f"                a{i} = c{i}[q]" for i in range(n)]
    lines += _ops(clip_ops, "                ")
    lines += [f"                g{j}[q] = {var}" for j, var in enumerate(clip_outs)]
    lines += ["            for q in range(f):"]
    lines.append(f"                p1[q] = {' + '.join(f'float(c{i}[q])' for i in range(n))}")
    lines += ["            for q in range(f):"]
    lines.append(f"                p2[q] = {' + '.join(f'float(c{i}[q]) * float(c{i}[q])' for i in range(n))}")
    lines += ["            clip_block(rbuf, pbuf, res, f, kappa, iterations)"]
    lines += [
        "            for q in range(f):",
        "                r = res[q]",
        "                if r <= 65535:",
        "                    ot[idx[q]] = r",
        "                else:",
    ]
    lines += [f"                    vals[{i}] = float(c{i}[q])" for i in range(n)]
    lines += [
        "                    vals.sort()",
        "                    ot[idx[q]] = clip_sorted(vals, kappa, iterations)",
    ]
    return "\n".join(lines) + "\n"


def floor_source(n: int) -> str:
    """The bandwidth floor the benchmark compares against: read every value once (bitwise OR), nothing else."""
    lines = _HEADER.format(kind="floor", n=n).splitlines()
    lines += _row_prologue("kernel", n, "stack, out")
    lines.append("        for x in range(w):")
    lines.append("            o[x] = " + " | ".join(f"s{i}[x]" for i in range(n)))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# Loading generated kernels


def kernel_dir() -> Path:
    """Where generated kernels (and numba's cache beside them) live: $MEDIANSCAN_KERNEL_CACHE, else XDG cache."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "medianscan" / "kernels"


def _writable_dir(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe.{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError:
        folder = Path(tempfile.gettempdir()) / f"medianscan-kernels-{os.getuid()}"
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def _source(kind: str, n: int, g: int) -> str:
    if kind == "median":
        return median_source(n)
    if kind == "mean":
        return mean_source(n)
    if kind == "winsorized":
        return winsorized_source(n, g)
    if kind == "sigma-clip":
        return sigma_clip_source(n)
    if kind == "floor":
        return floor_source(n)
    raise ValueError(f"unknown kernel kind {kind!r}")


_LOAD_LOCK = threading.Lock()  # one writer per process: the atomic temp name is per process


@functools.cache
def load_kernel(kind: str, n: int, g: int = 0) -> Kernel:
    """The numba kernel `kind` for stacks of n frames (g: values clamped per end, winsorized only).

    The source file is only written when absent, atomically, under a name that is the hash of its content: a
    second process either finds the finished file or writes the identical bytes, so numba's cache stays valid.
    """
    with _LOAD_LOCK:
        return _load_kernel(kind, n, g)


def _load_kernel(kind: str, n: int, g: int) -> Kernel:
    source = _source(kind, n, g)
    digest = hashlib.sha256(f"{GENERATOR_VERSION}\n{source}".encode()).hexdigest()[:16]
    tag = kind.replace("-", "_") + (f"_{n}_{g}" if kind == "winsorized" else f"_{n}")
    folder = _writable_dir(kernel_dir())
    path = folder / f"{tag}_{digest}.py"
    data = source.encode()
    if not path.is_file() or path.read_bytes() != data:
        atomic.write_bytes(path, data)
    name = f"_medianscan_kernel_{tag}_{digest}"
    module = sys.modules.get(name)
    fresh = module is None and not any((folder / "__pycache__").glob(f"{path.stem}.kernel-*.nbi"))  # numba's index
    if fresh:
        log.info(
            "compiling the %s kernel for %d frames (first use only, then cached in %s): %s",
            kind,
            n,
            folder,
            "up to a minute or two" if kind == "sigma-clip" else "a few seconds",
        )
    if module is None:  # registered first: numba's cache re-imports the module by name when loading
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:  # pragma: no cover - only for a vanished cache folder
            raise ImportError(f"cannot load generated kernel {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    kernel: Kernel = module.kernel
    return _timed_first_call(kernel, f"the {kind} kernel for {n} frames") if fresh else kernel


def _timed_first_call(kernel: Kernel, what: str) -> Kernel:
    """The kernel, saying how long its first call took: numba compiles it then, not at load."""
    first = [True]

    def call(*args: Any) -> Any:
        if not first[0]:
            return kernel(*args)
        started = time.perf_counter()
        result = kernel(*args)
        first[0] = False
        log.info("compiled %s in %.1f s", what, time.perf_counter() - started)
        return result

    return call


# ---------------------------------------------------------------------------------------------------------------
# Public API


def new_stack(n: int, shape: tuple[int, ...], dtype: npt.DTypeLike = np.uint16) -> npt.NDArray[Any]:
    """A C-contiguous (n, *shape) buffer with every page already touched.

    A long-lived worker allocates this once and decodes each burst into it: first touches of fresh memory cost
    page faults (seconds for gigabytes here) that a reused buffer pays only once.
    """
    stack = np.empty((n, *shape), dtype=dtype)
    stack.fill(0)
    return stack


Frames = npt.NDArray[Any] | Sequence[npt.NDArray[Any]]  # one (N, H, W[, C]) array, or N (H, W[, C]) frames


def _as_rows(stack: Frames) -> tuple[npt.NDArray[Any] | tuple[npt.NDArray[Any], ...], tuple[int, ...], np.dtype[Any]]:
    """What the kernels read: an (N, H, W*C) array or a tuple of N (H, W*C) frames (no copies for C-contiguous
    input), with the frame shape and dtype; anything else is a ValueError saying what is wrong."""
    if isinstance(stack, np.ndarray):
        if stack.ndim not in (3, 4):
            raise ValueError(f"stack must be (N, H, W) or (N, H, W, C), got shape {stack.shape}")
        if stack.shape[0] < 1:
            raise ValueError("stack has no frames")
        if stack.ndim == 4 and not stack.flags.c_contiguous:
            raise ValueError("an (N, H, W, C) stack must be C-contiguous")
        shape, dtype = stack.shape[1:], stack.dtype
        rows: npt.NDArray[Any] | tuple[npt.NDArray[Any], ...] = (
            stack.reshape(stack.shape[0], stack.shape[1], -1) if stack.ndim == 4 else stack
        )
    else:
        frames = tuple(stack)
        if not frames or not all(isinstance(f, np.ndarray) for f in frames):
            raise ValueError("stack must be a numpy array or a non-empty sequence of numpy arrays")
        shape, dtype = frames[0].shape, frames[0].dtype
        if len(shape) not in (2, 3) or any(f.shape != shape or f.dtype != dtype for f in frames):
            raise ValueError(f"frames must all be (H, W) or (H, W, C) of one shape and dtype, got {shape} {dtype}")
        if len(shape) == 3 and not all(f.flags.c_contiguous for f in frames):
            raise ValueError("(H, W, C) frames must be C-contiguous")
        rows = tuple(_read_only(f.reshape(shape[0], -1)) for f in frames)
    if dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"stack dtype must be uint16 or uint8, got {dtype}")
    return rows, shape, dtype


def _read_only(rows: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """A read-only view: numba compiles one kernel per writeable flag, so every sequence of frames (memory-mapped
    TIFFs, decoded JPEGs) shares the one `warm_up(..., frames_apart=True)` loads."""
    view = rows.view()
    view.flags.writeable = False
    return view


def _check_out(out: npt.NDArray[Any] | None, shape: tuple[int, ...], dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    if out is None:
        return np.empty(shape, dtype=dtype)
    if out.shape != shape or out.dtype != dtype:
        raise ValueError(f"out must be {shape} {dtype}, got {out.shape} {out.dtype}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be a writeable C-contiguous array")
    return out


def combine(
    stack: Frames,
    method: Method = "median",
    *,
    kappa: float = 3.0,
    iterations: int = 5,
    winsor_fraction: float = 0.2,
    out: npt.NDArray[Any] | None = None,
) -> npt.NDArray[Any]:
    """Combine an (N, H, W) or (N, H, W, C) uint16/uint8 stack, or a sequence of N such frames (memory-mapped
    files, say: read where they lie, never gathered), into one frame of the same dtype.

    - median: odd N bit-identical to `np.median(stack, axis=0)`; even N the two middle values' mean, rounded half
      up.
    - mean: arithmetic mean, rounded half up.
    - sigma-clip: repeat up to `iterations` times: centre = median of the kept values, sd = their standard
      deviation (ddof 0), drop values below centre - kappa*sd or above centre + kappa*sd; stop early when nothing
      changes. Result: the kept values' mean, rounded half up; if a round would drop everything, that round's
      median (rounded half up). Same rules as astropy's `sigma_clip(cenfunc="median", stdfunc="std")`.
    - winsorized: g = floor(winsor_fraction*N) values (at least 1 when N >= 3, fewer than half) at each end are
      replaced by their nearest kept neighbour (ranks g and N-1-g), then the mean, rounded half up.
    A non-contiguous stack works but is slower; `out` (C-contiguous, shape[1:], same dtype) is filled and returned.
    """
    if not isinstance(stack, np.ndarray | Sequence):
        raise TypeError(f"stack must be a numpy array or a sequence of them, not {type(stack).__name__}")
    if method not in METHODS:
        raise ValueError(f"unknown combine method {method!r}; choose one of {', '.join(METHODS)}")
    if not kappa > 0:
        raise ValueError(f"kappa must be positive, got {kappa}")
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    if not 0 <= winsor_fraction < 0.5:
        raise ValueError(f"winsor_fraction must be in [0, 0.5), got {winsor_fraction}")
    view, shape, dtype = _as_rows(stack)
    result = _check_out(out, shape, dtype)
    n = len(view)
    if n == 1 or result.size == 0:
        result[...] = view[0].reshape(shape) if n == 1 else 0
        return result
    target = result.reshape(shape[0], -1)
    if method == "median":
        load_kernel("median", n)(view, target)
    elif method == "mean" or (method == "sigma-clip" and (iterations == 0 or not can_reject(n, kappa))):
        load_kernel("mean", n)(view, target)
    elif method == "sigma-clip":
        kk = float(kappa) ** 2 * (1.0 - _CLIP_MARGIN)
        load_kernel("sigma-clip", n)(view, target, float(kappa), kk, int(iterations))
    else:
        g = winsor_count(n, winsor_fraction)
        load_kernel("winsorized", n, g)(view, target) if g else load_kernel("mean", n)(view, target)
    return result


def warm_up(
    n_frames: int,
    dtype: npt.DTypeLike = np.uint16,
    methods: Iterable[Method] = METHODS,
    *,
    kappa: float = 3.0,
    iterations: int = 5,
    winsor_fraction: float = 0.2,
    frames_apart: bool = False,
) -> None:
    """Compile (first time: ~1-6 s per kernel, sigma-clip 10-70 s at N = 5-31) or load from numba's cache (~0.3 s)
    the kernels for n_frames, as `combine` will call them with these parameters.

    Call it when a worker starts so the first blend does not pay for it. Pass only the configured method to
    save time. `frames_apart`: for a sequence of frames (memory-mapped files, say) rather than one array.
    """
    tiny = np.zeros((n_frames, 2, 3), dtype=dtype)
    stack: Frames = tiny
    if frames_apart:
        stack = list(tiny)
    for method in methods:
        combine(stack, method, kappa=kappa, iterations=iterations, winsor_fraction=winsor_fraction)
