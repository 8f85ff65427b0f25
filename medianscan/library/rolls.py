"""The library on disk: roll and negative folders under one root, their names, retake, and the start-up scan.

The folders are the source of truth. After a crash or `kill -9` a scan of the library says exactly what was
pending: captured or half-blended stacks are queued again, a burst cut off midway is marked incomplete and kept,
and interrupted writes (`.part` temps) are removed. Nothing here ever deletes a raw except the `delete`
retention after a verified blend.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medianscan.atomic import fsync_dir, remove_dead_temps, write_json
from medianscan.errors import MedianscanError
from medianscan.library import contents, flats
from medianscan.library.manifest import DISCARDED, Manifest, State, mark, now, read_manifest, write_manifest
from medianscan.library.names import Template, fresh_path
from medianscan.library.retention import blended_raws, release
from medianscan.library.roll_record import write_roll_record
from medianscan.records import FilmRecord
from medianscan.vocabulary import RETENTIONS, Retention

log = logging.getLogger(__name__)


def raw_files(stack: Path) -> list[Path]:
    """The files of a stack folder that could be frames (the rule of `medianscan.library.contents`, by name only)."""
    return contents.candidates(stack)


RETAKEN = ".retaken"  # in a roll: the negative a retake set aside, until the next capture shoots it again


@dataclass(frozen=True)
class Retaken:
    """What a retake did: the negative's name, where its folder is set aside, and whether this press moved it
    (`again`: an earlier retake had set it aside and it has not been shot since; nothing was moved now)."""

    name: str
    moved: Path
    again: bool = False


class Library:
    """Roll and negative folders under one root, and the manifests in them.

    Thread-safe: the camera thread creates stacks while the main thread records blend results.
    """

    def __init__(
        self,
        root: Path,
        *,
        roll_template: str = "{date}-roll{roll:03d}",
        negative_template: str = "frame-{negative:03d}",
        retention: Retention = "keep",
        archive: Path | None = None,
        today: Callable[[], dt.date] = dt.date.today,
        film: FilmRecord | None = None,
    ) -> None:
        self.root = Path(root).expanduser()
        self.film = film or FilmRecord()  # the config's defaults for every new roll
        self.rolls = Template(roll_template, "roll", "roll_template")
        self.negatives = Template(negative_template, "negative", "negative_template")
        if retention not in RETENTIONS:
            raise MedianscanError(f"retention {retention!r} is not one of {', '.join(RETENTIONS)}")
        if retention == "archive" and archive is None:
            raise MedianscanError("retention 'archive' needs an archive folder: set `archive:` in the config")
        self.retention = retention
        self.archive = Path(archive).expanduser() if archive is not None else None
        self.today = today
        self.lock = threading.RLock()
        self._roll: Path | None = None

    @classmethod
    def from_config(cls, cfg: Any) -> Library:
        """Build from a `medianscan.config.schema.Config`."""
        return cls(
            cfg.library,
            roll_template=cfg.roll_template,
            negative_template=cfg.negative_template,
            retention=cfg.retention,
            archive=cfg.archive,
            film=cfg.film,
        )

    # --- rolls and stacks -------------------------------------------------------------------------------

    def roll_folders(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.iterdir():
            if path.is_dir() and not path.name.startswith(".") and self.rolls.number(path.name) is not None:
                found.append(path)
        return sorted(found, key=lambda p: (self.rolls.number(p.name) or 0, p.stat().st_mtime, p.name))

    def stacks(self, roll: Path | None = None) -> list[Path]:
        """The stack folders of a roll (default: the current one), in the negatives' order."""
        roll = roll if roll is not None else self._roll
        if roll is None or not roll.is_dir():
            return []
        found = [
            p
            for p in roll.iterdir()
            if p.is_dir() and not p.name.startswith(".") and self.negatives.number(p.name) is not None
        ]
        return sorted(found, key=lambda p: (self.negatives.number(p.name) or 0, p.name))

    @property
    def roll(self) -> Path:
        """The current roll: the latest existing one, or a new one in an empty library."""
        with self.lock:
            if self._roll is None or not self._roll.is_dir():
                rolls = self.roll_folders()
                self._roll = rolls[-1] if rolls else self.new_roll()
            return self._roll

    def new_roll(self, film: FilmRecord | None = None) -> Path:
        """Start a new roll folder (an existing folder is never reused) with its record: `film` over the
        configured defaults."""
        with self.lock:
            self.root.mkdir(parents=True, exist_ok=True)
            numbers = [self.rolls.number(p.name) or 0 for p in self.roll_folders()]
            number = max(numbers, default=0) + 1
            path = fresh_path(self.root, self.rolls.format(number, self.today()))
            path.mkdir()
            fsync_dir(self.root)
            write_roll_record(path, (film or FilmRecord()).merged_over(self.film))
            previous, self._roll = self._roll, path
            flats.carry_over(previous, path)
            log.info("new roll %s", path)
            return path

    def _next_stack(self, roll: Path) -> Path:
        numbers = [self.negatives.number(p.name) or 0 for p in self.stacks(roll)]
        number = max(numbers, default=0) + 1
        while (roll / self.negatives.format(number, self.today())).exists():
            number += 1
        return roll / self.negatives.format(number, self.today())

    def next_negative(self) -> str:
        """The name the next negative's folder will get (creates nothing)."""
        with self.lock:
            roll = self.current_roll()
            return self.negatives.format(1, self.today()) if roll is None else self._next_stack(roll).name

    def new_stack(self, frames_expected: int) -> Path:
        """Create the next negative's folder in the current roll with a `capturing` manifest, before any frame."""
        with self.lock:
            roll = self.roll
            path = self._next_stack(roll)
            path.mkdir()
            write_manifest(path, self._initial(path, frames_expected))
            (roll / RETAKEN).unlink(missing_ok=True)  # the negative set aside is being shot again
            fsync_dir(roll)
            return path

    def _initial(self, stack: Path, frames_expected: int) -> Manifest:
        m = Manifest(State.CAPTURING, stack.parent.name, stack.name, frames_expected)
        m.history.append({"state": m.state.value, "at": m.created})
        return m

    def last_stack(self) -> Path | None:
        stacks = self.stacks()
        return stacks[-1] if stacks else None

    def current_roll(self) -> Path | None:
        """The current roll, or the latest one on disk, or None (creates nothing, unlike `roll`)."""
        with self.lock:
            if self._roll is not None and self._roll.is_dir():
                return self._roll
            rolls = self.roll_folders()
            return rolls[-1] if rolls else None

    def position(self) -> tuple[str | None, str | None]:
        """The current roll's name and its last negative's, for status lines (creates nothing)."""
        roll = self.current_roll()
        stacks = self.stacks(roll) if roll is not None else []
        return (roll.name if roll else None), (stacks[-1].name if stacks else None)

    # --- manifests ------------------------------------------------------------------------------------

    def mark(self, stack: Path, state: State, **changes: Any) -> Manifest:
        """Move a stack to `state`, recording the other manifest fields given, atomically."""
        with self.lock:
            return mark(stack, state, **changes)

    def recent(self, count: int = 5) -> list[tuple[Path, Manifest]]:
        """The last `count` stacks of the current roll with their manifests (newest last)."""
        out = []
        for stack in self.stacks()[-count:]:
            try:
                out.append((stack, read_manifest(stack)))
            except MedianscanError as exc:
                log.warning("%s", exc)
        return out

    def needing_attention(self) -> list[tuple[Path, Manifest]]:
        """The current roll's stacks that failed or whose burst was cut off, with their manifests (the operator
        must retake, blend with --force or fix them; status lists them with the reason)."""
        found = []
        roll = self.current_roll()
        for stack in self.stacks(roll) if roll is not None else []:
            try:
                m = read_manifest(stack)
            except MedianscanError as exc:
                log.warning("%s", exc)
                continue
            if m.state in (State.FAILED, State.INCOMPLETE):
                found.append((stack, m))
        return found

    def bytes_per_frame(self) -> int | None:
        """The size of one raw in the latest stack that has any, to estimate the next stack's disk need."""
        for stack in reversed(self.stacks()):
            raws = raw_files(stack)
            if raws:
                return max(p.stat().st_size for p in raws)
        return None

    def free_bytes(self) -> int | None:
        """Free space where the library is (or will be: its nearest existing parent); None if unknowable."""
        folder = self.root
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        try:
            return shutil.disk_usage(folder).free
        except OSError:
            return None

    # --- operator actions -----------------------------------------------------------------------------

    def retake(self) -> Retaken:
        """Set the roll's last negative aside in `<roll>/discarded/` (nothing is deleted), for the next capture to
        shoot it again under its name. Until that capture, a retake is the same retake: the negative stays set
        aside and no earlier one is touched (a double press on the pedal costs no good negative its place)."""
        with self.lock:
            roll = self.roll
            pending = self.retake_pending(roll)
            if pending is not None:
                return pending
            last = self.last_stack()
            if last is None:
                raise MedianscanError(f"nothing to retake: roll {roll.name} has no stacks yet")
            bin_ = last.parent / DISCARDED
            bin_.mkdir(exist_ok=True)
            target = fresh_path(bin_, last.name)
            last.rename(target)
            fsync_dir(last.parent)
            fsync_dir(bin_)
            write_json(roll / RETAKEN, {"negative": last.name, "set_aside": target.name})
            remove_dead_temps(target)  # a blend cancelled by the retake may have left its temp
            try:
                m = read_manifest(target)
                m.history.append({"state": f"discarded ({m.state.value})", "at": now()})
                m.note = f"discarded by retake from {last}"
                write_manifest(target, m)
            except MedianscanError as exc:
                log.warning("%s", exc)
            log.info("retake: %s moved to %s", last, target)
            return Retaken(last.name, target)

    def retake_pending(self, roll: Path) -> Retaken | None:
        """The negative of `roll` a retake set aside that no capture has shot again since, or None."""
        try:
            record = json.loads((roll / RETAKEN).read_text())
            name, moved = str(record["negative"]), roll / DISCARDED / str(record["set_aside"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning(
                "%s: cannot read what the last retake set aside (%s); a retake sets the last stack aside",
                roll / RETAKEN,
                exc,
            )
            with contextlib.suppress(OSError):
                (roll / RETAKEN).unlink()
            return None
        if not moved.is_dir() or (roll / name).exists():  # moved by hand, or shot again meanwhile
            return None
        return Retaken(name, moved, again=True)

    # --- retention ------------------------------------------------------------------------------------

    def retain(self, stack: Path, manifest: Manifest | None = None) -> str:
        """Apply the retention policy to a stack's raws once its blend was verified; records what was done.

        `keep` leaves them; `delete` removes the raws the blend read (and any it dropped); `archive` moves
        them to `<archive>/<roll>/<negative>/` (copied and fsynced first when the archive is on another disk).
        """
        with self.lock:
            m = manifest if manifest is not None else read_manifest(stack)
            if m.state != State.BLENDED:
                raise MedianscanError(f"{stack}: raws are released only after a verified blend (now {m.state})")
            raws = blended_raws(m.blend) if m.blend is not None else raw_files(stack)
            archive = self.archive / stack.parent.name / stack.name if self.archive is not None else None
            done = release(raws, self.retention, archive)
            m.retention = done
            m.updated = now()
            write_manifest(stack, m)
            return done
