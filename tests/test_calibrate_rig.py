"""`medianscan calibrate rig`: the picture's shift measured in live view (phase correlation, sub-pixel), the
settle that waits for the picture to stand still, and the calibration of a simulated XY stage (its scale per
axis, its angle to the sensor and its backlash) against the stage's own truth."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import imagecodecs
import numpy as np
import numpy.typing as npt
import pytest
from scipy import ndimage

from medianscan.capture.camera.simulated.scene import picture
from medianscan.capture.rig.calibrate_rig import RigCalibrationError, load, phase_shift
from medianscan.capture.rig.port import RigError
from medianscan.capture.rig.settle import Settled, measure_noise, settle, view
from medianscan.cli import main
from tests.sheet_stage import FEED_MM_PER_MINUTE, PREVIEW_FPS


def scene(h: int = 700, w: int = 1000) -> npt.NDArray[np.float32]:
    """A negative's transmission as a preview would show it, in code values."""
    pixels: npt.NDArray[np.float32] = (picture(5, 1, h, w) * 255).astype(np.float32)
    return pixels


def cut(big: npt.NDArray[np.float32], dx: float, dy: float, rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """The view (400 x 600) of `big` with its picture moved by (dx, dy) preview pixels, with noise."""
    moved = ndimage.shift(big, (dy, dx), order=3, mode="nearest")
    view_: npt.NDArray[np.float32] = (moved[150:550, 200:800] + rng.normal(0, 2.0, (400, 600))).astype(np.float32)
    return view_


@pytest.mark.parametrize(("dx", "dy"), [(0.0, 0.0), (37.3, -2.6), (-120.45, 8.2), (3.7, 95.15)])
def test_the_pictures_shift_is_measured_to_a_twentieth_of_a_pixel(dx: float, dy: float) -> None:
    rng = np.random.default_rng(3)
    big = scene()
    found = phase_shift(cut(big, 0, 0, rng), cut(big, dx, dy, rng))
    assert found is not None
    assert found[0] == pytest.approx(dx, abs=0.05) and found[1] == pytest.approx(dy, abs=0.05)


def test_two_unrelated_pictures_share_no_shift() -> None:
    rng = np.random.default_rng(4)
    a = cut(scene(), 0, 0, rng)
    b = (picture(9, 2, 400, 600) * 255).astype(np.float32)
    found = phase_shift(a, b)
    assert found is None or abs(found[0]) > 2 or abs(found[1]) > 2  # no false match at rest


def jpeg(pixels: npt.NDArray[np.floating]) -> bytes:
    return bytes(imagecodecs.jpeg8_encode(np.clip(pixels, 0, 255).astype(np.uint8), level=90))


class Moving:
    """Previews of a picture that travels `frames` frames (a stage decelerating), then stands still with fresh
    noise in each frame: a FAKE of live view's frames, for the loop alone (the simulated stage is below)."""

    def __init__(self, frames: int, noise: float = 2.0, *, shaking: bool = False) -> None:
        self.big, self.frames, self.noise, self.shaking = scene(), frames, noise, shaking
        self.rng = np.random.default_rng(7)
        self.n = 0

    def __call__(self) -> bytes | None:
        self.n += 1
        travel = max(0, self.frames - self.n) * 3.0  # slower as it comes to rest
        if self.shaking:  # a motor ringing: a pixel to and fro, for ever
            travel = float(self.n % 2)
        return jpeg(cut(self.big, travel, 0.0, self.rng) + self.rng.normal(0, self.noise, (400, 600)))


def test_the_settle_waits_for_the_picture_to_stand_still_not_a_fixed_time() -> None:
    at_rest = Moving(0)
    noise = measure_noise(at_rest)
    assert noise is not None and 1.0 < noise < 6.0
    moving = Moving(6)
    done = settle(moving, noise, timeout=10.0, wait_without_live_view=2.0, what="tile 1")
    assert not done.by_wait and 6 <= done.previews <= 8, done.previews
    assert done.said().startswith("still after")


def test_a_picture_that_never_stands_still_is_a_fault_named_with_its_timeout() -> None:
    moving = Moving(0, shaking=True)
    ticks = iter(range(1000))
    with pytest.raises(RigError, match=r"live view did not stand still within 1 s of the move to tile 3 .*"
                       r"is the stage still moving"):  # fmt: skip
        settle(moving, 2.0, timeout=1.0, wait_without_live_view=2.0, what="the move to tile 3",
               clock=lambda: float(next(ticks)) * 0.1)  # fmt: skip


def test_without_live_view_the_configured_wait_is_taken_and_said() -> None:
    waited: list[float] = []
    done = settle(lambda: None, 1.0, timeout=5.0, wait_without_live_view=1.5, what="tile 1", sleep=waited.append)
    assert waited == [1.5] and done.by_wait
    assert done.said() == Settled(1.5, 0, None).said() == "no live view: waited 1.5 s for the stage to settle"
    assert measure_noise(lambda: None) is None
    assert view(jpeg(np.full((8, 8, 3), 100.0, np.float32))).shape == (8, 8)


@pytest.mark.slow
def test_calibrate_rig_from_the_command_line_records_the_stage_in_the_library(tmp_path: Path) -> None:
    """`medianscan calibrate rig` on the simulated camera and XY stage (0.3 degrees off square, 0.08 mm of play,
    no slip): what it prints, and the record scan-tiles reads back."""
    library = tmp_path / "library"
    config = tmp_path / "medianscan.yaml"
    config.write_text(
        f"library: {library}\n"
        "camera:\n  backend: simulated\n  simulated:\n    width: 768\n    height: 512\n"
        f"    preview_fps: {PREVIEW_FPS}\n"
        "    sheet: {width_mm: 40, height_mm: 30, mm_per_pixel: 0.03, rotation_degrees: 0.3, backlash_mm: 0.08}\n"
        # (rig.line is the line protocol's, unused by GRBL; the config's check asks for its {y} on any XY stage)
        f"rig: {{port: simulated, axes: xy, move_timeout_seconds: 3, feed_mm_per_minute: {FEED_MM_PER_MINUTE}, "
        "line: {move: 'M{x} {y}'}}\n"
        f"triggers: {{socket: {tmp_path / 'control.sock'}}}\n"
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["calibrate", "rig", "--config", str(config)]) == 0
    said = out.getvalue()
    assert re.search(r"^X 33\.\d\d photosites/mm, \+0\.[23]\d\d deg to the sensor, backlash 0\.0[6-9]\d mm; Y 33\.\d\d "
                     r"photosites/mm, \+0\.[23]\d\d deg", said, re.M), said  # fmt: skip
    assert f"recorded in {library / 'rig-calibration.json'}" in said
    recorded = load(library)
    assert recorded.x.photosites_per_mm == pytest.approx(1 / 0.03, rel=0.005)
    assert recorded.y.photosites_per_mm == pytest.approx(1 / 0.03, rel=0.005)
    assert recorded.x_degrees == pytest.approx(0.3, abs=0.03) and recorded.y_degrees == pytest.approx(0.3, abs=0.03)
    assert recorded.x.backlash_mm == pytest.approx(0.08, abs=0.01) and recorded.sensor == (768, 512)


def test_an_uncalibrated_rig_is_named_with_the_command_that_calibrates_it(tmp_path: Path) -> None:
    with pytest.raises(RigCalibrationError, match=r"the rig is not calibrated \(.*rig-calibration\.json is missing\): "
                       r"run `medianscan calibrate rig`"):  # fmt: skip
        load(tmp_path)
    (tmp_path / "rig-calibration.json").write_text("{")
    with pytest.raises(RigCalibrationError, match=r"cannot read the rig's calibration"):
        load(tmp_path)
