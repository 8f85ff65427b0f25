"""A roll without hands: the rig advances the strip, live view finds each frame, a correcting move centres it, a
burst shoots it.

The simulated rig is the GRBL controller emulator (capture.rig.grbl_firmware) moving the simulated camera's strip,
spoken to by the same GrblRig a real port gets. Where a test needs hardware that is not here, a serial port, the
same emulator (and small Marlin and Arduino-sketch stand-ins) is served on a pseudo-terminal: a FAKE of the
hardware, opened by pyserial exactly as a USB controller would be. The truth the tests check against is the
strip's own geometry: where the film really was at each burst.
"""

from __future__ import annotations

import os
import re
import select
import threading
import time
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from medianscan.capture.camera.simulated.camera import SimulatedCamera
from medianscan.capture.camera.simulated.strip import Carriage, SimulatedStrip, strip_of
from medianscan.capture.events import Answer
from medianscan.capture.rig.finding import FrameFinder, decode
from medianscan.capture.rig.grbl import GrblRig
from medianscan.capture.rig.grbl_firmware import Faults, GrblFirmware
from medianscan.capture.rig.line import LineRig
from medianscan.capture.rig.marlin import MarlinRig
from medianscan.capture.rig.open import open_rig
from medianscan.capture.rig.port import RigError, SerialPort
from medianscan.capture.rig.roll_run import Resume, RollRun, RollSummary
from medianscan.config.schema import Config, RigConfig, StripConfig
from medianscan.library.manifest import State, read_manifest
from tests.daemon_thread import RunningDaemon, capture_config
from tests.sheet_stage import FEED_MM_PER_MINUTE, PREVIEW_FPS
from tests.waiting import wait_until

PICTURE_MM = 36.0
EXPOSED = [1, 2, 3, 5, 6, 7, 8]  # an 8-frame strip with frame 4 blank


def strip_config(tmp_path: Path, **strip: object) -> Config:
    cfg = capture_config(tmp_path / "library")
    cfg.camera.simulated.strip = StripConfig(**{"frames": 8, "slip": 0.05, "blank": [4], "seed": 3, "start_mm": 1.2,
                                                **strip})  # type: ignore[arg-type]  # fmt: skip
    cfg.rig.port = "simulated"
    cfg.rig.move_timeout_seconds = 3.0
    # the simulated rig and live view at a pace no test here is about (tests/sheet_stage says why; a rig's real pace
    # is bench/'s): a 38 mm advance in 0.13 s instead of 0.8, a settle's two previews 17 ms apart instead of 67
    cfg.rig.feed_mm_per_minute = FEED_MM_PER_MINUTE
    cfg.camera.simulated.preview_fps = PREVIEW_FPS
    return cfg


class Shots:
    """Where the film was at each burst (the truth), recorded as the simulated camera fires."""

    def __init__(self, strip: SimulatedStrip) -> None:
        self.strip = strip
        self.at: list[float] = []

    def frames(self) -> list[int | None]:
        return [self.strip.frame_at(p) for p in self.at]

    def worst_error(self) -> float:
        """The largest distance of a shot frame's centre from the view's, as a share of the picture's width."""
        return max(abs(p - self.strip.centre_of(k)) / PICTURE_MM for p, k in zip(self.at, self.frames(), strict=True)
                   if k is not None)  # fmt: skip


def record_shots(monkeypatch: pytest.MonkeyPatch, cfg: Config) -> Shots:
    strip = strip_of(cfg.camera.simulated)
    assert strip is not None
    shots = Shots(strip)
    real = SimulatedCamera.burst

    def burst(self: SimulatedCamera, *args: object, **kwargs: object) -> object:
        shots.at.append(strip.carriage.position())
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(SimulatedCamera, "burst", burst)  # the real burst runs: this only notes the position
    return shots


# --- the whole run, in the daemon --------------------------------------------------------------------------------


@pytest.mark.slow
def test_an_8_frame_strip_with_a_blank_and_slip_is_shot_once_each_centred_and_ends_by_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = strip_config(tmp_path)
    shots = record_shots(monkeypatch, cfg)
    with RunningDaemon(cfg, triggers=False) as running:
        answer = running.ask("scan-roll", timeout=300)
        assert answer.ok, answer.text
        assert re.match(r"roll run: 7 frames shot \(frame-001 to frame-007: strip frames 1, 2, 3, 5, 6, 7, 8\), 1 "
                        r"blank frame skipped \(strip frame 4\), \d+ corrections?, worst centring \d\.\d% of the "
                        r"picture's width in \d+ s; the strip ended$", answer.text), answer.text  # fmt: skip
        assert shots.frames() == EXPOSED  # each exposed frame once, in order; the blank one never
        assert shots.worst_error() <= 0.02, shots.at
        names = [f"frame-{i:03d}" for i in range(1, 8)]
        for name, strip_frame in zip(names, EXPOSED, strict=True):  # one blended stack per exposed frame
            stack = running.wait_for_state(name, State.BLENDED)
            manifest = read_manifest(stack)
            assert manifest.blend is not None and manifest.strip_frame == strip_frame
        assert sorted(s.name for s in running.daemon.library.stacks()) == names
        status = running.daemon.status()
        assert status["roll_run"] is None  # over


@pytest.mark.slow
def test_the_pedal_stops_a_run_between_frames_and_scan_roll_carries_on_without_shooting_a_frame_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = strip_config(tmp_path)
    shots = record_shots(monkeypatch, cfg)
    with RunningDaemon(cfg, triggers=False) as running:
        from concurrent.futures import Future

        reply: Future[Answer] = Future()
        running.daemon.hub.emit("scan-roll", "test", reply)
        wait_until(lambda: len(shots.at) >= 2, 60, "two frames shot")
        pedal: Future[Answer] = Future()
        running.daemon.hub.emit("capture", "footswitch", pedal)  # the pedal, during a run: it stops
        stop = pedal.result(5)
        assert stop.ok and stop.text.startswith("the roll run stops at its next step (now: "), stop.text
        first = reply.result(120)
        assert not first.ok and first.text.endswith("stopped: by the operator"), first.text
        assert running.ask("stop-roll").outcome == "ignored"  # none under way now
        again = running.ask("scan-roll", timeout=300)
        assert again.ok and again.text.endswith("the strip ended"), again.text
        assert shots.frames() == EXPOSED  # across both runs, each frame once
        assert shots.worst_error() <= 0.02


def test_without_a_rig_scan_roll_is_refused_with_the_fix(tmp_path: Path) -> None:
    cfg = capture_config(tmp_path / "library")
    with RunningDaemon(cfg, triggers=False) as running:
        answer = running.ask("scan-roll")
        assert not answer.ok and "no rig is configured: set rig.port" in answer.text
        assert running.daemon.library.stacks() == []


# --- faults, on the simulated rig: each stops the run with a sentence; what was shot stays; resumable ----------


class SimulatedEyes:
    """Live view and bursts of the simulated camera, as the camera thread gives them to a run."""

    def __init__(self, cfg: Config, root: Path, shots: Shots) -> None:
        self.camera = SimulatedCamera(cfg.camera)
        self.camera.connect()
        self.root, self.shots, self.n = root, shots, 0

    def preview(self) -> bytes | None:
        return self.camera.preview()

    def shoot(self, strip_frame: int) -> Answer:
        del strip_frame
        self.n += 1
        self.shots.at.append(self.shots.strip.carriage.position())
        record = self.camera.burst(3, self.root / f"s{self.n}", f"s{self.n}")
        return Answer(True, "capture", f"{len(record.frames)} frames", stack=f"s{self.n}")


@dataclass
class Roll:
    """A strip on the simulated rig, the simulated camera's eyes on it, and where each burst really was."""

    cfg: Config
    shots: Shots
    eyes: SimulatedEyes

    def run(self, faults: Faults | None = None, resume: Resume | None = None) -> RollRun:
        rig = open_rig(self.cfg, faults)
        roll = RollRun(rig, self.eyes, self.cfg.rig, threading.Event(), resume=resume)
        try:
            roll.run()
        finally:
            rig.close()
        return roll

    def come_to_rest(self) -> None:
        """Until the film has stopped where its last move (or a fault) leaves it."""
        carriage = self.shots.strip.carriage
        wait_until(lambda: time.monotonic() >= carriage.stopped_at(), 10, "the film came to rest")


@pytest.fixture
def roll(tmp_path: Path) -> Callable[..., Roll]:
    """A roll on the simulated rig: `roll(**strip)` with the strip's options over strip_config's."""

    def make(**strip: object) -> Roll:
        cfg = strip_config(tmp_path, **strip)
        found = strip_of(cfg.camera.simulated)
        assert found is not None
        shots = Shots(found)
        return Roll(cfg, shots, SimulatedEyes(cfg, tmp_path / "stacks", shots))

    return make


@pytest.mark.slow
@pytest.mark.parametrize(
    ("faults", "said"),
    [
        (Faults(jam_at=3), r"did not finish a move of [-+][\d.]+ mm within 3 s \(no reply\): a jam"),
        (Faults(alarm_at=3), r"refused a move of [-+][\d.]+ mm: ALARM:1 \(hard limit triggered\)"),
        (Faults(vanish_at=3), r"the rig's port simulated vanished"),
    ],
    ids=["jam", "alarm", "port vanishes"],
)
def test_a_rig_fault_stops_the_run_with_a_sentence_and_a_second_run_finishes_the_strip(
    tmp_path: Path, roll: Callable[..., Roll], faults: Faults, said: str
) -> None:
    strip = roll()
    shots = strip.shots
    first = strip.run(faults)
    stopped = first.summary
    assert not stopped.ended and stopped.stopped is not None and re.search(said, stopped.stopped), stopped.stopped
    assert "the film is where it stopped" in stopped.stopped or "vanished" in stopped.stopped
    assert len(stopped.shot) == len(shots.at) >= 1  # what was shot is on disk
    assert all((tmp_path / "stacks" / name).is_dir() for name in stopped.shot)
    strip.come_to_rest()  # where the fault left it
    second = strip.run(resume=first.resume()).summary
    assert second.ended, second.said()
    assert shots.frames() == EXPOSED  # across both runs, each frame once
    assert shots.worst_error() <= 0.02


def test_a_frame_that_cannot_be_found_stops_the_run_naming_it(roll: Callable[..., Roll]) -> None:
    strip = roll(gap_mm=0.2)  # frames butting up to each other: no gap to find
    summary = strip.run().summary
    assert summary.stopped is not None and summary.stopped.startswith("frame 1 of the strip not found in live view:")
    assert strip.shots.at == []  # nothing shot on a guess


def test_a_move_that_lands_far_from_the_pitch_stops_the_run(roll: Callable[..., Roll]) -> None:
    strip = roll(slip=0.45)
    strip.cfg.rig.far = 0.05
    summary = strip.run().summary
    assert summary.stopped is not None and "from where the pitch put it" in summary.stopped, summary.said()
    assert "Centre it by hand and run scan-roll again" in summary.stopped


# --- finding the frame -----------------------------------------------------------------------------------------


def test_the_finder_measures_offsets_and_tells_blank_frames_and_the_end(roll: Callable[..., Roll]) -> None:
    on_rig = roll(slip=0.0)
    strip, camera = on_rig.shots.strip, on_rig.eyes.camera
    finder = FrameFinder(PICTURE_MM)

    def look_at(position: float) -> tuple[str, float]:
        strip.carriage.go(position - strip.carriage.position(), 1e6)
        on_rig.come_to_rest()
        sight = finder.look(decode(camera.preview()))
        return sight.kind, sight.offset_mm

    for frame, off in ((1, 0.0), (2, 3.0), (2, -4.0), (5, 1.5), (8, -2.0)):
        kind, offset = look_at(strip.centre_of(frame) + off)
        assert kind == "picture" and offset == pytest.approx(-off, abs=0.2), (frame, off, offset)
    assert look_at(strip.centre_of(4) + 1.0)[0] == "blank"
    assert look_at(strip.centre_of(9))[0] == "end"  # past the last frame: the trailer into the bare light
    assert look_at(strip.centre_of(11))[0] == "end"


# --- the protocols on a serial line: the emulator (and stand-ins) on a pseudo-terminal ---------------------------


class PtyDevice:
    """A FAKE controller on a pseudo-terminal: `answer(data)` gives what the device sends back for the bytes it
    got (and `tick()` what it sends on its own); pyserial opens `path` as it would a USB serial adapter."""

    def __init__(self, answer: Callable[[bytes], bytes], tick: Callable[[], bytes] = lambda: b"") -> None:
        self.master, slave = os.openpty()
        tty.setraw(slave)  # as pyserial leaves a port: a new pty echoes, and the FAKE would answer its own echo
        self.path = os.ttyname(slave)
        self._slave = slave
        self.answer, self.tick = answer, tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.master], [], [], 0.01)
                out = self.answer(os.read(self.master, 4096)) if ready else b""
                out += self.tick()
                if out:
                    os.write(self.master, out)
            except OSError:
                return

    def vanish(self) -> None:
        """The device is unplugged: its end of the line goes away."""
        self._stop.set()
        self._thread.join(2)
        os.close(self.master)
        os.close(self._slave)

    @property
    def gone(self) -> bool:
        return self._stop.is_set()


PtyDevices = Callable[..., PtyDevice]


@pytest.fixture
def pty_device() -> Iterator[PtyDevices]:
    """`pty_device(answer, tick)` serves a FAKE controller on a pseudo-terminal; each is unplugged after the test."""
    devices: list[PtyDevice] = []

    def serve(answer: Callable[[bytes], bytes], tick: Callable[[], bytes] = lambda: b"") -> PtyDevice:
        devices.append(PtyDevice(answer, tick))
        return devices[-1]

    yield serve
    for device in devices:
        if not device.gone:
            device.vanish()


def grbl_firmware(pty_device: PtyDevices, faults: Faults) -> tuple[PtyDevice, GrblFirmware]:
    """The GRBL emulator, with `faults`, on a pseudo-terminal."""
    firmware = GrblFirmware(Carriage(0.0), faults=faults)

    def answer(data: bytes) -> bytes:
        firmware.receive(data)
        return firmware.take()

    return pty_device(answer, firmware.take), firmware


@pytest.fixture
def grbl_device(pty_device: PtyDevices) -> tuple[PtyDevice, GrblFirmware]:
    return grbl_firmware(pty_device, Faults(alarm_at=3))


def rig_config(**changes: object) -> RigConfig:
    cfg = RigConfig(reply_timeout_seconds=2.0, move_timeout_seconds=3.0, feed_mm_per_minute=6000)
    for key, value in changes.items():
        setattr(cfg, key, value)
    return cfg


@pytest.mark.slow
def test_grbl_over_a_serial_port_moves_reports_idle_and_stops_on_an_alarm_and_a_lost_port(
    grbl_device: tuple[PtyDevice, GrblFirmware],
) -> None:
    device, firmware = grbl_device
    rig = GrblRig(SerialPort(device.path, 115200), rig_config())
    rig.start()  # the banner, then G21 G91
    rig.move(10.0)
    assert firmware.carriage.position() == pytest.approx(10.0)
    rig.move(-4.5)
    assert firmware.carriage.position() == pytest.approx(5.5)
    assert rig.status() == "Idle"
    with pytest.raises(RigError, match=r"ALARM:1 \(hard limit triggered\); the film is where it stopped"):
        rig.move(20.0)  # the third move trips a limit halfway
    assert firmware.critical and rig.status() == "Alarm"  # locked: lines go unanswered until a reset
    rig.start()  # a new run resets it (Ctrl-X), unlocks it ($X) and goes on
    assert not firmware.critical
    rig.move(1.0)
    assert rig.status() == "Idle"
    device.vanish()
    with pytest.raises(RigError, match=f"the rig's port {re.escape(device.path)} vanished"):
        rig.move(1.0)
    rig.close()


def test_a_silent_controller_is_a_jam_named_with_its_timeout(pty_device: PtyDevices) -> None:
    device, _ = grbl_firmware(pty_device, Faults(jam_at=1))
    rig = GrblRig(SerialPort(device.path, 115200), rig_config(move_timeout_seconds=1.0))
    rig.start()
    started = time.monotonic()
    with pytest.raises(RigError, match=r"did not finish a move of \+38.00 mm within 1 s \(no reply\): a jam"):
        rig.move(38.0)
    assert time.monotonic() - started < 3
    rig.close()


def test_marlin_waits_for_m400_through_busy_and_names_its_error(pty_device: PtyDevices) -> None:
    """A stand-in for Marlin (FAKE hardware): ok per line, M400 answered 0.4 s later, `busy: processing` meanwhile."""
    pending: list[tuple[float, bytes]] = []
    seen: list[str] = []

    def answer(data: bytes) -> bytes:
        out = b""
        for line in data.decode().splitlines():
            seen.append(line)
            if line == "M400":
                now = time.monotonic()
                busy = [(now + t, b"echo:busy: processing\n") for t in (0.1, 0.2, 0.3)]  # as host_keepalive does
                pending.extend([*busy, (now + 0.4, b"ok\n")])
            elif line.startswith("G1 X999"):
                out += b"Error:Move out of range\n"
            else:
                out += b"ok\n"
        return out

    def tick() -> bytes:
        now = time.monotonic()
        due = [text for when, text in pending if when <= now]
        pending[:] = [(when, text) for when, text in pending if when > now]
        return b"".join(due)

    device = pty_device(answer, tick)
    rig = MarlinRig(SerialPort(device.path, 250000), rig_config(move_timeout_seconds=0.2))
    rig.start()
    started = time.monotonic()
    rig.move(38.0)  # M400's wait outlasts the 0.2 s timeout, but busy: says it is alive
    assert time.monotonic() - started >= 0.4
    assert seen[-2:] == ["G1 X38.000 F6000", "M400"]
    with pytest.raises(RigError, match=r"refused a move of \+999.00 mm: 'Error:Move out of range'"):
        rig.move(999.0)
    rig.close()


@pytest.mark.slow
def test_an_arduino_line_protocol_speaks_the_configured_templates(pty_device: PtyDevices) -> None:
    """A stand-in for an Arduino sketch (FAKE hardware): `M<steps>` moves, `OK` when done, `ERR jam` on 0."""
    seen: list[str] = []

    def answer(data: bytes) -> bytes:
        out = b""
        for line in data.decode().splitlines():
            seen.append(line)
            out += b"ERR jam\n" if line == "M0" else b"moving\nOK\n"
        return out

    device = pty_device(answer)
    rig = LineRig(SerialPort(device.path, 9600), rig_config())
    rig.start()
    rig.move(38.0)
    assert seen == ["M3040"]  # 38 mm x 80 steps/mm
    with pytest.raises(RigError, match="'ERR jam'"):
        rig.move(0.0)
    rig.close()


@pytest.mark.slow
def test_a_body_without_live_view_is_placed_by_the_pitch_and_the_run_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, grbl_device: tuple[PtyDevice, GrblFirmware]
) -> None:
    """libgphoto2's virtual camera advertises live view but answers -6 Unsupported: the run falls back."""
    from medianscan.capture.camera.gphoto2.backend import Gphoto2Camera
    from medianscan.config.schema import CameraConfig
    from tests.vcam import RewritingCamera, virtual_camera

    device, firmware = grbl_device
    with virtual_camera(tmp_path, monkeypatch) as vcam:
        camera = Gphoto2Camera(CameraConfig(backend="gphoto2", settle_seconds=0.5),
                               factory=lambda: RewritingCamera(vcam))  # fmt: skip
        camera.connect()
        n = 0

        class Eyes:
            def preview(self) -> bytes | None:
                from medianscan.capture.camera import NoLiveViewError

                try:
                    return camera.preview()
                except NoLiveViewError:
                    return None

            def shoot(self, strip_frame: int) -> Answer:
                nonlocal n
                assert strip_frame == n + 1
                n += 1
                record = camera.burst(3, tmp_path / f"s{n}", f"s{n}")
                return Answer(len(record.frames) == 3, "capture", "shot", stack=f"s{n}")

        cfg = rig_config(frames_without_live_view=3)
        rig = GrblRig(SerialPort(device.path, 115200), cfg)
        rig.start()
        summary: RollSummary = RollRun(rig, Eyes(), cfg, threading.Event()).run()
        rig.close()
        camera.close()
    assert summary.ended and not summary.live_view and summary.shot == ["s1", "s2", "s3"]
    assert firmware.history == [38.0, 38.0]  # two advances by the pitch, no corrections
    assert "placed by the calibrated pitch alone (no live view on this body)" in summary.said()


@pytest.mark.slow
def test_a_rig_advancing_the_other_way_runs_the_strip_backwards(roll: Callable[..., Roll]) -> None:
    """pitch_mm < 0: the rig advances the other way; the view's direction is the camera's, not the pitch's."""
    strip = roll(start_mm=7 * 38.0 - 1.0)  # frame 8 under the lens, about
    strip.cfg.rig.pitch_mm = -38.0
    summary = strip.run().summary
    assert summary.ended, summary.said()
    assert strip.shots.frames() == list(reversed(EXPOSED))
    assert strip.shots.worst_error() <= 0.02


def test_a_board_that_boots_after_its_port_opens_is_waited_for(pty_device: PtyDevices) -> None:
    """A stand-in for a Marlin board that resets when its port opens (FAKE hardware): deaf for 0.8 s."""
    opened = time.monotonic()

    def answer(data: bytes) -> bytes:
        if time.monotonic() - opened < 0.8:
            return b""  # the bootloader: what is sent now is lost
        return b"".join(b"ok\n" for _ in data.decode().splitlines())

    device = pty_device(answer)
    rig = MarlinRig(SerialPort(device.path, 115200), rig_config(boot_seconds=2.0))
    rig.start()
    rig.move(1.0)
    rig.close()
    assert time.monotonic() - opened >= 0.8


@pytest.mark.slow
def test_scan_roll_prints_each_frame_as_it_goes_and_status_shows_the_same(tmp_path: Path) -> None:
    """`medianscan scan-roll` prints a line per strip frame while the run goes on (found, centred, shot, blended;
    the blank skipped), not only the summary at its end; `status` lists the same lines during the run and after."""
    import subprocess
    import sys

    from medianscan.cli.control import render_status

    cfg = strip_config(tmp_path)
    cfg.camera.simulated.seconds_per_frame = 0.3  # a burst takes a body's time: the run lasts some seconds
    with RunningDaemon(cfg) as running:
        command = [sys.executable, "-m", "medianscan", "scan-roll", "--socket", str(cfg.triggers.socket)]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        arrived: list[tuple[float, str]] = []
        during = ""
        for line in proc.stdout:
            arrived.append((time.monotonic(), line.rstrip("\n")))
            if len(arrived) == 2:  # the run is under way: status says the same, frame by frame
                during = render_status(running.daemon.status())
        assert proc.wait(60) == 0, proc.stderr.read() if proc.stderr else ""
        after = render_status(running.daemon.status())

    lines = [text for _, text in arrived]
    *frames, summary = lines
    assert summary.startswith("roll run: 7 frames shot (frame-001 to frame-007"), lines
    assert [int(re.match(r"strip frame (\d+): ", f).group(1)) for f in frames] == list(range(1, 9)), lines  # type: ignore[union-attr]
    assert frames[3] == "strip frame 4: blank (unexposed), skipped"
    for text, name in zip([f for f in frames if "blank" not in f], [f"frame-{i:03d}" for i in range(1, 8)],
                          strict=True):  # fmt: skip
        assert re.match(rf"strip frame \d: found, centred( in \d moves?)?, shot as {name}, "
                        r"(blended|blending|queued for its blend)$", text), text  # fmt: skip
    assert "blended" in frames[0]  # printed once blended, while the run went on
    assert arrived[-1][0] - arrived[0][0] > 1.0  # as it went, not all at the end
    assert "roll run, frame by frame:\n  strip frame 1: found, centred" in during, during
    assert "last roll run, frame by frame:" in after and "  strip frame 4: blank (unexposed), skipped" in after
