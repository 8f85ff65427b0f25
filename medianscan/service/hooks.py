"""Operator feedback: user commands and a sound on burst-done (advance the negative), blend-done, stitch-done,
stitch-failed and error.

The hooks are one listener of the service's typed events (medianscan.service.progress): `on_event` maps each
event to its hook and the hook's environment, so an event is announced once and every listener hears the same.
Hooks run in the background so a slow command never delays the next burst, get a timeout so a stuck one
never piles up, and never raise: a broken hook is logged, the scan goes on. The environment mirrors gphoto2's
`--hook-script`: MEDIANSCAN_EVENT, MEDIANSCAN_STACK, MEDIANSCAN_FILE, and MEDIANSCAN_MESSAGE for what went wrong.
A failed stitch is an error too: it runs both its own hook and the error hook, as the status names it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from medianscan.atomic import atomic_path
from medianscan.config.schema import HooksConfig
from medianscan.service import progress
from medianscan.service.notify import child_environment

log = logging.getLogger(__name__)

SOUND_EVENTS = ("burst-done", "error")
RATE = 22050
# event -> tones (frequency in Hz, seconds); 0 Hz is a pause. Short and distinct: done is one high beep,
# error two low ones.
TONES: dict[str, tuple[tuple[float, float], ...]] = {
    "burst-done": ((1320.0, 0.12),),
    "error": ((330.0, 0.18), (0.0, 0.08), (330.0, 0.18)),
}
BELLS = {"burst-done": 1, "error": 2}


@dataclass(frozen=True)
class HookCall:
    """What an event's hook is run with: the hook's name (MEDIANSCAN_EVENT), MEDIANSCAN_STACK, MEDIANSCAN_FILE
    and MEDIANSCAN_MESSAGE (the one sentence of an error or a failed stitch, a stitch's warning)."""

    event: str
    stack: Path | None
    file: Path | None = None
    message: str | None = None


def hook_of(news: progress.Progress) -> HookCall | None:  # noqa: PLR0911 - one return per kind of event
    """The hook an event runs and what with; None for news with no hook."""
    match news:
        case progress.BurstDone():
            return HookCall("burst-done", news.stack, news.last)
        case progress.FlatDone():  # a flat is a burst too: the operator puts the film back
            return HookCall("burst-done", news.folder, news.last)
        case progress.BlendDone():
            return HookCall("blend-done", news.stack, news.result.output)
        case progress.StitchDone():
            alone = f"placed by the plan alone, no overlap registered: {', '.join(news.alone)}" if news.alone else None
            return HookCall("stitch-done", news.negative, news.result.output, alone)
        case progress.StitchFailed():
            return HookCall("stitch-failed", news.negative, None, news.message)
        case progress.ServiceError():
            return HookCall("error", news.stack, None, news.message)
        case progress.StackQueued():
            return None


def cache_dir() -> Path:
    """Where generated sounds live: systemd's CacheDirectory=, else $XDG_CACHE_HOME/medianscan."""
    if os.environ.get("CACHE_DIRECTORY"):
        return Path(os.environ["CACHE_DIRECTORY"].split(":")[0])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "medianscan"


def write_tone(path: Path, tones: tuple[tuple[float, float], ...], volume: float = 0.4) -> Path:
    """A 16-bit mono WAV of the given tones, with 5 ms fades so it does not click; written atomically."""
    samples: list[int] = []
    fade = int(RATE * 0.005)
    for freq, seconds in tones:
        n = int(RATE * seconds)
        for i in range(n):
            envelope = min(1.0, i / fade, (n - 1 - i) / fade)
            value = volume * envelope * math.sin(2 * math.pi * freq * i / RATE) if freq else 0.0
            samples.append(round(value * 32767))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, wave.open(str(tmp), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    return path


def ring_bell(count: int, stream: TextIO | None = None) -> None:
    """The terminal bell on the controlling tty (or stderr when there is none), `count` times."""
    for i in range(count):
        if i:
            time.sleep(0.25)  # separate rings; back-to-back bells merge into one
        if stream is not None:
            stream.write("\a")
            stream.flush()
            continue
        try:
            fd = os.open("/dev/tty", os.O_WRONLY | os.O_NOCTTY)
        except OSError:
            sys.stderr.write("\a")
            sys.stderr.flush()
        else:
            try:
                os.write(fd, b"\a")
            finally:
                os.close(fd)


class Hooks:
    """Runs the configured commands and sound for an event, each event on its own background thread."""

    def __init__(
        self,
        cfg: HooksConfig,
        *,
        timeout: float = 60.0,
        sounds: Path | None = None,
        player: str = "aplay",
        bell: Callable[[int], None] = ring_bell,
        terminal: bool | None = None,
    ) -> None:
        self.cfg = cfg
        self.terminal = sys.stderr.isatty() if terminal is None else terminal  # for sound: auto
        self.timeout = timeout
        self.sounds = sounds
        self.player = player
        self.bell = bell
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._said: set[str] = set()

    def on_event(self, news: progress.Progress) -> None:
        """A service's listener: start the hooks of `news` in the background; returns at once, never raises."""
        try:
            hook = hook_of(news)
        except Exception:  # a hook must never take the daemon down
            log.exception("no hooks for %r", news)
            return
        if hook is not None:
            self._start(hook)

    def _start(self, hook: HookCall) -> None:
        event = hook.event
        try:
            commands = list(getattr(self.cfg, event.replace("-", "_")))
            sound = self.cfg.sound if event in SOUND_EVENTS else "off"
            if sound == "auto":
                sound = "bell" if self.terminal else "off"
            if not commands and sound == "off":
                return
            env = child_environment()
            env.update(
                MEDIANSCAN_EVENT=event,
                MEDIANSCAN_STACK=str(hook.stack) if hook.stack is not None else "",
                MEDIANSCAN_FILE=str(hook.file) if hook.file is not None else "",
                MEDIANSCAN_MESSAGE=hook.message or "",
            )
            thread = threading.Thread(
                target=self._run, args=(event, sound, commands, env), name=f"hook-{event}", daemon=True
            )
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            thread.start()
        except Exception:  # a hook must never take the daemon down
            log.exception("could not start the %s hooks", event)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the running hooks (at shutdown, and in tests); True if all have finished."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    def _run(self, event: str, sound: str, commands: list[str], env: dict[str, str]) -> None:
        try:
            if sound != "off":
                self._sound(event, sound)
            for command in commands:
                self._command(event, command, env)
        except Exception:
            log.exception("%s hook failed", event)

    def _command(self, event: str, command: str, env: dict[str, str]) -> None:
        """One command, no shell; killed with its whole process group after the timeout."""
        argv = shlex.split(command)
        try:
            proc = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own group, so a timeout also kills what it started
            )
        except OSError as exc:
            log.warning("%s hook %r could not start: %s", event, command, exc.strerror or exc)
            return
        try:
            out, err = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self._kill_group(proc)
            out, err = proc.communicate()
            log.warning("%s hook %r still ran after %g s and was killed", event, command, self.timeout)
            return
        if out.strip():
            log.info("%s hook %r: %s", event, command, out.decode(errors="replace").strip()[-500:])
        if proc.returncode != 0:
            detail = err.decode(errors="replace").strip().splitlines()
            reason = f": {detail[-1]}" if detail else ""
            log.warning("%s hook %r exited with status %d%s", event, command, proc.returncode, reason)

    @staticmethod
    def _kill_group(proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def _sound(self, event: str, sound: str) -> None:
        if sound == "wav" and self._play(event):
            return
        self.bell(BELLS.get(event, 1))

    def _play(self, event: str) -> bool:
        """The event's tone through aplay; False (after saying why, once) when it cannot be played."""
        player = shutil.which(self.player)
        if player is None:
            self._say_once("player", f"sound: {self.player} not found, using the terminal bell instead")
            return False
        folder = self.sounds if self.sounds is not None else cache_dir()
        path = folder / f"{event}-v1.wav"
        try:
            if not path.exists():
                write_tone(path, TONES[event])
            result = subprocess.run(
                [player, "-q", str(path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            self._say_once("play", f"sound: cannot play {path} ({exc}), using the terminal bell instead")
            return False
        if result.returncode != 0:
            reason = result.stderr.decode(errors="replace").strip().splitlines()
            detail = reason[-1] if reason else f"status {result.returncode}"
            self._say_once("play", f"sound: {self.player} failed ({detail}), using the terminal bell instead")
            return False
        return True

    def _say_once(self, key: str, message: str) -> None:
        if key not in self._said:
            self._said.add(key)
            log.warning("%s", message)
