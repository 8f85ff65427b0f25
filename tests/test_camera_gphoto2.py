"""The gphoto2 backend on libgphoto2's real virtual camera (ptp2 driver over the vusb iolib, no hardware)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import gphoto2 as gp
import numpy as np
import pytest

from medianscan.capture.camera import (
    BurstRecord,
    CameraError,
    CameraIdentity,
    list_cameras,
    open_camera,
)
from medianscan.capture.camera.freshness import CameraFile, Freshness, capture_time
from medianscan.capture.camera.gphoto2.backend import Gphoto2Camera
from medianscan.capture.camera.simulated import scene as simulated_scene
from medianscan.config.schema import CameraConfig
from medianscan.library.contents import SET_ASIDE, candidates
from medianscan.metadata import CameraInfo, Exposure
from medianscan.outputs.dng import write_dng
from tests.vcam import (
    INJECTED_EVENT_DELAY,
    MODEL,
    OPCODE_CAPTURE_COMPLETE,
    OPCODE_FILE_ADDED,
    PORT,
    SERIAL,
    VUSB,
    RewritingCamera,
    VirtualCamera,
    virtual_camera,
)


@pytest.fixture
def vcam(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[VirtualCamera]:
    with virtual_camera(tmp_path, monkeypatch) as cam:
        yield cam


def camera(vcam: VirtualCamera, **options: object) -> Gphoto2Camera:
    cfg = CameraConfig(backend="gphoto2", settle_seconds=0.5, reconnect_max_seconds=1.0)
    for key, value in options.items():
        setattr(cfg, key, value)
    return Gphoto2Camera(cfg, factory=lambda: RewritingCamera(vcam))


def values(cam: Gphoto2Camera) -> dict[str, str]:
    return {info.name: info.value for info in cam.describe()}


def camera_files(cam: Gphoto2Camera, folders: set[str]) -> set[str]:
    """Every file the camera still holds in `folders` (listed through libgphoto2)."""
    found = set()
    for folder in folders:
        listing = cam._cam.folder_list_files(folder)
        found |= {f"{folder}/{listing.get_name(i)}" for i in range(listing.count())}
    return found


def test_list_cameras_finds_the_virtual_camera(vcam: VirtualCamera) -> None:
    assert list_cameras() == [CameraIdentity(model=MODEL, port=PORT, serial=SERIAL)]


def test_open_camera_picks_the_gphoto2_backend_without_connecting(vcam: VirtualCamera) -> None:
    cam = open_camera(CameraConfig(backend="gphoto2"))
    assert isinstance(cam, Gphoto2Camera)
    assert not cam.connected
    with cam:
        assert cam.identity == CameraIdentity(MODEL, PORT, SERIAL)
    assert not cam.connected


def test_connect_selects_by_model_port_and_serial(vcam: VirtualCamera) -> None:
    cam = camera(vcam, model="d750", port=PORT, serial=SERIAL)
    assert cam.connect() == CameraIdentity(MODEL, PORT, SERIAL)
    cam.close()


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [("model", "EOS 5D", "model 'EOS 5D'"), ("port", "usb:002,009", "port"), ("serial", "123", "serial '123'")],
)
def test_connect_names_what_does_not_match(vcam: VirtualCamera, option: str, value: str, words: str) -> None:
    cam = camera(vcam, **{option: value})
    with pytest.raises(CameraError, match=words) as err:
        cam.connect()
    assert "Nikon DSC D750" in str(err.value)
    assert not cam.connected


def test_no_camera_says_how_to_connect_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # the wheel's real port drivers: this machine has no camera on USB
    monkeypatch.setenv("IOLIBS", str(VUSB.parent / "iolibs"))
    with pytest.raises(CameraError, match="no camera found: connect it by USB"):
        camera(VirtualCamera(tmp_path)).connect()
    assert list_cameras() == []


def test_missing_port_drivers_are_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IOLIBS", str(tmp_path))  # no drivers at all
    with pytest.raises(CameraError, match="libgphoto2 cannot look for cameras"):
        camera(VirtualCamera(tmp_path)).connect()


def test_lock_sets_and_reads_back_through_aliases(vcam: VirtualCamera) -> None:
    cam = camera(vcam, settings={"shutterspeed": "1/50", "aperture": "8", "capturetarget": "card"})
    assert cam.lock() == {"shutterspeed": "0.0200s", "aperture": "f/8", "capturetarget": "Memory card"}
    current = values(cam)
    assert (current["shutterspeed"], current["f-number"], current["capturetarget"]) == ("0.0200s", "f/8", "Memory card")
    # a second lock finds everything in place and changes nothing
    assert cam.lock()["aperture"] == "f/8"
    cam.close()


def test_close_restores_the_values_found_at_connect(vcam: VirtualCamera) -> None:
    cam = camera(vcam, settings={"shutterspeed": "0.005", "f-number": "f/11", "capturetarget": "sdram"})
    cam.connect()
    before = values(cam)
    cam.lock()
    assert values(cam)["f-number"] == "f/11"
    cam.close()
    cam.close()  # twice is harmless
    again = camera(vcam)
    again.connect()
    after = values(again)
    again.close()
    for name in ("shutterspeed", "f-number", "capturetarget"):
        assert after[name] == before[name]


def test_a_value_the_camera_does_not_offer_is_refused_with_its_choices(vcam: VirtualCamera) -> None:
    # the camera would silently snap 1/25 to 0.0500s: refuse before setting anything
    cam = camera(vcam, settings={"shutterspeed": "1/25"})
    with pytest.raises(CameraError, match=r"'shutterspeed' \(shutterspeed\) cannot be '1/25'.*0\.0200s"):
        cam.lock()
    assert values(cam)["shutterspeed"] == "0.0100s"
    cam.close()


def test_a_value_that_does_not_land_is_an_error(vcam: VirtualCamera) -> None:
    # the virtual camera accepts a write to its date property 5011 but keeps the old value
    cam = camera(vcam, settings={"5011": "hello"}, settle_seconds=0.2)
    with pytest.raises(CameraError, match=r"'5011' \(5011\) did not take 'hello'.*still reads '\d{8}T\d{6}'"):
        cam.lock()
    cam.close()


def test_a_missing_setting_is_an_error(vcam: VirtualCamera) -> None:
    cam = camera(vcam, settings={"aperture": "f/4", "iso": "100"})
    hint = r"(; did you mean|; `medianscan camera show` lists)"  # the body's nearest names, or where to find them
    with pytest.raises(CameraError, match=r"has no setting 'iso' \(tried 'iso'.*\)" + hint):
        cam.lock()
    cam.close()


def test_a_missing_optional_setting_is_a_warning(vcam: VirtualCamera, caplog: pytest.LogCaptureFixture) -> None:
    cam = camera(vcam, settings={"aperture": "f/4", "iso": "100"}, optional=["iso"])
    with caplog.at_level(logging.WARNING):
        assert cam.lock() == {"aperture": "f/4"}
    assert "has no setting 'iso'" in caplog.text
    cam.close()


def check_frames(record: BurstRecord, vcam: VirtualCamera, n: int, stem: str) -> None:
    assert [p.name for p in record.frames] == [f"{stem}_{i:02d}.dng" for i in range(1, n + 1)]
    contents = [p.read_bytes() for p in record.frames]
    assert contents == vcam.shown[-n:]  # byte for byte what the camera captured, in order
    assert len(set(contents)) == n  # a new frame each shot
    assert record.sizes == {p.name: vcam.size for p in record.frames}
    assert len(record.per_frame_seconds) == n
    assert record.error is None
    assert not [p for p in record.stack.iterdir() if p.name.startswith(".")]  # no temp left behind


@pytest.mark.slow
def test_burst_capture_downloads_every_frame_then_deletes_it(vcam: VirtualCamera, tmp_path: Path) -> None:
    cam = camera(vcam, settings={"shutterspeed": "1/50", "aperture": "f/8"})
    record = cam.burst(5, tmp_path / "frame-001", "frame-001")
    check_frames(record, vcam, 5, "frame-001")
    assert record.settings == {"shutterspeed": "0.0200s", "aperture": "f/8"}
    assert record.camera == CameraIdentity(MODEL, PORT, SERIAL)
    assert len(set(record.camera_files)) == 5
    folders = {f.rsplit("/", 1)[0] for f in record.camera_files}
    assert not camera_files(cam, folders) & set(record.camera_files)  # deleted from the camera
    manifest = record.to_json()
    assert manifest["frames"] == [p.name for p in record.frames]
    assert manifest["settings"] == record.settings
    cam.close()


def test_burst_keeps_files_on_the_camera_when_told(vcam: VirtualCamera, tmp_path: Path) -> None:
    cam = camera(vcam, delete_from_camera=False)
    record = cam.burst(3, tmp_path / "s", "s")
    folders = {f.rsplit("/", 1)[0] for f in record.camera_files}
    assert set(record.camera_files) <= camera_files(cam, folders)
    cam.close()


@pytest.mark.slow
def test_burst_trigger_collects_the_files_announced_by_events(vcam: VirtualCamera, tmp_path: Path) -> None:
    cam = camera(vcam, strategy="trigger", settings={"aperture": "f/5.6"})
    first = cam.burst(3, tmp_path / "a", "a")
    check_frames(first, vcam, 3, "a")
    second = cam.burst(2, tmp_path / "b", "b")  # the same session carries on
    check_frames(second, vcam, 2, "b")
    assert not set(first.camera_files) & set(second.camera_files)
    cam.close()


def pending(cam: Gphoto2Camera) -> list[int]:
    kinds: list[int] = []
    while True:
        kind, _ = cam._cam.wait_for_event(1)
        if kind == gp.GP_EVENT_TIMEOUT:
            return kinds
        kinds.append(kind)


@pytest.mark.parametrize("strategy", ["capture", "trigger"])
def test_stray_events_before_a_burst_are_drained_not_taken_for_frames(
    vcam: VirtualCamera, tmp_path: Path, strategy: str, caplog: pytest.LogCaptureFixture
) -> None:
    cam = camera(vcam, strategy=strategy)
    cam.connect()
    wrapper = cam._cam
    wrapper.inject(OPCODE_FILE_ADDED)  # a file added by the body's own shutter button
    wrapper.inject(OPCODE_CAPTURE_COMPLETE)
    time.sleep(INJECTED_EVENT_DELAY)  # they are queued inside libgphoto2, out of sight: there before the burst
    with caplog.at_level(logging.WARNING):
        record = cam.burst(3, tmp_path / "s", "s")
    check_frames(record, vcam, 3, "s")
    assert "outside a burst" in caplog.text and "left on the camera" in caplog.text
    left = pending(cam)
    assert gp.GP_EVENT_FILE_ADDED not in left and gp.GP_EVENT_CAPTURE_COMPLETE not in left
    cam.close()


def test_a_jpeg_only_camera_still_gives_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with virtual_camera(tmp_path, monkeypatch, kind="jpeg") as vcam:
        cam = camera(vcam)
        with caplog.at_level(logging.WARNING):
            record = cam.burst(2, tmp_path / "j", "j")
        assert [p.name for p in record.frames] == ["j_01.jpg", "j_02.jpg"]
        assert [p.read_bytes() for p in record.frames] == vcam.shown
        assert "is not shooting RAW" in caplog.text
        cam.close()


def test_keep_alive_on_a_healthy_camera(vcam: VirtualCamera) -> None:
    cam = camera(vcam)
    cam.keep_alive()  # connects
    identity = cam.identity
    cam.keep_alive()
    assert cam.connected and cam.identity == identity
    cam.close()


def test_describe_lists_settings_with_choices_and_read_only(vcam: VirtualCamera) -> None:
    cam = camera(vcam)
    infos = {info.name: info for info in cam.describe()}
    assert infos["f-number"].key == "aperture"
    assert "f/8" in infos["f-number"].choices
    assert infos["capturetarget"].choices == ["Internal RAM", "Memory card"]
    assert infos["imagesize"].readonly and not infos["shutterspeed"].readonly
    assert infos["shutterspeed"].section == "capturesettings"
    cam.close()


# --- a manual lens: an aperture widget with no choices ----------------------------------------------------------


class ChoicelessWidget:
    """FAKE: with a manual or adapted lens some bodies report the aperture as a radio widget with no choices,
    and reading its value is reported to crash libgphoto2 (NegPy #617). The virtual camera's f-number always
    has choices, so this stands in for that one widget; reading it fails the test loudly."""

    def __init__(self, name: str) -> None:
        self.name = name

    def get_type(self) -> int:
        return int(gp.GP_WIDGET_RADIO)

    def count_choices(self) -> int:
        return 0

    def get_name(self) -> str:
        return self.name

    def get_label(self) -> str:
        return "F-Number"

    def get_readonly(self) -> int:
        return 0

    def get_value(self) -> str:
        raise AssertionError("read the value of a choice widget without choices (libgphoto2 would crash)")

    def get_choice(self, index: int) -> str:
        raise AssertionError("read a choice of a widget without choices")


class _TreeWithChoiceless:
    """A real config widget tree in which the f-number widget is the FAKE above (every other widget real)."""

    def __init__(self, widget: object) -> None:
        self._widget = widget

    def __getattr__(self, name: str) -> object:
        return getattr(self._widget, name)

    def get_child(self, index: int) -> object:
        child = self._widget.get_child(index)  # type: ignore[attr-defined]
        if child.get_name() == "f-number":
            return ChoicelessWidget("f-number")
        return _TreeWithChoiceless(child)


class ManualLensCamera(RewritingCamera):
    """The real virtual camera, with its aperture reported as a manual lens's (FAKE: that one widget only)."""

    def get_single_config(self, name: str) -> object:
        return ChoicelessWidget(name) if name == "f-number" else self._cam.get_single_config(name)

    def get_config(self) -> object:
        return _TreeWithChoiceless(self._cam.get_config())


def manual_lens(vcam: VirtualCamera, **options: object) -> Gphoto2Camera:
    cfg = CameraConfig(backend="gphoto2", settle_seconds=0.5, reconnect_max_seconds=1.0)
    for key, value in options.items():
        setattr(cfg, key, value)
    return Gphoto2Camera(cfg, factory=lambda: ManualLensCamera(vcam))


def test_a_manual_lens_aperture_is_shown_never_read(vcam: VirtualCamera) -> None:
    cam = manual_lens(vcam)
    cam.connect()
    shown = {info.name: info for info in cam.describe()}
    assert shown["f-number"].value == "no choices (manual lens?)" and shown["f-number"].choices == []
    assert shown["shutterspeed"].value  # the rest of the body reads as usual
    cam.close()


def test_locking_the_aperture_of_a_manual_lens_is_a_clear_error(vcam: VirtualCamera) -> None:
    cam = manual_lens(vcam, settings={"aperture": "8"})
    with pytest.raises(CameraError, match=r"'aperture' \(f-number\) offers no choices .*a manual or adapted lens"):
        cam.lock()
    cam.close()


def test_an_optional_aperture_on_a_manual_lens_is_a_warning(
    vcam: VirtualCamera, caplog: pytest.LogCaptureFixture
) -> None:
    cam = manual_lens(vcam, settings={"aperture": "8", "shutterspeed": "1/50"}, optional=["aperture"])
    with caplog.at_level(logging.WARNING):
        locked = cam.lock()
    assert "aperture" not in locked and "shutterspeed" in locked
    assert "offers no choices" in caplog.text and "skipped as it is optional" in caplog.text
    cam.close()


class InjectingCamera(RewritingCamera):
    """The real virtual camera, told (through its own 'opcode' widget, as a press of the body's shutter would)
    to add a file just before the burst's first shot: another picture announced among this burst's files."""

    injected = False

    def _before_shot(self) -> bytes:
        if not self.injected:
            self.injected = True
            self.inject(OPCODE_FILE_ADDED)
        return super()._before_shot()


@pytest.mark.parametrize("strategy", ["capture", "trigger"])
def test_a_file_the_bursts_trigger_did_not_make_is_never_taken_as_its_frame(
    vcam: VirtualCamera, tmp_path: Path, strategy: str
) -> None:
    """A file added just before the first shot (GPH_0098, as a press on the body would): libgphoto2's capture()
    waits for its own object and never announces it; trigger + events announce it with the shot's, and it is set
    aside, kept and named, for the older file it is. Either way the frames are the burst's three shots."""
    cfg = CameraConfig(backend="gphoto2", settle_seconds=0.5, reconnect_max_seconds=1.0)
    cfg.strategy = strategy  # type: ignore[assignment]
    cam = Gphoto2Camera(cfg, factory=lambda: InjectingCamera(vcam))
    record = cam.burst(3, tmp_path / "s", "s")
    check_frames(record, vcam, 3, "s")
    taken = [
        record.camera_files[i] for i in range(len(record.camera_files)) if "GPH_0098" not in record.camera_files[i]
    ]
    assert [f.rsplit("/", 1)[1] for f in taken] == ["GPH_0099.JPG", "GPH_0101.JPG", "GPH_0103.JPG"]
    if strategy == "trigger":
        assert [left.path.name for left in record.set_aside] == ["GPH_0098.JPG"]
        assert "numbered before a frame already taken" in record.set_aside[0].reason
        assert (tmp_path / "s" / SET_ASIDE / "GPH_0098.JPG").is_file()  # kept, not lost
        assert record.to_json()["set_aside"] == [
            {"file": f"{SET_ASIDE}/GPH_0098.JPG", "reason": record.set_aside[0].reason}
        ]
    else:
        assert record.set_aside == [] and not any("GPH_0098" in f for f in record.camera_files)
    assert [p.name for p in candidates(tmp_path / "s")] == ["s_01.dng", "s_02.dng", "s_03.dng"]  # never blended
    cam.close()


def test_a_file_taken_well_before_its_trigger_is_stale_once_the_cameras_clock_is_known(tmp_path: Path) -> None:
    """The A7 III's leftover: the body hands over the previous negative's last frame at the next trigger. Its EXIF
    capture time (read from the file's head, as downloaded) is seconds older than the trigger that brought it."""
    scene = np.zeros((64, 96), dtype=np.uint16)
    layout = simulated_scene.layout(64, 96)

    def shot(name: str, taken: str) -> CameraFile:
        path = tmp_path / name
        write_dng(path, scene, layout, CameraInfo("Sony", "ILCE-7M3"), Exposure(taken=taken))
        return CameraFile("/store/DCIM/100MSDCF", name, capture_time(path.read_bytes()[:65536]))

    fresh = Freshness()
    first = shot("DSC00010.ARW", "2026:12:04 10:00:00")
    t0 = first.taken or 0.0
    host = t0 + 3600.0  # the host's clock runs an hour ahead of the camera's: only the offset matters
    assert fresh.stale(first, host) is None
    fresh.took(first, host)
    assert fresh.stale(shot("DSC00011.ARW", "2026:12:04 10:00:01"), host + 1.2) is None
    leftover = shot("DSC00012.ARW", "2026:12:04 10:00:02")  # shot with the last negative, handed over 9 s later
    assert "taken 9 s before its trigger" in (fresh.stale(leftover, host + 11.0) or "")
    assert "already taken" in (fresh.stale(first, host + 20.0) or "")
