"""The burst engine: each strategy on the simulated body (its timing model in real time) and on libgphoto2's
virtual camera, what overlaps what, the quirks, and what a burst cut off leaves behind.

Timings are not asserted here (bench/bench_burst.py measures them against the model's bound); what is asserted
is the order of what the engine asks of the body, read from a log of its calls: with `trigger` the next shot is
fired before the last one's file is fetched, with `capture` it is not, and a file is deleted from the body only
after its frame is on disk.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gphoto2 as gp
import pytest
import rawpy

from medianscan.capture.camera import BurstError, CameraError
from medianscan.capture.camera.burst.journal import left_on_body
from medianscan.capture.camera.burst.link import Announced, BodyEvent, Download
from medianscan.capture.camera.gphoto2.backend import Gphoto2Camera
from medianscan.capture.camera.simulated.body import SimulatedBody
from medianscan.capture.camera.simulated.camera import SimulatedCamera
from medianscan.capture.camera.simulated.timing import PRESETS, timing_of
from medianscan.config.schema import CameraConfig, QuirkConfig
from medianscan.library.contents import BURST_JOURNAL as JOURNAL
from tests.vcam import RewritingCamera, VirtualCamera, virtual_camera


class Recording:
    """The simulated body, every call the engine makes on it logged with the time (a real part, watched)."""

    def __init__(self, body: SimulatedBody) -> None:
        self.body = body
        self.calls: list[tuple[str, str, float]] = []  # (call, file name or "", monotonic time)
        self.on_card_when_named: list[int] = []

    def _log(self, call: str, name: str = "") -> None:
        self.calls.append((call, name, time.monotonic()))

    def trigger(self) -> None:
        self._log("trigger")
        self.body.trigger()

    def capture(self) -> Announced:
        self._log("capture")
        file = self.body.capture()
        self._log("named", file.name)
        return file

    def start_native(self, frames: int) -> None:
        self._log("native")
        self.body.start_native(frames)

    def next_event(self, seconds: float) -> BodyEvent:
        event = self.body.next_event(seconds)
        if event.file is not None:
            self._log("named", event.file.name)
            self.on_card_when_named.append(len(self.body.listing(event.file.folder)))
        return event

    def download(self, file: Announced) -> Download:
        self._log("download", file.name)
        return self.body.download(file)

    def delete(self, file: Announced) -> None:
        self._log("delete", file.name)
        self.body.delete(file)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.body, name)

    def first(self, call: str, name: str = "") -> int:
        return next(i for i, (c, n, _) in enumerate(self.calls) if c == call and (not name or n == name))

    def named(self) -> list[str]:
        return [n for c, n, _ in self.calls if c == "named"]


def simulated(tmp_path: Path, **timing: Any) -> tuple[SimulatedCamera, Recording]:
    cfg = CameraConfig(backend="simulated")
    cfg.simulated.width, cfg.simulated.height = 128, 96
    cfg.simulated.card = tmp_path / "card"
    for key, value in timing.items():
        if key in ("strategy", "quirks", "delete_from_camera", "keep_jpeg", "extra_shots"):
            setattr(cfg, key, value)
        elif key == "dead_after_frames":
            cfg.simulated.dead_after_frames = value
        else:
            setattr(cfg.simulated.timing, key, value)
    cam = SimulatedCamera(cfg, watch=Recording)
    cam.connect()
    recording = cam.link
    assert isinstance(recording, Recording)
    return cam, recording


def frame_numbers(frames: list[Path]) -> list[int]:
    """The shot each frame is, as the simulated body wrote it into the DNG ("simulated negative 1, frame k")."""
    found = []
    for path in frames:
        with rawpy.imread(str(path)):
            pass  # a whole raw
        text = path.read_bytes()
        marker = text.find(b", frame ")
        found.append(int(text[marker + 8 : marker + 11].split(b"\x00")[0]))
    return found


# --- the simulated body -------------------------------------------------------------------------------------


def test_trigger_fires_the_next_shot_before_fetching_the_last_and_deletes_only_what_is_on_disk(
    tmp_path: Path,
) -> None:
    cam, body = simulated(
        tmp_path, strategy="trigger", trigger_seconds=0.05, file_megabytes=2, link_megabytes_per_second=100
    )
    record = cam.burst(5, tmp_path / "s", "s")
    names = body.named()
    assert [p.name for p in record.frames] == [f"s_0{i}.dng" for i in range(1, 6)]
    assert frame_numbers(record.frames) == [1, 2, 3, 4, 5]  # in shot order
    for k in range(4):  # shot k+2 is fired before shot k+1's file is fetched: the download overlaps the exposure
        assert (
            body.first("trigger")
            <= [i for i, (c, _, _) in enumerate(body.calls) if c == "trigger"][k + 1]
            < body.first("download", names[k])
        )
    for name, frame in zip(names, record.frames, strict=True):
        assert body.first("download", name) < body.first("delete", name)
        assert frame.is_file()
    assert list((tmp_path / "card").iterdir()) == []  # none left on the body
    assert not (tmp_path / "s" / JOURNAL).exists()
    assert record.strategy.startswith("trigger:")
    cam.close()


def test_capture_waits_for_each_shot_and_native_lets_the_body_shoot_on_its_own(tmp_path: Path) -> None:
    cam, body = simulated(tmp_path, strategy="capture", trigger_seconds=0.03)
    record = cam.burst(3, tmp_path / "c", "c")
    calls = [c for c, _, _ in body.calls if c in ("capture", "download")]
    assert calls == ["capture", "download"] * 3
    assert frame_numbers(record.frames) == [1, 2, 3]
    cam.close()

    cam, body = simulated(
        tmp_path / "n", native_burst=True, trigger_seconds=0.03, shot_seconds=0.03, file_megabytes=1,
        link_megabytes_per_second=50,
    )  # fmt: skip
    record = cam.burst(6, tmp_path / "n" / "s", "s")
    assert [c for c, _, _ in body.calls].count("native") == 1 and "trigger" not in [c for c, _, _ in body.calls]
    assert frame_numbers(record.frames) == [1, 2, 3, 4, 5, 6]
    assert record.strategy.startswith("native:")  # auto: the body's own burst, when it has one
    assert list((tmp_path / "n" / "card").iterdir()) == []
    cam.close()


def test_a_full_buffer_holds_the_body_and_the_burst_still_gets_every_frame(tmp_path: Path) -> None:
    """A continuous burst into a 3-raw buffer over a slow link: the body stops while 3 wait, the engine frees
    them as they are written, and never more than 3 are on the card."""
    cam, body = simulated(
        tmp_path, native_burst=True, trigger_seconds=0.02, shot_seconds=0.01, buffer_frames=3, file_megabytes=1,
        link_megabytes_per_second=20,
    )  # fmt: skip
    record = cam.burst(8, tmp_path / "s", "s")
    assert frame_numbers(record.frames) == list(range(1, 9))
    assert max(body.on_card_when_named) <= 3
    cam.close()


def test_a_quirks_drain_after_each_shot_and_a_config_rule_over_the_table(tmp_path: Path) -> None:
    timing = timing_of(CameraConfig().simulated)
    assert PRESETS["fuji-x-t5"][0].model.startswith("Fujifilm X-T5")
    rule = QuirkConfig(model="simulated", after_shot_seconds=0.15, overlap=False, note="slow to settle")
    cam, body = simulated(tmp_path, strategy="auto", trigger_seconds=0.02, quirks=[rule])
    record = cam.burst(3, tmp_path / "s", "s")
    assert "quirk: slow to settle" in record.strategy and timing.trigger_seconds == 0.0
    triggers = [t for c, _, t in body.calls if c == "trigger"]
    named = [t for c, _, t in body.calls if c == "named"]
    assert all(nxt - name >= 0.15 for name, nxt in zip(named, triggers[1:], strict=False))  # the drain
    for k, name in enumerate(body.named()[:-1]):  # overlap: false: fetched before the next shot is fired
        assert body.first("download", name) < [i for i, (c, _, _) in enumerate(body.calls) if c == "trigger"][k + 1]
    cam.close()

    forced = QuirkConfig(model="simulated", strategy="capture")
    cam, _ = simulated(tmp_path / "f", strategy="auto", quirks=[forced])
    assert cam.burst(2, tmp_path / "f" / "s", "s").strategy.startswith("capture: from camera.quirks")
    cam.close()


def test_asking_for_what_a_body_lacks_is_one_sentence(tmp_path: Path) -> None:
    cam, _ = simulated(tmp_path, strategy="native")
    with pytest.raises(BurstError, match=r"camera.strategy is native, but the camera \(medianscan simulated camera"):
        cam.burst(2, tmp_path / "s", "s")
    cam.close()


def test_what_a_cut_off_burst_left_on_the_body_is_fetched_and_what_is_gone_is_named(tmp_path: Path) -> None:
    """The body drops off the bus mid-burst with a shot named and not fetched: once back, the shot is fetched
    into the stack as the journal names it; a journal naming a file the body no longer holds says so."""
    cam, _ = simulated(tmp_path, strategy="trigger", trigger_seconds=0.05, file_megabytes=1,
                       link_megabytes_per_second=10, dead_after_frames=3)  # fmt: skip
    with pytest.raises(BurstError, match=r"before frame 4 of 5.*reconnected; 3 frames kept") as err:
        cam.burst(5, tmp_path / "s", "s")
    assert frame_numbers(err.value.record.frames) == [1, 2, 3]
    assert not (tmp_path / "s" / JOURNAL).exists() and list((tmp_path / "card").iterdir()) == []
    cam.close()

    stack = tmp_path / "t"
    stack.mkdir()
    (stack / JOURNAL).write_text('{"folder": "/store_00010001/DCIM/100SIMUL", "name": "SIM_0042.DNG"}\n')
    assert [left.file.name for left in left_on_body(stack)] == ["SIM_0042.DNG"]
    cam, _ = simulated(tmp_path / "u")
    found = cam.fetch_left(stack, "t", 3)
    assert found.frames == [] and found.gone == ["/store_00010001/DCIM/100SIMUL/SIM_0042.DNG"]
    assert "1 named by the camera were gone from it" in found.said()
    cam.close()


def test_a_shot_cut_off_mid_write_by_a_dying_host_is_not_on_the_card_at_the_next_connect(tmp_path: Path) -> None:
    """The simulated body writes each shot to its card atomically, in the host's process: a `kill -9` mid-write
    leaves a temp named for the dead process. A real body never shows a half-written shot, so at power on the
    simulated one drops it (and not a temp whose writer still runs), numbering on from the whole shots."""
    card = tmp_path / "card"
    card.mkdir()
    (card / "SIM_0002.DNG").write_bytes(b"a whole shot")
    dead = subprocess.Popen(["true"])
    dead.wait()
    cut_off = card / f".SIM_0003.DNG.{dead.pid}.part"
    cut_off.write_bytes(b"half a shot")
    running = card / f".SIM_0004.DNG.{os.getppid()}.part"
    running.write_bytes(b"still being written")
    cam, body = simulated(tmp_path, strategy="trigger", trigger_seconds=0.01)
    assert not cut_off.exists() and running.exists()
    assert body.listing("/store_00010001/DCIM/100SIMUL") == ["SIM_0002.DNG"]
    running.unlink()
    record = cam.burst(1, tmp_path / "s", "s")
    assert [p.name for p in record.frames] == ["s_01.dng"] and body.named() == ["SIM_0003.DNG"]
    assert sorted(p.name for p in card.iterdir()) == ["SIM_0002.DNG"]  # the new shot fetched and deleted
    cam.close()


# --- libgphoto2's virtual camera ------------------------------------------------------------------------------


@pytest.fixture
def vcam(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[VirtualCamera]:
    with virtual_camera(tmp_path, monkeypatch) as cam:
        yield cam


@pytest.mark.parametrize("strategy", ["auto", "capture", "trigger"])
def test_every_strategy_the_virtual_camera_supports_gives_the_shots_in_order_and_leaves_none(
    vcam: VirtualCamera, tmp_path: Path, strategy: str
) -> None:
    cfg = CameraConfig(backend="gphoto2", settle_seconds=0.5, strategy=strategy)  # type: ignore[arg-type]
    cam = Gphoto2Camera(cfg, factory=lambda: RewritingCamera(vcam))
    record = cam.burst(6, tmp_path / "s", "s")
    assert [p.read_bytes() for p in record.frames] == vcam.shown  # byte for byte, in shot order, none stale
    assert record.set_aside == [] and len(set(record.camera_files)) == 6
    folders = {f.rsplit("/", 1)[0] for f in record.camera_files}
    listed = set()
    for folder in folders:
        listing = cam._cam.folder_list_files(folder)
        listed |= {listing.get_name(i) for i in range(listing.count())}
    assert not listed  # none left on the body
    expected = "trigger" if strategy == "auto" else strategy  # no burstnumber, no remote release: trigger
    assert record.strategy.startswith(f"{expected}:")
    cam.close()


def test_the_virtual_camera_has_no_host_started_burst_and_says_so(vcam: VirtualCamera, tmp_path: Path) -> None:
    cam = Gphoto2Camera(CameraConfig(backend="gphoto2", strategy="native"), factory=lambda: RewritingCamera(vcam))
    with pytest.raises(CameraError, match=r"no host-started continuous burst that libgphoto2 drives \(no burstnumber"):
        cam.burst(2, tmp_path / "s", "s")
    cam.close()
    assert gp.GP_OPERATION_TRIGGER_CAPTURE  # the probe reads the driver's own abilities


@pytest.mark.parametrize("strategy", ["capture", "trigger", "native"])
@pytest.mark.parametrize("keep_jpeg", [False, True])
def test_raw_and_jpeg_pairs_give_the_raw_as_the_frame_whichever_is_named_first(
    tmp_path: Path, strategy: str, keep_jpeg: bool
) -> None:
    """The simulated body set to RAW + JPEG names each shot's JPEG before its raw, as Sony bodies do: the raw is
    the frame; the JPEG is kept beside it as <frame>_NN.jpg only with keep_jpeg, and never left on the body."""
    cam, _ = simulated(tmp_path, strategy=strategy, keep_jpeg=keep_jpeg, native_burst=True, trigger_seconds=0.03,
                       shot_seconds=0.03)  # fmt: skip
    cam.cfg.settings = {"imageformat": "RAW + JPEG"}
    record = cam.burst(4, tmp_path / "s", "s")
    assert [p.name for p in record.frames] == [f"s_0{i}.dng" for i in range(1, 5)]
    assert frame_numbers(record.frames) == [1, 2, 3, 4]
    assert [p.name for p in record.jpegs] == ([f"s_0{i}.jpg" for i in range(1, 5)] if keep_jpeg else [])
    assert all(p.read_bytes()[:2] == b"\xff\xd8" for p in record.jpegs)
    assert list((tmp_path / "card").iterdir()) == [] and record.set_aside == []
    cam.close()


def test_a_jpeg_only_body_gives_its_jpegs_as_frames(tmp_path: Path) -> None:
    cam, _ = simulated(tmp_path, strategy="trigger", trigger_seconds=0.02)
    cam.cfg.settings = {"imageformat": "JPEG Fine"}
    record = cam.burst(3, tmp_path / "s", "s")
    assert [p.name for p in record.frames] == ["s_01.jpg", "s_02.jpg", "s_03.jpg"]
    cam.close()
