"""Triggers: footswitch event handling on evdev.InputEvent sequences, the control socket on a real AF_UNIX
socket, the keyboard on a real pipe, and the press-during-burst policy."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from evdev import InputEvent, ecodes

from medianscan.capture.control_client import client_socket_paths, request
from medianscan.capture.control_socket import ControlServer, hub_handler, server_socket_path
from medianscan.capture.events import Answer, PressPolicy, TriggerHub
from medianscan.capture.footswitch import Footswitch, KeyMapper, NodeInfo, matching_nodes
from medianscan.capture.keyboard import KEYBOARD_HELP, KeyboardTrigger
from medianscan.config.schema import Config, FootswitchConfig, TriggerConfig
from medianscan.errors import MedianscanError
from tests.waiting import wait_until

KEY_B, KEY_A, KEY_C = ecodes.KEY_B, ecodes.KEY_A, ecodes.KEY_C


def key(code: int, value: int, at: float) -> InputEvent:
    sec = int(at)
    return InputEvent(sec, round((at - sec) * 1e6), ecodes.EV_KEY, code, value)


def syn(at: float) -> InputEvent:
    sec = int(at)
    return InputEvent(sec, round((at - sec) * 1e6), ecodes.EV_SYN, ecodes.SYN_REPORT, 0)


def feed_all(mapper: KeyMapper, events: list[InputEvent]) -> list[str]:
    return [a for a in (mapper.feed(e) for e in events) if a is not None]


# --------------------------------------------------------------------------------------------------------------
# KeyMapper: the pure core


def test_key_down_only_autorepeat_and_release_ignored() -> None:
    mapper = KeyMapper({"KEY_B": "capture"}, debounce_ms=250)
    events = [
        ecodes_msc(100.0),
        key(KEY_B, 1, 100.0),
        syn(100.0),
        key(KEY_B, 2, 100.5),  # held: autorepeat
        key(KEY_B, 2, 100.533),
        key(KEY_B, 0, 101.0),
        syn(101.0),
    ]
    assert feed_all(mapper, events) == ["capture"]


def ecodes_msc(at: float) -> InputEvent:
    """The MSC_SCAN event HID keyboards send before each key event."""
    sec = int(at)
    return InputEvent(sec, round((at - sec) * 1e6), ecodes.EV_MSC, ecodes.MSC_SCAN, 0x70005)


def test_bounce_within_debounce_is_one_press() -> None:
    mapper = KeyMapper({"KEY_B": "capture"}, debounce_ms=250)
    events = [
        key(KEY_B, 1, 10.000),
        key(KEY_B, 0, 10.004),  # contact bounce
        key(KEY_B, 1, 10.009),
        key(KEY_B, 0, 10.100),
        key(KEY_B, 1, 10.249),  # still inside 250 ms of the accepted press
        key(KEY_B, 0, 10.300),
        key(KEY_B, 1, 10.300),  # a real second press
    ]
    assert feed_all(mapper, events) == ["capture", "capture"]


def test_debounce_is_per_key_and_unmapped_keys_are_ignored() -> None:
    mapper = KeyMapper({"KEY_B": "capture", "KEY_A": "retake", "BTN_LEFT": "pause"}, debounce_ms=250)
    events = [
        key(KEY_B, 1, 5.0),
        key(KEY_A, 1, 5.05),  # another pedal, right after: its own press
        key(KEY_C, 1, 5.1),  # not mapped
        key(ecodes.BTN_LEFT, 1, 5.2),
        key(KEY_B, 1, 5.1),  # bounce of KEY_B
    ]
    assert feed_all(mapper, events) == ["capture", "retake", "pause"]


def test_zero_debounce_accepts_every_press() -> None:
    mapper = KeyMapper({"KEY_B": "capture"}, debounce_ms=0)
    assert feed_all(mapper, [key(KEY_B, 1, 1.0), key(KEY_B, 1, 1.001)]) == ["capture", "capture"]


def test_unknown_key_name_is_a_clear_error() -> None:
    with pytest.raises(MedianscanError, match="'KEY_PEDAL' is not an evdev key name"):
        KeyMapper({"KEY_PEDAL": "capture"}, 250)


# --------------------------------------------------------------------------------------------------------------
# Finding the device's nodes

PEDAL = [
    NodeInfo("/dev/input/event5", 0x0C45, 0x7403, "usb-0000:00:14.0-2/input0", "PCsensor FootSwitch Keyboard"),
    NodeInfo("/dev/input/event6", 0x0C45, 0x7403, "usb-0000:00:14.0-2/input1", "PCsensor FootSwitch Mouse"),
    NodeInfo("/dev/input/event9", 0x0C45, 0x7403, "usb-0000:00:14.0-4/input0", "PCsensor FootSwitch Keyboard"),
    NodeInfo("/dev/input/event2", 0x046D, 0xC52B, "usb-0000:00:14.0-1/input2", "Logitech Keyboard"),
]


def test_nodes_by_vendor_product() -> None:
    assert matching_nodes("0c45:7403", PEDAL) == ["/dev/input/event5", "/dev/input/event6", "/dev/input/event9"]
    assert matching_nodes("0C45:7404", PEDAL) == []


def test_nodes_by_id_path_include_the_same_devices_other_interfaces() -> None:
    links = {"/dev/input/by-id/usb-PCsensor_FootSwitch-event-kbd": "/dev/input/event5"}
    spec = "/dev/input/by-id/usb-PCsensor_FootSwitch-event-kbd"
    # the pedal on port 4 is the same model but another device: not ours
    assert matching_nodes(spec, PEDAL, resolve=links.__getitem__) == ["/dev/input/event5", "/dev/input/event6"]
    assert matching_nodes("/dev/input/by-id/absent", PEDAL, resolve=lambda p: p) == []


def test_by_id_symlink_is_resolved(tmp_path: Path) -> None:
    real = tmp_path / "event6"
    real.touch()
    link = tmp_path / "by-id" / "usb-pedal-event-kbd"
    link.parent.mkdir()
    link.symlink_to(real)
    nodes = [NodeInfo(str(real), 1, 2, "usb-x/input0", "pedal")]
    assert matching_nodes(str(link), nodes) == [str(real)]


# --------------------------------------------------------------------------------------------------------------
# The footswitch thread, on fake devices: this machine has no /dev/uinput to create real input devices,
# so FakeDevice stands in for evdev.InputDevice (a pipe for select(), events handed over by the test).


class FakeDevice:
    def __init__(self, path: str) -> None:
        self.path = path
        self._r, self._w = os.pipe()
        self.events: list[InputEvent] = []
        self.grabbed = False
        self.closed = False
        self.gone = False
        self.lock = threading.Lock()

    def fileno(self) -> int:
        return self._r

    def send(self, *events: InputEvent) -> None:
        with self.lock:
            self.events.extend(events)
        os.write(self._w, b"x")

    def unplug(self) -> None:
        self.gone = True
        os.write(self._w, b"x")

    def read(self) -> list[InputEvent]:
        os.read(self._r, 4096)
        if self.gone:
            raise OSError(errno.ENODEV, "No such device")
        with self.lock:
            out, self.events = self.events, []
        return out

    def grab(self) -> None:
        self.grabbed = True

    def ungrab(self) -> None:
        if self.gone:
            raise OSError(errno.ENODEV, "No such device")
        self.grabbed = False

    def close(self) -> None:
        self.closed = True
        os.close(self._r)
        os.close(self._w)


class FakeBus:
    """What is plugged in, and the devices opened so far."""

    def __init__(self) -> None:
        self.plugged: list[NodeInfo] = []
        self.opened: list[FakeDevice] = []
        self.scans = 0

    def scan(self) -> list[NodeInfo]:
        self.scans += 1
        return list(self.plugged)

    def rescanned(self, times: int) -> None:
        """Until the pedal has looked at the bus `times` more times."""
        wanted = self.scans + times
        wait_until(lambda: self.scans >= wanted, 5, f"{times} rescans of the bus")

    def open(self, path: str) -> FakeDevice:
        device = FakeDevice(path)
        self.opened.append(device)
        return device

    def device(self, path: str) -> FakeDevice:
        return [d for d in self.opened if d.path == path][-1]


def test_footswitch_listens_on_all_nodes_and_survives_replug() -> None:
    bus = FakeBus()
    hub = TriggerHub()
    cfg = FootswitchConfig(device="0c45:7403", keys={"KEY_B": "capture", "KEY_A": "retake"}, debounce_ms=250)
    pedal = Footswitch(cfg, hub.emit, scan=bus.scan, opener=bus.open, rescan_seconds=0.05)
    pedal.start()
    try:
        bus.rescanned(2)
        assert not pedal.connected  # started before the pedal is plugged in: waits for it
        bus.plugged = PEDAL[:2]
        wait_until(lambda: pedal.connected and len(pedal.nodes()) == 2, 5, "the pedal opened both its nodes")
        kbd, mouse = bus.device("/dev/input/event5"), bus.device("/dev/input/event6")
        assert kbd.grabbed and mouse.grabbed

        kbd.send(key(KEY_B, 1, 1.0), key(KEY_B, 2, 1.5), key(KEY_B, 0, 2.0))
        assert action_of(hub, 5) == "capture"
        mouse.send(key(KEY_A, 1, 3.0))  # the key arrives on the other node
        assert action_of(hub, 5) == "retake"

        bus.plugged = []
        kbd.unplug()
        mouse.unplug()
        wait_until(lambda: not pedal.connected, 5, "the unplugged pedal was let go")
        assert kbd.closed and mouse.closed

        bus.plugged = PEDAL[:2]
        wait_until(lambda: pedal.connected and len(bus.opened) == 4, 5, "the pedal plugged in again was opened")
        bus.device("/dev/input/event5").send(key(KEY_B, 1, 10.0))
        assert action_of(hub, 5) == "capture"
        assert action_of(hub, 0.1) is None
        assert pedal.describe() == {
            "device": "0c45:7403",
            "connected": True,
            "nodes": ["/dev/input/event5", "/dev/input/event6"],
        }
    finally:
        pedal.stop()
    assert all(d.closed for d in bus.opened)
    assert not any(d.grabbed for d in bus.opened if not d.gone)  # the kernel drops the grab of an unplugged one


def test_footswitch_picks_up_an_interface_that_appears_later() -> None:
    bus = FakeBus()
    bus.plugged = PEDAL[:1]
    hub = TriggerHub()
    pedal = Footswitch(
        FootswitchConfig(device="0c45:7403"), hub.emit, scan=bus.scan, opener=bus.open, rescan_seconds=0.02
    )
    pedal.start()
    try:
        wait_until(lambda: pedal.nodes() == ["/dev/input/event5"], 5, "the first interface opened")
        bus.plugged = PEDAL[:2]  # the second interface's node is created a moment later
        wait_until(lambda: pedal.nodes() == ["/dev/input/event5", "/dev/input/event6"], 5, "the second opened")
        bus.rescanned(15)  # later rescans (the 0.3 s this waited before) open nothing twice
        assert [d.path for d in bus.opened] == ["/dev/input/event5", "/dev/input/event6"]
        bus.device("/dev/input/event6").send(key(KEY_B, 1, 1.0))
        assert action_of(hub, 5) == "capture"
    finally:
        pedal.stop()


def test_footswitch_without_device_does_nothing() -> None:
    bus = FakeBus()
    bus.plugged = PEDAL
    pedal = Footswitch(FootswitchConfig(device=None), TriggerHub().emit, scan=bus.scan, opener=bus.open)
    pedal.start()
    pedal.stop()
    assert bus.opened == []


# --------------------------------------------------------------------------------------------------------------
# Hub and policy


def test_hub_collects_from_threads_and_times_out() -> None:
    hub = TriggerHub()
    threads = [threading.Thread(target=hub.emit, args=("capture", f"t{i}")) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    hub.emit("bogus", "test")  # type: ignore[arg-type]
    events = [hub.get_event(1) for _ in range(8)]
    assert {e.source for e in events if e} == {f"t{i}" for i in range(8)}
    assert all(e is not None and e.action == "capture" for e in events)
    started = time.monotonic()
    assert action_of(hub, 0.05) is None
    assert time.monotonic() - started >= 0.04


def test_hub_stops_every_source_even_if_one_fails() -> None:
    stopped: list[str] = []

    class Source:
        def __init__(self, name: str, fail: bool = False) -> None:
            self.name, self.fail = name, fail

        def start(self) -> None:
            pass

        def stop(self) -> None:
            stopped.append(self.name)
            if self.fail:
                raise RuntimeError("boom")

    hub = TriggerHub()
    hub.add(Source("a"))
    hub.add(Source("b", fail=True))
    hub.start()
    hub.stop()
    assert stopped == ["b", "a"]


def test_press_policy_queue_keeps_one() -> None:
    policy = PressPolicy("queue")
    assert policy.offer("capture", busy=False)
    assert policy.take() is None  # a press when idle runs at once, nothing pending
    assert policy.offer("capture", busy=True)
    assert not policy.offer("capture", busy=True)
    assert not policy.offer("retake", busy=True)
    assert policy.offer("pause", busy=True)  # not a camera action: always accepted
    assert policy.take() == "capture"
    assert policy.take() is None
    assert policy.offer("retake", busy=True)
    policy.clear()
    assert policy.take() is None


def test_press_policy_ignore() -> None:
    policy = PressPolicy("ignore")
    assert not policy.offer("capture", busy=True)
    assert policy.offer("new-roll", busy=True)
    assert policy.offer("capture", busy=False)
    assert policy.take() is None


# --------------------------------------------------------------------------------------------------------------
# Control socket (a real AF_UNIX socket)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[ControlServer, TriggerHub]]:
    hub = TriggerHub()
    srv = ControlServer(tmp_path / "run" / "control.sock", hub_handler(hub, lambda: {"roll": 3, "queue": 1}))
    srv.start()
    yield srv, hub
    srv.stop()


def action_of(hub: TriggerHub, timeout: float) -> str | None:
    event = hub.get_event(timeout)
    return None if event is None else event.action


def answer_events(hub: TriggerHub, answers: Iterator[Answer], seen: list[str], count: int) -> None:
    """Stands in for the daemon's camera thread: takes `count` events off the hub and answers each."""
    for _ in range(count):
        event = hub.get_event(10)
        assert event is not None
        seen.append(event.action)
        event.answer(next(answers))


def test_socket_actions_wait_for_the_daemons_answer(server: tuple[ControlServer, TriggerHub]) -> None:
    srv, hub = server
    seen: list[str] = []
    answers = iter([Answer(True, "capture", "frame-001: burst done", stack="frame-001"), Answer(True, "new-roll", "x")])
    camera_thread = threading.Thread(target=answer_events, args=(hub, answers, seen, 2), daemon=True)
    camera_thread.start()
    reply = request(srv.path, "capture")
    assert reply == {
        "ok": True,
        "action": "capture",
        "outcome": "done",
        "text": "frame-001: burst done",
        "stack": "frame-001",
    }
    assert request(srv.path, "new-roll")["ok"]
    camera_thread.join(5)
    assert seen == ["capture", "new-roll"]
    assert request(srv.path, "status") == {"ok": True, "status": {"roll": 3, "queue": 1}}
    assert action_of(hub, 0.05) is None  # status is answered, not queued
    assert stat.S_IMODE(srv.path.stat().st_mode) == 0o660
    # nobody answers: the client is told, not left hanging or told "done"
    reply = request(srv.path, "pause", timeout=0.3)
    assert reply["ok"] is False and "pause: no answer within 0.3 s; cancelled: not done" in reply["error"]


def test_socket_bad_requests_get_error_replies(server: tuple[ControlServer, TriggerHub]) -> None:
    srv, _ = server
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(srv.path))
        reader = sock.makefile("rb")
        replies = []
        for line in [b"capture\n", b"[1]\n", b'{"action": "explode"}\n', b"\n", b'{"action": "pause", "wait": 0.2}\n']:
            sock.sendall(line)
            if line.strip():
                replies.append(json.loads(reader.readline()))
        reader.close()
    assert replies[0]["ok"] is False and "the request is not JSON" in replies[0]["error"]
    assert replies[1] == {"ok": False, "error": 'a request is a JSON object such as {"action": "capture"}'}
    assert replies[2]["ok"] is False and "unknown action 'explode'" in replies[2]["error"]
    # same connection, still served (nobody answers the pause here: the reply says so)
    assert replies[3] == {
        "ok": False,
        "error": "pause: no answer within 0.2 s; cancelled: not done",
    }


def test_handler_errors_become_replies(tmp_path: Path) -> None:
    def handler(action: str, request: dict[str, Any]) -> dict[str, Any]:
        if action == "retake":
            raise MedianscanError("nothing to retake yet")
        raise RuntimeError("bug")

    srv = ControlServer(tmp_path / "c.sock", handler)
    srv.start()
    try:
        assert request(srv.path, "retake") == {"ok": False, "error": "nothing to retake yet"}
        assert request(srv.path, "capture") == {"ok": False, "error": "internal error: bug"}
    finally:
        srv.stop()


def test_stale_socket_is_replaced_live_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # a daemon killed with -9 leaves this behind
    first = ControlServer(path, lambda a, r: {})
    first.start()
    try:
        second = ControlServer(path, lambda a, r: {})
        with pytest.raises(MedianscanError, match="another medianscan is already listening on"):
            second.start()
        assert request(path, "pause") == {"ok": True}
    finally:
        first.stop()
    assert not path.exists()


def test_not_a_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.sock"
    path.write_text("mine")
    with pytest.raises(MedianscanError, match="exists and is not a socket"):
        ControlServer(path, lambda a, r: {}).start()
    assert path.read_text() == "mine"


def test_client_errors_are_sentences(tmp_path: Path) -> None:
    with pytest.raises(MedianscanError, match="no medianscan daemon is listening on"):
        request(tmp_path / "absent.sock", "capture")
    with pytest.raises(MedianscanError, match="too long for a Unix socket"):
        ControlServer(tmp_path / ("x" * 120), lambda a, r: {}).start()


def test_socket_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = Config(library=tmp_path / "lib")
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "xdg"))
    assert server_socket_path(cfg) == tmp_path / "xdg" / "medianscan" / "control.sock"
    assert client_socket_paths(cfg)[0] == server_socket_path(cfg)
    assert Path("/run/medianscan/control.sock") in client_socket_paths(cfg)
    monkeypatch.setenv("RUNTIME_DIRECTORY", "/run/medianscan")  # as systemd sets it for the system service
    assert server_socket_path(cfg) == Path("/run/medianscan/control.sock")
    monkeypatch.delenv("RUNTIME_DIRECTORY")
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))  # no runtime folder: a private one in the temp folder
    tempfile.tempdir = None  # tempfile caches the folder it found first
    try:
        private = tmp_path / "tmp" / f"medianscan-{os.geteuid()}"
        assert server_socket_path(cfg) == private / "control.sock"
        assert client_socket_paths(cfg)[0] == server_socket_path(cfg)
        server = ControlServer(server_socket_path(cfg), lambda a, r: {"ok": True})
        server.start()
        server.stop()
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        private.chmod(0o755)  # made by someone else, or opened up: refused, never used
        with pytest.raises(MedianscanError, match="is not a private folder of yours"):
            ControlServer(server_socket_path(cfg), lambda a, r: {"ok": True}).start()
    finally:
        tempfile.tempdir = None
    fixed = Config(triggers=TriggerConfig(socket=tmp_path / "s.sock"))
    assert server_socket_path(fixed) == tmp_path / "s.sock"
    assert client_socket_paths(fixed) == [tmp_path / "s.sock"]


# --------------------------------------------------------------------------------------------------------------
# Keyboard (a real pipe standing in for the terminal)


def test_keyboard_lines_map_to_actions(tmp_path: Path) -> None:
    import io

    hub = TriggerHub()
    read_fd, write_fd = os.pipe()
    out = io.StringIO()
    with os.fdopen(read_fd, "r") as stream:
        keyboard = KeyboardTrigger(hub.emit, stream=stream, out=out)
        keyboard.start()
        os.write(write_fd, b"\nr\nx\n N \ns\n")
        got = [action_of(hub, 5) for _ in range(4)]
        os.write(write_fd, b"p")  # no Enter yet: nothing
        assert action_of(hub, 0.1) is None
        os.write(write_fd, b"\n")
        got.append(action_of(hub, 5))
        keyboard.stop()
        os.close(write_fd)
    assert got == ["capture", "retake", "new-roll", "status", "pause"]
    assert out.getvalue().count(KEYBOARD_HELP) == 2  # at start, and after the unknown "x"


# --------------------------------------------------------------------------------------------------------------
# The client commands (`medianscan trigger | ... | status`) against a real ControlServer

DAEMON_STATUS = {
    "camera": {"model": "Nikon DSC D750", "port": "usb:001,001", "state": "ready", "error": None},
    "settings": {"shutterspeed": "0.0100s", "f-number": "f/8"},
    "library": "/scans",
    "roll": "2026-11-23-roll001",
    "negative": "frame-002",
    "frames_per_burst": 9,
    "paused": False,
    "busy": True,
    "queue": {"waiting": 1, "blending": 1, "capacity": 4, "full": False},
    "disk_free_bytes": 123_400_000_000,
    "message": None,
    "uptime": 12,
    "recent": [
        {
            "stack": "/scans/2026-11-23-roll001/frame-002",
            "state": "blended",
            "frames": 9,
            "capture_seconds": 4.12,
            "blend_seconds": 2.3,
            "noise_ratio": 0.345,
            "error": None,
        },
        {"stack": "/scans/2026-11-23-roll001/frame-001", "state": "failed", "frames": 9, "error": "frame 3 shifted"},
    ],
}


def test_control_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from medianscan.cli import main

    hub = TriggerHub()
    srv = ControlServer(tmp_path / "c.sock", hub_handler(hub, lambda: DAEMON_STATUS))
    srv.start()
    answers = iter(
        [
            Answer(
                True, "capture", "frame-003: burst done, 9 frames in 4.1 s: advance the negative", stack="frame-003"
            ),
            Answer(True, "retake", "frame-003 set aside in roll/discarded/ to shoot it again", stack="frame-003"),
            Answer(True, "new-roll", "new roll 2026-11-23-roll002", roll="2026-11-23-roll002"),
            Answer(False, "capture", "capture ignored: the daemon is paused (send resume first)", "ignored"),
        ]
    )
    seen: list[str] = []
    camera_thread = threading.Thread(target=answer_events, args=(hub, answers, seen, 4), daemon=True)
    camera_thread.start()
    try:
        sock = ["--socket", str(srv.path)]
        for command in ("capture", "retake", "new-roll"):
            assert main([command, *sock]) == 0
        assert capsys.readouterr().out == (  # the daemon's sentences, no prefix doubled
            "frame-003: burst done, 9 frames in 4.1 s: advance the negative\n"
            "frame-003 set aside in roll/discarded/ to shoot it again\n"
            "new roll 2026-11-23-roll002\n"
        )
        assert main(["trigger", *sock]) == 1  # the daemon's answer, not "sent"; `trigger` still works
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err == "medianscan: capture ignored: the daemon is paused (send resume first)\n"
        camera_thread.join(5)
        assert seen == ["capture", "retake", "new-roll", "capture"]
        assert main(["status", *sock]) == 0
        out = capsys.readouterr().out
        assert main(["status", "--json", *sock]) == 0
        assert json.loads(capsys.readouterr().out) == DAEMON_STATUS
    finally:
        srv.stop()
    lines = out.splitlines()
    assert lines[0] == "camera     Nikon DSC D750 (usb:001,001): ready"
    assert "settings   shutterspeed=0.0100s, f-number=f/8" in lines
    assert "roll       2026-11-23-roll001" in lines  # an older daemon says nothing of the flat: neither do we
    assert "negatives  last frame-002 (9 raws per burst)" in lines
    assert "state      capturing" in lines
    assert "queue      1 waiting, 1 blending (room for 4)" in lines
    assert "disk free  123.4 GB" in lines
    assert "uptime     12" in lines  # a key this client does not know is still shown
    assert "  /scans/2026-11-23-roll001/frame-002  blended  9 frames  capture 4.1 s  blend 2.3 s  noise x0.34" in lines
    assert "  /scans/2026-11-23-roll001/frame-001  failed  9 frames  error: frame 3 shifted" in lines


def test_control_command_refused_and_missing_daemon(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from medianscan.cli import main

    def handler(action: str, request: dict[str, Any]) -> dict[str, Any]:
        raise MedianscanError("cannot capture: camera not connected")

    srv = ControlServer(tmp_path / "c.sock", handler)
    srv.start()
    try:
        assert main(["trigger", "--socket", str(srv.path)]) == 1
        assert capsys.readouterr().err == "medianscan: cannot capture: camera not connected\n"
    finally:
        srv.stop()
    conf = tmp_path / "m.yaml"
    conf.write_text(f"triggers:\n  socket: {tmp_path / 'absent.sock'}\n")
    assert main(["pause", "--config", str(conf)]) == 2
    assert f"no running medianscan found (looked for {tmp_path / 'absent.sock'})" in capsys.readouterr().err
    # without --config it looks in the machine's shared runtime folders, where another daemon may run: a stand-in
    monkeypatch.setattr("medianscan.cli.control.client_socket_paths", lambda cfg: [tmp_path / "nowhere.sock"])
    assert main(["pause"]) == 2
    err = capsys.readouterr().err
    assert "point at it with --config FILE" in err and "--socket PATH" in err, err


# --------------------------------------------------------------------------------------------------------------
# Control socket safety


def test_the_socket_is_born_with_its_final_mode(tmp_path: Path) -> None:
    """The umask is set before bind: no instant where the socket has the process's default mode."""
    hub = TriggerHub()
    old = os.umask(0)  # the most permissive umask a caller could have
    try:
        srv = ControlServer(tmp_path / "run" / "c.sock", hub_handler(hub, dict))
        srv.start()
    finally:
        os.umask(old)
    try:
        assert stat.S_IMODE(srv.path.stat().st_mode) == 0o660
        probe = tmp_path / "after"
        probe.touch()
        assert stat.S_IMODE(probe.stat().st_mode) == 0o666 & ~old  # the process umask is back as it was
    finally:
        srv.stop()


def test_a_world_writable_folder_without_sticky_bit_is_refused(tmp_path: Path) -> None:
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    open_folder.chmod(0o777)
    with pytest.raises(MedianscanError, match="writable by everyone and not sticky"):
        ControlServer(open_folder / "c.sock", hub_handler(TriggerHub(), dict)).start()
    assert not (open_folder / "c.sock").exists()
    open_folder.chmod(0o1777)  # like /tmp: others cannot remove or replace our socket
    srv = ControlServer(open_folder / "c.sock", hub_handler(TriggerHub(), dict))
    srv.start()
    srv.stop()


def test_a_socket_of_another_user_is_not_taken_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FAKE: a second user cannot be had on every machine, so our own uid is made to look like another one's
    (os.geteuid); the socket file itself is real, left by a daemon that died."""
    path = tmp_path / "c.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as left:
        left.bind(str(path))
    monkeypatch.setattr(os, "geteuid", lambda: path.stat().st_uid + 1)
    with pytest.raises(MedianscanError, match=r"belongs to another user \(uid \d+\)"):
        ControlServer(path, hub_handler(TriggerHub(), dict)).start()
    assert path.exists()  # left alone


def test_the_permission_hint_names_the_sockets_real_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FAKE: root is never refused a socket, so connect() is made to answer EACCES as it would for a user
    outside the group; the group name comes from the real socket file."""
    import grp

    srv = ControlServer(tmp_path / "c.sock", hub_handler(TriggerHub(), dict))
    srv.start()
    try:
        with contextlib.suppress(PermissionError):  # as root: a group other than ours, as a service's would be
            os.chown(srv.path, -1, 65534)
        group = grp.getgrgid(srv.path.stat().st_gid).gr_name

        def refuse(self: socket.socket, address: object) -> None:
            raise PermissionError(errno.EACCES, "Permission denied")

        monkeypatch.setattr(socket.socket, "connect", refuse)
        hint = f"add yourself to its group {group} (`sudo usermod -aG {group} $USER`"
        with pytest.raises(MedianscanError, match=re.escape(hint)):
            request(srv.path, "status")
    finally:
        monkeypatch.undo()
        srv.stop()


@pytest.mark.slow
def test_a_control_command_loads_none_of_the_blend_machinery() -> None:
    """A desktop shortcut runs `medianscan trigger` per press: it must not pay for numba, rawpy and scipy
    (about 2 s) that only `run` and `blend` need, so the CLI imports only the subcommand asked for."""
    probe = (
        "import sys\n"
        "from medianscan.cli import build_parser\n"
        "build_parser('trigger').parse_args(['trigger'])\n"
        "print(sorted(m for m in ('numba', 'rawpy', 'scipy', 'medianscan.blend.pipeline') if m in sys.modules))\n"
        "build_parser('blend')\n"
        "print('medianscan.blend.pipeline' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "True"]
