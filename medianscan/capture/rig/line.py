"""A plain line protocol, for advancers built on an Arduino with a sketch of their own: the commands and the
replies are set in the config (`rig.line`), e.g. `move: "M{steps}"`, `done: "^OK"`, `error: "^ERR"`. A move is
one command, answered by a `done` line once the motor has stopped; any other line is logged and ignored unless
it matches `error`."""

from __future__ import annotations

import re

from medianscan.capture.rig.base import await_reply
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
        while self.port.line(0.3) is not None:  # whatever the sketch prints when it boots
            pass
        if self.cfg.line.hello:
            self.port.send(self.cfg.line.hello + "\n")
            await_reply(self.port, f"the greeting {self.cfg.line.hello!r}", self.cfg.reply_timeout_seconds,
                        self.done, self.error, info=ANY)  # fmt: skip

    def move(self, mm: float) -> None:
        steps = round(mm * self.cfg.line.steps_per_mm)
        text = self.cfg.line.move.format(mm=f"{mm:.3f}", steps=steps)
        self.port.send(text + "\n")
        await_reply(self.port, f"a move of {mm:+.2f} mm ({text!r})", self.cfg.move_timeout_seconds, self.done,
                    self.error, info=ANY)  # fmt: skip

    def close(self) -> None:
        self.port.close()
