"""The blend queue: a bounded queue of stack paths served by long-lived blend processes.

Blending runs in processes started with multiprocessing's `spawn` context, so the capture thread never
waits for it and a crash in a decoder or a kernel takes down one worker, not the daemon. Each worker loads
and warms up the combine kernels once, then blends one stack at a time and reports the result back. The
parent hands every worker its next stack itself, so it always knows which stack a dead worker was holding: a
fresh worker takes the dead one's place and tries that stack once more (a SIGKILL from the OOM killer, or a
crash that depends on timing, may not recur); a second death fails the stack, naming both (`the blend worker
died of SIGSEGV twice while blending this stack`). Never a loop, never a stack lost or dropped in silence.

Only paths and small JSON results cross the process boundary; the pixels stay in the worker. The services hand
it the stitch of a tiled negative too (`service.jobs.run_job`, `service.tiled`): the same workers, the same one
more try after a death.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Generic

from medianscan.errors import MedianscanError
from medianscan.service.blend_worker import Done, Job, R, Ready, Stop, T, Task, WarmUp, serve

log = logging.getLogger(__name__)


# --- what the pool reports ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome(Generic[R]):
    """A finished stack: its result, or the one-sentence reason it failed."""

    stack: Path
    result: R | None
    error: str | None
    seconds: float
    worker: int

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Started:
    """A worker took a stack (the manifest then says `blending`)."""

    stack: Path
    worker: int


Event = Started | Outcome[Any]


def _death(code: int | None) -> str:
    """How a worker process ended, as a verb phrase: 'died of SIGSEGV', 'exited with code 1'."""
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"died of {signal.Signals(-code).name}"
        return f"died of signal {-code}"
    return f"exited with code {code}"


@dataclass
class _Worker:
    number: int
    process: BaseProcess
    conn: Connection
    ready: bool = False
    stack: Path | None = None
    task: Any = None  # the stack's task, to hand it to a fresh worker if this one dies
    since: float = 0.0
    cancelled: bool = False


class BlendPool(Generic[T, R]):
    """Blend worker processes behind a bounded queue of stack paths.

    `submit` never blocks: it returns False when the queue is full, which is the daemon's back-pressure
    signal. `poll` (called from one thread, the daemon's main loop) collects results, notices dead workers,
    reports their stack failed and starts replacements. Other methods are safe from any thread.
    """

    def __init__(
        self,
        workers: int = 1,
        queue_size: int = 4,
        *,
        job: Job[T, R],
        warm: WarmUp | None = None,
    ) -> None:
        if workers < 1 or queue_size < 1:
            raise MedianscanError("the blend queue needs at least one worker and room for one stack")
        self.size = workers
        self.queue_size = queue_size
        self.job = job
        self.warm = warm
        self._ctx = mp.get_context("spawn")
        self._lock = threading.Lock()
        self._waiting: deque[tuple[Path, T]] = deque()
        self._workers: list[_Worker] = []
        self._events: list[Started | Outcome[R]] = []
        self._next_number = 0
        self._crashes: deque[float] = deque(maxlen=5)
        self._deaths: dict[Path, str] = {}  # stack -> how the worker that first tried it died
        self._respawn_at = 0.0
        self._started = False  # workers run from start() on (a catch-up with nothing to blend starts none)
        self._stopped = False

    # --- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the workers (they warm up in the background; stacks wait in the queue meanwhile)."""
        with self._lock:
            self._started = True
            while len(self._workers) < self.size:
                self._workers.append(self._spawn())

    def _spawn(self) -> _Worker:
        self._next_number += 1
        ours, theirs = self._ctx.Pipe()
        process = self._ctx.Process(
            target=serve,
            args=(theirs, os.getpid(), self.job, self.warm),
            name=f"medianscan-blend-{self._next_number}",
            daemon=True,
        )
        process.start()
        theirs.close()
        log.debug("blend worker %d started (pid %s)", self._next_number, process.pid)
        return _Worker(self._next_number, process, ours)

    def stop(self, timeout: float = 5.0) -> list[Path]:
        """Stop every worker without waiting for running blends; returns the stacks left unfinished.

        Those stacks stay on disk as they are; the caller records them as still pending.
        """
        with self._lock:
            self._stopped = True
            left = [w.stack for w in self._workers if w.stack is not None]
            left += [stack for stack, _ in self._waiting]
            self._waiting.clear()
            workers, self._workers = self._workers, []
        for w in workers:
            if w.stack is not None or not w.ready:
                w.process.kill()  # its stack stays on disk as it was; a half-written output is only a temp
            else:
                with contextlib.suppress(OSError, ValueError):
                    w.conn.send(Stop())
        deadline = time.monotonic() + timeout
        for w in workers:
            w.process.join(max(0.0, deadline - time.monotonic()))
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
            w.conn.close()
        return left

    # --- the queue ------------------------------------------------------------------------------------

    def submit(self, stack: Path, options: T) -> bool:
        """Queue a stack to blend with `options`; False (nothing queued) when the queue is full."""
        with self._lock:
            if self._stopped:
                raise MedianscanError("the blend queue is stopped")
            if len(self._waiting) >= self.queue_size:
                return False
            self._waiting.append((Path(stack), options))
            self._dispatch()
            return True

    def cancel(self, stack: Path) -> str | None:
        """Take a stack out of the pool: 'waiting' (dequeued), 'running' (its worker killed), or None."""
        stack = Path(stack)
        with self._lock:
            for item in self._waiting:
                if item[0] == stack:
                    self._waiting.remove(item)
                    return "waiting"
            for w in self._workers:
                if w.stack == stack:
                    w.stack, w.cancelled = None, True  # not a crash: poll() just replaces the worker
                    self._deaths.pop(stack, None)
                    w.process.kill()
                    w.process.join()
                    return "running"
        return None

    @property
    def full(self) -> bool:
        with self._lock:
            return len(self._waiting) >= self.queue_size

    def waiting(self) -> list[Path]:
        with self._lock:
            return [stack for stack, _ in self._waiting]

    def running(self) -> list[Path]:
        with self._lock:
            return [w.stack for w in self._workers if w.stack is not None]

    def ready(self) -> int:
        """Workers warmed up and serving (the cadence bench waits for them before it times anything)."""
        with self._lock:
            return sum(w.ready for w in self._workers)

    def _dispatch(self) -> None:
        """Hand waiting stacks to idle, warmed-up workers (lock held)."""
        for w in self._workers:
            if not self._waiting:
                return
            if w.ready and w.stack is None and w.process.is_alive():
                stack, options = self._waiting.popleft()
                try:
                    w.conn.send(Task(stack, options))
                except (OSError, ValueError):
                    self._waiting.appendleft((stack, options))  # dead pipe: poll() replaces the worker
                    continue
                w.stack, w.task, w.since = stack, options, time.monotonic()
                self._events.append(Started(stack, w.number))

    # --- results --------------------------------------------------------------------------------------

    def poll(self, timeout: float = 0.0) -> list[Started | Outcome[R]]:
        """Wait up to `timeout` seconds for news; returns started and finished stacks, in order."""
        with self._lock:
            if self._events:
                timeout = 0.0
            handles: list[Any] = [w.conn for w in self._workers] + [w.process.sentinel for w in self._workers]
        if handles:
            wait(handles, timeout)
        elif timeout > 0:
            time.sleep(timeout)
        with self._lock:
            for w in list(self._workers):
                self._drain(w)
                if not w.process.is_alive():
                    self._replace(w)
            self._top_up()
            self._dispatch()
            events, self._events = self._events, []
            return events

    def _drain(self, w: _Worker) -> None:
        try:
            while w.conn.poll():
                message = w.conn.recv()
                if isinstance(message, Ready):
                    w.ready = True
                    log.info("blend worker %d ready after %.1f s", w.number, message.seconds)
                elif isinstance(message, Done) and w.stack is not None and w.stack == message.stack:
                    self._events.append(Outcome(w.stack, message.result, message.error, message.seconds, w.number))
                    self._deaths.pop(w.stack, None)
                    w.stack, w.task = None, None
        except (EOFError, OSError):
            pass

    def _replace(self, w: _Worker) -> None:
        """Take a dead worker out (lock held); its stack goes to the front of the queue for one more try, or, when
        this was its second try, is reported failed naming how both workers died. _top_up starts the new worker."""
        self._workers.remove(w)
        w.conn.close()
        if not w.cancelled:
            self._crashes.append(time.monotonic())
        if w.stack is None:
            return
        death = _death(w.process.exitcode)
        first = self._deaths.pop(w.stack, None)
        doing, what = getattr(w.task, "DOING", ("blending", "stack"))  # a task may say what it is: a stitch
        if first is None:
            log.error(
                "blend worker %d %s while %s %s; a fresh worker tries it once more", w.number, death, doing, w.stack
            )
            self._deaths[w.stack] = death
            self._waiting.appendleft((w.stack, w.task))
            return
        both = f"{death} twice" if death == first else f"{first}, then {death},"
        log.error("blend worker %d %s while %s %s; the %s is failed", w.number, death, doing, w.stack, what)
        failed = f"the blend worker {both} while {doing} this {what}"
        self._events.append(Outcome(w.stack, None, failed, time.monotonic() - w.since, w.number))

    def _top_up(self) -> None:
        """Start workers until the pool is full again (lock held); a failed start is retried at the next poll."""
        if self._stopped or not self._started or len(self._workers) >= self.size:
            return
        now = time.monotonic()
        if now < self._respawn_at:
            return
        if len(self._crashes) == self._crashes.maxlen and now - self._crashes[0] < 10:
            log.error("blend workers keep dying; waiting a little before starting another")
            self._crashes.clear()
            self._respawn_at = now + 1.0
            return
        try:
            while len(self._workers) < self.size:
                self._workers.append(self._spawn())
        except OSError as exc:  # e.g. out of processes or memory: try again shortly
            log.error("cannot start a blend worker: %s", exc)
            self._respawn_at = now + 1.0
