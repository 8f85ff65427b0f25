"""A GRBL 1.1 controller in software: the simulated rig's (`rig.port: simulated`), and the hardware stand-in the
tests serve on a pseudo-terminal. It answers as GRBL does, the subset a film rig uses: the banner, `ok` and
`error:N` per line, `$X`, `G21`/`G91`/`G90`, `G0`/`G1` moves on one axis at the feed, `G4` (answered once the
moves before it are done), the realtime `?` status report, and `ALARM:N`. Each move lands `slip` x its length
off (random, by seed). Faults for the tests: a jam (a move that never ends), an alarm, a port that vanishes.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

import numpy as np

from medianscan.capture.camera.simulated.strip import Carriage

BANNER = "\r\nGrbl 1.1h ['$' for help]\r\n"
MOVE = re.compile(r"^G0?[01](?:\s*[XYZ](?P<d>[-+]?\d*\.?\d+)|\s*F(?P<f>\d*\.?\d+))+$")


@dataclass
class Faults:
    """Which move (1-based) goes wrong, and how."""

    jam_at: int | None = None  # never finishes: no `ok` for the G4 after it, `?` says Run
    alarm_at: int | None = None  # stops halfway with ALARM:1 (hard limit)
    vanish_at: int | None = None  # the port goes away as the move is sent


class GrblFirmware:
    """GRBL's serial behaviour over `carriage`, in real time: bytes in with `receive`, bytes out with `take`."""

    def __init__(self, carriage: Carriage, *, slip: float = 0.0, seed: int = 1, faults: Faults | None = None,
                 axis: str = "X") -> None:  # fmt: skip
        self.carriage, self.slip, self.axis = carriage, slip, axis.upper()
        self.faults = faults or Faults()
        self.rng = np.random.default_rng([seed, 7])
        self._lock = threading.Lock()
        self._out = [BANNER]
        self._line = ""
        self._deferred: list[tuple[float, str]] = []  # (when, text): G4's ok, an alarm
        self.state = "Idle"
        self.critical = False  # after a hard limit: nothing but `?` and a soft reset (Ctrl-X) until reset
        self.relative = False
        self.feed = 0.0
        self.moves = 0
        self.vanished = False
        self._jammed = False
        self.history: list[float] = []  # each move asked for, mm

    def receive(self, data: bytes) -> None:
        with self._lock:
            for char in data.decode("ascii", "replace"):
                if char == "?":  # realtime: answered at once, never part of a line
                    self._out.append(self._report() + "\r\n")
                elif char == "\x18":  # soft reset: the banner again; an alarm stays until $X
                    self.critical, self._line, self._deferred = False, "", []
                    self._out.append(BANNER + ("[MSG:'$H'|'$X' to unlock]\r\n" if self.state == "Alarm" else ""))
                elif char in "\r\n":
                    line, self._line = self._line.strip(), ""
                    if line and not self.critical:  # a hard limit's lock: lines go unanswered
                        self._execute(line.upper().replace(" ", ""))
                else:
                    self._line += char

    def take(self) -> bytes:
        """What the controller has sent by now."""
        with self._lock:
            now = time.monotonic()
            due = [text for when, text in self._deferred if when <= now]
            self._deferred = [(when, text) for when, text in self._deferred if when > now]
            for text in due:
                if text.startswith("ALARM"):
                    self.carriage.halt()
                    self.state, self.critical = "Alarm", True
                self._out.append(text + ("\r\n[MSG:Reset to continue]\r\n" if text.startswith("ALARM") else "\r\n"))
            if self.state == "Run" and not self._jammed and now >= self.carriage.stopped_at():
                self.state = "Idle"
            out, self._out = "".join(self._out), []
            return out.encode("ascii")

    def _report(self) -> str:
        if self.state == "Run" and not self._jammed and time.monotonic() >= self.carriage.stopped_at():
            self.state = "Idle"
        return f"<{self.state}|MPos:{self.carriage.position():.3f},0.000,0.000|FS:{self.feed:g},0>"

    def _execute(self, line: str) -> None:
        if line == "$X":
            self.state = "Idle" if self.state == "Alarm" else self.state
            self._out.append("[MSG:Caution: Unlocked]\r\nok\r\n")
        elif self.state == "Alarm":
            self._out.append("error:9\r\n")  # G-code locked out during an alarm
        elif line in ("G21", "G91", "G90"):
            self.relative = line == "G91" if line != "G21" else self.relative
            self._out.append("ok\r\n")
        elif line.startswith("G4"):
            if self._jammed:
                return  # the planner never runs dry: no ok
            self._deferred.append((max(time.monotonic(), self.carriage.stopped_at()), "ok"))
        elif MOVE.match(line) is not None and self.axis in line:
            self._move(line)
        else:
            self._out.append("error:20\r\n")  # unsupported command

    def _move(self, line: str) -> None:
        feed = re.search(r"F(\d*\.?\d+)", line)
        if feed:
            self.feed = float(feed[1])
        if self.feed <= 0:
            self._out.append("error:22\r\n")  # feed rate not set
            return
        found = re.search(rf"{self.axis}([-+]?\d*\.?\d+)", line)
        assert found is not None
        asked = float(found[1])
        distance = asked if self.relative else asked - self.carriage.position()
        self.moves += 1
        self.history.append(distance)
        if self.faults.vanish_at == self.moves:
            self.vanished = True
            return
        landed = distance * (1 + self.slip * float(self.rng.uniform(-1.0, 1.0)))
        end = self.carriage.go(landed, self.feed / 60)
        self.state = "Run"
        if self.faults.jam_at == self.moves:
            self._jammed = True
        if self.faults.alarm_at == self.moves:
            self._deferred.append(((time.monotonic() + end) / 2, "ALARM:1"))
        self._out.append("ok\r\n")
