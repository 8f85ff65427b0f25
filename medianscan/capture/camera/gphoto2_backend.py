"""A real camera through libgphoto2 (python-gphoto2): the only module that imports gphoto2.

One object per session and one thread per object, as libgphoto2 wants. A lost session is never revived on the
same `gp.Camera` (exit + init on one object corrupts libgphoto2's heap): reconnecting frees it and builds a new
one. Every value set is read back until it lands; every file reaches its final name only when it is whole on
disk, and only then is it deleted from the camera.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medianscan.atomic import atomic_path
from medianscan.capture.camera import faults
from medianscan.capture.camera.base import BurstError, BurstRecord, Camera, CameraError, CameraIdentity, SettingInfo
from medianscan.capture.camera.files import choose, classify, frame_name
from medianscan.capture.camera.settings import canonical_key, match_choice, same_value, widget_candidates
from medianscan.config.schema import CameraConfig

log = logging.getLogger(__name__)

_SERIAL_WIDGETS = ("serialnumber", "eosserialnumber")
_ALIVE_WIDGETS = ("batterylevel", "serialnumber", "cameramodel")
_gp: Any = None  # the gphoto2 module once imported
_logging_hook: object = None  # keeps libgphoto2's log callback installed


def gphoto2() -> Any:
    """The gphoto2 module, imported on first use; with -vv libgphoto2's messages go to `logging` too."""
    global _gp, _logging_hook  # noqa: PLW0603 - one import and one log callback per process
    if _gp is None:
        import gphoto2 as gp

        if logging.getLogger("gphoto2").isEnabledFor(logging.DEBUG):
            # only when asked: the callback runs for every libgphoto2 message, even those nobody reads
            _logging_hook = gp.use_python_logging(
                mapping={gp.GP_LOG_ERROR: logging.INFO, gp.GP_LOG_VERBOSE: logging.DEBUG}
            )
        _gp = gp
    return _gp


def autodetect() -> list[tuple[str, str]]:
    """(model, port) of every camera libgphoto2 sees on the bus."""
    gp = gphoto2()
    try:
        found = gp.Camera.autodetect()
    except gp.GPhoto2Error as exc:
        raise CameraError(
            f"libgphoto2 cannot look for cameras ({exc.string}): check that its port drivers are installed "
            "(IOLIBS, the gphoto2 wheel's libgphoto2/iolibs)"
        ) from exc
    return [(found.get_name(i), found.get_value(i)) for i in range(found.count())]


def _stem(name: str) -> str:
    """'DSC_0001.NEF' -> 'DSC_0001': a RAW+JPEG pair shares it."""
    return name.rsplit(".", 1)[0]


def _usb_node(port: str) -> Path | None:
    match = re.fullmatch(r"usb:(\d+),(\d+)", port)
    return Path(f"/dev/bus/usb/{int(match.group(1)):03d}/{int(match.group(2)):03d}") if match else None


def _no_permission(port: str) -> bool:
    node = _usb_node(port)
    return node is not None and node.exists() and not os.access(node, os.R_OK | os.W_OK)


def _read_serial(cam: Any) -> str:
    gp = gphoto2()
    for name in _SERIAL_WIDGETS:
        try:
            return str(cam.get_single_config(name).get_value()).strip()
        except gp.GPhoto2Error:
            continue
    return ""


def list_cameras() -> list[CameraIdentity]:
    """Every camera on the bus, with its serial where the camera can be opened to read it."""
    gp = gphoto2()
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


def _typed(widget: Any, value: str) -> object:
    """`value` in the Python type the widget's set_value wants."""
    gp = gphoto2()
    kind = widget.get_type()
    if kind == gp.GP_WIDGET_TOGGLE:
        return 1 if value.strip().lower() in {"1", "on", "true", "yes"} else 0
    if kind == gp.GP_WIDGET_RANGE:
        return float(value)
    if kind == gp.GP_WIDGET_DATE:
        return int(value)
    return value


NO_CHOICES = "no choices (manual lens?)"


def _choiceless(widget: Any) -> bool:
    """A radio or menu widget that offers nothing: what a manual or adapted lens makes some bodies report for
    the aperture. Reading such a widget's value is reported to crash libgphoto2 (NegPy #617), so nothing here
    ever reads one."""
    gp = gphoto2()
    return widget.get_type() in (gp.GP_WIDGET_RADIO, gp.GP_WIDGET_MENU) and widget.count_choices() == 0


def _choices(widget: Any) -> list[str]:
    gp = gphoto2()
    if widget.get_type() in (gp.GP_WIDGET_RADIO, gp.GP_WIDGET_MENU):
        return [str(widget.get_choice(i)) for i in range(widget.count_choices())]
    if widget.get_type() == gp.GP_WIDGET_TOGGLE:
        return ["0", "1"]
    if widget.get_type() == gp.GP_WIDGET_RANGE:
        low, high, step = widget.get_range()
        return [f"{low:g}..{high:g} step {step:g}"]
    return []


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
        self.busy_retry_seconds = busy_retry_seconds  # keep retrying a call answered "busy" (-110) this long
        self.capture_timeout_seconds = capture_timeout_seconds  # trigger: longest wait for a frame's files
        self.identity: CameraIdentity | None = None
        self._factory = factory
        self._sleep = sleep
        self._cam: Any = None
        self._originals: dict[str, str] = {}  # widget name -> value found before our first change
        self._names: dict[str, str] = {}  # config key -> widget name found on this body
        self._warned_not_raw = False
        self._alive_widget: str | None = None

    # -- session ---------------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._cam is not None

    def _where(self) -> str:
        if self.identity:
            return f"{self.identity.model} on {self.identity.port}"
        return " ".join(x for x in (self.cfg.model or "", self.cfg.port or "") if x)

    def _select(self) -> list[tuple[str, str]]:
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
        gp = gphoto2()
        if self._cam is not None:
            return self.identity  # type: ignore[return-value]
        candidates = self._select()
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
            self._cam = cam
            self._names = {}
            self._alive_widget = None
            self.identity = CameraIdentity(model=model, port=port, serial=serial)
            log.info("connected to %s on %s (serial %s)", model, port, serial or "unknown")
            return self.identity
        raise CameraError(
            f"no camera has serial {self.cfg.serial!r} (found {'; '.join(seen_serials)}); fix camera.serial"
        )

    def _drop(self) -> None:
        """Forget the session without restoring anything (the camera may be gone)."""
        cam, self._cam = self._cam, None
        if cam is not None:
            _exit_quietly(gphoto2(), cam)
        del cam

    def _reconnect(self) -> bool:
        """A new session on a new gp.Camera, retrying with backoff up to reconnect_max_seconds."""
        self._drop()
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
                self._sleep(delay)
                delay = min(delay * 2, 5.0)

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)`, retried with backoff while the camera answers busy (-110)."""
        gp = gphoto2()
        deadline = time.monotonic() + self.busy_retry_seconds
        delay = 0.05
        while True:
            try:
                return fn(*args)
            except gp.GPhoto2Error as exc:
                if exc.code != faults.BUSY or time.monotonic() + delay > deadline:
                    raise
                log.info("camera busy; retrying in %.2f s", delay)
                self._sleep(delay)
                delay = min(delay * 2, 1.0)

    def close(self) -> None:
        """Put back every value we changed, then end the session."""
        if self._cam is None:
            return
        gp = gphoto2()
        for name, value in self._originals.items():
            try:
                widget = self._cam.get_single_config(name)
                widget.set_value(_typed(widget, value))
                self._call(self._cam.set_single_config, name, widget)
            except (gp.GPhoto2Error, ValueError) as exc:
                log.warning("could not restore %s to %r on %s: %s", name, value, self._where(), exc)
        self._originals.clear()
        self._drop()

    # -- settings --------------------------------------------------------------------------------------------

    def _optional(self, key: str) -> bool:
        return canonical_key(key) in {canonical_key(o) for o in self.cfg.optional}

    def _find(self, key: str) -> tuple[str, Any] | None:
        gp = gphoto2()
        names = (self._names[key],) if key in self._names else widget_candidates(key)
        for name in names:
            try:
                widget = self._call(self._cam.get_single_config, name)
            except gp.GPhoto2Error as exc:
                if exc.code in (faults.BAD_PARAMETERS, faults.NOT_SUPPORTED):
                    continue
                raise
            self._names[key] = name
            return name, widget
        return None

    def lock(self) -> dict[str, str]:
        """Set each configured setting, read it back until it lands, and return what the camera reports."""
        if self._cam is None:
            self.connect()
        gp = gphoto2()
        result: dict[str, str] = {}
        for key, wanted in self.cfg.settings.items():
            try:
                found = self._find(key)
                if found is None:
                    tried = ", ".join(repr(n) for n in widget_candidates(key))
                    message = f"the camera ({self._where()}) has no setting {key!r} (tried {tried})"
                    if self._optional(key):
                        log.warning("%s; skipped as it is optional", message)
                        continue
                    raise CameraError(f"{message}: remove it from camera.settings or add it to camera.optional")
                name, widget = found
                if _choiceless(widget):
                    message = (
                        f"camera setting {key!r} ({name}) offers no choices on {self._where()}: a manual or adapted "
                        "lens? Set it on the lens"
                    )
                    if self._optional(key):
                        log.warning("%s; skipped as it is optional", message)
                        continue
                    raise CameraError(f"{message}, and remove it from camera.settings or add it to camera.optional")
                result[key] = self._set_verified(key, str(wanted), name, widget)
            except gp.GPhoto2Error as exc:
                if exc.code in faults.GONE:
                    self._drop()  # the session is lost: the next call reconnects on a new object
                raise CameraError(faults.explain(exc.code, f"set {key!r}", self._where(), exc.string)) from exc
        return result

    def _set_verified(self, key: str, wanted: str, name: str, widget: Any) -> str:
        gp = gphoto2()
        current = str(widget.get_value())
        if same_value(key, wanted, current):
            return current
        choices = _choices(widget)
        target = wanted
        if widget.get_type() in (gp.GP_WIDGET_RADIO, gp.GP_WIDGET_MENU):
            match = match_choice(key, wanted, choices)
            if match is None:
                shown = ", ".join(choices[:30]) + (" ..." if len(choices) > 30 else "")
                raise CameraError(
                    f"camera setting {key!r} ({name}) cannot be {wanted!r} on {self._where()}: it offers {shown}"
                )
            target = match
        if widget.get_readonly():
            raise CameraError(
                f"camera setting {key!r} ({name}) is read-only on {self._where()} and reads {current!r}, "
                f"not {wanted!r}: change it on the body (mode dial) or remove it from camera.settings"
            )
        self._originals.setdefault(name, current)
        try:
            widget.set_value(_typed(widget, target))
        except ValueError as exc:
            raise CameraError(f"camera setting {key!r} ({name}) cannot be {wanted!r}: {exc}") from exc
        self._call(self._cam.set_single_config, name, widget)
        deadline = time.monotonic() + self.cfg.settle_seconds
        delay = 0.02
        while True:
            now = str(self._call(self._cam.get_single_config, name).get_value())
            if same_value(key, wanted, now) or now == target:
                return now
            if time.monotonic() + delay > deadline:
                raise CameraError(
                    f"camera setting {key!r} ({name}) did not take {wanted!r} on {self._where()}: it still "
                    f"reads {now!r} after {self.cfg.settle_seconds:g} s (check the mode dial and lens)"
                )
            self._sleep(delay)
            delay = min(delay * 2, 0.25)

    def describe(self) -> list[SettingInfo]:
        if self._cam is None:
            self.connect()
        gp = gphoto2()
        result: list[SettingInfo] = []

        def walk(widget: Any, section: str) -> None:
            if widget.get_type() in (gp.GP_WIDGET_WINDOW, gp.GP_WIDGET_SECTION):
                for i in range(widget.count_children()):
                    walk(widget.get_child(i), widget.get_name())
                return
            if _choiceless(widget):
                value = NO_CHOICES
            else:
                try:
                    value = str(widget.get_value())
                except gp.GPhoto2Error:
                    value = ""
            name = widget.get_name()
            result.append(
                SettingInfo(
                    name=name,
                    key=canonical_key(name),
                    label=widget.get_label(),
                    value=value,
                    choices=_choices(widget),
                    readonly=bool(widget.get_readonly()),
                    section=section,
                )
            )

        try:
            walk(self._call(self._cam.get_config), "")
        except gp.GPhoto2Error as exc:
            if exc.code in faults.GONE:
                self._drop()
            raise CameraError(faults.explain(exc.code, "read the settings", self._where(), exc.string)) from exc
        return result

    # -- burst -----------------------------------------------------------------------------------------------

    def burst(self, n: int, stack_dir: Path, stem: str) -> BurstRecord:
        """Re-lock, then shoot n frames into stack_dir; on a fault reconnect and raise BurstError with the record."""
        gp = gphoto2()
        record = BurstRecord(stack=Path(stack_dir), started=time.time(), camera=self.identity)
        start = time.perf_counter()
        stems: dict[str, int] = {}  # camera file stem -> frame index, to pair late RAW+JPEG companions
        was_connected = self._cam is not None
        try:
            if self._cam is None:
                self.connect()
            record.camera = self.identity
            record.settings = self.lock()
            self._drain(record, stems, stem, n)
            record.stack.mkdir(parents=True, exist_ok=True)
            for index in range(1, n + 1):
                t0 = time.perf_counter()
                files = self._shoot()
                for _folder, name in files:
                    stems[_stem(name)] = index
                self._store(index, n, files, record, stem)
                record.per_frame_seconds.append(time.perf_counter() - t0)
            self._drain(record, stems, stem, n)
        except gp.GPhoto2Error as exc:
            doing = f"shoot frame {len(record.frames) + 1} of {n} into {stack_dir}"
            message = faults.explain(exc.code, doing, self._where(), exc.string)
            if exc.code in faults.GONE:
                message += "; reconnected" if self._reconnect() else "; the camera is still gone"
            record.error = f"{message}; {len(record.frames)} frame(s) kept"
            raise BurstError(record.error, record) from exc
        except CameraError as exc:
            message = str(exc)
            if was_connected and not self.connected:  # lost while locking: be back for the next burst
                message += "; reconnected" if self._reconnect() else "; the camera is still gone"
            record.error = f"{message}; {len(record.frames)} frame(s) kept"
            raise BurstError(record.error, record) from exc
        finally:
            record.seconds = time.perf_counter() - start
        return record

    def _shoot(self) -> list[tuple[str, str]]:
        """Fire once; the (folder, name) of every file that shot made, as the camera announced them."""
        gp = gphoto2()
        if self.cfg.strategy == "capture":
            path = self._call(self._cam.capture, gp.GP_CAPTURE_IMAGE)
            files = [(path.folder, path.name)]
            shot = _stem(path.name)
            for _ in range(100):  # a RAW+JPEG body announces the second file (same stem) as an event
                kind, data = self._cam.wait_for_event(1)
                if kind == gp.GP_EVENT_FILE_ADDED and _stem(data.name) == shot:
                    files.append((data.folder, data.name))
                elif kind == gp.GP_EVENT_FILE_ADDED:
                    self._stray(data.folder, data.name)
                elif kind in (gp.GP_EVENT_TIMEOUT, gp.GP_EVENT_CAPTURE_COMPLETE):
                    break
            return files
        self._call(self._cam.trigger_capture)
        files = []
        complete = False
        last = start = time.monotonic()
        while True:
            kind, data = self._cam.wait_for_event(100)
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
                    f"the camera ({self._where()}) announced no file within "
                    f"{self.capture_timeout_seconds:g} s of the trigger; check the capture target and card"
                )
            if kind == gp.GP_EVENT_TIMEOUT:
                self._sleep(0.005)  # libgphoto2 may return at once with nothing queued: do not spin

    def _download(self, folder: str, name: str) -> tuple[Any, memoryview]:
        """The camera file and a view of its bytes (valid only while the file object lives: keep both)."""
        gp = gphoto2()
        cam_file = self._call(self._cam.file_get, folder, name, gp.GP_FILE_TYPE_NORMAL)
        return cam_file, memoryview(cam_file.get_data_and_size())

    def _store(self, index: int, total: int, files: list[tuple[str, str]], record: BurstRecord, stem: str) -> None:
        """Download one shot's files; the raw becomes the frame, a JPEG is kept only if configured."""
        items = []
        holders = []  # the CameraFile objects own the bytes the views point into
        for folder, name in files:
            holder, data = self._download(folder, name)
            holders.append(holder)
            items.append((folder, name, data, classify(name, bytes(data[:65536]))))
            record.camera_files.append(f"{folder.rstrip('/')}/{name}")
        frame, kept = choose([item[3] for item in items], self.cfg.keep_jpeg)
        if items[frame][3].kind != "raw" and not self._warned_not_raw:
            log.warning(
                "%s is not shooting RAW (got %s): set camera.settings.imageformat", self._where(), items[frame][1]
            )
            self._warned_not_raw = True
        for i, (folder, name, data, kind) in enumerate(items):
            if i == frame or i in kept:
                target = record.stack / frame_name(stem, index, total, kind.ext)
                with atomic_path(target) as tmp:  # libgphoto2 writes the temp; atomic_path fsyncs and renames
                    holders[i].save(str(tmp))
                (record.frames if i == frame else record.jpegs).append(target)
                record.sizes[target.name] = len(data)
            if self.cfg.delete_from_camera:
                self._call(self._cam.file_delete, folder, name)

    def _drain(self, record: BurstRecord, stems: dict[str, int], stem: str, total: int) -> None:
        """Empty the event queue; a late companion file of this burst is stored, any other file is left alone."""
        gp = gphoto2()
        for _ in range(1000):
            kind, data = self._cam.wait_for_event(1)
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
            self._where(),
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
            self._call(self._cam.file_delete, folder, name)

    # -- idle ------------------------------------------------------------------------------------------------

    def keep_alive(self) -> None:
        """Drain events and read one status value; reconnect if the camera has gone."""
        gp = gphoto2()
        if self._cam is None and not self._reconnect():
            raise CameraError(f"the camera ({self._where()}) is gone: {faults.NO_CAMERA_FIX}")
        try:
            for _ in range(100):
                kind, data = self._cam.wait_for_event(1)
                if kind == gp.GP_EVENT_TIMEOUT:
                    break
                if kind == gp.GP_EVENT_FILE_ADDED:
                    log.warning(
                        "%s/%s appeared on %s between bursts; left on the camera", data.folder, data.name, self._where()
                    )
            names = (self._alive_widget,) if self._alive_widget else _ALIVE_WIDGETS
            for name in names:
                try:
                    self._call(self._cam.get_single_config, name)
                    self._alive_widget = name
                    break
                except gp.GPhoto2Error as exc:
                    if exc.code in faults.GONE:
                        raise
        except gp.GPhoto2Error as exc:
            if exc.code in faults.GONE:
                log.warning("%s", faults.explain(exc.code, "keep the camera awake", self._where(), exc.string))
                if not self._reconnect():
                    raise CameraError(f"the camera ({self._where()}) is gone: {faults.NO_CAMERA_FIX}") from exc
            elif exc.code != faults.BUSY:
                log.warning("keep-alive: %s", exc)
