"""Waiting in tests for something to happen: on the condition itself, never on a guessed interval."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | None], timeout: float, message: str | Callable[[], str], *, every: float = 0.01
) -> T:
    """The first truthy value `condition` returns, checked every `every` seconds; past `timeout` seconds the test
    fails with `message` (what did not happen; a callable is asked then, to say what there was instead), so a hang
    reads as the behaviour that was missing. A condition may raise to fail at once (the process it waits on died)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            said = message() if callable(message) else message
            raise AssertionError(f"{said} (not within {timeout:g} s)")
        time.sleep(every)
