"""A body through libgphoto2, as the burst engine drives it (a `BodyLink`): the real ptp2 driver's capture,
trigger, events, download and delete, and the two host-started continuous bursts libgphoto2's ptp2 sources drive:

- Nikon (camlibs/ptp2/library.c, camera_nikon_capture; config.c "burstnumber", "capturemode"): with the Still
  Capture Mode set to a burst mode, one capture shoots `burstnumber` frames; the driver returns the last file's path
  and adds the others to the folder it lists (and, capturing to the card, announces them as FILE_ADDED).
- Canon EOS (config.c _put_Canon_EOS_RemoteRelease; "drivemode"): with a continuous drive mode, the release
  pressed fully ("Press Full") shoots until it is released ("Release Full"); each frame is announced as
  FILE_ADDED by wait_for_event (which, capturing to the internal RAM, fetches it into the driver first).

The choices are taken from the widgets at run time: libgphoto2 2.5.34 renamed eosremoterelease's.
"""

from __future__ import annotations

import re
import time
from collections import deque
from typing import Any

import gphoto2 as gp

from medianscan.capture.camera.base import CameraError
from medianscan.capture.camera.burst.link import Announced, BodyEvent, Capabilities, Download, NativeKind
from medianscan.capture.camera.freshness import file_number
from medianscan.capture.camera.gphoto2.session import Gphoto2Session
from medianscan.capture.camera.gphoto2.settings import Gphoto2Settings, choices_of

_CONTINUOUS = re.compile(r"continuous|burst|\bcont\b|high.?speed|\bch\b", re.IGNORECASE)
_PRESS_FULL = re.compile(r"press\s*full", re.IGNORECASE)
_RELEASE_FULL = re.compile(r"release\s*full", re.IGNORECASE)


def _pick(widget: Any, pattern: re.Pattern[str]) -> str | None:
    return next((c for c in choices_of(widget) if pattern.search(c)), None)


class Gphoto2Link:
    """One libgphoto2 session as a BodyLink; every call on the thread that owns the session."""

    def __init__(self, session: Gphoto2Session, settings: Gphoto2Settings) -> None:
        self.session = session
        self.settings = settings
        self._queued: deque[BodyEvent] = deque()  # files a capture returned, before what the body says next
        self._native: NativeKind | None = None
        self._put_back: dict[str, str] = {}  # widget -> value to restore after a continuous burst

    @property
    def cam(self) -> Any:
        return self.session.cam

    def where(self) -> str:
        return self.session.where()

    def capabilities(self) -> Capabilities:
        trigger = bool(self.cam.get_abilities().operations & gp.GP_OPERATION_TRIGGER_CAPTURE)
        mode, number = self.settings.widget("capturemode"), self.settings.widget("burstnumber")
        if number is not None and mode is not None and _pick(mode, _CONTINUOUS):
            return Capabilities(trigger, "nikon-burstnumber", "burstnumber with a burst capture mode")
        release, drive = self.settings.widget("eosremoterelease"), self.settings.widget("drivemode")
        if release is not None and drive is not None and _pick(drive, _CONTINUOUS) and _pick(release, _PRESS_FULL):
            return Capabilities(trigger, "canon-remote-release", "eosremoterelease with a continuous drive mode")
        return Capabilities(trigger, None, "no burstnumber or eosremoterelease with a continuous mode")

    def capture(self) -> Announced:
        path = self.session.call(self.cam.capture, gp.GP_CAPTURE_IMAGE)
        return Announced(path.folder, path.name)

    def trigger(self) -> None:
        self.session.call(self.cam.trigger_capture)

    def start_native(self, frames: int) -> None:
        kind = self.capabilities().native
        if kind == "nikon-burstnumber":
            self._native = kind
            mode, number = self.settings.widget("capturemode"), self.settings.widget("burstnumber")
            assert mode is not None and number is not None  # capabilities() found both
            self._put_for_the_burst("capturemode", mode, str(_pick(mode, _CONTINUOUS)))
            self._put_for_the_burst("burstnumber", number, str(frames))
            path = self.session.call(self.cam.capture, gp.GP_CAPTURE_IMAGE)
            for name in self._burst_before(path.folder, path.name, frames):  # the burst's others, in its folder
                self._queued.append(BodyEvent("file", Announced(path.folder, name)))
            self._queued.append(BodyEvent("file", Announced(path.folder, path.name)))
            return
        if kind == "canon-remote-release":
            self._native = kind
            drive, release = self.settings.widget("drivemode"), self.settings.widget("eosremoterelease")
            assert drive is not None and release is not None  # capabilities() found both
            self._put_for_the_burst("drivemode", drive, str(_pick(drive, _CONTINUOUS)))
            self.settings.put("eosremoterelease", str(_pick(release, _PRESS_FULL)), restore=False)
            return
        raise CameraError(f"the camera ({self.where()}) offers no host-started continuous burst")

    def stop_native(self) -> None:
        try:
            if self._native == "canon-remote-release":
                release = self.settings.widget("eosremoterelease")
                self.settings.put("eosremoterelease", str(_pick(release, _RELEASE_FULL) or "None"), restore=False)
            for name, value in self._put_back.items():
                self.settings.put(name, value, restore=False)
        finally:
            self._native = None
            self._put_back.clear()

    def _put_for_the_burst(self, name: str, widget: Any, value: str) -> None:
        """Set `name` for the burst, keeping the body's own value for stop_native to put back."""
        self._put_back.setdefault(name, str(widget.get_value()))
        self.settings.put(name, value)

    def _burst_before(self, folder: str, last: str, frames: int) -> list[str]:
        """The `frames - 1` files of `folder` numbered just below `last`: a Nikon burst's frames other than the
        one libgphoto2 returned, in order (one the body announces as well is taken once: the engine's stems)."""
        if frames <= 1:
            return []
        listed = self.listing(folder)
        top = file_number(last) or 0
        below = sorted(
            (n for n in listed if n != last and (file_number(n) or 0) < top), key=lambda n: file_number(n) or 0
        )
        return below[-(frames - 1) :]

    def next_event(self, seconds: float) -> BodyEvent:
        """A file, the end of a capture, or nothing within `seconds` (other events: folders, property changes,
        are passed over)."""
        if self._queued:
            return self._queued.popleft()
        deadline = time.monotonic() + seconds
        while True:
            kind, data = self.cam.wait_for_event(max(0, int((deadline - time.monotonic()) * 1000)))
            if kind == gp.GP_EVENT_FILE_ADDED:
                return BodyEvent("file", Announced(data.folder, data.name))
            if kind == gp.GP_EVENT_CAPTURE_COMPLETE:
                return BodyEvent("done")
            left = deadline - time.monotonic()
            if left <= 0:
                return BodyEvent("nothing")
            if kind == gp.GP_EVENT_TIMEOUT:  # libgphoto2 may return at once with nothing queued: do not spin
                time.sleep(min(left, 0.005))

    def download(self, file: Announced) -> Download:
        cam_file = self.session.call(self.cam.file_get, file.folder, file.name, gp.GP_FILE_TYPE_NORMAL)
        return Download(file, memoryview(cam_file.get_data_and_size()), cam_file)

    def delete(self, file: Announced) -> None:
        self.session.call(self.cam.file_delete, file.folder, file.name)

    def listing(self, folder: str) -> list[str]:
        try:
            listed = self.session.call(self.cam.folder_list_files, folder)
            return [str(listed.get_name(i)) for i in range(listed.count())]
        except gp.GPhoto2Error:
            return []

    def exists(self, file: Announced) -> bool:
        try:
            self.session.call(self.cam.file_get_info, file.folder, file.name)
        except gp.GPhoto2Error:
            return False
        return True
