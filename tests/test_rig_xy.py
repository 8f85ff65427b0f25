"""An XY stage (`rig.axes: xy`): moves in X and Y over each protocol, and the simulated sheet the simulated rig
moves under the camera.

The protocols are spoken over a serial port to the GRBL emulator and to small Marlin and Arduino-sketch stand-ins
served on a pseudo-terminal (FAKES of the hardware, as in test_rig.py: pyserial opens them as it would a USB
controller). The sheet's truth is the stage's own: where its carriage really is (`sheet.stage.position()`) and
which photosite of the picture the view's corner sees (`sheet.view_origin_px()`).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from medianscan.capture.camera.simulated.camera import SimulatedCamera
from medianscan.capture.camera.simulated.sheet import SimulatedSheet, Stage, sheet_of
from medianscan.capture.rig.base import Rig
from medianscan.capture.rig.finding import decode
from medianscan.capture.rig.grbl import GrblRig
from medianscan.capture.rig.grbl_firmware import Faults, GrblFirmware
from medianscan.capture.rig.line import LineRig
from medianscan.capture.rig.marlin import MarlinRig
from medianscan.capture.rig.open import open_rig
from medianscan.capture.rig.port import RigError, SerialPort
from medianscan.config import parse_config
from medianscan.config.schema import Config, ConfigError, SheetConfig
from medianscan.errors import MedianscanError
from tests.test_rig import PtyDevice, PtyDevices, grbl_firmware, pty_device, rig_config

__all__ = ["pty_device"]  # the pseudo-terminal fixture, shared with test_rig.py


def lines_device(pty_device: PtyDevices, reply: bytes) -> tuple[list[str], str]:
    """A FAKE controller that notes each line and answers `reply` to it; its port's path."""
    seen: list[str] = []

    def answer(data: bytes) -> bytes:
        out = b""
        for line in data.decode().splitlines():
            seen.append(line)
            out += reply
        return out

    return seen, pty_device(answer).path


def test_marlin_moves_x_and_y_in_one_g1_then_waits_for_m400(pty_device: PtyDevices) -> None:
    seen, path = lines_device(pty_device, b"ok\n")
    rig = MarlinRig(SerialPort(path, 250000), rig_config(axes="xy", y_direction=-1))
    rig.start()
    rig.move_xy(12.5, -3.25)
    rig.move(2.0)  # the roll's move: X alone
    rig.close()
    assert seen[-4:] == ["G1 X12.500 Y3.250 F6000", "M400", "G1 X2.000 F6000", "M400"]  # Y wired reversed


def test_a_line_template_gets_x_y_and_their_steps_each_axis_at_its_own_rate(pty_device: PtyDevices) -> None:
    seen, path = lines_device(pty_device, b"moving\nOK\n")
    cfg = rig_config(axes="xy", x_direction=-1)
    cfg.line.move = "XY {x} {y} {x_steps} {y_steps}"
    cfg.line.steps_per_mm, cfg.line.y_steps_per_mm = 80.0, 200.0
    rig = LineRig(SerialPort(path, 9600), cfg)
    rig.start()
    rig.move_xy(1.5, -0.25)
    rig.move(1.0)  # {y} is 0 for a move along X alone
    rig.close()
    assert seen == ["XY -1.500 -0.250 -120 -50", "XY -1.000 0.000 -80 0"]


@pytest.mark.parametrize("rig_class", [GrblRig, MarlinRig, LineRig])
def test_a_one_axis_rig_refuses_a_move_in_x_and_y_naming_rig_axes_and_sends_nothing(
    pty_device: PtyDevices, rig_class: type[GrblRig | MarlinRig | LineRig]
) -> None:
    seen: list[str] | list[float]
    if rig_class is GrblRig:
        device, firmware = grbl_firmware(pty_device, Faults())
        path, seen = device.path, firmware.history
    else:
        seen, path = lines_device(pty_device, b"ok\n")
    rig = rig_class(SerialPort(path, 115200), rig_config(boot_seconds=0.2))
    rig.start()
    before = list(seen)
    with pytest.raises(RigError, match=r"moves one axis \(rig.axes: x\): set rig.axes: xy .*nothing was moved"):
        rig.move_xy(1.0, 1.0)
    time.sleep(0.1)
    assert seen == before
    rig.close()


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("rig:\n  axes: xy\n  y_axis: X\n", "rig.y_axis: is X, the same letter as rig.axis"),
        (
            "rig:\n  axes: xy\n  protocol: line\n  line:\n    move: 'M{steps}'\n",
            "must contain {y} or {y_steps} for an XY stage",
        ),
        ("rig:\n  line:\n    move: 'M{z}'\n", "may hold only {mm}, {steps}, {x}, {y}, {x_steps}, {y_steps}"),
        ("rig:\n  x_direction: 2\n", "expected one of 1, -1, got 2"),
        ("rig:\n  axes: xyz\n", "expected one of 'x', 'xy', got 'xyz'"),
    ],
)
def test_the_xy_options_are_checked_with_a_sentence_naming_the_key(text: str, said: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        parse_config(text)
    assert said in str(caught.value), str(caught.value)


@pytest.mark.parametrize("protocol", ["grbl", "marlin"])
def test_an_xy_stage_on_grbl_or_marlin_needs_no_line_template(protocol: str) -> None:
    """The line template's {y} is asked of the line protocol alone: GRBL and Marlin are sent G1 X Y."""
    cfg = parse_config(f"rig:\n  axes: xy\n  protocol: {protocol}\n  port: /dev/ttyUSB0\n")
    assert cfg.rig.axes == "xy" and cfg.rig.protocol == protocol


# --- the GRBL emulator's second axis ---------------------------------------------------------------------------


def grbl_stage(pty_device: PtyDevices, faults: Faults, **stage: float) -> tuple[PtyDevice, GrblFirmware, Stage]:
    """The GRBL emulator over an XY stage, on a pseudo-terminal."""
    table = Stage(**stage)  # type: ignore[arg-type]
    firmware = GrblFirmware(table, faults=faults)

    def answer(data: bytes) -> bytes:
        firmware.receive(data)
        return firmware.take()

    return pty_device(answer, firmware.take), firmware, table


@pytest.mark.slow
def test_grbl_moves_an_xy_stage_in_one_linear_move_at_its_feed_and_reports_both_axes(
    pty_device: PtyDevices,
) -> None:
    device, firmware, stage = grbl_stage(pty_device, Faults())
    path = device.path
    rig = GrblRig(SerialPort(path, 115200), rig_config(axes="xy", feed_mm_per_minute=1200))  # 20 mm/s
    rig.start()
    started = time.monotonic()
    rig.move_xy(6.0, -8.0)  # 10 mm along its path: 0.5 s at 20 mm/s
    took = time.monotonic() - started
    assert 0.5 <= took < 1.5, took
    assert stage.position() == pytest.approx((6.0, -8.0))
    rig.move_xy(-1.5, 0.0)
    rig.move(0.5)  # the roll's move on a stage: X alone
    assert stage.position() == pytest.approx((5.0, -8.0))
    assert firmware.history_xy == [(6.0, -8.0), (-1.5, 0.0), (0.5, 0.0)]
    rig.port.send("?")
    report = rig.port.line(1.0)
    assert report is not None and report.startswith("<Idle|MPos:5.000,-8.000,0.000|"), report
    rig.close()


def test_both_axes_travel_together_and_arrive_together(pty_device: PtyDevices) -> None:
    """Midway through a move each axis has covered the same share of its distance (a linear move, not X then Y)."""
    device, _, stage = grbl_stage(pty_device, Faults())
    path = device.path
    rig = GrblRig(SerialPort(path, 115200), rig_config(axes="xy", feed_mm_per_minute=600))  # 10 mm/s
    rig.start()
    rig.command("G1 X3.000 Y-4.000 F600")  # 5 mm: 0.5 s
    time.sleep(0.3)
    x, y = stage.position()
    assert 0.1 < x / 3.0 < 0.9 and x / 3.0 == pytest.approx(y / -4.0, abs=0.02), (x, y)
    assert rig.status() == "Run"
    rig.command("G4 P0", timeout=3.0)
    assert stage.position() == pytest.approx((3.0, -4.0)) and rig.status() == "Idle"
    rig.close()


@pytest.mark.slow
def test_an_alarm_stops_both_axes_where_they_are_and_a_lost_port_is_named(pty_device: PtyDevices) -> None:
    device, firmware, stage = grbl_stage(pty_device, Faults(alarm_at=2))
    path = device.path
    rig = GrblRig(SerialPort(path, 115200), rig_config(axes="xy", feed_mm_per_minute=1200))
    rig.start()
    rig.move_xy(1.0, 1.0)
    with pytest.raises(RigError, match=r"refused a move of X\+10.00 Y-10.00 mm: ALARM:1 \(hard limit triggered\); "
                                       r"the film is where it stopped"):  # fmt: skip
        rig.move_xy(10.0, -10.0)
    time.sleep(0.2)
    x, y = stage.position()
    assert 1.5 < x < 10.0 and x - 1.0 == pytest.approx(1.0 - y, abs=0.05), (x, y)  # stopped partway, on its path
    assert firmware.critical
    rig.start()  # reset and unlocked
    rig.move_xy(-1.0, 0.0)
    assert stage.position() == pytest.approx((x - 1.0, y))
    device.vanish()  # unplugged
    with pytest.raises(RigError, match=f"the rig's port {re.escape(path)} vanished"):
        rig.move_xy(1.0, 1.0)
    rig.close()


def test_g90_moves_to_where_the_words_say_and_an_axis_not_named_stays(pty_device: PtyDevices) -> None:
    device, firmware, stage = grbl_stage(pty_device, Faults())
    path = device.path
    rig = GrblRig(SerialPort(path, 115200), rig_config(axes="xy"))
    rig.start()
    rig.move_xy(2.0, 3.0)
    rig.command("G90")
    rig.command("G1 Y1.000 F6000")
    rig.command("G4 P0")
    assert stage.position() == pytest.approx((2.0, 1.0)) and firmware.history_xy[-1] == pytest.approx((0.0, -2.0))
    rig.close()


# --- the simulated sheet, through the simulated camera, moved by the simulated rig ------------------------------


def sheet_config(tmp_path: Path, **sheet: Any) -> Config:
    """A sheet on the simulated XY stage, the simulated rig (GRBL emulator) moving it, the camera's full view."""
    cfg = Config(library=tmp_path / "library", frames=3)
    cfg.camera.backend = "simulated"
    cfg.camera.simulated.sheet = SheetConfig(**{"width_mm": 60.0, "height_mm": 45.0, **sheet})
    cfg.rig.port, cfg.rig.axes = "simulated", "xy"
    cfg.rig.feed_mm_per_minute, cfg.rig.move_timeout_seconds = 6000.0, 5.0
    return cfg


@dataclass
class OnStage:
    """The simulated camera's live view of a sheet on the simulated rig, and the stage's truth."""

    cfg: Config
    camera: SimulatedCamera
    rig: Rig
    sheet: SimulatedSheet

    def view(self) -> npt.NDArray[np.float64]:
        """A live-view frame, grey (it is binned 2x2: one pixel per two photosites each way)."""
        return np.asarray(decode(self.camera.preview()).mean(axis=-1), dtype=np.float64)


@pytest.fixture
def on_stage(tmp_path: Path) -> Iterator[Callable[..., OnStage]]:
    opened: list[OnStage] = []

    def make(**sheet: Any) -> OnStage:
        cfg = sheet_config(tmp_path, **sheet)
        camera = SimulatedCamera(cfg.camera)
        camera.connect()
        found = sheet_of(cfg.camera.simulated)
        assert found is not None
        opened.append(OnStage(cfg, camera, open_rig(cfg), found))
        return opened[-1]

    yield make
    for stage in opened:
        stage.rig.close()
        stage.camera.close()


def shift_between(before: npt.NDArray[np.float64], after: npt.NDArray[np.float64]) -> tuple[float, float]:
    """How far (dx, dy) px the picture moved from `before` to `after`: phase correlation (numpy's FFT, a Hann
    window, frequencies below 0.3 cycles per pixel), its peak refined on a 0.01 px grid by a direct DFT."""
    window = np.outer(np.hanning(before.shape[0]), np.hanning(before.shape[1]))
    a = np.fft.fft2((before - before.mean()) * window)
    b = np.fft.fft2((after - after.mean()) * window)
    cross = b * np.conj(a)
    cross /= np.abs(cross) + 1e-12
    n, m = cross.shape
    ky, kx = np.fft.fftfreq(n), np.fft.fftfreq(m)
    cross *= (np.abs(ky) < 0.3)[:, None] & (np.abs(kx) < 0.3)[None, :]
    surface = np.fft.ifft2(cross).real
    py, px = np.unravel_index(int(surface.argmax()), surface.shape)
    py, px = (py - n if py > n // 2 else py), (px - m if px > m // 2 else px)
    ys, xs = py + np.arange(-1.0, 1.0, 0.01), px + np.arange(-1.0, 1.0, 0.01)
    fine = (np.exp(2j * np.pi * np.outer(ys, ky)) @ cross @ np.exp(2j * np.pi * np.outer(kx, xs))).real
    iy, ix = np.unravel_index(int(fine.argmax()), fine.shape)
    return float(xs[ix]), float(ys[iy])


@pytest.mark.slow
def test_a_move_shifts_the_live_view_by_its_length_in_photosites_rotated_by_the_stage_angle(
    on_stage: Callable[..., OnStage],
) -> None:
    """The picture moves against the stage (a move of +X shows what lies to the right of the view), by
    d / mm_per_photosite photosites along the rotated axis; measured to 0.1 photosite (0.05 live-view pixel)."""
    stage = on_stage(rotation_degrees=0.5, mm_per_pixel=0.02)
    angle = math.radians(0.5)
    before = stage.view()
    worst = 0.0
    for dx, dy in [(1.234, 0.0), (0.0, 0.777), (-2.5, 1.3), (5.0, 0.0), (0.0, -5.0)]:
        stage.rig.move_xy(dx, dy)
        after = stage.view()
        measured = np.array(shift_between(before, after)) * 2  # photosites
        along = np.array([dx * math.cos(angle) - dy * math.sin(angle), dx * math.sin(angle) + dy * math.cos(angle)])
        expected = -along / 0.02
        worst = max(worst, float(np.abs(measured - expected).max()))
        if dy == 0 and dx == 5.0:  # the stage's angle, from a long move along X
            assert math.degrees(math.atan2(-measured[1], -measured[0])) == pytest.approx(0.5, abs=0.05)
        if dx == 0 and dy == -5.0:  # and along Y (-Y, so the picture moves down): the same rotation
            assert math.degrees(math.atan2(-measured[0], measured[1])) == pytest.approx(0.5, abs=0.05)
        before = after
    assert worst <= 0.1, worst
    assert stage.sheet.stage.position() == pytest.approx((3.734, -2.923))  # the truth: no slip, no play


@pytest.mark.slow
def test_a_reversal_loses_the_backlash_and_moves_on_in_one_direction_lose_nothing(
    on_stage: Callable[..., OnStage],
) -> None:
    stage = on_stage(backlash_mm=0.05)
    start = stage.view()
    for dx, dy in [(2.0, 0.0), (1.0, 0.0)]:  # on in + (the play was last taken up moving +): nothing lost
        stage.rig.move_xy(dx, dy)
    assert stage.sheet.stage.position() == pytest.approx((3.0, 0.0))
    stage.rig.move_xy(-3.0, 0.0)  # reversed: 0.05 mm short
    assert stage.sheet.stage.position() == pytest.approx((0.05, 0.0))
    seen = np.array(shift_between(start, stage.view())) * 2
    assert seen == pytest.approx([-0.05 / 0.02, 0.0], abs=0.1)  # the view says so too: 2.5 photosites
    stage.rig.move_xy(0.0, -1.0)  # Y's first move is a reversal too
    assert stage.sheet.stage.position() == pytest.approx((0.05, -0.95))
    stage.rig.move_xy(0.0, 1.0)  # and back: lost again
    assert stage.sheet.stage.position() == pytest.approx((0.05, 0.0))


def test_each_move_slips_by_a_seeded_uniform_share_of_its_length_per_axis() -> None:
    """400 moves of the real Stage on a clock the test turns (waiting out 400 moves in real time proves nothing
    more): each axis lands within `slip` of its length, spread evenly, the same for the same seed."""
    now = [0.0]

    def errors(seed: int) -> npt.NDArray[np.float64]:
        stage = Stage(slip=0.02, seed=seed, clock=lambda: now[0])
        found = []
        for k in range(400):
            asked = (10.0, -4.0) if k % 2 == 0 else (-10.0, 4.0)
            before = np.array(stage.position())
            now[0] = stage.go(*asked, speed=100.0) + 0.001
            found.append((np.array(stage.position()) - before) / np.array(asked) - 1)
        return np.array(found)

    first = errors(5)
    assert np.abs(first).max() <= 0.02 and np.abs(first).max() > 0.019
    assert first.std(axis=0) == pytest.approx([0.02 / math.sqrt(3)] * 2, rel=0.12)  # uniform over +-2 %
    assert np.abs(first.mean(axis=0)).max() < 4 * 0.02 / math.sqrt(3) / math.sqrt(400)
    assert abs(np.corrcoef(first[:, 0], first[:, 1])[0, 1]) < 0.15  # each axis its own
    assert np.array_equal(errors(5), first) and not np.array_equal(errors(6), first)


def known_pattern(rows: int, cols: int) -> npt.NDArray[np.uint16]:
    """A picture a test knows: a diagonal ramp, a checker of 16-photosite squares and a seeded texture (each
    photosite its own), 16-bit."""
    y, x = np.mgrid[0:rows, 0:cols]
    texture = np.random.default_rng(11).uniform(-0.1, 0.1, (rows, cols))
    values = 0.2 + 0.4 * (x + y) / (rows + cols) + 0.1 * (((x // 16) + (y // 16)) % 2) + texture
    return np.asarray(np.round(values * 65535), dtype=np.uint16)


@pytest.mark.slow
def test_a_burst_shows_the_sheets_tiff_where_the_stage_truly_is(
    tmp_path: Path, on_stage: Callable[..., OnStage]
) -> None:
    """A 16-bit grey TIFF on the sheet: the raws of a burst after a move are that picture, photosite for photosite
    at the stage's true place, through the light's falloff (the mean of the burst against the picture x the light
    path: the same up to the film's level, within noise and the film's dust)."""
    import rawpy
    import tifffile

    from medianscan.capture.camera.simulated.scene import BLACK, light_path

    picture = known_pattern(1600, 2000)
    tifffile.imwrite(tmp_path / "known.tif", picture)
    stage = on_stage(picture=tmp_path / "known.tif", width_mm=0.0, height_mm=0.0, mm_per_pixel=0.02)
    assert stage.sheet.size_px == (2000, 1600)  # the sheet takes the picture's size
    stage.rig.move_xy(3.0, -1.6)  # 150 and -80 photosites
    x, y = stage.sheet.view_origin_px()
    assert (x, y) == pytest.approx(((2000 - 1536) / 2 + 150, (1600 - 1024) / 2 - 80))
    record = stage.camera.burst(3, tmp_path / "stack", "tile")
    frames = []
    for frame in sorted(record.stack.glob("*.dng")):
        with rawpy.imread(str(frame)) as raw:
            frames.append(raw.raw_image_visible.astype(np.float64) - BLACK)
    assert len(frames) == 3
    seen = np.mean(frames, axis=0)
    ix, iy = round(x), round(y)
    expected = picture[iy : iy + 1024, ix : ix + 1536] / 65535 * light_path(1024, 1536)
    ratio = seen / expected
    level = float(np.median(ratio))
    assert np.median(np.abs(ratio / level - 1)) < 0.01  # noise of a 3-frame mean: the same picture, in place
    assert np.corrcoef(seen.ravel(), expected.ravel())[0, 1] > 0.995
    shifted = picture[iy : iy + 1024, ix + 2 : ix + 1538] / 65535 * light_path(1024, 1536)
    assert np.median(np.abs(seen / shifted / level - 1)) > 0.05  # two photosites off is not the same


def test_an_rgb_tiff_gives_each_photosite_its_colours_plane_and_beyond_the_sheet_is_the_bare_light(
    tmp_path: Path,
) -> None:
    import tifffile

    from medianscan.capture.camera.simulated.scene import BARE_LIGHT, BASE_TRANSMISSION, FILM_LIGHT, mask

    grey = known_pattern(300, 400)
    rgb = np.stack([grey, np.full_like(grey, 30000), 65535 - grey], axis=-1)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    cfg = SheetConfig(picture=tmp_path / "rgb.tif", width_mm=10.0, height_mm=8.0, mm_per_pixel=0.02)
    sheet = SimulatedSheet(cfg, 200, 100)  # a sheet of 500 x 400 photosites, its picture 400 x 300 in the middle
    seen = sheet.through(sheet.key())
    x, y = sheet.view_origin_px()
    assert (x, y) == (100.0, 100.0)
    crop = rgb[100:200, 100:300] / 65535
    assert np.allclose(seen[0::2, 0::2], crop[0::2, 0::2, 0], atol=1e-5)  # R sites: red
    assert np.allclose(seen[0::2, 1::2], crop[0::2, 1::2, 1], atol=1e-5)  # G sites: green
    assert np.allclose(seen[1::2, 1::2], crop[1::2, 1::2, 2], atol=1e-5)  # B sites: blue
    sheet.stage.go(4.0, -3.0, 1e6)  # right and up, to the picture's corner and past the sheet's edge
    time.sleep(0.1)
    seen = sheet.through(sheet.key())
    assert sheet.view_origin_px() == pytest.approx((300.0, -50.0))
    assert np.allclose(seen[50::2, 1:100:2], rgb[0:50:2, 301:400:2, 1] / 65535, atol=1e-5)  # the picture's corner
    base = BASE_TRANSMISSION * mask(100, 200)
    assert np.allclose(seen[:50, :150], base[:50, :150])  # the sheet around its picture: clear base
    assert np.allclose(seen[50:, 100:150], base[50:, 100:150])
    assert np.allclose(seen[:, 150:], BARE_LIGHT / FILM_LIGHT)  # past the sheet's edge: no film


SIMULATED = "camera:\n  backend: simulated\n  simulated:\n    sheet:\n"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (SIMULATED + "      width_mm: 50\n", "camera.simulated.sheet: needs width_mm and height_mm"),
        (
            SIMULATED + "      width_mm: 50\n      height_mm: 40\n    strip:\n      frames: 3\n",
            "a strip or a sheet, not both",
        ),
        (SIMULATED + "      picture: /nowhere/at/all.tif\n", "sheet.picture: /nowhere/at/all.tif is not a file"),
        (
            SIMULATED + "      width_mm: 50\n      height_mm: 40\n      rotation_degrees: 45\n",
            "at most 10 (a stage off",
        ),
        ("rig:\n  port: simulated\ncamera:\n  backend: simulated\n", "strip.frames (a roll) or camera.simulated.sheet"),
        (
            "rig:\n  port: simulated\n  axes: xy\ncamera:\n  backend: simulated\n  simulated:\n"
            "    strip:\n      frames: 3\n",
            "rig.axes: is xy, but the simulated rig moves a strip along one axis",
        ),
    ],
)
def test_the_sheets_options_are_checked_with_a_sentence(text: str, said: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert said in str(caught.value), str(caught.value)


def test_a_picture_that_is_not_a_16_bit_tiff_is_named_in_one_sentence(tmp_path: Path) -> None:
    import tifffile

    tifffile.imwrite(tmp_path / "eight.tif", np.zeros((20, 30), dtype=np.uint8))
    (tmp_path / "text.tif").write_text("not a tiff")
    for name, said in (("eight.tif", r"is uint8 of shape \(20, 30\): the sheet needs a 16-bit grey or RGB TIFF"),
                       ("text.tif", r"cannot be read as a TIFF")):  # fmt: skip
        with pytest.raises(
            MedianscanError, match=f"camera.simulated.sheet.picture {re.escape(str(tmp_path / name))} {said}"
        ):
            SimulatedSheet(SheetConfig(picture=tmp_path / name), 64, 48)


def test_the_generated_sheet_has_detail_everywhere_for_registration() -> None:
    """Without a picture: no plain area anywhere (each 64-photosite block has structure well above the grain),
    the same for the same seed."""
    sheet = SimulatedSheet(SheetConfig(width_mm=40.0, height_mm=30.0, mm_per_pixel=0.02, seed=4), 256, 128)
    picture = sheet.picture[:, :, 0]
    assert picture.shape == (1500, 2000)
    blocks = picture[: 1500 // 64 * 64, : 2000 // 64 * 64].reshape(1500 // 64, 64, 2000 // 64, 64)
    smooth = blocks.mean(axis=(1, 3))
    assert blocks.std(axis=(1, 3)).min() > 0.03  # structure in every block, above the grain (about 0.015)
    assert float(np.ptp(smooth)) > 0.2  # and structure across the sheet, not grain alone
    again = SimulatedSheet(SheetConfig(width_mm=40.0, height_mm=30.0, mm_per_pixel=0.02, seed=4), 256, 128)
    assert np.array_equal(again.picture, sheet.picture)


def test_the_simulated_rigs_lost_port_on_a_stage_is_named(on_stage: Callable[..., OnStage]) -> None:
    stage = on_stage()
    stage.rig.close()
    stage.rig = open_rig(stage.cfg, Faults(vanish_at=2))
    stage.rig.move_xy(1.0, 1.0)
    with pytest.raises(RigError, match="the rig's port simulated vanished"):
        stage.rig.move_xy(1.0, 1.0)
    assert stage.sheet.stage.position() == pytest.approx((1.0, 1.0))  # the second move never went
