"""The console's routes on a real server (uvicorn in a real daemon, the simulated camera), called over loopback
HTTP: the page, state, live view, magnifier, positives and the operator's requests, with their errors and the
Host, Origin and token checks."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import imagecodecs
import numpy as np
import pytest

from medianscan.config.loader import parse_config
from medianscan.config.schema import ConfigError
from medianscan.errors import MedianscanError
from medianscan.library import film_base, roll_record
from medianscan.library.manifest import State
from tests.daemon_thread import RunningDaemon, capture_config
from tests.waiting import wait_until


class Client:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", path, headers)

    def post(self, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        origin = {"Origin": f"http://127.0.0.1:{self.port}"}
        return self.request("POST", path, {**origin, **headers}, b"{}")

    def json(self, path: str) -> Any:
        status, _, body = self.get(path)
        assert status == 200, body
        return json.loads(body)


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[RunningDaemon, Client]]:
    with RunningDaemon(capture_config(tmp_path / "library")) as running:
        yield running, Client(running.url)


def test_the_page_and_its_files_are_served(console: tuple[RunningDaemon, Client]) -> None:
    _, client = console
    status, headers, body = client.get("/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    for testid in ("live", "capture", "frames", "last-blend"):
        assert f'data-testid="{testid}"'.encode() in body
    for path in ("/static/console.js", "/static/console.css", "/static/icon.svg"):
        assert client.get(path)[0] == 200
    assert b'href="data:' not in body  # the page's CSP allows its own images only: no data: icon
    assert client.get("/static/../../etc/passwd")[0] == 404


def test_the_state_names_the_camera_live_view_queue_and_disk(console: tuple[RunningDaemon, Client]) -> None:
    _, client = console
    state = client.json("/api/state")
    assert state["camera"]["model"] == "medianscan simulated camera" and state["camera"]["state"] == "ready"
    assert state["live"]["unavailable"] is None
    assert state["queue"]["capacity"] == 4 and state["disk_free_bytes"] > 0
    assert state["negatives"] == [] and state["paused"] is False


def test_live_view_frames_are_jpegs_of_the_camera(console: tuple[RunningDaemon, Client]) -> None:
    _, client = console
    status, headers, body = client.get("/api/live.jpg")
    assert status == 200 and headers["content-type"] == "image/jpeg"
    first = int(headers["x-frame"])
    rgb = imagecodecs.jpeg8_decode(body)
    assert rgb.shape[2] == 3 and rgb.std() > 1  # a picture, not a blank
    status, headers, _ = client.get(f"/api/live.jpg?after={first}")
    assert status == 200 and int(headers["x-frame"]) > first
    assert client.get("/api/live.jpg?after=soon")[0] == 400


def test_the_mjpeg_stream_sends_new_frames_and_a_client_that_leaves_costs_nothing(
    console: tuple[RunningDaemon, Client],
) -> None:
    running, client = console
    conn = http.client.HTTPConnection(client.host, client.port, timeout=30)
    conn.request("GET", "/api/live.mjpg")
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("content-type", "").startswith("multipart/x-mixed-replace; boundary=")
    parts = 0
    buffer = b""
    while parts < 5:
        buffer += response.read1(65536)
        while b"--medianscan-live\r\n" in buffer and b"\r\n\r\n" in buffer:
            head, _, rest = buffer.partition(b"\r\n\r\n")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            if len(rest) < length + 2:
                break
            assert rest[:2] == b"\xff\xd8"  # each part is a whole JPEG
            parts += 1
            buffer = rest[length + 2 :]
    assert running.daemon.live.state().watched
    conn.close()  # gone mid-stream
    # live view stops: no USB traffic for nobody
    wait_until(lambda: not running.daemon.live.state().watched, 10, "live view stopped", every=0.05)
    assert client.get("/api/state")[0] == 200  # and the console goes on


def test_the_magnifier_crops_the_view_one_to_one(console: tuple[RunningDaemon, Client]) -> None:
    _, client = console
    client.get("/api/live.jpg")
    status, _, body = client.get("/api/magnify.jpg?x=0.5&y=0.5")
    assert status == 200 and imagecodecs.jpeg8_decode(body).shape == (160, 160, 3)
    assert client.get("/api/magnify.jpg?x=2&y=0.5")[0] == 400
    assert client.get("/api/magnify.jpg?x=left")[0] == 400


@pytest.mark.slow
def test_a_capture_from_the_console_is_answered_like_the_socket_and_its_positive_shown(
    console: tuple[RunningDaemon, Client],
) -> None:
    running, client = console
    status, _, body = client.post("/api/actions/capture")
    answer = json.loads(body)
    assert status == 200 and answer["ok"] and answer["outcome"] == "done" and answer["stack"] == "frame-001"
    running.wait_for_state("frame-001", State.BLENDED)

    def blended() -> Any:
        first = client.json("/api/state")["negatives"][0]
        return first if first["state"] == "blended" else None

    negative = wait_until(blended, 5, "the console shows the negative blended", every=0.1)
    assert negative["frames_used"] == 3 and negative["rejected"] == []
    assert 0 < negative["noise_ratio"] < 0.8 and set(negative["clipped"]) == {"R", "G", "B"}
    status, headers, body = client.get(negative["positive"])
    assert status == 200 and headers["content-type"] == "image/jpeg"
    positive = imagecodecs.jpeg8_decode(body).astype(np.float32)
    assert positive.std() > 10 and 20 < positive.mean() < 235  # a picture, neither blank nor black
    roll = running.daemon.library.roll.name
    assert client.get(f"/api/positive/{roll}/frame-009.jpg")[0] == 404
    assert client.get("/api/positive/..%2F..%2Fetc/passwd.jpg")[0] == 404


def test_a_paused_daemon_says_the_press_was_ignored(console: tuple[RunningDaemon, Client]) -> None:
    _, client = console
    assert json.loads(client.post("/api/actions/pause")[2])["ok"]
    answer = json.loads(client.post("/api/actions/capture")[2])
    assert not answer["ok"] and answer["outcome"] == "ignored" and "paused" in answer["text"]
    assert client.json("/api/state")["paused"] is True
    assert json.loads(client.post("/api/actions/resume")[2])["ok"]


def test_the_film_base_button_shoots_clear_film_and_records_the_rolls_base(
    console: tuple[RunningDaemon, Client],
) -> None:
    """The Film base button posts the `base` action (the page's script wires it); the answer names the base the
    burst of clear film measured, recorded in roll.json, and the burst is no negative of the roll."""
    running, client = console
    page = client.get("/")[2]
    assert b'<button id="base" data-testid="base"' in page and b"Film base" in page
    assert (
        b'$("base").addEventListener("click", () => act("base", "Film base button"));'
        in client.get("/static/console.js")[2]
    )
    status, _, body = client.post("/api/actions/base")
    answer = json.loads(body)
    assert status == 200 and answer["ok"] and answer["stack"] == "base-001", answer
    recorded = roll_record.read_film_base(running.daemon.library.roll)
    assert recorded is not None and recorded.source == film_base.SOURCE_CLEAR
    assert f"G {recorded.base[1]:.0f}" in answer["text"] and "no base was recorded before" in answer["text"]
    assert client.json("/api/state")["negatives"] == []


def test_bad_requests_get_a_reason_and_the_console_goes_on(console: tuple[RunningDaemon, Client]) -> None:
    _, client = console
    status, _, body = client.post("/api/actions/explode")
    assert status == 404 and b"unknown action 'explode'" in body
    assert client.get("/api/actions/capture")[0] == 405  # a GET changes nothing
    assert client.get("/api/nothing")[0] == 404
    assert client.json("/api/state")["negatives"] == []  # nothing was fired


def test_other_sites_cannot_fire_the_camera_or_rebind_onto_it(console: tuple[RunningDaemon, Client]) -> None:
    running, client = console
    status, _, body = client.post("/api/actions/capture", Origin="http://evil.example")
    assert status == 403 and b"may not change anything" in body
    status, _, _ = client.request("POST", "/api/actions/capture", {"Sec-Fetch-Site": "cross-site"}, b"{}")
    assert status == 403
    status, _, body = client.get("/api/state", Host=f"evil.example:{client.port}")  # DNS rebinding
    assert status == 421 and b"127.0.0.1" in body
    assert client.get("/api/state", Host=f"localhost:{client.port}")[0] == 200
    assert client.get("/api/state", Host="127.0.0.1:9000")[0] == 200  # an SSH tunnel from another local port
    assert client.get("/api/state", Host="[::1]:9000")[0] == 200
    assert client.get("/api/state", Host="127.0.0.1.evil.example:80")[0] == 421
    assert running.daemon.library.last_stack() is None  # nothing was shot


def test_a_token_is_asked_for_then_kept_as_a_cookie(tmp_path: Path) -> None:
    cfg = capture_config(tmp_path / "library")
    cfg.console.token = "0123456789abcdef0123"
    with RunningDaemon(cfg) as running:
        client = Client(running.url)
        status, _, body = client.get("/api/state")
        assert status == 401 and b"token" in body
        status, headers, _ = client.get("/?token=0123456789abcdef0123")
        assert status == 303 and headers["location"] == "/"
        cookie = headers["set-cookie"].split(";")[0]
        assert "httponly" in headers["set-cookie"].lower() and "samesite=strict" in headers["set-cookie"].lower()
        assert client.get("/api/state", Cookie=cookie)[0] == 200
        assert client.get("/api/state", Authorization="Bearer 0123456789abcdef0123")[0] == 200
        assert client.get("/api/state", Authorization="Bearer wrong")[0] == 401


def test_a_console_off_loopback_needs_a_token() -> None:
    with pytest.raises(ConfigError, match=r"console.listen: is '0.0.0.0:8631', off loopback.*console.token"):
        parse_config("console: {listen: '0.0.0.0:8631'}\n")
    cfg = parse_config("console: {listen: '0.0.0.0:8631', token: 0123456789abcdef}\n")
    assert cfg.console.listen == "0.0.0.0:8631"
    assert parse_config("console: {listen: null}\n").console.listen is None


def test_a_port_in_use_is_a_clear_error_at_start(tmp_path: Path) -> None:
    with RunningDaemon(capture_config(tmp_path / "one")) as first:
        port = urlsplit(first.url).port
        cfg = capture_config(tmp_path / "two")
        cfg.console.listen = f"127.0.0.1:{port}"
        with pytest.raises(MedianscanError, match=rf"console.listen 127.0.0.1:{port}: cannot listen there") as caught:
            RunningDaemon(cfg).__enter__()
        said = str(caught.value)
        assert ": address already in use; is another medianscan running?" in said, said
        assert said.count("(") == 0  # no "(Address already in use (while attempting to bind ...))"


def test_the_daemon_without_a_console(tmp_path: Path) -> None:
    cfg = capture_config(tmp_path / "library")
    cfg.console.listen = None
    with RunningDaemon(cfg) as running:
        assert running.daemon.console is None
        assert running.daemon.status()["console"] is None


def test_the_focus_meter_holds_its_peak_and_sees_clipping() -> None:
    from scipy import ndimage

    from medianscan.capture.live_view import LiveFrame
    from medianscan.console.focus import FocusMeter

    rng = np.random.default_rng(3)
    scene = np.clip(rng.normal(120, 40, (240, 320, 3)), 0, 255).astype(np.float32)
    scene[:40, :40] = 255  # a clipped corner: 1/48 of the view

    def frame(number: int, blur: float) -> LiveFrame:
        image = ndimage.gaussian_filter(scene, (blur, blur, 0)) if blur else scene
        if not blur:
            image[:40, :40] = 255
        return LiveFrame(bytes(imagecodecs.jpeg8_encode(image.astype(np.uint8), level=95)), number, 0.0)

    meter = FocusMeter()
    soft = meter.reading(frame(1, 3.0))
    sharp = meter.reading(frame(2, 0.0))
    assert soft is not None and sharp is not None
    assert sharp.sharpness > 2 * soft.sharpness and sharp.of_peak == pytest.approx(1.0)
    assert sharp.clipped == pytest.approx(40 * 40 / (240 * 320), rel=0.1)
    assert meter.reading(frame(2, 0.0)) is sharp  # a frame is measured once, however many ask
    again_soft = meter.reading(frame(3, 3.0))
    assert again_soft is not None and again_soft.of_peak < 0.8  # below the held peak
    meter.reset()
    after = meter.reading(frame(4, 3.0))
    assert after is not None and after.of_peak > again_soft.of_peak  # the peak is forgotten


def test_the_body_magnifier_is_asked_between_preview_frames(console: tuple[RunningDaemon, Client]) -> None:
    _, client = console
    _, _, plain = client.get("/api/live.jpg")
    status, _, body = client.request(
        "POST",
        "/api/zoom",
        {"Origin": f"http://127.0.0.1:{client.port}", "Content-Type": "application/json"},
        json.dumps({"x": 0.2, "y": 0.3}).encode(),
    )
    assert status == 200 and json.loads(body)["asked"] == "on"
    deadline = time.monotonic() + 10
    while client.json("/api/state")["live"]["body_zoom"] != "on":
        assert time.monotonic() < deadline, "the camera thread did not apply the zoom"
        client.get("/api/live.jpg")
    # the zoom is made just before a preview is fetched, so the frame published when the state first says "on"
    # may still be the whole view: take one numbered after it
    _, seen, _ = client.get("/api/live.jpg")
    _, _, zoomed = client.get(f"/api/live.jpg?after={seen['x-frame']}")
    wide, near = (imagecodecs.jpeg8_decode(j).astype(np.float32) for j in (plain, zoomed))
    assert wide.shape == near.shape  # the body's own view, magnified: the same preview size
    assert np.abs(wide - near).mean() > 1  # and another picture than the whole view
    bad = client.request("POST", "/api/zoom", {"Origin": f"http://127.0.0.1:{client.port}"}, b'{"x": 3, "y": 0}')
    assert bad[0] == 400
    client.request("POST", "/api/zoom", {"Origin": f"http://127.0.0.1:{client.port}"}, b'{"off": true}')
    deadline = time.monotonic() + 10
    while client.json("/api/state")["live"]["body_zoom"] != "off":
        assert time.monotonic() < deadline
        client.get("/api/live.jpg")


def test_with_no_camera_the_console_says_so_and_refuses_the_capture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medianscan.capture.camera import CameraError
    from medianscan.capture.camera.simulated.camera import SimulatedCamera
    from medianscan.service.capture import camera_link

    class Unplugged(SimulatedCamera):
        """FAKE: a body that is not on the bus (the simulator always is)."""

        def connect(self) -> Any:
            raise CameraError("no camera found: connect it by USB and switch it on")

    monkeypatch.setattr(camera_link, "open_camera", Unplugged)
    with RunningDaemon(capture_config(tmp_path / "library")) as running:
        client = Client(running.url)
        state = client.json("/api/state")
        assert state["camera"]["state"] == "not connected" and "no camera found" in state["camera"]["error"]
        status, _, body = client.get("/api/live.jpg")
        assert status == 503 and b"no camera" in body
        answer = json.loads(client.post("/api/actions/capture")[2])
        assert not answer["ok"] and answer["outcome"] == "refused" and "no camera found" in answer["text"]
        assert client.get("/api/state")[0] == 200  # the console and the daemon go on


def test_a_new_roll_from_the_console_carries_its_film(console: tuple[RunningDaemon, Client]) -> None:
    from medianscan.library.roll_record import read_roll_record

    running, client = console
    headers = {"Origin": f"http://127.0.0.1:{client.port}", "Content-Type": "application/json"}
    body = json.dumps({"film": {"film": "Ilford HP5 Plus 400", "iso": 1600, "process": "push +2"}}).encode()
    status, _, reply = client.request("POST", "/api/actions/new-roll", headers, body)
    assert status == 200 and json.loads(reply)["ok"]
    record = read_roll_record(running.daemon.library.roll)
    assert record is not None and record.film.film == "Ilford HP5 Plus 400" and record.film.iso == 1600
    bad = client.request("POST", "/api/actions/new-roll", headers, b'{"film": {"iso": -3}}')
    assert bad[0] == 400 and b"iso must be a whole number from 1 to 999999" in bad[2]
