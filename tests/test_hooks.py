"""Hooks run real commands in the background with the event in their environment, time out, never raise."""

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
from medianscan.service.hooks import TONES, Hooks, ring_bell, write_tone

RECORD = """
import json, os, sys
keys = ("MEDIANSCAN_EVENT", "MEDIANSCAN_STACK", "MEDIANSCAN_FILE", "NOTIFY_SOCKET")
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


def test_commands_get_the_event_in_their_environment(
    recorder: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    command, out = recorder
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    hooks = Hooks(HooksConfig(burst_done=[command + " 'two words' x"], blend_done=[command], error=[command]))
    stack = tmp_path / "roll-001" / "frame-001"
    hooks.fire("burst-done", stack)
    hooks.fire("blend-done", stack, stack / "frame-001_median.dng")
    hooks.fire("error", None)
    assert hooks.wait(20)
    got = sorted(calls(out), key=lambda c: str(c["MEDIANSCAN_EVENT"]))
    assert got == [
        {
            "MEDIANSCAN_EVENT": "blend-done",
            "MEDIANSCAN_STACK": str(stack),
            "MEDIANSCAN_FILE": str(stack / "frame-001_median.dng"),
            "NOTIFY_SOCKET": None,  # a hook can never speak for the service
            "argv": [],
        },
        {
            "MEDIANSCAN_EVENT": "burst-done",
            "MEDIANSCAN_STACK": str(stack),
            "MEDIANSCAN_FILE": "",
            "NOTIFY_SOCKET": None,
            "argv": ["two words", "x"],  # split like a shell, but no shell
        },
        {"MEDIANSCAN_EVENT": "error", "MEDIANSCAN_STACK": "", "MEDIANSCAN_FILE": "", "NOTIFY_SOCKET": None, "argv": []},
    ]


def test_fire_does_not_wait_and_a_stuck_hook_is_killed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    marker = tmp_path / "after"
    # the shell's child `sleep` is in the hook's process group, so it dies with it
    stuck = f"sh -c 'sleep 30; touch {marker}'"
    hooks = Hooks(HooksConfig(burst_done=[stuck]), timeout=0.5)
    started = time.monotonic()
    hooks.fire("burst-done", tmp_path)
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
    hooks.fire("error", tmp_path)
    hooks.fire("no-such-event", tmp_path)
    assert hooks.wait(20)
    assert "'/nonexistent/notify-me' could not start: No such file or directory" in caplog.text
    assert "exited with status 3: disk on fire" in caplog.text
    assert "hello" in caplog.text
    assert "no hooks for unknown event 'no-such-event'" in caplog.text
    assert len(calls(out)) == 1


def test_bell_sound_on_burst_done_and_error_only() -> None:
    rings: list[int] = []
    hooks = Hooks(HooksConfig(sound="bell"), bell=rings.append)
    hooks.fire("burst-done")
    hooks.fire("blend-done")
    assert hooks.wait(5)
    hooks.fire("error")
    assert hooks.wait(5)
    assert rings == [1, 2]


def test_by_default_the_bell_rings_in_a_terminal_and_nothing_rings_in_a_service() -> None:
    rings: list[int] = []
    Hooks(HooksConfig(), bell=rings.append, terminal=False).fire("burst-done")
    in_terminal = Hooks(HooksConfig(), bell=rings.append, terminal=True)
    in_terminal.fire("burst-done")
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
    hooks.fire("burst-done")
    assert hooks.wait(10)
    hooks.fire("error")
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
        hooks.fire("burst-done")
        assert hooks.wait(5)
    assert rings == [1, 1, 1]
    assert caplog.text.count("no-such-player-xyz not found, using the terminal bell") == 1


def test_failing_player_falls_back_to_bell(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rings: list[int] = []
    hooks = Hooks(HooksConfig(sound="wav"), sounds=tmp_path, player="false", bell=rings.append)
    hooks.fire("error")
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
