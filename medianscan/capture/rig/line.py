"""A plain line protocol, for advancers built on an Arduino with a sketch of their own: the commands and the
replies are set in the config (`rig.line`), e.g. `move: "M{steps}"` (an XY stage: `move: "XY {x_steps}
{y_steps}"`), `done: "^OK"`, `error: "^ERR"`. A move is one command, answered by a `done` line once the motors
have stopped; any other line is logged and ignored unless it matches `error`."""

from __future__ import annotations

import re
import time

from medianscan.capture.rig.base import await_reply, handshake, need_xy, xy_said
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
        self._go(mm, 0.0, f"a move of {mm:+.2f} mm")

    def move_xy(self, dx_mm: float, dy_mm: float) -> None:
        need_xy(self.port, self.cfg)
        self._go(dx_mm, dy_mm, xy_said(dx_mm, dy_mm))

    def _go(self, dx_mm: float, dy_mm: float, what: str) -> None:
        """The template filled in ({mm} is {x}), sent, and its `done` awaited."""
        line = self.cfg.line
        x, y = dx_mm * self.cfg.x_direction, dy_mm * self.cfg.y_direction
        x_steps, y_steps = round(x * line.steps_per_mm), round(y * line.steps_y())
        text = line.move.format(mm=f"{x:.3f}", steps=x_steps, x=f"{x:.3f}", y=f"{y:.3f}", x_steps=x_steps,
                                y_steps=y_steps)  # fmt: skip
        self.port.send(text + "\n")
        await_reply(self.port, f"{what} ({text!r})", self.cfg.move_timeout_seconds, self.done, self.error,
                    info=ANY)  # fmt: skip

    def close(self) -> None:
        self.port.close()
