"""Exposure from the film base, metered on the raw: on the simulated camera (which models exposure as a body
does: shutter time x ISO / f-number squared, clipped at its white level, with a third-stop choice list) and on
libgphoto2's virtual camera (its real shutterspeed widget, whose captures do not follow the shutter)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from medianscan.capture.calibrate import ACCEPT, CalibrationError, ExposureCalibration, meter
from medianscan.capture.camera import SettingInfo
from medianscan.capture.camera.files import PROBE_STEM
from medianscan.capture.camera.gphoto2.backend import Gphoto2Camera
from medianscan.capture.camera.settings import true_seconds
from medianscan.capture.camera.simulated.camera import SimulatedCamera
from medianscan.config.schema import CameraConfig
from medianscan.library import film_base, roll_record
from medianscan.library.base_shots import BASE_STEM
from medianscan.library.rolls import Library
from tests.vcam import RewritingCamera, VirtualCamera, virtual_camera


def simulated(light: float = 1.0, **settings: str) -> SimulatedCamera:
    cfg = CameraConfig(settings=dict(settings))
    cfg.simulated.width, cfg.simulated.height, cfg.simulated.light = 768, 512, light
    camera = SimulatedCamera(cfg)
    camera.connect()
    camera.lock()
    return camera


def test_labels_are_read_as_the_true_third_stops() -> None:
    assert true_seconds("1/125") == pytest.approx(1 / 128)
    assert true_seconds("1/3") == pytest.approx(0.315, abs=0.001)
    assert true_seconds("0.0200s") == pytest.approx(2 ** (-17 / 3))  # Nikon's 1/50, as the body spells it
    assert true_seconds("1") == 1.0
    assert true_seconds("bulb") is None


@pytest.mark.parametrize("start", ["1/125", "1/4000", "1/15", "1"])
def test_the_chosen_speed_puts_the_film_base_just_under_clipping(start: str, tmp_path: Path) -> None:
    camera = simulated()
    result = ExposureCalibration(camera, camera.cfg.settings).run(start)
    assert result.shutterspeed in camera.describe()[1].choices  # the camera's own choice
    assert result.brightest_channel == "G" and 0 < result.headroom_ev < 0.52
    assert any(p.over for p in result.probes) == (start in ("1/15", "1"))  # a clipped probe stepped down hard
    # a burst at the chosen speed: the brightest channel's 99.9th percentile at 70-97 % of the raw range
    camera.cfg.settings["shutterspeed"] = result.shutterspeed
    record = camera.burst(3, tmp_path / "check", f"{PROBE_STEM}-check")
    for frame in record.frames:
        reading = meter(frame, result.shutterspeed)
        assert ACCEPT[0] <= reading.fraction <= ACCEPT[1] and not reading.over


def test_too_dim_and_too_bright_are_clear_errors() -> None:
    dim = simulated(light=0.001)
    with pytest.raises(CalibrationError, match=r"the light is too dim: the film base reaches only .* slowest speed 1"):
        ExposureCalibration(dim, dim.cfg.settings).run("1/125")
    bright = simulated(light=2000.0)
    with pytest.raises(CalibrationError, match="still clipped at the fastest shutter speed 1/4000"):
        ExposureCalibration(bright, bright.cfg.settings).run("1/125")


class NoShutter(SimulatedCamera):
    """FAKE: a body whose shutter libgphoto2 cannot set (a manual lens on some bodies, or bulb only)."""

    def describe(self) -> list[SettingInfo]:
        return [s for s in super().describe() if s.name != "shutterspeed"]


def test_a_body_without_a_shutter_widget_is_told_so() -> None:
    camera = NoShutter(CameraConfig())
    camera.connect()
    with pytest.raises(CalibrationError, match="no shutter speed libgphoto2 can set"):
        ExposureCalibration(camera, camera.cfg.settings).run(None)


@pytest.fixture
def vcam(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sample_raw: Path) -> Iterator[VirtualCamera]:
    from tests.stacks import load_scene, write_frame

    with virtual_camera(tmp_path, monkeypatch) as cam:
        scene = load_scene(sample_raw).crop(200, 200, 192, 256)  # the real CR2: its film base, as it were
        cam.source.write_bytes(write_frame(tmp_path / "base.dng", scene.mosaic, scene).read_bytes())
        cam.size = cam.source.stat().st_size
        cam.content = lambda k: cam.source.read_bytes()  # type: ignore[method-assign]
        yield cam


def test_on_the_virtual_camera_its_shutter_choices_are_used_and_a_dead_shutter_is_caught(vcam: VirtualCamera) -> None:
    cfg = CameraConfig(backend="gphoto2", settle_seconds=0.5)
    camera = Gphoto2Camera(cfg, factory=lambda: RewritingCamera(vcam))
    camera.connect()
    try:
        calibration = ExposureCalibration(camera, cfg.settings)
        choices = calibration.choices()
        assert len(choices) >= 5 and all(true_seconds(label) == t for t, label in choices)
        assert [t for t, _ in choices] == sorted(t for t, _ in choices)
        with pytest.raises(CalibrationError, match="did not follow the shutter; is the camera in manual"):
            calibration.run(choices[len(choices) // 2][1])  # its captures are copies of one file, whatever the speed
        assert len(calibration.probes) == 2 and calibration.probes[0].shutter != calibration.probes[1].shutter
    finally:
        camera.close()


@pytest.mark.slow
def test_calibrate_exposure_from_the_command_line_writes_the_config(tmp_path: Path) -> None:
    config = tmp_path / "medianscan.yaml"
    config.write_text(
        '# my scanner\ncamera:\n  backend: simulated  # none at hand\n  settings:\n    iso: "100"  # base\n'
        f"  simulated: {{width: 768, height: 512}}\nlibrary: {tmp_path / 'library'}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "medianscan", "calibrate", "exposure", "--config", str(config), "--json", "--apply"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["shutterspeed"] == "1/100" and result["probes"] and result["brightest_channel"] == "G"
    text = config.read_text()
    assert '    shutterspeed: "1/100"\n' in text and "# my scanner" in text and "# base" in text  # comments kept
    again = subprocess.run(
        [sys.executable, "-m", "medianscan", "calibrate", "exposure", "--config", str(config)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert again.returncode == 0 and "shutter speed 1/100" in again.stdout
    assert text.count("shutterspeed") == config.read_text().count("shutterspeed") == 1  # replaced, not added


def test_applied_the_final_probes_film_base_is_recorded_in_the_current_roll(tmp_path: Path) -> None:
    """The probes are discarded, but with --apply and a roll under way the final probe's base is the roll's
    (source: the exposure probe), the same as a burst of clear film shot at the chosen speed gives."""
    config = tmp_path / "medianscan.yaml"
    config.write_text(
        'camera:\n  backend: simulated\n  settings:\n    iso: "100"\n  simulated: {width: 768, height: 512}\n'
        f"library: {tmp_path / 'library'}\noutputs: {{editors: []}}\n"
    )
    roll = Library(tmp_path / "library").new_roll()
    done = subprocess.run(
        [sys.executable, "-m", "medianscan", "calibrate", "exposure", "--config", str(config), "--json", "--apply"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    recorded = roll_record.read_film_base(roll)
    assert recorded is not None and recorded.source == film_base.SOURCE_PROBE
    assert recorded.measured_from == (f"the probe at {result['shutterspeed']} (not kept)",)
    assert result["film_base"]["base"]["G"] == pytest.approx(recorded.base[1], abs=0.01)
    assert "from exposure probe" in result["roll_base"] and "no base was recorded before" in result["roll_base"]
    assert not list(roll.rglob("probe*"))  # the probes are not kept anywhere in the roll
    camera = simulated(shutterspeed=result["shutterspeed"])
    try:
        shot = camera.burst(3, tmp_path / "clear", BASE_STEM)
    finally:
        camera.close()
    clear = film_base.clear_film(shot.frames)
    for probe, burst in zip(recorded.base, clear.base, strict=True):
        assert probe == pytest.approx(burst, rel=0.02)


@pytest.mark.slow
def test_calibrate_refuses_while_a_running_daemon_holds_the_camera(tmp_path: Path) -> None:
    """The daemon owns the body (one thread, one session): calibrate says so in one sentence and touches nothing;
    once the daemon has stopped it runs."""
    from tests.daemon_thread import RunningDaemon, capture_config

    cfg = capture_config(tmp_path / "library")
    config = tmp_path / "medianscan.yaml"
    config.write_text(
        f"camera:\n  backend: simulated\n  simulated: {{width: 768, height: 512}}\n"
        f"triggers:\n  socket: {cfg.triggers.socket}\n"
    )
    command = [sys.executable, "-m", "medianscan", "calibrate", "exposure", "--config", str(config)]
    with RunningDaemon(cfg):
        refused = subprocess.run(command, capture_output=True, text=True, check=False)
    assert refused.returncode != 0 and refused.stdout == ""
    assert refused.stderr == (
        f"medianscan: a running medianscan holds the camera (its control socket is {cfg.triggers.socket}): stop it "
        "first (`systemctl stop medianscan`, or Ctrl-C in its terminal), calibrate, then start it again\n"
    )
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "shutter speed 1/100" in done.stdout, done.stderr


def test_a_dim_light_is_said_as_the_share_it_reaches_never_0_percent() -> None:
    dim = simulated(light=0.001)
    with pytest.raises(CalibrationError) as caught:
        ExposureCalibration(dim, dim.cfg.settings).run("1/125")
    said = str(caught.value)
    assert "reaches only 0% " not in said and re.search(r"reaches only 0\.\d+% of the raw range", said), said
