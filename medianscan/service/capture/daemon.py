"""The daemon: wiring only. Triggers -> actions -> burst -> library -> blend queue, and back to the operator.

Threads and processes, and what each owns:
- the camera thread (camera_thread.CameraThread) owns the Camera through its CameraLink (libgphoto2 is
  single-threaded), the library's capture side and the bursts cut off with frames on the body: it takes
  actions from the triggers, checks the disk, fires bursts, records them and hands the stacks to the pool;
- the main thread owns the blend pool: it collects results, records them, applies retention, tells the
  listeners (the hooks are one), pings the watchdog, and handles SIGTERM / SIGHUP (flags only; the work
  happens in the loop);
- what the two share is the DaemonState (state.py), one lock behind methods: paused, the burst under way and
  its bracket group, the wait for room, the roll run's or tile run's progress, the operator's message, the
  camera's status and the stacks between the camera thread and the pool. Everyone else reads a frozen
  DaemonSnapshot of it;
- the blend workers are separate spawned processes (medianscan.service.pool);
- the trigger sources (footswitch, control socket, keyboard, console) are the infra's threads feeding one hub;
  a stop-roll or stop-tiles (or a press during a run) is answered on the source's thread, through the
  DaemonState.

The daemon holds no image data. Every state lives in the stack manifests, so `kill -9` at any moment is
followed by a start that carries on (Library.recover). No fault stops the process: a missing camera, a
failed blend or a full disk becomes a status line, a log entry and the error hook.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import typing
from pathlib import Path
from typing import Any

from medianscan.blend.options import BlendOptions
from medianscan.capture.control_socket import ControlServer, hub_handler, server_socket_path
from medianscan.capture.events import PressPolicy, PressQueue, TriggerHub
from medianscan.capture.footswitch import Footswitch
from medianscan.capture.keyboard import KeyboardTrigger
from medianscan.capture.live_view import LiveFeed
from medianscan.config.schema import Config
from medianscan.console.server import ConsoleServer
from medianscan.errors import MedianscanError
from medianscan.library.manifest import State, read_manifest
from medianscan.library.recovery import Recovery, recover, recover_stack
from medianscan.library.rolls import Library
from medianscan.library.tile_set import is_tiled, read_tile_set
from medianscan.records import BlendRecord
from medianscan.reports import CameraView, QueueState
from medianscan.service.capture import roll_turn
from medianscan.service.capture.camera_link import CameraLink, CameraStatus
from medianscan.service.capture.camera_thread import CameraThread
from medianscan.service.capture.cut_off import left_a_journal
from medianscan.service.capture.state import DaemonSnapshot, DaemonState
from medianscan.service.capture.status import capture_status, capture_status_line, queue_state
from medianscan.service.jobs import BlendTask
from medianscan.service.loop import Service, ServicePool, log_blend_notes, make_pool
from medianscan.service.notify import Notifier
from medianscan.service.pool import Event, Outcome, Started
from medianscan.service.progress import BlendDone
from medianscan.service.tiled import TiledNegatives
from medianscan.vocabulary import ACTIONS, Request
from medianscan.wording import counted

log = logging.getLogger(__name__)

READY_WAIT_SECONDS = 10.0  # READY=1 waits this long for the camera; later it is retried in the background


class Daemon(Service):
    """One scanning session: `run()` blocks until SIGTERM / SIGINT / stop() and returns the exit code."""

    def stopping(self) -> str:
        return "finishing the running burst, then stopping" if self.state.bursting else "stopping"

    def __init__(
        self,
        cfg: Config,
        *,
        config_path: Path | None = None,
        keyboard: bool = False,
        notifier: Notifier | None = None,
        triggers: bool = True,
        pool: ServicePool | None = None,
    ) -> None:
        super().__init__(cfg, config_path=config_path, notifier=notifier)
        self.keyboard = keyboard
        self.use_triggers = triggers
        self.library = Library.from_config(cfg)
        self.pool = pool if pool is not None else make_pool(cfg)
        self.hub = TriggerHub()
        self.state = DaemonState(lambda: self.hub.told, self._queue_of)  # shared by the threads, behind its lock
        self.link = CameraLink(lambda: self.cfg.camera, self.state.camera_is)  # touched by the camera thread only
        self.live = LiveFeed()  # preview frames from the camera thread to the console
        self.presses = PressQueue(self.hub, PressPolicy(cfg.triggers.press_during_burst))
        self._cut_off: set[Path] = set()  # found at start; the camera thread's once it runs
        self.tiled = TiledNegatives(lambda: self.cfg.blend.method)  # negatives shot in tiles: stitched when blended
        # a stop, or the pedal, during a roll run or a tile run: it stops
        for action in ("stop-roll", "stop-tiles", "capture", "scan-roll", "scan-tiles"):
            self.hub.at_once[action] = functools.partial(roll_turn.at_once, self.state)
        self._camera_thread: threading.Thread | None = None
        self.console: ConsoleServer | None = None
        self._sources_started = False

    # --- public API -----------------------------------------------------------------------------------

    def request(self, action: str) -> None:
        """Queue an operator action (the control socket, the demo's automatic trigger and tests use this)."""
        if action not in ACTIONS:
            raise MedianscanError(f"unknown action {action!r}: use one of {', '.join(ACTIONS)}")
        self.hub.emit(typing.cast(Request, action), "api")

    def stop(self) -> None:
        """Ask `run()` to finish the running burst, leave the queue on disk and return (like SIGTERM; a roll run
        stops at its next step)."""
        super().stop()

    # --- what the console reads (medianscan.console.scanner.Scanner) -------------------------------------

    @property
    def frames_per_burst(self) -> str:
        return self.cfg.frames_said()

    @property
    def rig(self) -> str | None:
        rig = self.cfg.rig
        return None if rig.port is None else f"{rig.protocol} on {rig.port}"

    @property
    def rig_axes(self) -> str | None:
        """x (a roll rig) or xy (an XY stage: the console's Scan tiles button shows), None without a rig."""
        return None if self.cfg.rig.port is None else self.cfg.rig.axes

    def has_camera(self) -> bool:
        return self.link.camera is not None

    def snapshot(self) -> DaemonSnapshot:
        """The daemon's state at one instant."""
        return self.state.snapshot()

    def camera_view(self) -> CameraView:
        return self.snapshot().camera

    @property
    def camera_status(self) -> CameraStatus:
        return self.state.camera

    @property
    def busy(self) -> bool:
        """True while a burst is running (a press now is queued once or ignored, per the config)."""
        return self.state.bursting

    @property
    def message(self) -> str | None:
        return self.state.message

    def status(self) -> dict[str, Any]:
        """Everything `medianscan status` shows, as the control socket carries it."""
        url = None if self.console is None else self.console.url
        return capture_status(self.snapshot(), self.library, self.cfg, url).to_json()

    def status_line(self) -> str:
        return capture_status_line(self.snapshot(), self.library)

    def _queue_of(self, held: int, waiting_for_room: bool) -> QueueState:
        return queue_state(held, waiting_for_room, self.pool, self.cfg.queue_size)

    # --- the main loop --------------------------------------------------------------------------------

    def run(self) -> int:
        """Serve until stopped; a MedianscanError before READY (e.g. a second daemon) propagates."""
        self._install_signals()
        self._start_triggers()  # first: the control socket refuses a second daemon on the same library
        try:
            self._recover()
            self.pool.start()
        except BaseException:
            self._stop_triggers()
            raise
        work = CameraThread(
            state=self.state,
            link=self.link,
            presses=self.presses,
            live=self.live,
            config=lambda: self.cfg,
            library=lambda: self.library,
            pool=self.pool,
            submit=self.submit,
            emit=self.emit,
            report=self.report_error,
            status_line=self.status_line,
            stop=self.stop_event,
            cut_off=self._cut_off,
        )
        self._camera_thread = threading.Thread(target=work.run, name="camera", daemon=True)
        self._camera_thread.start()
        self.link.tried.wait(READY_WAIT_SECONDS)
        self.notifier.ready(self.status_line())
        log.info("ready: %s", self.status_line())
        return self._serve()

    def _serve_once(self) -> None:
        try:
            self._collect(0.2)
            self._feed_backlog()
            self.tiled.feed(self.pool.submit, lambda: len(self.pool.waiting()) < max(1, self.cfg.queue_size - 1))
            self._check_reload()
            self._publish_status()
        except Exception:  # e.g. the library's disk went away: log it, keep serving, try again
            log.exception("main loop")
            self.stop_event.wait(1.0)

    def _recover(self) -> None:
        rec = recover(self.library)
        self._recover_tiles(rec)
        for stack in rec.incomplete:
            log.warning("%s: burst was cut off; kept as incomplete", stack)
            if left_a_journal(stack):
                self._cut_off.add(stack)
        for path in rec.removed_temps:
            log.info("removed an interrupted write: %s", path)
        for stack, reason in rec.unreadable:
            log.warning("%s: skipped (%s)", stack, reason)
        for folder in rec.cut_off_flats:
            log.warning("a flat burst was cut off by the stop; its frames are kept in %s: shoot the flat again", folder)
        for stack in rec.queued:
            self.state.hold(stack)
        if rec.queued:
            log.info("%s from before the restart queued for blending", counted(len(rec.queued), "stack"))
        due = len(self.tiled.due)
        if due:
            log.info("%s from before the restart queued for stitching", counted(due, "tiled negative"))

    def _recover_tiles(self, rec: Recovery) -> None:
        """A tiled negative has no stack.json of its own (the recovery found it unreadable): its tile stacks are
        recovered as stacks are (cut-off bursts marked, pending blends queued), and its stitch queued if due."""
        for negative, reason in list(rec.unreadable):
            if not is_tiled(negative):
                continue
            rec.unreadable.remove((negative, reason))
            try:
                folders = read_tile_set(negative).folders()
            except MedianscanError as exc:
                rec.unreadable.append((negative, str(exc)))
                continue
            for tile in folders:
                if tile.is_dir():
                    recover_stack(self.library, tile, rec)
            self.tiled.check(negative)

    def _feed_backlog(self) -> None:
        """Queue stacks found at start, keeping a slot free so the next capture need not wait for them."""
        self.state.feed(
            lambda: len(self.pool.waiting()) < self.cfg.queue_size - 1 + (self.cfg.queue_size == 1), self._submit
        )

    def submit(self, stack: Path) -> bool:
        """Queue `stack` for blending (with the flat field it was shot under); False when the queue is full."""
        return self.state.hand_over(stack, self._submit)

    def _submit(self, stack: Path) -> bool:
        try:
            manifest = read_manifest(stack)
            flat, bracket = manifest.flat, bool(manifest.bracket)
        except MedianscanError:
            flat, bracket = None, False
        options = BlendOptions.from_config(
            self.cfg.blend, editors=tuple(self.cfg.outputs.editors), **({"bracket": True} if bracket else {})
        )
        return self.pool.submit(stack, BlendTask(stack, options, flat))

    def _record(self, event: Event) -> None:
        """Record the event while its stack is still ours (a retake may have taken it back: its folder moved
        to discarded/); an OSError here leaves the stack ours, to be recorded again."""

        if self.tiled.owns(event.stack):
            self._stitch_recorded(event)
            return

        def write() -> bool:
            if isinstance(event, Started):
                self.library.mark(event.stack, State.BLENDING)
                return False
            self._finished(event)
            return True

        self.state.record(event.stack, write)

    def _finished(self, outcome: Outcome[BlendRecord]) -> None:
        stack = outcome.stack
        if outcome.ok and outcome.result is not None:
            self.library.mark(stack, State.BLENDED, blend=outcome.result, blend_seconds=outcome.seconds, error=None)
            output = outcome.result.output
            done = self.library.retain(stack) if self.library.retention != "keep" else "kept"
            log.info("%s blended in %.1f s -> %s (raws %s)", stack.name, outcome.seconds, output.name, done)
            log_blend_notes(stack.name, outcome.result)
            self._blended(stack)
            self.emit(BlendDone(stack, outcome.result, outcome.seconds))
            self.tiled.after_blend(stack)
        else:
            self.library.mark(stack, State.FAILED, error=outcome.error, blend_seconds=outcome.seconds)
            self.report_error(outcome.error or "blend failed", stack)

    def _stitch_recorded(self, event: Event) -> None:
        """A tiled negative's stitch started or ended: its tiles.json says so; a failure is the operator's
        message too."""
        done = self.tiled.record(event)
        if done is None:
            return
        label = f"{done.negative.parent.name}/{done.negative.name}"
        said = done.said(label)
        if done.record is not None:
            log.log(logging.WARNING if done.unregistered else logging.INFO, "%s", said)
            self._blended(done.negative)
        else:
            self.report_error(said, done.negative)
        self.emit(done.news(label))  # the stitch-done or stitch-failed hook

    def _wind_down(self) -> None:
        self._stop_triggers()
        if self._camera_thread is not None:
            while self._camera_thread.is_alive():
                if self.state.bursting:
                    self.notifier.extend_timeout(30)
                self._camera_thread.join(1.0)
        left = self.pool.stop()
        self.tiled.left_over([key for key in left if self.tiled.owns(key)])
        left = [key for key in left if not self.tiled.owns(key)]
        for stack in left:
            with contextlib.suppress(OSError, MedianscanError):
                if read_manifest(stack).state == State.BLENDING:
                    self.library.mark(stack, State.CAPTURED, note="blend interrupted by a stop; queued again at start")
        if left:
            log.info("%s left queued on disk for the next start", counted(len(left), "stack"))

    # --- what went wrong: the operator's message lives in the shared state -------------------------------

    def _note(self, message: str, stack: Path | None) -> None:
        self.state.report(message, stack)

    def _blended(self, stack: Path) -> None:
        self.state.blended(stack)

    # --- configuration reload -------------------------------------------------------------------------

    def _apply_config(self, cfg: Config) -> list[str]:
        library = Library.from_config(cfg)
        needs_restart = [
            name for name in ("workers", "queue_size", "mode") if getattr(cfg, name) != getattr(self.cfg, name)
        ]
        if cfg.triggers != self.cfg.triggers:
            needs_restart.append("triggers")
        if (cfg.console.listen, cfg.console.token) != (self.cfg.console.listen, self.cfg.console.token):
            needs_restart.append("console")
        with self.library.lock:
            camera_changed = cfg.camera != self.cfg.camera
            self.cfg = cfg
            self.library = library
            self.hooks = self._make_hooks(cfg)
        if camera_changed:
            self.link.changed.set()
        return needs_restart

    # --- triggers -------------------------------------------------------------------------------------

    def _start_triggers(self) -> None:
        """The control socket, the footswitch (when configured) and the keyboard (--keyboard) feed the hub."""
        if not self.use_triggers:
            return
        path = server_socket_path(self.cfg)
        self.hub.add(ControlServer(path, hub_handler(self.hub, self.status)))
        if self.cfg.console.listen is not None:
            self.console = ConsoleServer(self.cfg.console, self)
            self.hub.add(self.console)
        if self.cfg.triggers.footswitch.device is not None:
            self.hub.add(Footswitch(self.cfg.triggers.footswitch, self.hub.emit))
        if self.keyboard:
            self.hub.add(KeyboardTrigger(self.hub.emit))
        self._sources_started = True
        try:
            self.hub.start()
        except BaseException:
            self._stop_triggers()
            raise

    def _stop_triggers(self) -> None:
        if self._sources_started:
            self._sources_started = False
            self.hub.stop()
