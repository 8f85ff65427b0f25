"""Live view on a libgphoto2 body: `capture_preview()` one JPEG at a time, on the camera's own thread.

The abilities are read before the first preview: on some bodies a preview call they do not offer wedges the PTP
session until a power cycle. A body that offers it and then answers "Unsupported operation" (libgphoto2's
virtual camera does) gets the same clear answer: no live view on this body, and capture goes on as before.
"""

from __future__ import annotations

import logging

import gphoto2 as gp

from medianscan.capture.camera import faults
from medianscan.capture.camera.base import CameraError, NoLiveViewError
from medianscan.capture.camera.gphoto2.session import _ALIVE_WIDGETS, Gphoto2Session

log = logging.getLogger(__name__)

_VIEWFINDER = "viewfinder"  # Canon and Nikon: 1 while live view runs; 0 drops the mirror again
_BATTERY = "batterylevel"
# The bodies' live-view magnifiers libgphoto2 drives: (zoom widget, its position widget or None).
_MAGNIFIERS = (("eoszoom", "eoszoomposition"), ("liveviewimagezoomratio", None))


class Gphoto2LiveView:
    """Preview frames, the battery and the liveness question of one session."""

    def __init__(self, session: Gphoto2Session) -> None:
        self.session = session
        self._offered: bool | None = None  # read from the abilities once per session
        self._viewfinder_up = False
        session.on_connect.append(self._forget)

    def _forget(self) -> None:
        self._offered = None
        self._viewfinder_up = False

    def _no_live_view(self, why: str) -> NoLiveViewError:
        return NoLiveViewError(f"no live view on this body ({self.session.where()}): {why}; capture still works")

    def preview(self) -> bytes:
        cam = self.session.cam
        if cam is None:
            raise CameraError(f"no camera session for live view: {faults.NO_CAMERA_FIX}")
        if self._offered is None:
            self._offered = bool(cam.get_abilities().operations & gp.GP_OPERATION_CAPTURE_PREVIEW)
        if not self._offered:
            raise self._no_live_view("libgphoto2 offers no preview capture for it")
        try:
            camera_file = self.session.call(cam.capture_preview)
            data = bytes(camera_file.get_data_and_size())
        except gp.GPhoto2Error as exc:
            if exc.code == faults.NOT_SUPPORTED:
                self._offered = False
                raise self._no_live_view(f"libgphoto2 answers '{exc.string}'") from exc
            raise CameraError(
                faults.explain(exc.code, "read a live-view frame", self.session.where(), exc.string)
            ) from exc
        self._viewfinder_up = True
        if not data.startswith(b"\xff\xd8"):
            raise CameraError(f"the live-view frame from {self.session.where()} is not a JPEG ({len(data)} bytes)")
        return data

    def magnify(self, at: tuple[float, float] | None) -> bool:
        """Canon's `eoszoom` (aimed with `eoszoomposition`, in sensor pixels) or Nikon's zoom ratio; the highest
        choice on, the lowest off."""
        cam = self.session.cam
        if cam is None:
            return False
        for name, position in _MAGNIFIERS:
            try:
                widget = cam.get_single_config(name)
            except gp.GPhoto2Error:
                continue
            try:
                choices = [str(c) for c in widget.get_choices()] if widget.get_type() == gp.GP_WIDGET_RADIO else []
                widget.set_value((choices[-1] if at else choices[0]) if choices else ("5" if at else "1"))
                cam.set_single_config(name, widget)
                if at is not None and position is not None:
                    self._aim(position, at)
            except gp.GPhoto2Error as exc:
                log.info("the body's magnifier (%s) did not take the change: %s", name, exc)
                return False
            return True
        return False

    def _aim(self, position: str, at: tuple[float, float]) -> None:
        cam = self.session.cam
        size = cam.get_single_config("eosviewfindersize") if position == "eoszoomposition" else None
        width, height = (int(v) for v in str(size.get_value()).split("x")) if size is not None else (0, 0)
        widget = cam.get_single_config(position)
        widget.set_value(f"{round(at[0] * width)},{round(at[1] * height)}")
        cam.set_single_config(position, widget)

    def end_preview(self) -> None:
        """Fire and forget: waiting for a read-back here is what froze other tools' live view."""
        if not self._viewfinder_up or self.session.cam is None:
            return
        self._viewfinder_up = False
        try:
            widget = self.session.cam.get_single_config(_VIEWFINDER)
            widget.set_value(0)
            self.session.cam.set_single_config(_VIEWFINDER, widget)
        except gp.GPhoto2Error as exc:
            log.debug("viewfinder off: %s", exc)

    def responding(self) -> bool:
        """One config read: False only for the errors that mean the body is gone from the bus."""
        if self.session.cam is None:
            return False
        for name in _ALIVE_WIDGETS:
            try:
                self.session.call(self.session.cam.get_single_config, name)
                return True
            except gp.GPhoto2Error as exc:
                if exc.code in faults.GONE:
                    return False
        return True  # it answered, if only "no such widget"

    def battery(self) -> str | None:
        if self.session.cam is None:
            return None
        try:
            return str(self.session.cam.get_single_config(_BATTERY).get_value()).strip() or None
        except gp.GPhoto2Error:
            return None
