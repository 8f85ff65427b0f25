"""The hot folder on real filesystem events (watchdog's inotify observer on tmp_path) and real DNG bursts made
from the CR2: slow writers, renames into place, card-reader and rsync copies, catch-up, refusals, re-blends."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from medianscan.cli import main
from medianscan.cli.control import render_status
from medianscan.config.loader import load_config
from medianscan.config.schema import Config, WatchConfig
from medianscan.errors import MedianscanError
from medianscan.library.contents import SET_ASIDE, SPARES
from medianscan.service.jobs import blend_job
from medianscan.service.pool import BlendPool
from medianscan.service.progress import BlendDone, Progress, ServiceError, StackQueued
from medianscan.service.watch import Grouping, WatchService, is_temp_name
from tests.stacks import Scene, load_scene, make_burst, noisy, write_frame
from tests.test_daemon import NotifySocket
from tests.waiting import wait_until

pytestmark = pytest.mark.slow  # each test waits out real quiet and settle times, some seconds each

QUIET = 0.4
SETTLE = 0.3

P = TypeVar("P", bound=Progress)  # the kind of news a test waits for


@pytest.fixture(scope="module")
def small(sample_raw: Path) -> Scene:
    """A 128x192 crop of the real CR2: real CFA and levels, frames of ~50 kB, so a blend takes milliseconds."""
    return load_scene(sample_raw).crop(800, 1400, 128, 192)


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory, small: Scene) -> dict[str, list[bytes]]:
    """Frame bytes for several bursts, made once outside any watched folder."""
    stage = tmp_path_factory.mktemp("stage")
    bursts: dict[str, list[bytes]] = {}
    for seed, name in enumerate(("a", "b", "c", "d")):
        bursts[name] = [p.read_bytes() for p in make_burst(stage / name, small, 4, seed=seed)]
    odd = stage / "odd"
    odd.mkdir()
    rng = np.random.default_rng(7)
    bursts["mixed"] = [  # the third frame at another ISO
        write_frame(odd / f"m{i}.dng", noisy(small, rng, 20.0), small, iso=100 if i < 2 else 400).read_bytes()
        for i in range(3)
    ]
    return bursts


def config(tmp_path: Path, root: Path, group: str = "folder", **watch: Any) -> Config:
    return Config(
        mode="watch",
        library=tmp_path / "library",
        frames=3,
        workers=1,
        queue_size=4,
        triggers=dataclasses.replace(Config().triggers, socket=tmp_path / "ctl.sock"),
        watch=WatchConfig(folder=root, group=group, quiet_seconds=QUIET, settle_seconds=SETTLE, **watch),
    )


class Running:
    """A WatchService serving on a thread, with every event it emits recorded with its time."""

    def __init__(self, cfg: Config) -> None:
        self.service = WatchService(cfg, pool=BlendPool(1, 4, job=blend_job))  # no warm-up: tiny frames
        self.events: list[tuple[float, Progress]] = []
        self._cond = threading.Condition()
        self.service.listeners.append(self._record)
        self.thread = threading.Thread(target=self.service.run, daemon=True)

    def _record(self, news: Progress) -> None:
        with self._cond:
            self.events.append((time.monotonic(), news))
            self._cond.notify_all()

    def of(self, kind: type[P]) -> list[tuple[float, P]]:
        with self._cond:
            return [(t, e) for t, e in self.events if isinstance(e, kind)]

    def wait_for(self, kind: type[P], count: int, timeout: float = 30.0) -> list[tuple[float, P]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.of(kind)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"waited {timeout} s for {count} {kind!r} events; got {self.events}")
                self._cond.wait(left)
        return self.of(kind)

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Until nothing waits for quiet, settle or a blend (and at least a quiet period has passed)."""
        time.sleep(QUIET + SETTLE)  # a file written just before may not be seen yet: give it a quiet period
        wait_until(lambda: not self.service.hot.busy(), timeout, "the watcher settled", every=0.05)


@pytest.fixture
def watching() -> Iterator[Callable[[Config], Running]]:
    started: list[Running] = []

    def start(cfg: Config) -> Running:
        run = Running(cfg)
        run.thread.start()

        def on() -> bool:  # the observer and planner are on
            assert run.thread.is_alive(), "the watch service stopped before it started"
            return run.service._planner is not None

        wait_until(on, 30, "the watch service started")
        started.append(run)
        return run

    yield start
    for run in started:
        run.service.stop()
        run.thread.join(30)
        assert not run.thread.is_alive()


def running_until(proc: subprocess.Popen[str], done: Callable[[], bool]) -> Callable[[], bool]:
    """`done`, as a condition that fails at once, with the process's output, if the process exited first."""

    def check() -> bool:
        assert proc.poll() is None, proc.communicate()
        return done()

    return check


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sidecar_frames(sidecar: Path) -> dict[str, str]:
    return {f["file"]: f["sha256"] for f in json.loads(sidecar.read_text())["frames"]}


def write_slowly(path: Path, data: bytes, chunks: int = 6, pause: float = 0.1, stall: float = 0.0) -> float:
    """Write `data` in chunks with pauses (and one long stall mid-file); returns when the last byte landed."""
    step = -(-len(data) // chunks)
    with path.open("wb") as fh:
        for i in range(0, len(data), step):
            fh.write(data[i : i + step])
            fh.flush()
            time.sleep(stall if stall and i == step else pause)  # the behaviour: a file that arrives slowly
    return time.monotonic()


# --- live events ----------------------------------------------------------------------------------------


def test_frames_written_slowly_are_blended_only_after_their_last_byte(
    tmp_path: Path, staged: dict[str, list[bytes]], watching: Callable[[Config], Running]
) -> None:
    """A tethering app writes each frame in chunks, one stalling far longer than quiet+settle with the file
    open: nothing is read before the last byte, and the sidecar holds the final files' hashes."""
    root = tmp_path / "hot"
    root.mkdir()
    run = watching(config(tmp_path, root))
    stack = root / "roll1" / "neg1"
    stack.mkdir(parents=True)
    last = 0.0
    for i, data in enumerate(staged["a"][:3]):
        last = write_slowly(stack / f"IMG_{i:04d}.dng", data, stall=2 * (QUIET + SETTLE) if i == 1 else 0.0)

    ((queued, _),) = run.wait_for(StackQueued, 1)
    assert queued > last, "a blend was queued before the last frame's last byte"
    run.wait_for(BlendDone, 1)
    sidecar = stack / "neg1_median.json"
    assert (stack / "neg1_median.dng").is_file()
    assert sidecar_frames(sidecar) == {p.name: sha(p) for p in sorted(stack.glob("IMG_*.dng"))}
    run.wait_idle()
    assert run.service.blends == 1


def test_rsync_renames_into_place_and_count_groups_split_a_flat_folder(
    tmp_path: Path, staged: dict[str, list[bytes]], watching: Callable[[Config], Running]
) -> None:
    """rsync writes `.NAME.XXXXXX` then renames it: temps are never frames; count:3 makes two stacks of a flat
    folder of six frames, each blended once beside its frames."""
    root = tmp_path / "hot"
    root.mkdir()
    run = watching(config(tmp_path, root, "count:3"))
    frames = staged["b"][:3] + staged["c"][:3]
    for i, data in enumerate(frames):
        temp = root / f".IMG_{i:04d}.dng.Xq{i}Zr9"
        write_slowly(temp, data, chunks=3, pause=0.05)
        temp.rename(root / f"IMG_{i:04d}.dng")

    run.wait_for(BlendDone, 2)
    run.wait_idle()
    first, second = root / "IMG_0000-IMG_0002_median.json", root / "IMG_0003-IMG_0005_median.json"
    assert sidecar_frames(first) == {f"IMG_{i:04d}.dng": sha(root / f"IMG_{i:04d}.dng") for i in range(3)}
    assert sidecar_frames(second) == {f"IMG_{i:04d}.dng": sha(root / f"IMG_{i:04d}.dng") for i in range(3, 6)}
    assert run.service.blends == 2
    assert not any(is_temp_name(p) for p in root.iterdir())


def test_card_reader_copies_folder_by_folder_grouped_by_time_gaps(
    tmp_path: Path, staged: dict[str, list[bytes]], watching: Callable[[Config], Running]
) -> None:
    """A card's DCIM folder copied with times preserved (as a file manager or `cp -rp` does), then a second
    folder moved in whole: gap:1 splits each folder's frames at the pause between bursts."""
    card = tmp_path / "card" / "DCIM" / "100CANON"
    card.mkdir(parents=True)
    t0 = time.time() - 3600
    for burst, (name, start) in enumerate((("a", t0), ("b", t0 + 60))):
        for i, data in enumerate(staged[name][:3]):
            path = card / f"IMG_{burst * 10 + i:04d}.dng"
            path.write_bytes(data)
            os.utime(path, (start + i / 2, start + i / 2))
    second = tmp_path / "card2" / "101CANON"
    second.mkdir(parents=True)
    for i, data in enumerate(staged["c"][:3]):
        (second / f"IMG_{100 + i:04d}.dng").write_bytes(data)
        os.utime(second / f"IMG_{100 + i:04d}.dng", (t0 + i / 2, t0 + i / 2))

    root = tmp_path / "hot"
    root.mkdir()
    run = watching(config(tmp_path, root, "gap:1"))
    shutil.copytree(card.parent, root / "DCIM")  # copy2: data first, then the times
    run.wait_for(BlendDone, 2)
    second.rename(root / "DCIM" / "101CANON")  # moved in whole: no file events, a folder appears
    run.wait_for(BlendDone, 3)
    run.wait_idle()

    dcim = root / "DCIM" / "100CANON"
    assert set(sidecar_frames(dcim / "IMG_0000-IMG_0002_median.json")) == {f"IMG_{i:04d}.dng" for i in range(3)}
    assert set(sidecar_frames(dcim / "IMG_0010-IMG_0012_median.json")) == {f"IMG_{i:04d}.dng" for i in (10, 11, 12)}
    assert (root / "DCIM" / "101CANON" / "IMG_0100-IMG_0102_median.dng").is_file()
    assert run.service.blends == 3


def test_a_folder_it_cannot_use_is_reported_and_the_watch_carries_on(
    tmp_path: Path, staged: dict[str, list[bytes]], watching: Callable[[Config], Running]
) -> None:
    """Mixed exposures and a folder of two frames: one clear message each, in the log and in status (not
    retried while unchanged); the next good folder is still blended."""
    root = tmp_path / "hot"
    root.mkdir()
    run = watching(config(tmp_path, root))
    mixed = root / "mixed"
    mixed.mkdir()
    for i, data in enumerate(staged["mixed"]):
        (mixed / f"m{i}.dng").write_bytes(data)
    short = root / "short"
    short.mkdir()
    for i, data in enumerate(staged["a"][:2]):
        (short / f"s{i}.dng").write_bytes(data)

    ((_, error),) = run.wait_for(ServiceError, 1)
    assert "ISO" in error.message or "iso" in error.message.lower()
    good = root / "good"
    good.mkdir()
    for i, data in enumerate(staged["d"][:3]):
        (good / f"g{i}.dng").write_bytes(data)
    run.wait_for(BlendDone, 1)
    run.wait_idle()

    status = run.service.status().to_json()  # as the control socket carries it
    problems = {e["stack"]: e["reason"] for e in status["attention"]}
    assert set(problems) == {str(mixed), str(short)}
    assert "m2.dng" in problems[str(mixed)]
    assert "2 frames; a blend needs at least 3" in problems[str(short)]
    shown = render_status(status)  # readable lines, not raw dicts
    assert f"  {mixed}  failed: " in shown and "{" not in shown
    assert not list(mixed.glob("*_median.*")) and not list(short.glob("*_median.*"))
    assert (good / "good_median.dng").is_file()
    assert run.service.blends == 2  # the mixed folder once, the good one once; the short one never reaches a worker


def test_a_stack_changed_after_its_blend_is_blended_again_and_nothing_twice(
    tmp_path: Path, staged: dict[str, list[bytes]], watching: Callable[[Config], Running]
) -> None:
    root = tmp_path / "hot"
    root.mkdir()
    run = watching(config(tmp_path, root))
    stack = root / "neg"
    stack.mkdir()
    for i, data in enumerate(staged["a"][:3]):
        (stack / f"f{i}.dng").write_bytes(data)
    run.wait_for(BlendDone, 1)
    run.wait_idle()
    assert run.service.blends == 1

    (stack / "f3.dng").write_bytes(staged["a"][3])  # a fourth frame arrives late
    run.wait_for(BlendDone, 2)
    run.wait_idle()
    assert sidecar_frames(stack / "neg_median.json") == {f"f{i}.dng": sha(stack / f"f{i}.dng") for i in range(4)}

    (stack / "notes.txt").write_text("not a frame")  # activity that changes no frame: no blend
    (stack / "f0.dng").touch()
    run.wait_idle()
    assert run.service.blends == 2


def test_a_stacks_spares_and_set_aside_files_are_never_stacks_of_their_own(
    tmp_path: Path, staged: dict[str, list[bytes]], watching: Callable[[Config], Running]
) -> None:
    """The capture daemon keeps a burst's shots past its frames in the stack's `spares/` and camera files that are
    not its frames in `set-aside/`: the watcher blends the stack once, and neither sub-folder (three raws, enough
    for a stack; one, too few) is blended, reported or waited for, live or in the catch-up of another grouping."""
    root = tmp_path / "hot"
    root.mkdir()
    run = watching(config(tmp_path, root))
    stack = root / "roll" / "neg"
    (stack / SPARES).mkdir(parents=True)
    (stack / SET_ASIDE).mkdir()
    for i, data in enumerate(staged["a"][:3]):
        (stack / f"neg_{i + 1}.dng").write_bytes(data)
    for i, data in enumerate(staged["a"][3:] + staged["b"][:2]):
        (stack / SPARES / f"neg_{i + 4}.dng").write_bytes(data)
    (stack / SET_ASIDE / "IMG_0098.dng").write_bytes(staged["c"][0])

    run.wait_for(BlendDone, 1)
    run.wait_idle()
    assert run.service.blends == 1
    assert sidecar_frames(stack / "neg_median.json") == {f"neg_{i}.dng": sha(stack / f"neg_{i}.dng") for i in (1, 2, 3)}
    status = run.service.status().to_json()
    assert not status["attention"] and run.of(ServiceError) == []
    kept = {p.relative_to(stack).as_posix() for p in stack.glob("*/*")}
    assert kept == {f"{SPARES}/neg_{i}.dng" for i in (4, 5, 6)} | {f"{SET_ASIDE}/IMG_0098.dng"}  # nothing written

    counted = WatchService(config(tmp_path, root, "count:3"), control=False)
    assert counted.run_once(timeout=60) == 0
    assert counted.blends == 0 and counted.hot.problems == {} and counted.hot.waiting == {}
    assert counted.hot.blended_before == {stack / "neg_1-neg_3"}  # its frames are those the folder's blend read
    assert {p.relative_to(stack).as_posix() for p in stack.glob("*/*")} == kept


# --- catch-up and --once --------------------------------------------------------------------------------


def test_catch_up_blends_what_arrived_while_down_and_skips_what_is_blended(
    tmp_path: Path, staged: dict[str, list[bytes]], watching: Callable[[Config], Running]
) -> None:
    root = tmp_path / "hot"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i, data in enumerate(staged[name][:3]):
            (root / name / f"{name}{i}.dng").write_bytes(data)
    cfg = config(tmp_path, root)
    cfg_file = tmp_path / "medianscan.yaml"
    cfg_file.write_text(f"watch:\n  quiet_seconds: {QUIET}\n  settle_seconds: {SETTLE}\n")
    assert main(["watch", str(root), "--once", "--config", str(cfg_file)]) == 0
    blended = {p: p.stat().st_mtime_ns for p in root.glob("*/*_median.json")}
    assert len(blended) == 2

    (root / "c").mkdir()  # arrives while the watcher is down
    for i, data in enumerate(staged["c"][:3]):
        (root / "c" / f"c{i}.dng").write_bytes(data)
    run = watching(cfg)
    run.wait_for(BlendDone, 1)
    run.wait_idle()
    assert run.service.blends == 1
    assert {p: p.stat().st_mtime_ns for p in blended} == blended  # the blended stacks were left alone
    assert (root / "c" / "c_median.dng").is_file()


def _drop(folder: Path, frames: dict[str, bytes]) -> None:
    """Files as a copy some minutes ago left them (the catch-up need not wait for the folder to be quiet)."""
    folder.mkdir(parents=True, exist_ok=True)
    old = time.time() - 600
    for name, data in frames.items():
        (folder / name).write_bytes(data)
        os.utime(folder / name, (old, old))


def _once(root: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """`medianscan watch DIR --once` as the operator runs it in a terminal, no config."""
    return subprocess.run(
        [sys.executable, "-m", "medianscan", "watch", str(root), "--once", *flags],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"},
    )


def test_once_says_what_it_blended_skipped_reblended_and_could_not(
    tmp_path: Path, staged: dict[str, list[bytes]]
) -> None:
    """Each stack's line in a sentence of its own, named as the operator names it (its path under DIR, a count
    group by its frames), a summary that counts stacks skipped as blended before and re-blended because a frame
    was added, the hint that fits how the watcher was started, and exit code 1 when a stack cannot be blended."""
    root = tmp_path / "hot"
    _drop(root / "a", {f"a{i}.dng": staged["a"][i] for i in range(3)})
    _drop(root / "b", {f"b{i}.dng": staged["b"][i] for i in range(3)})
    first = _once(root)
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"2 stacks blended in {root}\n"
    assert re.search(r"^medianscan: a: blended in \d+\.\d s -> a_median\.dng$", first.stderr, re.M), first.stderr
    assert "INFO" not in first.stderr and "medianscan.service" not in first.stderr  # no log records as such

    again = _once(root)
    assert again.stdout == f"0 stacks blended, 2 skipped (blended before, unchanged) in {root}\n", again.stderr
    _drop(root / "a", {"a3.dng": staged["a"][3]})
    added = _once(root)
    assert "medianscan: a: 4 frames queued to blend again (1 frame added)" in added.stderr
    assert re.search(r"^medianscan: a: re-blended in \d+\.\d s -> a_median\.dng$", added.stderr, re.M)
    assert added.stdout == (
        f"0 stacks blended, 1 re-blended (their files changed), 1 skipped (blended before, unchanged) in {root}\n"
    )

    counted = tmp_path / "counted"
    _drop(counted / "roll", {f"m{i}.dng": data for i, data in enumerate(staged["mixed"])})
    refused = _once(counted, "--group", "count:3")
    assert refused.returncode == 1
    assert "medianscan: error: roll/m0-m2: cannot blend: m2.dng: ISO 400 differs" in refused.stderr, refused.stderr
    assert "counted: cannot blend" not in refused.stderr and "Traceback" not in refused.stderr
    assert refused.stdout == f"0 stacks blended, 1 cannot be blended (said above) in {counted}\n"

    droppable = tmp_path / "droppable"
    _drop(droppable / "n", {f"n{i}.dng": staged["c"][i] for i in range(3)} | {"n3.dng": staged["mixed"][2]})
    hinted = _once(droppable)
    assert "(--drop-bad-frames blends the rest)" in hinted.stderr and "config" not in hinted.stderr
    dropped = _once(droppable, "--drop-bad-frames", "--method", "mean")
    assert dropped.returncode == 0, dropped.stderr
    assert (droppable / "n" / "n_mean.dng").is_file() and not (droppable / "n" / "n_median.dng").exists()


@pytest.mark.parametrize("retention", ["delete", "archive"])
def test_retention_after_a_verified_blend_does_not_trigger_a_reblend(
    tmp_path: Path, staged: dict[str, list[bytes]], retention: str
) -> None:
    """The daemon's retention options: raws deleted, or moved to `<archive>/<path under DIR>/`, once blended,
    the stack's spares with them; the next pass sees a blended stack, not a changed one."""
    root = tmp_path / "hot"
    (root / "roll" / "neg" / SPARES).mkdir(parents=True)
    for i, data in enumerate(staged["b"][:3]):
        (root / "roll" / "neg" / f"f{i}.dng").write_bytes(data)
    (root / "roll" / "neg" / SPARES / "f3.dng").write_bytes(staged["b"][3])
    archive = tmp_path / "archive"
    cfg = dataclasses.replace(config(tmp_path, root), retention=retention, archive=archive)  # type: ignore[arg-type]
    service = WatchService(cfg, control=False)
    assert service.run_once(timeout=60) == 0
    assert sorted(p.name for p in (root / "roll" / "neg").iterdir()) == ["neg_median.dng", "neg_median.json"]
    archived = sorted(p.relative_to(archive).as_posix() for p in archive.rglob("*.dng")) if archive.exists() else []
    moved = [f"roll/neg/{name}" for name in ("f0.dng", "f1.dng", "f2.dng", f"{SPARES}/f3.dng")]
    assert archived == ([] if retention == "delete" else moved)
    again = WatchService(cfg, control=False)
    assert again.run_once(timeout=60) == 0
    assert again.blends == 0


# --- the parts ------------------------------------------------------------------------------------------


def test_grouping_and_temp_names() -> None:
    assert Grouping.parse("count:9") == Grouping("count", count=9)
    assert Grouping.parse("gap:2.5") == Grouping("gap", gap=2.5)
    assert str(Grouping.parse("folder")) == "folder"
    for bad in ("count:0", "gap:-1", "gap:x", "folders", "folder:3"):
        with pytest.raises(MedianscanError, match="use folder, count:N"):
            Grouping.parse(bad)
    for name in (".IMG_0001.CR2.a8Xk2P", "IMG_0001.CR2.part", "x.tmp", "~IMG.CR2", "a.crdownload"):
        assert is_temp_name(Path(name))
    assert not is_temp_name(Path("IMG_0001.CR2"))


def test_config_and_command_line_reject_bad_watch_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg_file = tmp_path / "m.yaml"
    cfg_file.write_text("watch:\n  frames: 2\n")
    with pytest.raises(MedianscanError, match="frames"):
        load_config(cfg_file)
    assert main(["watch", str(tmp_path / "nowhere"), "--once"]) == 2
    assert "no such folder to watch" in capsys.readouterr().err
    assert main(["watch", str(tmp_path), "--once", "--group", "count:x"]) == 2


def test_without_close_events_polling_waits_for_sizes_to_settle(
    tmp_path: Path, staged: dict[str, list[bytes]], watching: Callable[[Config], Running]
) -> None:
    """`polling: true` (NFS, SMB, card readers over FUSE: no inotify, no close events): a file counts once its
    size and mtime stopped changing for settle_seconds, so a steady slow writer is never read half-way."""
    root = tmp_path / "hot"
    root.mkdir()
    run = watching(config(tmp_path, root, polling=True))
    stack = root / "neg"
    stack.mkdir()
    last = 0.0
    for i, data in enumerate(staged["c"][:3]):
        last = write_slowly(stack / f"p{i}.dng", data, chunks=8, pause=SETTLE / 4)
    ((queued, _),) = run.wait_for(StackQueued, 1)
    assert queued >= last + SETTLE * 0.9, "a file was taken before it had been unchanged for settle_seconds"
    run.wait_for(BlendDone, 1)
    assert sidecar_frames(stack / "neg_median.json") == {f"p{i}.dng": sha(stack / f"p{i}.dng") for i in range(3)}


def test_the_daemon_in_watch_mode_notifies_systemd_serves_status_and_stops_on_sigterm(
    tmp_path: Path, staged: dict[str, list[bytes]]
) -> None:
    """`medianscan run` with `mode: watch`, as the systemd unit runs it: READY=1, STATUS= and WATCHDOG=1 on a real
    notify socket; the control socket answers status (capture actions are refused: no camera in this mode);
    SIGHUP reloads; SIGTERM ends it with exit code 0."""
    root = tmp_path / "hot"
    (root / "neg").mkdir(parents=True)
    for i, data in enumerate(staged["d"][:3]):
        (root / "neg" / f"f{i}.dng").write_bytes(data)
    sock = tmp_path / "ctl.sock"
    cfg_file = tmp_path / "medianscan.yaml"
    cfg_file.write_text(
        f"mode: watch\ntriggers:\n  socket: {sock}\n"
        f"watch:\n  folder: {root}\n  quiet_seconds: {QUIET}\n  settle_seconds: {SETTLE}\n"
    )
    notify = NotifySocket(tmp_path)
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "1000000"}
    command = [sys.executable, "-m", "medianscan", "run", "--config", str(cfg_file)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        ready = notify.wait_for("READY=1", timeout=30)
        assert any(line.startswith("STATUS=watching ") for line in notify.collect()[ready].splitlines())

        blended = (root / "neg" / "neg_median.json").exists
        wait_until(running_until(proc, blended), 30, "a blend from the watch daemon", every=0.1)
        notify.wait_for("WATCHDOG=1", timeout=10, after=ready)
        status = subprocess.run(
            [sys.executable, "-m", "medianscan", "status", "--socket", str(sock), "--json"],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        data = json.loads(status.stdout)
        assert data["mode"] == "watch" and data["folder"] == str(root.resolve())
        refused = subprocess.run(
            [sys.executable, "-m", "medianscan", "trigger", "--socket", str(sock)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert refused.returncode == 1 and "watch mode" in refused.stderr
        proc.send_signal(signal.SIGHUP)
        notify.wait_for("RELOADING=1", timeout=10)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        notify.wait_for("STOPPING=1", timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()
    assert not sock.exists()


def test_a_folder_with_its_frame_count_is_blended_without_waiting_for_quiet_and_hooks_run(
    tmp_path: Path, staged: dict[str, list[bytes]], watching: Callable[[Config], Running]
) -> None:
    """`watch.frames: 3`: the folder goes as soon as its third frame is complete, long before quiet_seconds;
    the blend-done hook gets the stack and the output in its environment."""
    root = tmp_path / "hot"
    root.mkdir()
    log_file = tmp_path / "hook.log"
    hook = f"sh -c 'echo \"$MEDIANSCAN_EVENT $MEDIANSCAN_STACK $MEDIANSCAN_FILE\" >> {log_file}'"
    cfg = config(tmp_path, root, frames=3)
    cfg = dataclasses.replace(
        cfg,
        watch=dataclasses.replace(cfg.watch, quiet_seconds=60.0),
        hooks=dataclasses.replace(cfg.hooks, blend_done=[hook]),
    )
    run = watching(cfg)
    stack = root / "neg"
    stack.mkdir()
    for i, data in enumerate(staged["a"][:3]):
        (stack / f"f{i}.dng").write_bytes(data)
    written = time.monotonic()
    ((queued, _),) = run.wait_for(StackQueued, 1)
    assert queued - written < 10, "the folder waited for quiet_seconds although it held its frames"
    run.wait_for(BlendDone, 1)
    wait_until(log_file.exists, 10, "the blend-done hook wrote its log")
    assert log_file.read_text().split() == ["blend-done", str(stack), str(stack / "neg_median.dng")]


def test_watch_creates_nothing_outside_its_folder_and_runtime_folder(
    tmp_path: Path, staged: dict[str, list[bytes]]
) -> None:
    """`medianscan watch DIR` as a user would run it, with a home of its own: without $XDG_RUNTIME_DIR the
    control socket lives in a private folder of the user's in the temp folder, with it in the runtime folder;
    `medianscan status`, run as plainly, finds the watcher either way; the home (where ~/Scans would be) and DIR
    get nothing of the watcher's."""
    root = tmp_path / "hot"
    (root / "neg").mkdir(parents=True)
    for i, data in enumerate(staged["d"][:3]):
        (root / "neg" / f"f{i}.dng").write_bytes(data)
    home = tmp_path / "home"
    home.mkdir()
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    temp = tmp_path / "tmp"
    temp.mkdir()
    private = temp / f"medianscan-{os.geteuid()}"
    for xdg, socket_path in ((None, private / "control.sock"), (runtime, runtime / "medianscan/control.sock")):
        env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "RUNTIME_DIRECTORY")}
        env |= {"HOME": str(home), "XDG_CACHE_HOME": os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))}
        env["TMPDIR"] = str(temp)
        if xdg is not None:
            env["XDG_RUNTIME_DIR"] = str(xdg)
        command = [sys.executable, "-m", "medianscan", "watch", str(root)]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            wait_until(running_until(proc, socket_path.exists), 60, "the watcher listened", every=0.1)
            assert stat.S_IMODE(socket_path.stat().st_mode) == 0o660
            assert stat.S_IMODE(socket_path.parent.stat().st_mode) == (0o700 if xdg is None else 0o750)
            status = subprocess.run(
                [sys.executable, "-m", "medianscan", "status"],
                capture_output=True,
                text=True,
                env=env,
                timeout=60,
                check=False,
            )
            assert status.returncode == 0 and f"folder  {root}" in status.stdout, status.stdout + status.stderr
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert list(home.iterdir()) == []
        assert not socket_path.exists()
        left = {p.name for p in root.rglob("*")} - {"neg_median.dng", "neg_median.json"}  # blended or not yet
        assert left == {"f0.dng", "f1.dng", "f2.dng", "neg"}


# --- what a wait is waiting for ---------------------------------------------------------------------------


def test_once_says_what_it_waits_for_while_a_copy_settles_and_names_a_short_count_group(
    tmp_path: Path, staged: dict[str, list[bytes]]
) -> None:
    """Files just copied hold the catch-up until the folder is quiet: `--once` says so as the wait begins (not a
    silent pause), then blends. A count group short of N says which frame waits and for how many more."""
    root = tmp_path / "hot"
    (root / "fresh").mkdir(parents=True)
    soon = time.time() + 30  # newer than the catch-up's start however long the interpreter takes to start
    for i in range(3):
        (root / "fresh" / f"f{i}.dng").write_bytes(staged["a"][i])
        os.utime(root / "fresh" / f"f{i}.dng", (soon, soon))
    cfg_file = tmp_path / "medianscan.yaml"
    cfg_file.write_text("watch:\n  quiet_seconds: 2\n  settle_seconds: 0.3\n")
    done = _once(root, "--config", str(cfg_file))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    waits = [line for line in lines if line.startswith("medianscan: fresh waits: ")]
    assert len(waits) == len(set(waits)) >= 1, done.stderr  # each wait said once, as it began
    quiet = "medianscan: fresh waits: files still arriving; blended once nothing in it changes for 2 s"
    assert quiet in waits, done.stderr
    blended = [n for n, line in enumerate(lines) if line.startswith("medianscan: fresh: blended in ")]
    assert blended and blended[0] > lines.index(quiet)
    assert done.stdout == f"1 stack blended in {root}\n"

    tether = tmp_path / "tether"
    _drop(tether, {f"neg07_{i:02d}.dng": staged["b"][i] for i in range(4)})
    short = _once(tether, "--group", "count:3")
    assert short.returncode == 0, short.stderr
    assert "medianscan: tether: neg07_03.dng waits for 2 more frames to make a group of 3\n" in short.stderr


def test_status_during_a_live_watch_lists_the_stacks_still_waiting_and_names_a_failed_one_once(
    tmp_path: Path, staged: dict[str, list[bytes]], watching: Callable[[Config], Running]
) -> None:
    """While a copy is still arriving, `status` lists its folder and why it waits (not only "0 blended"); a stack
    that cannot be blended is named once in its line, not again inside its reason."""
    root = tmp_path / "hot"
    root.mkdir()
    cfg = config(tmp_path, root)
    cfg = dataclasses.replace(cfg, watch=dataclasses.replace(cfg.watch, quiet_seconds=60.0))
    run = watching(cfg)
    (root / "neg-01").mkdir()
    for i in range(3):
        (root / "neg-01" / f"a{i}.dng").write_bytes(staged["a"][i])
    (root / "neg-02").mkdir()
    for i in range(2):
        (root / "neg-02" / f"b{i}.dng").write_bytes(staged["b"][i])
    (root / "neg-02" / "b2.dng").write_bytes(staged["b"][2][:1000])  # cut short: it cannot be read
    arriving = f"  {root / 'neg-01'}: files still arriving; blended once nothing in it changes for 60 s"
    last: list[str] = []

    def waiting_listed() -> str | None:  # its files settle first (each unchanged for a moment), then its quiet time
        last[:] = [render_status(run.service.status().to_json())]  # both folders seen: the watcher may see one first
        return last[0] if arriving in last[0] and "2 waiting" in last[0] else None

    shown = wait_until(waiting_listed, 30, lambda: last[0], every=0.05)
    assert re.search(r"^stacks +0 blended, 2 waiting \(listed below\)$", shown, re.M), shown
    assert run.service.blends == 0

    # the cut-short folder, once quiet for a moment: its reason without its name again
    run.service.hot.quiet_seconds = QUIET
    os.utime(root / "neg-02" / "b2.dng")
    run.wait_for(ServiceError, 1)
    shown = render_status(run.service.status().to_json())
    lines = [x for x in shown.splitlines() if "neg-02" in x and "failed" in x]  # need attention; last stacks
    assert any(x.startswith(f"  {root / 'neg-02'}  failed: cannot blend") for x in lines), shown
    assert all(x.count("neg-02") == 1 for x in lines), shown  # each line names it once, not again in its reason
