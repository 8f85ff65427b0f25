"""What the capture daemon's parts (its camera thread, its status, live view's turns on the camera, the fetch of
cut-off bursts) use of the daemon: the daemon (service.capture.daemon) is one. The parts import no daemon, so the
daemon stands above them and nothing imports it back."""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path
from typing import Protocol

from medianscan.capture.events import PressQueue
from medianscan.capture.live_view import LiveFeed
from medianscan.capture.rig.roll_run import RollProgress
from medianscan.config.schema import Config
from medianscan.console.server import ConsoleServer
from medianscan.library.rolls import Library
from medianscan.service.capture.camera_link import CameraLink, CameraStatus
from medianscan.service.hooks import Hooks
from medianscan.service.loop import ServicePool
from medianscan.service.progress import Progress


class CaptureDaemon(Protocol):
    """The capture daemon, as its parts see it. The fields under `lock` are shared between the camera thread and
    the main loop."""

    cfg: Config
    library: Library
    link: CameraLink  # the camera: touched by the camera thread only
    camera_status: CameraStatus
    live: LiveFeed
    presses: PressQueue
    pool: ServicePool
    lock: threading.RLock
    in_pool: set[Path]
    backlog: deque[Path]
    cut_off: set[Path]  # bursts cut off with frames on the body: fetched once it is here
    paused: bool
    bursting: bool
    waiting_for_room: bool
    bracket_group: tuple[int, int, str] | None
    roll_run: RollProgress | None  # a roll run's progress (its under_way False once over: the frames stay)
    roll_stop: threading.Event  # set: the roll run stops between frames
    message: str | None
    console: ConsoleServer | None
    hooks: Hooks
    stop_event: threading.Event

    def report_error(self, message: str, stack: Path | None) -> None: ...

    def submit(self, stack: Path) -> bool: ...

    def emit(self, news: Progress) -> None: ...

    def status_line(self) -> str: ...
