"""Marlin and Klipper: 3D-printer firmware driving an XY film stage or an advancer (a printer turned scanner).

Each line gets `ok`; `M400` is answered only once every queued move has finished, so its `ok` says the film has
stopped. While it waits Marlin may send `busy: processing` (it is alive: the wait goes on) and `echo:` lines;
Klipper's messages start with `//`, its errors with `!!`, Marlin's with `Error:`.
"""

from __future__ import annotations

import re

from medianscan.capture.rig.base import await_reply, handshake, need_xy, xy_said
from medianscan.capture.rig.port import LinePort
from medianscan.config.schema import RigConfig

OK = re.compile(r"^ok\b")
ERROR = re.compile(r"^(Error:|!!)")
BUSY = re.compile(r"^(echo:)?busy:")
INFO = re.compile(r"^(echo:|//|start$|Marlin|FIRMWARE_NAME|Cap:|X:)")


class MarlinRig:
    """A Marlin or Klipper controller moving the film along `cfg.axis`, or an XY stage (`cfg.y_axis` too)."""

    def __init__(self, port: LinePort, cfg: RigConfig) -> None:
        self.port, self.cfg = port, cfg

    def start(self) -> None:
        handshake(self.port, "M115", self.cfg.boot_seconds, OK)  # a board that reset on open answers once booted
        for setup in ("G21", "G91"):  # millimetres; relative moves
            self.command(setup)

    def command(self, text: str, timeout: float | None = None, what: str | None = None) -> None:
        self.port.send(text + "\n")
        await_reply(self.port, what or repr(text), timeout or self.cfg.reply_timeout_seconds, OK, ERROR,
                    busy=BUSY, info=INFO)  # fmt: skip

    def move(self, mm: float) -> None:
        self._go(f"{self.cfg.axis}{mm * self.cfg.x_direction:.3f}", f"a move of {mm:+.2f} mm")

    def move_xy(self, dx_mm: float, dy_mm: float) -> None:
        need_xy(self.port, self.cfg)
        cfg = self.cfg
        words = f"{cfg.axis}{dx_mm * cfg.x_direction:.3f} {cfg.y_axis}{dy_mm * cfg.y_direction:.3f}"
        self._go(words, xy_said(dx_mm, dy_mm))

    def _go(self, words: str, what: str) -> None:
        self.command(f"G1 {words} F{self.cfg.feed_mm_per_minute:g}", what=what)
        self.command("M400", timeout=self.cfg.move_timeout_seconds, what=what)  # answered once it has stopped

    def close(self) -> None:
        self.port.close()
