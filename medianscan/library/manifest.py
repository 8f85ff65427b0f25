"""A stack's `stack.json`: its state through capture and blend, written atomically at every change, so a scan
after a crash knows exactly what was pending.

Paths are stored so that any process reads them right, wherever it was started and wherever the library has
moved since: a file inside the stack folder (its blend, sidecar, frames) relative to that folder, any other file
absolute. Reading takes them in the stack folder as it is now (a retake moves it to `discarded/`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from medianscan.atomic import write_json
from medianscan.errors import MedianscanError
from medianscan.library.contents import MANIFEST
from medianscan.record_json import read_record_file, to_json
from medianscan.records import BlendRecord, BurstRecord, LeftOut

log = logging.getLogger(__name__)


DISCARDED = "discarded"
MANIFEST_VERSION = 1


class State(enum.StrEnum):
    """A stack's life: capturing -> captured -> blending -> blended | failed; cut-off bursts: incomplete."""

    CAPTURING = "capturing"
    CAPTURED = "captured"
    BLENDING = "blending"
    BLENDED = "blended"
    FAILED = "failed"
    INCOMPLETE = "incomplete"


PENDING = (State.CAPTURED, State.BLENDING)


def now() -> str:
    """Local wall-clock time with its offset, as manifests record it."""
    return dt.datetime.now().astimezone().isoformat(timespec="milliseconds")


def to_jsonable(obj: object) -> Any:  # noqa: PLR0911 - one return per JSON kind
    """Plain JSON data from a record: `to_json()` if it has one, a dataclass by record_json's rule, paths as
    strings."""
    own = getattr(obj, "to_json", None)
    if callable(own):
        return to_jsonable(own())
    if is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(to_json(obj))  # what the rule leaves as it is (a numpy integer) made plain here
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    return str(obj)


@dataclass
class Manifest:
    """What `stack.json` holds: the state, its error text, the burst record and the blend result."""

    state: State
    roll: str
    frame: str
    frames_expected: int
    created: str = field(default_factory=now)
    updated: str = field(default_factory=now)
    error: str | None = None
    burst: BurstRecord | None = None  # what the burst did
    blend: BlendRecord | None = None  # what the blend wrote and read
    capture_seconds: float | None = None
    blend_seconds: float | None = None
    retention: str | None = None  # what was done with the raws after the verified blend
    note: str | None = None  # e.g. why a stack is incomplete
    flat: Path | None = None  # the roll's flat-field folder when this negative was shot (it is corrected with it)
    bracket: list[str] | None = None  # the shutter values of a multi-exposure negative (it is merged, not blended)
    strip_frame: int | None = None  # shot by a roll run: the strip's frame it is (blank frames skipped between)
    copies: list[Path] = field(default_factory=list)  # blends of this stack written outside it (`--output`)
    history: list[dict[str, str]] = field(default_factory=list)
    version: int = MANIFEST_VERSION

    def to_json(self, folder: Path | None = None) -> dict[str, Any]:
        """Plain JSON; given the stack `folder`, the paths are stored as the module says (relative inside it)."""
        data: dict[str, Any] = to_jsonable({f.name: getattr(self, f.name) for f in fields(self)})
        if folder is not None:
            if self.blend is not None:
                data["blend"] = stored_blend(self.blend, folder).to_json()
            data["flat"] = None if self.flat is None else str(self.flat.resolve())
            data["copies"] = [str(p.resolve()) for p in self.copies]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], source: Path) -> Manifest:
        """Parse a manifest; a damaged one is a MedianscanError naming the file."""
        known = {f.name for f in fields(cls)}
        try:
            kwargs = {k: v for k, v in data.items() if k in known}
            kwargs["state"] = State(kwargs["state"])
            if kwargs.get("blend") is not None:
                kwargs["blend"] = read_blend(BlendRecord.from_json(kwargs["blend"]), source.parent)
            if kwargs.get("flat") is not None:
                kwargs["flat"] = Path(kwargs["flat"])
            kwargs["copies"] = [Path(p) for p in kwargs.get("copies", [])]
            if kwargs.get("burst") is not None:
                kwargs["burst"] = BurstRecord.from_json(kwargs["burst"], source.parent)
            return cls(**kwargs)
        except (KeyError, TypeError, ValueError) as exc:
            raise MedianscanError(f"{source}: not a valid stack manifest ({exc})") from exc


def read_manifest(stack: Path) -> Manifest:
    """The manifest of the stack folder `stack`."""

    path = stack / MANIFEST
    data = read_record_file(path, "the stack manifest", f"{stack}: no {MANIFEST} here, so this is not a stack folder")
    return Manifest.from_json(data, path)


def write_manifest(stack: Path, manifest: Manifest) -> None:
    write_json(stack / MANIFEST, manifest.to_json(stack))


def inside(path: Path, folder: Path) -> bool:
    """Is `path` a file in the stack `folder` (or below it)? Both are taken from the working folder."""
    return path.resolve().is_relative_to(folder.resolve())


def _rebased(record: BlendRecord, move: Any) -> BlendRecord:
    """`record` with every path it names passed through `move`."""
    return dataclasses.replace(
        record,
        stack=move(record.stack),
        output=move(record.output),
        sidecar=move(record.sidecar),
        extra_outputs=tuple(move(p) for p in record.extra_outputs),
        frames=tuple(move(p) for p in record.frames),
        dropped=tuple(LeftOut(move(d.path), d.reason) for d in record.dropped),
        ignored=tuple(LeftOut(move(i.path), i.reason) for i in record.ignored),
        flat=None if record.flat is None else dataclasses.replace(record.flat, source=record.flat.source.resolve()),
    )


def stored_blend(record: BlendRecord, folder: Path) -> BlendRecord:
    """The blend record as `stack.json` keeps it: paths inside the stack `folder` relative to it ("." the stack
    itself), others absolute."""
    base = folder.resolve()

    def store(path: Path) -> Path:
        full = path.resolve()
        return full.relative_to(base) if full.is_relative_to(base) else full

    return _rebased(record, store)


def read_blend(record: BlendRecord, folder: Path) -> BlendRecord:
    """The stored record's paths taken in the stack `folder` as it is now. A record written before paths were
    stored relative (the stack's own path as the blend was given it, relative to a working folder long gone, or
    absolute in a library that has moved since) is read the same way: what lay under its stack lies under it."""
    recorded = record.stack

    def take(path: Path) -> Path:
        if path.is_relative_to(recorded):
            return folder / path.relative_to(recorded)
        return path if path.is_absolute() else folder / path

    return _rebased(record, take)


def mark(stack: Path, state: State, **changes: Any) -> Manifest:
    """Move the stack folder `stack` to `state`, recording the other manifest fields given, atomically (the
    daemon's `Library.mark` under its lock; `medianscan blend` on a stack of the library directly)."""
    m = read_manifest(stack)
    for key, value in changes.items():
        if not hasattr(m, key) or key in {"state", "history", "version"}:
            raise TypeError(f"no manifest field {key!r}")
        typed = {"blend": BlendRecord, "burst": BurstRecord}.get(key)
        if typed is not None and not (value is None or isinstance(value, typed)):
            raise TypeError(f"{key} must be a {typed.__name__}, not {type(value).__name__}")
        kept = typed is not None or key in ("flat", "copies")  # records and paths stay typed (stored by to_json)
        setattr(m, key, value if kept else to_jsonable(value))
    m.state = state
    m.updated = now()
    m.history.append({"state": state.value, "at": m.updated})
    write_manifest(stack, m)
    return m
