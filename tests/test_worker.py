"""The blend queue and its spawned worker processes.

The jobs below are stand-ins for the blend (labelled fakes): they let a test hold a worker busy, make it
fail, or kill it mid-job at a chosen moment, which a real blend cannot do on cue. The real blend runs
through the same pool in tests/test_daemon.py.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from medianscan.errors import MedianscanError
from medianscan.service.pool import BlendPool, Event, Outcome, Started
from tests.waiting import wait_until


def gated_job(stack: Path, options: Any) -> dict[str, Any]:
    """Fake blend: waits for `stack/go` (so a test decides when it finishes), fails or dies on request. Each try
    leaves a line with its worker's pid in `stack/tries`; `once-*` stacks die on their first try only, `early-*`
    ones die at once on their first try (before waiting for go)."""
    tries = stack / "tries"
    with tries.open("a") as fh:
        fh.write(f"{os.getpid()}\n")
    attempt = len(tries.read_text().splitlines())
    if stack.name.startswith("early-") and attempt == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    deadline = time.monotonic() + 20
    while not (stack / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    if stack.name.startswith("once-") and attempt > 1:
        return {"stack": str(stack), "pid": os.getpid(), "options": options}
    if stack.name.startswith("kill-then-segfault"):
        os.kill(os.getpid(), signal.SIGKILL if attempt == 1 else signal.SIGSEGV)  # really killed, by the kernel
    if stack.name.startswith(("crash", "once-crash")):
        os.kill(os.getpid(), signal.SIGKILL)
    if stack.name.startswith(("segfault", "once-segfault")):  # what a native decoder's crash looks like
        ctypes.string_at(0)
    if stack.name.startswith("bad"):
        raise MedianscanError(f"{stack}: frame 3 is shifted by 2 px")
    if stack.name.startswith("bug"):
        raise ZeroDivisionError("division by zero")
    return {"stack": str(stack), "pid": os.getpid(), "options": options}


def worker_pids() -> list[int]:
    """The pool's worker processes, as this process's multiprocessing children see them."""
    return [c.pid for c in multiprocessing.active_children() if c.name.startswith("medianscan-blend") and c.pid]


def record_warm_up() -> None:
    """Fake warm-up: leaves a file per worker process, to count how often it ran."""
    with (Path(os.environ["WARM_DIR"]) / str(os.getpid())).open("a") as fh:
        fh.write("warm\n")


def collect(pool: BlendPool[Any, Any], count: int, timeout: float = 30.0) -> list[Outcome[Any]]:
    out: list[Outcome[Any]] = []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        assert time.monotonic() < deadline, f"only {len(out)} of {count} outcomes after {timeout} s"
        out += [e for e in pool.poll(0.2) if isinstance(e, Outcome)]
    return out


def stacks(tmp_path: Path, *names: str, go: bool = True) -> list[Path]:
    paths = []
    for name in names:
        p = tmp_path / name
        p.mkdir()
        if go:
            (p / "go").touch()
        paths.append(p)
    return paths


@pytest.fixture
def warm_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "warm"
    d.mkdir()
    monkeypatch.setenv("WARM_DIR", str(d))  # inherited by the spawned workers
    return d


def test_workers_are_long_lived_warm_up_once_and_report_results(tmp_path: Path, warm_dir: Path) -> None:
    pool = BlendPool(workers=2, queue_size=8, job=gated_job, warm=record_warm_up)
    pool.start()
    try:
        todo = stacks(tmp_path, *(f"s{i}" for i in range(6)))
        for s in todo:
            assert pool.submit(s, {"method": "median"})
        done = collect(pool, 6)
        assert sorted(o.stack for o in done) == todo
        assert all(o.ok and o.result is not None for o in done)
        assert {o.result["options"]["method"] for o in done if o.result} == {"median"}
        pids = {o.result["pid"] for o in done if o.result}
        assert pids <= set(worker_pids()) and len(worker_pids()) == 2
        warmed = {int(p.name): p.read_text() for p in warm_dir.iterdir()}
        assert pids <= set(warmed) <= set(worker_pids())
        assert set(warmed.values()) == {"warm\n"}  # one warm-up per process, not per stack
        assert os.getpid() not in pids
    finally:
        assert pool.stop() == []


def test_a_full_queue_refuses_and_says_so(tmp_path: Path) -> None:
    pool = BlendPool(workers=1, queue_size=2, job=gated_job, warm=None)
    pool.start()
    try:
        a, b, c, d = stacks(tmp_path, "a", "b", "c", "d", go=False)
        assert pool.submit(a, None)
        events: list[Event] = []
        deadline = time.monotonic() + 30
        while not any(isinstance(e, Started) for e in events):  # a is taken once the worker is ready
            assert time.monotonic() < deadline
            events += pool.poll(0.1)
        assert pool.submit(b, None) and pool.submit(c, None)
        assert pool.full
        assert not pool.submit(d, None)
        assert pool.waiting() == [b, c] and pool.running() == [a] and len(pool.waiting()) + len(pool.running()) == 3
        (a / "go").touch()
        assert [o.stack for o in collect(pool, 1)] == [a]
        assert not pool.full  # b moved to the worker: room for one more
        assert pool.submit(d, None)
        for s in (b, c, d):
            (s / "go").touch()
        assert [o.stack for o in collect(pool, 3)] == [b, c, d]
    finally:
        pool.stop()


@pytest.mark.slow
def test_failures_are_reported_and_the_pool_carries_on(tmp_path: Path) -> None:
    pool = BlendPool(workers=1, queue_size=8, job=gated_job, warm=None)
    pool.start()
    try:
        todo = stacks(tmp_path, "bad", "bug", "crash", "after")
        for s in todo:
            assert pool.submit(s, None)
        done = {o.stack.name: o for o in collect(pool, 4)}
        assert done["bad"].error == f"{tmp_path / 'bad'}: frame 3 is shifted by 2 px"
        assert "ZeroDivisionError" in (done["bug"].error or "")
        assert done["crash"].error == "the blend worker died of SIGKILL twice while blending this stack"
        assert done["after"].ok  # the replacement worker took the next stack
        assert len(worker_pids()) == 1
    finally:
        pool.stop()


def test_cancel_takes_a_stack_out_waiting_or_running(tmp_path: Path) -> None:
    pool = BlendPool(workers=1, queue_size=4, job=gated_job, warm=None)
    pool.start()
    try:
        a, b, c = stacks(tmp_path, "a", "b", "c", go=False)
        for s in (a, b, c):
            pool.submit(s, None)
        deadline = time.monotonic() + 30
        while pool.running() != [a]:
            assert time.monotonic() < deadline
            pool.poll(0.1)
        assert pool.cancel(b) == "waiting"
        assert pool.cancel(a) == "running"
        assert pool.cancel(tmp_path / "other") is None
        (c / "go").touch()
        done = collect(pool, 1)
        assert [o.stack for o in done] == [c]  # no failure reported for the cancelled ones
        assert pool.waiting() == [] and pool.running() == []
    finally:
        pool.stop()


def test_stop_returns_what_was_left_unfinished(tmp_path: Path) -> None:
    pool = BlendPool(workers=1, queue_size=4, job=gated_job, warm=None)
    pool.start()
    a, b = stacks(tmp_path, "a", "b", go=False)
    pool.submit(a, None)
    pool.submit(b, None)
    deadline = time.monotonic() + 30
    while pool.running() != [a]:
        assert time.monotonic() < deadline
        pool.poll(0.1)
    procs = worker_pids()
    t0 = time.monotonic()
    assert pool.stop(timeout=2) == [a, b]
    assert time.monotonic() - t0 < 2  # a running blend is not waited for
    for pid in procs:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(MedianscanError):
        pool.submit(a, None)


@pytest.mark.slow
def test_workers_die_with_a_killed_daemon(tmp_path: Path) -> None:
    """After `kill -9` of the parent no orphan keeps blending (it would race the restarted daemon)."""
    script = textwrap.dedent(
        f"""
        import json, multiprocessing, sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from medianscan.service.pool import BlendPool
        from test_worker import gated_job
        if __name__ == "__main__":
            pool = BlendPool(workers=2, queue_size=2, job=gated_job, warm=None)
            pool.start()
            pool.submit(__import__("pathlib").Path({str(tmp_path)!r}), None)
            while pool.running() == []:
                pool.poll(0.1)
            workers = multiprocessing.active_children()
            print(json.dumps([c.pid for c in workers if c.name.startswith("medianscan-blend")]), flush=True)
            time.sleep(60)  # the daemon stands, until the test kills it
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        pids = json.loads(proc.stdout.readline())
        assert len(pids) == 2
    finally:
        proc.kill()
        proc.wait()
    wait_until(
        lambda: not any(_alive(p) for p in pids), 5, lambda: f"workers still alive: {[p for p in pids if _alive(p)]}"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}").exists() else "X"
    return status not in {"Z", "X"}


def test_the_queue_needs_room() -> None:
    with pytest.raises(MedianscanError):
        BlendPool(workers=0, job=gated_job)


def test_a_group_wide_sigterm_leaves_the_running_blend_to_the_daemon(tmp_path: Path) -> None:
    pool = BlendPool(workers=1, queue_size=2, job=gated_job, warm=None)
    pool.start()
    try:
        (a,) = stacks(tmp_path, "a", go=False)
        pool.submit(a, None)
        deadline = time.monotonic() + 30
        while pool.running() != [a]:
            assert time.monotonic() < deadline
            pool.poll(0.1)
        os.kill(worker_pids()[0], signal.SIGTERM)  # e.g. `kill -TERM -<pgid>` or a KillMode=control-group stop
        time.sleep(0.2)  # the behaviour: the signal has landed (and been let pass) before the blend goes on
        (a / "go").touch()
        (done,) = collect(pool, 1)
        assert done.ok and done.stack == a
    finally:
        pool.stop()


@pytest.mark.slow
def test_a_native_crash_in_a_worker_leaves_its_stack_in_the_log(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """faulthandler is on in every blend worker: a segmentation fault in LibRaw or a kernel prints the Python stack
    that led to it on the worker's stderr (the journal, as a service), and the pool carries on."""
    pool = BlendPool(workers=1, queue_size=8, job=gated_job, warm=None)
    pool.start()
    try:
        for s in stacks(tmp_path, "segfault", "after"):
            assert pool.submit(s, None)
        done = {o.stack.name: o for o in collect(pool, 2)}
        assert done["segfault"].error == "the blend worker died of SIGSEGV twice while blending this stack"
        assert done["after"].ok
    finally:
        pool.stop()
    err = capfd.readouterr().err
    assert "Fatal Python error: Segmentation fault" in err and "gated_job" in err


def started_and_finished(pool: BlendPool[Any, Any], count: int, timeout: float = 60.0) -> list[Event]:
    """Every event until `count` stacks are finished."""
    events: list[Event] = []
    deadline = time.monotonic() + timeout
    while sum(isinstance(e, Outcome) for e in events) < count:
        assert time.monotonic() < deadline, f"only {events} after {timeout} s"
        events += pool.poll(0.2)
    return events


@pytest.mark.slow
def test_a_worker_killed_by_a_signal_is_replaced_and_its_stack_tried_once_more(tmp_path: Path) -> None:
    """Workers that really die (the kernel's SIGKILL, a real segmentation fault), through the real spawned pool:
    a stack whose first worker died is tried once more by a fresh worker; a second death fails it, naming both;
    never a third try, and the stacks behind it are blended."""
    pool = BlendPool(workers=1, queue_size=8, job=gated_job, warm=None)
    pool.start()
    try:
        names = ("once-segfault", "once-crash", "segfault", "kill-then-segfault", "after")
        todo = stacks(tmp_path, *names)
        for s in todo:
            assert pool.submit(s, {"method": "median"})
        events = started_and_finished(pool, len(todo))
        done = {e.stack.name: e for e in events if isinstance(e, Outcome)}
        assert sorted(done) == sorted(names)  # every stack is reported: none lost
        assert done["once-segfault"].ok and done["once-crash"].ok  # the second try blended them
        assert (done["once-segfault"].result or {}).get("options") == {
            "method": "median"
        }  # with the stack's own options
        assert done["segfault"].error == "the blend worker died of SIGSEGV twice while blending this stack"
        assert done["kill-then-segfault"].error == (
            "the blend worker died of SIGKILL, then died of SIGSEGV, while blending this stack"
        )
        assert done["after"].ok
        tries = {n: (tmp_path / n / "tries").read_text().split() for n in names}
        assert {n: len(t) for n, t in tries.items()} == {n: 1 if n == "after" else 2 for n in names}  # no loop
        assert all(len(set(t)) == len(t) for t in tries.values())  # each try in a fresh process
        started = [e.stack.name for e in events if isinstance(e, Started)]
        assert sorted(started) == sorted(n for n in names for _ in tries[n])  # each try said it started
        assert len(worker_pids()) == 1
    finally:
        assert pool.stop() == []


def test_a_stack_waiting_for_its_second_try_is_not_lost_at_stop(tmp_path: Path) -> None:
    """Stopped between a worker's death and the second try's end, the stack is among those left unfinished (the
    daemon records them as still pending), not dropped."""
    pool = BlendPool(workers=1, queue_size=4, job=gated_job, warm=None)
    pool.start()
    (a,) = stacks(tmp_path, "early-crash", go=False)  # the second try waits for a go that never comes
    assert pool.submit(a, None)
    events: list[Event] = []
    deadline = time.monotonic() + 30
    while not (a / "tries").exists() or _alive(int((a / "tries").read_text().split()[0])):
        assert time.monotonic() < deadline
        events += pool.poll(0.05)
    events += pool.poll(0.2) + pool.poll(0.2)  # the pool sees the first worker dead
    assert not any(isinstance(e, Outcome) for e in events)  # the first death failed nothing
    assert pool.waiting() + pool.running() == [a]
    assert pool.stop() == [a]


def segfaulting_blend(stack: Path, task: Any) -> Any:
    """Fake blend job (a real decoder cannot be made to crash on cue): a real segmentation fault, every try."""
    with (stack / "tries").open("a") as fh:
        fh.write(f"{os.getpid()}\n")
    ctypes.string_at(0)


@pytest.mark.slow
def test_the_daemon_records_a_stack_whose_worker_died_twice_as_failed_naming_the_signal(tmp_path: Path) -> None:
    """Through the capture daemon: a captured stack whose blend kills its worker twice is marked failed in its
    manifest with the sentence naming the signal, and the operator is told (the error event)."""
    from medianscan.library.manifest import State, read_manifest
    from medianscan.service.capture import Daemon
    from medianscan.service.progress import ServiceError
    from tests.test_daemon import InProcess, config

    cfg = config(tmp_path)
    daemon = Daemon(cfg, triggers=False, pool=BlendPool(1, 4, job=segfaulting_blend))
    with InProcess(daemon) as run:
        daemon.request("capture")
        wait_until(lambda: run.count(ServiceError) == 1, 60, "the failure reported")
        (stack,) = daemon.library.stacks()
        manifest = read_manifest(stack)
    sentence = "the blend worker died of SIGSEGV twice while blending this stack"
    assert manifest.state == State.FAILED and manifest.error == sentence
    assert len((stack / "tries").read_text().split()) == 2
    errors = [e for e in run.events if isinstance(e, ServiceError)]
    assert [e.message for e in errors] == [sentence] and errors[0].stack == stack
