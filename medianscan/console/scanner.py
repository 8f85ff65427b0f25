"""What the console needs of the daemon that serves it: its live-view feed, its library, its trigger hub, and a
snapshot of its state (one instant, read at once). The capture daemon (medianscan.service.capture) is one; the
console imports no service, so it stands below the service that starts it."""

from __future__ import annotations

from typing import Protocol

from medianscan.capture.events import Told, TriggerHub
from medianscan.capture.live_view import LiveFeed
from medianscan.capture.rig.roll_run import RollProgress
from medianscan.capture.rig.tile_run import TileProgress
from medianscan.library.rolls import Library
from medianscan.reports import CameraView, QueueState


class Snapshot(Protocol):
    """The daemon's state at one instant, as the console reads it (all of it taken at once, under the daemon's
    lock: never a field of one moment beside a field of another)."""

    @property
    def camera(self) -> CameraView: ...

    @property
    def paused(self) -> bool: ...

    @property
    def bursting(self) -> bool: ...

    @property
    def bracket_group(self) -> tuple[int, int, str] | None: ...  # (group, of groups, shutter) while a bracket runs

    @property
    def queue(self) -> QueueState: ...

    @property
    def message(self) -> str | None: ...  # the last error the operator was told

    @property
    def told(self) -> Told | None: ...  # the last answer to an operator's action, whoever asked

    @property
    def run_under_way(self) -> RollProgress | None: ...  # the roll run's progress (scan-roll), while it runs

    @property
    def tile_run(self) -> TileProgress | None: ...  # the tile run's progress (scan-tiles: under way, or the last)


class Scanner(Protocol):
    live: LiveFeed  # preview frames from the camera thread
    library: Library
    hub: TriggerHub  # where the console's buttons go, as the footswitch's presses do

    @property
    def rig(self) -> str | None: ...

    @property
    def rig_axes(self) -> str | None: ...  # x or xy (an XY stage: the Scan tiles button), None without a rig

    @property
    def frames_per_burst(self) -> str: ...

    def has_camera(self) -> bool: ...

    def camera_view(self) -> CameraView: ...

    def snapshot(self) -> Snapshot: ...
