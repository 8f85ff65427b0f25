"""`scan-tiles` in the running daemon, on the simulated camera, the simulated XY stage (the real GrblRig over its
emulator) and the simulated sheet (tests/sheet_stage.py): the run on the camera thread, each tile's burst a stack
queued for blending, the negative stitched by the daemon's service; its progress tile by tile in status and the
console's state; the pedal (or stop-tiles) stopping it between tiles, and scan-tiles again carrying the same
negative on, each tile shot once. The rig's calibration is the sheet's true scale, written as `calibrate rig`
writes one (the calibration itself is tested in test_scan_tiles)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import signal
import subprocess
import sys
import urllib.request
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from evdev import InputEvent, ecodes
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from medianscan.capture.events import Answer
from medianscan.capture.footswitch import KeyMapper
from medianscan.cli import main
from medianscan.cli.control import render_status
from medianscan.config.loader import load_config
from medianscan.config.schema import Config, TilesConfig
from medianscan.library.manifest import Manifest, State, read_manifest, write_manifest
from medianscan.library.tile_set import TileEntry, TileLayout, TileSet, read_tile_set, write_tile_set
from medianscan.service.capture.status import tiled_negative
from tests.daemon_thread import RunningDaemon
from tests.sheet_stage import save_true_calibration, sheet_config
from tests.test_console_browser import ON_SCREEN, SIZES, browser, console_errors, text_of, viewport  # noqa: F401
from tests.waiting import wait_until


def tiles_config(tmp_path: Path) -> Config:
    """A sheet two views wide and two high (2x2 tiles), 3 frames a tile, its calibration written."""
    cfg = sheet_config(tmp_path, width_mm=50.0, height_mm=36.0)
    cfg.tiles = TilesConfig(columns=2, rows=2)
    cfg.frames = 3
    save_true_calibration(cfg)
    return cfg


def tile_run(running: RunningDaemon) -> dict[str, Any]:
    status = running.daemon.status()
    run = status["tile_run"]
    assert isinstance(run, dict), status
    return run


def states(run: dict[str, Any]) -> dict[str, str]:
    return {t["name"]: t["state"] for t in run["tiles"]}


def test_scan_tiles_in_the_daemon_shoots_each_tile_says_each_in_status_and_the_service_stitches(
    tmp_path: Path,
) -> None:
    cfg = tiles_config(tmp_path)
    with RunningDaemon(cfg, triggers=False) as running:
        answer = running.ask("scan-tiles", timeout=120)
        assert answer.ok, answer.text
        assert answer.text.startswith("2x2 tiles covering "), answer.text
        assert "tile run frame-001: 4 tiles shot of 4, settled by live view in" in answer.text, answer.text
        assert answer.stack == "frame-001"
        run = tile_run(running)
        assert (run["negative"], run["columns"], run["rows"], run["under_way"]) == ("frame-001", 2, 2, False)
        assert states(run) == {f"tile-r{r}c{c}": "shot" for r in (1, 2) for c in (1, 2)}, run
        assert all(": shot, still after " in t["text"] for t in run["tiles"]), run
        negative = running.daemon.library.roll / "frame-001"
        for folder in read_tile_set(negative).folders():  # each tile a stack of its own, shot by the capture path
            assert read_manifest(folder).state in (State.CAPTURED, State.BLENDING, State.BLENDED)

        def stitched() -> bool:
            return bool(running.daemon.status()["recent"][-1]["state"] == "stitched")

        wait_until(stitched, 90, "the negative stitched by the daemon's service", every=0.1)
        assert read_tile_set(negative).output.is_file()
        # status lists the negative once, by its tiles (each a burst of its own), not as frames
        shown = render_status(running.daemon.status())
        line = next(x for x in shown.splitlines() if str(negative) in x and "last" not in x)
        assert line.strip().startswith(f"{negative}: 4 tiles, stitched  stitch "), shown
        assert "frames" not in line and "tile-r" not in shown.split("last stacks:")[1], shown


def test_the_pedal_stops_a_tile_run_between_tiles_and_scan_tiles_again_shoots_only_the_missing(
    tmp_path: Path,
) -> None:
    cfg = tiles_config(tmp_path)
    with RunningDaemon(cfg, triggers=False) as running:
        reply: Future[Answer] = Future()
        running.daemon.hub.emit("scan-tiles", "test", reply)
        plans: set[str] = set()

        def one_shot() -> bool:  # every report of the run, the first (all tiles waiting) too, carries the plan
            run = running.daemon.status()["tile_run"]
            if run is not None:
                plans.add(run["plan"])
            return run is not None and "shot" in states(run).values()

        wait_until(one_shot, 60, "a first tile shot", every=0.01)
        assert len(plans) == 1 and next(iter(plans)).startswith("2x2 tiles covering "), plans
        under_way = tile_run(running)
        assert under_way["under_way"] and "of 4 tiles shot; " in under_way["said"], under_way
        line = running.daemon.status_line()
        assert "tile run frame-001: " in line, line
        pedal: Future[Answer] = Future()
        running.daemon.hub.emit("capture", "footswitch", pedal)  # the pedal, during a run: it stops
        stop = pedal.result(5)
        assert stop.ok and stop.text.startswith("the tile run stops after the tile under way (now: "), stop.text
        first = reply.result(60)
        assert not first.ok and "stopped: by the operator" in first.text, first.text
        shot_first = [name for name, state in states(tile_run(running)).items() if state == "shot"]
        assert 1 <= len(shot_first) < 4, first.text
        assert "waiting" in states(tile_run(running)).values()
        assert running.ask("stop-tiles").outcome == "ignored"  # none under way now
        again = running.ask("scan-tiles", timeout=120)
        assert again.ok and again.stack == "frame-001", again.text  # the same negative, carried on
        kept = len(shot_first)
        assert f"{4 - kept} tiles shot ({kept} kept from before) of 4" in again.text.replace("1 tiles", "1 tile"), (
            again.text
        )
        final = states(tile_run(running))
        assert all(final[name] == "kept" for name in shot_first) and list(final.values()).count("shot") == 4 - kept
        negative = running.daemon.library.roll / "frame-001"
        assert not (negative / "discarded").exists()  # no tile's burst was set aside or shot twice
        assert [s.name for s in running.daemon.library.stacks()] == ["frame-001"]


def test_without_an_xy_stage_scan_tiles_is_refused_with_the_fix(tmp_path: Path) -> None:
    cfg = tiles_config(tmp_path)
    cfg.rig.axes = "x"
    with RunningDaemon(cfg, triggers=False) as running:
        answer = running.ask("scan-tiles")
        assert not answer.ok and "no XY stage is configured" in answer.text, answer.text


def test_the_console_shows_the_scan_tiles_button_data_and_the_plan_map(tmp_path: Path) -> None:
    """The console's state JSON: the rig's axes (the Scan tiles button shows for xy), and the last tile run's
    map of the plan (columns, rows, each tile's state)."""
    cfg = tiles_config(tmp_path)
    with RunningDaemon(cfg) as running:
        before = _console_state(running.url)
        assert before["rig_axes"] == "xy" and before["tile_run"] is None
        answer = running.ask("scan-tiles", timeout=120)
        assert answer.ok, answer.text
        wait_until(lambda: _console_state(running.url)["tile_run"] is not None, 5, "the console's map of the plan")
        run = _console_state(running.url)["tile_run"]
        assert (run["columns"], run["rows"], run["under_way"]) == (2, 2, False)
        assert sorted((t["row"], t["column"], t["state"]) for t in run["tiles"]) == [
            (r, c, "shot") for r in (0, 1) for c in (0, 1)
        ]


def _console_state(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url.rstrip("/") + "/api/state", timeout=10) as reply:
        state: dict[str, Any] = json.loads(reply.read())
    return state


def test_scan_tiles_on_the_command_line_asks_the_running_daemon_and_prints_each_tile(tmp_path: Path) -> None:
    """`medianscan scan-tiles` with a daemon running: no NEGATIVE (the daemon names it), each tile's line printed
    as the run is done with it, the summary; `medianscan status` shows the plan's map; a NEGATIVE given is refused
    in one sentence (the daemon names the negative)."""
    cfg = tiles_config(tmp_path)
    socket = ["--socket", str(cfg.triggers.socket)]
    with RunningDaemon(cfg):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["scan-tiles", *socket]) == 0
        said = out.getvalue()
        assert said.count(": shot, still after ") == 4, said
        assert "tile run frame-001: 4 tiles shot of 4" in said, said
        # the plan first, as the run starts (from the daemon's status), then each tile, then the answer
        lines = said.splitlines()
        plan = "frame-001: 2x2 tiles covering "
        assert lines[0].startswith(plan) and lines[0].endswith("% overlap"), said
        assert [n for n, line in enumerate(lines) if line.startswith(plan)] == [0], said  # said once
        assert all(": shot, still after " in line for line in lines[1:5]), said
        shown = io.StringIO()
        with contextlib.redirect_stdout(shown):
            assert main(["status", *socket]) == 0
        plan_line = f"  plan: {lines[0].removeprefix('frame-001: ')}\n"
        assert f"last tile run frame-001: 4 of 4 tiles shot; done\n{plan_line}  o o\n  o o\n" in shown.getvalue(), (
            shown.getvalue()
        )
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert main(["scan-tiles", str(tmp_path / "elsewhere"), *socket]) != 0
        assert "names the negative itself" in err.getvalue(), err.getvalue()


@pytest.mark.slow
def test_the_console_in_a_browser_scans_tiles_shows_the_map_of_the_plan_and_stops_the_run(
    tmp_path: Path,
    browser: WebDriver,  # noqa: F811 (the fixture imported from test_console_browser)
) -> None:
    """Headless Chromium (test_console_browser's): on an XY stage the Scan tiles button shows (Scan roll does not);
    pressed, the map of the plan (2 x 2) fills tile by tile and Stop stops the run between tiles; the map stays
    with the tiles shot and those left waiting."""
    cfg = tiles_config(tmp_path)
    cfg.camera.simulated.seconds_per_frame = 0.3  # a burst takes a body's time: the run lasts long enough to stop
    with RunningDaemon(cfg) as running:
        viewport(browser, SIZES[0])
        browser.get(running.url)
        wait = WebDriverWait(browser, 60, poll_frequency=0.1)

        def shown(testid: str) -> bool:
            return bool(browser.find_element(By.CSS_SELECTOR, f"[data-testid={testid}]").is_displayed())

        def cells(state: str) -> int:
            return len(browser.find_elements(By.CSS_SELECTOR, f"[data-testid=tile-map] > [data-state={state}]"))

        wait.until(lambda d: shown("scan-tiles"), "the Scan tiles button")
        assert not shown("scan-roll") and not shown("stop-tiles") and not shown("tile-map")
        browser.find_element(By.CSS_SELECTOR, "[data-testid=scan-tiles]").click()
        wait.until(lambda d: shown("tile-map") and cells("shot") >= 1, "a tile shot on the map")
        assert shown("stop-tiles") and not shown("scan-tiles")
        rows = {round(c.rect["y"]) for c in browser.find_elements(By.CSS_SELECTOR, "[data-testid=tile-map] > span")}
        assert len(rows) == 2 and len(browser.find_elements(By.CSS_SELECTOR, "[data-testid=tile-map] > span")) == 4
        on_screen = browser.execute_script(ON_SCREEN, ["#stop-tiles", "#tile-map", "#capture", "#live-box"])
        assert set(on_screen.values()) == {"shown"}, on_screen
        browser.find_element(By.CSS_SELECTOR, "[data-testid=stop-tiles]").click()
        wait.until(lambda d: "stopped: by the operator" in text_of(d, "answer"), "the run's summary")
        wait.until(lambda d: shown("scan-tiles") and not shown("stop-tiles"), "the run over")
        assert "last tile run frame-001" in text_of(browser, "tile-run")
        assert 1 <= cells("shot") < 4 and cells("waiting") >= 1
        assert console_errors(browser) == []


def test_a_pedal_key_maps_to_scan_tiles_and_stop_tiles(tmp_path: Path) -> None:
    """triggers.footswitch.keys takes scan-tiles and stop-tiles as any action; the footswitch's key-down of the
    key is the request (the daemon answers a press during a run by stopping it: the pedal test above)."""
    config = tmp_path / "medianscan.yaml"
    config.write_text("triggers:\n  footswitch:\n    keys: {KEY_B: scan-tiles, KEY_C: stop-tiles}\n")
    keys = load_config(config).triggers.footswitch.keys
    mapper = KeyMapper(keys, debounce_ms=0)
    assert mapper.feed(InputEvent(1, 0, ecodes.EV_KEY, ecodes.KEY_B, 1)) == "scan-tiles"
    assert mapper.feed(InputEvent(2, 0, ecodes.EV_KEY, ecodes.KEY_C, 1)) == "stop-tiles"


def test_tiles_blended_and_their_raws_deleted_by_retention_are_not_shot_again(tmp_path: Path) -> None:
    """retention: delete takes a tile's raws once it is blended; a run carried on after a stop counts the tile
    shot by its manifest, not by its raws, and shoots only the tiles missing."""
    cfg = tiles_config(tmp_path)
    cfg.retention = "delete"
    with RunningDaemon(cfg, triggers=False) as running:
        reply: Future[Answer] = Future()
        running.daemon.hub.emit("scan-tiles", "test", reply)

        def one_shot() -> bool:
            run = running.daemon.status()["tile_run"]
            return run is not None and "shot" in states(run).values()

        wait_until(one_shot, 60, "a first tile shot")
        assert running.ask("stop-tiles").ok
        assert not reply.result(60).ok
        shot = [name for name, state in states(tile_run(running)).items() if state == "shot"]
        negative = running.daemon.library.roll / "frame-001"

        def blended() -> bool:
            return all(read_manifest(negative / name).state == State.BLENDED for name in shot)

        wait_until(blended, 60, f"{', '.join(shot)} blended")
        again = running.ask("scan-tiles", timeout=120)
        assert again.ok and f"({len(shot)} kept from before) of 4" in again.text, again.text


@pytest.mark.slow
def test_ctrl_c_on_scan_tiles_through_the_daemon_stops_its_run_between_tiles(tmp_path: Path) -> None:
    """`medianscan scan-tiles` (a process) following the daemon's run: Ctrl-C asks the daemon to stop it (as
    stop-tiles), says so, exits 1; the run stops between tiles with the tiles shot kept."""
    cfg = tiles_config(tmp_path)
    cfg.camera.simulated.seconds_per_frame = 0.3  # a burst takes a body's time: the run lasts long enough to stop
    with RunningDaemon(cfg) as running:
        command = [sys.executable, "-m", "medianscan", "scan-tiles", "--socket", str(cfg.triggers.socket)]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert process.stdout is not None
        plan = process.stdout.readline()  # the plan, as the run starts
        assert plan.startswith("frame-001: 2x2 tiles covering ") and plan.endswith("% overlap\n"), plan
        first = process.stdout.readline()  # the first tile's line, once it is shot
        assert ": shot, still after " in first, first
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 1, (first, out, err)
        assert "the tile run stops after the tile under way" in err, err

        def over() -> bool:
            return not tile_run(running)["under_way"]

        wait_until(over, 30, "the run stopped")
        final = states(tile_run(running))
        assert "waiting" in final.values() and "shot" in final.values(), final


def tiles_left_so(negative: Path) -> tuple[TileEntry, ...]:
    """A 2x2 negative whose stitch waits: two tiles blended, one whose blend failed, one not shot; the tiles'
    stack.json written here as the capture and the blend leave them (a failed blend is what the simulated body
    cannot make)."""
    entries = tuple(TileEntry(f"tile-r{r + 1}c{c + 1}", c, r) for r in range(2) for c in range(2))
    states = {"tile-r1c1": State.BLENDED, "tile-r1c2": State.BLENDED, "tile-r2c1": State.FAILED}  # r2c2: not shot
    for name, state in states.items():
        (negative / name).mkdir(parents=True)
        m = Manifest(state, negative.parent.name, name, 3)
        m.error = "frame 2 (IMG_0002.CR2) cannot be read: truncated" if state == State.FAILED else None
        write_manifest(negative / name, m)
    return entries


FAILED_TILE = "tile-r2c1's blend failed: frame 2 (IMG_0002.CR2) cannot be read: truncated"


def test_a_tiled_negative_waiting_for_its_stitch_says_its_tiles_blended_and_names_a_failed_tile(
    tmp_path: Path,
) -> None:
    """status's line for a negative whose stitch waits: its tiles (not frames), how many are blended, and the tile
    whose blend failed with its reason, so the operator knows why it is not stitched."""
    negative = tmp_path / "roll-01" / "frame-001"
    entry = tiled_negative(negative, TileSet(negative, TileLayout(2, 2), tiles_left_so(negative)))
    shown = render_status({"recent": [dataclasses.asdict(entry)]})
    assert (
        shown
        == f"last stacks:\n  {negative}: 4 tiles, not stitched yet  error: {FAILED_TILE}  note: 2 of 4 tiles blended\n"
    ), shown


def test_the_daemon_lists_a_tiled_negative_with_a_failed_tile_as_needing_attention(tmp_path: Path) -> None:
    """The daemon's status, on the roll it keeps: the negative whose tile failed is in `need attention` with the
    tile's reason, and in the last stacks by its tiles."""
    cfg = tiles_config(tmp_path)
    with RunningDaemon(cfg, triggers=False) as running:
        negative = running.daemon.library.roll / "frame-001"
        write_tile_set(negative, TileLayout(2, 2), tiles_left_so(negative))
        shown = render_status(running.daemon.status())
    assert f"need attention (failed or cut off):\n  {negative}  pending: {FAILED_TILE}\n" in shown, shown
    assert f"last stacks:\n  {negative}: 4 tiles, not stitched yet  error: {FAILED_TILE}" in shown, shown
