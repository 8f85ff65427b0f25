"""The simulated camera: real DNG frames (read back with the project's raw reader) that differ only in noise."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from medianscan.blend.reading.frames import read_frame
from medianscan.capture.camera import BurstError, CameraError, list_cameras, open_camera
from medianscan.capture.camera.simulated.camera import SIMULATED_IDENTITY, SimulatedCamera
from medianscan.capture.camera.simulated.scene import BLACK, Negative, layout
from medianscan.config.schema import CameraConfig, SimulatedConfig

SMALL = {"width": 256, "height": 192}


def sim(**options: object) -> SimulatedCamera:
    sim_options = {k: options.pop(k) for k in list(options) if k in SimulatedConfig.__dataclass_fields__}
    cfg = CameraConfig(backend="simulated", simulated=SimulatedConfig(**{**SMALL, **sim_options}))  # type: ignore[arg-type]
    for key, value in options.items():
        setattr(cfg, key, value)
    cam = open_camera(cfg)
    assert isinstance(cam, SimulatedCamera)
    return cam


def mosaics(paths: list[Path]) -> list[npt.NDArray[np.float64]]:
    return [read_frame(p).pixels.astype(np.float64) for p in paths]


def test_a_burst_is_real_dng_frames_named_by_stem(tmp_path: Path) -> None:
    cam = sim()
    record = cam.burst(3, tmp_path / "frame-001", "frame-001")
    assert [p.name for p in record.frames] == [f"frame-001_0{i}.dng" for i in (1, 2, 3)]
    frame = read_frame(record.frames[0])
    assert frame.kind == "raw" and frame.pixels.shape == (192, 256)
    assert frame.layout is not None and frame.layout.colors == "RGBG"
    assert record.sizes == {p.name: p.stat().st_size for p in record.frames}
    assert record.camera == SIMULATED_IDENTITY and record.error is None
    assert list_cameras("simulated") == [SIMULATED_IDENTITY]


def test_frames_differ_only_in_noise_and_the_median_cleans_them(tmp_path: Path) -> None:
    record = sim().burst(9, tmp_path / "s", "s")
    stack = np.stack(mosaics(record.frames))
    diff = stack[0] - stack[1]
    assert abs(np.median(diff)) < 1.0  # same exposure
    spread = np.std(stack, axis=0).mean()
    assert 10 < spread < 200  # shot + read noise of a 14-bit sensor
    truth = Negative(1, 1, SMALL["height"], SMALL["width"]).signal + BLACK  # the noiseless negative
    # the median of 9 lands much nearer the truth than one frame: they differ by noise (and dust), not content
    assert np.std(np.median(stack, axis=0) - truth) < 0.5 * np.std(stack[0] - truth)


def test_the_same_seed_gives_the_same_pixels(tmp_path: Path) -> None:
    a = mosaics(sim(seed=7).burst(2, tmp_path / "a", "a").frames)
    b = mosaics(sim(seed=7).burst(2, tmp_path / "b", "b").frames)
    c = mosaics(sim(seed=8).burst(2, tmp_path / "c", "c").frames)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_the_negative_has_an_orange_mask(tmp_path: Path) -> None:
    """Orange as a raw editor shows it: white-balanced by the frame's own AsShotNeutral, red > green > blue."""
    mosaic = mosaics(sim().burst(1, tmp_path / "s", "s").frames)[0] - BLACK
    camera = np.array([mosaic[0::2, 0::2].mean(), mosaic[0::2, 1::2].mean(), mosaic[1::2, 1::2].mean()])
    red, green, blue = camera / np.asarray(layout(8, 8).as_shot_neutral)
    assert red > 1.4 * green > 1.4 * blue


def test_dust_specks_move_between_frames(tmp_path: Path) -> None:
    a, b = mosaics(sim().burst(2, tmp_path / "s", "s").frames)
    darker_in_a = np.argwhere(b - a > 800)
    darker_in_b = np.argwhere(a - b > 800)
    assert len(darker_in_a) > 0 and len(darker_in_b) > 0
    assert not {tuple(p) for p in darker_in_a} & {tuple(p) for p in darker_in_b}


def test_exif_exposure_comes_from_the_settings(tmp_path: Path) -> None:
    cam = sim(settings={"iso": "200", "shutterspeed": "1/125", "f-number": "f/11"})
    record = cam.burst(1, tmp_path / "s", "s")
    assert record.settings == {"iso": "200", "shutterspeed": "1/125", "f-number": "f/11"}
    exposure = read_frame(record.frames[0]).exposure
    assert exposure.iso == 200 and exposure.f_number == pytest.approx(11)
    assert exposure.exposure_time == pytest.approx(1 / 125)


def test_settings_are_checked_like_a_real_body(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(CameraError, match="cannot be '1/8000'"):
        sim(settings={"shutterspeed": "1/8000"}).lock()
    with pytest.raises(CameraError, match="has no setting 'd1a2'"):
        sim(settings={"d1a2": "1"}).lock()
    with caplog.at_level(logging.WARNING):
        assert sim(settings={"d1a2": "1", "iso": "400"}, optional=["d1a2"]).lock() == {"iso": "400"}
    assert "no setting 'd1a2'" in caplog.text


def test_a_flickered_frame_is_brighter(tmp_path: Path) -> None:
    frames = mosaics(sim(flicker_frame=2).burst(3, tmp_path / "s", "s").frames)
    levels = [float(np.mean(f - BLACK)) for f in frames]
    assert levels[1] > 1.05 * levels[0] and abs(levels[2] / levels[0] - 1) < 0.005


def test_a_shifted_frame_is_two_pixels_off(tmp_path: Path) -> None:
    frames = mosaics(sim(shifted_frame=3).burst(3, tmp_path / "s", "s").frames)

    def mismatch(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
        return float(np.mean(np.abs(a[:, 8:-8] - b[:, 8:-8])))

    assert mismatch(frames[2], frames[0]) > 1.5 * mismatch(frames[1], frames[0])
    assert mismatch(np.roll(frames[2], -2, axis=1), frames[0]) == pytest.approx(mismatch(frames[1], frames[0]), rel=0.1)


def test_a_dead_camera_fails_one_burst_keeps_its_frames_then_comes_back(tmp_path: Path) -> None:
    cam = sim(dead_after_frames=3)
    with pytest.raises(BurstError, match=r"dropped off the bus before frame 4 of 5.*3 frames kept") as err:
        cam.burst(5, tmp_path / "a", "a")
    assert [p.name for p in err.value.record.frames] == ["a_01.dng", "a_02.dng", "a_03.dng"]
    assert all(p.is_file() for p in err.value.record.frames)
    assert cam.connected
    assert len(cam.burst(5, tmp_path / "b", "b").frames) == 5


def test_seconds_per_frame_sets_the_cadence(tmp_path: Path) -> None:
    cam = sim(seconds_per_frame=0.05)
    start = time.perf_counter()
    record = cam.burst(3, tmp_path / "s", "s")
    assert time.perf_counter() - start >= 0.15
    assert all(s >= 0.05 for s in record.per_frame_seconds)


def test_close_restores_the_defaults_and_describe_lists_choices() -> None:
    cam = sim(settings={"aperture": "f/11"})
    cam.lock()
    assert {i.name: i.value for i in cam.describe()}["aperture"] == "f/11"
    cam.close()
    assert not cam.connected
    info = {i.name: i for i in cam.describe()}["aperture"]
    assert info.value == "f/8" and "f/11" in info.choices
