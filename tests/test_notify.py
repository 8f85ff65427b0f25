"""sd_notify against real AF_UNIX datagram sockets bound here (a path and an abstract name)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from medianscan.service.notify import Notifier, child_environment


@pytest.fixture
def path_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    address = str(tmp_path / "notify")
    sock.bind(address)
    sock.settimeout(2)
    yield sock, address
    sock.close()


@pytest.fixture
def abstract_socket() -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"medianscan-test-{uuid.uuid4().hex}"
    sock.bind(b"\0" + name.encode())
    sock.settimeout(2)
    yield sock, "@" + name
    sock.close()


def received(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


@pytest.mark.parametrize("kind", ["path_socket", "abstract_socket"])
def test_messages_arrive(kind: str, request: pytest.FixtureRequest) -> None:
    sock, address = request.getfixturevalue(kind)
    notifier = Notifier({"NOTIFY_SOCKET": address})
    assert notifier.enabled
    assert notifier.ready("camera Canon EOS 30D\nready")
    assert received(sock) == ["READY=1", "STATUS=camera Canon EOS 30D ready"]
    assert notifier.status("roll 3, frame 12,  queue 1")
    assert received(sock) == ["STATUS=roll 3, frame 12, queue 1"]
    assert notifier.watchdog()
    assert received(sock) == ["WATCHDOG=1"]
    assert notifier.reloading()
    reload_fields = received(sock)
    assert reload_fields[0] == "RELOADING=1"
    assert reload_fields[1].startswith("MONOTONIC_USEC=")
    assert int(reload_fields[1].split("=")[1]) > 0
    assert notifier.extend_timeout(90)
    assert received(sock) == ["EXTEND_TIMEOUT_USEC=90000000"]
    assert notifier.stopping("finishing the burst")
    assert received(sock) == ["STOPPING=1", "STATUS=finishing the burst"]
    notifier.close()


def test_no_op_outside_systemd() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert not notifier.ready()
    assert not notifier.watchdog()
    assert notifier.watchdog_interval() is None


def test_a_vanished_socket_never_raises(
    tmp_path: Path, path_socket: tuple[socket.socket, str], caplog: pytest.LogCaptureFixture
) -> None:
    sock, address = path_socket
    notifier = Notifier({"NOTIFY_SOCKET": address})
    sock.close()
    Path(address).unlink()
    assert not notifier.watchdog()
    assert not notifier.watchdog()
    warnings = [r for r in caplog.records if "cannot notify systemd" in r.getMessage()]
    assert len(warnings) == 1  # said once, not at every ping


def test_relative_notify_socket_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": "notify"})
    assert not notifier.enabled
    assert "neither a path nor an abstract socket" in caplog.text


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "20000000"}, 20.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid())}, 20.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert Notifier(env).watchdog_interval() == expected


def test_child_environment_drops_notification_variables() -> None:
    systemd = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "1", "WATCHDOG_PID": "2"}
    env = child_environment({**systemd, "HOME": "/h"})
    assert env == {"HOME": "/h"}
