"""A GRBL 1.1 controller in software: the simulated rig's (`rig.port: simulated`), and the hardware stand-in the
tests serve on a pseudo-terminal. It answers as GRBL does, the subset a film rig uses: the banner, `ok` and
`error:N` per line, `$X`, `G21`/`G91`/`G90`, `G0`/`G1` moves at the feed, `G4` (answered once the moves before
it are done), the realtime `?` status report, and `ALARM:N`. Over a roll's carriage it moves one axis and each
move lands `slip` x its length off (random, by seed); over an XY stage (capture.camera.simulated.sheet.Stage) it
moves X and Y in one linear move, the stage's own slip and play deciding where it lands, and reports what it
counted (MPos), as GRBL does. Faults for the tests: a jam (a move that never ends), an alarm, a port that vanishes.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

import numpy as np

from medianscan.capture.camera.simulated.sheet import Stage
from medianscan.capture.camera.simulated.strip import Carriage

BANNER = "\r\nGrbl 1.1h ['$' for help]\r\n"
MOVE = re.compile(r"^G0?[01](?:\s*[XYZA](?P<d>[-+]?\d*\.?\d+)|\s*F(?P<f>\d*\.?\d+))+$")
WORD = re.compile(r"([XYZAF])([-+]?\d*\.?\d+)")


@dataclass
class Faults:
    """Which move (1-based) goes wrong, and how."""

    jam_at: int | None = None  # never finishes: no `ok` for the G4 after it, `?` says Run
    alarm_at: int | None = None  # stops halfway with ALARM:1 (hard limit)
    vanish_at: int | None = None  # the port goes away as the move is sent


class GrblFirmware:
    """GRBL's serial behaviour over a roll's `carriage` (axis `axis`) or an XY `stage` (axes `axis` and `y_axis`;
    `carriage` is then its true X), in real time: bytes in with `receive`, bytes out with `take`."""

    def __init__(self, carriage: Carriage | Stage, *, slip: float = 0.0, seed: int = 1, faults: Faults | None = None,
                 axis: str = "X", y_axis: str = "Y") -> None:  # fmt: skip
        self.stage = carriage if isinstance(carriage, Stage) else None
        self.carriage = carriage.x if isinstance(carriage, Stage) else carriage
        self.slip, self.axis, self.y_axis = slip, axis.upper(), y_axis.upper()
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
        self.history: list[float] = []  # each move asked for, mm (over a stage: its X)
        self.history_xy: list[tuple[float, float]] = []  # over a stage: each move asked for, (X, Y) mm

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
                    self._halt()
                    self.state, self.critical = "Alarm", True
                self._out.append(text + ("\r\n[MSG:Reset to continue]\r\n" if text.startswith("ALARM") else "\r\n"))
            if self.state == "Run" and not self._jammed and now >= self._stopped_at():
                self.state = "Idle"
            out, self._out = "".join(self._out), []
            return out.encode("ascii")

    def _axes(self) -> tuple[str, ...]:
        return (self.axis,) if self.stage is None else (self.axis, self.y_axis)

    def _stopped_at(self) -> float:
        return self.carriage.stopped_at() if self.stage is None else self.stage.stopped_at()

    def _halt(self) -> None:
        if self.stage is None:
            self.carriage.halt()
        else:
            self.stage.halt()

    def _report(self) -> str:
        if self.state == "Run" and not self._jammed and time.monotonic() >= self._stopped_at():
            self.state = "Idle"
        x, y = (self.carriage.position(), 0.0) if self.stage is None else self.stage.commanded()
        return f"<{self.state}|MPos:{x:.3f},{y:.3f},0.000|FS:{self.feed:g},0>"

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
            self._deferred.append((max(time.monotonic(), self._stopped_at()), "ok"))
        elif MOVE.match(line) is not None and any(axis in line[2:] for axis in self._axes()):
            self._move(line)
        else:
            self._out.append("error:20\r\n")  # unsupported command

    def _move(self, line: str) -> None:
        words = {letter: float(value) for letter, value in WORD.findall(line[2:])}
        if "F" in words:
            self.feed = words["F"]
        if self.feed <= 0:
            self._out.append("error:22\r\n")  # feed rate not set
            return
        if self.stage is None:
            asked = (words[self.axis], 0.0)
            here = (self.carriage.position(), 0.0)
        else:
            asked = (words.get(self.axis, 0.0), words.get(self.y_axis, 0.0))
            here = self.stage.commanded()
            if not self.relative:  # G90: a word names where to go; an axis not named stays
                asked = (asked[0] if self.axis in words else here[0], asked[1] if self.y_axis in words else here[1])
        dx, dy = asked if self.relative else (asked[0] - here[0], asked[1] - here[1])
        self.moves += 1
        self.history.append(dx)
        if self.stage is not None:
            self.history_xy.append((dx, dy))
        if self.faults.vanish_at == self.moves:
            self.vanished = True
            return
        if self.stage is None:
            end = self.carriage.go(dx * (1 + self.slip * float(self.rng.uniform(-1.0, 1.0))), self.feed / 60)
        else:
            end = self.stage.go(dx, dy, self.feed / 60)
        self.state = "Run"
        if self.faults.jam_at == self.moves:
            self._jammed = True
        if self.faults.alarm_at == self.moves:
            self._deferred.append(((time.monotonic() + end) / 2, "ALARM:1"))
        self._out.append("ok\r\n")
