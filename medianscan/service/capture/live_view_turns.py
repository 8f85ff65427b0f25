"""Live view on the camera thread, between the operator's requests: one preview frame per turn, only while a
console watches; a body without live view is told once and capture goes on; repeated failures ask the body
whether it is still there, and only a body that is gone is reconnected."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from medianscan.capture.camera import Camera, CameraError, NoLiveViewError
from medianscan.capture.live_view import MAX_FAILURES, LiveFeed
from medianscan.service.capture.camera_link import CameraLink

log = logging.getLogger(__name__)

IDLE_TURN = 0.2  # seconds a turn waits for a request when there is no live view to fetch
FAILING_BACKOFF = 2.0  # seconds between tries while live view fails on a body that still answers


class LiveViewTurns:
    """The camera thread's live-view turns: frames from the body of `link` to `feed`, at most `fps()` a second."""

    def __init__(self, link: CameraLink, feed: LiveFeed, fps: Callable[[], float]) -> None:
        self.link = link
        self.feed = feed
        self.fps = fps
        self._live_camera: Camera | None = None  # the session live view last ran on
        self._previewing = False
        self._next_preview = 0.0

    def wait(self) -> float:
        """How long this turn may wait for a request: until the next preview frame is due, if one is wanted."""
        camera, feed = self.link.camera, self.feed
        if camera is not self._live_camera:
            self._live_camera, self._previewing = camera, False
            feed.reset()
        if camera is None or feed.unavailable is not None or not feed.wanted:
            if self._previewing and camera is not None:
                camera.end_preview()
            self._previewing = False
            return IDLE_TURN
        return max(0.0, self._next_preview - time.monotonic())

    def preview(self) -> None:
        """One live-view frame, if it is wanted and due. A body without live view is told once, and capture goes
        on; repeated failures ask the body whether it is still there, and only a body gone means reconnect."""
        camera, feed = self.link.camera, self.feed
        if camera is None or feed.unavailable is not None or not feed.wanted:
            return
        if time.monotonic() < self._next_preview:
            return
        self._next_preview = time.monotonic() + 1.0 / self.fps()
        for at in feed.take_zoom():
            feed.body_zoom = ("on" if at else "off") if camera.magnify(at) else "none"
        try:
            feed.publish(camera.preview())
            self._previewing = True
            feed.paused = None
        except NoLiveViewError as exc:
            feed.unavailable = str(exc)
            log.warning("%s", exc)
        except CameraError as exc:
            feed.failures += 1
            if feed.failures < MAX_FAILURES:
                return
            feed.failures = 0
            if camera.responding():
                feed.paused = f"live view is failing ({exc}); trying again"
                self._next_preview = time.monotonic() + FAILING_BACKOFF
                log.warning("live view failed %d times in a row: %s", MAX_FAILURES, exc)
            else:
                reason = f"the camera stopped answering during live view ({exc})"
                log.warning("%s: reconnecting", reason)
                self.link.drop(reason)
