"""The stack checks on their own: shift estimation accuracy and the majority rule."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from medianscan import checks
from medianscan.frames import Frame, read_frame
from tests.stacks import add_dust, load_scene, noisy


@pytest.fixture(scope="module")
def frame(sample_raw: Path) -> Frame:
    return read_frame(sample_raw)


def fourier_shift(image: np.ndarray, dy: float, dx: float) -> np.ndarray:
    ky = np.fft.fftfreq(image.shape[0])[:, None]
    kx = np.fft.fftfreq(image.shape[1])[None, :]
    return np.real(np.fft.ifft2(np.fft.fft2(image) * np.exp(-2j * np.pi * (ky * dy + kx * dx))))


@pytest.mark.parametrize(("dy", "dx"), [(0.0, 0.0), (0.1, -0.2), (0.25, 0.4), (-0.5, 0.75), (3.3, -7.6)])
def test_phase_correlation_finds_subpixel_shifts(frame: Frame, dy: float, dx: float) -> None:
    plane, _ = checks._plane(frame)
    rng = np.random.default_rng(0)
    moved = fourier_shift(plane, dy, dx) + rng.normal(0, 5, plane.shape)
    shift = checks.phase_shift(plane + rng.normal(0, 5, plane.shape), moved)
    assert shift is not None
    assert shift == pytest.approx((dy, dx), abs=0.05)


def test_a_featureless_frame_has_no_measurable_shift() -> None:
    rng = np.random.default_rng(1)
    flat = [100 + rng.normal(0, 5, (256, 256)) for _ in range(2)]
    assert checks.phase_shift(*flat) is None


def test_dust_does_not_fool_the_shift_estimate(sample_raw: Path, frame: Frame) -> None:
    """Sharp specks dominate a whitened spectrum; clipping them first keeps the estimate on the scene."""
    scene = load_scene(sample_raw)
    rng = np.random.default_rng(2)
    frames = []
    for i in range(3):
        mosaic = noisy(scene, rng, 20)
        add_dust(mosaic, rng, 60, scene.layout.white_level)
        frames.append(replace(frame, path=Path(f"f{i}.dng"), pixels=mosaic))
    stats = checks.measure([checks.sample(f) for f in frames])
    for s in stats:
        assert s.shift is not None and np.hypot(*s.shift) < 0.2


def test_the_moved_frame_is_named_even_when_it_is_the_first(frame: Frame) -> None:
    """Shifts are relative to the position most frames share, not to frame 1."""
    rng = np.random.default_rng(3)
    base = frame.pixels.astype(np.float32)
    mosaics = [np.roll(base, 4, axis=0)] + [base] * 3
    frames = [
        replace(
            frame, path=Path(f"f{i}.dng"), pixels=np.clip(m + rng.normal(0, 10, m.shape), 0, 4095).astype(np.uint16)
        )
        for i, m in enumerate(mosaics)
    ]
    problems = checks.pixel_problems(frames, checks.measure([checks.sample(f) for f in frames]), 0.03, 0.5)
    assert [p.frame for p in problems] == [Path("f0.dng")]
    assert "+4.0 px vertically" in problems[0].reason


def test_attributes_that_differ_name_the_minority(frame: Frame) -> None:
    frames = [replace(frame, path=Path(f"f{i}.dng")) for i in range(4)]
    frames[2] = replace(frames[2], exposure=replace(frame.exposure, iso=1600.0))
    problems = checks.metadata_problems(frames)
    assert [str(p) for p in problems] == ["f2.dng: ISO 1600 differs from the other frames' 640"]


def test_frames_too_small_to_align_are_not_judged_on_shift(frame: Frame) -> None:
    """A 96x128 crop holds too few CFA repeats for a trustworthy estimate: no shift claimed either way."""
    tiny = np.ascontiguousarray(frame.pixels[400:496, 400:528])
    assert frame.layout is not None
    small = replace(frame, pixels=tiny, layout=replace(frame.layout, active_area=(0, 0, 96, 128)))
    stats = checks.measure([checks.sample(small), checks.sample(replace(small, pixels=np.roll(tiny, 6, axis=1)))])
    assert [s.shift for s in stats] == [None, None]
    assert stats[0].level > 0
