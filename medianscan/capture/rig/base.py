"""What a run asks of a rig, whatever its firmware: move the film along the strip (a roll rig, `rig.axes: x`) or
the stage in X and Y (`rig.axes: xy`), and say when it has stopped. Each protocol (grbl, marlin, line) is a module
of its own over a capture.rig.port.LinePort."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Protocol

from medianscan.capture.rig.port import LinePort, RigError
from medianscan.config.schema import RigConfig

log = logging.getLogger(__name__)


class Rig(Protocol):
    """A film advancer or XY stage: relative moves along the strip, in mm."""

    port: LinePort

    def start(self) -> None:
        """Greet the controller and set it up (units, relative moves); RigError if it does not answer."""

    def move(self, mm: float) -> None:
        """Move the film `mm` along the strip (the X axis) and return once it has stopped; RigError (the film
        left where it is) on a jam, an alarm, a lost port or a reply that makes no sense."""

    def move_xy(self, dx_mm: float, dy_mm: float) -> None:
        """Move the stage `dx_mm` along X and `dy_mm` along Y (relative, one move) and return once it has
        stopped; RigError as `move`, and for a rig configured with one axis (`rig.axes: x`)."""

    def close(self) -> None: ...


def need_xy(port: LinePort, cfg: RigConfig) -> None:
    """RigError unless the rig is configured as an XY stage."""
    if cfg.axes != "xy":
        raise RigError(
            f"the rig on {port.name} moves one axis (rig.axes: {cfg.axes}): set rig.axes: xy (and rig.y_axis) "
            "for an XY stage; nothing was moved"
        )


def xy_said(dx_mm: float, dy_mm: float) -> str:
    """'a move of X+1.00 Y-2.50 mm': how a move in X and Y is named in a RigError."""
    return f"a move of X{dx_mm:+.2f} Y{dy_mm:+.2f} mm"


def await_reply(
    port: LinePort,
    what: str,
    timeout: float,
    done: re.Pattern[str],
    failed: re.Pattern[str],
    *,
    busy: re.Pattern[str] | None = None,
    info: re.Pattern[str] | None = None,
    say: Callable[[str], str] = repr,
) -> str:
    """Read lines until one matches `done` (returned); RigError for `failed` (the reply as `say` words it), for
    silence beyond `timeout` (a line matching `busy` extends it: the controller says it is working), and for a
    line no pattern knows."""
    deadline = time.monotonic() + timeout
    while True:
        line = port.line(max(0.0, deadline - time.monotonic()))
        if line is None:
            raise RigError(
                f"the rig on {port.name} did not finish {what} within {timeout:g} s (no reply): a jam, or a "
                "controller that lost power; the film is where it stopped"
            )
        text = line.strip()
        if not text:
            continue
        if done.search(text):
            return text
        if failed.search(text):
            raise RigError(f"the rig on {port.name} refused {what}: {say(text)}; the film is where it stopped")
        if busy is not None and busy.search(text):
            deadline = time.monotonic() + timeout
            continue
        if info is not None and info.search(text):
            log.debug("rig: %s", text)
            continue
        raise RigError(
            f"the rig on {port.name} answered {what} with {text!r}, which makes no sense here; the film is where "
            "it stopped"
        )


HANDSHAKE_TRY_SECONDS = 1.0  # each try's wait for the answer


def handshake(port: LinePort, command: str, boot_seconds: float, done: re.Pattern[str],
              failed: re.Pattern[str] | None = None) -> None:  # fmt: skip
    """Send `command` until a line matching `done` answers it: a board that resets when its port opens (an
    Arduino's bootloader, a printer board's boot) loses what is sent before it has booted. RigError when
    nothing answers within `boot_seconds` and one more try."""
    deadline = time.monotonic() + boot_seconds
    while True:
        port.send(command + "\n")
        wait = time.monotonic() + HANDSHAKE_TRY_SECONDS
        while (left := wait - time.monotonic()) > 0:
            line = port.line(left)
            if line is None:
                break
            if done.search(line.strip()):
                return
            if failed is not None and failed.search(line.strip()):
                raise RigError(f"the rig on {port.name} refused {command!r}: {line.strip()!r}")
        if time.monotonic() > deadline:
            raise RigError(
                f"the rig on {port.name} did not answer {command!r} within {boot_seconds + HANDSHAKE_TRY_SECONDS:g} "
                "s: is it powered, and is rig.protocol (and rig.baud) what its firmware speaks?"
            )
