"""What every long-running mode shares: signals, reload, listeners (the hooks are one: every event is told
once, as a typed Progress), status to systemd, the main loop.

The capture daemon (`medianscan.service.capture`) and the hot folder (`medianscan.service.watch`) are both a
`Service`: each adds only its own work (`_serve_once`, `_apply_config`, `_wind_down`, `status_line`). Signal
handlers only set flags; the main thread does the work. The shared lines log under the mode's own logger, so
the journal says which mode spoke.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import resource
import signal
import threading
import time
from collections import deque
from pathlib import Path
from types import FrameType
from typing import Any

from medianscan.config.loader import load_config
from medianscan.config.schema import Config
from medianscan.errors import MedianscanError
from medianscan.library import contents
from medianscan.records import BlendRecord
from medianscan.service.blend_worker import Job
from medianscan.service.hooks import Hooks
from medianscan.service.notify import Notifier
from medianscan.service.pool import BlendPool, Event
from medianscan.service.progress import Listener, Progress, ServiceError

OPEN_FILES = 8192  # the open files a service asks for (the units' LimitNOFILE)


def more_open_files(ceiling: int = OPEN_FILES) -> int:
    """Raise this process's soft limit of open files to its hard limit (up to `ceiling`); returns the soft limit.

    The default soft limit (1024) is small for a daemon that holds a camera, a control socket, a console, blend
    workers' pipes and the library's files at once; the units set LimitNOFILE too. The console's connections are
    capped besides (medianscan.console.bounded), so no client can take them all."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(ceiling, hard) if hard != resource.RLIM_INFINITY else ceiling
    if wanted > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
    return soft


def log_blend_notes(label: str, record: BlendRecord) -> None:
    """In the journal: each frame a blend dropped (--drop-bad-frames) and why, the one-line notice naming the files
    it left out (a JPEG beside raws, a temp), and each warning of a blend that was written (identical frames, a
    blend noisier than one frame)."""
    log = logging.getLogger(__name__)
    for dropped in record.dropped:
        log.warning("%s: dropped %s: %s", label, dropped.path.name, dropped.reason)
    line = contents.notice(label, record.ignored)
    if line:
        log.warning("%s", line)
    for warning in record.warnings:
        log.warning("%s: %s", label, warning)


# What both modes blend and stitch with: a jobs.Task in, a jobs.Result out (Any: a pool of blends alone fits too)
ServicePool = BlendPool[Any, Any]
RECORD_BACKOFF_MAX = 30.0  # seconds between tries to record a blend whose record could not be written


def make_pool(cfg: Config, job: Job[Any, Any] | None = None) -> ServicePool:
    """The blend pool for `cfg` (its job `service.jobs.run_job` unless given), its workers warmed up for the
    configured frame count and method. The jobs (the blend, numba's kernels) are imported here, not with this
    module: the workers import them in their own processes; the service's own needs only their names to send."""
    from medianscan.service.jobs import run_job, warm_up_blend

    warm = functools.partial(warm_up_blend, cfg.frames_range()[1], cfg.blend)
    return BlendPool(cfg.workers, cfg.queue_size, job=run_job if job is None else job, warm=warm)


class Service:
    """A mode that serves until SIGTERM / SIGINT / `stop()` and reloads its configuration on SIGHUP / `reload()`."""

    pool: ServicePool  # set by each mode

    def stopping(self) -> str:
        """What the service does once asked to stop (logged after the signal's name, and systemd's status)."""
        return "stopping"

    def __init__(self, cfg: Config, *, config_path: Path | None, notifier: Notifier | None) -> None:
        self.cfg = cfg
        self.config_path = config_path
        self.notifier = notifier if notifier is not None else Notifier()
        self.log = logging.getLogger(type(self).__module__)
        self.hooks = self._make_hooks(cfg)  # replaced on reload; the listener below runs the current one's
        self.listeners: list[Listener] = [self._run_hooks]  # the hooks hear the typed events, as any listener
        self._message: str | None = None  # the last refusal or error, for status
        self._message_stack: Path | None = None  # the stack the message is about, if any
        self.stop_event = threading.Event()
        self._reload = threading.Event()
        self._last_status = ""
        self._unrecorded: deque[tuple[Event, float, float]] = deque()  # (event, next try, backoff): see _collect

    # --- public API -----------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask `run()` to stop (like SIGTERM)."""
        self.stop_event.set()

    def reload(self) -> None:
        """Ask `run()` to reload the configuration file (like SIGHUP)."""
        self._reload.set()

    def status_line(self) -> str:
        """One line for systemd's STATUS= and the log."""
        raise NotImplementedError

    @property
    def message(self) -> str | None:
        """The last refusal or error the operator was told, until it is put right."""
        return self._message

    # --- what each mode adds --------------------------------------------------------------------------

    def _serve_once(self) -> None:
        """One turn of the main loop (about 0.2 s): `_collect`, `_check_reload()`, `_publish_status()`."""
        raise NotImplementedError

    def _record(self, event: Event) -> None:
        """Record a blend that started or ended (the manifest, retention, hooks, listeners)."""
        raise NotImplementedError

    def _apply_config(self, cfg: Config) -> list[str]:
        """Take a reloaded `cfg` (raise MedianscanError to refuse it, before changing anything); return the
        options whose change needs a restart."""
        raise NotImplementedError

    def _wind_down(self) -> None:
        """Stop this mode's threads and processes (called once, from `_shutdown`)."""
        raise NotImplementedError

    # --- the main loop --------------------------------------------------------------------------------

    def _install_signals(self) -> None:
        """SIGTERM / SIGINT -> stop, SIGHUP -> reload (flags only; only possible on the main thread); and the most
        open files the system allows this process (see `more_open_files`)."""
        more_open_files()
        if threading.current_thread() is not threading.main_thread():
            return

        def on_stop(signum: int, frame: FrameType | None) -> None:
            del frame
            self.log.info("%s: %s", signal.Signals(signum).name, self.stopping())
            self.stop_event.set()

        def on_hup(signum: int, frame: FrameType | None) -> None:
            del signum, frame
            self._reload.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)

    def _serve(self) -> int:
        """Ping the watchdog and serve until stopped, then shut down; returns the exit code."""
        interval = self.notifier.watchdog_interval()
        next_ping = 0.0
        try:
            while not self.stop_event.is_set():
                if interval and time.monotonic() >= next_ping:
                    self.notifier.watchdog()
                    next_ping = time.monotonic() + interval / 3
                self._serve_once()
        finally:
            self._shutdown()
        return 0

    def _shutdown(self) -> None:
        self.stop_event.set()
        self.notifier.stopping(self.stopping())
        self._wind_down()
        self._hooks_wait()

    def _collect(self, timeout: float) -> None:
        """Record the pool's events of the next `timeout` seconds. One whose record cannot be written now (out of
        file descriptors, a disk that is full for a moment) is tried again, with backoff, until it is, so that no
        stack's record stays wrong; one that fails otherwise (a folder moved by hand) is an error, and serving
        goes on."""
        for _ in range(len(self._unrecorded)):
            event, due, backoff = self._unrecorded.popleft()
            if time.monotonic() < due:
                self._unrecorded.append((event, due, backoff))
            else:
                self._try_record(event, backoff)
        for event in self.pool.poll(timeout):
            self._try_record(event, 0.0)

    def _try_record(self, event: Event, backoff: float) -> None:
        try:
            self._record(event)
        except OSError as exc:
            if not backoff:
                self.log.warning("%s: cannot record the blend yet (%s); trying again", event.stack, exc.strerror or exc)
            backoff = min(max(1.0, backoff * 2), RECORD_BACKOFF_MAX)
            self._unrecorded.append((event, time.monotonic() + backoff, backoff))
        except Exception as exc:
            self.log.exception("recording %s", event)
            self.report_error(f"{event.stack}: could not record the blend ({exc})", event.stack)

    def _publish_status(self) -> None:
        line = self.status_line()
        if line != self._last_status:
            self._last_status = line
            self.notifier.status(line)

    # --- configuration reload -------------------------------------------------------------------------

    def _check_reload(self) -> None:
        if self._reload.is_set():
            self._reload.clear()
            self._do_reload()

    def _do_reload(self) -> None:
        """A bad file is refused with one sentence and the running configuration kept."""
        if self.config_path is None:
            self.log.info("SIGHUP: no configuration file to reload")
            return

        self.notifier.reloading()
        try:
            restart = self._apply_config(load_config(self.config_path))
        except MedianscanError as exc:
            self.report_error(f"reload refused, keeping the running configuration: {exc}", None)
            self.notifier.ready(self.status_line())
            return
        if restart:
            self.log.warning("reloaded; changes to %s take effect at the next restart", ", ".join(restart))
        else:
            self.log.info("configuration reloaded from %s", self.config_path)
        self.notifier.ready(self.status_line())

    # --- feedback -------------------------------------------------------------------------------------

    def report_error(self, message: str, stack: Path | None) -> None:
        """Log, show in status, tell the listeners (the error hook among them)."""
        self.log.error("%s", message)
        self._note(message, stack)
        self.emit(ServiceError(stack, message))

    def _note(self, message: str, stack: Path | None) -> None:
        """Keep `message` for status (`stack`: the stack it is about, if any)."""
        self._message, self._message_stack = message, stack

    def _blended(self, stack: Path) -> None:
        """A stack blended: a message about its earlier failure is old news."""
        if self._message_stack is not None and self._message_stack == stack:
            self._message = self._message_stack = None

    def emit(self, news: Progress) -> None:
        for listener in list(self.listeners):
            try:
                listener(news)
            except Exception:
                self.log.exception("listener for %s failed", type(news).__name__)

    def _run_hooks(self, news: Progress) -> None:
        self.hooks.on_event(news)

    @staticmethod
    def _make_hooks(cfg: Config) -> Hooks:
        return Hooks(cfg.hooks)

    def _hooks_wait(self) -> None:
        with contextlib.suppress(Exception):
            self.hooks.wait(5.0)
