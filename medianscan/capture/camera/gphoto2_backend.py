"""A real camera through libgphoto2 (python-gphoto2): its session (gphoto2_session), its settings
(gphoto2_settings), and the burst: capture or trigger, download each file to a temp name, fsync, rename, and only
then delete it from the camera.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gphoto2 as gp

from medianscan.atomic import atomic_path
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
from medianscan.capture.camera.files import FileKind, choose, classify, frame_name
from medianscan.capture.camera.freshness import SET_ASIDE, CameraFile, Freshness, capture_time
from medianscan.capture.camera.gphoto2_live import Gphoto2LiveView
from medianscan.capture.camera.gphoto2_session import _ALIVE_WIDGETS, Gphoto2Session, _stem, list_cameras
from medianscan.capture.camera.gphoto2_settings import Gphoto2Settings
from medianscan.capture.camera.settings import true_seconds
from medianscan.config.schema import CameraConfig
from medianscan.records import LeftOut
from medianscan.wording import counted

__all__ = ["Gphoto2Camera", "list_cameras"]

log = logging.getLogger(__name__)

MAX_SHOTS_PER_FRAME = 2  # a burst gives up after this many shots per frame that brought no fresh file
Shot = tuple[float, float]  # (host time of the trigger, exposure seconds): what a shot's files are judged against


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
        self._warned_not_raw = False
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

    def burst(self, n: int, stack: Path, stem: str) -> BurstRecord:
        """Re-lock, then shoot n frames into stack; on a fault reconnect and raise BurstError with the record."""
        record = BurstRecord(stack=Path(stack), started=time.time(), camera=self.session.identity)
        start = time.perf_counter()
        stems: dict[str, int] = {}  # camera file stem -> frame index, to pair late RAW+JPEG companions
        was_connected = self.session.cam is not None
        try:
            if self.session.cam is None:
                self.connect()
            record.camera = self.session.identity
            record.settings = self.lock()
            exposure = true_seconds(record.settings.get("shutterspeed", "")) or 0.0
            self._drain(record, stems, stem, n)
            record.stack.mkdir(parents=True, exist_ok=True)
            shots = 0
            while len(record.frames) < n:
                if shots == MAX_SHOTS_PER_FRAME * n:
                    raise CameraError(
                        f"the camera ({self.session.where()}) gave {counted(len(record.frames), 'fresh frame')} of "
                        f"{n} in "
                        f"{shots} shots: the other files were not this burst's (see {SET_ASIDE}/)"
                    )
                shots += 1
                index = len(record.frames) + 1
                t0 = time.perf_counter()
                triggered = time.time()
                files = self._shoot()
                for _folder, name in files:
                    stems[_stem(name)] = index
                if self._store(index, n, files, record, stem, shot=(triggered, exposure)):
                    record.per_frame_seconds.append(time.perf_counter() - t0)
            self._drain(record, stems, stem, n)
        except gp.GPhoto2Error as exc:
            doing = f"shoot frame {len(record.frames) + 1} of {n} into {stack}"
            cause = CameraError(faults.explain(exc.code, doing, self.session.where(), exc.string))
            reconnected = self.session.reconnect() if exc.code in faults.GONE else None
            record.error = burst_error(cause, record, reconnected=reconnected)
            raise BurstError(record.error, record) from exc
        except CameraError as exc:
            lost = was_connected and not self.connected  # lost while locking: be back for the next burst
            record.error = burst_error(exc, record, reconnected=self.session.reconnect() if lost else None)
            raise BurstError(record.error, record) from exc
        finally:
            record.seconds = time.perf_counter() - start
        return record

    def _shoot(self) -> list[tuple[str, str]]:
        """Fire once; the (folder, name) of every file that shot made, as the camera announced them."""
        if self.cfg.strategy == "capture":
            path = self.session.call(self.session.cam.capture, gp.GP_CAPTURE_IMAGE)
            files = [(path.folder, path.name)]
            for _ in range(100):  # a RAW+JPEG body announces the second file (same stem) as an event, and a body
                kind, data = self.session.cam.wait_for_event(1)  # may announce another shot's: freshness decides
                if kind == gp.GP_EVENT_FILE_ADDED and (data.folder, data.name) not in files:
                    files.append((data.folder, data.name))
                elif kind in (gp.GP_EVENT_TIMEOUT, gp.GP_EVENT_CAPTURE_COMPLETE):
                    break
            return files
        self.session.call(self.session.cam.trigger_capture)
        files = []
        complete = False
        last = start = time.monotonic()
        while True:
            kind, data = self.session.cam.wait_for_event(100)
            now = time.monotonic()
            if kind == gp.GP_EVENT_FILE_ADDED:
                files.append((data.folder, data.name))
                last = now
            elif kind == gp.GP_EVENT_CAPTURE_COMPLETE:
                complete = True
            if files and (complete or now - last > 0.5):
                return files
            if now - start > self.capture_timeout_seconds:
                raise CameraError(
                    f"the camera ({self.session.where()}) announced no file within "
                    f"{self.capture_timeout_seconds:g} s of the trigger; check the capture target and card"
                )
            if kind == gp.GP_EVENT_TIMEOUT:
                self.session.sleep(0.005)  # libgphoto2 may return at once with nothing queued: do not spin

    def _download(self, folder: str, name: str) -> tuple[Any, memoryview]:
        """The camera file and a view of its bytes (valid only while the file object lives: keep both)."""
        cam_file = self.session.call(self.session.cam.file_get, folder, name, gp.GP_FILE_TYPE_NORMAL)
        return cam_file, memoryview(cam_file.get_data_and_size())

    def _store(
        self, index: int, total: int, files: list[tuple[str, str]], record: BurstRecord, stem: str, *, shot: Shot
    ) -> bool:
        """Download one shot's files; the fresh raw becomes the frame (a JPEG of it is kept only if configured),
        and a file this shot did not make is set aside, named (see freshness). False when no file was fresh."""
        items = []
        holders = []  # the CameraFile objects own the bytes the views point into
        for folder, name in files:
            holder, data = self._download(folder, name)
            holders.append(holder)
            head = bytes(data[:65536])
            items.append((CameraFile(folder, name, capture_time(head)), data, classify(name, head)))
            record.camera_files.append(f"{folder.rstrip('/')}/{name}")
        frame, reasons = self._fresh_frame([(item[0], item[2]) for item in items], shot)
        kept = [] if frame is None else choose([item[2] for item in items], self.cfg.keep_jpeg, frame)[1]
        if frame is not None and items[frame][2].kind != "raw" and not self._warned_not_raw:
            log.warning(
                "%s is not shooting RAW (got %s): set camera.settings.imageformat",
                self.session.where(),
                items[frame][0].name,
            )
            self._warned_not_raw = True
        for i, (file, data, kind) in enumerate(items):
            if i == frame or i in kept:
                target = record.stack / frame_name(stem, index, total, kind.ext)
            elif i in reasons:
                target = record.stack / SET_ASIDE / file.name
                target.parent.mkdir(exist_ok=True)
                record.set_aside.append(LeftOut(target, reasons[i]))
                log.warning("%s: set aside in %s/: %s", record.stack.name, SET_ASIDE, reasons[i])
            else:
                target = None
            if target is not None:
                with atomic_path(target) as tmp:  # libgphoto2 writes the temp; atomic_path fsyncs and renames
                    holders[i].save(str(tmp))
                if i == frame or i in kept:
                    (record.frames if i == frame else record.jpegs).append(target)
                    record.sizes[target.name] = len(data)
            if self.cfg.delete_from_camera:
                self.session.call(self.session.cam.file_delete, file.folder, file.name)
        return frame is not None

    def _fresh_frame(self, files: list[tuple[CameraFile, FileKind]], shot: Shot) -> tuple[int | None, dict[int, str]]:
        """Of one shot's files: the index of its frame (the newest fresh raw, else the first fresh file) and why
        each other raw is not it. The session's freshness learns from the frame."""
        triggered, exposure = shot
        raws = [i for i, (_, kind) in enumerate(files) if kind.kind == "raw"] or list(range(len(files)))[:1]
        order = self.freshness.newest_first([files[i][0] for i in raws])
        reasons: dict[int, str] = {}
        frame = None
        for file in order:
            i = next(j for j in raws if files[j][0] is file)
            why = self.freshness.stale(file, triggered, exposure)
            if why is None and frame is None:
                frame = i
                self.freshness.took(file, triggered)
                continue
            reasons[i] = why or f"{file.path} was announced for the same shot as a newer raw"
            self.freshness.set_aside(file)
        frame_stem = None if frame is None else _stem(files[frame][0].name)
        for i, (file, _) in enumerate(files):  # the companions (same stem) of a raw set aside go with it
            if i not in reasons and i != frame and _stem(file.name) != frame_stem:
                reasons[i] = f"{file.path} belongs to a shot set aside"
        return frame, reasons

    def _drain(self, record: BurstRecord, stems: dict[str, int], stem: str, total: int) -> None:
        """Empty the event queue; a late companion file of this burst is stored, any other file is left alone."""
        for _ in range(1000):
            kind, data = self.session.cam.wait_for_event(1)
            if kind == gp.GP_EVENT_TIMEOUT:
                return
            if kind == gp.GP_EVENT_FILE_ADDED:
                index = stems.get(_stem(data.name))
                if index is None:
                    self._stray(data.folder, data.name)
                    continue
                self._store_companion(index, total, (data.folder, data.name), record, stem)

    def _stray(self, folder: str, name: str) -> None:
        log.warning(
            "%s/%s appeared on %s outside a burst (shutter pressed on the body?); left on the camera",
            folder,
            name,
            self.session.where(),
        )

    def _store_companion(
        self, index: int, total: int, camera_file: tuple[str, str], record: BurstRecord, stem: str
    ) -> None:
        folder, name = camera_file
        holder, data = self._download(folder, name)  # holder owns the bytes: keep it until the end
        kind = classify(name, bytes(data[:65536]))
        record.camera_files.append(f"{folder.rstrip('/')}/{name}")
        if kind.kind == "jpeg" and self.cfg.keep_jpeg:
            target = record.stack / frame_name(stem, index, total, kind.ext)
            with atomic_path(target) as tmp:
                holder.save(str(tmp))
            record.jpegs.append(target)
            record.sizes[target.name] = len(data)
        elif kind.kind == "raw":
            log.warning("a second raw %s/%s for frame %d was not kept", folder, name, index)
        if self.cfg.delete_from_camera:
            self.session.call(self.session.cam.file_delete, folder, name)

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
