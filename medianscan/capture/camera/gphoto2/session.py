"""The libgphoto2 session of one body: find it (model, port, serial), open it, call it (retrying while it is
busy), and reconnect on a new `gp.Camera` after a loss (exit + init on one object corrupts libgphoto2's heap).
One session per object and one thread per session, as libgphoto2 wants.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gphoto2 as gp

from medianscan.capture.camera import faults
from medianscan.capture.camera.base import CameraError, CameraIdentity
from medianscan.config.schema import CameraConfig

log = logging.getLogger(__name__)

_SERIAL_WIDGETS = ("serialnumber", "eosserialnumber")
_ALIVE_WIDGETS = ("batterylevel", "serialnumber", "cameramodel")
_logging_hook: object = None  # keeps libgphoto2's log callback installed


def log_libgphoto2() -> None:
    """With -vv, libgphoto2's own messages go to `logging` too; installed once, when the first session opens
    (after the command line has set the log level)."""
    global _logging_hook  # noqa: PLW0603 - one log callback per process
    if _logging_hook is None and logging.getLogger("gphoto2").isEnabledFor(logging.DEBUG):
        # only when asked: the callback runs for every libgphoto2 message, even those nobody reads
        _logging_hook = gp.use_python_logging(mapping={gp.GP_LOG_ERROR: logging.INFO, gp.GP_LOG_VERBOSE: logging.DEBUG})


def autodetect() -> list[tuple[str, str]]:
    """(model, port) of every camera libgphoto2 sees on the bus."""
    log_libgphoto2()
    try:
        found = gp.Camera.autodetect()
    except gp.GPhoto2Error as exc:
        raise CameraError(
            f"libgphoto2 cannot look for cameras ({exc.string}): check that its port drivers are installed "
            "(IOLIBS, the gphoto2 wheel's libgphoto2/iolibs)"
        ) from exc
    return [(found.get_name(i), found.get_value(i)) for i in range(found.count())]


def _usb_node(port: str) -> Path | None:
    match = re.fullmatch(r"usb:(\d+),(\d+)", port)
    return Path(f"/dev/bus/usb/{int(match.group(1)):03d}/{int(match.group(2)):03d}") if match else None


def _no_permission(port: str) -> bool:
    node = _usb_node(port)
    return node is not None and node.exists() and not os.access(node, os.R_OK | os.W_OK)


def _read_serial(cam: Any) -> str:
    for name in _SERIAL_WIDGETS:
        try:
            return str(cam.get_single_config(name).get_value()).strip()
        except gp.GPhoto2Error:
            continue
    return ""


def list_cameras() -> list[CameraIdentity]:
    """Every camera on the bus, with its serial where the camera can be opened to read it."""
    result = []
    for model, port in autodetect():
        serial = ""
        cam = None
        try:
            cam = _open(gp, gp.Camera, model, port)
            serial = _read_serial(cam)
        except gp.GPhoto2Error as exc:
            log.info("%s on %s cannot be opened to read its serial: %s", model, port, exc)
        finally:
            if cam is not None:
                _exit_quietly(gp, cam)
            del cam
        result.append(CameraIdentity(model=model, port=port, serial=serial))
    return result


def _open(gp: Any, factory: Callable[[], Any], model: str, port: str) -> Any:
    """A new, initialised gp.Camera for `model` on `port` (GPhoto2Error if it cannot be opened)."""
    abilities = gp.CameraAbilitiesList()
    abilities.load()
    ports = gp.PortInfoList()
    ports.load()
    cam = factory()
    cam.set_abilities(abilities[abilities.lookup_model(model)])
    cam.set_port_info(ports[ports.lookup_path(port)])
    cam.init()
    return cam


def _exit_quietly(gp: Any, cam: Any) -> None:
    try:
        cam.exit()
    except gp.GPhoto2Error as exc:
        log.debug("camera exit: %s", exc)


class Gphoto2Session:
    """One body's session. `factory` makes the gp.Camera objects (tests wrap the real one)."""

    def __init__(
        self,
        cfg: CameraConfig,
        *,
        factory: Callable[[], Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        busy_retry_seconds: float = 5.0,
    ) -> None:
        log_libgphoto2()
        self.cfg = cfg
        self.busy_retry_seconds = busy_retry_seconds  # keep retrying a call answered "busy" (-110) this long
        self.identity: CameraIdentity | None = None
        self.cam: Any = None  # the gp.Camera of the session, None when there is none
        self.on_connect: list[Callable[[], None]] = []  # run after every new session (what it knew is stale)
        self._factory = factory
        self.sleep = sleep

    @property
    def connected(self) -> bool:
        return self.cam is not None

    def where(self) -> str:
        if self.identity:
            return f"{self.identity.model} on {self.identity.port}"
        return " ".join(x for x in (self.cfg.model or "", self.cfg.port or "") if x)

    def select(self) -> list[tuple[str, str]]:
        found = autodetect()
        if not found:
            raise CameraError(f"no camera found: {faults.NO_CAMERA_FIX}")
        chosen = [
            (model, port)
            for model, port in found
            if (not self.cfg.model or self.cfg.model.casefold() in model.casefold())
            and (not self.cfg.port or self.cfg.port == port)
        ]
        if not chosen:
            wanted = ", ".join(f"{k} {v!r}" for k, v in (("model", self.cfg.model), ("port", self.cfg.port)) if v)
            seen = "; ".join(f"{m} on {p}" for m, p in found)
            raise CameraError(f"no camera matches {wanted} (found: {seen}); fix camera.model/camera.port")
        return chosen

    def connect(self) -> CameraIdentity:
        """Autodetect, pick by model/port/serial, open a new session. CameraError with the fix otherwise."""
        if self.cam is not None:
            return self.identity  # type: ignore[return-value]
        candidates = self.select()
        seen_serials = []
        for model, port in candidates:
            try:
                cam = _open(gp, self._factory or gp.Camera, model, port)
            except gp.GPhoto2Error as exc:
                if _no_permission(port):
                    raise CameraError(f"no permission to open {model} on {port}: {faults.PERMISSION_FIX}") from exc
                raise CameraError(
                    faults.explain(exc.code, "open the camera", f"{model} on {port}", exc.string)
                ) from exc
            serial = _read_serial(cam)
            if self.cfg.serial and serial != self.cfg.serial:
                seen_serials.append(f"{model} on {port}: {serial or '?'}")
                _exit_quietly(gp, cam)
                del cam
                continue
            self.cam = cam
            self.identity = CameraIdentity(model=model, port=port, serial=serial)
            for hook in self.on_connect:
                hook()
            log.info("connected to %s on %s (serial %s)", model, port, serial or "unknown")
            return self.identity
        raise CameraError(
            f"no camera has serial {self.cfg.serial!r} (found {'; '.join(seen_serials)}); fix camera.serial"
        )

    def drop(self) -> None:
        """Forget the session without restoring anything (the camera may be gone)."""
        cam, self.cam = self.cam, None
        if cam is not None:
            _exit_quietly(gp, cam)
        del cam

    def reconnect(self) -> bool:
        """A new session on a new gp.Camera, retrying with backoff up to reconnect_max_seconds."""
        self.drop()
        deadline = time.monotonic() + self.cfg.reconnect_max_seconds
        delay = 0.25
        while True:
            try:
                self.connect()
                return True
            except CameraError as exc:
                if time.monotonic() + delay > deadline:
                    log.warning("camera still gone after %.0f s: %s", self.cfg.reconnect_max_seconds, exc)
                    return False
                log.info("camera gone (%s); retrying in %.2f s", exc, delay)
                self.sleep(delay)
                delay = min(delay * 2, 5.0)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)`, retried with backoff while the camera answers busy (-110)."""
        deadline = time.monotonic() + self.busy_retry_seconds
        delay = 0.05
        while True:
            try:
                return fn(*args)
            except gp.GPhoto2Error as exc:
                if exc.code != faults.BUSY or time.monotonic() + delay > deadline:
                    raise
                log.info("camera busy; retrying in %.2f s", delay)
                self.sleep(delay)
                delay = min(delay * 2, 1.0)
