"""What an operator reads is sentences: every command's --help, every form of `medianscan status` and every answer
the daemon gives go through one check for "None", doubled punctuation or prefixes, unfilled placeholders and
argparse's leftovers (a "%%", a metavar such as FILM_FILM), and every option has its help."""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import pytest

from medianscan.capture.events import Answer
from medianscan.cli import SUBCOMMANDS, build_parser
from medianscan.cli.control import render_status
from medianscan.config.schema import Config
from tests.daemon_thread import RunningDaemon, capture_config

_DEFECTS = [
    (re.compile(r"\bNone\b"), "a None"),
    (re.compile(r"%%"), "a doubled %"),
    (re.compile(r"(?<![.\d])\.\.(?!\.)|,,|;;|::(?!\d)|: :|\s[,;]"), "doubled punctuation"),
    (re.compile(r"\b([a-z][\w-]*): \1:"), "a doubled prefix"),
    (re.compile(r"\{[a-z_]*\}"), "an unfilled placeholder"),
    (re.compile(r"\b[A-Z]+_[A-Z_]+\b"), "a metavar made of a field name"),
    (re.compile(r"\w\(s\)"), "a plural left open"),
    (re.compile(r"\) \("), "two brackets in a row"),
    (re.compile(r"\b(\w+) \1\b"), "a doubled word"),
]


def defects(text: str) -> list[str]:
    """What is wrong with `text` as a sentence for a person (empty: nothing)."""
    return [
        f"{what}: {m.group(0)!r} in {text[max(0, m.start() - 40) : m.end() + 40]!r}"
        for rx, what in _DEFECTS
        for m in rx.finditer(text)
    ]


def test_the_check_finds_what_was_seen() -> None:
    for seen in (
        "bracket_group  None",
        "retake: retake: roll/frame-003 set aside",
        "closest to 90 %% of the raw range",
        "--film FILM_FILM",
        "on sim:: ready",
        "frames: {frames}",
        "2 frame(s) queued",
        "(nothing is deleted) (running daemon)",
        "the the camera",
    ):
        assert defects(seen), seen
    assert defects("frame-012: burst done, 9 frames in 4.2 s: advance the negative") == []


def parsers(parser: argparse.ArgumentParser, path: str = "medianscan") -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += parsers(sub, f"{path} {name}")
    return found


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_every_help_reads_as_sentences_and_every_option_has_help(command: str) -> None:
    for path, parser in parsers(build_parser(command)):
        if path != "medianscan" and not path.startswith(f"medianscan {command}"):
            continue
        text = parser.format_help()
        assert not defects(text), (path, defects(text))
        for action in parser._actions:
            if (
                isinstance(action, argparse._HelpAction | argparse._SubParsersAction)
                or action.help == argparse.SUPPRESS
            ):
                continue
            assert action.help, f"{path}: {action.option_strings or action.dest} has no help"


@pytest.mark.slow
def test_every_status_form_and_every_answer_reads_as_sentences(tmp_path: Path) -> None:
    cfg = capture_config(tmp_path / "library")
    cfg.camera.simulated.seconds_per_frame = 0.2
    with RunningDaemon(cfg) as running:
        daemon = running.daemon
        texts = [render_status(daemon.status())]  # before any roll
        answers: list[Answer] = [running.ask("new-roll"), running.ask("capture"), running.ask("retake")]
        rolled = render_status(daemon.status())
        assert f"in {daemon.library.current_roll()}; no flat field" in rolled and "next frame-001" in rolled
        answers += [running.ask("pause"), running.ask("capture"), running.ask("resume"), running.ask("flat")]
        texts.append(render_status(daemon.status()))
        daemon.request("capture")
        deadline = time.monotonic() + 10
        while not daemon.busy and time.monotonic() < deadline:
            time.sleep(0.01)
        texts.append(render_status(daemon.status()))  # while capturing
        daemon.cfg.camera.settings = {"apperture": "8"}
        daemon.link.changed.set()
        while daemon.camera_view().state != "settings refused" and time.monotonic() < deadline + 20:
            time.sleep(0.05)
        texts.append(render_status(daemon.status()))  # a setting the body lacks
        answers.append(running.ask("capture"))
    texts += [a.text for a in answers]
    assert "settings refused" in texts[-len(answers) - 1] and "did you mean 'aperture'" in texts[-len(answers) - 1]
    for text in texts:
        assert not defects(text), defects(text)


def test_a_watch_status_reads_as_sentences(tmp_path: Path) -> None:
    from medianscan.service.watch import WatchService

    cfg = Config(mode="watch")
    cfg.watch.folder = tmp_path
    service = WatchService(cfg)
    assert not defects(render_status(service.status().to_json()))


def test_a_small_share_is_never_zero_and_a_setting_slip_reads_as_a_sentence(tmp_path: Path) -> None:
    """calibrate's "reaches only 0% of the raw range" for a dim light; `config check`'s "X: is no name"."""
    import subprocess
    import sys

    from medianscan.wording import share

    assert [share(x) for x in (0.0, 0.0031, 0.00004, 0.045, 0.45, 1.0)] == [
        "0%", "0.31%", "0.004%", "4.5%", "45%", "100%"
    ]  # fmt: skip
    config = tmp_path / "c.yaml"
    config.write_text("camera:\n  backend: simulated\n  settings:\n    shuterspeed: 1/60\n")
    done = subprocess.run([sys.executable, "-m", "medianscan", "config", "check", str(config)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (
        f"medianscan: warning: {config}:4: camera.settings.shuterspeed: medianscan knows no setting of this "
        "name (did you mean 'shutterspeed'?)"
    ) in done.stderr, done.stderr
    assert "is no name" not in done.stderr and not defects(done.stderr)


def test_a_stack_line_says_what_its_snr_measures_and_a_failed_stack_is_named_once() -> None:
    status = {
        "mode": "watch", "folder": "/w", "group": "folder", "blends": 2, "blended": 1,
        "queue": {"waiting": 0, "blending": 0, "capacity": 4, "full": False},
        "attention": [{"stack": "/w/neg-02", "state": "failed", "reason": "neg-02: cannot blend: 2 frames"}],
        "waiting": {},
        "recent": [{"stack": "/w/neg-01", "state": "blended", "frames": 5, "snr": 1.2, "noise_ratio": 0.45}],
    }  # fmt: skip
    shown = render_status(status)
    assert "  /w/neg-02  failed: cannot blend: 2 frames\n" in shown, shown
    assert "SNR 1 in the raws' darkest tenth" in shown and not defects(shown)
