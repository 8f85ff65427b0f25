"""A capture daemon run in this process on its own thread (its camera thread, console and blend workers are
the real ones), for tests that look inside it: the live feed, the camera thread, the console's routes."""

from __future__ import annotations

import tempfile
import threading
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any

from medianscan.capture.events import Answer
from medianscan.config.schema import Config
from medianscan.library.manifest import State, read_manifest
from medianscan.service.capture import Daemon
from medianscan.vocabulary import Request
from tests.waiting import wait_until


def capture_config(library: Path, **changes: Any) -> Config:
    """A small, fast capture configuration on the simulated camera, its console on any free loopback port."""
    cfg = Config(library=library, frames=3, workers=1)
    cfg.camera.backend = "simulated"
    cfg.camera.simulated.width, cfg.camera.simulated.height = 768, 512
    cfg.console.listen = "127.0.0.1:0"
    cfg.triggers.socket = Path(tempfile.mkdtemp(prefix="ms-")) / "control.sock"  # AF_UNIX paths are short
    for key, value in changes.items():
        setattr(cfg, key, value)
    return cfg


class RunningDaemon:
    def __init__(self, cfg: Config, *, triggers: bool = True) -> None:
        self.daemon = Daemon(cfg, triggers=triggers)
        self._thread = threading.Thread(target=self._run, name="daemon", daemon=True)
        self.failure: BaseException | None = None

    def _run(self) -> None:
        try:
            self.daemon.run()
        except BaseException as exc:  # re-raised in the test by __exit__
            self.failure = exc

    def __enter__(self) -> RunningDaemon:
        self._thread.start()

        def tried() -> bool:
            if self.failure is not None:
                raise self.failure
            return self.daemon.link.tried.is_set()

        wait_until(tried, 60, "the daemon tried its camera")
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.daemon.stop()
        self._thread.join(60)
        assert not self._thread.is_alive(), "the daemon did not stop within 60 s"
        if self.failure is not None and kind is None:
            raise self.failure

    @property
    def url(self) -> str:
        console = self.daemon.console
        assert console is not None, "no console in this configuration"
        return console.url

    def ask(self, action: Request, timeout: float = 60.0) -> Answer:
        reply: Future[Answer] = Future()
        self.daemon.hub.emit(action, "test", reply)
        return reply.result(timeout)

    def wait_for_state(self, name: str, state: State, timeout: float = 90.0) -> Path:
        def reached() -> Path | None:
            for stack in self.daemon.library.stacks():
                if stack.name == name and read_manifest(stack).state == state:
                    return stack
            return None

        return wait_until(reached, timeout, f"{name} reached {state.value}", every=0.05)
