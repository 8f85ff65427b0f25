"""The rig's serial line: lines out, lines in, each wait bounded. A real port is pyserial's (any URL it opens:
/dev/ttyUSB0, /dev/ttyACM0, a pseudo-terminal, rfc2217://host:port); the simulated rig's is a firmware emulator
in this process (capture.rig.grbl_firmware). Both answer the same three calls, so the protocols above them are
the same code for both."""

from __future__ import annotations

import contextlib
import errno
import termios
import time
from pathlib import Path
from typing import Protocol

import serial

from medianscan.errors import MedianscanError

MAX_LINE = 512  # a controller's reply line is far shorter; a longer one is noise on the line


class RigError(MedianscanError):
    """The rig cannot go on: the one sentence says what happened and that the film is where it stopped."""


class LinePort(Protocol):
    """A line-oriented link to the rig's controller."""

    name: str

    def send(self, text: str) -> None:
        """Send `text` as it is (a realtime byte such as GRBL's `?` has no newline)."""

    def line(self, timeout: float) -> str | None:
        """The next line the controller sent, without its end; None when none came within `timeout` s."""

    def close(self) -> None: ...


class SerialPort:
    """A serial port through pyserial; a vanished port (unplugged, its pseudo-terminal closed) is a RigError."""

    def __init__(self, url: str, baud: int) -> None:
        self.name = url
        try:
            self._serial = serial.serial_for_url(url, baudrate=baud, timeout=0.05, write_timeout=2.0)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise RigError(_cannot_open(url, exc)) from None
        self._pending = bytearray()

    def send(self, text: str) -> None:
        try:
            self._serial.write(text.encode("ascii"))
            self._serial.flush()
        except (serial.SerialException, OSError, termios.error) as exc:
            raise RigError(f"the rig's port {self.name} vanished while sending {text.strip()!r}: {exc}") from None

    def line(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while True:
            end = self._pending.find(b"\n")
            if end >= 0:
                raw, self._pending = bytes(self._pending[:end]), self._pending[end + 1 :]
                return raw.decode("ascii", "replace").strip("\r")
            if len(self._pending) > MAX_LINE:
                self._pending.clear()
                raise RigError(f"the rig's port {self.name} sends no line ends: is the baud rate right?")
            if time.monotonic() >= deadline:
                return None
            try:
                chunk = self._serial.read(max(1, self._serial.in_waiting))
            except (serial.SerialException, OSError, termios.error) as exc:
                raise RigError(f"the rig's port {self.name} vanished: {exc}") from None
            self._pending += chunk

    def close(self) -> None:
        with contextlib.suppress(serial.SerialException, OSError):
            self._serial.close()


def _cannot_open(url: str, exc: Exception) -> str:
    """Why a port did not open, in one sentence with what to do (pyserial's own text repeats the errno)."""
    code = getattr(exc, "errno", None)
    if code == errno.ENOENT or (url.startswith("/") and not Path(url).exists()):
        return (
            f"the rig's port {url} does not exist: is the rig plugged in? (ls /dev/ttyUSB* /dev/ttyACM* lists the "
            "serial ports there are)"
        )
    if code in (errno.EACCES, errno.EPERM):
        return f"the rig's port {url} may not be opened by this user: add it to group dialout (the service is in it)"
    if code == errno.EBUSY:
        return f"the rig's port {url} is in use by another program (a terminal, a G-code sender?)"
    return f"cannot open the rig's port {url}: {exc}"
