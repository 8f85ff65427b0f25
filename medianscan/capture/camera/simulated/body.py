"""The simulated camera's body as the burst engine drives it (a `BodyLink`), in real time.

Its shutter is a thread of its own: a trigger makes a shot that it names `trigger_seconds` later (and it takes no
other trigger meanwhile); its continuous burst names one every `shot_seconds` after that for as long as the release
is held, stopping while its buffer holds `buffer_frames` raws. The release reaches it late: once the host lets go,
it names a random 0 to `late_shots` shots more (seeded, so a run can be repeated), then says its capture is
complete. A shot is a real DNG written on its card, a folder that outlives the process as a real
body's buffer outlives a host that dies (`camera.simulated.card`). Its link carries one download at a time, each
taking `file_megabytes / link_megabytes_per_second`. All of it in wall-clock time: a burst measured on it means
what the same burst means on the body its timing stands for.
"""

from __future__ import annotations

import queue
import random
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

from medianscan.atomic import remove_dead_temps
from medianscan.capture.camera.base import CameraError
from medianscan.capture.camera.burst.link import Announced, BodyEvent, Capabilities, Download
from medianscan.capture.camera.simulated.timing import BodyTiming

FOLDER = "/store_00010001/DCIM/100SIMUL"
_NUMBER = re.compile(r"SIM_(\d{4})\.(DNG|JPG)$")

# write shot k (1-based, within the burst) at the raw's path on the card; the files it wrote, in the order the
# body names them (with RAW+JPEG the JPEG beside the raw, named first, as Sony bodies do)
Render = Callable[[Path, int], list[Path]]


class BodyGoneError(CameraError):
    """The simulated body dropped off the bus (camera.simulated.dead_after_frames)."""


class SimulatedBody:
    """One simulated body: its shutter thread, its card, its link."""

    def __init__(self, timing: BodyTiming, card: Path, *, dead_after_frames: int | None = None, seed: int = 1) -> None:
        self.timing = timing
        self.card = card
        self.card.mkdir(parents=True, exist_ok=True)
        remove_dead_temps(card)  # a shot cut off mid-write by a dying host: a real body never shows one
        numbers = [int(m.group(1)) for p in card.iterdir() if (m := _NUMBER.search(p.name))]
        self._counter = max(numbers, default=0)  # file numbers go on from what the card holds
        self._events: queue.Queue[BodyEvent] = queue.Queue()
        self._link = threading.Lock()
        self._state = threading.Condition()
        self._busy_until = 0.0
        self._released = threading.Event()  # the host let go of its continuous burst's release
        self._late = random.Random(seed)  # how many shots late each release is
        self.late_taken: list[int] = []  # per continuous burst: the shots it named after the release
        self._shooter: threading.Thread | None = None
        self.render: Render | None = None  # set by the camera before each burst
        self.shots = 0  # shots of the current burst (numbered from 1)
        self.shots_since_connect = 0
        self.dead_after_frames = dead_after_frames
        self.gone = False

    def where(self) -> str:
        return f"{self.timing.model} on sim:"

    def capabilities(self) -> Capabilities:
        if self.timing.native_burst:
            return Capabilities(True, "simulated", "its continuous burst")
        return Capabilities(True, None, "no continuous burst to start")

    def new_burst(self, render: Render) -> None:
        self.render = render
        self.shots = 0

    # --- firing ---------------------------------------------------------------------------------------------

    def _check(self) -> None:
        if self.gone:
            raise BodyGoneError("the simulated camera is gone from the bus")

    def _fire_allowed(self) -> None:
        self._check()
        if self.dead_after_frames is not None and self.shots_since_connect >= self.dead_after_frames:
            self.gone = True
            raise BodyGoneError(f"the simulated camera dropped off the bus after {self.shots_since_connect} shots")
        if time.monotonic() < self._busy_until:
            raise CameraError("the simulated camera is busy with its last shot")

    def trigger(self) -> None:
        self._fire_allowed()
        self._busy_until = time.monotonic() + self.timing.trigger_seconds
        self._start(lambda: self._shoot_at(time.monotonic() + self.timing.trigger_seconds, done=True))

    def capture(self) -> Announced:
        self.trigger()
        while True:
            event = self.next_event(self.timing.trigger_seconds + 30.0)
            if event.kind == "file" and event.file is not None:
                return event.file
            if event.kind == "nothing":
                raise CameraError("the simulated camera named no file after its capture")

    def start_native(self, frames: int) -> None:
        """Hold the release in continuous drive: a shot every `shot_seconds` until `stop_native`, and a random
        0 to `late_shots` after it (`frames` is not the body's to know: a release held has no count)."""
        del frames
        if not self.timing.native_burst:
            raise CameraError("the simulated camera has no continuous burst")
        self._fire_allowed()
        self._released.clear()
        self._busy_until = float("inf")  # until its burst ends
        late = self._late.randint(0, max(0, self.timing.late_shots))  # drawn per burst: the same run, the same

        def burst() -> None:
            due = time.monotonic() + self.timing.trigger_seconds
            left: int | None = None  # shots still to name once the release has reached it
            after = 0  # shots named after it
            while left != 0:
                if left is None and self._released.is_set():
                    left = late
                    continue
                held = time.monotonic()
                if not self._room():  # a full buffer holds the shutter until a file is deleted; let go: it stops
                    break
                if time.monotonic() - held > 0.01:  # it waited for room: the next shot is taken from now
                    due = max(due, time.monotonic())
                written = self._render()
                if left is None and self._released.wait(max(0.0, due - time.monotonic())):
                    left = late  # let go while this shot was coming: it is the first one late, if any
                    if left == 0:
                        self._unrender(written)
                        break
                self._name_at(due, written, done=False)
                if left is not None:
                    left, after = left - 1, after + 1
                due += self.timing.shot_seconds
            self.late_taken.append(after)
            self._busy_until = 0.0
            self._events.put(BodyEvent("done"))

        self._start(burst)

    def stop_native(self) -> None:
        """Let go of the release: the body finishes its late shots on its own and then says it is done."""
        self._released.set()

    def _start(self, work: Callable[[], None]) -> None:
        self._shooter = threading.Thread(target=work, name="simulated-shutter", daemon=True)
        self._shooter.start()

    def _shoot_at(self, due: float, *, done: bool) -> None:
        """One shot: rendered onto the card (while the body 'exposes'), named at `due` or when written."""
        self._name_at(due, self._render(), done=done)

    def _render(self) -> list[Path]:
        self.shots += 1
        self.shots_since_connect += 1
        self._counter += 1
        path = self.card / f"SIM_{self._counter % 10000:04d}.DNG"
        return self.render(path, self.shots) if self.render is not None else [path]

    def _unrender(self, written: list[Path]) -> None:
        """A shot the release stopped before it was taken: it never was."""
        for file in written:
            file.unlink(missing_ok=True)
        self.shots -= 1
        self.shots_since_connect -= 1
        self._counter -= 1

    def _name_at(self, due: float, written: list[Path], *, done: bool) -> None:
        time.sleep(max(0.0, due - time.monotonic()))
        for file in written:
            self._events.put(BodyEvent("file", Announced(FOLDER, file.name)))
        if done:
            self._events.put(BodyEvent("done"))

    def _room(self) -> bool:
        """Wait while the buffer is full (a delete frees it); False when the host let go meanwhile."""
        with self._state:
            while self.timing.buffer_frames and self._on_card() >= self.timing.buffer_frames:
                if self._released.is_set():
                    return False
                self._state.wait(0.05)
        return True

    def _on_card(self) -> int:
        """Raws on the card (the buffer counts shots; a JPEG beside its raw is part of it)."""
        return sum(1 for p in self.card.iterdir() if p.name.endswith(".DNG") and _NUMBER.search(p.name))

    # --- hearing, fetching, deleting ------------------------------------------------------------------------

    def next_event(self, seconds: float) -> BodyEvent:
        self._check()
        try:
            return self._events.get(timeout=seconds) if seconds > 0 else self._events.get_nowait()
        except queue.Empty:
            return BodyEvent("nothing")

    def download(self, file: Announced) -> Download:
        """The file's bytes, after the time the link takes to carry them (one download at a time)."""
        self._check()
        with self._link:
            started = time.monotonic()
            try:
                data = (self.card / file.name).read_bytes()
            except FileNotFoundError:
                raise CameraError(f"{file.path} is not on the simulated camera") from None
            time.sleep(max(0.0, self.timing.transfer_seconds - (time.monotonic() - started)))
        return Download(file, memoryview(data), data)

    def delete(self, file: Announced) -> None:
        self._check()
        with self._state:
            (self.card / file.name).unlink(missing_ok=True)
            self._state.notify_all()

    def exists(self, file: Announced) -> bool:
        self._check()
        return (self.card / file.name).is_file()

    def listing(self, folder: str) -> list[str]:
        self._check()
        return sorted(p.name for p in self.card.iterdir() if _NUMBER.search(p.name)) if folder == FOLDER else []

    def close(self) -> None:
        self.stop_native()
        if self._shooter is not None:
            self._shooter.join()
