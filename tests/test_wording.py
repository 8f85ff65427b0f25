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
