"""How files in a watched folder form stacks (`folder`, `count:N`, `gap:SECONDS`) and what one planned stack is."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from medianscan.blend.options import BlendOptions
from medianscan.errors import MedianscanError
from medianscan.library import contents

log = logging.getLogger(__name__)


TICK_SECONDS = 0.1  # how often the planner re-checks folders that are waiting for quiet or settle
STALLED_SECONDS = 120.0  # a file written under inotify whose close never came counts after this long unchanged
GroupKind = Literal["folder", "count", "gap"]
Fingerprint = dict[str, str]  # frame name -> sha256


# --- names and grouping ---------------------------------------------------------------------------------


def is_temp_name(path: Path) -> bool:
    """A name other tools use while a file is being written (never a frame, and a sign of a copy underway)."""
    return contents.is_other_temp(path)


def is_ours(path: Path) -> bool:
    """Files medianscan writes itself (blends, sidecars, manifests, atomic temps) and clutter (sidecars of
    editors, desktop files): never activity, never frames (the rule of `medianscan.library.contents`)."""
    return contents.role(path) in (contents.Role.OURS, contents.Role.CLUTTER)


@dataclass(frozen=True)
class Grouping:
    """How files form stacks: `folder`, `count:N` or `gap:SECONDS`."""

    kind: GroupKind = "folder"
    count: int = 0
    gap: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Grouping:
        kind, _, value = text.strip().partition(":")
        try:
            if kind == "folder" and not value:
                return cls("folder")
            if kind == "count" and int(value) >= 1:
                return cls("count", count=int(value))
            if kind == "gap" and float(value) > 0:
                return cls("gap", gap=float(value))
        except ValueError:
            pass
        raise MedianscanError(f"group {text!r}: use folder, count:N (N >= 1) or gap:SECONDS (> 0)")

    def __str__(self) -> str:
        if self.kind == "count":
            return f"count:{self.count}"
        if self.kind == "gap":
            return f"gap:{self.gap:g}"
        return "folder"


@dataclass(frozen=True)
class PlannedStack:
    """One stack to blend: its key (the folder, or `<folder>/<group name>`), its frames and where it goes, and
    why it is blended again when its earlier blend's sidecar lists other files ("1 frame added")."""

    key: Path
    frames: tuple[Path, ...]
    fingerprint: tuple[tuple[str, str], ...]
    options: BlendOptions
    again: str | None = None


def changes(before: Fingerprint, now: Fingerprint) -> str:
    """How a stack's files differ from those its earlier blend read: "1 frame added, 2 changed"."""
    added = len(now.keys() - before.keys())
    removed = len(before.keys() - now.keys())
    changed = sum(1 for name in now.keys() & before.keys() if now[name] != before[name])
    said = [f"{n} frame{'s' if n > 1 else ''} {what}" for n, what in ((added, "added"), (removed, "removed"),
            (changed, "changed")) if n]  # fmt: skip
    return ", ".join(said) or "the files changed"
