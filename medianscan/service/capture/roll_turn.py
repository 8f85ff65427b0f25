"""A roll run on the camera thread (`scan-roll`): the rig opened for the run, live view and bursts through the
camera thread's own paths (each frame one stack, queued for blending while the next is found), the run's
progress for status and the console, and `stop-roll` (answered at once: the camera thread is busy with the run)
taking effect between frames."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from medianscan.capture.camera import Camera, NoLiveViewError
from medianscan.capture.events import Answer
from medianscan.capture.live_view import LiveFeed
from medianscan.capture.rig.open import open_rig
from medianscan.capture.rig.roll_run import Resume, RollProgress, RollRun
from medianscan.capture.rig.tile_run import TileProgress
from medianscan.config.schema import Config
from medianscan.library.rolls import Library
from medianscan.service.capture.state import DaemonState
from medianscan.vocabulary import Request

log = logging.getLogger(__name__)


class Shooter(Protocol):
    """The camera thread's side the run needs: its camera, a press's burst, the live feed the console shows, the
    configuration and library of now, and the daemon's stop."""

    roll_resume: Resume | None  # where the last roll run stopped, for the next (None: a new strip)
    live: LiveFeed
    config: Callable[[], Config]
    library: Callable[[], Library]
    stop: threading.Event

    def ready_camera(self, doing: str) -> Camera: ...

    def capture(self, strip_frame: int | None = None) -> Answer: ...


class Viewer(Protocol):
    """What a run's live view needs of the camera thread: its camera, and the feed the console shows."""

    live: LiveFeed

    def ready_camera(self, doing: str) -> Camera: ...


class LivePreview:
    """Live view for a run (a roll's or a tile run), on the camera thread; each preview is shown on the console."""

    def __init__(self, viewer: Viewer, doing: str) -> None:
        self.viewer, self.doing = viewer, doing

    def preview(self) -> bytes | None:
        camera = self.viewer.ready_camera(self.doing)
        feed = self.viewer.live
        try:
            jpeg = camera.preview()
        except NoLiveViewError as exc:
            feed.unavailable = str(exc)
            return None
        feed.publish(jpeg)
        return jpeg


class RunCamera(LivePreview):
    """Live view and bursts for the roll run, on the camera thread."""

    def __init__(self, shooter: Shooter) -> None:
        super().__init__(shooter, "scan the roll")
        self.shooter = shooter

    def shoot(self, strip_frame: int) -> Answer:
        answer = self.shooter.capture(strip_frame)
        roll = self.shooter.library().current_roll()
        if answer.stack is None or roll is None:
            return answer
        return dataclasses.replace(answer, stack=str(roll / answer.stack))  # the run reports the stack's blend


def no_run(action: Request) -> Answer:
    """A stop that came once the run was over (queued behind it)."""
    return Answer(False, action, f"{action} ignored: no run is under way", "ignored")


class _Either:
    """Stop when either is set: the operator's stop-roll, or the daemon stopping (SIGTERM)."""

    def __init__(self, *flags: threading.Event) -> None:
        self.flags = flags

    def is_set(self) -> bool:
        return any(f.is_set() for f in self.flags)


def scan_roll(shooter: Shooter, state: DaemonState) -> Answer:
    """Run the strip under the lens to its end, or until stopped; the answer is the run's summary (ok when the
    strip ended by itself). Its progress is kept in `state`, for status and the console."""
    if state.paused:
        return Answer.paused("scan-roll")
    shooter.ready_camera("scan the roll")
    resume = shooter.roll_resume
    cfg = shooter.config()
    state.begin_run(
        RollProgress(1 if resume is None else resume.frame, 0, 0, 0, "opening the rig", None, started=time.time())
    )
    try:  # a stop-roll or a press from here on stops the run (opening the rig takes a board's boot)
        rig = open_rig(cfg)  # RigError: refused, with the reason
        try:
            if state.run_stop.is_set():
                return Answer(False, "scan-roll", "roll run: stopped by the operator before the first move", "refused")
            stop = _Either(state.run_stop, shooter.stop)
            run = RollRun(rig, RunCamera(shooter), cfg.rig, stop, state.run_at, resume=resume)
            summary = run.run()
            shooter.roll_resume = run.resume()
        finally:
            rig.close()
    finally:  # over: its frames stay for status and the console until the next run
        state.end_run()
    return Answer(summary.ended, "scan-roll", summary.said(), "done" if summary.ended else "refused")


def at_once(state: DaemonState, action: Request, source: str) -> Answer | None:
    """`stop-roll` or `stop-tiles`, and a press of the pedal (or a capture, a scan-roll, a scan-tiles) while a
    run is under way: the run under way (a roll's or a tile run, one at a time) stops at its next step, the film
    or the stage left where it is. Otherwise a press queues as usual (None). On the source's own thread: the
    camera thread is busy with the run."""
    run = state.stop_run()
    if run is None:
        if action in ("stop-roll", "stop-tiles"):
            return no_run(action)
        return None
    log.info("the run under way stops (%s from %s)", action, source or "a trigger")
    if isinstance(run, TileProgress):
        return Answer(True, action, f"the tile run stops after the tile under way (now: {run.doing}); the stage "
                      "stays where it is: scan-tiles again shoots the tiles missing")  # fmt: skip
    return Answer(True, action, f"the roll run stops at its next step (now: {run.doing}); the film stays where it is")
