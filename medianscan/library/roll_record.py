"""A roll's own record, `<roll>/roll.json`: the film it is, written when the roll starts (atomically, versioned).

The blend of any negative in the roll reads it to put the film's metadata into the DNG and its sidecar, whoever
blends it (a worker, `medianscan blend`, a restart), so it lives on disk with the roll, not in the daemon.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medianscan.atomic import write_json
from medianscan.errors import MedianscanError
from medianscan.library.film_base import FilmBase
from medianscan.library.manifest import now
from medianscan.records import FilmRecord

ROLL_RECORD = "roll.json"
ROLL_LOCK = ".roll.lock"  # held while roll.json is read, changed and written back
VERSION = 1
_NUMBER = re.compile(r"(\d+)\D*$")


@dataclass(frozen=True)
class RollRecord:
    film: FilmRecord
    created: str


@contextmanager
def updating(roll: Path) -> Iterator[None]:
    """Hold the roll's record for a read-change-write: two blend workers settling the film base at once (each in
    its own process) would otherwise keep only the last one's change."""
    fd = os.open(roll / ROLL_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_roll_record(roll: Path, film: FilmRecord) -> None:
    write_json(roll / ROLL_RECORD, {"version": VERSION, "created": now(), "film": film.to_json()})


def read_roll_record(roll: Path) -> RollRecord | None:
    """The roll's record, or None for a roll without one (from before, or made by hand); a damaged record is a
    MedianscanError naming the file."""
    data = _stored(roll)
    if data is None:
        return None
    try:
        return RollRecord(FilmRecord.from_json(data.get("film", {}), stored=True), str(data.get("created", "")))
    except (ValueError, AttributeError) as exc:
        raise MedianscanError(f"{roll / ROLL_RECORD}: not a valid roll record ({exc})") from exc


def read_film_base(roll: Path) -> FilmBase | None:
    """The roll's film base as recorded in its roll.json (medianscan.library.film_base), or None when none is; a
    damaged one is a MedianscanError naming the file."""
    data = _stored(roll)
    found = data.get("film_base") if data is not None else None
    if found is None:
        return None
    try:
        return FilmBase.from_json(found)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MedianscanError(f"{roll / ROLL_RECORD}: the film base it records is not valid ({exc})") from exc


def record_film_base(roll: Path, base: FilmBase) -> None:
    """Record the roll's film base in its roll.json, keeping what the record holds (a roll without one gets one,
    with the film unknown)."""
    data = _stored(roll)
    if data is None:
        data = {"version": VERSION, "created": now(), "film": FilmRecord().to_json()}
    write_json(roll / ROLL_RECORD, {**data, "film_base": base.to_json() | {"recorded": now()}})


def _stored(roll: Path) -> dict[str, Any] | None:
    """roll.json as it is stored, or None for a roll without one; one that cannot be read, or is not a JSON
    object, is a MedianscanError naming the file."""
    path = roll / ROLL_RECORD
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise MedianscanError(f"{path}: cannot read the roll's record ({exc})") from exc
    if not isinstance(data, dict):
        raise MedianscanError(f"{path}: not a valid roll record (a {type(data).__name__}, not a JSON object)")
    return data


def exposure_number(stack: Path) -> int | None:
    """The negative's number in its roll: the last number in its folder's name (`frame-012` -> 12)."""
    match = _NUMBER.search(stack.name)
    return int(match.group(1)) if match else None
