"""A blend worker's side of its pipe: the messages parent and worker exchange, and the loop a spawned worker runs
(warm up, then blend each stack it is handed, at the lowest CPU priority, dying with its parent). The parent's
side, which hands out the stacks and replaces a worker that died, is medianscan.service.pool."""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import logging
import os
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Generic, TypeVar

from medianscan.errors import MedianscanError

log = logging.getLogger(__name__)

T = TypeVar("T")  # what a worker is given with each stack (the blend task)
R = TypeVar("R")  # what it gives back (the blend record)
Job = Callable[[Path, T], R]  # (stack, task) -> result; raises MedianscanError with the reason on failure
WarmUp = Callable[[], None]

_PR_SET_PDEATHSIG = 1
NICE = 10  # blend workers' CPU niceness: capture first, yet blends still get ~10% against a busy nice-0 process


# --- the messages on a worker's pipe ---------------------------------------------------------------------


@dataclass(frozen=True)
class Task(Generic[T]):
    """Parent -> worker: blend this stack."""

    stack: Path
    task: T


@dataclass(frozen=True)
class Stop:
    """Parent -> worker: no more stacks; exit."""


@dataclass(frozen=True)
class Ready:
    """Worker -> parent: warmed up, ready for a stack."""

    pid: int
    seconds: float


@dataclass(frozen=True)
class Done(Generic[R]):
    """Worker -> parent: a stack finished, with its result or the one-sentence reason it failed."""

    stack: Path
    result: R | None
    error: str | None
    seconds: float


def _die_with_parent(parent: int) -> None:
    """Ask Linux to kill this worker when the daemon dies (even by `kill -9`), so no orphan blends on."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _yield_to_capture() -> None:
    """Blending is background work: run it at the lowest CPU priority, so the camera thread (and the operator's
    cadence) always comes first and blends use the time the capture leaves idle."""
    with contextlib.suppress(OSError):
        os.nice(NICE)


def serve(conn: Connection, parent: int, job: Job[T, R], warm: WarmUp | None) -> None:
    """The worker process: warm up, then blend each stack the parent sends until it sends None."""
    faulthandler.enable()  # a crash in a native decoder leaves its stack in the journal (stderr), not nothing
    _die_with_parent(parent)
    _yield_to_capture()
    # Ctrl-C, a group-wide SIGTERM or SIGHUP reach the workers too; the daemon decides what happens to a
    # running blend (and PDEATHSIG ends a worker whose daemon is gone).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    started = time.monotonic()
    if warm is not None:
        try:
            warm()
        except Exception:
            log.exception("blend worker warm-up failed")
    conn.send(Ready(os.getpid(), time.monotonic() - started))
    while True:
        try:
            while not conn.poll(1.0):
                if os.getppid() != parent:
                    return
            task = conn.recv()
        except (EOFError, OSError):
            return
        if not isinstance(task, Task):
            return
        stack = task.stack
        t0 = time.monotonic()
        try:
            reply: Done[R] = Done(stack, job(stack, task.task), None, time.monotonic() - t0)
        except MedianscanError as exc:
            reply = Done(stack, None, str(exc), time.monotonic() - t0)
        except Exception as exc:  # a bug in a decoder or kernel: report it, keep serving
            detail = traceback.format_exc(limit=-3)
            log.error("blend of %s crashed:\n%s", stack, detail)
            failed = f"blending failed unexpectedly: {type(exc).__name__}: {exc}"
            reply = Done(stack, None, failed, time.monotonic() - t0)
        try:
            conn.send(reply)
        except (OSError, ValueError):
            return
