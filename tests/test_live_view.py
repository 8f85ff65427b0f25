"""Live view on the camera thread: previews run between requests and only while watched, a burst pauses them
and waits at most one preview frame, and a body without live view says so and goes on capturing. On the
simulated camera and on libgphoto2's real virtual camera (which offers preview, then answers -6)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gphoto2 as gp
import imagecodecs
import numpy as np
import pytest

from medianscan.capture.camera import CameraError, NoLiveViewError
from medianscan.capture.camera import faults as codes
from medianscan.capture.camera.gphoto2.backend import Gphoto2Camera
from medianscan.capture.camera.simulated.camera import SimulatedCamera
from medianscan.capture.live_view import LiveFeed
from medianscan.config.schema import CameraConfig, Config
from medianscan.console.focus import sharpness
from medianscan.library.manifest import read_manifest
from medianscan.service.capture import camera_link
from tests.daemon_thread import RunningDaemon, capture_config
from tests.vcam import FaultPlan, FaultyCamera, RewritingCamera, VirtualCamera, virtual_camera
from tests.waiting import wait_until


@pytest.fixture
def vcam(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[VirtualCamera]:
    with virtual_camera(tmp_path, monkeypatch) as cam:
        yield cam


def frames_within(feed: LiveFeed, seconds: float) -> list[int]:
    """The frame numbers published during the next `seconds`."""
    seen: list[int] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        frame = feed.latest()
        if frame is not None and (not seen or frame.number != seen[-1]):
            seen.append(frame.number)
        time.sleep(0.005)  # sampling a real-time window: the behaviour is how many frames it holds
    return seen


# --- the simulated camera's live view ----------------------------------------------------------------------


@pytest.mark.slow
def test_the_simulated_view_is_a_jpeg_of_the_next_negative_drifting_through_focus() -> None:
    cfg = CameraConfig()
    cfg.simulated.width, cfg.simulated.height = 768, 512
    cfg.simulated.preview_fps = 1000.0
    cfg.simulated.preview_focus_period_seconds = 2.0
    cam = SimulatedCamera(cfg)
    with pytest.raises(CameraError, match="not connected"):
        cam.preview()
    cam.connect()
    values = []
    for _ in range(25):  # a quarter of a focus period apart: sharp and soft both come by
        rgb = imagecodecs.jpeg8_decode(cam.preview())
        assert rgb.shape == (512 // 2 - 8, 768 // 2 - 8, 3)  # one pixel per 2x2 cell, less the sway margin
        values.append(sharpness(rgb.astype(np.float32).mean(axis=2)))
        time.sleep(0.1)  # the focus drifts with time: the views are taken spread over its period
    assert max(values) > 3 * min(values)  # the focus meter has a peak to find
    r, g, b = rgb.reshape(-1, 3).mean(axis=0)
    assert r > g > b  # an orange-masked negative, as a camera's preview shows one


def test_the_simulated_view_comes_at_the_bodys_rate() -> None:
    cfg = CameraConfig()
    cfg.simulated.width, cfg.simulated.height = 768, 512
    cfg.simulated.preview_fps = 10.0
    cam = SimulatedCamera(cfg)
    cam.connect()
    cam.preview()
    start = time.monotonic()
    for _ in range(5):
        cam.preview()
    assert time.monotonic() - start == pytest.approx(0.5, abs=0.15)


# --- the camera thread ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_live_view_runs_only_while_watched_and_pauses_for_a_burst(tmp_path: Path) -> None:
    cfg = capture_config(tmp_path / "library")
    cfg.camera.simulated.preview_fps = 20.0
    cfg.camera.simulated.seconds_per_frame = 0.2
    with RunningDaemon(cfg, triggers=False) as running:
        feed = running.daemon.live
        time.sleep(0.5)  # the behaviour: for a while (ten frames' time), nothing is published
        assert feed.latest() is None  # nobody watches: no preview is asked of the body
        with feed.watch():
            seen = frames_within(feed, 1.0)
            assert len(seen) >= 8, seen  # about 20 fps, on a busy machine at least 8
            paused: list[str | None] = []
            watcher = threading.Thread(target=lambda: paused.extend(feed.paused for _ in iter_for(0.5)))
            watcher.start()
            before = feed.latest()
            answer = running.ask("capture")
            watcher.join()
            assert answer.ok and answer.stack == "frame-001"
            assert "a burst is under way" in paused  # the console says why the view stood still
            assert before is not None
            after = frames_within(feed, 0.5)
            assert after and after[-1] > before.number  # and it resumes after the burst
        time.sleep(0.3)  # a preview under way when the watch ended may still land: the view stops after it
        stopped = feed.latest()
        assert stopped is not None
        assert frames_within(feed, 0.5) == [stopped.number]  # nobody watches again: no more previews
        assert feed.state().unavailable is None


def iter_for(seconds: float) -> Iterator[None]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        yield
        time.sleep(0.01)  # sampling a real-time window


@pytest.mark.slow
def test_a_press_waits_at_most_one_preview_frame(tmp_path: Path) -> None:
    """A slow body (2 fps): each preview call blocks half a second; a press never waits longer than that."""
    cfg = capture_config(tmp_path / "library")
    cfg.camera.simulated.preview_fps = 2.0
    with RunningDaemon(cfg, triggers=False) as running, running.daemon.live.watch():
        frames_within(running.daemon.live, 1.2)
        delays = []
        for _ in range(3):
            time.sleep(0.17)  # somewhere into a preview frame
            pressed = time.time()
            answer = running.ask("capture")
            assert answer.ok
            manifest = read_manifest(running.daemon.library.last_stack() or tmp_path)
            assert manifest.burst is not None
            delays.append(manifest.burst.started - pressed)
        assert max(delays) < 0.5 + 0.2, delays  # one preview frame, and the hand-off


# --- libgphoto2's virtual camera -----------------------------------------------------------------------------


def gphoto2_config(tmp_path: Path) -> Config:
    cfg = capture_config(tmp_path / "library")
    cfg.camera = CameraConfig(backend="gphoto2", settle_seconds=0.5, reconnect_max_seconds=1.0)
    return cfg


def test_the_virtual_camera_offers_preview_but_has_none(vcam: VirtualCamera) -> None:
    cam = Gphoto2Camera(CameraConfig(backend="gphoto2"), factory=lambda: RewritingCamera(vcam))
    cam.connect()
    try:
        assert cam._cam.get_abilities().operations & gp.GP_OPERATION_CAPTURE_PREVIEW  # it advertises the bit
        with pytest.raises(NoLiveViewError, match=r"no live view on this body \(Nikon DSC D750 .*capture still works"):
            cam.preview()
        record = cam.burst(3, vcam.dir.parent / "stack", "frame-001")  # and capture is not affected
        assert len(record.frames) == 3
        with pytest.raises(NoLiveViewError):  # answered from what it learnt, without asking the body again
            cam.preview()
    finally:
        cam.close()


def test_on_the_virtual_camera_the_daemon_says_no_live_view_and_captures(
    vcam: VirtualCamera, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        camera_link, "open_camera", lambda cfg: Gphoto2Camera(cfg, factory=lambda: RewritingCamera(vcam))
    )
    with RunningDaemon(gphoto2_config(tmp_path), triggers=False) as running:
        feed = running.daemon.live
        with feed.watch():
            unavailable = wait_until(lambda: feed.unavailable, 10, "live view said unavailable")
            assert unavailable is not None and "no live view on this body" in unavailable
            answer = running.ask("capture")
        assert answer.ok, answer.text
        stack = running.daemon.library.last_stack()
        assert stack is not None and len(list(stack.glob("frame-001_0?.*"))) == 3
        assert running.daemon.camera_status.state == "ready"


class GoneWithThePreview(FaultyCamera):
    """FAKE (the virtual camera cannot fall off the bus): once live view failed with I/O errors, every config
    read fails as a body gone from the bus does."""

    gone = False

    def get_single_config(self, name: str) -> Any:
        if self.gone:
            raise gp.GPhoto2Error(codes.USB_FIND)
        return super().get_single_config(name)

    def capture_preview(self) -> Any:
        try:
            return super().capture_preview()
        except gp.GPhoto2Error:
            if not self.plan.faults.get("capture_preview"):
                type(self).gone = True
            raise


@pytest.mark.slow
@pytest.mark.parametrize("gone", [False, True])
def test_failing_previews_ask_whether_the_camera_is_still_there(
    vcam: VirtualCamera, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, gone: bool
) -> None:
    plan = FaultPlan(capture_preview=[codes.IO] * 3)
    kind = GoneWithThePreview if gone else FaultyCamera
    GoneWithThePreview.gone = False
    monkeypatch.setattr(camera_link, "open_camera", lambda cfg: Gphoto2Camera(cfg, factory=lambda: kind(vcam, plan)))
    with RunningDaemon(gphoto2_config(tmp_path), triggers=False) as running:
        feed, status = running.daemon.live, running.daemon.camera_status
        with feed.watch():
            wait_until(lambda: len(plan.raised) >= 3, 10, "three previews failed")
            time.sleep(0.3)  # the behaviour: what the camera thread does once they failed (reconnect or not)
            if gone:  # only a camera that is gone means reconnect: a new session on a new gp.Camera
                assert "stopped answering during live view" in caplog.text
                assert plan.created == 2
            else:  # a body that still answers keeps its session; live view says it is failing
                assert status.state == "ready" and plan.created == 1
                assert feed.paused is not None and "live view is failing" in feed.paused
    GoneWithThePreview.gone = False


def test_the_feed_wakes_waiters_on_any_event_loop() -> None:
    feed = LiveFeed()

    async def wait() -> int | None:
        frame = await feed.newer(0, 2.0)
        return None if frame is None else frame.number

    threading.Timer(0.1, feed.publish, args=(b"\xff\xd8 one",)).start()
    assert asyncio.run(wait()) == 1
    assert asyncio.run(feed.newer(1, 0.1)) is None  # nothing newer: the wait ends at its timeout
    with feed.watch():
        assert feed.wanted
    assert not feed.wanted
    feed.touch()
    assert feed.wanted  # a single-frame client keeps it running for a moment


def test_the_virtual_camera_has_no_body_magnifier(vcam: VirtualCamera) -> None:
    cam = Gphoto2Camera(CameraConfig(backend="gphoto2"), factory=lambda: RewritingCamera(vcam))
    cam.connect()
    try:
        assert cam.magnify((0.5, 0.5)) is False  # no eoszoom, no zoom ratio: the console's crop serves instead
        assert cam.magnify(None) is False
    finally:
        cam.close()
