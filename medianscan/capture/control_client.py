"""The client side of the control socket: where a running daemon listens, and one request to it."""

from __future__ import annotations

import grp
import json
import logging
import socket
from pathlib import Path
from typing import Any

from medianscan.capture.control_socket import private_temp_folder, user_runtime_folder
from medianscan.capture.events import DEFAULT_WAIT, SOCKET_NAME, WAIT
from medianscan.config.schema import Config
from medianscan.errors import MedianscanError
from medianscan.vocabulary import Request

log = logging.getLogger(__name__)


def client_socket_paths(cfg: Config) -> list[Path]:
    """Where a client looks, in order: the configured path, else this user's service or foreground daemon (or
    watcher), then the system service, then one started where there was no runtime folder."""
    if cfg.triggers.socket is not None:
        return [cfg.triggers.socket]
    folders = [user_runtime_folder(), Path("/run/medianscan"), private_temp_folder()]
    return [folder / SOCKET_NAME for folder in dict.fromkeys(folders)]


def capture_daemon(cfg: Config) -> Path | None:
    """The socket of a capture daemon answering on it (it holds the camera and the rig), or None (none runs, a
    stale socket, or a hot folder's watcher, which holds no camera)."""
    for path in client_socket_paths(cfg):
        if not path.exists():
            continue
        try:
            status = request(path, "status", timeout=2.0).get("status")
        except MedianscanError:
            continue  # a stale socket: nobody answers through it
        if isinstance(status, dict) and status.get("mode") != "watch":
            return path
    return None


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

KEYBOARD: dict[str, Request] = {
    "": "capture",
    "c": "capture",
    "r": "retake",
    "n": "new-roll",
    "p": "pause",
    "u": "resume",
    "s": "status",
}
