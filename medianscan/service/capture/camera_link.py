"""The capture mode's one camera session, kept connected by the camera thread (libgphoto2 is single-threaded,
so nothing else touches it): connect and lock, reconnect with backoff after a loss or a settings change, keep
the body awake, and the state `status` shows (each change a new frozen CameraStatus, handed to `publish`: the
daemon's state, where readers take it under its lock)."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from medianscan.capture.camera import Camera, CameraError, SettingError, open_camera
from medianscan.config.schema import CameraConfig
from medianscan.reports import CameraState
from medianscan.wording import reload_hint

log = logging.getLogger(__name__)

SETTING_FIX = "fix camera.settings in the config (or list it under camera.optional), then reload: {reload}"


@dataclass(frozen=True)
class CameraStatus:
    model: str | None = None
    port: str | None = None
    state: CameraState = "not connected"
    error: str | None = None
    settings: dict[str, str] | None = None
    battery: str | None = None  # as the body reports it, read at connect and after each burst


class CameraLink:
    """Owns the Camera. Every method runs on the camera thread; `changed` and `status` may be read anywhere."""

    def __init__(
        self, config: Callable[[], CameraConfig], publish: Callable[[CameraStatus], None] = lambda status: None
    ) -> None:
        self.config = config  # the current camera section (a reload may replace it)
        self.status = CameraStatus()  # replaced whole on each change, never changed in place
        self._publish = publish
        self.camera: Camera | None = None
        self.tried = threading.Event()  # set after the first connection attempt (READY waits for it)
        self.changed = threading.Event()  # the settings changed: reconnect on the next turn
        self._retry_at = 0.0
        self._backoff = 1.0
        self._alive_at = 0.0

    def tend(self) -> None:
        """Reconnect after a config change or a loss (when due), and keep the body awake."""
        now = time.monotonic()
        if self.changed.is_set():
            self.changed.clear()
            if self.camera is not None:
                log.info("camera settings changed: reconnecting")
                self.drop(None)
                self._retry_at = now
        if self.camera is None and now >= self._retry_at:
            if self.connect():
                self._backoff = 1.0
            else:
                self._retry_at = now + self._backoff
                self._backoff = min(self._backoff * 2, max(1.0, self.config().reconnect_max_seconds))
            self.tried.set()
        keep = self.config().keep_alive_seconds
        if self.camera is not None and keep > 0 and now - self._alive_at >= keep:
            self._alive_at = now
            try:
                self.camera.keep_alive()
            except CameraError as exc:
                self.drop(str(exc))

    def _set(self, **changes: object) -> None:
        self.status = dataclasses.replace(self.status, **changes)  # type: ignore[arg-type]
        self._publish(self.status)

    def read_battery(self) -> None:
        """The battery as the body reports it now (after a burst)."""
        if self.camera is not None:
            self._set(battery=self.camera.battery())

    @property
    def refused(self) -> str | None:
        """Why the connected body cannot shoot yet (a setting it refused), or None."""
        return self.status.error if self.status.state == "settings refused" else None

    def connect(self) -> bool:
        """Open, connect and lock the configured camera; False (with the reason in `status`) if it failed. A body
        that refuses a setting stays connected in state "settings refused" (live view works; captures do not)."""
        self._set(state="connecting")
        camera = None
        try:
            cfg = self.config()
            camera = open_camera(dataclasses.replace(cfg, settings=dict(cfg.settings)))  # a bracket changes its own
            ident = camera.connect()
            self._set(model=ident.model, port=ident.port)
            settings = camera.lock()
        except SettingError as exc:  # the body is here; a setting is not: keep it (live view), refuse captures
            assert camera is not None
            self.camera = camera
            text = f"{exc.reason}: {SETTING_FIX.format(reload=reload_hint())}"
            if self.status.error != text:
                log.warning("camera: %s", text)
            self._set(settings=None, state="settings refused", error=text)
            return True
        except CameraError as exc:
            if camera is not None:
                _close(camera)
            if self.status.error != str(exc):
                log.warning("camera: %s", exc)
            self._set(state="not connected", error=str(exc))
            return False
        self.camera = camera
        self._alive_at = time.monotonic()
        self._set(settings=dict(settings), battery=camera.battery(), state="ready", error=None)
        locked = ", ".join(f"{key}={value}" for key, value in settings.items()) or "nothing (no camera.settings)"
        log.info("camera %s on %s ready; locked %s", ident.model, ident.port, locked)
        return True

    def drop(self, reason: str | None) -> None:
        """Close the session (a reconnect needs a fresh Camera object); `reason` says why it was lost."""
        if self.camera is not None:
            _close(self.camera)
            self.camera = None
        self._set(state="not connected", error=reason)
        if reason:
            self._retry_at = min(self._retry_at, time.monotonic() + 1.0)

    def close(self) -> None:
        if self.camera is not None:
            _close(self.camera)
            self.camera = None


def _close(camera: Camera) -> None:
    try:
        camera.close()
    except Exception as exc:  # closing a camera that fell off the bus may fail any way it likes
        log.debug("closing the camera: %s", exc)
