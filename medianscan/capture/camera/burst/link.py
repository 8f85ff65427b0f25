"""What the burst engine asks of a body: fire (one way or another), hear what it announces, fetch a file, delete
it. The libgphoto2 backend answers through the real ptp2 driver (capture.camera.gphoto2.link), the simulated body
through its timing model (capture.camera.simulated.body); the engine is the same for both.

Every call happens on the camera thread: a body is one session on one thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from medianscan.vocabulary import Strategy

log = logging.getLogger(__name__)

NativeKind = Literal["nikon-burstnumber", "canon-remote-release", "simulated"]


@dataclass(frozen=True)
class Announced:
    """A file the body said it made (libgphoto2's CameraFilePath)."""

    folder: str
    name: str

    @property
    def path(self) -> str:
        return f"{self.folder.rstrip('/')}/{self.name}"


@dataclass(frozen=True)
class BodyEvent:
    """What waiting on the body gave: a file, the end of a capture, or nothing within the wait."""

    kind: Literal["file", "done", "nothing"]
    file: Announced | None = None


@dataclass
class Download:
    """A file fetched into memory: `data` is a view of bytes `holder` owns (keep both until it is written)."""

    file: Announced
    data: memoryview
    holder: Any = field(default=None, repr=False)


@dataclass(frozen=True)
class Capabilities:
    """How a body can be fired, as probed at connect (what libgphoto2's driver offers for it)."""

    trigger: bool  # trigger_capture: fire and hear the file as an event
    native: NativeKind | None  # a host-started continuous burst, and which kind
    why: str  # what the probe found, in a phrase


@dataclass(frozen=True)
class Choice:
    """How a body's bursts are fired, and why, in a phrase (`camera show` prints it)."""

    strategy: Strategy
    why: str


class BodyLink(Protocol):
    """One connected body, as the burst engine drives it."""

    def where(self) -> str: ...

    def capabilities(self) -> Capabilities: ...

    def capture(self) -> Announced:
        """Fire one shot and wait until the body names its file."""
        ...

    def trigger(self) -> None:
        """Fire one shot; its files come as events."""
        ...

    def start_native(self, frames: int) -> None:
        """Start the body's continuous burst of `frames` shots; the files come as events."""
        ...

    def stop_native(self) -> None:
        """End a continuous burst (let go of the release) and put the drive mode back."""
        ...

    def next_event(self, seconds: float) -> BodyEvent:
        """The next thing the body says, waiting up to `seconds`."""
        ...

    def download(self, file: Announced) -> Download: ...

    def delete(self, file: Announced) -> None: ...

    def exists(self, file: Announced) -> bool:
        """Whether the body still holds `file` (a shot left there by a burst cut off)."""
        ...

    def listing(self, folder: str) -> list[str]:
        """The names of the files the body holds in `folder`."""
        ...


def drain_before(link: BodyLink) -> None:
    """Empty the body's event queue before a burst's first shot: a file named now is no shot of the burst's (the
    shutter pressed on the body), left on the camera, named."""
    for _ in range(1000):
        event = link.next_event(0.001)
        if event.kind == "nothing":
            return
        if event.kind == "file" and event.file is not None:
            log.warning(
                "%s appeared on %s outside a burst (shutter pressed on the body?); left on the camera",
                event.file.path,
                link.where(),
            )
