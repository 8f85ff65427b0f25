"""GRBL (1.1): G-code over serial, as hobby CNC boards (Arduino + CNC shield, the many GRBL controllers) run it.

Each line gets `ok` or `error:N`; an `ALARM:N` can come at any time (a limit switch, an abort) and locks the
controller until `$X`. A move's `ok` means it is queued, not done: a `G4 P0` dwell after it is answered only once
the planner has run dry, so its `ok` says the film has stopped; the realtime `?` then reports
`<Idle|MPos:...>` (checked, so a move GRBL dropped is not taken as done).
"""

from __future__ import annotations

import logging
import re
import time

from medianscan.capture.rig.base import await_reply, need_xy, xy_said
from medianscan.capture.rig.port import LinePort, RigError
from medianscan.config.schema import RigConfig

log = logging.getLogger(__name__)

RESET = "\x18"  # Ctrl-X: GRBL's soft reset, a realtime byte
OK = re.compile(r"^ok$")
ERROR = re.compile(r"^(error:\d+|ALARM:\d+)")
INFO = re.compile(r"^(\[.*\]|Grbl .*|<.*>)$")  # messages, the banner after a reset, a late status report
STATUS = re.compile(r"^<(?P<state>[A-Za-z]+)(:\d)?\|(?:MPos|WPos):(?P<pos>[-\d.,]+)")
ALARMS = {  # GRBL 1.1's alarm codes a film rig meets
    "1": "hard limit triggered",
    "2": "the move exceeds the soft limits",
    "3": "reset while in motion",
    "9": "homing failed",
}
ERRORS = {"9": "G-code locked out during an alarm", "20": "unsupported command", "22": "feed rate not set"}


def explain(reply: str) -> str:
    """'ALARM:1 (hard limit triggered)': a refusal with what GRBL's code means."""
    code = reply.split(":", 1)[1] if ":" in reply else ""
    table = ALARMS if reply.startswith("ALARM") else ERRORS
    return f"{reply} ({table[code]})" if code in table else reply


class GrblRig:
    """A GRBL controller moving the film along `cfg.axis`, or an XY stage along `cfg.axis` and `cfg.y_axis`."""

    def __init__(self, port: LinePort, cfg: RigConfig) -> None:
        self.port, self.cfg = port, cfg

    def start(self) -> None:
        self._banner(self.cfg.boot_seconds)  # an Arduino resets when its port opens: its banner, then it listens
        state = self.status()
        if state == "Alarm":  # locked at power-up (homing enabled) or after a limit: the operator's rig, unlock
            log.warning("the rig on %s was in alarm: resetting (Ctrl-X) and unlocking it ($X)", self.port.name)
            self.port.send(RESET)  # after a hard limit GRBL takes nothing but a soft reset until it has one
            self._banner(self.cfg.reply_timeout_seconds)
            self.command("$X")
        for setup in ("G21", "G91"):  # millimetres; relative moves
            self.command(setup)

    def _banner(self, seconds: float) -> None:
        """Wait up to `seconds` for GRBL's banner (a board that does not reset on open sends none)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            line = self.port.line(left)
            if line is None or line.startswith("Grbl"):
                return

    def command(self, text: str, timeout: float | None = None, what: str | None = None) -> None:
        self.port.send(text + "\n")
        await_reply(self.port, what or repr(text), timeout or self.cfg.reply_timeout_seconds, OK, ERROR,
                    info=INFO, say=explain)  # fmt: skip

    def status(self) -> str:
        """The controller's state from a `?` report (Idle, Run, Hold, Alarm...)."""
        self.port.send("?")
        found = await_reply(self.port, "a status report (?)", self.cfg.reply_timeout_seconds, STATUS, ERROR,
                            info=re.compile(r"^(ok|\[.*\])$"), say=explain)  # fmt: skip
        match = STATUS.search(found)
        assert match is not None
        return match["state"]

    def move(self, mm: float) -> None:
        self._go(f"{self.cfg.axis}{mm * self.cfg.x_direction:.3f}", f"a move of {mm:+.2f} mm")

    def move_xy(self, dx_mm: float, dy_mm: float) -> None:
        need_xy(self.port, self.cfg)
        cfg = self.cfg
        words = f"{cfg.axis}{dx_mm * cfg.x_direction:.3f} {cfg.y_axis}{dy_mm * cfg.y_direction:.3f}"
        self._go(words, xy_said(dx_mm, dy_mm))  # one linear move: both axes arrive together

    def _go(self, words: str, what: str) -> None:
        """A G1 of `words` at the feed, then wait until the controller says it has stopped and is Idle."""
        self.command(f"G1 {words} F{self.cfg.feed_mm_per_minute:g}", what=what)
        self.command("G4 P0", timeout=self.cfg.move_timeout_seconds, what=what)  # answered once it has stopped
        state = self.status()
        if state != "Idle":
            raise RigError(
                f"the rig on {self.port.name} is {state} after {what}, not Idle; the film is where it stopped"
            )

    def close(self) -> None:
        self.port.close()
