"""An XY stage (`rig.axes: xy`): moves in X and Y over each protocol, and the simulated sheet the simulated rig
moves under the camera.

The protocols are spoken over a serial port to the GRBL emulator and to small Marlin and Arduino-sketch stand-ins
served on a pseudo-terminal (FAKES of the hardware, as in test_rig.py: pyserial opens them as it would a USB
controller). The sheet's truth is the stage's own: where its carriage really is (`sheet.stage.position()`) and
which photosite of the picture the view's corner sees (`sheet.view_origin_px()`).
"""

from __future__ import annotations

import time

import pytest

from medianscan.capture.rig.grbl import GrblRig
from medianscan.capture.rig.grbl_firmware import Faults
from medianscan.capture.rig.line import LineRig
from medianscan.capture.rig.marlin import MarlinRig
from medianscan.capture.rig.port import RigError, SerialPort
from medianscan.config import parse_config
from medianscan.config.schema import ConfigError
from tests.test_rig import PtyDevices, grbl_firmware, pty_device, rig_config

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
        ("rig:\n  axes: xy\n  line:\n    move: 'M{steps}'\n", "must contain {y} or {y_steps} for an XY stage"),
        ("rig:\n  line:\n    move: 'M{z}'\n", "may hold only {mm}, {steps}, {x}, {y}, {x_steps}, {y_steps}"),
        ("rig:\n  x_direction: 2\n", "expected one of 1, -1, got 2"),
        ("rig:\n  axes: xyz\n", "expected one of 'x', 'xy', got 'xyz'"),
    ],
)
def test_the_xy_options_are_checked_with_a_sentence_naming_the_key(text: str, said: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        parse_config(text)
    assert said in str(caught.value), str(caught.value)
