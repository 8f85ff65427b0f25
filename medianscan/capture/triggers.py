"""Where presses come from: a USB footswitch (evdev), the local control socket, the keyboard.

Every source runs on its own daemon thread and puts actions on one TriggerHub; the daemon takes them off with
`get(timeout)`. Nothing here touches the camera: a source only says what the operator asked for.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import grp
import json
import logging
import os
import queue
import select
import socket
import stat
import sys
import threading
import time
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TextIO

from medianscan.config import Action, Config, FootswitchConfig
from medianscan.errors import MedianscanError

log = logging.getLogger(__name__)

Command = Literal["capture", "retake", "new-roll", "pause", "resume", "status"]
COMMANDS: tuple[str, ...] = typing.get_args(Command)
FIRING: tuple[str, ...] = ("capture", "retake")  # actions that run the camera, subject to PressPolicy
Emit = Callable[[Command, str], None]  # (action, source name)
Handler = Callable[[Command, dict[str, Any]], dict[str, Any]]  # control socket: (action, request) -> reply
SOCKET_NAME = "control.sock"
MAX_LINE = 64 * 1024


Outcome = Literal["done", "queued", "ignored", "refused"]


@dataclass(frozen=True)
class Answer:
    """What the daemon did with a request, as the operator is told it (the control socket's reply, the
    console's): no "sent" when a press was ignored."""

    ok: bool
    action: Command
    text: str  # one sentence: "frame-012: 9 frames in 4.2 s; advance the negative", "ignored: paused"
    outcome: Outcome = "done"
    stack: str | None = None  # the stack captured or set aside
    roll: str | None = None  # the roll started

    def to_json(self) -> dict[str, Any]:
        data = {"ok": self.ok, "action": self.action, "outcome": self.outcome, "text": self.text}
        if not self.ok:
            data["error"] = self.text
        return data | {k: v for k, v in (("stack", self.stack), ("roll", self.roll)) if v is not None}

    def after_queue(self, behind: str) -> Answer:
        """The same answer for a press that waited for the burst under way (`behind`) first."""
        return dataclasses.replace(self, text=f"queued behind {behind}, then: {self.text}", outcome="queued")


@dataclass(frozen=True)
class TriggerEvent:
    """One request from one source, stamped on arrival (time.monotonic) so the daemon can tell whether it
    came during a burst. `reply`, when the source waits for an answer (the control socket), is resolved once
    the daemon has done, queued or refused it."""

    action: Command
    source: str
    at: float
    reply: Future[Answer] | None = dataclasses.field(default=None, compare=False)
    behind: str | None = None  # the burst this press was queued behind, once the daemon kept it for later

    def answer(self, answer: Answer) -> None:
        """Tell the waiting source (if any) what happened; a second answer is ignored."""
        if self.behind is not None:
            answer = answer.after_queue(self.behind)
        if self.reply is not None and not self.reply.done():
            with contextlib.suppress(InvalidStateError):
                self.reply.set_result(answer)


class TriggerSource(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


class TriggerHub:
    """One queue for every source; thread-safe."""

    def __init__(self) -> None:
        self._queue: queue.Queue[TriggerEvent] = queue.Queue()
        self._sources: list[TriggerSource] = []

    def emit(self, action: Command, source: str = "", reply: Future[Answer] | None = None) -> None:
        if action not in COMMANDS:
            log.warning("ignoring unknown action %r from %s", action, source or "a trigger")
            return
        log.info("%s from %s", action, source or "a trigger")
        self._queue.put(TriggerEvent(action, source, time.monotonic(), reply))

    def get_event(self, timeout: float | None = None) -> TriggerEvent | None:
        """The next request, or None after `timeout` seconds without one."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def drain(self) -> list[TriggerEvent]:
        """Everything waiting, without blocking."""
        out = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out

    def add(self, source: TriggerSource) -> TriggerSource:
        self._sources.append(source)
        return source

    def start(self) -> None:
        for source in self._sources:
            source.start()

    def stop(self) -> None:
        """Stop every source (in reverse order of start); never raises."""
        for source in reversed(self._sources):
            try:
                source.stop()
            except Exception:
                log.exception("could not stop %r cleanly", source)


class PressPolicy:
    """What a capture or retake arriving during a burst does: "queue" keeps at most one for after the burst,
    "ignore" drops it. Other actions (pause, new-roll, status...) are always accepted."""

    def __init__(self, mode: Literal["queue", "ignore"]) -> None:
        self.mode = mode
        self._pending: Command | None = None
        self._lock = threading.Lock()

    def offer(self, action: Command, busy: bool) -> bool:
        """True: run `action` now (not busy) or it is now the pending press; False: it is dropped."""
        if not busy or action not in FIRING:
            return True
        with self._lock:
            if self.mode == "ignore" or self._pending is not None:
                log.info("%s during a burst ignored (%s)", action, self.why_ignored())
                return False
            self._pending = action
            return True

    def why_ignored(self) -> str:
        if self.mode == "ignore":
            return "a burst was under way (triggers.press_during_burst: ignore)"
        return "a burst was under way and one press already waits for it"

    def take(self) -> Command | None:
        """The press that waited for the burst to finish (once), or None."""
        with self._lock:
            action, self._pending = self._pending, None
            return action

    def clear(self) -> None:
        with self._lock:
            self._pending = None


# ------------------------------------------------------------------------------------------------------------
# Footswitch


class KeyMapper:
    """The pure core of the footswitch: evdev events in, actions out.

    Key-down only (value 1; 2 is autorepeat, 0 release), unmapped keys and non-key events ignored, and a press
    of the same key within `debounce_ms` of the last accepted one (by the kernel's event time) is bounce.
    """

    def __init__(self, keys: Mapping[str, Action], debounce_ms: int) -> None:
        from evdev import ecodes

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
    import evdev

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
    import evdev

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


def server_socket_path(cfg: Config) -> Path:
    """Where the daemon listens: the configured path, systemd's RuntimeDirectory=, $XDG_RUNTIME_DIR, or the
    library."""
    if cfg.triggers.socket is not None:
        return cfg.triggers.socket
    if os.environ.get("RUNTIME_DIRECTORY"):
        return Path(os.environ["RUNTIME_DIRECTORY"].split(":")[0]) / SOCKET_NAME
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "medianscan" / SOCKET_NAME
    return _fallback_socket(cfg)


def _fallback_socket(cfg: Config) -> Path:
    """Without a runtime folder: inside the folder the mode works on (the library, or the watched folder: a
    hot folder creates nothing outside it), hidden, so no scan takes it for a frame."""
    folder = cfg.watch.folder if cfg.mode == "watch" and cfg.watch.folder is not None else cfg.library
    return folder / f".medianscan-{SOCKET_NAME}"


def client_socket_paths(cfg: Config) -> list[Path]:
    """Where a client looks, in order: the configured path, else this user's service or foreground daemon,
    then the system service, then the library."""
    if cfg.triggers.socket is not None:
        return [cfg.triggers.socket]
    candidates = []
    if os.environ.get("XDG_RUNTIME_DIR"):
        candidates.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "medianscan" / SOCKET_NAME)
    candidates.append(Path("/run/medianscan") / SOCKET_NAME)
    candidates.append(_fallback_socket(cfg))
    return candidates


DEFAULT_WAIT = {"capture": 600.0, "retake": 600.0}  # seconds a client waits: a burst may be long
WAIT = 30.0


def hub_handler(hub: TriggerHub, status: Callable[[], dict[str, Any]]) -> Handler:
    """The usual handler: status answered from `status()`; every other action is put on the hub and its
    answer awaited (up to the request's "wait" seconds), so the client learns what really happened."""

    def handle(action: Command, request: dict[str, Any]) -> dict[str, Any]:
        if action == "status":
            return {"ok": True, "status": status()}
        wait = request.get("wait", DEFAULT_WAIT.get(action, WAIT))
        if not isinstance(wait, int | float) or wait <= 0:
            raise MedianscanError(f"wait must be a positive number of seconds, not {wait!r}")
        reply: Future[Answer] = Future()
        hub.emit(action, "socket", reply)
        try:
            return reply.result(timeout=float(wait)).to_json()
        except FutureTimeout:
            raise MedianscanError(
                f"{action}: no answer from the daemon within {wait:g} s; it may still do it (see `medianscan status`)"
            ) from None

    return handle


class ControlServer:
    """An AF_UNIX stream socket answering one JSON line per request, e.g. {"action": "capture"} ->
    {"ok": true, ...}. Mode 0660: the service's group may use it, nobody else."""

    def __init__(self, path: Path, handler: Handler, *, mode: int = 0o660) -> None:
        self.path = Path(path)
        self.handler = handler
        self.mode = mode
        self._sock: socket.socket | None = None
        self._inode: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind (replacing a stale socket, refusing a live one) and serve on a thread."""
        if len(os.fsencode(self.path)) >= 108:
            raise MedianscanError(f"control socket path {self.path} is too long for a Unix socket (max 107 bytes)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        except OSError as exc:
            raise MedianscanError(f"cannot create {self.path.parent} for the control socket: {exc.strerror}") from None
        self._check_folder()
        self._remove_stale()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        previous = os.umask(0o777 & ~self.mode)  # the socket is born with its final mode: no window
        try:
            sock.bind(str(self.path))
            sock.listen(8)
        except OSError as exc:
            sock.close()
            raise MedianscanError(f"cannot listen on {self.path}: {exc.strerror}") from None
        finally:
            os.umask(previous)
        sock.settimeout(0.25)  # accept() wakes up to notice stop()
        self._inode = self.path.stat().st_ino
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="control-socket", daemon=True)
        self._thread.start()
        log.info("control socket listening on %s", self.path)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        with contextlib.suppress(OSError):
            if self._inode is not None and self.path.stat().st_ino == self._inode:
                self.path.unlink()  # only our own: a newer daemon may have taken the name

    def _check_folder(self) -> None:
        """A folder anyone may write to without the sticky bit lets anyone swap our socket for theirs."""
        info = self.path.parent.stat()
        if info.st_mode & stat.S_IWOTH and not info.st_mode & stat.S_ISVTX:
            raise MedianscanError(
                f"{self.path.parent} is writable by everyone and not sticky, so another user could replace the "
                "control socket; put triggers.socket in a folder of your own"
            )

    def _remove_stale(self) -> None:
        try:
            info = self.path.lstat()
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(info.st_mode):
            raise MedianscanError(f"{self.path} exists and is not a socket; remove it or set triggers.socket")
        if info.st_uid != os.geteuid():
            raise MedianscanError(
                f"{self.path} belongs to another user (uid {info.st_uid}); medianscan does not take over another "
                "user's socket: set triggers.socket to a path of your own"
            )
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1)
        try:
            probe.connect(str(self.path))
        except OSError:
            self.path.unlink(missing_ok=True)  # left by a daemon that died
            return
        finally:
            probe.close()
        raise MedianscanError(f"another medianscan is already listening on {self.path}")

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                log.exception("control socket accept failed")
                time.sleep(0.25)
                continue
            threading.Thread(target=self._client, args=(conn,), name="control-client", daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            reader = conn.makefile("rb")
            try:
                while not self._stop.is_set():
                    line = reader.readline(MAX_LINE + 1)
                    if not line:
                        return
                    if not line.strip():
                        continue
                    reply = self.answer(line)
                    conn.sendall(json.dumps(reply, default=str).encode() + b"\n")
            except OSError:
                return  # the client went away or timed out
            finally:
                reader.close()

    def answer(self, line: bytes) -> dict[str, Any]:  # noqa: PLR0911 - one reply per kind of bad request
        """The reply to one request line; a bad request is an error reply, never an exception."""
        if len(line) > MAX_LINE:
            return {"ok": False, "error": f"request longer than {MAX_LINE} bytes"}
        try:
            request = json.loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            return {"ok": False, "error": f"not a JSON request ({exc})"}
        if not isinstance(request, dict):
            return {"ok": False, "error": 'a request is a JSON object such as {"action": "capture"}'}
        action = request.get("action")
        if action not in COMMANDS:
            return {"ok": False, "error": f"unknown action {action!r} (known: {', '.join(COMMANDS)})"}
        try:
            reply = self.handler(typing.cast(Command, action), request)
        except MedianscanError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:
            log.exception("control socket handler failed on %r", action)
            return {"ok": False, "error": f"internal error: {exc}"}
        return {"ok": True, **reply}


def request(path: Path, action: str, timeout: float | None = None, **fields: Any) -> dict[str, Any]:
    """Send one request to the daemon's control socket and return its reply (the daemon's answer, once it has
    done or refused the action: it waits up to `timeout` seconds for that); problems become one sentence."""
    wait = timeout if timeout is not None else DEFAULT_WAIT.get(action, WAIT)
    if action != "status":
        fields = {"wait": wait, **fields}
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(wait + 5)
    try:
        try:
            sock.connect(str(path))
        except FileNotFoundError:
            raise MedianscanError(f"no medianscan daemon is listening on {path} (is it running?)") from None
        except ConnectionRefusedError:
            raise MedianscanError(f"no medianscan daemon is listening on {path} (a stale socket)") from None
        except PermissionError:
            group = _group_of(path)
            raise MedianscanError(
                f"not allowed to use {path}: add yourself to its group {group} (`sudo usermod -aG {group} "
                "$USER`, then log in again)"
            ) from None
        sock.sendall(json.dumps({"action": action, **fields}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        raise MedianscanError(f"the daemon on {path} did not answer within {wait:g} s") from None
    except OSError as exc:
        raise MedianscanError(f"cannot talk to the daemon on {path}: {exc.strerror or exc}") from None
    finally:
        sock.close()
    try:
        reply = json.loads(data)
    except ValueError:
        raise MedianscanError(f"the daemon on {path} gave no valid answer") from None
    if not isinstance(reply, dict):
        raise MedianscanError(f"the daemon on {path} gave no valid answer")
    return reply


def _group_of(path: Path) -> str:
    """The name of the group that owns `path` (the socket's, or its folder's when the socket cannot be seen)."""
    for candidate in (path, path.parent):
        try:
            gid = candidate.stat().st_gid
        except OSError:
            continue
        try:
            return grp.getgrgid(gid).gr_name
        except KeyError:
            return str(gid)
    return "medianscan"


# ------------------------------------------------------------------------------------------------------------
# Keyboard

KEYBOARD: dict[str, Command] = {
    "": "capture",
    "c": "capture",
    "r": "retake",
    "n": "new-roll",
    "p": "pause",
    "u": "resume",
    "s": "status",
}
KEYBOARD_HELP = "Enter: capture   r: retake   n: new roll   p: pause   u: resume   s: status   (then Enter)"


class KeyboardTrigger:
    """Interactive use on a terminal: Enter captures; a letter and Enter for the other actions."""

    def __init__(self, emit: Emit, stream: TextIO | None = None, out: TextIO | None = None) -> None:
        self.emit = emit
        self.stream = stream if stream is not None else sys.stdin
        self.out = out if out is not None else sys.stderr
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.out.write(KEYBOARD_HELP + "\n")
        self.out.flush()
        self._thread = threading.Thread(target=self._loop, name="keyboard", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)

    def _loop(self) -> None:
        fd = self.stream.fileno()
        pending = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.25)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return
            if not chunk:
                log.info("keyboard input closed")
                return
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                self.key(line.decode(errors="replace"))

    def key(self, line: str) -> None:
        """One line typed by the operator."""
        action = KEYBOARD.get(line.strip().lower())
        if action is None:
            self.out.write(KEYBOARD_HELP + "\n")
            self.out.flush()
            return
        self.emit(action, "keyboard")
