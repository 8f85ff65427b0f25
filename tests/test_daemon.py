"""The daemon end to end: real `medianscan run` processes on libgphoto2's virtual camera and on the simulated
camera, killed with -9 at several points and restarted, stopped with SIGTERM, reloaded with SIGHUP, soaked for
200 negatives; plus in-process runs for back-pressure, retake during a blend and the disk-space refusal.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from medianscan.blend.reading import frames
from medianscan.blend.verify import verify_output
from medianscan.capture.control_client import request
from medianscan.config.schema import Config
from medianscan.errors import MedianscanError
from medianscan.library.contents import BURST_JOURNAL, MANIFEST
from medianscan.library.manifest import State, read_manifest
from medianscan.library.rolls import raw_files
from medianscan.records import BlendRecord
from medianscan.service.capture import Daemon
from medianscan.service.jobs import BlendTask
from medianscan.service.pool import BlendPool
from medianscan.service.progress import BlendDone, BurstDone, Progress, ServiceError
from tests import waiting

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow  # real daemons, as processes or threads, through whole bursts and blends: seconds each


# --- helpers: a real daemon process -------------------------------------------------------------------------


class NotifySocket:
    """A real datagram socket standing in for systemd's NOTIFY_SOCKET; like systemd it reads all the time
    (a unix datagram queue holds ~10 messages, then the sender blocks)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.settimeout(0.1)
        self.messages: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self.messages.append(self.sock.recv(65536).decode())
            except TimeoutError:
                continue
            except OSError:
                return

    def collect(self) -> list[str]:
        return list(self.messages)

    def wait_for(self, field: str, timeout: float = 60.0, after: int = 0) -> int:
        """Index of the first message from `after` on that has `field` as one of its lines."""

        def seen() -> tuple[int] | None:
            found = (i for i, message in enumerate(self.collect()[after:], after) if field in message.splitlines())
            return next(((i,) for i in found), None)

        try:
            (index,) = waiting.wait_until(seen, timeout, f"{field} from the daemon")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; got {self.messages}") from None
        return index

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


class Press:
    """One control-socket request on its own thread: the daemon answers once it has done (or refused) it."""

    def __init__(self, socket_path: Path, action: str) -> None:
        self.replies: list[dict[str, Any]] = []
        self.thread = threading.Thread(target=self._send, args=(socket_path, action), daemon=True)
        self.thread.start()

    def _send(self, socket_path: Path, action: str) -> None:
        try:
            self.replies.append(request(socket_path, action))
        except MedianscanError as exc:  # the daemon was killed before it answered
            self.replies.append({"ok": False, "error": str(exc)})

    def answer(self, timeout: float = 60.0) -> dict[str, Any]:
        self.thread.join(timeout)
        assert self.replies, f"no answer within {timeout} s"
        return self.replies[0]


class DaemonProcess:
    """`python -m medianscan run --config FILE` as a child process, as systemd would run it."""

    def __init__(self, folder: Path, config: dict[str, Any], env: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.library = folder / "library"
        self.sockdir = Path(tempfile.mkdtemp(prefix="ms-"))  # short: AF_UNIX paths are limited to 107 bytes
        self.socket = self.sockdir / "control.sock"
        self.config_path = folder / "medianscan.yaml"
        self.config = {
            "library": str(self.library),
            "triggers": {"socket": str(self.socket)},
            "console": {"listen": "127.0.0.1:0"},  # any free port: a console on 8631 may be the operator's
            "camera": {"backend": "simulated"},  # unless a test asks for the real one
            **config,
        }
        self.write_config()
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.notify: NotifySocket | None = None
        self.log = folder / "daemon.log"

    def write_config(self, **changes: Any) -> None:
        self.config.update(changes)
        self.config_path.write_text(yaml.safe_dump(self.config))

    def start(self, *args: str) -> DaemonProcess:
        if self.notify is None:
            self.notify = NotifySocket(self.sockdir)
        seen = len(self.notify.collect())
        env = {**self.env, "NOTIFY_SOCKET": str(self.notify.path), "WATCHDOG_USEC": "2000000"}
        env.pop("WATCHDOG_PID", None)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "medianscan", "run", "--config", str(self.config_path), *args],
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self.notify.wait_for("READY=1", after=seen)
        except AssertionError:
            self.proc.kill()
            raise AssertionError(f"daemon not ready; its log:\n{self.log.read_text()[-3000:]}") from None
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def ask(self, action: str) -> dict[str, Any]:
        reply = request(self.socket, action)
        assert reply["ok"], reply
        return reply

    def press(self, action: str = "capture") -> Press:
        """Send `action` as the footswitch would, without waiting; the daemon's answer arrives on the Press."""
        return Press(self.socket, action)

    def refused(self, action: str) -> dict[str, Any]:
        reply = request(self.socket, action)
        assert not reply["ok"], reply
        return reply

    def workers(self) -> list[int]:
        """The blend worker processes (children of the daemon started by multiprocessing's spawn)."""
        found = []
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
                if b"multiprocessing" in cmdline and b"resource_tracker" not in cmdline:
                    found.append(int(child))
        return found

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        self._closed()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._closed()
        return code

    def _closed(self) -> None:
        if self.notify is not None:
            self.notify.collect()

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.notify is not None:
            self.notify.close()
        for path in self.sockdir.iterdir():
            path.unlink()
        self.sockdir.rmdir()

    # --- the library as the daemon left it ------------------------------------------------------------

    def stacks(self) -> list[Path]:
        return sorted(p.parent for p in self.library.glob(f"*/*/{MANIFEST}") if p.parent.parent.name != "discarded")

    def state(self, stack: Path) -> State | None:
        try:
            return read_manifest(stack).state
        except Exception:  # being replaced at this very moment is fine: ask again
            return None


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 30.0, log: Path | None = None) -> None:
    """tests.waiting.wait_until, the daemon's log (when it runs as a process) in what a failure says."""
    try:
        waiting.wait_until(predicate, timeout, what)
    except AssertionError as exc:
        tail = f"\ndaemon log:\n{log.read_text()[-4000:]}" if log is not None and log.exists() else ""
        raise AssertionError(f"{exc}{tail}") from None


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    made: list[DaemonProcess] = []
    yield made
    for d in made:
        d.cleanup()


def simulated(**sim: Any) -> dict[str, Any]:
    return {"backend": "simulated", "simulated": {"width": 256, "height": 192, **sim}}


def snapshot(stack: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in raw_files(stack)}


def assert_frames_whole(stack: Path, count: int | None = None) -> None:
    """Every file under a final name is a complete frame (LibRaw reads all of it); no temps remain."""
    raws = raw_files(stack)
    if count is not None:
        assert len(raws) == count
    for raw in raws:
        frame = frames.read_frame(raw)
        assert frame.kind == "raw"
    assert not [p for p in stack.iterdir() if p.name.startswith(".")]


def assert_blended(stack: Path) -> None:
    m = read_manifest(stack)
    assert m.state == State.BLENDED, (stack, m.state, m.error)
    assert isinstance(m.blend, BlendRecord)  # read back from stack.json as the typed record
    result = m.blend
    verify_output(result)  # the DNG on disk reads back to exactly what was blended
    assert result.output.parent == stack


# --- end to end on libgphoto2's virtual camera ---------------------------------------------------------------


def test_socket_trigger_on_the_virtual_camera_blends_beside_the_raws(
    tmp_path: Path, sample_raw: Path, daemons: list[DaemonProcess]
) -> None:
    from tests.stacks import load_scene, write_frame
    from tests.vcam import VUSB

    # The virtual camera "shoots" byte copies of the one *.JPG in VCAMERADIR: make it a real DNG (a crop of the
    # real CR2), so every captured frame is a raw the blend reads through LibRaw.
    vdir = tmp_path / "vcamera"
    vdir.mkdir()
    scene = load_scene(sample_raw).crop(200, 200, 192, 256)
    dng = write_frame(tmp_path / "source.dng", scene.mosaic, scene)
    (vdir / "source.JPG").write_bytes(dng.read_bytes())
    events = tmp_path / "events.log"
    hook = f"sh -c 'echo \"$MEDIANSCAN_EVENT $MEDIANSCAN_STACK $MEDIANSCAN_FILE\" >> {events}'"
    d = DaemonProcess(
        tmp_path,
        {
            "frames": 3,
            "camera": {"backend": "gphoto2", "settings": {"aperture": "f/8"}},
            "hooks": {"burst_done": [hook], "blend_done": [hook]},
        },
        env={"VCAMERADIR": str(vdir), "IOLIBS": str(VUSB), "XDG_CONFIG_HOME": str(tmp_path / "xdg")},
    )
    daemons.append(d)
    d.start()
    status = d.ask("status")["status"]
    assert status["camera"]["model"] == "Nikon DSC D750" and status["camera"]["state"] == "ready"
    assert status["settings"] == {"aperture": "f/8"}  # locked and read back before every burst

    d.press("capture")
    wait_until(lambda: len(d.stacks()) == 1 and d.state(d.stacks()[0]) == State.BLENDED, "a blend", log=d.log)
    stack = d.stacks()[0]
    assert stack.parent.parent == d.library and stack.name == "frame-001"
    raws = raw_files(stack)
    assert [p.name for p in raws] == ["frame-001_01.dng", "frame-001_02.dng", "frame-001_03.dng"]
    assert all(p.read_bytes() == dng.read_bytes() for p in raws)
    assert_blended(stack)
    out = frames.read_frame(stack / "frame-001_median.dng")
    assert np.array_equal(out.pixels, scene.mosaic)  # the median of three copies is the copy, bit for bit
    m = read_manifest(stack)
    assert m.burst is not None and m.burst.frames == raws  # read back from stack.json as the typed record
    assert m.capture_seconds is not None and m.blend_seconds is not None
    assert [h["state"] for h in m.history] == ["capturing", "captured", "blending", "blended"]

    status = d.ask("status")["status"]
    assert status["recent"][-1]["state"] == "blended"
    assert status["queue"] == {"waiting": 0, "blending": 0, "capacity": 4, "full": False, "stitching": 0}
    assert status["roll"] == stack.parent.name and status["negative"] == "frame-001"
    wait_until(lambda: events.exists() and len(events.read_text().splitlines()) == 2, "both hooks")
    lines = sorted(events.read_text().splitlines())
    assert lines == sorted([f"burst-done {stack} {raws[-1]}", f"blend-done {stack} {stack / 'frame-001_median.dng'}"])

    assert d.stop() == 0
    assert d.notify is not None
    assert any("STOPPING=1" in m for m in d.notify.messages)
    assert any("WATCHDOG=1" in m for m in d.notify.messages)
    assert not d.socket.exists()


def test_without_a_camera_the_daemon_stays_up_and_says_so(tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    nowhere = tmp_path / "no-port-drivers"
    nowhere.mkdir()
    events = tmp_path / "events.log"
    hook = f"sh -c 'echo \"$MEDIANSCAN_EVENT\" >> {events}'"
    d = DaemonProcess(
        tmp_path,
        {"frames": 3, "camera": {"backend": "gphoto2", "reconnect_max_seconds": 1}, "hooks": {"error": [hook]}},
        env={"IOLIBS": str(nowhere), "XDG_CONFIG_HOME": str(tmp_path / "xdg")},
    )
    daemons.append(d)
    d.start()  # READY all the same: the socket works and the camera is retried in the background
    status = d.ask("status")["status"]
    assert status["camera"]["state"] == "not connected"
    assert status["camera"]["error"]
    answer = d.refused("capture")  # the operator is told why at once, not "sent"
    assert answer["outcome"] == "refused" and answer["error"].startswith("cannot capture: no camera found")
    assert (d.ask("status")["status"]["message"] or "").startswith("cannot capture")
    assert d.stacks() == []
    wait_until(lambda: events.exists() and events.read_text() == "error\n", "the error hook")
    assert d.proc is not None and d.proc.poll() is None
    assert d.stop() == 0


def test_keyboard_mode_captures_on_enter(tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    d = DaemonProcess(tmp_path, {"frames": 3, "camera": simulated()})
    daemons.append(d)
    d.start("--keyboard")
    assert d.proc is not None and d.proc.stdin is not None
    d.proc.stdin.write(b"\n")
    d.proc.stdin.flush()
    wait_until(lambda: bool(d.stacks()) and d.state(d.stacks()[0]) == State.BLENDED, "a blend", log=d.log)
    d.proc.stdin.write(b"s\n")  # status on the terminal
    d.proc.stdin.flush()
    wait_until(lambda: "last frame-001; queue 0 waiting" in d.log.read_text(), "the status line on the terminal")
    assert d.stop() == 0


# --- crash safety: kill -9 at several points, then restart ---------------------------------------------------


def test_kill_9_during_a_burst_keeps_every_frame_and_marks_the_stack_incomplete(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    """A pipelined burst (the simulated body's shots named, fetched and written while the next is taken) killed
    with -9: every frame that reached the disk stays; the shots the body still held are fetched after the restart,
    as the stack's burst journal names them, in order, and deleted from the body; the stack says what happened."""
    card = tmp_path / "card"  # the simulated body's buffer: it outlives the daemon, as a real body's does
    d = DaemonProcess(tmp_path, {"frames": 6, "camera": simulated(seconds_per_frame=0.25, card=str(card))})
    daemons.append(d)
    d.start()
    d.press("capture")
    wait_until(lambda: bool(d.stacks()) and len(raw_files(d.stacks()[0])) >= 2, "two frames", log=d.log)
    stack = d.stacks()[0]
    before = snapshot(stack)
    d.kill9()
    after_kill = snapshot(stack)
    assert after_kill.items() >= before.items()  # nothing downloaded was lost
    assert d.state(stack) == State.CAPTURING
    on_card = sorted(p.name for p in card.iterdir())
    assert on_card and (stack / BURST_JOURNAL).is_file()  # shot, named, not fetched: the journal knows them

    d.write_config(camera=simulated(card=str(card)))
    d.start()
    wait_until(lambda: not (stack / BURST_JOURNAL).exists(), "the cut-off burst's frames fetched", log=d.log)
    m = read_manifest(stack)
    assert m.state == State.INCOMPLETE
    # a file the body held was written before the kill (only its delete was missing), or is fetched now
    found = re.search(r"; (\d+) fetched from the camera after the burst was cut off", m.note or "")
    fetched = int(found.group(1)) if found else 0
    frames_now = len(after_kill) + fetched
    assert fetched <= len(on_card) and f"{frames_now} of 6 frames" in (m.note or ""), m.note
    assert snapshot(stack).items() >= after_kill.items()
    assert [p.name for p in raw_files(stack)] == [f"frame-001_0{i}.dng" for i in range(1, frames_now + 1)]
    assert_frames_whole(stack, frames_now)
    assert list(card.iterdir()) == []  # deleted from the body once on disk
    attention = d.ask("status")["status"]["attention"]
    assert attention == [{"stack": str(stack), "state": "incomplete", "reason": m.note}]
    # the session carries on: the next press is the next frame, blended as usual
    d.press("capture")
    wait_until(lambda: len(d.stacks()) == 2 and d.state(d.stacks()[1]) == State.BLENDED, "the next blend", log=d.log)
    assert d.stacks()[1].name == "frame-002"
    assert read_manifest(stack).state == State.INCOMPLETE  # not blended behind the operator's back
    assert d.stop() == 0


def test_kill_9_with_a_stack_blending_and_one_captured_finishes_both_after_restart(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    d = DaemonProcess(tmp_path, {"frames": 3, "camera": simulated(width=1536, height=1024)})
    daemons.append(d)
    d.start()
    # Freeze the blend worker while it holds stack A, so that B stays captured in the queue behind it.
    worker = None
    for _ in range(10):
        n = len(d.stacks())
        d.press("capture")
        wait_until(lambda: len(d.stacks()) == n + 1, "A's folder")  # noqa: B023 - used in this iteration
        wait_until(lambda: d.state(d.stacks()[-1]) in (State.BLENDING, State.BLENDED), "A taken by a worker")
        worker = d.workers()[0]
        os.kill(worker, signal.SIGSTOP)
        if d.state(d.stacks()[-1]) == State.BLENDING:
            break
        os.kill(worker, signal.SIGCONT)  # A was already done: try again with the next negative
        worker = None
    assert worker is not None, "never caught a blend in progress"
    a = d.stacks()[-1]
    d.press("capture")
    wait_until(lambda: d.stacks()[-1] != a and d.state(d.stacks()[-1]) == State.CAPTURED, "B captured", log=d.log)
    b = d.stacks()[-1]
    frames_a, frames_b = snapshot(a), snapshot(b)
    d.kill9()
    wait_until(lambda: not Path(f"/proc/{worker}").exists() or _zombie(worker), "the frozen worker to die with it")
    assert (d.state(a), d.state(b)) == (State.BLENDING, State.CAPTURED)

    d.start()
    wait_until(lambda: d.state(a) == State.BLENDED and d.state(b) == State.BLENDED, "both blends", log=d.log)
    for stack, kept in ((a, frames_a), (b, frames_b)):
        assert snapshot(stack) == kept
        assert_frames_whole(stack, 3)
        assert_blended(stack)
    assert d.stop() == 0


def _zombie(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    return True


# --- signals -------------------------------------------------------------------------------------------------


def test_sigterm_finishes_the_running_burst_and_leaves_the_queue_on_disk(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    d = DaemonProcess(tmp_path, {"frames": 4, "camera": simulated(seconds_per_frame=0.3)})
    daemons.append(d)
    d.start()
    wait_until(lambda: "blend worker 1 ready" in d.log.read_text(), "a warmed-up worker")
    os.kill(d.workers()[0], signal.SIGSTOP)  # blends never finish: what is queued must survive the stop
    d.press("capture")
    wait_until(lambda: bool(d.stacks()) and d.state(d.stacks()[0]) == State.BLENDING, "A blending", log=d.log)
    d.press("capture")
    wait_until(lambda: len(d.stacks()) == 2 and len(raw_files(d.stacks()[1])) >= 1, "B's burst", log=d.log)
    t0 = time.monotonic()
    assert d.stop(signal.SIGTERM) == 0
    assert time.monotonic() - t0 < 10
    a, b = d.stacks()
    assert len(raw_files(b)) == 4  # the burst ran to its end
    assert (d.state(a), d.state(b)) == (State.CAPTURED, State.CAPTURED)
    assert "interrupted by a stop" in (read_manifest(a).note or "")

    d.start()
    wait_until(lambda: d.state(a) == State.BLENDED and d.state(b) == State.BLENDED, "both blends", log=d.log)
    assert d.stop(signal.SIGINT) == 0


def test_sighup_reloads_the_configuration_and_a_bad_one_is_refused(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    d = DaemonProcess(tmp_path, {"frames": 3, "camera": simulated()})
    daemons.append(d)
    d.start()
    assert d.notify is not None
    d.write_config(frames=5)
    seen = len(d.notify.collect())
    assert d.proc is not None
    d.proc.send_signal(signal.SIGHUP)
    reloading = d.notify.wait_for("RELOADING=1", after=seen)
    d.notify.wait_for("READY=1", after=reloading)
    d.press("capture")
    wait_until(lambda: bool(d.stacks()) and d.state(d.stacks()[0]) == State.BLENDED, "a blend", log=d.log)
    assert len(raw_files(d.stacks()[0])) == 5

    d.config_path.write_text("frames: many\n")
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload refused" in d.log.read_text(), "the refusal in the log")
    assert "medianscan.yaml:1" in d.log.read_text()  # the config error names file and line
    assert d.ask("status")["status"]["frames_per_burst"] == "5 raws per burst"  # still running on the last good one
    assert d.stop() == 0


# --- soak ----------------------------------------------------------------------------------------------------


def captured(d: DaemonProcess, stack: Path) -> bool:
    return d.state(stack) not in (None, State.CAPTURING)


def test_200_negatives_with_flat_memory(tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    d = DaemonProcess(
        tmp_path, {"frames": 3, "camera": simulated(width=128, height=96), "roll_template": "roll{roll:03d}"}
    )
    daemons.append(d)
    d.start()
    roll = d.library / "roll001"
    rss: list[int] = []
    for i in range(1, 201):
        d.press("capture")
        stack = roll / f"frame-{i:03d}"
        wait_until(functools.partial(captured, d, stack), f"burst {i}", log=d.log)
        if i % 20 == 0:
            rss.append(d.rss_kib())
    wait_until(lambda: all(d.state(s) in (State.BLENDED, State.FAILED) for s in d.stacks()), "the blends", 120)
    assert len(d.stacks()) == 200
    failed = [read_manifest(s) for s in d.stacks() if d.state(s) == State.FAILED]
    # The simulated negatives at this tiny size now and then fail the shift check; that is a verdict, not a
    # fault: the stack is recorded as failed with the reason and the session goes on.
    assert all("cannot blend" in (m.error or "") for m in failed), [m.error for m in failed]
    assert len(failed) < 20
    growth = max(rss[2:]) - rss[1]
    assert growth < 4 * 1024, f"RSS grew by {growth} KiB over 160 negatives: {rss}"
    assert d.stop() == 0


# --- in-process: back-pressure, retake during a blend, disk space ------------------------------------------


def gated_blend(stack: Path, task: BlendTask) -> BlendRecord:
    """FAKE blend job (a real blend cannot be held open on cue): waits for `<library>/go`, writes nothing."""
    gate = stack.parent.parent / "go"
    deadline = time.monotonic() + 30
    while not gate.exists() and time.monotonic() < deadline:  # in the worker: a stuck gate ends, it does not fail
        time.sleep(0.01)
    output = stack / f"{stack.name}_median.dng"
    return BlendRecord(stack, output, output.with_suffix(".json"), (), (), (), 0.0, None)


class InProcess:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.events: list[Progress] = []
        daemon.listeners.append(self.events.append)
        self.thread = threading.Thread(target=daemon.run, daemon=True)

    def __enter__(self) -> InProcess:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.daemon.stop()
        self.thread.join(30)
        assert not self.thread.is_alive()

    def count(self, kind: type[Progress]) -> int:
        return sum(isinstance(e, kind) for e in self.events)


def config(tmp_path: Path, **kw: Any) -> Config:
    cfg = Config()
    cfg.library = tmp_path / "library"
    cfg.frames = 3
    cfg.camera.backend = "simulated"
    cfg.camera.simulated.width, cfg.camera.simulated.height = 128, 96
    for key, value in kw.items():
        setattr(cfg, key, value)
    return cfg


def test_a_full_queue_holds_the_capture_and_status_says_so(tmp_path: Path) -> None:
    cfg = config(tmp_path, queue_size=1)
    daemon = Daemon(cfg, triggers=False, pool=BlendPool(1, 1, job=gated_blend))
    with InProcess(daemon) as run:
        daemon.request("capture")  # A: taken by the worker
        wait_until(lambda: len(daemon.pool.running()) == 1, "A blending")
        daemon.request("capture")  # B: waits in the queue, which is now full
        wait_until(lambda: run.count(BurstDone) == 2, "B captured")
        daemon.request("capture")  # C: held back until there is room
        wait_until(lambda: daemon.status()["queue"]["full"] and "full" in daemon.status_line(), "back-pressure")
        time.sleep(0.3)  # the behaviour: C is still held back a while later, not merely not yet shot
        assert run.count(BurstDone) == 2
        (cfg.library / "go").touch()
        wait_until(lambda: run.count(BlendDone) == 3, "all three blends")
    assert [s.name for s in daemon.library.stacks()] == ["frame-001", "frame-002", "frame-003"]


def test_retake_during_a_blend_sets_the_stack_aside_and_reuses_its_number(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    daemon = Daemon(cfg, triggers=False, pool=BlendPool(1, 4, job=gated_blend))
    with InProcess(daemon) as run:
        daemon.request("capture")
        wait_until(lambda: len(daemon.pool.running()) == 1, "a blend in progress")
        first = daemon.library.stacks()[0]
        daemon.request("retake")
        wait_until((first.parent / "discarded" / first.name).is_dir, "the retake")
        (cfg.library / "go").touch()
        daemon.request("capture")
        wait_until(lambda: run.count(BlendDone) == 1, "the new stack's blend")
        assert run.count(ServiceError) == 0  # the cancelled blend is not a failure
    moved = first.parent / "discarded" / first.name
    assert len(raw_files(moved)) == 3
    assert read_manifest(first).state == State.BLENDED  # the retaken negative, same number
    assert read_manifest(moved).state == State.BLENDING  # set aside as it was, raws kept


def test_a_capture_is_refused_when_the_disk_is_short(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config(tmp_path)
    daemon = Daemon(cfg, triggers=False, pool=BlendPool(1, 4, job=gated_blend))
    real = __import__("shutil").disk_usage

    def nearly_full(path: Any) -> Any:  # FAKE: a full disk cannot be made on cue without root
        usage = real(path)
        return type(usage)(usage.total, usage.total - 10_000_000, 10_000_000)

    monkeypatch.setattr("medianscan.service.capture.camera_thread.shutil.disk_usage", nearly_full)
    with InProcess(daemon) as run:
        daemon.request("capture")
        wait_until(lambda: run.count(ServiceError) == 1, "the refusal")
    last = run.events[-1]
    assert isinstance(last, ServiceError)
    message = last.message
    assert message.startswith(f"not enough free disk space in {daemon.library.roll}: 10 MB free")
    assert daemon.library.stacks() == []  # nothing was fired
    assert daemon.status()["message"] == message


def test_a_camera_that_drops_off_mid_burst_keeps_its_frames_and_the_session_goes_on(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    cfg.camera.simulated.dead_after_frames = 2  # the simulator drops off the bus once, then comes back
    daemon = Daemon(cfg, triggers=False)
    with InProcess(daemon) as run:
        daemon.request("capture")
        wait_until(lambda: run.count(ServiceError) == 1, "the burst error")
        daemon.request("capture")
        wait_until(lambda: run.count(BlendDone) == 1, "the next negative blended", 60)
    cut, good = daemon.library.stacks()
    m = read_manifest(cut)
    assert m.state == State.INCOMPLETE
    assert "dropped off the bus" in (m.error or "")
    assert len(raw_files(cut)) == 2  # the frames it got are kept
    assert_frames_whole(cut, 2)
    assert read_manifest(good).state == State.BLENDED


def test_demo_scans_simulated_negatives_and_prints_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from medianscan.cli import main

    monkeypatch.chdir(tmp_path)  # the default library is ./medianscan-demo, kept for the user to open
    assert main(["demo", "--negatives", "2", "--frames", "3"]) == 0
    out = capsys.readouterr().out
    library = tmp_path / "medianscan-demo"
    lines = out.splitlines()
    progress = [ln for ln in lines if ln.startswith("  frame-")]
    assert any("frame-001: 3 frames captured in" in ln for ln in progress)  # shown while it runs
    assert any("frame-002: blended in" in ln for ln in progress)
    assert "noise vs 1 frame" in out and f"Files: {library}" in out
    opened = next(ln for ln in lines if ln.startswith("Open a blend like any camera raw: darktable "))
    shown = opened.split()[8]
    assert Path(shown).is_file() and shown.endswith("_median.dng")
    stacks = sorted(library.glob("*/frame-*"))
    assert len(stacks) == 2
    for stack in stacks:
        assert_blended(stack)

    assert main(["demo", "--negatives", "1", "--frames", "3", "--no-keep"]) == 0
    out = capsys.readouterr().out
    assert "temporary library removed" in out
    scratch = Path(out.splitlines()[0].split(" into ")[1])
    assert not scratch.exists()


def test_demo_console_stays_up_after_the_scan_until_ctrl_c(tmp_path: Path) -> None:
    import urllib.request

    with socket.socket() as probe:  # a free port (the demo has no port 0: it prints the address to open)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "medianscan", "demo", "--console", "--listen", f"127.0.0.1:{port}"]
    command += ["--negatives", "2", "--frames", "3", "--library", str(tmp_path / "demo")]
    env = {**os.environ, "XDG_RUNTIME_DIR": tempfile.mkdtemp(prefix="ms-")}
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_until(lambda: "The console stays up at" in log.read_text(), "the console left up", timeout=120, log=log)
        assert f"the console: http://127.0.0.1:{port}/" in log.read_text()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/state", timeout=10) as response:
            state = json.loads(response.read())
        assert [n["state"] for n in state["negatives"]] == ["blended", "blended"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(("policy", "stacks"), [("queue", 2), ("ignore", 1)])
def test_presses_during_a_burst_follow_the_policy(tmp_path: Path, policy: str, stacks: int) -> None:
    cfg = config(tmp_path)
    cfg.camera.simulated.seconds_per_frame = 0.2
    cfg.triggers.press_during_burst = policy  # type: ignore[assignment]
    daemon = Daemon(cfg, triggers=False, pool=BlendPool(1, 4, job=gated_blend))
    (cfg.library).mkdir(parents=True)
    (cfg.library / "go").touch()
    with InProcess(daemon) as run:
        daemon.request("capture")
        wait_until(lambda: daemon.busy, "the burst")
        for _ in range(3):  # an impatient operator
            daemon.request("capture")
        daemon.request("new-roll")  # not a press on the shutter: always honoured, in order
        wait_until(lambda: run.count(BlendDone) == stacks, "the blends")
        time.sleep(0.5)  # the behaviour: no press left over makes a stack after them
    rolls = sorted(p for p in cfg.library.iterdir() if p.is_dir())
    assert sum(len(daemon.library.stacks(r)) for r in rolls) == stacks
    assert len(rolls) == 2


def test_retention_archive_moves_the_raws_after_the_verified_blend(tmp_path: Path) -> None:
    cfg = config(tmp_path, retention="archive", archive=tmp_path / "archive")
    cfg.camera.simulated.width, cfg.camera.simulated.height = 256, 192
    daemon = Daemon(cfg, triggers=False)
    with InProcess(daemon) as run:
        daemon.request("capture")
        wait_until(lambda: run.count(BlendDone) + run.count(ServiceError) == 1, "the blend", 60)
    (stack,) = daemon.library.stacks()
    assert_blended(stack)
    assert raw_files(stack) == []
    archived = tmp_path / "archive" / stack.parent.name / stack.name
    assert sorted(p.name for p in archived.iterdir()) == [f"frame-001_0{i}.dng" for i in (1, 2, 3)]
    assert read_manifest(stack).retention == f"moved 3 raws to {archived}"


def test_the_operator_is_told_what_really_happened(
    tmp_path: Path, daemons: list[DaemonProcess], capsys: pytest.CaptureFixture[str]
) -> None:
    """`medianscan trigger | retake | new-roll | pause | resume` print the daemon's answer, through the real
    control socket of a real daemon on the simulated camera: no "sent" when a press was ignored."""
    from medianscan.cli import main

    d = DaemonProcess(tmp_path, {"frames": 4, "camera": simulated(seconds_per_frame=0.6)})  # 2.4 s bursts
    daemons.append(d)
    d.start()
    sock = ["--socket", str(d.socket)]

    assert main(["pause", *sock]) == 0
    assert capsys.readouterr().out == "paused: captures are ignored until resume\n"
    assert main(["trigger", *sock]) == 1
    err = capsys.readouterr().err
    assert "capture ignored: the daemon is paused (send resume first)" in err
    assert d.stacks() == []
    assert main(["resume", *sock]) == 0
    capsys.readouterr()

    first = d.press("capture")
    wait_until(lambda: bool(d.stacks()), "the first burst to start", log=d.log)
    # two presses during the burst (the order they reach the daemon in is theirs): one is kept for after it
    # (the default policy, queue), the other is told it was ignored
    during = [d.press("capture"), d.press("capture")]
    one = first.answer()
    two, three = sorted((p.answer() for p in during), key=lambda a: not a["ok"])
    assert one["ok"] and one["stack"] == "frame-001"
    assert re.fullmatch(r"frame-001: burst done, 4 frames in [0-9.]+ s: advance the negative", one["text"])
    assert two["ok"] and two["outcome"] == "queued" and two["stack"] == "frame-002", (two, three)
    assert two["text"].startswith("queued behind the burst of frame-001, then: frame-002: burst done")
    assert not three["ok"] and three["outcome"] == "ignored", three
    assert "a burst was under way and one press already waits for it" in three["error"]
    assert [s.name for s in d.stacks()] == ["frame-001", "frame-002"]

    assert main(["retake", *sock]) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(r"frame-002 set aside in [0-9-]+roll001/discarded/ to shoot it again\n", out)
    assert main(["new-roll", *sock]) == 0
    out = capsys.readouterr().out
    roll = out.removeprefix("new roll ").strip()
    assert out.startswith("new roll ") and (d.library / roll).is_dir()
    assert d.stop() == 0


def test_retake_pressed_three_times_sets_aside_only_the_last_negative(tmp_path: Path) -> None:
    """A double (triple) press on the pedal's retake: the last negative is set aside once, the presses within a
    second are said to be one press, a later one before a capture is said to be the same retake; the next capture
    shoots that negative again, and a retake then sets the new shot aside, never an earlier negative."""
    from concurrent.futures import Future

    from medianscan.capture.events import Answer

    cfg = config(tmp_path)
    daemon = Daemon(cfg, triggers=False, pool=BlendPool(1, 4, job=gated_blend))
    (cfg.library / "go").parent.mkdir(parents=True, exist_ok=True)
    (cfg.library / "go").touch()

    def press(action: str) -> list[Future[Answer]]:
        reply: Future[Answer] = Future()
        daemon.hub.emit(action, "footswitch", reply)  # type: ignore[arg-type]
        return [reply]

    with InProcess(daemon) as run:
        for _ in range(3):
            assert press("capture")[0].result(60).ok
        wait_until(lambda: run.count(BlendDone) == 3, "three blends")
        roll = daemon.library.roll
        replies = [press("retake")[0] for _ in range(3)]  # one tap, two bounces, within a second
        answers = [reply.result(60) for reply in replies]
        time.sleep(1.1)  # past the second within which presses are one press: this retake is a later one
        later = press("retake")[0].result(60)
        assert [s.name for s in daemon.library.stacks()] == ["frame-001", "frame-002"]
        assert sorted(p.name for p in (roll / "discarded").iterdir()) == ["frame-003"]
        shot = press("capture")[0].result(60)
        after = press("retake")[0].result(60)
    assert answers[0].ok and answers[0].outcome == "done" and answers[0].text.startswith("frame-003 set aside in ")
    for answer in answers[1:]:
        assert answer.outcome == "ignored" and answer.stack == "frame-003"
        assert answer.text.startswith("retake pressed again within a second: one press; frame-003 is set aside")
    assert later.outcome == "ignored" and later.text.startswith("retake again before a capture; frame-003 is set")
    assert "the next capture shoots it again" in later.text
    assert shot.ok and shot.stack == "frame-003"
    assert after.outcome == "done" and after.stack == "frame-003" and "discarded/frame-003-2" in after.text
    assert [s.name for s in daemon.library.stacks()] == ["frame-001", "frame-002"]
    assert len(raw_files(roll / "frame-001")) == len(raw_files(roll / "frame-002")) == 3  # never set aside
