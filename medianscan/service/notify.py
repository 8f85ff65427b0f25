"""sd_notify without a dependency: one datagram per message to $NOTIFY_SOCKET; silent when not under systemd.

systemd's Type=notify waits for READY=1 (sent once camera and triggers are up), shows STATUS= in
`systemctl status`, and restarts the service when WATCHDOG=1 pings stop for WatchdogSec.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Talks to the service manager named by $NOTIFY_SOCKET (a path, or "@name" for an abstract socket).

    Every method is a no-op outside systemd and none raises: a lost notification must never stop a scan.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._env = dict(env)
        raw = env.get("NOTIFY_SOCKET", "")
        self._address: str | bytes | None = None
        if raw.startswith("@"):
            self._address = b"\0" + raw[1:].encode()  # Linux abstract namespace
        elif raw.startswith("/"):
            self._address = raw
        elif raw:
            log.warning("ignoring NOTIFY_SOCKET=%r: neither a path nor an abstract socket name", raw)
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._failed = False

    @property
    def enabled(self) -> bool:
        """True when running under a service manager that listens for notifications."""
        return self._address is not None

    def send(self, *fields: str) -> bool:
        """Send `KEY=value` lines as one datagram; True if it was delivered to the socket."""
        if self._address is None:
            return False
        message = "\n".join(fields).encode()
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                # Never block: a manager that stops reading must not freeze the daemon's loop; the next
                # status or watchdog ping says the same again anyway.
                self._sock.sendto(message, socket.MSG_DONTWAIT, self._address)
            except OSError as exc:
                if not self._failed:  # say it once, not at every watchdog ping
                    log.warning("cannot notify systemd at %r: %s", self._address, exc)
                    self._failed = True
                return False
        self._failed = False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Startup (or a reload) is complete: camera and triggers are up."""
        return self.send("READY=1", *([self._status_field(status)] if status else []))

    def status(self, text: str) -> bool:
        """A one-line state for `systemctl status`."""
        return self.send(self._status_field(text))

    def watchdog(self) -> bool:
        """I am alive; call at least every watchdog_interval() / 2 seconds."""
        return self.send("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown has begun (the running burst is being finished)."""
        return self.send("STOPPING=1", *([self._status_field(status)] if status else []))

    def reloading(self) -> bool:
        """A configuration reload has begun; send ready() when it is done."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more time to start or stop (e.g. a long burst still running at SIGTERM)."""
        return self.send(f"EXTEND_TIMEOUT_USEC={max(1, round(seconds * 1e6))}")

    def watchdog_interval(self) -> float | None:
        """WatchdogSec in seconds if systemd expects pings from this process, else None."""
        usec = self._env.get("WATCHDOG_USEC", "")
        pid = self._env.get("WATCHDOG_PID", "")
        if not usec:
            return None
        if pid and pid != str(os.getpid()):
            return None  # meant for another process (e.g. our parent)
        try:
            value = int(usec)
        except ValueError:
            log.warning("ignoring WATCHDOG_USEC=%r: not a number", usec)
            return None
        return value / 1e6 if value > 0 else None

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    @staticmethod
    def _status_field(text: str) -> str:
        return "STATUS=" + " ".join(text.split())  # one line: a newline would start a new field


def child_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for processes we start: without systemd's notification variables, so a hook or
    worker can never speak for the service."""
    env = dict(os.environ if environ is None else environ)
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(name, None)
    return env
