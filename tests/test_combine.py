"""The combine kernels against straightforward NumPy float64 references written here.

Arrays are small so the run stays short; each N compiles once (~1-5 s) and then loads from numba's cache.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from medianscan.blend import codegen, combine, kernel_build, kernel_cache, networks
from medianscan.cli import main
from medianscan.vocabulary import METHODS

MEDIAN_NS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 15, 16, 17, 21, 31, 33)
ROBUST_NS = (3, 4, 9, 15)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def random_stack(n: int, shape: tuple[int, ...] = (5, 37), dtype: type = np.uint16, seed: int = 0) -> np.ndarray:
    top = np.iinfo(dtype).max
    return rng(seed).integers(0, top + 1, size=(n, *shape), dtype=dtype)


def adversarial_stacks(n: int, dtype: type = np.uint16) -> list[np.ndarray]:
    """Ties, all-equal, the dtype's extremes, a few distinct levels, sorted and reversed frames."""
    top = int(np.iinfo(dtype).max)
    gen = rng(n)
    shape = (4, 29)
    return [
        np.zeros((n, *shape), dtype),
        np.full((n, *shape), top, dtype),
        gen.choice(np.array([0, top], dtype), size=(n, *shape)),
        gen.choice(np.array([0, 1, 2, top - 1, top], dtype), size=(n, *shape)),
        np.sort(random_stack(n, shape, dtype, seed=n + 1), axis=0),
        np.sort(random_stack(n, shape, dtype, seed=n + 2), axis=0)[::-1].copy(),
    ]


# ---- references (float64, per pixel, as plain as possible) ------------------------------------------------------


def round_half_up(x: np.ndarray | float) -> np.ndarray:
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5)


def ref_median(stack: np.ndarray) -> np.ndarray:
    n = stack.shape[0]
    if n % 2:
        return np.asarray(np.median(stack, axis=0)).astype(stack.dtype)
    s = np.sort(stack.astype(np.int64), axis=0)
    return np.asarray((s[n // 2 - 1] + s[n // 2] + 1) // 2).astype(stack.dtype)


def ref_mean(stack: np.ndarray) -> np.ndarray:
    return round_half_up(stack.astype(np.float64).mean(axis=0)).astype(stack.dtype)


def ref_sigma_clip_pixel(values: np.ndarray, kappa: float, iterations: int) -> float:
    """astropy-style: centre median, sd std (ddof 0) of the kept values, reject outside centre -/+ kappa*sd."""
    kept = values.astype(np.float64)
    for _ in range(iterations):
        centre = float(np.median(kept))
        sd = float(np.std(kept))
        keep = (kept >= centre - kappa * sd) & (kept <= centre + kappa * sd)
        if not keep.any():
            return math.floor(centre + 0.5)
        if keep.all():
            break
        kept = kept[keep]
    return float(round_half_up(kept.mean()))


def ref_sigma_clip(stack: np.ndarray, kappa: float = 3.0, iterations: int = 5) -> np.ndarray:
    flat = stack.reshape(stack.shape[0], -1)
    out = [ref_sigma_clip_pixel(flat[:, i], kappa, iterations) for i in range(flat.shape[1])]
    return np.array(out).reshape(stack.shape[1:]).astype(stack.dtype)


def ref_winsorized(stack: np.ndarray, fraction: float = 0.2) -> np.ndarray:
    n = stack.shape[0]
    g = math.floor(fraction * n)
    if n >= 3:
        g = max(g, 1)
    g = min(g, (n - 1) // 2)
    s = np.sort(stack.astype(np.float64), axis=0)
    if g:
        s[:g] = s[g]
        s[n - g :] = s[n - 1 - g]
    return round_half_up(s.mean(axis=0)).astype(stack.dtype)


# ---- median ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", MEDIAN_NS)
def test_median_matches_numpy_on_random_and_adversarial_stacks(n: int) -> None:
    stacks = [random_stack(n), *adversarial_stacks(n)]
    if n in (2, 3, 9):  # uint8 compiles its own kernels: a few N suffice
        stacks += [random_stack(n, (3, 11), np.uint8), *adversarial_stacks(n, np.uint8)]
    for stack in stacks:
        got = combine.combine(stack, "median")
        assert got.dtype == stack.dtype
        assert got.shape == stack.shape[1:]
        np.testing.assert_array_equal(got, ref_median(stack))
        if n % 2:  # odd N: bit-identical to np.median itself
            np.testing.assert_array_equal(got, np.median(stack, axis=0).astype(stack.dtype))


def test_even_median_rounds_half_up_without_overflow() -> None:
    stack = np.array([[[0, 1, 65535, 65534, 7]], [[1, 2, 65535, 65535, 7]]], dtype=np.uint16)
    np.testing.assert_array_equal(combine.combine(stack, "median")[0], [1, 2, 65535, 65535, 7])
    stack4 = np.array([[[1]], [[2]], [[100]], [[4]]], dtype=np.uint16)  # middle pair 2, 4 -> 3
    assert int(combine.combine(stack4, "median")[0, 0]) == 3


def test_selection_networks_sort_every_zero_one_input() -> None:
    """0-1 principle: a comparator network sorts everything iff it sorts every 0/1 input."""
    for n in range(1, 13):
        ops, outs = networks.selection_program(n, range(n))
        for bits in itertools.product((0, 1), repeat=n):
            env = {f"a{i}": b for i, b in enumerate(bits)}
            for target, fn, x, y in ops:
                env[target] = min(env[x], env[y]) if fn == "min" else max(env[x], env[y])
            assert [env[v] for v in outs] == sorted(bits), (n, bits)


def test_pruned_median_network_is_smaller_than_the_sort() -> None:
    full, _ = networks.selection_program(31, range(31))
    median, _ = networks.selection_program(31, [15])
    assert len(median) < len(full)


def test_outlier_frame_and_stuck_pixel_do_not_reach_median_or_sigma_clip() -> None:
    gen = rng(7)
    n = 9
    clean = (1000 + gen.normal(0, 5, size=(n, 6, 8))).round().astype(np.uint16)
    flash = clean.copy()
    flash[4] = 60000  # a flash / bumped frame
    clean_mean = np.delete(clean, 4, axis=0).astype(np.float64).mean(axis=0)
    assert np.abs(combine.combine(flash, "median").astype(np.int64) - 1000).max() < 20
    np.testing.assert_array_equal(combine.combine(flash, "sigma-clip"), round_half_up(clean_mean).astype(np.uint16))
    assert combine.combine(flash, "mean").min() > 7000  # the plain mean does not reject it
    stuck = clean.copy()
    stuck[6, 2, 3] = 65535  # one hot pixel in one frame
    for method in ("median", "sigma-clip"):
        got = combine.combine(stuck, method)
        assert abs(int(got[2, 3]) - 1000) < 10, method
    assert int(combine.combine(stuck, "sigma-clip")[2, 3]) == int(round_half_up(np.delete(clean[:, 2, 3], 6).mean()))


# ---- mean and robust means -------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", (2, *ROBUST_NS))
def test_mean_matches_reference(n: int) -> None:
    for stack in [random_stack(n), random_stack(n, (3, 11), np.uint8), *adversarial_stacks(n)]:
        np.testing.assert_array_equal(combine.combine(stack, "mean"), ref_mean(stack))


def noisy_stack(n: int, seed: int, dtype: type = np.uint16) -> np.ndarray:
    """Gaussian noise plus sparse outliers, so clipping really happens (several rounds for some pixels)."""
    gen = rng(seed)
    top = np.iinfo(dtype).max
    base = top // 3
    stack = base + gen.normal(0, top / 200, size=(n, 8, 64))
    hits = gen.random(stack.shape) < 0.06
    stack[hits] += gen.choice([-1, 1], size=hits.sum()) * gen.uniform(top / 50, top / 3, size=hits.sum())
    return np.clip(stack.round(), 0, top).astype(dtype)


@pytest.mark.parametrize("n", ROBUST_NS)
def test_sigma_clip_matches_reference(n: int) -> None:
    stacks = [noisy_stack(n, 1), noisy_stack(n, 2, np.uint8), random_stack(n), *adversarial_stacks(n)]
    for stack in stacks:
        for kappa, iterations in ((3.0, 5), (1.5, 5), (2.0, 1), (0.5, 3)):
            got = combine.combine(stack, "sigma-clip", kappa=kappa, iterations=iterations)
            np.testing.assert_array_equal(got, ref_sigma_clip(stack, kappa, iterations), f"kappa {kappa}")


def test_sigma_clip_really_clips_and_keeps_the_median_when_all_would_go() -> None:
    stack = noisy_stack(15, 3)
    assert not np.array_equal(combine.combine(stack, "sigma-clip"), combine.combine(stack, "mean"))
    # two values 0 and 10 (N=2): centre 5, sd 5; kappa 0.5 would drop both -> the (rounded) median
    pair = np.array([[[0]], [[10]]], dtype=np.uint16)
    assert int(combine.combine(pair, "sigma-clip", kappa=0.5)[0, 0]) == 5
    assert int(ref_sigma_clip(pair, 0.5, 5)[0, 0]) == 5
    np.testing.assert_array_equal(combine.combine(stack, "sigma-clip", iterations=0), combine.combine(stack, "mean"))


def outlier_frame_stack(n: int, seed: int) -> np.ndarray:
    """Frame 0 +2000 everywhere (every pixel rejects it) on a noisy scene, wider than a clip tile, with a band of
    pixels where 1-4 more frames are outliers at either end: several rounds, more rejections than the vectorised
    clip follows per end, and tiles where few pixels are flagged next to tiles where all are."""
    gen = rng(seed)
    stack = 3000 + gen.normal(0, 40, size=(n, 4, 1100))
    stack[0, :, :700] += 2000
    for row in range(4):
        extra = 1 + row % 4
        sign = 1 if row % 2 else -1
        frames = gen.choice(np.arange(1, n), size=min(extra, n - 1), replace=False)
        stack[frames, row, 600:] += sign * gen.uniform(300, 2500, size=(len(frames), 500))
    return np.clip(stack.round(), 0, 65535).astype(np.uint16)


@pytest.mark.parametrize("n", ROBUST_NS)
def test_sigma_clip_matches_reference_with_an_outlier_frame(n: int) -> None:
    stack = outlier_frame_stack(n, n)
    for kappa, iterations in ((3.0, 5), (1.5, 2)):
        got = combine.combine(stack, "sigma-clip", kappa=kappa, iterations=iterations)
        np.testing.assert_array_equal(got, ref_sigma_clip(stack, kappa, iterations), f"kappa {kappa}")


@pytest.mark.parametrize("n", ROBUST_NS)
def test_winsorized_matches_reference(n: int) -> None:
    stacks = [noisy_stack(n, 4), noisy_stack(n, 5, np.uint8), random_stack(n), *adversarial_stacks(n)]
    for stack in stacks:
        for fraction in (0.2, 0.0, 0.34):
            got = combine.combine(stack, "winsorized", winsor_fraction=fraction)
            np.testing.assert_array_equal(got, ref_winsorized(stack, fraction), f"fraction {fraction}")


def test_no_rejection_is_possible_where_sigma_clip_takes_the_mean_shortcut() -> None:
    """Worst cases for |x - median| / sd: exhaustive over small integer stacks, and the extremal odd-n stack."""
    assert not networks.can_reject(3, 3.0)
    assert not networks.can_reject(4, 3.0)
    assert not networks.can_reject(5, 3.0)
    assert not networks.can_reject(7, 3.0)
    assert networks.can_reject(9, 3.0)
    assert networks.can_reject(7, 2.9)
    for n in (2, 3, 4, 5, 6, 7):
        worst = 0.0
        for x in itertools.combinations_with_replacement(range(n + 4 if n % 2 else 7), n):  # holds the extremal
            v = np.array(x, dtype=np.float64)
            if v.std() > 0:
                worst = max(worst, float(np.abs(v - np.median(v)).max() / v.std()))
        assert networks.can_reject(n, worst)  # the worst seen is within the bound...
        if n % 2:  # ...and for odd n the bound is tight
            assert not networks.can_reject(n, worst * 1.001)
    for n in (5, 7, 9, 31):  # the extremal stack: one value n+3 above a median of 0, (n-3)/2 values at 2
        v = np.array([0.0] * ((n + 1) // 2) + [2.0] * ((n - 3) // 2) + [n + 3.0])
        ratio = float(np.abs(v - np.median(v)).max() / v.std())
        assert networks.can_reject(n, ratio)
        assert not networks.can_reject(n, ratio * 1.001)


def test_winsor_count() -> None:
    assert [networks.winsor_count(n, 0.2) for n in (1, 2, 3, 5, 9, 10, 15, 31)] == [0, 0, 1, 1, 1, 2, 3, 6]
    assert networks.winsor_count(5, 0.49) == 2
    assert networks.winsor_count(4, 0.49) == 1


# ---- shapes, dtypes, buffers, errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_channels_last_stack_equals_per_channel_results(method: str) -> None:
    stack = noisy_stack(9, 6).reshape(9, 8, 16, 4)
    got = combine.combine(stack, method)  # type: ignore[arg-type]
    assert got.shape == (8, 16, 4)
    for c in range(4):
        channel = np.ascontiguousarray(stack[..., c])
        np.testing.assert_array_equal(got[..., c], combine.combine(channel, method))  # type: ignore[arg-type]


def test_out_buffer_is_filled_and_returned() -> None:
    out = np.full((5, 37), 12345, np.uint16)
    for n in (3, 4):
        stack = random_stack(n, seed=n)
        result = combine.combine(stack, "median", out=out)
        assert result is out
        np.testing.assert_array_equal(out, ref_median(stack))


def test_single_frame_is_copied() -> None:
    stack = random_stack(1)
    for method in METHODS:
        got = combine.combine(stack, method)
        np.testing.assert_array_equal(got, stack[0])
        assert not np.shares_memory(got, stack)


def test_non_contiguous_frames_give_the_same_result() -> None:
    stack = random_stack(5, (6, 40))
    view = stack[:, :, ::2]
    np.testing.assert_array_equal(combine.combine(view, "median"), ref_median(np.ascontiguousarray(view)))


def test_bad_arguments_are_rejected() -> None:
    stack = random_stack(3)
    with pytest.raises(ValueError, match="dtype"):
        combine.combine(stack.astype(np.float32), "median")
    with pytest.raises(ValueError, match="shape"):
        combine.combine(stack[0], "median")
    with pytest.raises(ValueError, match="method"):
        combine.combine(stack, "mode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="out"):
        combine.combine(stack, "median", out=np.empty((5, 36), np.uint16))
    with pytest.raises(ValueError, match="winsor_fraction"):
        combine.combine(stack, "winsorized", winsor_fraction=0.5)
    with pytest.raises(ValueError, match="kappa"):
        combine.combine(stack, "sigma-clip", kappa=0)


def test_frames_buffer_and_warm_up() -> None:
    stack = combine.frames_buffer(3, (4, 5), np.uint8)
    assert stack.shape == (3, 4, 5)
    assert stack.dtype == np.uint8
    assert stack.flags.c_contiguous
    combine.warm_up(3, np.uint8, ["median"])  # loads (or compiles) without touching real data
    assert kernel_cache.load_kernel("median", 3) is kernel_cache.load_kernel("median", 3)


def test_generated_kernels_are_written_once_under_their_content_hash(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(kernel_cache.CACHE_ENV, str(tmp_path))
    kernel_cache.load_kernel.cache_clear()
    try:
        kernel_cache.load_kernel("median", 3)
        files = sorted(tmp_path.glob("median_3_*.py"))
        assert len(files) == 1
        assert files[0].read_text() == codegen.median_source(3)
        mtime = files[0].stat().st_mtime_ns
        kernel_cache.load_kernel.cache_clear()
        kernel_cache.load_kernel("median", 3)
        assert files[0].stat().st_mtime_ns == mtime  # not rewritten: numba's cache stays valid
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    finally:
        kernel_cache.load_kernel.cache_clear()


def test_a_kernel_compiled_for_the_first_time_is_announced_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A first blend can wait minutes on a compile (sigma-clip); the user is told why, and only that once.
    (The bench's floor kernel for 2 frames: no other test loads it.)"""
    monkeypatch.setenv(kernel_cache.CACHE_ENV, str(tmp_path / "kernels"))

    def load_as_a_new_process() -> kernel_cache.Kernel:
        kernel_cache.load_kernel.cache_clear()
        for name in [m for m in sys.modules if m.startswith("_medianscan_kernel_floor_2_")]:
            del sys.modules[name]
        return kernel_cache.load_kernel("floor", 2)

    stack, out = np.ones((2, 3, 4), np.uint16), np.empty((3, 4), np.uint16)
    try:
        with caplog.at_level(logging.INFO, logger="medianscan.blend.kernel_cache"):
            load_as_a_new_process()(stack, out)
        assert [r.levelno for r in caplog.records] == [logging.INFO, logging.INFO]  # news, not a warning
        assert "compiling the floor kernel for 2 frames (first use only" in caplog.records[0].message
        assert re.fullmatch(r"compiled the floor kernel for 2 frames in [0-9.]+ s", caplog.records[1].message)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="medianscan.blend.kernel_cache"):
            load_as_a_new_process()(stack, out)
        assert "compil" not in caplog.text
        np.testing.assert_array_equal(out, 1)
    finally:
        kernel_cache.load_kernel.cache_clear()


def test_kernels_built_ahead_are_loaded_by_a_blend_without_a_compile(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`medianscan kernels` compiles in spawned processes into the kernel cache and stamps the build; a blend
    that needs those kernels then compiles nothing, and asking again costs nothing."""
    monkeypatch.setenv(kernel_cache.CACHE_ENV, str(tmp_path / "kernels"))
    kernel_cache.load_kernel.cache_clear()
    wanted = [kernel_build.KernelNeed(4, "mean"), kernel_build.KernelNeed(3, "mean")]
    monkeypatch.setattr(kernel_build, "needs", lambda *args, **kwargs: wanted)
    assert main(["kernels"]) == 0
    assert "built 2 kernels in" in capsys.readouterr().out
    assert kernel_build.built(wanted)
    with caplog.at_level(logging.INFO, logger="medianscan.blend.kernel_cache"):
        out = combine.combine(np.zeros((4, 8, 8), dtype=np.uint16), "mean")
    assert out.shape == (8, 8) and "compiling" not in caplog.text
    assert main(["kernels"]) == 0
    assert "2 kernels are built already" in capsys.readouterr().out
    kernel_cache.load_kernel.cache_clear()
