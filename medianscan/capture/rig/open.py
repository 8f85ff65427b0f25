"""Opening the configured rig: its port (pyserial's, or the simulated GRBL controller's line in this process) and
its protocol (grbl, marlin, line), started and ready to move."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from medianscan.capture.rig.base import Rig
from medianscan.capture.rig.grbl import GrblRig
from medianscan.capture.rig.line import LineRig
from medianscan.capture.rig.marlin import MarlinRig
from medianscan.capture.rig.port import LinePort, RigError, SerialPort
from medianscan.config.schema import Config

if TYPE_CHECKING:  # the simulated controller (and the simulator's scipy) is imported when a config asks for it
    from medianscan.capture.rig.grbl_firmware import Faults, GrblFirmware

__all__ = ["FirmwarePort", "Rig", "RigError", "open_rig"]

POLL_SECONDS = 0.005


class FirmwarePort:
    """The simulated rig's line: the GRBL controller in this process, answering in real time."""

    def __init__(self, firmware: GrblFirmware, name: str = "simulated") -> None:
        self.firmware, self.name = firmware, name
        self._pending = ""

    def send(self, text: str) -> None:
        self._check()
        self.firmware.receive(text.encode("ascii"))

    def line(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while "\n" not in self._pending:
            self._check()
            self._pending += self.firmware.take().decode("ascii")
            if "\n" in self._pending:
                break
            if time.monotonic() >= deadline:
                return None
            time.sleep(POLL_SECONDS)
        line, self._pending = self._pending.split("\n", 1)
        return line.strip("\r")

    def _check(self) -> None:
        if self.firmware.vanished:
            raise RigError(f"the rig's port {self.name} vanished")

    def close(self) -> None:
        pass


def open_rig(cfg: Config, faults: Faults | None = None) -> Rig:
    """The configured rig, opened and started; RigError saying why it cannot be. `faults` (tests) go to the
    simulated controller."""
    rig_cfg = cfg.rig
    if rig_cfg.port is None:
        raise RigError("no rig is configured: set rig.port (e.g. /dev/ttyUSB0, or simulated) and rig.protocol")
    port: LinePort
    if rig_cfg.port == "simulated":
        from medianscan.capture.camera.simulated.sheet import sheet_of
        from medianscan.capture.camera.simulated.strip import strip_of
        from medianscan.capture.rig.grbl_firmware import GrblFirmware

        strip, sheet = strip_of(cfg.camera.simulated), sheet_of(cfg.camera.simulated)
        if cfg.camera.backend != "simulated" or (strip is None and sheet is None):
            raise RigError("rig.port: simulated moves the simulated camera's strip or sheet: set camera.backend: "
                           "simulated and camera.simulated.strip.frames or camera.simulated.sheet")  # fmt: skip
        if sheet is not None:  # the XY stage: its own slip and play
            firmware = GrblFirmware(sheet.stage, faults=faults, axis=rig_cfg.axis, y_axis=rig_cfg.y_axis)
        else:
            assert strip is not None
            firmware = GrblFirmware(strip.carriage, slip=strip.cfg.slip, seed=strip.cfg.seed, faults=faults,
                                    axis=rig_cfg.axis)  # fmt: skip
        port = FirmwarePort(firmware)
    else:
        port = SerialPort(rig_cfg.port, rig_cfg.baud)
    rig: Rig
    if rig_cfg.protocol == "grbl":
        rig = GrblRig(port, rig_cfg)
    elif rig_cfg.protocol == "marlin":
        rig = MarlinRig(port, rig_cfg)
    else:
        rig = LineRig(port, rig_cfg)
    try:
        rig.start()
    except RigError:
        rig.close()
        raise
    return rig
