"""The combine kernels against straightforward NumPy float64 references written here.

Arrays are small so the run stays short; each N compiles once (~1-5 s) and then loads from numba's cache.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from medianscan.blend.kernels import codegen, combine, kernel_build, kernel_cache, networks
from medianscan.blend.kernels.noise_model import NoiseModel, measure_frames, measure_rows
from medianscan.blend.reading import frames
from medianscan.cli import main
from medianscan.vocabulary import METHODS
from tests.stacks import Scene, load_scene, write_frame

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


def ref_sigma_clip_pixel(values: np.ndarray, a: np.float32, b: np.float32, z: np.float32, iterations: int) -> int:
    """As documented in `combine`, in the kernels' float32 arithmetic: round 1 about the median, later rounds about
    the kept values' mean, a value once rejected stays out; sigma^2 kappa^2 = a + b * max(centre - z, 0)."""
    v = values.astype(np.float32)
    zero = np.float32(0.0)
    centre = np.float32(np.median(v.astype(np.float64)))
    kept = (v - centre) * (v - centre) <= a + b * max(centre - z, zero)
    if not kept.any():
        return math.floor(float(centre) + 0.5)
    for _ in range(iterations - 1):
        c = np.float32(v[kept].sum(dtype=np.float32) / np.float32(kept.sum()))
        now = kept & ((v - c) * (v - c) <= a + b * max(c - z, zero))
        if not now.any() or now.sum() == kept.sum():
            break
        kept = now
    return math.floor(float(v[kept].astype(np.float64).mean()) + 0.5)


def ref_sigma_clip(stack: np.ndarray, model: NoiseModel, kappa: float = 3.0, iterations: int = 5) -> np.ndarray:
    n, h = stack.shape[:2]
    rows = stack.reshape(n, h, -1)
    ta, tb, tz = model.thresholds(kappa, rows.shape[2])
    out = np.empty(rows.shape[1:], np.int64)
    for y, x in itertools.product(range(h), range(rows.shape[2])):
        p = y % ta.shape[0]
        out[y, x] = ref_sigma_clip_pixel(rows[:, y, x], ta[p, x], tb[p, x], tz[p, x], iterations)
    return out.reshape(stack.shape[1:]).astype(stack.dtype)


def ref_winsorized(stack: np.ndarray, model: NoiseModel, kappa: float = 3.0, fraction: float = 0.2) -> np.ndarray:
    """Of the g lowest and highest values, those beyond kappa sigma of the median take rank g's (n-1-g's) value."""
    n, h = stack.shape[:2]
    g = networks.winsor_count(n, fraction)
    rows = stack.reshape(n, h, -1)
    ta, tb, tz = model.thresholds(kappa, rows.shape[2])
    s = np.sort(rows.astype(np.float32), axis=0)
    centre = s[n // 2] if n % 2 else (s[(n - 1) // 2] + s[n // 2]) * np.float32(0.5)
    phase = np.arange(h) % ta.shape[0]
    thr = ta[phase] + tb[phase] * np.maximum(centre - tz[phase], np.float32(0))
    total = s.astype(np.float64).sum(axis=0)
    for j in range(g):
        for rank, bound in ((j, g), (n - 1 - j, n - 1 - g)):
            beyond = (s[rank] - centre) * (s[rank] - centre) > thr
            total += np.where(beyond, s[bound].astype(np.float64) - s[rank], 0.0)
    return round_half_up(total / n).reshape(stack.shape[1:]).astype(stack.dtype)


def flat_model(sigma: float, pattern: tuple[tuple[int, ...], ...] = ((0,),)) -> NoiseModel:
    """A noise model of constant sigma (DN) for every colour."""
    count = max(max(row) for row in pattern) + 1
    return NoiseModel(pattern, ("x",) * count, (0.0,) * count, (sigma,) * count, (0.0,) * count, 0)


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
    wide = flat_model(20.0)  # kappa sigma = 60: no clean value of sigma 5 goes, the flash does
    np.testing.assert_array_equal(combine.combine(flash, "sigma-clip", noise=wide), round_half_up(clean_mean))
    measured = measure_rows(flash)  # the flash is left out of the measured noise too
    assert max(measured.read) < 10 and max(measured.gain) < 0.1
    np.testing.assert_array_equal(combine.combine(flash, "sigma-clip", noise=measured), ref_sigma_clip(flash, measured))
    assert combine.combine(flash, "mean").min() > 7000  # the plain mean does not reject it
    stuck = clean.copy()
    stuck[6, 2, 3] = 65535  # one hot pixel in one frame
    for method in ("median", "sigma-clip"):
        got = combine.combine(stuck, method)
        assert abs(int(got[2, 3]) - 1000) < 10, method
    got = combine.combine(stuck, "sigma-clip", noise=wide)
    assert int(got[2, 3]) == int(round_half_up(np.delete(clean[:, 2, 3], 6).mean()))


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


@pytest.mark.slow
@pytest.mark.parametrize("n", ROBUST_NS)
def test_sigma_clip_matches_reference(n: int) -> None:
    stacks = [noisy_stack(n, 1), noisy_stack(n, 2, np.uint8), random_stack(n), *adversarial_stacks(n)]
    for stack in stacks:
        models = [measure_rows(stack), flat_model(float(np.iinfo(stack.dtype).max) / 200, ((0, 1), (2, 0)))]
        for model, (kappa, iterations) in itertools.product(models, ((3.0, 5), (1.5, 5), (2.0, 1), (0.5, 3))):
            got = combine.combine(stack, "sigma-clip", kappa=kappa, iterations=iterations, noise=model)
            expected = ref_sigma_clip(stack, model, kappa, iterations)
            np.testing.assert_array_equal(got, expected, f"kappa {kappa} iterations {iterations} {model}")


def test_sigma_clip_really_clips_and_keeps_the_median_when_all_would_go() -> None:
    stack = noisy_stack(15, 3)
    assert not np.array_equal(combine.combine(stack, "sigma-clip"), combine.combine(stack, "mean"))
    # two values 0 and 10 (N=2): centre 5; sigma 1 rejects both -> the (rounded) median
    pair = np.array([[[0]], [[10]]], dtype=np.uint16)
    assert int(combine.combine(pair, "sigma-clip", noise=flat_model(1.0))[0, 0]) == 5
    np.testing.assert_array_equal(combine.combine(stack, "sigma-clip", iterations=0), combine.combine(stack, "mean"))


def outlier_frame_stack(n: int, seed: int) -> np.ndarray:
    """Frame 0 +2000 over most of a noisy scene, with a band of pixels where 1-4 more frames are outliers at either
    end: several rounds, and rows where few pixels reject next to rows where all do."""
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
    for model, (kappa, iterations) in itertools.product(
        (flat_model(40.0), measure_rows(stack)), ((3.0, 5), (1.5, 2), (2.5, 1))
    ):
        got = combine.combine(stack, "sigma-clip", kappa=kappa, iterations=iterations, noise=model)
        np.testing.assert_array_equal(got, ref_sigma_clip(stack, model, kappa, iterations), f"kappa {kappa}")


@pytest.mark.parametrize("n", ROBUST_NS)
def test_winsorized_matches_reference(n: int) -> None:
    stacks = [noisy_stack(n, 4), noisy_stack(n, 5, np.uint8), random_stack(n), *adversarial_stacks(n)]
    for stack in stacks:
        model = measure_rows(stack)
        for kappa, fraction in ((3.0, 0.2), (3.0, 0.0), (1.0, 0.34), (2.0, 0.2)):
            got = combine.combine(stack, "winsorized", kappa=kappa, winsor_fraction=fraction, noise=model)
            expected = ref_winsorized(stack, model, kappa, fraction) if networks.winsor_count(n, fraction) else None
            np.testing.assert_array_equal(got, ref_mean(stack) if expected is None else expected, f"{fraction}")


@pytest.mark.slow
def test_the_noise_model_is_read_noise_plus_shot_noise_measured_on_the_stack() -> None:
    """Known read noise and gain per colour, a scene of every level, dust in some frames and one frame off by a
    flash: the line comes back within a few percent, and the colours apart."""
    gen = rng(11)
    h, w = 400, 600
    scene = 256 + 9000 * gen.random((h, w))
    colour = np.tile(np.array([[0, 1], [1, 2]]), (h // 2, w // 2))
    read, gain = np.array([4.0, 6.0, 9.0]), np.array([0.5, 0.5, 1.2])
    sigma = np.sqrt(read[colour] ** 2 + gain[colour] * (scene - 256))
    for n in (3, 5, 9):
        stack = np.clip(np.rint(scene + sigma * gen.standard_normal((n, h, w))), 0, 65535).astype(np.uint16)
        stack[gen.integers(0, n, 500), gen.integers(0, h, 500), gen.integers(0, w, 500)] = 65000  # dust
        model = measure_rows(stack, np.array([[0, 1], [1, 2]]), "RGB", (256, 256, 256))
        assert model.names == ("R", "G", "B")
        np.testing.assert_allclose(model.gain, gain, rtol=0.06)
        np.testing.assert_allclose(model.read, read, rtol=0.35)
        assert model.sigma(5256, 2) == pytest.approx(math.sqrt(81 + 1.2 * 5000), rel=0.04)
        stack[0] += 3000  # a frame off by a flash: taken out as the furthest value, sigma stays near
        off = measure_rows(stack, np.array([[0, 1], [1, 2]]), "RGB", (256, 256, 256))
        assert off.sigma(5256, 2) < 3 * model.sigma(5256, 2)
        assert off.sigma(5256, 2) < 0.1 * 3000


def test_winsor_count() -> None:
    assert [networks.winsor_count(n, 0.2) for n in (1, 2, 3, 5, 9, 10, 15, 31)] == [0, 0, 1, 1, 1, 2, 3, 6]
    assert networks.winsor_count(5, 0.49) == 2
    assert networks.winsor_count(4, 0.49) == 1


# ---- shapes, dtypes, buffers, errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_channels_last_stack_equals_per_channel_results(method: str) -> None:
    stack = noisy_stack(9, 6).reshape(9, 8, 16, 4)
    model = flat_model(330.0)  # the robust means' sigma, the same for the whole and for each channel
    got = combine.combine(stack, method, noise=model)  # type: ignore[arg-type]
    assert got.shape == (8, 16, 4)
    for c in range(4):
        channel = np.ascontiguousarray(stack[..., c])
        np.testing.assert_array_equal(got[..., c], combine.combine(channel, method, noise=model))  # type: ignore[arg-type]


def test_out_buffer_is_filled_and_returned() -> None:
    out = np.full((5, 37), 12345, np.uint16)
    for n in (3, 4):
        stack = random_stack(n, seed=n)
        result = combine.combine(stack, "median", out=out)
        assert result is out
        np.testing.assert_array_equal(out, ref_median(stack))


@pytest.mark.parametrize("method", METHODS)
def test_a_small_stack_runs_on_the_calling_thread_and_gives_what_the_threads_give(
    method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below SERIAL_VALUES a stack is combined on the calling thread alone (no wait for the kernels' worker threads
    on a busy host); the values are the threaded kernel's, and the thread's own numba thread count comes back."""
    import numba

    stack = noisy_stack(9, 6).reshape(9, 32, 16)
    model = flat_model(330.0)
    before = numba.get_num_threads()
    seen: list[int] = []
    loaded = kernel_cache.load_kernel

    def watched(kind: str, n: int, g: int = 0) -> object:
        kernel = loaded(kind, n, g)

        def run(*kernel_args: object) -> object:
            seen.append(numba.get_num_threads())
            return kernel(*kernel_args)

        return run

    monkeypatch.setattr(combine, "load_kernel", watched)
    small = combine.combine(stack, method, noise=model)  # type: ignore[arg-type]
    monkeypatch.setattr(combine, "SERIAL_VALUES", 0)
    threaded = combine.combine(stack, method, noise=model)  # type: ignore[arg-type]
    np.testing.assert_array_equal(small, threaded)
    assert seen == [1, before] and numba.get_num_threads() == before


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
        with caplog.at_level(logging.INFO, logger="medianscan.blend.kernels.kernel_cache"):
            load_as_a_new_process()(stack, out)
        assert [r.levelno for r in caplog.records] == [logging.INFO, logging.INFO]  # news, not a warning
        assert "compiling the floor kernel for 2 frames (first use only" in caplog.records[0].message
        assert re.fullmatch(r"compiled the floor kernel for 2 frames in [0-9.]+ s", caplog.records[1].message)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="medianscan.blend.kernels.kernel_cache"):
            load_as_a_new_process()(stack, out)
        assert "compil" not in caplog.text
        np.testing.assert_array_equal(out, 1)
    finally:
        kernel_cache.load_kernel.cache_clear()


@pytest.mark.slow
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
    with caplog.at_level(logging.INFO, logger="medianscan.blend.kernels.kernel_cache"):
        out = combine.combine(np.zeros((4, 8, 8), dtype=np.uint16), "mean")
    assert out.shape == (8, 8) and "compiling" not in caplog.text
    assert main(["kernels"]) == 0
    assert "2 kernels are built already" in capsys.readouterr().out
    kernel_cache.load_kernel.cache_clear()


# ---- on the real CR2: dust at small N, noise against the truth -----------------------------------------------


READ_DN, GAIN_DN = 4.0, 0.5  # the noise the bursts are made with: read noise, DN per electron


@pytest.fixture(scope="module")
def cr2_scene(sample_raw: Path) -> Scene:
    return load_scene(sample_raw).crop(400, 600, 512, 768)


def real_burst(scene: Scene, n: int, seed: int, dust: int) -> tuple[np.ndarray, np.ndarray]:
    """n frames of the CR2's mosaic with read and shot noise; `dust` photosites of each frame 600-3000 DN off the
    truth (dark or bright), each frame at other places. Returns the frames and the dust's (frame, y, x)."""
    gen = rng(seed)
    truth = scene.mosaic.astype(np.float32)
    black = np.asarray(scene.layout.black_levels, np.float32)[scene.layout.pattern]
    black = np.tile(black, (truth.shape[0] // 2, truth.shape[1] // 2))
    sigma = np.sqrt(READ_DN**2 + GAIN_DN * np.maximum(truth - black, 0))
    values = truth + sigma * gen.standard_normal((n, *truth.shape), dtype=np.float32)
    stack = np.clip(np.rint(values), 0, scene.layout.white_level).astype(np.uint16)
    where = np.stack([np.repeat(np.arange(n), dust), *(gen.integers(0, s, n * dust) for s in truth.shape)])
    off = gen.uniform(600, 3000, n * dust) * gen.choice([-1, 1], n * dust)
    stack[where[0], where[1], where[2]] = np.clip(truth[where[1], where[2]] + off, 0, scene.layout.white_level)
    return stack, where


def dust_left(blended: np.ndarray, scene: Scene, where: np.ndarray) -> int:
    """Dust photosites whose blend is more than 200 DN off the truth (the blend's own noise is under 10 DN)."""
    truth = scene.mosaic.astype(np.float64)[where[1], where[2]]
    return int((np.abs(blended[where[1], where[2]].astype(np.float64) - truth) > 200).sum())


@pytest.mark.parametrize("n", (3, 5, 7))
def test_on_real_raws_the_robust_means_take_out_dust_like_the_median_and_stay_less_noisy(
    cr2_scene: Scene, n: int
) -> None:
    """The issue's case: 100 dust photosites per frame. The median leaves none, the mean most; sigma-clip and
    winsorized none either (they were the plain mean at N = 3 and left dust at N = 7). On the same frames without
    dust they are nearer the truth than the median (they keep every clean value: the mean's noise, nearly)."""
    dusty, where = real_burst(cr2_scene, n, seed=n, dust=100)
    clean, _ = real_burst(cr2_scene, n, seed=n + 50, dust=0)
    truth = cr2_scene.mosaic.astype(np.float64)
    left, rms = {}, {}
    for method in METHODS:
        left[method] = dust_left(
            combine.combine(dusty, method, noise=measure_frames(dusty, cr2_scene.layout)), cr2_scene, where
        )
        blended = combine.combine(clean, method, noise=measure_frames(clean, cr2_scene.layout))
        rms[method] = float(np.sqrt(np.mean((blended - truth) ** 2)))
    assert left["mean"] > 25 * n, left  # the case is real: the mean keeps much of the dust
    assert left["median"] <= 2 and left["sigma-clip"] <= left["median"] and left["winsorized"] <= left["median"], left
    assert rms["mean"] < rms["sigma-clip"] < rms["median"] and rms["mean"] < rms["winsorized"] < rms["median"], rms
    assert rms["sigma-clip"] < 1.06 * rms["mean"] and rms["winsorized"] < 1.06 * rms["mean"], rms
    model = measure_frames(dusty, cr2_scene.layout)  # and the model is the noise the frames were made with
    assert model.names == ("R", "G", "B", "G")
    np.testing.assert_allclose(model.gain, GAIN_DN, rtol=0.15)
    for colour in range(4):  # sigma where the scene is: 500 DN above black
        assert model.sigma(128 + 500, colour) == pytest.approx(math.sqrt(READ_DN**2 + GAIN_DN * 500), rel=0.08)


def test_the_readme_example_blends_with_sigma_clip_and_says_how(cr2_scene: Scene, tmp_path: Path) -> None:
    """`medianscan blend IMG_01 IMG_02 IMG_03 --method sigma-clip` on three dusty frames: the dust is gone as with
    the median, the blend is not the mean's, and the sidecar records the rule and the noise it judged by."""
    dusty, where = real_burst(cr2_scene, 3, seed=9, dust=100)
    files = [write_frame(tmp_path / f"IMG_0{i + 1}.dng", frame, cr2_scene) for i, frame in enumerate(dusty)]
    blends = {}
    for method in ("sigma-clip", "mean", "median"):
        assert main(["blend", *map(str, files), "--method", method, "--output", str(tmp_path / f"{method}.dng")]) == 0
        blends[method] = frames.read_frame(tmp_path / f"{method}.dng").pixels
    assert dust_left(blends["sigma-clip"], cr2_scene, where) <= dust_left(blends["median"], cr2_scene, where) <= 2
    assert dust_left(blends["mean"], cr2_scene, where) > 75
    record = json.loads((tmp_path / "sigma-clip.json").read_text())
    assert record["method"] == "sigma-clip"
    assert "sigma one frame's noise at that level as measured on the stack" in record["parameters"]["rule"]
    noise = record["parameters"]["noise"]["per_colour"]
    assert set(noise) == {"R", "G", "B"}
    for colour in noise.values():
        assert colour["gain_dn_per_electron"] == pytest.approx(GAIN_DN, rel=0.15)
        assert colour["black"] == pytest.approx(128, abs=1)
