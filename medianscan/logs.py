"""How the command line's log lines read, and the journal staying small whatever fails.

Lines are written for whoever reads them: under systemd (JOURNAL_STREAM names the journal's stream) the journal
stamps each line itself, so a line is the level and the source; a service in a terminal writes the time and the
sentence ("17:48:11 a: blended in 0.1 s -> a_median.dng", problems marked "error:" or "warning:"); a one-shot
command writes "medianscan: the sentence"; -v adds the source everywhere.

A record repeated in a tight loop is held back after a burst of it, then summarised.

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
SENTENCE_BURST = 20  # records of one sentence let through per WINDOW: three presses in a second are all written
TEMPLATE_BURST = 100  # records of one message template let through per WINDOW


def log_format(*, service: bool, verbose: bool, journal: bool) -> logging.Formatter:
    """The formatter for a command's log lines (see the module's docstring)."""
    if journal:
        return logging.Formatter("%(levelname)s %(name)s: %(message)s")
    if verbose:
        return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    if service:
        return _MarkedFormatter("%(asctime)s %(marked)s", datefmt="%H:%M:%S")
    return _MarkedFormatter("medianscan: %(marked)s")


class _MarkedFormatter(logging.Formatter):
    """The message alone, with "error: " or "warning: " before it when it is one."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        mark = f"{record.levelname.lower()}: " if record.levelno >= logging.WARNING else ""
        record.marked = mark + record.getMessage()
        return super().formatMessage(record)


class RepeatFilter(logging.Filter):
    """Lets a burst of each kind of record through per WINDOW, and counts the rest into the next one let through.

    A kind is one sentence (logger, level, the message as written, exception type): an operator's presses and each
    stack's lines go through, a failure looping thousands of times a second does not, after SENTENCE_BURST. A loop
    whose sentences all differ (a count, a client's address in each) is held by its template: at most
    TEMPLATE_BURST of one template per WINDOW.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, int, str, str], tuple[float, int]] = {}  # kind -> (window start, seen in it)

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
        sentence = (record.name, record.levelno, record.getMessage(), exc)
        template = (record.name, record.levelno, f"template: {record.msg}", exc)
        now = self.clock()
        with self._lock:
            if len(self._seen) > 2000:  # many kinds, once each: forget the windows over that held nothing back
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < WINDOW or v[1] > SENTENCE_BURST}
            by_template = self._count(template, now, TEMPLATE_BURST)
            by_sentence = self._count(sentence, now, SENTENCE_BURST)
            if not (by_template[0] and by_sentence[0]):
                return False
            _, suppressed, started = max(by_sentence, by_template, key=lambda counted: counted[1])
        if suppressed:  # the traceback, if any, was written with the first one
            record.msg = (
                f"{record.getMessage()} (and {suppressed:,} more like it held back in the {WINDOW:g} s from "
                f"{now - started:.0f} s ago)"
            )
            record.args = None
            record.exc_info, record.exc_text = None, None
        return True

    def _count(self, kind: tuple[str, int, str, str], now: float, allowed: int) -> tuple[bool, int, float]:
        """(let through?, records held back in the window that ended, when it started) for one more `kind`; the
        count of a window is in its first slot's number: allowed records pass, the rest are held (lock held)."""
        started, seen = self._seen.get(kind, (-WINDOW, 0))
        if now - started < WINDOW:
            self._seen[kind] = (started, seen + 1)
            return seen < allowed, 0, started
        self._seen[kind] = (now, 1)
        return True, max(0, seen - allowed), started


def limit_repeats(handlers: Iterable[logging.Handler]) -> None:
    """Put a RepeatFilter on each of `handlers` that has none yet."""
    for handler in handlers:
        if not any(isinstance(f, RepeatFilter) for f in handler.filters):
            handler.addFilter(RepeatFilter())
