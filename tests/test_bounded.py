"""The daemon holds under floods, bad text and odd requests (loopback only; every loop bounded in count and time).

Each class of fault that was seen, tested as a class: a connection flood against a daemon started with a low
`ulimit -n`; the console's and the control socket's inputs (sizes, nesting, numbers, encodings); text that would
spoil a roll's XMP; the headers that keep other sites out; a journal that a failing loop cannot fill.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from medianscan.capture.control_client import request
from medianscan.capture.events import Answer
from medianscan.console import bounded
from medianscan.library.manifest import State, read_manifest
from medianscan.library.roll_record import ROLL_RECORD
from medianscan.logs import SENTENCE_BURST, TEMPLATE_BURST, RepeatFilter
from tests.conftest import ROOT
from tests.daemon_thread import RunningDaemon, capture_config
from tests.test_console import Client
from tests.waiting import wait_until

MEDIANSCAN = Path(sys.executable).parent / "medianscan"


# --- every resource is bounded ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_connection_flood_leaves_the_daemon_answering_and_every_record_right(tmp_path: Path) -> None:
    """400 idle connections at once to the console of a daemon allowed 256 open files: status and capture answer
    within seconds, the daemon never holds more than the cap's worth of descriptors for them (those beyond it wait
    in the kernel's queue, not in the daemon), an idle one is closed after REQUEST_SECONDS, the journal stays
    small, and every stack shot during the flood is recorded blended."""
    sock = tmp_path / "control.sock"
    config = tmp_path / "medianscan.yaml"
    config.write_text(
        f"library: {tmp_path / 'library'}\nframes: 3\ncamera:\n  backend: simulated\n"
        "  simulated: {width: 256, height: 192}\nconsole:\n  listen: 127.0.0.1:0\n"
        f"triggers:\n  socket: {sock}\n"
    )
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:  # `ulimit -n 256`: soft and hard, so the daemon cannot raise it
        daemon = subprocess.Popen(
            ["sh", "-c", 'ulimit -n 256 && exec "$0" run --config "$1"', str(MEDIANSCAN), str(config)],
            stdout=out,
            stderr=out,
        )
    flood: list[socket.socket] = []
    try:

        def listening() -> bool:
            assert daemon.poll() is None, log.read_text()
            return sock.exists()

        wait_until(listening, 30, lambda: f"the daemon listened; its log:\n{log.read_text()}", every=0.1)

        def console_port() -> int | None:  # the console's address says port 0 until it listens
            url = request(sock, "status")["status"]["console"]
            return urlsplit(url).port if url else None

        port = wait_until(console_port, 30, log.read_text, every=0.1)
        first = socket.create_connection(("127.0.0.1", port), timeout=2)  # idle from the start
        held: list[int] = []
        sampling = threading.Event()

        def sample() -> None:  # the daemon's descriptors for console connections, every 5 ms, from the first knock on
            while not sampling.is_set():
                with contextlib.suppress(OSError):
                    held.append(_console_connections_held(daemon.pid, port))
                time.sleep(0.005)  # sampling: the behaviour is the most the daemon ever holds

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        while len(flood) < 400:  # all at once: those the server's queue cannot take yet keep knocking
            knock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            knock.setblocking(False)
            knock.connect_ex(("127.0.0.1", port))
            flood.append(knock)
        latencies = {}
        for action in ("status", "capture", "capture"):
            started = time.monotonic()
            reply = request(sock, action, timeout=30)
            latencies[action] = time.monotonic() - started
            assert reply["ok"], reply
        assert max(latencies.values()) < 5.0, latencies
        wait_until(lambda: not _still_open(first), bounded.REQUEST_SECONDS + 2, "the idle connection closed", every=0.2)
        sampling.set()
        sampler.join()
        # the flood seen, up to the cap and at most one accept batch on its way out the door
        assert bounded.MAX_CONNECTIONS // 2 <= max(held) <= bounded.MAX_CONNECTIONS + bounded.ACCEPT_BATCH, max(held)
        rss = int(
            next(
                line.split()[1]
                for line in Path(f"/proc/{daemon.pid}/status").read_text().splitlines()
                if line.startswith("VmRSS")
            )
        )
        assert rss < 600_000, f"{rss} kB"
        stacks = sorted((tmp_path / "library").glob("*/frame-*"))
        assert len(stacks) == 2
        wait_until(
            lambda: all(read_manifest(s).state.value == "blended" for s in stacks),
            60,
            lambda: str([read_manifest(s).state for s in stacks]),
            every=0.2,
        )
    finally:
        for s in flood:
            s.close()
        with contextlib.suppress(NameError):
            first.close()
        daemon.terminate()
        daemon.wait(60)
    assert log.stat().st_size < 64 * 1024, log.stat().st_size  # not the 220 MB a tight accept loop wrote


def _console_connections_held(pid: int, port: int) -> int:
    """How many descriptors the daemon holds for connections to its console's port: only those, since a capture's
    raws, journal and the blend worker's pipes come and go during the flood and are not the flood's to count."""
    connected = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, state, inode = int(fields[1].rsplit(":", 1)[1], 16), fields[3], fields[9]
        if local_port == port and state != "0A":  # 0A: the listening socket itself
            connected.add(f"socket:[{inode}]")
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # closed between the listing and the reading
            held += str(fd.readlink()) in connected
    return held


def _still_open(conn: socket.socket) -> bool:
    conn.setblocking(False)
    try:
        return conn.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def test_a_repeated_record_is_written_once_a_window_then_summarised() -> None:
    now = [0.0]
    repeat = RepeatFilter(clock=lambda: now[0])

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, message, None, None)

    assert all(repeat.filter(record("socket.accept() out of system resource")) for _ in range(SENTENCE_BURST))
    assert not any(repeat.filter(record("socket.accept() out of system resource")) for _ in range(41_203))
    assert repeat.filter(record("another failure"))  # another kind goes through
    now[0] = 35.0
    summary = record("socket.accept() out of system resource")
    assert repeat.filter(summary)
    assert summary.getMessage().endswith("(and 41,203 more like it held back in the 10 s from 35 s ago)")


@pytest.mark.slow
def test_each_sentence_goes_through_and_a_template_is_held_at_a_burst() -> None:
    """Stacks blended one after another log one template with other words: every one is written. A loop whose
    every line differs (a number in each) is held at TEMPLATE_BURST a window."""
    now = [0.0]
    repeat = RepeatFilter(clock=lambda: now[0])

    def record(template: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord("medianscan", logging.INFO, __file__, 1, template, args, None)

    assert all(repeat.filter(record("%s: blended", f"frame-{i:03}")) for i in range(40))
    assert all(repeat.filter(record("capture from %s", "socket")) for _ in range(3))  # three presses, three lines
    assert sum(repeat.filter(record("client %d gone", i)) for i in range(5000)) == TEMPLATE_BURST
    now[0] = 10.5
    summary = record("client %d gone", 5001)
    assert repeat.filter(summary)
    held = 5000 - TEMPLATE_BURST
    assert summary.getMessage() == f"client 5001 gone (and {held:,} more like it held back in the 10 s from 10 s ago)"


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[RunningDaemon, Client]]:
    with RunningDaemon(capture_config(tmp_path / "library")) as running:
        yield running, Client(running.url)


def post(client: Client, path: str, body: bytes, **headers: str) -> tuple[int, str]:
    origin = {"Origin": f"http://127.0.0.1:{client.port}", "Content-Type": "application/json"}
    status, _, reply = client.request("POST", path, {**origin, **headers}, body)
    return status, reply.decode(errors="replace")


def test_the_consoles_requests_are_bounded_and_bad_input_is_one_sentence(
    console: tuple[RunningDaemon, Client],
) -> None:
    running, client = console
    cases: list[tuple[bytes, int, str]] = [
        (b'{"film": {"notes": "' + b"x" * 100_000 + b'"}}', 413, "the console takes at most 65,536"),
        (b"[" * 5000 + b"]" * 5000, 400, "nested more than 16 levels deep"),
        (b'{"film": {"lab": "\xc3\x28"}}', 400, "not UTF-8 text"),
        (b'{"film": {"lab": "\\ud800"}}', 400, "lab is not valid text at character 1"),
        (b'{"film": {"film": "Fomapan\\uffff"}}', 400, "film holds a control character (U+FFFF)"),
        (b'{"film": {"notes": "' + b"y" * 3000 + b'"}}', 400, "notes is 3,000 characters long"),
        (b'{"film": ["not", "a", "record"]}', 400, "a film record is a JSON object"),
        (b'["not", "an", "object"]', 400, "a request is a JSON object"),
        (b'{"film": {"iso": 1e999}}', 400, "iso must be a whole number"),
    ]
    for body, status, words in cases:
        got, text = post(client, "/api/actions/new-roll", body)
        assert (got, words in text) == (status, True), (body[:40], got, text)
        assert "Traceback" not in text and "object has no attribute" not in text
    assert post(client, "/api/zoom", b'{"x": NaN, "y": 0.5}')[0] == 400
    assert not (running.daemon.library.root / "x").exists()
    assert running.daemon.library.current_roll() is None  # no roll was started by any of them


@pytest.mark.slow
def test_a_request_sent_slowly_or_never_is_closed(
    console: tuple[RunningDaemon, Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deadline a request has, shortened from 10 s to 1 s (read as each connection is made): the same timer
    closes both, the test waits a tenth as long."""
    monkeypatch.setattr(bounded, "REQUEST_SECONDS", 1.0)
    _, client = console
    slow = socket.create_connection((client.host, client.port), timeout=5)
    idle = socket.create_connection((client.host, client.port), timeout=5)
    slow.sendall(b"POST /api/actions/pause HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
    started = time.monotonic()
    for conn in (slow, idle):
        conn.settimeout(bounded.REQUEST_SECONDS + 5)
        assert conn.recv(1024) == b""  # closed by the console, not by us
        conn.close()
    assert time.monotonic() - started < bounded.REQUEST_SECONDS + 3


def _socket_reply(path: Path, line: bytes) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(30)
        conn.connect(str(path))
        conn.sendall(line + b"\n")
        reply: dict[str, Any] = json.loads(conn.makefile("rb").readline())
        return reply


def test_the_control_sockets_bad_requests_are_one_sentence_and_do_nothing(tmp_path: Path) -> None:
    cfg = capture_config(tmp_path / "library")
    with RunningDaemon(cfg) as running:
        path = cfg.triggers.socket
        assert path is not None
        cases = [
            (b'{"action": "capture", "wait": NaN}', "wait must be a number of seconds, more than 0"),
            (b'{"action": "capture", "wait": 1e308}', "at most 3600, not 1e+308"),
            (b'{"action": "capture", "wait": -1}', "more than 0 and at most 3600, not -1"),
            (b'{"action": "capture", "wait": "soon"}', "not soon"),
            (b'{"action": "capture", "wait": true}', "not True"),
            (b'{"action": ' + b"[" * 3000 + b"]" * 3000 + b"}", "nested more than 16 levels deep"),
            (b'{"action": "new-roll", "film": {"lab": "\\udc80"}}', "lab is not valid text"),
            (b'{"action": "new-roll", "film": "Portra"}', "a film record is a JSON object"),
            (b'{"action": "\xff"}', "not UTF-8 text"),
            (b'{"action": ["capture"]}', "unknown action 'list'"),
        ]
        for line, words in cases:
            reply = _socket_reply(path, line)
            assert reply["ok"] is False and words in reply["error"], (line[:50], reply)
            assert "Traceback" not in reply["error"]
        time.sleep(0.5)  # the behaviour: no capture follows them, even a while later
        assert running.daemon.library.current_roll() is None  # nothing was captured, no roll was started


@pytest.mark.slow
def test_a_press_whose_client_stopped_waiting_is_never_fired_later(tmp_path: Path) -> None:
    """During a long burst a second press with a short wait: its client is told it was cancelled, not done, and
    no burst fires after the client gave up (the flood's late capture)."""
    cfg = capture_config(tmp_path / "library", frames=4)
    cfg.camera.simulated.seconds_per_frame = 0.5
    cfg.triggers.press_during_burst = "queue"
    with RunningDaemon(cfg) as running:
        path = cfg.triggers.socket
        assert path is not None
        first: Future[Answer] = Future()
        running.daemon.hub.emit("capture", "test", first)
        wait_until(lambda: running.daemon.busy, 10, "the first burst under way")
        reply = request(path, "capture", timeout=0.5)
        assert reply["ok"] is False and "cancelled: not done" in reply["error"], reply
        assert first.result(timeout=30).ok
        time.sleep(1.5)  # the behaviour: the cancelled press fires no burst later (a burst takes 2 s here)
        assert len(list(running.daemon.library.root.glob("*/frame-*"))) == 1


# --- text from outside never breaks a roll ----------------------------------------------------------------------


def test_a_film_field_that_is_not_utf8_is_refused_on_the_command_line(tmp_path: Path) -> None:
    run = subprocess.run(
        [str(MEDIANSCAN), "new-roll", "--socket", str(tmp_path / "none.sock"), "--lab", b"\xc3\x28"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    assert (
        run.stderr.strip() == "medianscan: new-roll: lab is not valid text at character 1 (a byte that is not UTF-8?)"
    )


@pytest.mark.slow
def test_a_roll_record_stored_with_bad_text_still_blends_and_its_xmp_reads_back(tmp_path: Path) -> None:
    """A roll.json an earlier version accepted (a lone surrogate, U+FFFF, a NUL): its text is cleaned where the
    DNG's XMP is made, and the blend's own check reads that XMP back with Exiv2."""
    cfg = capture_config(tmp_path / "library")
    with RunningDaemon(cfg) as running:
        assert running.ask("new-roll").ok
        roll = running.daemon.library.current_roll()
        assert roll is not None
        record = json.loads((roll / ROLL_RECORD).read_text())
        record["film"] = {"film": "Fomapan\ud800 100\uffff", "lab": "a\x00b"}
        (roll / ROLL_RECORD).write_text(json.dumps(record))
        assert running.ask("capture").ok
        stack = running.wait_for_state("frame-001", State.BLENDED)
    dng = read_manifest(stack).blend
    assert dng is not None
    tags = json.loads(
        subprocess.run(["exiftool", "-j", "-XMP:all", str(dng.output)], capture_output=True, check=True).stdout
    )[0]
    assert tags["Film"] == "Fomapan\ufffd 100\ufffd" and tags["Lab"] == "a\ufffdb"


# --- the console cannot be used from another site -----------------------------------------------------------------


def test_no_page_may_frame_the_console_and_its_page_runs_only_its_own_code(
    console: tuple[RunningDaemon, Client],
) -> None:
    _, client = console
    for path in ("/", "/api/state", "/static/console.js"):
        status, headers, _ = client.get(path)
        assert status == 200
        assert headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "script-src 'self'" in headers["content-security-policy"]


def test_another_sites_fetches_are_refused_and_a_link_to_the_console_is_not(
    console: tuple[RunningDaemon, Client],
) -> None:
    _, client = console
    assert client.get("/api/live.mjpg", **{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"})[0] == 403
    assert client.get("/api/state", **{"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "cors"})[0] == 403
    assert client.get("/", **{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"})[0] == 200
    assert client.get("/api/state", **{"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"})[0] == 200


@pytest.mark.parametrize("host", ["[::1]evil.com", "[::1]:80x", "localhost:abc", "127.0.0.1.evil.com", "[evil]"])
def test_a_host_header_is_parsed_strictly(console: tuple[RunningDaemon, Client], host: str) -> None:
    _, client = console
    assert client.get("/api/state", Host=host)[0] == 421


def test_an_unrelated_cookie_a_strict_parser_refuses_does_not_hide_the_token(tmp_path: Path) -> None:
    token = "0123456789abcdef0123"
    cfg = capture_config(tmp_path / "library")
    cfg.console.token = token
    with RunningDaemon(cfg) as running:
        client = Client(running.url)
        cookie = f'other=a"b; broken; medianscan_console={token}; x=y z'
        assert client.get("/api/state", Cookie=cookie)[0] == 200
        assert client.get("/api/state", Cookie='other=a"b; broken')[0] == 401


def test_the_units_security_exposure_is_no_worse(tmp_path: Path) -> None:
    unit = tmp_path / "medianscan.service"
    unit.write_text((ROOT / "systemd" / "medianscan.service").read_text())
    run = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(unit)], capture_output=True, text=True, check=False
    )
    level = float(
        next(line for line in run.stdout.splitlines() if "Overall exposure level" in line).split(":")[1].split()[0]
    )
    assert level <= 2.3, run.stdout[-2000:]
