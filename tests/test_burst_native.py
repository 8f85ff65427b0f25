"""The two host-started continuous bursts libgphoto2's ptp2 driver offers, driven by the burst engine through
capture.camera.gphoto2.link: Canon's remote release held with a continuous drive mode, Nikon's burstnumber with a
burst capture mode.

FAKE: libgphoto2's virtual camera has neither widget (it is a generic PTP body), and no Canon or Nikon body is
attached here. `Body` below stands in for the ptp2 driver as its sources describe these calls (camlibs/ptp2
config.c and library.c): the widgets with the choices libgphoto2 2.5.34 names, FILE_ADDED per frame while the
release is held, Nikon's capture returning the burst's last file with the others in the folder listing. Everything
else is the real code: the link, the engine, the writer, freshness and the journal.

Then the simulated body's own continuous burst (real engine, real body, no fake): held until the engine lets go,
then a random 0-3 shots late, as a real body's release is; back-to-back bursts, some with the host's CPUs busy.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gphoto2 as gp
import pytest

from medianscan.capture.camera.burst.engine import BurstEngine
from medianscan.capture.camera.burst.enough import Fixed
from medianscan.capture.camera.burst.quirks import Quirk
from medianscan.capture.camera.freshness import Freshness
from medianscan.capture.camera.gphoto2.link import Gphoto2Link
from medianscan.capture.camera.gphoto2.settings import Gphoto2Settings
from medianscan.config.schema import CameraConfig
from medianscan.library.contents import SPARES
from medianscan.records import BurstRecord
from tests.test_burst import frame_numbers, simulated
from tests.vcam import tiny_dng

FOLDER = "/store_00010001/DCIM/100CANON"


@dataclass
class Widget:
    """A radio widget as python-gphoto2 presents one."""

    name: str
    value: str
    choices: list[str]

    def get_type(self) -> int:
        return int(gp.GP_WIDGET_RADIO)

    def get_value(self) -> str:
        return self.value

    def set_value(self, value: object) -> None:
        assert str(value) in self.choices, (self.name, value)
        self.value = str(value)

    def count_choices(self) -> int:
        return len(self.choices)

    def get_choice(self, i: int) -> str:
        return self.choices[i]

    def get_readonly(self) -> int:
        return 0


@dataclass
class Listing:
    names: list[str]

    def count(self) -> int:
        return len(self.names)

    def get_name(self, i: int) -> str:
        return self.names[i]


@dataclass
class FilePath:
    folder: str
    name: str


@dataclass
class Body:
    """FAKE ptp2 body (see the module's docstring)."""

    widgets: dict[str, Widget]
    shot_seconds: float = 0.01
    files: dict[str, bytes] = field(default_factory=dict)
    events: deque[tuple[int, Any]] = field(default_factory=deque)
    log: list[str] = field(default_factory=list)
    counter: int = 100
    _held: threading.Event = field(default_factory=threading.Event)

    def _shoot(self) -> str:
        self.counter += 1
        name = f"IMG_{self.counter:04d}.CR2"
        self.files[name] = tiny_dng(self.counter)
        return name

    def get_abilities(self) -> Any:
        return type("Abilities", (), {"operations": gp.GP_OPERATION_TRIGGER_CAPTURE | gp.GP_OPERATION_CAPTURE_IMAGE})

    def get_single_config(self, name: str) -> Widget:
        if name not in self.widgets:
            raise gp.GPhoto2Error(gp.GP_ERROR_BAD_PARAMETERS)
        return self.widgets[name]

    def set_single_config(self, name: str, widget: Widget) -> None:
        self.log.append(f"{name}={widget.value}")
        if name == "eosremoterelease" and widget.value.startswith("Press Full"):
            assert self.widgets["drivemode"].value.startswith("Continuous")
            self._held.set()
            threading.Thread(target=self._hold, daemon=True).start()
        if name == "eosremoterelease" and widget.value == "Release Full":
            self._held.clear()

    def _hold(self) -> None:
        while self._held.is_set():  # the shutter runs while the release is held
            name = self._shoot()
            self.events.append((gp.GP_EVENT_FILE_ADDED, FilePath(FOLDER, name)))
            time.sleep(self.shot_seconds)

    def capture(self, kind: int) -> FilePath:
        del kind
        frames = int(self.widgets["burstnumber"].value) if self.widgets["capturemode"].value == "Burst" else 1
        names = [self._shoot() for _ in range(frames)]
        return FilePath(FOLDER, names[-1])

    def wait_for_event(self, ms: int) -> tuple[int, Any]:
        deadline = time.monotonic() + ms / 1000
        while not self.events and time.monotonic() < deadline:
            time.sleep(0.001)
        return self.events.popleft() if self.events else (gp.GP_EVENT_TIMEOUT, None)

    def file_get(self, folder: str, name: str, kind: int) -> Any:
        data = self.files[name]
        return type("CameraFile", (), {"get_data_and_size": lambda self: data})()

    def file_delete(self, folder: str, name: str) -> None:
        del self.files[name]

    def folder_list_files(self, folder: str) -> Listing:
        return Listing(sorted(self.files))

    def file_get_info(self, folder: str, name: str) -> None:
        if name not in self.files:
            raise gp.GPhoto2Error(gp.GP_ERROR_FILE_NOT_FOUND)


class Session:
    """What the link and the settings use of a Gphoto2Session: the camera, its calls, where it is."""

    def __init__(self, cam: Body) -> None:
        self.cam = cam
        self.cfg = CameraConfig(backend="gphoto2")
        self.on_connect: list[Any] = []

    def call(self, fn: Any, *args: Any) -> Any:
        return fn(*args)

    def where(self) -> str:
        return "Canon EOS R8 on usb:001,002"

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def run(body: Body, tmp_path: Path, n: int) -> BurstRecord:
    session = Session(body)
    link = Gphoto2Link(session, Gphoto2Settings(session))  # type: ignore[arg-type]
    assert link.capabilities().native is not None
    record = BurstRecord(stack=tmp_path / "s")
    BurstEngine(link, session.cfg, Quirk(), Freshness()).run("native", Fixed(n), record, "s", 0.0)
    return record


def test_canons_release_is_held_in_continuous_drive_then_released_and_the_drive_mode_put_back(
    tmp_path: Path,
) -> None:
    release = ["None", "Press Half AF", "Press Full AF", "Press Half MF", "Press Full MF", "Release Half",
               "Release Full", "Release"]  # fmt: skip
    body = Body(
        {
            "eosremoterelease": Widget("eosremoterelease", "None", release),
            "drivemode": Widget("drivemode", "Single", ["Single", "Continuous high speed", "Continuous low speed"]),
        }
    )
    record = run(body, tmp_path, 6)
    assert [p.read_bytes() for p in record.frames] == [tiny_dng(k) for k in range(101, 107)]
    late = [s.path.read_bytes() for s in record.spares]  # shot before the release landed: spares, in order
    assert late == [tiny_dng(k) for k in range(107, 107 + len(late))]
    assert body.log[:2] == ["drivemode=Continuous high speed", "eosremoterelease=Press Full AF"]
    assert "eosremoterelease=Release Full" in body.log and body.log[-1] == "drivemode=Single"
    assert body.files == {}  # every frame, and any the body shot before the release landed, off the body


def test_nikons_burstnumber_shoots_the_burst_in_one_capture_and_every_frame_is_taken(tmp_path: Path) -> None:
    body = Body(
        {
            "capturemode": Widget("capturemode", "Single Shot", ["Single Shot", "Burst", "Timer"]),
            "burstnumber": Widget("burstnumber", "1", [str(k) for k in range(1, 100)]),
        }
    )
    body.events.append((gp.GP_EVENT_TIMEOUT, None))
    record = run(body, tmp_path, 5)
    assert [p.read_bytes() for p in record.frames] == [tiny_dng(k) for k in range(101, 106)]  # in shot order
    assert body.log[:2] == ["capturemode=Burst", "burstnumber=5"]
    assert body.log[-2:] == ["capturemode=Single Shot", "burstnumber=1"]  # put back for single shots
    assert body.files == {}


# --- the simulated body: a release held, let go late -----------------------------------------------------------


@contextlib.contextmanager
def cpus_busy(count: int = 2) -> Iterator[None]:
    """`count` busy-loop processes for as long as the block runs (the host's CPUs taken, as by a blend)."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


FAST = {"native_burst": True, "trigger_seconds": 0.03, "shot_seconds": 0.02, "file_megabytes": 1,
        "link_megabytes_per_second": 40, "late_shots": 3}  # fmt: skip


@pytest.mark.slow
def test_back_to_back_native_bursts_with_late_releases_keep_their_extra_shots_as_spares(tmp_path: Path) -> None:
    """Twelve 5-frame bursts in a row, the last six with both CPUs busy: each gets its 5 frames in shot order,
    each shot the body took past them is that burst's spare (in spares/, numbered on, named in the record and its
    manifest), nothing is set aside and nothing is left on the body for the next burst."""
    cam, body = simulated(tmp_path, strategy="native", **FAST)
    shots_before = 0
    for k in range(12):
        with cpus_busy() if k >= 6 else contextlib.nullcontext():
            record = cam.burst(5, tmp_path / f"s{k}", f"s{k}")
        took = body.shots_since_connect - shots_before
        shots_before = body.shots_since_connect
        assert frame_numbers(record.frames) == [1, 2, 3, 4, 5], k
        assert record.set_aside == [] and record.spares_deleted == []
        spares = sorted((tmp_path / f"s{k}" / SPARES).glob("*.dng")) if took > 5 else []
        assert [s.path for s in record.spares] == spares and len(spares) == took - 5
        assert [p.name for p in spares] == [f"s{k}_{n:02d}.dng" for n in range(6, took + 1)]
        assert frame_numbers(spares) == list(range(6, took + 1))  # the body's shots 6.. of this burst
        assert all("past the 5 frames asked for" in s.reason for s in record.spares)
        again = type(record).from_json(record.to_json(), record.stack)  # as the manifest keeps it
        assert again.spares == record.spares
        assert list((tmp_path / "card").iterdir()) == [], k  # none left for the next burst
    assert sum(body.late_taken) > 0 and len(body.late_taken) == 12  # the releases were late (seeded)
    cam.close()


def test_extra_shots_delete_deletes_them_from_the_body_unfetched_and_names_them(tmp_path: Path) -> None:
    cam, body = simulated(tmp_path, strategy="native", extra_shots="delete", **FAST)
    deleted: list[str] = []
    for k in range(4):
        record = cam.burst(4, tmp_path / f"s{k}", f"s{k}")
        assert frame_numbers(record.frames) == [1, 2, 3, 4]
        assert record.spares == [] and not (tmp_path / f"s{k}" / SPARES).exists()
        deleted += [p.rsplit("/", 1)[1] for p in record.spares_deleted]
        assert list((tmp_path / "card").iterdir()) == []
    assert deleted, "the seeded releases were late at least once"
    downloaded = {name for call, name, _ in body.calls if call == "download"}
    deletes = {name for call, name, _ in body.calls if call == "delete"}
    assert not set(deleted) & downloaded and set(deleted) <= deletes
    cam.close()


def test_a_continuous_burst_that_lacks_a_frame_fires_again_at_once(tmp_path: Path) -> None:
    """The body's 4th shot is a file the session has taken already (FAKE history: the session's freshness told
    so beforehand, as when a body hands an old file over again), and the release is not late: the body stops
    one frame short. The burst fires the body's burst again at once (no 30 s wait for a frame that cannot
    come) and ends with its 4 frames: shots 1, 2, 3 and 5."""
    cam, body = simulated(tmp_path, strategy="native", native_burst=True, trigger_seconds=0.05, shot_seconds=0.3,
                          late_shots=0)  # fmt: skip
    cam.freshness.taken.add("/store_00010001/DCIM/100SIMUL/SIM_0004.DNG")
    record = cam.burst(4, tmp_path / "s", "s")
    assert [c for c, _, _ in body.calls].count("native") == 2
    assert frame_numbers(record.frames) == [1, 2, 3, 5]
    assert [s.path.name for s in record.set_aside] == ["SIM_0004.DNG"] and record.spares == []
    assert list((tmp_path / "card").iterdir()) == []
    cam.close()
