"""A real camera through libgphoto2 (python-gphoto2): its session (`session`), its settings (`settings`), its live
view (`live`), and its bursts: the burst engine (capture.camera.burst) driving it through `link` by the strategy
the body allows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gphoto2 as gp

from medianscan.capture.camera import faults
from medianscan.capture.camera.base import (
    BurstError,
    BurstRecord,
    Camera,
    CameraError,
    CameraIdentity,
    SettingInfo,
    burst_error,
)
from medianscan.capture.camera.burst.engine import BurstEngine
from medianscan.capture.camera.burst.enough import FrameCount, fixed_or
from medianscan.capture.camera.burst.journal import forget
from medianscan.capture.camera.burst.leftover import Fetched, fetch_left
from medianscan.capture.camera.burst.quirks import Quirk, quirk_for
from medianscan.capture.camera.burst.strategies import Choice, choose
from medianscan.capture.camera.freshness import Freshness
from medianscan.capture.camera.gphoto2.link import Gphoto2Link
from medianscan.capture.camera.gphoto2.live import Gphoto2LiveView
from medianscan.capture.camera.gphoto2.session import _ALIVE_WIDGETS, Gphoto2Session, list_cameras
from medianscan.capture.camera.gphoto2.settings import Gphoto2Settings
from medianscan.capture.camera.settings import true_seconds
from medianscan.config.schema import CameraConfig

__all__ = ["Gphoto2Camera", "list_cameras"]

log = logging.getLogger(__name__)


class Gphoto2Camera(Camera):
    """A body driven by libgphoto2. `factory` makes the gp.Camera objects (tests wrap the real one)."""

    def __init__(
        self,
        cfg: CameraConfig,
        *,
        factory: Callable[[], Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        busy_retry_seconds: float = 5.0,
        capture_timeout_seconds: float = 30.0,
    ) -> None:
        self.cfg = cfg
        self.capture_timeout_seconds = capture_timeout_seconds  # trigger: longest wait for a frame's files
        self.session = Gphoto2Session(cfg, factory=factory, sleep=sleep, busy_retry_seconds=busy_retry_seconds)
        self.settings = Gphoto2Settings(self.session)
        self.live = Gphoto2LiveView(self.session)
        self.link = Gphoto2Link(self.session, self.settings)
        self._alive_widget: str | None = None
        self.freshness = Freshness()
        self.session.on_connect.append(self._new_session)

    def _new_session(self) -> None:
        """What the last session knew is stale: its keep-alive widget, its files' order and clock."""
        self._alive_widget = None
        self.freshness = Freshness()

    @property
    def _cam(self) -> Any:
        """The session's gp.Camera (tests look at it)."""
        return self.session.cam

    @property
    def connected(self) -> bool:
        return self.session.cam is not None

    def connect(self) -> CameraIdentity:
        self.identity = self.session.connect()
        return self.identity

    def lock(self) -> dict[str, str]:
        return self.settings.lock()

    def describe(self) -> list[SettingInfo]:
        return self.settings.describe()

    def preview(self) -> bytes:
        return self.live.preview()

    def magnify(self, at: tuple[float, float] | None) -> bool:
        return self.live.magnify(at)

    def end_preview(self) -> None:
        self.live.end_preview()

    def responding(self) -> bool:
        return self.live.responding()

    def battery(self) -> str | None:
        return self.live.battery()

    def close(self) -> None:
        """Put back every value we changed, then end the session."""
        if self.session.cam is None:
            return
        self.live.end_preview()
        self.settings.restore()
        self.session.drop()

    def burst(self, frames: int | FrameCount, stack: Path, stem: str) -> BurstRecord:
        """Re-lock, then shoot n frames into stack by the body's strategy (capture.camera.burst); on a fault
        reconnect and raise BurstError with the record of what is safe on disk."""
        count = fixed_or(frames)
        record = BurstRecord(stack=Path(stack), started=time.time(), camera=self.session.identity)
        start = time.perf_counter()
        was_connected = self.session.cam is not None
        try:
            if self.session.cam is None:
                self.connect()
            record.camera = self.session.identity
            record.settings = self.lock()
            exposure = true_seconds(record.settings.get("shutterspeed", "")) or 0.0
            choice = self.strategy(adaptive=count.least != count.most)
            record.strategy = f"{choice.strategy}: {choice.why}"
            engine = BurstEngine(
                self.link,
                self.cfg,
                self.quirk(),
                self.freshness,
                announce_timeout_seconds=self.capture_timeout_seconds,
            )
            engine.run(choice.strategy, count, record, stem, exposure)
        except gp.GPhoto2Error as exc:
            doing = f"shoot frame {len(record.frames) + 1} of {count.wanted()} into {stack}"
            cause = CameraError(faults.explain(exc.code, doing, self.session.where(), exc.string))
            reconnected = self.session.reconnect() if exc.code in faults.GONE else None
            if reconnected:  # what the body had named and not handed over yet is still on it
                record.frames += self._fetch_after_fault(record, stem, count.most)
            record.error = burst_error(cause, record, reconnected=reconnected)
            raise BurstError(record.error, record) from exc
        except CameraError as exc:
            lost = was_connected and not self.connected  # lost while locking: be back for the next burst
            record.error = burst_error(exc, record, reconnected=self.session.reconnect() if lost else None)
            raise BurstError(record.error, record) from exc
        finally:
            record.seconds = time.perf_counter() - start
        return record

    def _fetch_after_fault(self, record: BurstRecord, stem: str, n: int) -> list[Path]:
        try:
            frames = fetch_left(self.link, record.stack, stem, n, self.cfg).frames
            forget(record.stack)
            return frames
        except (gp.GPhoto2Error, CameraError, OSError) as exc:  # the journal stays for the next start
            log.warning("%s: the frames left on the camera could not be fetched yet: %s", record.stack.name, exc)
            return []

    def quirk(self) -> Quirk:
        return quirk_for(self.session.identity.model if self.session.identity else "", self.cfg.quirks)

    def strategy(self, *, adaptive: bool = False) -> Choice:
        """The strategy this body gets, and why (probed on the connected body)."""
        if self.session.cam is None:
            self.connect()
        return choose(
            self.cfg.strategy, self.link.capabilities(), self.quirk(), self.session.where(), adaptive=adaptive
        )

    def fetch_left(self, stack: Path, stem: str, frames_expected: int) -> Fetched:
        if self.session.cam is None:
            self.connect()
        return fetch_left(self.link, stack, stem, frames_expected, self.cfg)

    def keep_alive(self) -> None:
        """Drain events and read one status value; reconnect if the camera has gone."""
        if self.session.cam is None and not self.session.reconnect():
            raise CameraError(f"the camera ({self.session.where()}) is gone: {faults.NO_CAMERA_FIX}")
        try:
            for _ in range(100):
                kind, data = self.session.cam.wait_for_event(1)
                if kind == gp.GP_EVENT_TIMEOUT:
                    break
                if kind == gp.GP_EVENT_FILE_ADDED:
                    log.warning(
                        "%s/%s appeared on %s between bursts; left on the camera",
                        data.folder,
                        data.name,
                        self.session.where(),
                    )
            names = (self._alive_widget,) if self._alive_widget else _ALIVE_WIDGETS
            for name in names:
                try:
                    self.session.call(self.session.cam.get_single_config, name)
                    self._alive_widget = name
                    break
                except gp.GPhoto2Error as exc:
                    if exc.code in faults.GONE:
                        raise
        except gp.GPhoto2Error as exc:
            if exc.code in faults.GONE:
                log.warning("%s", faults.explain(exc.code, "keep the camera awake", self.session.where(), exc.string))
                if not self.session.reconnect():
                    raise CameraError(f"the camera ({self.session.where()}) is gone: {faults.NO_CAMERA_FIX}") from exc
            elif exc.code != faults.BUSY:
                log.warning("keep-alive: %s", exc)
