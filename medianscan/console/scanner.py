"""What the console needs of the daemon that serves it: its live-view feed, its library, its trigger hub, and a
snapshot of its state. The capture daemon (medianscan.service.capture) is one; the console imports no service,
so it stands below the service that starts it."""

from __future__ import annotations

from typing import Protocol

from medianscan.capture.events import TriggerHub
from medianscan.capture.live_view import LiveFeed
from medianscan.capture.rig.roll_run import RollProgress
from medianscan.library.rolls import Library
from medianscan.reports import CameraView, QueueState


class Scanner(Protocol):
    live: LiveFeed  # preview frames from the camera thread
    library: Library
    hub: TriggerHub  # where the console's buttons go, as the footswitch's presses do
    paused: bool
    bursting: bool
    message: str | None  # the last error the operator was told
    bracket_group: tuple[int, int, str] | None  # (group, of groups, shutter) while a bracket runs
    roll_run: RollProgress | None  # the roll run's progress (scan-roll); `under_way` False once it is over

    @property
    def rig(self) -> str | None: ...

    @property
    def frames_per_burst(self) -> str: ...

    def has_camera(self) -> bool: ...

    def camera_view(self) -> CameraView: ...

    def queue_state(self) -> QueueState: ...
