"""One burst's shots as the engine keeps them: the files each brought, as named, fetched and judged."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from medianscan.capture.camera.burst.link import Announced, Download


class Role(Enum):
    """What a fetched file becomes in the stack."""

    FRAME = "frame"  # a frame of the stack, named <stem>_NN
    JPEG = "jpeg"  # a frame's companion JPEG, kept beside it (keep_jpeg)
    SPARE = "spare"  # a shot past the frames wanted (or its companion), in SPARES
    SET_ASIDE = "set aside"  # a raw that is not this burst's (or its companion), in SET_ASIDE
    NOT_KEPT = "not kept"  # written nowhere, only deleted from the body


def stem_of(name: str) -> str:
    return name.rsplit(".", 1)[0].lower()


@dataclass(frozen=True)
class Fetch:
    """A file fetched into memory, and what its first bytes say it is."""

    file: Announced
    download: Download
    head: bytes
    kind: str  # raw | jpeg | other
    ext: str


@dataclass(eq=False)
class Shot:
    """One shutter release and the files it brought."""

    fired: float  # host wall-clock time of the command (freshness judges its files against it)
    files: list[Announced] = field(default_factory=list)  # as named, in order
    fetched: int = 0  # how many of `files` are fetched
    named_at: float | None = None  # monotonic time its first file was named
    closed: bool = False  # no more files will come for it
    judged: bool = False  # its raw was fetched: it has its frame, or it had none fresh
    frame: int | None = None
    spare: Path | None = None  # a shot past the frames the burst wanted (its release was late): kept here
    dropped: bool = False  # ... or deleted from the body unfetched (camera.extra_shots: delete)

    def stems(self) -> set[str]:
        return {stem_of(f.name) for f in self.files}

    def unfetched(self) -> list[Announced]:
        return self.files[self.fetched :]
