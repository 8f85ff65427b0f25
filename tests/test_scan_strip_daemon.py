"""`scan-tiles --strip` in the running daemon and on the command line, on the simulated strip of three 6x7
negatives (tests/sheet_stage.strip_on's stage: the real GrblRig over its emulator, the simulated camera): each
negative a folder of its own named by the library as a press's, stitched by the daemon's service; status saying
which negative and which tile; the socket's `strip` argument and the console's box; and without a daemon, a
stopped strip carried on by a second run that never shoots a finished negative again. The rig's calibration is
the stage's true scale, written as `calibrate rig` writes one (the calibration is tested in test_scan_tiles)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import threading
import typing
import urllib.request
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from medianscan.capture.camera.base import BurstRecord
from medianscan.capture.camera.burst.enough import FrameCount
from medianscan.capture.camera.simulated import scene
from medianscan.capture.camera.simulated.camera import SimulatedCamera
from medianscan.capture.camera.simulated.sheet import sheet_of
from medianscan.capture.events import Answer
from medianscan.capture.rig import calibrate_rig
from medianscan.capture.rig.tile_run import Resume
from medianscan.cli import main
from medianscan.cli.tiles_parts import RESUME_FILE, load_saved, save
from medianscan.config.loader import load_config
from medianscan.config.schema import Config
from medianscan.errors import MedianscanError
from medianscan.library.tile_set import StitchState, TileEntry, TileLayout, read_tile_set, write_tile_set
from medianscan.stitch.record import StitchRecord
from tests.daemon_thread import RunningDaemon
from tests.sheet_stage import (
    STRIP_MM_PER_PIXEL,
    StripTiles,
    save_true_calibration,
    strip_on,
    tiles_yaml,
)
from tests.test_scan_strip import SLIP_MISS
from tests.test_scan_tiles import against_picture
from tests.waiting import wait_until


def strip_config(tmp_path: Path) -> Config:
    """The strip of three 6x7 negatives, 2x2 tiles of 3 frames each, its calibration written."""
    cfg = strip_on(tmp_path).cfg
    cfg.frames = 3
    cfg.tiles.strip = False  # asked for by the request, not the config
    save_true_calibration(cfg)
    return cfg


def stopped_between_negatives(tmp_path: Path) -> tuple[StripTiles, Path]:
    """A calibrated strip run stopped after frame-001's last tile (its stage's place in `strip.saved`), and where
    the standalone run keeps that place."""
    strip = strip_on(tmp_path)
    save_true_calibration(strip.cfg)
    stop = threading.Event()
    strip.eyes.after_shot = lambda shot: stop.set() if shot == 4 else None
    assert strip.run(stop).summary.stopped == "by the operator, between negatives"
    assert strip.saved is not None and strip.saved[0].name == "frame-001"
    return strip, calibrate_rig.calibration_path(strip.cfg.library).with_name(RESUME_FILE)


@pytest.mark.slow
def test_the_daemon_shoots_a_strip_each_negative_its_own_folder_said_in_status_and_stitched(tmp_path: Path) -> None:
    cfg = strip_config(tmp_path)
    with RunningDaemon(cfg, triggers=False) as running:
        reply: Future[Answer] = Future()
        running.daemon.hub.emit("scan-tiles", "test", reply, strip=True)
        seen: set[str] = set()
        plans: set[str] = set()  # each negative's progress carries the plan (the terminal prints it at its start)

        def said() -> bool:  # status while it runs: which negative, which tile
            run = running.daemon.status()["tile_run"]
            if run is not None and run["under_way"]:
                seen.add(f"{run['negative']}: {run['said']}")
                plans.add(f"{run['negative']}: {run['plan']}")
            return reply.done()

        wait_until(said, 120, "the strip run's answer", every=0.05)
        answer = reply.result(0)
        end = "; the strip ended after 3 negatives; the stage is past its end: put the next strip's first negative"
        assert answer.ok and answer.text.endswith(f"{end} under the lens for the next run"), answer.text
        assert "strip run: 3 negatives shot (frame-001 to frame-003), 12 tiles in" in answer.text, answer.text
        assert any(s.startswith("frame-002: negative 2 on the strip: ") and "tile-r" in s for s in seen), seen
        plan = "6x7 (70 x 56 mm and 1 mm margins) in 2x2 tiles covering "
        assert {p.split(": ")[0] for p in plans} == {"frame-001", "frame-002", "frame-003"}, plans
        assert all(p.split(": ", 1)[1].startswith(plan) for p in plans), plans
        roll = running.daemon.library.roll
        assert [s.name for s in running.daemon.library.stacks()] == ["frame-001", "frame-002", "frame-003"]

        def stitched() -> bool:
            return all(read_tile_set(roll / f"frame-00{k}").output.is_file() for k in (1, 2, 3))

        wait_until(stitched, 150, "the three negatives stitched by the daemon's service", every=0.2)


def test_the_socket_and_the_console_carry_the_strip_and_a_grid_of_tiles_is_refused_for_a_strip(
    tmp_path: Path,
) -> None:
    """A strip needs the negatives' width to advance by: with tiles as columns and rows the run is refused in one
    sentence, through the control socket's `strip` and the console's "whole strip" box alike."""
    cfg = strip_config(tmp_path)
    cfg.tiles.format, cfg.tiles.columns, cfg.tiles.rows = None, 2, 2
    with RunningDaemon(cfg) as running:
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert main(["scan-tiles", "--strip", "--socket", str(cfg.triggers.socket)]) == 1
        assert "scan-tiles --strip needs the negatives' width to advance by" in err.getvalue(), err.getvalue()
        url = running.url.rstrip("/")  # the console's action as its "whole strip" box sends it
        request = urllib.request.Request(f"{url}/api/actions/scan-tiles", data=json.dumps({"strip": True}).encode(),
                                         headers={"Content-Type": "application/json", "Origin": url},
                                         method="POST")  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.loads(response.read())
        assert "needs the negatives' width" in body["text"], body
        with urllib.request.urlopen(f"{url}/", timeout=30) as page:  # the box beside Scan tiles
            assert 'data-testid="tiles-strip"' in page.read().decode()
        assert running.daemon.library.stacks() == []  # nothing shot


def test_a_grid_of_tiles_with_strip_is_refused_when_the_config_is_read(tmp_path: Path) -> None:
    """The run's own check (above) stays for the socket's `strip: true`; tiles.strip with a grid is the config's."""
    config = tmp_path / "medianscan.yaml"
    config.write_text(f"library: {tmp_path / 'library'}\ntiles: {{columns: 3, rows: 2, strip: true}}\n")
    with pytest.raises(MedianscanError) as refused:
        load_config(config)
    said = str(refused.value)
    assert "tiles.strip" in said and "a strip advances by the negatives' width: give tiles.format" in said, said
    config.write_text(f"library: {tmp_path / 'library'}\ntiles: {{columns: 3, rows: 2, format: 6x7, strip: true}}\n")
    assert load_config(config).tiles.strip  # the format wins over the grid: a width to advance by


def test_without_a_daemon_answering_scan_tiles_names_the_socket_it_asked_and_how_to_reach_another(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An operator whose daemon was started with another config is told where scan-tiles looked, not only 'no
    running medianscan'."""
    config = tmp_path / "medianscan.yaml"
    config.write_text(f"library: {tmp_path / 'library'}\ntriggers: {{socket: {tmp_path / 'absent.sock'}}}\n")
    for strip in ([], ["--strip"]):
        assert main(["scan-tiles", *strip, "--config", str(config)]) == 2
        said = capsys.readouterr().err
        assert f"no running medianscan answered on {tmp_path / 'absent.sock'} to name the negative" in said, said
        assert said.rstrip().endswith("(a daemon started with another --config: give scan-tiles the same --config, "
                                      "or --socket)"), said  # fmt: skip


@pytest.mark.slow
def test_scan_tiles_strip_without_a_daemon_stopped_and_run_again_shoots_each_tile_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = tmp_path / "library"
    sheet = (
        f"{{width_mm: 70, height_mm: 56, mm_per_pixel: {STRIP_MM_PER_PIXEL}, slip: 0.02, rotation_degrees: 0.2, "
        "backlash_mm: 0.05, seed: 5, negatives: 3}"
    )
    config = tiles_yaml(tmp_path, sheet=sheet, tiles="{format: 6x7, strip: true}")
    cfg = load_config(config)
    save_true_calibration(cfg)
    # the simulated stage lives with its configuration: one configuration for both runs, so the second finds the
    # stage where the first left it, as a real stage stays (two loads would put a new strip under the lens)
    monkeypatch.setattr("medianscan.cli.tiles.load_config", lambda path: cfg)
    roll = library / "roll"
    args = ["scan-tiles", str(roll / "frame-001"), "--config", str(config), "--no-stitch"]

    def ctrl_c_in_the_second_negative() -> None:  # the operator's Ctrl-C, once frame-002's first tile is shot
        wait_until(lambda: any((roll / "frame-002").glob("tile-*/*.dng")), 120, "frame-002's first tile", every=0.02)
        os.kill(os.getpid(), signal.SIGINT)

    pressing = threading.Thread(target=ctrl_c_in_the_second_negative, daemon=True)
    pressing.start()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(args) == 1
    pressing.join(5)
    said = out.getvalue()
    assert said.startswith("frame-001: 6x7 (70 x 56 mm and 1 mm margins) in 2x2 tiles covering "), said
    assert "frame-001 tile-r2c1: shot, still after" in said and "stopped: by the operator" in said, said
    again = io.StringIO()
    with contextlib.redirect_stdout(again):
        assert main(args) == 0
    carried = again.getvalue()
    assert carried.startswith("frame-002 (carried on): "), carried
    assert "the strip ended after 2 negatives" in carried and "frame-001 " not in carried, carried
    lines = [line.split(": shot")[0].strip() for line in (said + carried).splitlines() if ": shot, still" in line]
    assert len(lines) == len(set(lines)) == 12, lines  # every tile of the strip, each once
    assert sorted(p.name for p in roll.iterdir()) == ["frame-001", "frame-002", "frame-003"]


@pytest.mark.slow
def test_a_plain_scan_tiles_in_the_daemon_after_a_strip_stopped_between_negatives_shoots_the_next_one_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """stop-tiles while frame-001's last tile is shot: the strip stops between negatives, the stage at that tile.
    A plain scan-tiles then goes on along the strip: frame-002 found past the gap, shot whole, stitched by the
    daemon's service and compared with its own picture. The simulated camera's bursts are noted with where the
    sheet's view truly was (a test's instrument: the truth the comparison needs), and the last tile's burst waits
    for the stop's answer, so the stop lands between negatives every time; the light is even (no falloff)."""
    cfg = strip_config(tmp_path)
    sheet = sheet_of(cfg.camera.simulated)  # the stage and strip the daemon's camera sees
    assert sheet is not None
    placed: dict[tuple[str, str], tuple[float, float]] = {}
    last_tile, stopped = threading.Event(), threading.Event()
    burst = SimulatedCamera.burst

    def noting(camera: SimulatedCamera, frames: int | FrameCount, stack: Path, stem: str) -> BurstRecord:
        placed[(stack.parent.name, stack.name)] = sheet.view_origin_px()
        if stack.parent.name == "frame-001" and len([k for k in placed if k[0] == "frame-001"]) == 4:
            last_tile.set()
            assert stopped.wait(30), "stop-tiles not answered"
        return burst(camera, frames, stack, stem)

    monkeypatch.setattr(SimulatedCamera, "burst", noting)
    # an even light: the daemon's roll has no flat field for the stitch to divide the lens's falloff by (the
    # strip's comparisons in test_scan_strip divide it by a flat of the bare light)
    monkeypatch.setattr(scene, "light_path", lambda height, width: np.ones((height, width), np.float32))
    with RunningDaemon(cfg, triggers=False) as running:
        hub, roll = running.daemon.hub, running.daemon.library.roll
        strip: Future[Answer] = Future()
        hub.emit("scan-tiles", "test", strip, strip=True)
        assert last_tile.wait(120), "frame-001's last tile"
        stop: Future[Answer] = Future()
        hub.emit("stop-tiles", "test", stop)
        assert stop.result(30).ok
        stopped.set()
        first = strip.result(60)
        assert not first.ok and "stopped: by the operator, between negatives" in first.text, first.text
        plain: Future[Answer] = Future()
        hub.emit("scan-tiles", "test", plain)  # no strip: as `medianscan scan-tiles` or the pedal asks
        second = plain.result(120)
        assert second.ok and "strip run: 1 negative shot (frame-002), 4 tiles" in second.text, second.text
        assert [s.name for s in running.daemon.library.stacks()] == ["frame-001", "frame-002"]
        output = read_tile_set(roll / "frame-002").output
        wait_until(  # the DNG, then its record: the service marks the negative stitched once both are written
            lambda: read_tile_set(roll / "frame-002").status.state == StitchState.STITCHED,
            150,
            "frame-002 stitched by the daemon's service",
            every=0.2,
        )
    record = json.loads(output.with_suffix(".json").read_text())
    tiles = [SimpleNamespace(x=t["x"], y=t["y"], folder=Path(t["source"]).parent.name) for t in record["tiles"]]
    left, top, width, height = sheet.negative_box(2)
    origin = np.array(placed[("frame-002", tiles[0].folder)]) - (left, top)  # on frame-002's own picture
    misses = [float(np.abs(np.array([t.x - tiles[0].x, t.y - tiles[0].y])
                           - (np.array(placed[("frame-002", t.folder)]) - (left, top) - origin)).max())
              for t in tiles]  # fmt: skip
    assert len(tiles) == 4 and max(misses) < 0.5, misses
    stitched = typing.cast(StitchRecord, SimpleNamespace(output=output, tiles=tiles))  # the two fields it reads
    median, seams = against_picture(stitched, sheet.picture[top : top + height, left : left + width, 0], origin)
    print(f"frame-002 after a plain scan-tiles: tiles within {max(misses):.3f} photosites; against its own picture "
          f"{median:.2%} (median), seams' worst 1 % {seams:.2%}")  # fmt: skip
    assert median < 0.005 and seams < 0.02, (median, seams)


@pytest.mark.slow
def test_a_plain_scan_tiles_without_a_daemon_after_a_strip_stopped_between_negatives_goes_on_along_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The strip stopped after frame-001's last tile, where it left the stage saved as the standalone run saves
    it: `medianscan scan-tiles ROLL/frame-002` finds frame-002 past the gap and shoots it whole (each tile where
    the plan puts the strip's second negative), leaving the stage on the strip; a negative of another strip's
    run left unfinished is refused in one sentence, nothing moved."""
    strip, resume_file = stopped_between_negatives(tmp_path)
    cfg = strip.cfg
    assert strip.saved is not None
    save(resume_file, *strip.saved)  # as the standalone strip run leaves it
    burst = SimulatedCamera.burst

    def noting(camera: SimulatedCamera, frames: int | FrameCount, stack: Path, stem: str) -> BurstRecord:
        strip.eyes.placed[(stack.parent.name, stack.name)] = strip.eyes.sheet.view_origin_px()
        return burst(camera, frames, stack, stem)

    monkeypatch.setattr(SimulatedCamera, "burst", noting)
    monkeypatch.setattr("medianscan.cli.tiles.load_config", lambda path: cfg)  # the same stage, where it was left
    cfg.tiles.strip = False  # a plain scan-tiles
    config = tmp_path / "medianscan.yaml"
    config.write_text("# the configuration is the test's (load_config patched)\n")
    roll = strip.library.roll
    capsys.readouterr()
    assert main(["scan-tiles", str(roll / "frame-002"), "--config", str(config), "--no-stitch"]) == 0
    said = capsys.readouterr().out
    assert said.startswith(
        "frame-002 (the next on the strip after frame-001): 6x7 (70 x 56 mm and 1 mm margins) in 2x2 tiles covering "
    ), said
    assert "strip run: 1 negative shot (frame-002), 4 tiles in" in said and "stage stays on the strip" in said, said
    assert max(strip.misses("frame-002", 2)) < SLIP_MISS, strip.misses("frame-002", 2)
    left = load_saved(resume_file)
    assert left is not None and left[0] == roll / "frame-002" and left[1].on_strip
    assert main(["scan-tiles", "--strip", str(roll / "frame-003"), "--config", str(config), "--no-stitch"]) == 0
    said = capsys.readouterr().out  # the rest of the strip, named from the next negative: on from frame-002
    assert "strip run: 1 negative shot (frame-003), 4 tiles in" in said and "the strip ended after 1 negative" in said
    assert max(strip.misses("frame-003", 3)) < SLIP_MISS, strip.misses("frame-003", 3)
    assert len(strip.eyes.placed) == 12 and load_saved(resume_file) is None  # each tile once; the strip ended

    unfinished = roll / "frame-009"  # a strip's negative left with its tiles missing, the stage at one of them
    write_tile_set(unfinished, TileLayout(2, 2, 0.25), [TileEntry("tile-r1c1", 0, 0)])
    save(resume_file, unfinished, replace(left[1], at=(5.0, 5.0)))
    assert main(["scan-tiles", str(roll / "frame-010"), "--config", str(config)]) == 2
    assert "the last strip run stopped in frame-009 with tiles of it missing" in capsys.readouterr().err


def test_a_damaged_saved_place_is_forgotten_and_said_and_scan_tiles_shoots_as_at_a_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The stage's saved place (.tile-run.npz) empty, then cut short, as a crash mid-write of the old in-place
    writer left it: scan-tiles says it cannot be read, forgets it and shoots the negative as at a start."""
    strip = strip_on(tmp_path)
    cfg = strip.cfg
    save_true_calibration(cfg)
    cfg.tiles.strip = False
    monkeypatch.setattr("medianscan.cli.tiles.load_config", lambda path: cfg)
    config = tmp_path / "medianscan.yaml"
    config.write_text("# the configuration is the test's (load_config patched)\n")
    resume_file = calibrate_rig.calibration_path(cfg.library).with_name(RESUME_FILE)
    roll = strip.library.roll
    save(resume_file, roll / "frame-000", Resume((1.0, 2.0), (1, 1), True, np.ones((8, 8), np.float32)))
    whole = resume_file.read_bytes()
    assert load_saved(resume_file) is not None and not list(resume_file.parent.glob("*.part"))  # written whole
    for name, damaged in (("frame-001", b""), ("frame-002", whole[: len(whole) // 2])):
        resume_file.write_bytes(damaged)
        capsys.readouterr()
        assert main(["scan-tiles", str(roll / name), "--config", str(config), "--no-stitch"]) == 0
        out, err = capsys.readouterr()
        assert f"{resume_file} (where the last run left the stage) cannot be read (" in err, err
        assert "forgotten, so the stage's place is unknown" in err and "Traceback" not in err, err
        assert "4 tiles shot of 4" in out and len(list((roll / name).glob("tile-*/*.dng"))) == 4 * cfg.frames, out


@pytest.mark.slow
def test_after_a_strip_stopped_between_negatives_a_finished_or_other_full_folder_is_refused_nothing_moved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The strip stopped after frame-001's last tile, the stage's place saved as the standalone run saves it. A
    plain scan-tiles of frame-001 (finished), of frame-009 (another run's negative with tiles missing), and a
    --strip run whose next folder (frame-002) holds a file are each refused in one sentence: the stage not moved,
    nothing shot, the saved place kept (the stage went along the whole strip, or shot frame-002's picture into
    frame-009, before)."""
    strip, resume_file = stopped_between_negatives(tmp_path)
    cfg = strip.cfg
    assert strip.saved is not None
    save(resume_file, *strip.saved)
    monkeypatch.setattr("medianscan.cli.tiles.load_config", lambda path: cfg)
    config = tmp_path / "medianscan.yaml"
    config.write_text("# the configuration is the test's (load_config patched)\n")
    roll = strip.library.roll
    write_tile_set(roll / "frame-009", TileLayout(2, 2, 0.25), [TileEntry("tile-r1c1", 0, 0)])
    stage = strip.eyes.sheet.stage
    before = (stage.commanded(), sorted(str(p) for p in roll.rglob("*")))

    def unchanged() -> None:
        assert (stage.commanded(), sorted(str(p) for p in roll.rglob("*"))) == before  # not moved, nothing shot
        kept = load_saved(resume_file)
        assert kept is not None and kept[0] == roll / "frame-001" and kept[1].at == strip.saved[1].at  # type: ignore[index]

    capsys.readouterr()
    plain = ["--config", str(config), "--no-stitch", "--no-strip"]
    assert main(["scan-tiles", str(roll / "frame-001"), *plain]) == 2
    err = capsys.readouterr().err
    assert "scan-tiles: frame-001 is finished (every tile shot) and the strip run left the stage after it: name the " \
           f"next, {roll.name}/frame-002 (nothing moved, the stage's place kept)" in err, err  # fmt: skip
    assert len(err.strip().splitlines()) == 1, err
    unchanged()
    assert main(["scan-tiles", str(roll / "frame-009"), *plain]) == 2
    err = capsys.readouterr().err
    assert "scan-tiles: frame-009 holds files already and the stage is on the strip after frame-001" in err, err
    assert f"name the next, {roll.name}/frame-002" in err and len(err.strip().splitlines()) == 1, err
    unchanged()
    (roll / "frame-002").mkdir()
    (roll / "frame-002" / "notes.txt").write_text("another run's folder\n")
    before = (stage.commanded(), sorted(str(p) for p in roll.rglob("*")))
    assert main(["scan-tiles", "--strip", str(roll / "frame-001"), "--config", str(config), "--no-stitch"]) == 1
    out = capsys.readouterr().out
    assert "stopped: frame-002, the next negative's folder after frame-001, holds files already: nothing shot into " \
           "it (two pictures in one negative), the stage not moved and its place kept" in out, out  # fmt: skip
    unchanged()


def test_a_strip_run_named_into_a_folder_holding_other_files_is_refused_before_anything_moves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    strip = strip_on(tmp_path)
    cfg = strip.cfg
    save_true_calibration(cfg)
    monkeypatch.setattr("medianscan.cli.tiles.load_config", lambda path: cfg)
    config = tmp_path / "medianscan.yaml"
    config.write_text("# the configuration is the test's (load_config patched)\n")
    first = strip.library.roll / "frame-001"
    first.mkdir(parents=True)
    (first / "notes.txt").write_text("another scan's folder\n")
    before = strip.eyes.sheet.stage.commanded()
    assert main(["scan-tiles", "--strip", str(first), "--config", str(config), "--no-stitch"]) == 2
    err = capsys.readouterr().err
    assert f"scan-tiles --strip: {first} holds files already and is no tiled negative" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert strip.eyes.sheet.stage.commanded() == before and [p.name for p in first.iterdir()] == ["notes.txt"]
