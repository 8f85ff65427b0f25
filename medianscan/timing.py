"""Where a blend's seconds go: each step timed into the record's `timings` by one context manager, rather than a
`t = perf_counter()` pair written out at every step."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def timed(timings: dict[str, float], step: str) -> Iterator[None]:
    """Add the wall-clock seconds the `with` block takes to `timings[step]` (a step timed twice adds up)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[step] = timings.get(step, 0.0) + time.perf_counter() - started
