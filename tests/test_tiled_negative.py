"""A negative shot in tiles, through the pipeline: its tiles.json, the stitch job in the spawned pool once every
tile is blended, the hot folder and the daemon stitching it (real files, real blends and stitches of tiles cut
from the CR2's picture, tests/tiled_negatives.py), and the console's strip showing it as one negative."""

from __future__ import annotations

import dataclasses
import functools
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import imagecodecs
import pytest

from medianscan.blend.options import BlendOptions
from medianscan.blend.pipeline import blend_stack
from medianscan.cli import main
from medianscan.config.schema import Config, HooksConfig, WatchConfig
from medianscan.console.positives import Positives
from medianscan.errors import MedianscanError
from medianscan.library.manifest import State, mark, read_manifest
from medianscan.library.rolls import Library
from medianscan.library.tile_set import (
    TILES_FILE,
    StitchState,
    StitchStatus,
    TileEntry,
    TileLayout,
    read_tile_set,
    record_stitch,
    write_tile_set,
)
from medianscan.service.jobs import Result, Task, run_job
from medianscan.service.pool import BlendPool, Started
from medianscan.service.stitch_job import stitch_job
from medianscan.service.tiled import Stitched, TiledNegatives
from medianscan.service.watch import WatchService
from tests.daemon_thread import RunningDaemon, capture_config
from tests.test_console import Client
from tests.test_hooks import RECORD, calls
from tests.tiled_negatives import folder_name, make_tiled_negative, placed_within, spec, write_tile_stack
from tests.tiles import Picture, load_picture
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def picture(sample_raw: Path) -> Picture:
    return load_picture(sample_raw)


def test_tiles_json_is_written_read_and_a_bad_plan_refused_in_one_sentence(tmp_path: Path) -> None:
    negative = tmp_path / "roll" / "neg01"
    layout = TileLayout(2, 1, 0.3)
    written = write_tile_set(negative, layout, [TileEntry("a", 0, 0), TileEntry("b", 1, 0)])
    again = read_tile_set(negative)
    assert again.layout == layout and again.tiles == written.tiles and again.status.state == StitchState.PENDING
    assert again.output == negative / "neg01_median.dng" and again.full_grid
    for tiles, said in (
        ([TileEntry("a", 0, 0), TileEntry("a", 1, 0)], "tile folder a is listed twice"),
        ([TileEntry("a", 0, 0), TileEntry("b", 0, 0)], "tiles a and b are both at column 0, row 0"),
        ([TileEntry("a", 2, 0)], "tile a at column 2, row 0 lies outside the 2x1 layout"),
        ([TileEntry("../x", 0, 0)], "is not a plain folder name"),
    ):
        with pytest.raises(MedianscanError, match=said):
            write_tile_set(tmp_path / "other", layout, tiles)
    assert not (tmp_path / "other" / TILES_FILE).exists()
    made = ("a", "a_median.dng", 1, 1), ("b", "b_median.dng", 1, 1)
    assert record_stitch(negative, StitchStatus(StitchState.STITCHED, inputs=made)).shown_state == StitchState.STITCHED
    more = write_tile_set(negative, TileLayout(3, 1, 0.3), [*written.tiles, TileEntry("c", 2, 0)])
    assert more.status.state == StitchState.STITCHED and more.shown_state == StitchState.PENDING  # c to come
    (negative / TILES_FILE).write_text("{")
    with pytest.raises(MedianscanError, match=r"tiles.json: cannot read the tile set"):
        read_tile_set(negative)


def test_a_tiles_json_and_a_stack_json_are_read_by_one_rule_each_damage_one_sentence(tmp_path: Path) -> None:
    """tiles.json and stack.json are opened alike (record_json.read_record_file): missing, not JSON, not an
    object, each one sentence naming the file, never a traceback nor a TypeError."""
    folder = tmp_path / "neg01"
    folder.mkdir()
    readers = ((read_tile_set, TILES_FILE, "the tile set", "not a tiled negative"),
               (read_manifest, "stack.json", "the stack manifest", "not a stack folder"))  # fmt: skip
    for read, name, what, missing in readers:
        with pytest.raises(MedianscanError, match=f"^{folder}: no {name} here, so this is {missing}$"):
            read(folder)
        (folder / name).write_text('{"layout": ')
        with pytest.raises(MedianscanError, match=f"^{folder / name}: cannot read {what} \\(Expecting value"):
            read(folder)
        (folder / name).write_text("[1, 2]")
        plain = what.removeprefix("the ")
        with pytest.raises(MedianscanError, match=f"^{folder / name}: not a valid {plain} \\(not a JSON object\\)$"):
            read(folder)


def _stitch_through_pool(tiled: TiledNegatives, pool: BlendPool[Task, Result]) -> Stitched:
    """Feed the due stitches to the spawned pool and record events until one stitch ends; what status lists of
    the negative on the way: queued for a stitch, then stitching once a worker took it, then nothing."""
    negative = str(tiled.due[0].negative)
    assert tiled.doing() == {negative: "queued for a stitch"}
    tiled.feed(pool.submit)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for event in pool.poll(0.2):
            done = tiled.record(event)
            if isinstance(event, Started):
                assert tiled.doing() == {negative: "stitching"}
            if done is not None:
                assert tiled.doing() == {}
                return done
    raise AssertionError("no stitch ended within 120 s")


@pytest.mark.slow  # blends and stitches in spawned workers, tens of seconds
def test_a_negative_is_stitched_in_the_pool_once_every_tile_is_blended_and_again_when_tiles_are_added(
    picture: Picture, tmp_path: Path
) -> None:
    """Listed tiles not shot or not blended hold the stitch back; once all are blended one stitch job runs in
    the spawned pool and tiles.json says stitched; a second run that lists and shoots two more tiles makes it
    due again, stitched from all six on the prior grid; unchanged, nothing is due."""
    negative = tmp_path / "roll" / "neg01"
    first = [(0, 0), (1, 0), (0, 1), (1, 1)]
    make_tiled_negative(negative, picture, (3, 2), first[:3], listed=first)
    tiled = TiledNegatives(lambda: "median")
    tiled.check(negative)
    assert not tiled.due  # nothing blended, one tile not even shot
    for folder in sorted(negative.iterdir()):
        if folder.is_dir():
            blend_stack(folder, BlendOptions())
    tiled.check(negative)
    assert not tiled.due  # tile-c1-r1 is listed and not shot
    make_tiled_negative(negative, picture, (3, 2), first[3:], listed=first)
    blend_stack(negative / "tile-c1-r1", BlendOptions())
    tiled.check(negative)
    assert len(tiled.due) == 1
    task = tiled.due[0]
    assert task.layout is None  # four of a 3x2 grid: no prior grid, the pictures alone
    assert [p.parent.name for p in task.tiles] == ["tile-c0-r0", "tile-c1-r0", "tile-c0-r1", "tile-c1-r1"]

    pool: BlendPool[Task, Result] = BlendPool(1, 4, job=run_job)
    pool.start()
    try:
        done = _stitch_through_pool(tiled, pool)
        assert done.error is None and done.record is not None and done.tiles == 4
        tile_set = read_tile_set(negative)
        assert tile_set.status.state == StitchState.STITCHED and tile_set.status.output == "neg01_median.dng"
        assert tile_set.output.is_file() and placed_within(tile_set.output.with_suffix(".json")) == []
        tiled.check(negative)
        assert not tiled.due  # stitched from exactly these blends

        every = [(c, r) for r in range(2) for c in range(3)]
        make_tiled_negative(negative, picture, (3, 2), [(2, 0), (2, 1)], listed=every)
        for name in ("tile-c2-r0", "tile-c2-r1"):
            blend_stack(negative / name, BlendOptions())
        tiled.check(negative)
        assert len(tiled.due) == 1 and tiled.due[0].layout == "3x2"
        done = _stitch_through_pool(tiled, pool)
        assert done.error is None and done.tiles == 6
        record = json.loads(tile_set.output.with_suffix(".json").read_text())
        assert len(record["tiles"]) == 6 and placed_within(tile_set.output.with_suffix(".json")) == []
    finally:
        pool.stop()


@pytest.mark.slow  # blends and stitches in spawned workers, tens of seconds
def test_a_stitch_that_fails_is_named_in_one_sentence_and_not_retried_with_the_same_blends(
    picture: Picture, tmp_path: Path
) -> None:
    """Two tiles that share nothing: the stitch fails in the worker; tiles.json, the job's sentence and the
    next check agree (not due again until a tile changes)."""
    negative = tmp_path / "roll" / "neg02"
    make_tiled_negative(negative, picture, (3, 1), [(0, 0), (2, 0)], listed=[(0, 0), (2, 0)])
    for name in ("tile-c0-r0", "tile-c2-r0"):
        blend_stack(negative / name, BlendOptions())
    tiled = TiledNegatives(lambda: "median")
    tiled.check(negative)
    pool: BlendPool[Task, Result] = BlendPool(1, 4, job=run_job)
    pool.start()
    try:
        done = _stitch_through_pool(tiled, pool)
    finally:
        pool.stop()
    assert done.record is None and done.error is not None and "overlaps no other tile" in done.error
    said = done.said("roll/neg02")
    assert said.startswith("roll/neg02: the stitch of 2 tiles failed: cannot stitch: tile ") and "\n" not in said
    status = read_tile_set(negative).status
    assert status.state == StitchState.FAILED and status.error == done.error
    assert not read_tile_set(negative).output.exists()
    tiled.check(negative)
    assert not tiled.due


# --- the hot folder: the watcher running on real files -------------------------------------------------------


def _watch_config(tmp_path: Path, root: Path) -> Config:
    return Config(
        mode="watch",
        library=tmp_path / "library",
        frames=3,
        workers=1,
        queue_size=4,
        triggers=dataclasses.replace(Config().triggers, socket=tmp_path / "ctl.sock"),
        watch=WatchConfig(folder=root, group="folder", quiet_seconds=0.4, settle_seconds=0.3),
    )


def _stitched(negative: Path, tiles: int) -> bool:
    try:
        tile_set = read_tile_set(negative)
    except MedianscanError:
        return False
    return tile_set.status.state == StitchState.STITCHED and len(tile_set.status.inputs) == tiles


@pytest.mark.slow
def test_the_hot_folder_blends_the_tiles_then_stitches_the_negative_and_lists_it_once(
    picture: Picture, tmp_path: Path
) -> None:
    """A tiled negative copied into the watched folder: its tile folders are blended as stacks, then the negative
    is stitched (one entry in the recent list, none for its tiles); a second run's two more tiles are blended and
    the negative stitched again from six; stopped, with the stitch lost, the catch-up stitches it again without
    blending any tile twice."""
    root = tmp_path / "in"
    root.mkdir()
    service = WatchService(_watch_config(tmp_path, root), pool=BlendPool(1, 4, job=run_job), control=False)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    negative = root / "roll-01" / "neg01"
    try:
        first = [(0, 0), (1, 0), (0, 1), (1, 1)]
        make_tiled_negative(negative, picture, (3, 2), listed=first, stage=tmp_path / "stage1")
        wait_until(lambda: _stitched(negative, 4), 120, "the negative stitched from 4 tiles", every=0.1)
        output = read_tile_set(negative).output
        assert output.is_file() and placed_within(output.with_suffix(".json")) == []
        # tiles.json says stitched before the watcher's loop lists it among the recent: wait for the list
        wait_until(lambda: len(service.status().recent) == 1, 30, "the stitched negative listed", every=0.05)
        recent = service.status().recent
        assert [(r.stack, r.state, r.frames, r.tiles) for r in recent] == [
            (str(negative.resolve()), "stitched", None, 4)
        ]
        assert service.blended == 4

        every = [(c, r) for r in range(2) for c in range(3)]
        make_tiled_negative(negative, picture, (3, 2), [(2, 0), (2, 1)], listed=every, stage=tmp_path / "stage2")
        wait_until(lambda: _stitched(negative, 6), 120, "the negative stitched again from 6 tiles", every=0.1)
        wait_until(lambda: len(service.status().recent) == 2, 30, "the second stitch listed", every=0.05)
        assert len(json.loads(output.with_suffix(".json").read_text())["tiles"]) == 6
        assert placed_within(output.with_suffix(".json")) == []
        assert service.blended == 6 and [r.state for r in service.status().recent] == ["stitched", "stitched"]
    finally:
        service.stop()
        thread.join(30)
    assert not thread.is_alive()

    output.unlink()  # as if stopped while the stitch ran: no stitched DNG, tiles.json says stitching
    record_stitch(negative, StitchStatus(StitchState.STITCHING, inputs=read_tile_set(negative).status.inputs))
    again = WatchService(_watch_config(tmp_path, root), pool=BlendPool(1, 4, job=run_job), control=False)
    assert again.run_once(timeout=120) == 0
    assert again.blends == 0 and output.is_file() and _stitched(negative, 6)


@pytest.mark.slow
def test_a_tiles_json_that_arrives_after_its_tiles_were_blended_is_stitched_all_the_same(
    picture: Picture, tmp_path: Path
) -> None:
    """Copied in name order, a negative's tile folders come before its tiles.json: the tiles are blended as
    plain stacks first, then the plan arrives and the negative is stitched without blending a tile again."""
    root = tmp_path / "in"
    root.mkdir()
    service = WatchService(_watch_config(tmp_path, root), pool=BlendPool(1, 4, job=run_job), control=False)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    negative = root / "roll-01" / "neg01"
    stage = tmp_path / "stage"
    try:
        for c, r in [(0, 0), (1, 0), (0, 1), (1, 1)]:
            tile = write_tile_stack(stage / folder_name(c, r), picture, spec(c, r), seed=c + 10 * r, manifest=False)
            negative.mkdir(parents=True, exist_ok=True)
            tile.rename(negative / tile.name)
        wait_until(lambda: service.blended == 4, 120, "the 4 tiles blended as stacks", every=0.1)
        assert not _stitched(negative, 4)
        make_tiled_negative(negative, picture, (2, 2), [])  # the plan alone: its tiles are there
        wait_until(lambda: _stitched(negative, 4), 60, "the negative stitched once its plan came", every=0.1)
        assert service.blended == 4 and read_tile_set(negative).output.is_file()
    finally:
        service.stop()
        thread.join(30)


@pytest.mark.slow
def test_the_hot_folder_names_a_stitch_it_cannot_make_in_its_status(picture: Picture, tmp_path: Path) -> None:
    """Two tiles that share nothing, dropped in the watched folder: both blend, the stitch fails, and status
    says why in one sentence (its message, the recent list), as tiles.json does."""
    root = tmp_path / "in"
    root.mkdir()
    service = WatchService(_watch_config(tmp_path, root), pool=BlendPool(1, 4, job=run_job), control=False)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    negative = root / "roll-01" / "neg02"
    try:
        two = [(0, 0), (2, 0)]
        make_tiled_negative(negative, picture, (3, 1), two, listed=two, stage=tmp_path / "stage")
        failed = lambda: read_tile_set(negative).status.state == StitchState.FAILED  # noqa: E731
        wait_until(failed, 120, "the stitch failed", every=0.1)
        error = read_tile_set(negative).status.error
        assert error is not None and "overlaps no other tile" in error
        said = f"roll-01/neg02: the stitch of 2 tiles failed: {error}"
        wait_until(lambda: service.status().message == said, 10, "status names the failed stitch")
        recent = service.status().recent
        assert [(r.stack, r.state, r.frames, r.tiles, r.error) for r in recent] == [
            (str(negative.resolve()), "failed", None, 2, error)
        ]
    finally:
        service.stop()
        thread.join(30)


# --- the daemon: tile stacks queued through its real queue and pool, the console's strip -------------------


@pytest.mark.slow
def test_the_daemon_stitches_a_tiled_negative_after_its_tiles_blend_the_strip_shows_it_and_a_restart_finishes_it(
    picture: Picture, tmp_path: Path
) -> None:
    """A tiled negative in the roll, its tile stacks captured and queued through the daemon's queue: each is
    blended by the spawned pool, then the negative stitched; the console's strip shows it as one negative with
    its tiles and the positive of the stitched DNG. Stopped with the stitch lost, a restart stitches it again."""
    cfg = capture_config(tmp_path / "library")
    roll = Library.from_config(cfg).new_roll()
    negative = roll / "frame-001"
    with RunningDaemon(cfg) as running:
        tile_set = make_tiled_negative(negative, picture, (2, 2), manifest=True)
        for tile in tile_set.folders():
            wait_until(functools.partial(running.daemon.submit, tile), 30, f"{tile.name} queued")
        wait_until(lambda: _stitched(negative, 4), 120, "the negative stitched from 4 tiles", every=0.1)
        assert all(read_manifest(tile).state == State.BLENDED for tile in tile_set.folders())
        assert placed_within(tile_set.output.with_suffix(".json")) == []
        client = Client(running.url)

        def shown() -> Any:
            negatives = client.json("/api/state")["negatives"]
            return negatives if negatives and negatives[0]["positive"] else None

        negatives = wait_until(shown, 10, "the strip shows the stitched negative", every=0.1)
        assert [(n["name"], n["state"], n["tiles"]) for n in negatives] == [("frame-001", "stitched", 4)]
        status, headers, body = client.get(negatives[0]["positive"])
        assert status == 200 and headers["content-type"] == "image/jpeg"
        positive = imagecodecs.jpeg8_decode(body)
        tile_blend = read_manifest(tile_set.folders()[0]).blend
        assert tile_blend is not None
        one_tile = imagecodecs.jpeg8_decode(Positives().jpeg(tile_blend.output))
        assert positive.shape[1] > 1.5 * one_tile.shape[1] and positive.shape[0] > 1.5 * one_tile.shape[0]

    # As if killed while the stitch ran, and before the first tile's (second) blend was recorded.
    tile_set.output.unlink()
    before = read_tile_set(negative).status.inputs
    record_stitch(negative, StitchStatus(StitchState.STITCHING, inputs=before))
    mark(tile_set.folders()[0], State.CAPTURED)
    with RunningDaemon(cfg) as running:
        wait_until(lambda: _stitched(negative, 4) and tile_set.output.is_file(), 120, "the stitch finished")
        after = read_tile_set(negative).status.inputs
        assert after[0] != before[0] and after[1:] == before[1:]  # the first tile blended again, then stitched
        assert read_manifest(tile_set.folders()[0]).state == State.BLENDED
        said = running.daemon.status()
        assert [(r["stack"], r["state"], r["frames"], r["tiles"]) for r in said["recent"]] == [
            (str(negative), "stitched", None, 4)
        ]
        assert not said["attention"] and running.daemon.message is None


@pytest.mark.slow
def test_a_stitch_the_daemon_cannot_make_is_one_sentence_in_tiles_json_the_log_and_status(
    picture: Picture, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two tiles that share nothing: both blend, the stitch fails in the worker, and the operator reads why,
    once, in tiles.json, the journal, the daemon's message and the stacks needing attention; the stitch-failed
    hook and the error hook run with the negative and that sentence."""
    script, out = tmp_path / "record.py", tmp_path / "calls.jsonl"
    script.write_text(RECORD)
    hook = f"{sys.executable} {script} {out}"
    cfg = capture_config(tmp_path / "library", hooks=HooksConfig(stitch_failed=[hook], error=[hook]))
    roll = Library.from_config(cfg).new_roll()
    negative = roll / "frame-001"
    with RunningDaemon(cfg) as running:
        tile_set = make_tiled_negative(negative, picture, (3, 1), [(0, 0), (2, 0)], listed=[(0, 0), (2, 0)],
                                       manifest=True)  # fmt: skip
        for tile in tile_set.folders():
            wait_until(functools.partial(running.daemon.submit, tile), 30, f"{tile.name} queued")
        failed = lambda: read_tile_set(negative).status.state == StitchState.FAILED  # noqa: E731
        wait_until(failed, 120, "the stitch failed", every=0.1)
        error = read_tile_set(negative).status.error
        assert error is not None and "overlaps no other tile" in error and "\n" not in error
        said = f"{roll.name}/frame-001: the stitch of 2 tiles failed: {error}"
        wait_until(lambda: running.daemon.message == said, 10, "the daemon's message names it")
        attention = running.daemon.status()["attention"]
        assert [(a["stack"], a["state"], a["reason"]) for a in attention] == [(str(negative), "failed", error)]
        assert not tile_set.output.exists()
        assert running.daemon.hooks.wait(20)
    assert [r.getMessage() for r in caplog.records if "stitch of" in r.getMessage()] == [said]
    ran = sorted((c["MEDIANSCAN_EVENT"], c["MEDIANSCAN_STACK"], c["MEDIANSCAN_FILE"], c["MEDIANSCAN_MESSAGE"])
                 for c in calls(out))  # fmt: skip
    assert ran == [("error", str(negative), "", said), ("stitch-failed", str(negative), "", said)]


SKEW = 80.0  # photosites down per column (left per row): beyond what the grid's search reaches on these tiles


@pytest.mark.slow  # blends and stitches four tiles twice, in this process
def test_tiles_off_the_grid_are_placed_by_the_rigs_planned_positions_and_misplaced_or_named_by_the_grid_alone(
    picture: Picture, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stage far off square: each column lies SKEW photosites lower than the one before (each row as far to the
    left), as the rig's plan knows and tiles.json's places say. The grid's search reaches 0.1 of a tile's longer
    side (60 photosites here) around the grid's place, so with the grid alone the off-grid pairs are not found
    there; with the places the service hands on, every tile lands within half a photosite of the picture."""
    negative = tmp_path / "roll" / "neg01"
    make_tiled_negative(negative, picture, (2, 2), skew=SKEW)
    tile_set = read_tile_set(negative)
    assert tile_set.positions() is not None
    for folder in tile_set.folders():
        blend_stack(folder, BlendOptions())
    tiled = TiledNegatives(lambda: "median")
    tiled.check(negative)
    task = tiled.due[0]
    assert task.layout == "2x2" and task.positions == tile_set.positions()
    dead = subprocess.Popen(["true"])  # a writer that is gone: what a stitch killed mid-way left, and another's
    dead.wait()
    cut_off = [negative / f".medianscan-stitch-k2x9.{dead.pid}.part", negative / f".neg01_median.dng.{dead.pid}.part"]
    cut_off[0].mkdir()
    cut_off[1].write_bytes(b"half a DNG")
    another = negative / f".scan.tif.{dead.pid}.part"  # not a stitch's name: in a hot folder it is someone else's
    another.write_bytes(b"")
    record = stitch_job(task.key, task)
    assert not any(p.exists() for p in cut_off) and another.exists()  # the stitch's own leftovers, swept first
    assert placed_within(record.output.with_suffix(".json"), skew=SKEW) == []
    side = [s for s in record.seams if (s.a, s.b) in ((0, 1), (0, 2), (1, 3), (2, 3))]  # grid order, row by row
    assert len(side) == 4 and all(seam.placed_by == "measured" for seam in side)

    grid = dataclasses.replace(task, positions=None, output=tmp_path / "grid.dng")  # the grid alone, as before
    alone = stitch_job(grid.key, grid)
    wrong = placed_within(alone.output.with_suffix(".json"), tolerance=SKEW / 2, skew=SKEW)
    assert len(wrong) == 3, wrong  # every tile but the first left on the grid, tens of photosites off
    assert all(seam.placed_by == "prior" for seam in alone.seams)  # and said so: no overlap was measured
    told = Stitched(negative, 4, alone, None, 1.0)  # what the daemon's and the watcher's log line says
    assert told.unregistered == [f.name for f in tile_set.folders()]
    assert "placed by the plan alone, no overlap registered: tile-" in told.said("roll/neg01")
    assert Stitched(negative, 4, record, None, 1.0).unregistered == []

    # `medianscan stitch` with the grid alone: the same tiles named to the operator, in one sentence
    capsys.readouterr()
    blends = [str(b) for b in task.tiles]
    assert main(["stitch", *blends, "--output", str(tmp_path / "cli.dng"), "--layout", "2x2", "--overlap", "0.3"]) == 0
    names = ", ".join(b.name for b in task.tiles)
    assert capsys.readouterr().err.splitlines() == [
        f"medianscan: warning: no overlap registered for 4 tiles ({names}): placed by the --layout grid alone, "
        "so look at their seams before trusting the stitch"
    ]
