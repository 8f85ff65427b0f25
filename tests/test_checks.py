"""The stack checks on their own: shift estimation accuracy and the majority rule."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from medianscan.blend.measuring import checks, noise, registration
from medianscan.blend.options import BlendOptions
from medianscan.blend.pipeline import blend_stack
from medianscan.blend.reading.frames import Frame, read_frame
from medianscan.errors import StackError
from tests.stacks import BAYER_RGGB, X_TRANS, add_dust, cfa_burst, load_scene, noisy


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
    shift = registration.measure_shift(plane + rng.normal(0, 5, plane.shape), moved)
    assert shift is not None
    assert shift == pytest.approx((dy, dx), abs=0.05)


def test_a_featureless_frame_has_no_measurable_shift() -> None:
    rng = np.random.default_rng(1)
    flat = [100 + rng.normal(0, 5, (256, 256)) for _ in range(2)]
    assert registration.measure_shift(*flat) is None


@pytest.mark.slow
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


@pytest.mark.slow
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
    assert [p.path for p in problems] == [Path("f0.dng")]
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
    small = replace(
        frame, pixels=tiny, layout=replace(frame.layout, active_area=(0, 0, 96, 128), default_crop=(0, 0, 128, 96))
    )
    stats = checks.measure([checks.sample(small), checks.sample(replace(small, pixels=np.roll(tiny, 6, axis=1)))])
    assert [s.shift for s in stats] == [None, None]
    assert stats[0].level > 0


# --- any CFA, any scene (real DNG files of synthetic scenes, blended end to end) ---------------------------


def test_colour_balanced_cells_for_any_cfa() -> None:
    def cell(letters: tuple[str, ...], colours: str = "RGB") -> tuple[int, int]:
        return checks.colour_balanced_cell(np.array([[colours.index(c) for c in r] for r in letters], np.uint8))

    assert cell(BAYER_RGGB) == (2, 2)
    assert cell(X_TRANS) == (3, 3)
    assert cell(("CY", "GM"), "CYGM") == (2, 2)  # a 4-colour CFA
    assert cell(("RGBG", "GBRG", "BGRG", "GRGB")) == (1, 4)  # each row holds every colour in the same counts
    assert cell(("RGB", "GBR", "BRG")) == (1, 3)
    assert cell(("RG", "GG")) == (2, 2)  # no smaller cell holds R


def _shifts(result_sidecar: Path) -> list[float]:
    record = json.loads(result_sidecar.read_text())
    return [float(np.hypot(*f["shift_px"])) for f in record["frames"] if f["shift_px"] is not None]


@pytest.mark.slow
@pytest.mark.parametrize("letters", [X_TRANS, BAYER_RGGB], ids=["xtrans", "bayer"])
def test_dust_on_a_low_texture_scene_is_not_a_moved_camera(tmp_path: Path, letters: tuple[str, ...]) -> None:
    """A smooth, nearly featureless frame with a dust blob in one frame: the median removes the blob; the shift
    check must neither refuse the stack nor claim a shift beyond the noise."""
    folder = tmp_path / "neg"
    cfa_burst(folder, letters, 5, texture=15.0, dust={1: (610, 870, 6), 3: (580, 930, 3)})
    result = blend_stack(folder)
    assert len(result.frames) == 5 and not result.dropped
    assert all(s < 0.15 for s in _shifts(result.sidecar))


@pytest.mark.slow
@pytest.mark.parametrize("letters", [X_TRANS, BAYER_RGGB], ids=["xtrans", "bayer"])
def test_real_shifts_are_caught_and_subpixel_jitter_is_not(tmp_path: Path, letters: tuple[str, ...]) -> None:
    folder = tmp_path / "neg"
    moved = {2: (0.2, -0.25), 3: (0.0, 1.0), 4: (-1.5, 1.5)}
    cfa_burst(folder, letters, 7, texture=120.0, moved=moved, dust={1: (600, 900, 5)})
    with pytest.raises(StackError) as refused:
        blend_stack(folder)
    message = str(refused.value)
    assert "neg_04.dng: shifted by +1.0 px horizontally" in message
    assert "neg_05.dng: shifted by +1.5 px horizontally and -1.5 px vertically" in message
    assert "neg_03.dng" not in message and "neg_02.dng" not in message  # 0.3 px jitter, and the dusty frame
    result = blend_stack(folder, BlendOptions(drop_bad_frames=True))
    record = json.loads(result.sidecar.read_text())
    jitter = next(f for f in record["frames"] if f["file"] == "neg_03.dng")["shift_px"]
    assert jitter == pytest.approx([0.2, -0.25], abs=0.06)
    assert sorted(r["file"] for r in record["rejected"]) == ["neg_04.dng", "neg_05.dng"]


# --- a frame of another picture is never blended ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"another": frozenset({3})}, "not the same picture as the others"),
        ({"shaded": {3: (0.3, 0.08)}}, "not the same picture as the others"),
        ({"moved": {3: (0.0, 60.0)}}, "not the same picture as the others"),
    ],
    ids=["another-negative", "partly-shaded", "film-moved"],
)
@pytest.mark.slow
@pytest.mark.parametrize("letters", [X_TRANS, BAYER_RGGB], ids=["xtrans", "bayer"])
def test_a_frame_of_another_picture_is_named_where_level_and_shift_cannot_tell(
    tmp_path: Path, letters: tuple[str, ...], change: dict[str, object], words: str
) -> None:
    """A plain, low-texture negative (the shift is not measurable on it) in which one frame of seven is another
    negative at the same overall brightness, or shaded over 30 % of its width by 8 %, or of film moved by 60 px:
    named with the share of the picture that differs; --drop-bad-frames blends the rest."""
    folder = tmp_path / "neg"
    cfa_burst(folder, letters, 7, texture=15.0, **change)  # type: ignore[arg-type]
    with pytest.raises(StackError) as refused:
        blend_stack(folder)
    message = str(refused.value)
    assert f"neg_04.dng: {words}" in message and "% of the area differs beyond noise" in message
    assert message.count(".dng:") == 1  # that frame only
    result = blend_stack(folder, BlendOptions(drop_bad_frames=True))
    record = json.loads(result.sidecar.read_text())
    assert [r["file"] for r in record["rejected"]] == ["neg_04.dng"]
    assert all(f["differs"] < 0.02 for f in record["frames"])


def test_another_picture_is_named_in_a_stack_of_three(tmp_path: Path) -> None:
    folder = tmp_path / "neg"
    cfa_burst(folder, BAYER_RGGB, 3, texture=15.0, another=frozenset({0}))
    with pytest.raises(StackError, match=r"neg_01\.dng: not the same picture as the others: \d+% of the area"):
        blend_stack(folder)


@pytest.mark.slow
@pytest.mark.parametrize("letters", [X_TRANS, BAYER_RGGB], ids=["xtrans", "bayer"])
def test_what_the_median_is_for_is_never_refused(tmp_path: Path, letters: tuple[str, ...]) -> None:
    """Dust, a hair, a moving speck in fewer than half of the frames: the check records their small share and the
    stack blends."""
    folder = tmp_path / "neg"
    cfa_burst(
        folder,
        letters,
        7,
        texture=15.0,
        dust={0: (300, 400, 8), 2: (310, 420, 8), 5: (900, 1500, 12)},
        hair=frozenset({1, 4}),
    )
    result = blend_stack(folder)
    assert len(result.frames) == 7 and not result.dropped
    record = json.loads(result.sidecar.read_text())
    assert max(f["differs"] for f in record["frames"]) < 0.05


@pytest.mark.parametrize("n", [1, 2, 7, 10, 4096, 4097])
def test_integers_are_counted_to_the_robust_sigma_the_sorted_way_gives(n: int) -> None:
    """Frame differences are integers: robust_sigma counts them (a histogram) rather than sorting; the medians,
    the values kept and so the std must be the sorted way's, dust, halves and ties included."""
    rng = np.random.default_rng(n)
    for sigma in (0.4, 3.0, 60.0):
        values = np.rint(rng.normal(-7, sigma, n))
        values[: n // 8] += rng.integers(-3000, 3000, n // 8)  # dust
        counted = noise.robust_sigma(values.astype(np.int32))
        assert counted == pytest.approx(noise.robust_sigma(values), rel=1e-9, abs=1e-12)
