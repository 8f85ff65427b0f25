"""The capture daemon's shared state, with one owner: the camera thread changes it, the main loop hands stacks in
and out of it, and status, systemd's line, the console and the triggers' threads read it. Every method takes
the one lock, so a change of several fields is one step, and readers get a `DaemonSnapshot`: a frozen record
of one instant, never the live fields.

Lock order: this lock before the blend pool's, the library's and the trigger hub's (a method here may call
into them; they never call back)."""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from medianscan.capture.events import Answer, Told, TriggerEvent
from medianscan.capture.rig.roll_run import RollProgress
from medianscan.capture.rig.tile_run import TileProgress
from medianscan.reports import CameraView, QueueState
from medianscan.service.capture.camera_link import CameraStatus

BracketGroup = tuple[int, int, str]  # (group, of groups, shutter) while a bracket runs


@dataclass(frozen=True)
class DaemonSnapshot:
    """The daemon's state at one instant (what `medianscan status`, systemd's line and the console show)."""

    camera: CameraView  # "capturing" while a burst runs on a ready body
    settings: dict[str, str]  # as the body confirmed them at connect
    paused: bool
    bursting: bool
    bracket_group: BracketGroup | None
    waiting_for_room: bool  # a capture waits for the blend queue to have room
    queue: QueueState  # the blend queue, with the stacks held for it
    roll_run: RollProgress | None  # the last roll run's progress (`under_way` False once it is over)
    tile_run: TileProgress | None  # the last tile run's progress, each tile's state (`under_way` False once over)
    message: str | None  # the last thing that went wrong, until it is put right
    told: Told | None  # the last answer to an operator's action, whoever asked

    @property
    def run_under_way(self) -> RollProgress | None:
        run = self.roll_run
        return run if run is not None and run.under_way else None

    @property
    def tiles_under_way(self) -> TileProgress | None:
        run = self.tile_run
        return run if run is not None and run.under_way else None


class DaemonState:
    """The fields shared between the camera thread, the main loop and the readers, behind one lock.

    `told` reads the trigger hub's last answer: answers that change the state are given under this lock
    (`answer`), so that a snapshot never shows an answer without its effect, or the effect without its answer.
    `queue` makes the blend queue's record from the stacks held for it and whether a capture waits for room."""

    def __init__(
        self,
        told: Callable[[], Told | None],
        queue: Callable[[int, bool], QueueState],
    ) -> None:
        self._lock = threading.RLock()
        self._told = told
        self._queue = queue
        self._camera = CameraStatus()
        self._paused = False
        self._bursting = False
        self._bracket_group: BracketGroup | None = None
        self._waiting_for_room = False
        self._roll_run: RollProgress | None = None
        self._tile_run: TileProgress | None = None
        # set: the run under way (a roll's or a tile run) stops at its next step (set only through stop_run)
        self.run_stop = threading.Event()
        self._message: str | None = None
        self._message_stack: Path | None = None  # the stack the message is about, if any
        self._in_pool: set[Path] = set()  # stacks handed to the blend pool and not yet recorded
        self._held: deque[Path] = deque()  # stacks waiting for room in the pool

    # --- what readers see ----------------------------------------------------------------------------

    def snapshot(self) -> DaemonSnapshot:
        with self._lock:
            cam = self._camera
            state = "capturing" if self._bursting and cam.state == "ready" else cam.state
            return DaemonSnapshot(
                camera=CameraView(cam.model, cam.port, state, cam.error, cam.battery),
                settings=dict(cam.settings or {}),
                paused=self._paused,
                bursting=self._bursting,
                bracket_group=self._bracket_group,
                waiting_for_room=self._waiting_for_room,
                queue=self._queue(len(self._held), self._waiting_for_room),
                roll_run=self._roll_run,
                tile_run=self._tile_run,
                message=self._message,
                told=self._told(),
            )

    @property
    def camera(self) -> CameraStatus:
        with self._lock:
            return self._camera

    @property
    def paused(self) -> bool:
        with self._lock:
            return self._paused

    @property
    def bursting(self) -> bool:
        with self._lock:
            return self._bursting

    @property
    def message(self) -> str | None:
        with self._lock:
            return self._message

    # --- the camera thread's changes -----------------------------------------------------------------

    def camera_is(self, status: CameraStatus) -> None:
        """The camera link's new status (connect, loss, a refused setting, the battery after a burst)."""
        with self._lock:
            self._camera = status

    def answer(
        self, event: TriggerEvent, answer: Answer, *, paused: bool | None = None, forget: str | None = None
    ) -> None:
        """Give `answer` to `event`'s source, with the pause it reports (`paused`, for pause and resume) taking
        effect in the same step; `forget`: an earlier refusal, old news once an action is done (the message
        is cleared if it is still that refusal, never another's newer one)."""
        with self._lock:
            if paused is not None:
                self._paused = paused
            if forget is not None and self._message == forget:
                self._message = self._message_stack = None
            event.answer(answer)

    def begin_burst(self) -> None:
        with self._lock:
            self._bursting = True

    def end_burst(self) -> None:
        with self._lock:
            self._bursting = False
            self._bracket_group = None

    def bracket_at(self, group: BracketGroup) -> None:
        with self._lock:
            self._bracket_group = group

    def wait_for_room(self, waiting: bool) -> None:
        with self._lock:
            self._waiting_for_room = waiting

    def begin_run(self, progress: RollProgress | TileProgress) -> None:
        """A roll run or a tile run starts (the stop flag cleared)."""
        with self._lock:
            self.run_stop.clear()
            self._keep(progress)

    def run_at(self, progress: RollProgress | TileProgress) -> None:
        with self._lock:
            self._keep(progress)

    def _keep(self, progress: RollProgress | TileProgress) -> None:
        if isinstance(progress, TileProgress):
            self._tile_run = progress
        else:
            self._roll_run = progress

    def end_run(self) -> None:
        """The run is over: its frames (or tiles) stay for status and the console until the next run."""
        with self._lock:
            if self._roll_run is not None and self._roll_run.under_way:
                self._roll_run = dataclasses.replace(self._roll_run, under_way=False, outline=None)
            if self._tile_run is not None and self._tile_run.under_way:
                self._tile_run = dataclasses.replace(self._tile_run, under_way=False)
            self.run_stop.clear()

    def stop_run(self) -> RollProgress | TileProgress | None:
        """Ask the run under way (a roll's or a tile run: one at a time, on the camera thread) to stop at its next
        step; the run as it was, or None when none is under way (then nothing is set: a run that ended meanwhile
        is never told to stop the next)."""
        with self._lock:
            run: RollProgress | TileProgress | None = None
            if self._roll_run is not None and self._roll_run.under_way:
                run = self._roll_run
            elif self._tile_run is not None and self._tile_run.under_way:
                run = self._tile_run
            if run is not None:
                self.run_stop.set()
            return run

    # --- what went wrong -----------------------------------------------------------------------------

    def report(self, message: str, stack: Path | None) -> None:
        """What the operator is told went wrong (`stack`: the stack it is about, if any)."""
        with self._lock:
            self._message, self._message_stack = message, stack

    def clear_message(self) -> None:
        """A burst went well: what went wrong before is behind."""
        with self._lock:
            self._message = self._message_stack = None

    def blended(self, stack: Path) -> None:
        """`stack` blended: a message about its earlier failure is old news."""
        with self._lock:
            if self._message_stack is not None and self._message_stack == stack:
                self._message = self._message_stack = None

    # --- stacks between the camera thread and the blend pool -----------------------------------------

    def hand_over(self, stack: Path, submit: Callable[[Path], bool]) -> bool:
        """`submit` the stack to the pool; True (and the stack ours until recorded) if the pool took it."""
        with self._lock:
            if submit(stack):
                self._in_pool.add(stack)
                return True
            return False

    def hold(self, stack: Path, *, first: bool = False) -> None:
        """Keep `stack` for when the pool has room (`first`: before the others)."""
        with self._lock:
            if first:
                self._held.appendleft(stack)
            else:
                self._held.append(stack)

    def feed(self, room: Callable[[], bool], submit: Callable[[Path], bool]) -> None:
        """Hand held stacks to the pool, oldest first, while `room()` says there is room and it takes them."""
        with self._lock:
            while self._held and room():
                if not self.hand_over(self._held[0], submit):
                    break
                self._held.popleft()

    def call_off(self, stack: Path, cancel: Callable[[Path], str | None]) -> str | None:
        """Take `stack` back (a retake): cancelled in the pool (`cancel` says where it was) and no longer held."""
        with self._lock:
            where = cancel(stack)
            self._in_pool.discard(stack)
            if stack in self._held:
                self._held.remove(stack)
            return where

    def record(self, stack: Path, write: Callable[[], bool]) -> None:
        """Record a blend event of `stack` with `write` while the stack is still ours (never after a retake took
        it back); `write` returns True when the stack is done with (its outcome recorded)."""
        with self._lock:
            if stack in self._in_pool and write():
                self._in_pool.discard(stack)
