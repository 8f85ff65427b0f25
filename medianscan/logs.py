"""The journal stays small whatever fails: a record repeated in a tight loop is written once, then summarised.

A failing loop (an accept() out of file descriptors, a disk that went away) can log the same traceback tens of
thousands of times a second: 220 MB in 30 s were seen, on the disk where the raws are. Every handler of the
command line's logging carries a RepeatFilter: the first record of a kind (same logger, level, message template
and exception type) within WINDOW seconds goes through; the rest are counted, and the next one after the window
carries the count ("... (repeated 41,203 times in the last 10 s)").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

WINDOW = 10.0  # seconds


class RepeatFilter(logging.Filter):
    """Lets the first of a kind of record through per WINDOW, and counts the rest into the next one."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, int, str, str], tuple[float, int]] = {}  # kind -> (window start, suppressed)

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
        kind = (record.name, record.levelno, str(record.msg), exc)
        now = self.clock()
        with self._lock:
            started, suppressed = self._seen.get(kind, (-WINDOW, 0))
            if now - started < WINDOW:
                self._seen[kind] = (started, suppressed + 1)
                return False
            self._seen[kind] = (now, 0)
            if len(self._seen) > 1000:  # many kinds, once each: forget the old windows
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < WINDOW}
        if suppressed:  # the traceback, if any, was written with the first one
            record.msg = f"{record.msg} (repeated {suppressed:,} times in the last {now - started:.0f} s)"
            record.exc_info, record.exc_text = None, None
        return True


def limit_repeats(handlers: Iterable[logging.Handler]) -> None:
    """Put a RepeatFilter on each of `handlers` that has none yet."""
    for handler in handlers:
        if not any(isinstance(f, RepeatFilter) for f in handler.filters):
            handler.addFilter(RepeatFilter())
