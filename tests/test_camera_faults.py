"""Busy, claimed and unplugged cameras.

libgphoto2's virtual camera cannot be busy (-110), claimed (-53) or unplugged (-52/-7), so these tests put a
thin FAKE (tests.vcam.FaultyCamera) in front of the real virtual camera: it raises gp.GPhoto2Error(code) on the
calls a FaultPlan names and passes every other call to libgphoto2.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from medianscan.capture.camera import BurstError, CameraError
from medianscan.capture.camera.gphoto2.backend import Gphoto2Camera
from medianscan.config.schema import CameraConfig
from tests.vcam import FaultPlan, FaultyCamera, VirtualCamera, virtual_camera


@pytest.fixture
def vcam(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[VirtualCamera]:
    with virtual_camera(tmp_path, monkeypatch) as cam:
        yield cam


def faulty(
    vcam: VirtualCamera,
    plan: FaultPlan,
    *,
    sleeps: list[float] | None = None,
    busy_retry_seconds: float = 5.0,
    **options: object,
) -> Gphoto2Camera:
    cfg = CameraConfig(backend="gphoto2", reconnect_max_seconds=0.6, settings={"aperture": "f/8"}, strategy="capture")
    for key, value in options.items():
        setattr(cfg, key, value)
    record_sleep = sleeps.append if sleeps is not None else (lambda _s: None)
    return Gphoto2Camera(
        cfg, factory=lambda: FaultyCamera(vcam, plan), sleep=record_sleep, busy_retry_seconds=busy_retry_seconds
    )


def test_busy_is_retried_with_growing_pauses(vcam: VirtualCamera, tmp_path: Path) -> None:
    plan = FaultPlan(capture=[0, -110, -110, -110])  # FAKE: frame 2 meets "PTP Device Busy" three times
    sleeps: list[float] = []
    cam = faulty(vcam, plan, sleeps=sleeps)
    record = cam.burst(3, tmp_path / "s", "s")
    assert [p.read_bytes() for p in record.frames] == vcam.shown
    assert plan.raised == [("capture", -110)] * 3
    assert sleeps == [0.05, 0.1, 0.2]
    assert plan.created == 1  # busy is not a reason to reconnect
    cam.close()


def test_a_camera_that_stays_busy_fails_the_burst_but_stays_connected(vcam: VirtualCamera, tmp_path: Path) -> None:
    plan = FaultPlan(capture=[0] + [-110] * 50)  # FAKE
    cam = faulty(vcam, plan, busy_retry_seconds=0.0)
    with pytest.raises(BurstError, match=r"frame 2 of 4.*stayed busy.*1 frame kept") as err:
        cam.burst(4, tmp_path / "s", "s")
    assert [p.name for p in err.value.record.frames] == ["s_01.dng"]
    assert cam.connected and plan.created == 1
    cam.close()


def test_claimed_camera_names_gvfs_and_the_fix(vcam: VirtualCamera) -> None:
    plan = FaultPlan(init=[-53])  # FAKE: the desktop's gvfs holds the USB interface
    cam = faulty(vcam, plan)
    with pytest.raises(CameraError, match=r"claimed by another process.*gvfs.*`gio mount -s gphoto2`"):
        cam.connect()
    assert not cam.connected


@pytest.mark.slow
@pytest.mark.parametrize(("call", "code", "kept"), [("capture", -52, 2), ("file_get", -7, 3)])
def test_unplug_mid_burst_keeps_the_frames_and_reconnects_on_a_new_object(
    vcam: VirtualCamera, tmp_path: Path, call: str, code: int, kept: int
) -> None:
    """The camera drops off the bus at frame 3: while firing it (nothing was shot), or while its file was being
    fetched (the shot is on the body: fetched once the camera is back, as the burst's journal names it)."""
    plan = FaultPlan(**{call: [0, 0, code]})  # FAKE: the camera drops off the bus at frame 3
    cam = faulty(vcam, plan)
    with pytest.raises(BurstError) as err:
        cam.burst(5, tmp_path / "s", "s")
    record = err.value.record
    assert record.error == str(err.value)
    assert "frame 3 of 5" in record.error and "reconnected" in record.error
    assert f"{kept} frames kept" in record.error
    names = [f"s_0{i}.dng" for i in range(1, kept + 1)]
    assert [p.name for p in record.frames] == names
    assert [p.read_bytes() for p in record.frames] == vcam.shown[:kept]
    assert sorted(p.name for p in record.stack.iterdir()) == names  # no temp, no journal left
    assert plan.created == 2 and cam.connected  # a new gp.Camera, never exit+init on the old one
    again = cam.burst(2, tmp_path / "t", "t")  # and the next burst works
    assert [p.read_bytes() for p in again.frames] == vcam.shown[-2:]
    cam.close()


@pytest.mark.slow
def test_a_camera_that_stays_gone_is_reported_and_found_again_later(vcam: VirtualCamera, tmp_path: Path) -> None:
    plan = FaultPlan(capture=[0, -52], init=[0] + [-52] * 30)  # FAKE: unplugged, stays away for a while
    cam = faulty(vcam, plan)
    with pytest.raises(BurstError, match=r"the camera is still gone; 1 frame kept"):
        cam.burst(3, tmp_path / "s", "s")
    assert not cam.connected
    with pytest.raises(CameraError, match="is gone"):
        cam.keep_alive()
    plan.faults["init"] = []  # plugged back in
    cam.keep_alive()
    assert cam.connected
    record = cam.burst(2, tmp_path / "t", "t")
    assert len(record.frames) == 2
    cam.close()


def test_keep_alive_notices_an_unplug_and_reconnects(vcam: VirtualCamera) -> None:
    plan = FaultPlan()
    cam = faulty(vcam, plan, settings={})
    cam.connect()
    plan.faults["get_single_config"] = [-52]  # FAKE: the status read finds the camera gone
    cam.keep_alive()
    assert plan.raised == [("get_single_config", -52)]
    assert plan.created == 2 and cam.connected
    cam.close()


@pytest.mark.slow
def test_unplugged_between_bursts_fails_the_lock_then_reconnects(vcam: VirtualCamera, tmp_path: Path) -> None:
    plan = FaultPlan()
    cam = faulty(vcam, plan)
    cam.burst(2, tmp_path / "a", "a")
    plan.faults["get_single_config"] = [-7]  # FAKE: the re-lock's first read finds the cable pulled
    with pytest.raises(BurstError, match=r"could not set 'aperture'.*USB I/O error.*reconnected$"):
        cam.burst(2, tmp_path / "b", "b")  # nothing was shot: no count of frames kept
    assert plan.created == 2 and cam.connected
    assert len(cam.burst(2, tmp_path / "c", "c").frames) == 2
    cam.close()
