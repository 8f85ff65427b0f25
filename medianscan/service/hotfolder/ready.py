"""Which stacks of a watched folder are ready: each folder's complete files grouped (by folder, count or time
gap), stacks already blended or failed as they are now left out, the rest handed to the planner."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from medianscan.blend.measuring import checks
from medianscan.blend.options import BlendOptions
from medianscan.blend.reading.recorded import recorded_frames
from medianscan.blend.stack_files import output_paths
from medianscan.formats import FrameKind
from medianscan.library import contents
from medianscan.service.hotfolder.files import FileFacts, SeenFolder
from medianscan.service.hotfolder.grouping import Grouping, PlannedStack, changes, is_ours, is_temp_name
from medianscan.wording import counted


class FolderState(Protocol):
    """What planning reads and notes of the hot folder (tracker.HotFolder is it): the folder, how files group,
    the options, the timings, and its state under `cond`."""

    root: Path
    grouping: Grouping
    options: BlendOptions
    quiet_seconds: float
    settle_seconds: float
    frames_per_stack: int | None
    cond: threading.Condition
    folders: dict[Path, SeenFolder]
    failed: dict[Path, tuple[tuple[str, str], ...]]
    problems: dict[str, str]
    waiting: dict[str, str]
    settling: dict[str, str]
    blended_before: set[Path]
    blended_here: set[Path]
    facts: FileFacts

    def clock(self) -> float: ...

    def complete(self, path: Path, now: float, wall: float) -> bool: ...

    def label(self, key: Path) -> str: ...


log = logging.getLogger(__name__)


class ReadyStacks:
    """The planning half of a HotFolder `hot` (its notes and state stay there, under its lock)."""

    def __init__(self, hot: FolderState) -> None:
        self.hot = hot

    def evaluate(self, folder: Path) -> tuple[list[PlannedStack], bool]:
        """The stacks of `folder` ready now, and whether the folder is settled (nothing left to wait for); what
        an unsettled folder waits for is kept in `settling`, for status and the catch-up's log."""
        with self.hot.cond:
            self.hot.settling.pop(str(folder), None)
        stacks, settled, why = self._evaluate(folder)
        if not settled and why:
            with self.hot.cond:
                self.hot.settling[str(folder)] = why
        return stacks, settled

    def _evaluate(self, folder: Path) -> tuple[list[PlannedStack], bool, str]:
        if not folder.is_dir():
            return [], True, ""
        now = self.hot.clock()
        listing = sorted(p for p in folder.iterdir() if not is_ours(p))
        files = [p for p in listing if p.is_file()]
        wall = time.time()
        busy_temp = any(
            is_temp_name(p) and wall - p.stat().st_mtime < max(self.hot.quiet_seconds, self.hot.settle_seconds)
            for p in files
        )
        candidates = [p for p in files if not is_temp_name(p)]
        complete = [p for p in candidates if self.hot.complete(p, now, wall)]
        all_complete = len(complete) == len(candidates) and not busy_temp
        with self.hot.cond:
            state = self.hot.folders.get(folder)
            quiet_for = now - state.activity if state is not None else float("inf")
        if not all_complete:  # a file still being written: its name order and mtime mean nothing yet
            left = len(candidates) - len(complete)
            if not left:
                return [], False, "a copy under way (a temp file in it)"
            unchanged = f"unchanged for {self.hot.settle_seconds:g} s"
            return [], False, f"{counted(left, 'file')} not complete yet (still written to, or not {unchanged})"
        quiet = f"files still arriving; blended once nothing in it changes for {self.hot.quiet_seconds:g} s"
        if self.hot.grouping.kind == "folder":
            return (*self.evaluate_folder(folder, complete, quiet_for), quiet)
        if self.hot.grouping.kind == "count":
            return (*self.evaluate_count(folder, complete, quiet_for), "")
        gap = f"the last group is open until no file arrives for {self.hot.grouping.gap:g} s"
        return (*self.evaluate_gap(folder, complete, quiet_for), gap)

    def frames(self, complete: Sequence[Path]) -> tuple[list[Path], list[Path]]:
        """The files among complete ones that group into stacks (the frames by content, and the candidates
        that cannot be read: a blend names them), and those left out (a JPEG beside raws: named by the blend of
        a folder stack). The one rule of `medianscan.library.contents`, with cached sniffing."""
        found = contents.sort_out(complete, self.hot.facts.inspect)
        grouped = sorted([*found.frames, *(u.path for u in found.unreadable)])
        return grouped, [i.path for i in found.ignored]

    def evaluate_folder(self, folder: Path, complete: list[Path], quiet_for: float) -> tuple[list[PlannedStack], bool]:
        if folder == self.hot.root:
            if self.frames(complete)[0]:
                with self.hot.cond:
                    self.hot.waiting[str(folder)] = (
                        "frames directly in the watched folder: not a stack with group folder"
                    )
            return [], True
        target = self.hot.frames_per_stack
        if quiet_for < self.hot.quiet_seconds and not target:
            return [], False
        frames_now, left_out = self.frames(complete)
        if quiet_for < self.hot.quiet_seconds and len(frames_now) < (target or 0):
            return [], False
        if not frames_now:
            return [], True
        planned = self.plan(folder, frames_now, None, left_out)
        return ([planned] if planned is not None else []), True

    def evaluate_count(self, folder: Path, complete: list[Path], quiet_for: float) -> tuple[list[PlannedStack], bool]:
        frames_now, _ = self.frames(complete)
        claimed = self.claimed(folder, frames_now)
        n = self.hot.grouping.count
        free: list[Path] = []
        plans: list[PlannedStack] = []
        for path in frames_now:
            if path in claimed:
                continue
            free.append(path)
            if len(free) == n:
                planned = self.plan(folder, free, _group_name(free))
                if planned is not None:
                    plans.append(planned)
                free = []
        with self.hot.cond:
            self.hot.waiting.pop(str(folder), None)
            if free:
                self.hot.waiting[str(folder)] = _short_group(free, n)
        return plans, True

    def evaluate_gap(self, folder: Path, complete: list[Path], quiet_for: float) -> tuple[list[PlannedStack], bool]:
        frames_now, _ = self.frames(complete)
        timed = sorted(((p.stat().st_mtime, p) for p in frames_now), key=lambda t: (t[0], t[1].name))
        groups: list[list[Path]] = []
        last = None
        for mtime, path in timed:
            if last is None or mtime - last > self.hot.grouping.gap:
                groups.append([])
            groups[-1].append(path)
            last = mtime
        plans: list[PlannedStack] = []
        settled = True
        for i, group in enumerate(groups):
            closed = i < len(groups) - 1 or quiet_for >= self.hot.grouping.gap
            if not closed:
                settled = False
                continue
            planned = self.plan(folder, group, _group_name(group))
            if planned is not None:
                plans.append(planned)
        return plans, settled

    def claimed(self, folder: Path, frames_now: Sequence[Path]) -> set[Path]:
        """Frames already in a group whose sidecar (in this folder) matches them: they are done (and the group,
        when this run did not blend it, counts as found blended before)."""
        current = {p.name: p for p in frames_now}
        claimed: set[Path] = set()
        for sidecar in sorted(folder.glob(f"*_{self.hot.options.method}.json")):
            recorded = recorded_frames(sidecar)
            if not recorded or not all(name in current for name in recorded):
                continue
            if all(self.hot.facts.sha256(current[name]) == digest for name, digest in recorded.items()):
                claimed.update(current[name] for name in recorded)
                key = folder / _group_name(sorted(current[name] for name in recorded))
                with self.hot.cond:
                    if key not in self.hot.blended_here:
                        self.hot.blended_before.add(key)
        return claimed

    def plan(
        self, folder: Path, frames_in: Sequence[Path], group: str | None, left_out: Sequence[Path] = ()
    ) -> PlannedStack | None:
        """A PlannedStack for these frames (and the files the blend will name as left out), or None when it is blended
        already or failed as it is now."""
        key = folder if group is None else folder / group
        if len(frames_in) < checks.MIN_FRAMES:
            message = (
                f"{self.hot.label(key)}: cannot blend: {counted(len(frames_in), 'frame')}; a blend needs at least "
                f"{checks.MIN_FRAMES} "
                "frames of the same scene"
            )
            if self.hot.problems.get(str(key)) != message:
                log.error("%s", message)
            with self.hot.cond:
                self.hot.problems[str(key)] = message
            return None
        given = sorted([*frames_in, *left_out])
        fingerprint = tuple((p.name, self.hot.facts.sha256(p)) for p in given)
        kinds = [k for k in map(self.hot.facts.kind, frames_in) if k is not None]
        kind: FrameKind = kinds[0] if kinds else "raw"
        options = self.hot.options
        if group is not None:
            name = output_paths(Path(group), options.method, kind, None)[0].name
            options = dataclasses.replace(options, output=folder / name)
        sidecar = output_paths(folder, options.method, kind, options.output)[1]
        before = recorded_frames(sidecar)
        if before == dict(fingerprint):
            with self.hot.cond:
                self.hot.problems.pop(str(key), None)
                if key not in self.hot.blended_here:
                    self.hot.blended_before.add(key)
            return None
        with self.hot.cond:
            if self.hot.failed.get(key) == fingerprint:
                return None
            if self.hot.problems.get(str(key), "").endswith("frames of the same scene"):
                self.hot.problems.pop(str(key), None)
        again = None if before is None else changes(before, dict(fingerprint))
        return PlannedStack(key, tuple(given), fingerprint, options, again)


def _short_group(free: Sequence[Path], n: int) -> str:
    """'neg07_07.dng waits for 2 more frames to make a group of 3', '2 frames from neg07_07.dng wait for 1 more
    frame to make a group of 3'."""
    who = free[0].name + " waits" if len(free) == 1 else f"{len(free)} frames from {free[0].name} on wait"
    return f"{who} for {counted(n - len(free), 'more frame')} to make a group of {n}"


def _group_name(group: Sequence[Path]) -> str:
    first, last = group[0].stem, group[-1].stem
    return first if first == last else f"{first}-{last}"
