"""Live view between the camera thread, which alone calls the body, and the console, which shows it.

The camera thread publishes each preview frame here; the console's clients wait for a newer one. Previews are
fetched only while someone watches: a stream holds `watch()`, a single-frame request `touch()`es it for a
moment. Nothing here talks to the camera.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

LINGER_SECONDS = 2.0  # a single-frame client keeps live view running this long after its request
MAX_FAILURES = 3  # preview failures in a row before the camera is asked whether it is still there


@dataclass(frozen=True)
class LiveFrame:
    jpeg: bytes
    number: int  # 1, 2, ... since the daemon started
    at: float  # time.monotonic() when it arrived


@dataclass(frozen=True)
class LiveState:
    """What the console says about live view."""

    watched: bool
    running: bool  # frames are arriving
    paused: str | None  # why frames pause for now ("a burst is under way"), or None
    unavailable: str | None  # why there is no live view on this body, or None
    fps: float  # measured over the last frames
    body_zoom: str | None  # the body's magnifier: "on", "off", "none" (the body has none) or None (not tried)


class LiveFeed:
    """The latest preview frame and who waits for the next; thread-safe, and awaitable from any event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frame: LiveFrame | None = None
        self._watchers = 0
        self._touched_until = 0.0
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._times: list[float] = []
        self.unavailable: str | None = None  # set by the camera thread for this session
        self.paused: str | None = None
        self.failures = 0
        self.body_zoom: str | None = None  # what the camera thread last did with the body's magnifier
        self._zoom: list[tuple[float, float] | None] = []  # a change asked for, not yet made

    # --- the body's magnifier -------------------------------------------------------------------------------

    def ask_zoom(self, at: tuple[float, float] | None) -> None:
        """The console asks for the body's magnifier at `at` (fractions of the view), or off with None."""
        with self._lock:
            self._zoom = [at]

    def take_zoom(self) -> list[tuple[float, float] | None]:
        """The camera thread: the change to make, once ([] when there is none)."""
        with self._lock:
            asked, self._zoom = self._zoom, []
            return asked

    # --- the console's side -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def watch(self) -> Iterator[None]:
        """Held by a stream for as long as it runs: live view is wanted."""
        with self._lock:
            self._watchers += 1
        try:
            yield
        finally:
            with self._lock:
                self._watchers -= 1

    def touch(self) -> None:
        """A single-frame request: keep live view running for a moment."""
        with self._lock:
            self._touched_until = time.monotonic() + LINGER_SECONDS

    @property
    def wanted(self) -> bool:
        with self._lock:
            return self._watchers > 0 or time.monotonic() < self._touched_until

    def latest(self) -> LiveFrame | None:
        with self._lock:
            return self._frame

    async def newer(self, than: int, timeout: float) -> LiveFrame | None:
        """The first frame numbered above `than`, or None after `timeout` seconds without one."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        with self._lock:
            if self._frame is not None and self._frame.number > than:
                return self._frame
            self._waiters.append((loop, event))
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return None
        finally:
            with self._lock, contextlib.suppress(ValueError):
                self._waiters.remove((loop, event))
        return self.latest()

    def state(self) -> LiveState:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._times if now - t < 2.0]
            fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 2 else 0.0
            watched = self._watchers > 0 or now < self._touched_until
            running = bool(recent) and now - recent[-1] < 1.0
        return LiveState(watched, running, self.paused, self.unavailable, round(fps, 1), self.body_zoom)

    # --- the camera thread's side -------------------------------------------------------------------------

    def publish(self, jpeg: bytes) -> LiveFrame:
        now = time.monotonic()
        with self._lock:
            number = 1 if self._frame is None else self._frame.number + 1
            self._frame = LiveFrame(jpeg, number, now)
            self._times = [*self._times[-29:], now]
            waiters, self._waiters = self._waiters, []
        self.failures = 0
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(event.set)
        return self._frame

    def reset(self) -> None:
        """A new camera session: what the last one said about live view no longer holds."""
        self.unavailable = None
        self.failures = 0
        self.body_zoom = None
