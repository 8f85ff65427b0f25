"""A stitch killed mid-way, for real: `kill -9` of the daemon (its worker dies with it) and of the worker alone,
caught while the stitch's folder of tiles is on disk. What it leaves carries the dead process's pid
(`.medianscan-stitch-XXXX.<pid>.part`, the blend's rule for temps): the restart's scan removes it, tiles.json's
`stitching` is pending again, and the negative is stitched; a worker's death is tried again by a fresh worker,
which removes the dead one's folder first. Real daemons, blends and stitches of tiles cut from the CR2's picture
(tests/tiled_negatives.py)."""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from medianscan.cli.control import render_status
from medianscan.config.schema import Config, HooksConfig
from medianscan.errors import MedianscanError
from medianscan.library.manifest import State, read_manifest
from medianscan.library.rolls import Library
from medianscan.library.tile_set import StitchState, read_tile_set
from medianscan.service.pool import BlendPool, Outcome
from medianscan.service.stitch_job import StitchTask
from tests import waiting
from tests.daemon_thread import RunningDaemon, capture_config
from tests.test_daemon import DaemonProcess, wait_until
from tests.test_hooks import RECORD, calls
from tests.tiled_negatives import make_tiled_negative
from tests.tiles import Picture, load_picture

pytestmark = pytest.mark.slow  # real daemons, blends and stitches: tens of seconds


@pytest.fixture(scope="module")
def picture(sample_raw: Path) -> Picture:
    return load_picture(sample_raw)


def stitch_temps(negative: Path) -> list[Path]:
    return sorted(negative.glob(".medianscan-stitch-*"))


def pool_workers() -> list[int]:
    """The spawned pool's workers of the daemon running in this process."""
    return [c.pid for c in multiprocessing.active_children() if c.name.startswith("medianscan-blend") and c.pid]


def freeze_mid_stitch(negative: Path, workers: Callable[[], list[int]], log: Path | None = None) -> list[int]:
    """Stop the workers (SIGSTOP) at a moment the stitch's folder of tiles is on disk: once every tile is blended
    (before the stitch can begin: a busy daemon may mark it stitching only after a short stitch ended), they are
    stepped (a few ms running, then stopped) until it is there; then the daemon, which runs on, has marked it
    stitching. Returns the stopped pids."""

    def blended(folder: Path) -> bool:
        try:
            return read_manifest(folder).state == State.BLENDED
        except MedianscanError:  # stack.json being written
            return False

    folders = read_tile_set(negative).folders()
    wait_until(lambda: all(blended(f) for f in folders), "every tile blended", 180, log)
    pids = workers()
    for _ in range(5000):
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        if stitch_temps(negative):
            break
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
        time.sleep(0.003)
        assert read_tile_set(negative).status.state != StitchState.STITCHED, "the stitch ended before it was caught"
    else:
        raise AssertionError("never caught the stitch with its folder of tiles on disk")
    stitching = lambda: read_tile_set(negative).status.state == StitchState.STITCHING  # noqa: E731
    wait_until(stitching, "the daemon to mark the negative stitching", 30, log)
    return pids


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def test_a_daemon_killed_mid_stitch_leaves_a_temp_that_the_restart_removes_then_stitches_again(
    picture: Picture, tmp_path: Path
) -> None:
    d = DaemonProcess(tmp_path, {"frames": 3, "workers": 1})
    try:
        killed_and_restarted(d, picture)
    finally:
        d.cleanup()


def killed_and_restarted(d: DaemonProcess, picture: Picture) -> None:
    """Four captured tiles found at the start: blended, then stitched; caught mid-stitch, status asked, the daemon
    killed with -9, what it left looked at, restarted."""
    roll = Library.from_config(Config(library=d.library)).new_roll()
    negative = roll / "frame-001"
    tile_set = make_tiled_negative(negative, picture, (2, 2), manifest=True)  # captured: the start blends them
    d.start()
    frozen = freeze_mid_stitch(negative, d.workers, d.log)
    left = stitch_temps(negative)
    counted = lambda: d.ask("status")["status"]["queue"]["stitching"] == 1  # noqa: E731
    wait_until(counted, "status to count the stitch", 30, d.log)
    status = d.ask("status")["status"]  # a running stitch is said as one, never as a blend
    assert status["queue"] == {"waiting": 0, "blending": 0, "capacity": 4, "full": False, "stitching": 1}
    assert [(r["stack"], r["state"]) for r in status["recent"]] == [(str(negative), "stitching")]
    shown = render_status(status)
    assert "0 waiting, 0 blending, 1 stitching (room for 4)" in shown and "frame-001: 4 tiles, stitching" in shown
    d.kill9()
    wait_until(lambda: all(gone(pid) for pid in frozen), "the frozen worker to die with the daemon", 10)
    assert stitch_temps(negative) == left and left[0].is_dir()
    assert left[0].name.endswith(f".{frozen[0]}.part")  # the dead writer's pid: nothing else can tell it stale
    assert read_tile_set(negative).status.state == StitchState.STITCHING and not tile_set.output.exists()

    d.start()
    done = lambda: read_tile_set(negative).status.state == StitchState.STITCHED  # noqa: E731
    wait_until(done, "the negative stitched after the restart", 180, d.log)
    assert tile_set.output.is_file() and stitch_temps(negative) == []
    assert not [p.name for p in negative.iterdir() if p.name.endswith(".part")]
    said = d.log.read_text()
    assert f"removed an interrupted write: {left[0]}" in said
    assert "frame-001: its stitch was cut off (the service stopped while it ran); pending again" in said
    assert d.stop() == 0


def test_a_worker_killed_mid_stitch_is_replaced_and_the_fresh_one_removes_its_temp_before_stitching(
    picture: Picture, tmp_path: Path
) -> None:
    script, out = tmp_path / "record.py", tmp_path / "calls.jsonl"
    script.write_text(RECORD)
    cfg = capture_config(tmp_path / "library", hooks=HooksConfig(stitch_done=[f"{sys.executable} {script} {out}"]))
    roll = Library.from_config(cfg).new_roll()
    negative = roll / "frame-001"
    with RunningDaemon(cfg) as running:
        tile_set = make_tiled_negative(negative, picture, (2, 2), manifest=True)
        for tile in tile_set.folders():
            wait_until(functools.partial(running.daemon.submit, tile), f"{tile.name} queued", 30)
        frozen = freeze_mid_stitch(negative, pool_workers)
        left = stitch_temps(negative)
        counted = lambda: "queue 0 waiting, 0 blending, 1 stitching" in running.daemon.status_line()  # noqa: E731
        wait_until(counted, "the status line to count the stitch", 30)
        for pid in frozen:
            os.kill(pid, signal.SIGKILL)
        done = lambda: read_tile_set(negative).status.state == StitchState.STITCHED  # noqa: E731
        wait_until(done, "the negative stitched by a fresh worker", 180)
        assert left and not any(p.exists() for p in left)
        assert tile_set.output.is_file() and stitch_temps(negative) == []
        assert running.daemon.message is None
        assert running.daemon.hooks.wait(20)
    ran = [(c["MEDIANSCAN_EVENT"], c["MEDIANSCAN_STACK"], c["MEDIANSCAN_FILE"]) for c in calls(out)]
    assert ran == [("stitch-done", str(negative), str(tile_set.output))]  # once: for the stitch that was made


def dies(key: Path, task: StitchTask) -> None:
    """A worker's job that dies at once, really killed by the kernel: a real stitch cannot die on cue twice."""
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_stitch_whose_workers_die_twice_fails_in_one_sentence_that_says_stitching(tmp_path: Path) -> None:
    """The pool's sentence for a job whose worker died twice names what the job was: a stitch is never called a
    blend in tiles.json, the log or status."""
    negative = tmp_path / "roll" / "frame-001"
    task = StitchTask(negative, (negative / "a" / "a_median.dng",), negative / "frame-001_median.dng")
    pool: BlendPool[StitchTask, None] = BlendPool(workers=1, queue_size=2, job=dies, warm=None)
    pool.start()
    try:
        assert pool.submit(task.key, task)
        ended = waiting.wait_until(
            lambda: [e for e in pool.poll(0.2) if isinstance(e, Outcome)], 60, "the stitch given up after two deaths"
        )
    finally:
        pool.stop()
    assert [(o.stack, o.error) for o in ended] == [
        (task.key, "the blend worker died of SIGKILL twice while stitching this negative")
    ]
