"""The daemon's control socket: where it listens, and the AF_UNIX server that answers one JSON line per request."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import stat
import tempfile
import threading
import typing
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

from medianscan.capture.events import (
    MAX_LINE,
    SOCKET_NAME,
    Answer,
    BadRequestError,
    RequestHandler,
    TriggerHub,
    not_in_time,
    parse_request,
    wait_seconds,
)
from medianscan.config.schema import Config
from medianscan.errors import MedianscanError
from medianscan.records import FilmRecord
from medianscan.vocabulary import REQUESTS, Request

log = logging.getLogger(__name__)

MAX_CLIENTS = 32  # clients served at once; one more is told to try again
CLIENT_SECONDS = 30.0  # a client silent this long is closed


def server_socket_path(cfg: Config) -> Path:
    """Where the daemon listens: the configured path, systemd's RuntimeDirectory=, or this user's runtime folder
    (`user_runtime_folder`), where every client of the same user finds it without being told."""
    if cfg.triggers.socket is not None:
        return cfg.triggers.socket
    if os.environ.get("RUNTIME_DIRECTORY"):
        return Path(os.environ["RUNTIME_DIRECTORY"].split(":")[0]) / SOCKET_NAME
    return user_runtime_folder() / SOCKET_NAME


def user_runtime_folder() -> Path:
    """$XDG_RUNTIME_DIR/medianscan; without a runtime folder (a plain ssh or su session, a container) a private
    folder of this user's in the temp folder, <tmp>/medianscan-<uid>, as tmux and ssh-agent make theirs."""
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "medianscan"
    return private_temp_folder()


def private_temp_folder() -> Path:
    return Path(tempfile.gettempdir()) / f"medianscan-{os.geteuid()}"


def hub_handler(hub: TriggerHub, status: Callable[[], dict[str, Any]]) -> RequestHandler:
    """The usual handler: status answered from `status()`; every other action is put on the hub and its
    answer awaited (up to the request's "wait" seconds), so the client learns what really happened."""

    def handle(action: Request, request: dict[str, Any]) -> dict[str, Any]:
        if action == "status":
            return {"ok": True, "status": status()}
        try:
            wait = wait_seconds(request, action)
            film = None if request.get("film") is None else FilmRecord.from_json(request["film"])
            strip = request.get("strip")  # scan-tiles: the whole strip of 120
            if strip is not None and not isinstance(strip, bool):
                raise ValueError(f"strip must be true or false, not {strip!r}")
        except ValueError as exc:
            raise MedianscanError(f"{action}: {exc}") from None
        reply: Future[Answer] = Future()
        hub.emit(action, "socket", reply, film=film, strip=strip)
        try:
            return reply.result(timeout=wait).to_json()
        except FutureTimeout:
            raise MedianscanError(f"{action}: {not_in_time(reply, wait)}") from None

    return handle


class ControlServer:
    """An AF_UNIX stream socket answering one JSON line per request, e.g. {"action": "capture"} ->
    {"ok": true, ...}. Mode 0660: the service's group may use it, nobody else."""

    def __init__(self, path: Path, handler: RequestHandler, *, mode: int = 0o660) -> None:
        self.path = Path(path)
        self.handler = handler
        self.mode = mode
        self._sock: socket.socket | None = None
        self._inode: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._clients = threading.BoundedSemaphore(MAX_CLIENTS)

    def start(self) -> None:
        """Bind (replacing a stale socket, refusing a live one) and serve on a thread."""
        if len(os.fsencode(self.path)) >= 108:
            raise MedianscanError(f"control socket path {self.path} is too long for a Unix socket (max 107 bytes)")
        private = self.path.parent == private_temp_folder()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700 if private else 0o750)
        except OSError as exc:
            raise MedianscanError(f"cannot create {self.path.parent} for the control socket: {exc.strerror}") from None
        self._check_folder(private)
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

    def _check_folder(self, private: bool) -> None:
        """A folder anyone may write to without the sticky bit lets anyone swap our socket for theirs; the private
        temp folder must be ours and closed to others (another user may have made it first in the shared /tmp)."""
        info = self.path.parent.lstat()
        if private and (not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077):
            raise MedianscanError(
                f"{self.path.parent} is not a private folder of yours (owner uid {info.st_uid}, mode "
                f"{stat.S_IMODE(info.st_mode):o}), so another user could reach the control socket; remove it, or "
                "set triggers.socket to a path of your own"
            )
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
        """Accept clients, at most MAX_CLIENTS at once; a failing accept (out of descriptors) backs off."""
        assert self._sock is not None
        backoff = 0.0
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if self._stop.is_set():
                    return
                backoff = min(max(0.25, backoff * 2), 5.0)
                log.warning("control socket: accept failed (%s); trying again in %.2f s", exc.strerror or exc, backoff)
                self._stop.wait(backoff)
                continue
            backoff = 0.0
            if not self._clients.acquire(blocking=False):
                with conn:
                    conn.settimeout(1)
                    with contextlib.suppress(OSError):
                        conn.sendall(b'{"ok": false, "error": "too many clients at once; try again"}\n')
                continue
            threading.Thread(target=self._client, args=(conn,), name="control-client", daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        try:
            self._talk(conn)
        finally:
            self._clients.release()

    def _talk(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(CLIENT_SECONDS)
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

    def answer(self, line: bytes) -> dict[str, Any]:
        """The reply to one request line; a bad request is an error reply, never an exception."""
        if len(line) > MAX_LINE:
            return {"ok": False, "error": f"request longer than {MAX_LINE} bytes"}
        try:
            request = parse_request(line)
        except BadRequestError as exc:
            return {"ok": False, "error": str(exc)}
        action = request.get("action")
        if action not in REQUESTS:
            shown = str(action)[:40] if isinstance(action, str) else type(action).__name__
            return {"ok": False, "error": f"unknown action {shown!r} (known: {', '.join(REQUESTS)})"}
        try:
            reply = self.handler(typing.cast(Request, action), request)
        except MedianscanError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:
            log.exception("control socket handler failed on %r", action)
            return {"ok": False, "error": f"internal error: {exc}"}
        return {"ok": True, **reply}
