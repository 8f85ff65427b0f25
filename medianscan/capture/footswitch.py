"""The USB footswitch: its evdev nodes found by id or path, grabbed, keys mapped to actions, replugs survived."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import threading
import time
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import evdev
from evdev import ecodes

from medianscan.capture.events import Emit
from medianscan.config.schema import FootswitchConfig
from medianscan.errors import MedianscanError
from medianscan.vocabulary import Action

log = logging.getLogger(__name__)


class KeyMapper:
    """The pure core of the footswitch: evdev events in, actions out.

    Key-down only (value 1; 2 is autorepeat, 0 release), unmapped keys and non-key events ignored, and a press
    of the same key within `debounce_ms` of the last accepted one (by the kernel's event time) is bounce.
    """

    def __init__(self, keys: Mapping[str, Action], debounce_ms: int) -> None:
        self._ev_key = ecodes.EV_KEY
        self.codes: dict[int, Action] = {}
        for name, action in keys.items():
            if name not in ecodes.ecodes:
                raise MedianscanError(f"footswitch key {name!r} is not an evdev key name (see `evtest`)")
            self.codes[ecodes.ecodes[name]] = action
        self.debounce = debounce_ms / 1000
        self._last: dict[int, float] = {}

    def feed(self, event: Any) -> Action | None:
        """The action for one `evdev.InputEvent`, or None."""
        if event.type != self._ev_key or event.value != 1:
            return None
        action = self.codes.get(event.code)
        if action is None:
            log.debug("footswitch key code %d is not mapped", event.code)
            return None
        at = event.timestamp()
        last = self._last.get(event.code)
        if last is not None and 0 <= at - last < self.debounce:
            log.debug("footswitch bounce on key code %d (%.0f ms)", event.code, (at - last) * 1000)
            return None
        self._last[event.code] = at
        return action


@dataclass(frozen=True)
class NodeInfo:
    """One /dev/input/event* node: enough to tell which physical device it belongs to."""

    path: str
    vendor: int
    product: int
    phys: str
    name: str


def _usb_parent(phys: str) -> str:
    """The USB device part of `phys` ("usb-0000:00:14.0-2/input1" -> "usb-0000:00:14.0-2"), shared by its
    interfaces."""
    return phys.rsplit("/input", 1)[0]


def matching_nodes(spec: str, nodes: Sequence[NodeInfo], resolve: Callable[[str], str] = os.path.realpath) -> list[str]:
    """The event nodes of the device named by `spec` ("vendor:product" in hex, or a /dev/input path whose
    siblings, the other interfaces of the same USB device, are included)."""
    if not spec.startswith("/"):
        vendor, product = (int(part, 16) for part in spec.split(":"))
        return sorted(n.path for n in nodes if (n.vendor, n.product) == (vendor, product))
    target = resolve(spec)
    base = next((n for n in nodes if n.path == target), None)
    if base is None:
        return []
    return sorted(
        n.path
        for n in nodes
        if (n.vendor, n.product) == (base.vendor, base.product) and _usb_parent(n.phys) == _usb_parent(base.phys)
    )


class EventDevice(Protocol):
    """What the footswitch needs from an `evdev.InputDevice`."""

    path: str

    def fileno(self) -> int: ...
    def read(self) -> Iterable[Any]: ...
    def grab(self) -> None: ...
    def ungrab(self) -> None: ...
    def close(self) -> None: ...


_denied_said: set[str] = set()


def list_nodes() -> list[NodeInfo]:
    """Every event node this process may open (the service user needs group `input`)."""
    nodes = []
    denied: list[str] = []
    for path in evdev.list_devices():
        try:
            device = evdev.InputDevice(path)
        except PermissionError:
            denied.append(path)
            continue
        except OSError:
            continue  # vanished meanwhile
        try:
            nodes.append(NodeInfo(path, device.info.vendor, device.info.product, device.phys or "", device.name))
        finally:
            device.close()
    if denied and not nodes and not set(denied) <= _denied_said:  # once, not at every rescan
        _denied_said.update(denied)
        log.warning("cannot open %s: permission denied (is this user in group 'input'?)", ", ".join(denied))
    return nodes


def open_node(path: str) -> EventDevice:
    return typing.cast(EventDevice, evdev.InputDevice(path))


class Footswitch:
    """A USB pedal: all event nodes of the configured device, grabbed, mapped to actions; re-found after an
    unplug by rescanning every `rescan_seconds`."""

    def __init__(
        self,
        cfg: FootswitchConfig,
        emit: Emit,
        *,
        scan: Callable[[], list[NodeInfo]] = list_nodes,
        opener: Callable[[str], EventDevice] = open_node,
        rescan_seconds: float = 2.0,
    ) -> None:
        self.cfg = cfg
        self.emit = emit
        self.mapper = KeyMapper(cfg.keys, cfg.debounce_ms)
        self._scan = scan
        self._open = opener
        self.rescan_seconds = rescan_seconds
        self._devices: dict[int, EventDevice] = {}
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None
        self._missing_said = False

    @property
    def connected(self) -> bool:
        return bool(self._devices)

    def describe(self) -> dict[str, Any]:
        """For `medianscan status`."""
        return {"device": self.cfg.device, "connected": self.connected, "nodes": self.nodes()}

    def nodes(self) -> list[str]:
        return sorted(d.path for d in list(self._devices.values()))

    def start(self) -> None:
        if self.cfg.device is None:
            return
        self._thread = threading.Thread(target=self._loop, name="footswitch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(5)
        for device in list(self._devices.values()):
            self._release(device)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _loop(self) -> None:
        next_scan = 0.0
        while not self._stop.is_set():
            try:
                if not self._devices or time.monotonic() >= next_scan:
                    # when connected, look again now and then: a pedal's interfaces appear one by one
                    self._connect()
                    next_scan = time.monotonic() + self.rescan_seconds * 5
                if not self._devices:
                    self._stop.wait(self.rescan_seconds)
                    continue
                self._poll()
            except Exception:  # a footswitch fault must not end the thread: log, wait, rescan
                log.exception("footswitch error")
                self._stop.wait(self.rescan_seconds)

    def _connect(self) -> None:
        spec = self.cfg.device
        assert spec is not None
        was_connected = self.connected
        open_paths = set(self.nodes())
        paths = [p for p in matching_nodes(spec, self._scan()) if p not in open_paths]
        if not paths and was_connected:
            return
        if not paths:
            if not self._missing_said:
                log.warning("footswitch %s not found; waiting for it to be plugged in", spec)
                self._missing_said = True
            return
        for path in paths:
            try:
                device = self._open(path)
            except OSError as exc:
                log.warning("cannot open footswitch node %s: %s", path, exc.strerror or exc)
                continue
            try:
                device.grab()  # its keys never reach the desktop
            except OSError as exc:
                log.warning("cannot grab %s (%s): its keys also reach the desktop", path, exc.strerror or exc)
            self._devices[device.fileno()] = device
        if self._devices:
            log.info("footswitch %s %s (%s)", spec, "extended" if was_connected else "connected", ", ".join(paths))
            self._missing_said = False

    def _poll(self) -> None:
        ready, _, _ = select.select([*self._devices, self._wake_r], [], [], self.rescan_seconds)
        for fd in ready:
            if fd == self._wake_r:
                continue
            device = self._devices.get(fd)
            if device is None:
                continue
            try:
                for event in device.read():
                    action = self.mapper.feed(event)
                    if action is not None:
                        self.emit(action, "footswitch")
            except BlockingIOError:
                continue
            except OSError as exc:
                if exc.errno != errno.ENODEV:
                    log.warning("footswitch %s: %s", device.path, exc.strerror or exc)
                self._release(device)
                if not self._devices:
                    log.warning("footswitch %s unplugged; waiting for it to come back", self.cfg.device)
                    self._missing_said = True

    def _release(self, device: EventDevice) -> None:
        self._devices = {fd: d for fd, d in self._devices.items() if d is not device}
        with contextlib.suppress(OSError):
            device.ungrab()
        with contextlib.suppress(OSError):
            device.close()


# ------------------------------------------------------------------------------------------------------------
# Control socket
