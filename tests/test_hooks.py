"""Hooks run real commands in the background with the event in their environment, time out, never raise. They
hear the services' typed events (medianscan.service.progress) as any listener does: each event that has a hook
runs it."""

from __future__ import annotations

import io
import json
import logging
import shlex
import sys
import time
import wave
from pathlib import Path

import pytest

from medianscan.config.schema import HooksConfig
from medianscan.records import BlendRecord
from medianscan.service.hooks import TONES, Hooks, ring_bell, write_tone
from medianscan.service.progress import (
    BlendDone,
    BurstDone,
    FlatDone,
    Progress,
    ServiceError,
    StackQueued,
    StitchDone,
    StitchFailed,
)
from medianscan.stitch.record import StitchRecord

RECORD = """
import json, os, sys
keys = ("MEDIANSCAN_EVENT", "MEDIANSCAN_STACK", "MEDIANSCAN_FILE", "MEDIANSCAN_MESSAGE", "NOTIFY_SOCKET")
with open(sys.argv[1], "a") as out:
    out.write(json.dumps({k: os.environ.get(k) for k in keys} | {"argv": sys.argv[2:]}) + "\\n")
"""


@pytest.fixture
def recorder(tmp_path: Path) -> tuple[str, Path]:
    """A hook command (a real process) that appends its environment and arguments to a JSON-lines file."""
    script = tmp_path / "record.py"
    script.write_text(RECORD)
    out = tmp_path / "calls.jsonl"
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} {shlex.quote(str(out))}", out


def calls(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []


def burst(stack: Path, last: Path | None = None) -> BurstDone:
    return BurstDone(stack, 3, 1.5, last)


def blend(stack: Path, output: Path) -> BlendDone:
    return BlendDone(stack, BlendRecord(stack, output, output.with_suffix(".json"), (), (), (), 0.0, None), 2.0)


def stitched(negative: Path, output: Path, alone: tuple[str, ...] = ()) -> StitchDone:
    return StitchDone(
        negative, StitchRecord(output, 1200, 800, (0, 0, 1200, 800), (), (), None, False, 4.0, {}), 4.0, alone
    )


def error(stack: Path | None = None) -> ServiceError:
    return ServiceError(stack, "the disk is full")


def test_commands_get_the_event_in_their_environment(
    recorder: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    command, out = recorder
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    hooks = Hooks(HooksConfig(burst_done=[command + " 'two words' x"], blend_done=[command], error=[command]))
    stack = tmp_path / "roll-001" / "frame-001"
    hooks.on_event(burst(stack))
    hooks.on_event(blend(stack, stack / "frame-001_median.dng"))
    hooks.on_event(error())
    assert hooks.wait(20)
    got = sorted(calls(out), key=lambda c: str(c["MEDIANSCAN_EVENT"]))
    assert got == [
        {
            "MEDIANSCAN_EVENT": "blend-done",
            "MEDIANSCAN_STACK": str(stack),
            "MEDIANSCAN_FILE": str(stack / "frame-001_median.dng"),
            "MEDIANSCAN_MESSAGE": "",
            "NOTIFY_SOCKET": None,  # a hook can never speak for the service
            "argv": [],
        },
        {
            "MEDIANSCAN_EVENT": "burst-done",
            "MEDIANSCAN_STACK": str(stack),
            "MEDIANSCAN_FILE": "",
            "MEDIANSCAN_MESSAGE": "",
            "NOTIFY_SOCKET": None,
            "argv": ["two words", "x"],  # split like a shell, but no shell
        },
        {
            "MEDIANSCAN_EVENT": "error",
            "MEDIANSCAN_STACK": "",
            "MEDIANSCAN_FILE": "",
            "MEDIANSCAN_MESSAGE": "the disk is full",
            "NOTIFY_SOCKET": None,
            "argv": [],
        },
    ]


def test_each_typed_event_runs_its_hook_with_its_stack_and_file(recorder: tuple[str, Path], tmp_path: Path) -> None:
    """The one channel: every kind of event a service tells its listeners runs its hook (a flat burst is a burst:
    the operator puts the film back), with the stack and the file of that event; a tiled negative stitched runs
    stitch-done with its DNG (and the tiles no overlap placed, when there are), a failed stitch stitch-failed with
    its sentence; a stack the hot folder queued has no hook and runs none."""
    command, out = recorder
    hooks = Hooks(
        HooksConfig(
            burst_done=[command + " burst"],
            blend_done=[command + " blend"],
            stitch_done=[command + " stitched"],
            stitch_failed=[command + " stitch failed"],
            error=[command + " error"],
        )
    )
    roll = tmp_path / "roll-001"
    stack, flat, tiled = roll / "frame-002", roll / "flats" / "flat-001", roll / "frame-003"
    why = "roll-001/frame-003: the stitch of 2 tiles failed: tile-c2-r0 overlaps no other tile"
    events: list[Progress] = [
        burst(stack, stack / "frame-002_09.dng"),
        FlatDone(flat, 9, 3.0, flat / "flat_09.dng"),
        blend(stack, stack / "frame-002_median.dng"),
        stitched(tiled, tiled / "frame-003_median.dng"),
        stitched(tiled, tiled / "frame-003_median.dng", alone=("tile-c1-r1",)),
        StitchFailed(tiled, why),
        error(stack),
        error(None),
        StackQueued(tmp_path / "hot" / "neg-01", (tmp_path / "hot" / "neg-01" / "a.dng",)),
    ]
    for news in events:
        hooks.on_event(news)
        assert hooks.wait(20)  # one at a time: the file's lines come in the events' order
    got = [
        (c["argv"], c["MEDIANSCAN_EVENT"], c["MEDIANSCAN_STACK"], c["MEDIANSCAN_FILE"], c["MEDIANSCAN_MESSAGE"])
        for c in calls(out)
    ]
    alone = "placed by the plan alone, no overlap registered: tile-c1-r1"
    assert got == [
        (["burst"], "burst-done", str(stack), str(stack / "frame-002_09.dng"), ""),
        (["burst"], "burst-done", str(flat), str(flat / "flat_09.dng"), ""),
        (["blend"], "blend-done", str(stack), str(stack / "frame-002_median.dng"), ""),
        (["stitched"], "stitch-done", str(tiled), str(tiled / "frame-003_median.dng"), ""),
        (["stitched"], "stitch-done", str(tiled), str(tiled / "frame-003_median.dng"), alone),
        (["stitch", "failed"], "stitch-failed", str(tiled), "", why),
        (["error"], "error", str(stack), "", "the disk is full"),
        (["error"], "error", "", "", "the disk is full"),
    ]


def test_an_event_does_not_wait_and_a_stuck_hook_is_killed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    marker = tmp_path / "after"
    # the shell's child `sleep` is in the hook's process group, so it dies with it
    stuck = f"sh -c 'sleep 30; touch {marker}'"
    hooks = Hooks(HooksConfig(burst_done=[stuck]), timeout=0.5)
    started = time.monotonic()
    hooks.on_event(burst(tmp_path))
    assert time.monotonic() - started < 0.5  # returned before the command could finish
    assert hooks.wait(15)
    assert "still ran after 0.5 s and was killed" in caplog.text
    assert not marker.exists()


def test_failures_are_logged_and_never_raise(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, recorder: tuple[str, Path]
) -> None:
    command, out = recorder
    caplog.set_level(logging.INFO)
    hooks = Hooks(
        HooksConfig(
            error=[
                "/nonexistent/notify-me",
                "sh -c 'echo disk on fire >&2; exit 3'",
                "sh -c 'echo hello'",
                command,  # later commands still run after failures
            ]
        )
    )
    hooks.on_event(error(tmp_path))
    assert hooks.wait(20)
    assert "'/nonexistent/notify-me' could not start: No such file or directory" in caplog.text
    assert "exited with status 3: disk on fire" in caplog.text
    assert "hello" in caplog.text
    assert len(calls(out)) == 1


def test_bell_sound_on_burst_done_and_error_only() -> None:
    rings: list[int] = []
    hooks = Hooks(HooksConfig(sound="bell"), bell=rings.append)
    hooks.on_event(burst(Path("frame-001")))
    hooks.on_event(blend(Path("frame-001"), Path("frame-001_median.dng")))
    assert hooks.wait(5)
    hooks.on_event(error())
    assert hooks.wait(5)
    assert rings == [1, 2]


def test_by_default_the_bell_rings_in_a_terminal_and_nothing_rings_in_a_service() -> None:
    rings: list[int] = []
    Hooks(HooksConfig(), bell=rings.append, terminal=False).on_event(burst(Path("frame-001")))
    in_terminal = Hooks(HooksConfig(), bell=rings.append, terminal=True)
    in_terminal.on_event(burst(Path("frame-001")))
    assert in_terminal.wait(5)
    assert rings == [1]


def test_ring_bell_writes_bel() -> None:
    stream = io.StringIO()
    ring_bell(2, stream)
    assert stream.getvalue() == "\a\a"


def test_wav_plays_through_aplay(tmp_path: Path) -> None:
    # A stand-in for aplay (this machine has no sound device or alsa-utils): it records what it was asked to play.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    played = tmp_path / "played"
    fake = bin_dir / "aplay"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {played}\n')
    fake.chmod(0o755)
    rings: list[int] = []
    sounds = tmp_path / "cache"
    hooks = Hooks(HooksConfig(sound="wav"), sounds=sounds, player=str(fake), bell=rings.append)
    hooks.on_event(burst(Path("frame-001")))
    assert hooks.wait(10)
    hooks.on_event(error())
    assert hooks.wait(10)
    assert played.read_text().split("\n")[:2] == [
        f"-q {sounds / 'burst-done-v1.wav'}",
        f"-q {sounds / 'error-v1.wav'}",
    ]
    assert rings == []
    with wave.open(str(sounds / "error-v1.wav")) as wav:
        assert wav.getnchannels() == 1
        assert wav.getsampwidth() == 2
        seconds = wav.getnframes() / wav.getframerate()
    assert seconds == pytest.approx(sum(s for _, s in TONES["error"]), abs=0.01)


def test_wav_falls_back_to_bell_once_said(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rings: list[int] = []
    hooks = Hooks(HooksConfig(sound="wav"), sounds=tmp_path, player="no-such-player-xyz", bell=rings.append)
    for _ in range(3):
        hooks.on_event(burst(Path("frame-001")))
        assert hooks.wait(5)
    assert rings == [1, 1, 1]
    assert caplog.text.count("no-such-player-xyz not found, using the terminal bell") == 1


def test_failing_player_falls_back_to_bell(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rings: list[int] = []
    hooks = Hooks(HooksConfig(sound="wav"), sounds=tmp_path, player="false", bell=rings.append)
    hooks.on_event(error())
    assert hooks.wait(5)
    assert rings == [2]
    assert "sound: false failed (status 1)" in caplog.text


def test_write_tone_is_a_real_wav(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "t.wav", ((440.0, 0.1), (0.0, 0.05)))
    with wave.open(str(path)) as wav:
        frames = wav.readframes(wav.getnframes())
        rate = wav.getframerate()
    assert len(frames) == 2 * round(rate * 0.1) + 2 * round(rate * 0.05)
    assert max(frames) > 0
    assert [p.name for p in tmp_path.iterdir()] == ["t.wav"]  # no temp left behind
