"""The keyboard as a trigger: Enter captures, single letters for the other actions (`medianscan run --keyboard`)."""

from __future__ import annotations

import logging
import os
import select
import sys
import threading
from typing import TextIO

from medianscan.capture.control_client import KEYBOARD
from medianscan.capture.events import Emit

log = logging.getLogger(__name__)


KEYBOARD_HELP = "Enter: capture   r: retake   n: new roll   p: pause   u: resume   s: status   (then Enter)"


class KeyboardTrigger:
    """Interactive use on a terminal: Enter captures; a letter and Enter for the other actions."""

    def __init__(self, emit: Emit, stream: TextIO | None = None, out: TextIO | None = None) -> None:
        self.emit = emit
        self.stream = stream if stream is not None else sys.stdin
        self.out = out if out is not None else sys.stderr
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.out.write(KEYBOARD_HELP + "\n")
        self.out.flush()
        self._thread = threading.Thread(target=self._loop, name="keyboard", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)

    def _loop(self) -> None:
        fd = self.stream.fileno()
        pending = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.25)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return
            if not chunk:
                log.info("keyboard input closed")
                return
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                self.key(line.decode(errors="replace"))

    def key(self, line: str) -> None:
        """One line typed by the operator."""
        action = KEYBOARD.get(line.strip().lower())
        if action is None:
            self.out.write(KEYBOARD_HELP + "\n")
            self.out.flush()
            return
        self.emit(action, "keyboard")
