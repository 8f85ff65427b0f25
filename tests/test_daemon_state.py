"""The capture daemon's shared state under presses from everywhere at once: the console (HTTP), the control
socket and the pedal press capture, pause and resume together while snapshots are read as fast as they come, on
a real daemon (its camera thread on the simulated body, its real console, socket and blend worker). No snapshot
is torn, and every press is answered exactly once with what really happened. Each source hears the answer it
can read (the console beside its banner, the CLI without one), and each event is told once, typed, to every
listener (the hooks among them)."""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from medianscan.capture.control_client import request
from medianscan.capture.events import Answer
from medianscan.cli import main
from medianscan.library.manifest import read_manifest
from medianscan.service.progress import BurstDone, FlatDone, Progress
from medianscan.vocabulary import Request
from tests.daemon_thread import RunningDaemon, capture_config

ACTIONS: tuple[Request, ...] = ("capture", "capture", "pause", "resume")  # more captures: bursts to overlap
PRESSES = 14  # per source


def post(url: str, action: str) -> dict[str, Any]:
    """The console's button: POST /api/actions/<action>, as the page does."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=120)
    try:
        origin = f"http://127.0.0.1:{parts.port}"
        conn.request("POST", f"/api/actions/{action}", b"{}", {"Origin": origin, "Content-Type": "application/json"})
        response = conn.getresponse()
        body = json.loads(response.read())
        assert response.status == 200, body
        return dict(body)
    finally:
        conn.close()


def console_state(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
    try:
        conn.request("GET", "/api/state")
        return dict(json.loads(conn.getresponse().read()))
    finally:
        conn.close()


def consistent(where: str, *, paused: bool, busy: bool, camera: str, group: object, told: Any) -> list[str]:
    """What a snapshot may never show (`told`: the last answer as (action, ok), or None)."""
    torn = []
    if paused and busy:
        torn.append("paused while a burst runs (a pause waits for the camera thread, which is shooting)")
    if busy != (camera == "capturing"):
        torn.append(f"busy {busy} but the camera {camera!r}")
    if group is not None and not busy:
        torn.append("a bracket group with no burst")
    if told is not None and told[1] and told[0] in ("pause", "resume") and paused != (told[0] == "pause"):
        torn.append(f"the last answer was a done {told[0]} but paused is {paused}")
    return [f"{where}: {t}" for t in torn]


@pytest.mark.slow
def test_presses_from_the_console_the_socket_and_the_pedal_at_once_leave_no_torn_state(tmp_path: Path) -> None:
    cfg = capture_config(tmp_path / "library")
    cfg.camera.simulated.seconds_per_frame = 0.05  # a burst lasts long enough for presses to arrive during it
    socket_path = cfg.triggers.socket
    assert socket_path is not None
    answers: dict[str, list[tuple[str, dict[str, Any]]]] = {"console": [], "socket": [], "pedal": []}
    torn: list[str] = []
    snapshots = [0]
    bursts: list[Path] = []
    done = threading.Event()

    with RunningDaemon(cfg) as running:
        daemon = running.daemon
        url = running.url

        def listen(news: Progress) -> None:
            if isinstance(news, BurstDone):
                bursts.append(news.stack)

        daemon.listeners.append(listen)

        def press(source: str, send: Any) -> None:
            rng = random.Random(source)
            for _ in range(PRESSES):
                action = rng.choice(ACTIONS)
                answers[source].append((action, send(action)))
                time.sleep(rng.uniform(0.0, 0.08))  # the behaviour: presses at random moments, overlapping

        def pedal(action: Request) -> dict[str, Any]:
            # the footswitch's thread puts its presses on the hub (tests/test_triggers.py drives the real
            # Footswitch on fake input devices); a reply is attached here only to learn each press's answer
            reply: Future[Answer] = Future()
            daemon.hub.emit(action, "footswitch", reply)
            return reply.result(120).to_json()

        def watch() -> None:
            while not done.is_set():
                snap = daemon.snapshot()
                last = None if snap.told is None else (snap.told.answer.action, snap.told.answer.ok)
                cam = snap.camera.state
                group = snap.bracket_group
                torn.extend(
                    consistent("snapshot", paused=snap.paused, busy=snap.bursting, camera=cam, group=group, told=last)
                )
                page = console_state(url)  # the console's state, built from one snapshot
                said = page["told"] and (page["told"]["answer"]["action"], page["told"]["answer"]["ok"])
                cam, group = page["camera"]["state"], page["group"]
                torn.extend(
                    consistent("console", paused=page["paused"], busy=page["busy"], camera=cam, group=group, told=said)
                )
                status = request(socket_path, "status")["status"]  # `medianscan status`
                cam, group = status["camera"]["state"], status["bracket_group"]
                torn.extend(
                    consistent(
                        "status", paused=status["paused"], busy=status["busy"], camera=cam, group=group, told=None
                    )
                )
                snapshots[0] += 3

        threads = [
            threading.Thread(target=press, args=("console", lambda a: post(url, a))),
            threading.Thread(target=press, args=("socket", lambda a: request(socket_path, a, timeout=120))),
            threading.Thread(target=press, args=("pedal", pedal)),
        ]
        watcher = threading.Thread(target=watch)
        watcher.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        done.set()
        watcher.join(30)
        assert not any(t.is_alive() for t in [*threads, watcher])
        request(socket_path, "resume")  # the last press, so that the state it ends in is known
        final = daemon.snapshot()
        told = final.told
        stacks = {s.name: read_manifest(s).state for s in daemon.library.stacks()}

    assert torn == [], torn[:10]
    assert snapshots[0] > 30, "too few snapshots were read during the presses"
    everything = [(source, action, a) for source, said in answers.items() for action, a in said]
    assert len(everything) == 3 * PRESSES  # each press answered: none lost, none left waiting
    assert told is not None and told.number == 3 * PRESSES + 1  # each told once (the last resume too): none twice
    assert not final.paused and not final.bursting
    shot = []
    for source, action, a in everything:
        assert a["action"] == action, (source, a)
        if action in ("pause", "resume"):
            assert a["ok"] and a["outcome"] == "done", (source, a)
        elif a["ok"]:  # done, or queued behind a burst and then done: a stack really shot
            assert a["outcome"] in ("done", "queued") and a.get("stack"), (source, a)
            shot.append(a["stack"])
        else:  # ignored: paused, or a burst under way with a press already waiting for it
            assert a["outcome"] in ("ignored", "queued"), (source, a)
            assert "paused" in a["text"] or "a burst was under way" in a["text"], (source, a)
    kinds = {(action, a["outcome"]) for _, action, a in everything}
    assert ("capture", "done") in kinds and ("capture", "ignored") in kinds  # the presses did meet a pause
    assert sorted(shot) == sorted(stacks), "a capture answered done is a stack on disk, and only those are"
    assert len(set(shot)) == len(shot), "two presses answered with the same stack"
    assert sorted(s.name for s in bursts) == sorted(shot), "each burst told to the listeners once"


def test_a_refused_setting_is_named_once_on_the_console_and_whole_on_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A shutter speed the body does not offer: the console's banner names it (the camera's error), so the
    console's answer to Capture is short and points there; the CLI has no banner, so `medianscan capture` prints
    the whole sentence; status keeps the whole sentence as its message."""
    cfg = capture_config(tmp_path / "library")
    cfg.camera.settings = {"shutterspeed": "1/55"}
    with RunningDaemon(cfg) as running:
        banner = running.daemon.snapshot().camera.error  # the console shows it as its banner
        assert banner is not None and "shutterspeed" in banner and "1/55" in banner
        on_console = post(running.url, "capture")
        assert on_console["outcome"] == "refused"
        assert on_console["text"] == "cannot capture: a camera setting is refused (see the banner)"
        assert console_state(running.url)["told"]["answer"]["text"] == on_console["text"]
        assert main(["capture", "--socket", str(cfg.triggers.socket)]) == 1
        assert capsys.readouterr().err == f"medianscan: cannot capture: {banner}\n"
        assert running.daemon.snapshot().message == f"cannot capture: {banner}"
        assert list(running.daemon.library.root.glob("*/frame-001")) == []  # nothing shot


def test_a_flat_burst_is_told_as_a_typed_event_and_runs_the_burst_hook(tmp_path: Path) -> None:
    """The flat burst fired the burst-done hook and told the listeners nothing: now it is one typed event
    (FlatDone) that every listener hears, the hooks among them."""
    events = tmp_path / "hooks.log"
    cfg = capture_config(tmp_path / "library")
    cfg.hooks.burst_done = [f"sh -c 'echo \"$MEDIANSCAN_EVENT $MEDIANSCAN_STACK\" >> {events}'"]
    heard: list[Progress] = []
    with RunningDaemon(cfg) as running:
        running.daemon.listeners.append(heard.append)
        answer = running.ask("flat")
        assert answer.ok, answer.text
        assert running.daemon.hooks.wait(20)
    (flat,) = [news for news in heard if isinstance(news, FlatDone)]
    assert flat.folder.name == answer.stack and flat.frames == cfg.flat_frames()
    assert flat.last is not None and flat.last.parent == flat.folder and flat.last.is_file()
    assert not [news for news in heard if isinstance(news, BurstDone)]  # a flat is no negative
    assert events.read_text() == f"burst-done {flat.folder}\n"
