"""A plain line protocol, for advancers built on an Arduino with a sketch of their own: the commands and the
replies are set in the config (`rig.line`), e.g. `move: "M{steps}"`, `done: "^OK"`, `error: "^ERR"`. A move is
one command, answered by a `done` line once the motor has stopped; any other line is logged and ignored unless
it matches `error`."""

from __future__ import annotations

import re
import time

from medianscan.capture.rig.base import await_reply, handshake
from medianscan.capture.rig.port import LinePort
from medianscan.config.schema import RigConfig

ANY = re.compile(".")


class LineRig:
    """An advancer speaking the templates of `cfg.line`."""

    def __init__(self, port: LinePort, cfg: RigConfig) -> None:
        self.port, self.cfg = port, cfg
        self.done = re.compile(cfg.line.done)
        self.error = re.compile(cfg.line.error)

    def start(self) -> None:
        if self.cfg.line.hello:  # sent until the sketch, booted, answers it
            handshake(self.port, self.cfg.line.hello, self.cfg.boot_seconds, self.done, self.error)
            return
        deadline = time.monotonic() + self.cfg.boot_seconds  # no greeting: let a board that reset on open boot
        while (left := deadline - time.monotonic()) > 0:
            self.port.line(left)

    def move(self, mm: float) -> None:
        steps = round(mm * self.cfg.line.steps_per_mm)
        text = self.cfg.line.move.format(mm=f"{mm:.3f}", steps=steps)
        self.port.send(text + "\n")
        await_reply(self.port, f"a move of {mm:+.2f} mm ({text!r})", self.cfg.move_timeout_seconds, self.done,
                    self.error, info=ANY)  # fmt: skip

    def close(self) -> None:
        self.port.close()
