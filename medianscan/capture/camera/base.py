"""The camera interface the daemon codes against, whatever drives the body (libgphoto2 or the simulator).

A Camera object belongs to one thread (libgphoto2 camera access is single-threaded). It never loses a frame:
every file reaches its final name only after it is whole on disk, and a failed burst still reports, and keeps,
the frames it got.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medianscan.config.schema import CameraConfig
from medianscan.errors import MedianscanError
from medianscan.records import BurstRecord, CameraIdentity
from medianscan.wording import counted

if TYPE_CHECKING:
    from medianscan.capture.camera.burst.enough import FrameCount
    from medianscan.capture.camera.burst.leftover import Fetched
    from medianscan.capture.camera.burst.link import Choice

__all__ = [
    "BurstError",
    "BurstRecord",
    "Camera",
    "CameraError",
    "CameraIdentity",
    "NoLiveViewError",
    "SettingError",
    "SettingInfo",
    "burst_error",
]


class CameraError(MedianscanError):
    """The camera cannot do what was asked; the message says why and how to fix it."""


class SettingError(CameraError):
    """The body is there but a configured setting is not: a name it lacks, a value it does not offer, a read-only
    widget. Not a lost camera: it stays connected (live view works) and captures wait for the fix. `key` is the
    setting's name as the user wrote it; the caller adds where to fix it (the config, or `--set`). `reason` is the
    message without the body's name, for where the body is named already (status, the console's badge)."""

    def __init__(self, key: str, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.reason = reason or message


class BurstError(CameraError):
    """A burst that did not complete; `record` lists the frames already safe on disk (they are kept)."""

    def __init__(self, message: str, record: BurstRecord) -> None:
        super().__init__(message)
        self.record = record


def burst_error(exc: Exception, record: BurstRecord, *, reconnected: bool | None = None) -> str:
    """What a failed burst tells the operator: the cause, whether the camera came back after it was lost (None:
    it was not lost), and the frames safe on disk when there are any."""
    parts = [str(exc)]
    if reconnected is not None:
        parts.append("reconnected" if reconnected else "the camera is still gone")
    if record.frames:
        parts.append(f"{counted(len(record.frames), 'frame')} kept in {record.stack}")
    return "; ".join(parts)


class NoLiveViewError(CameraError):
    """This body gives no live view (or not in its present mode); capture is not affected."""


@dataclass
class SettingInfo:
    """One camera setting as `medianscan camera show` lists it."""

    name: str  # the camera's widget name, e.g. 'f-number'
    key: str  # the config key it answers to, e.g. 'aperture' (the name itself when no alias applies)
    label: str
    value: str
    choices: list[str]
    readonly: bool
    section: str = ""  # the widget's parent in the camera's config tree, e.g. 'capturesettings'


class Camera(abc.ABC):
    """A connected (or connectable) camera. Use from one thread only."""

    identity: CameraIdentity | None = None
    cfg: CameraConfig  # its configuration: `cfg.settings` is what every burst locks

    @property
    @abc.abstractmethod
    def connected(self) -> bool:
        """True while a session with the body is open."""

    @abc.abstractmethod
    def connect(self) -> CameraIdentity:
        """Open the session; CameraError (with the fix) when there is no usable camera."""

    @abc.abstractmethod
    def lock(self) -> dict[str, str]:
        """Set every configured setting, read it back and verify it; returns config key -> value read back."""

    @abc.abstractmethod
    def burst(self, frames: int | FrameCount, stack: Path, stem: str) -> BurstRecord:
        """Re-lock, then shoot `frames` frames (a number, or as many as the negative needs: burst.enough) to
        `stack/<stem>_<NN>.<ext>`; BurstError (with .record) on a fault."""

    @abc.abstractmethod
    def strategy(self, *, adaptive: bool = False) -> Choice:
        """How this body's bursts are fired, and why (the config, what the body offers, its quirks); `adaptive`:
        for a burst whose length is decided as it runs (its continuous burst must be one the host can stop)."""

    @abc.abstractmethod
    def fetch_left(self, stack: Path, stem: str, frames_expected: int) -> Fetched:
        """Fetch into `stack` the files its cut-off burst left on the body (its journal says which)."""

    @abc.abstractmethod
    def keep_alive(self) -> None:
        """A cheap call so the body does not fall asleep; reconnects if it is gone (CameraError if it stays gone)."""

    @abc.abstractmethod
    def describe(self) -> list[SettingInfo]:
        """Every setting the camera offers: name, current value, choices, read-only."""

    def preview(self) -> bytes:
        """One live-view frame as JPEG bytes, at the body's own rate. NoLiveViewError when the body has
        none; CameraError for a failure that may pass."""
        raise NoLiveViewError("no live view on this body")

    def magnify(self, at: tuple[float, float] | None) -> bool:
        """Turn the body's own live-view magnifier on at `at` (fractions of the view; ignored by bodies whose
        magnifier cannot be aimed), or off with None. Fire and forget: no read-back (waiting for one froze other
        tools' live view). False when the body has no magnifier libgphoto2 drives."""
        return False

    def end_preview(self) -> None:  # noqa: B027 - a body without a viewfinder to drop has nothing to do
        """Live view is no longer watched: let the body drop its mirror or viewfinder (best effort)."""

    def responding(self) -> bool:
        """A cheap question the body must answer: False when it is gone (after failures of another call)."""
        return self.connected

    def battery(self) -> str | None:
        """The battery level as the body reports it ("75%", "Full"), or None when it reports none."""
        return None

    @abc.abstractmethod
    def close(self) -> None:
        """Restore the values found at connect, then end the session. Safe to call twice."""

    def __enter__(self) -> Camera:
        if not self.connected:
            self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
