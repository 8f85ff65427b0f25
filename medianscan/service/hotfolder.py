"""The hot folder's logic: which files in a watched folder are complete, how they form stacks, which are ready.

Two threads feed on it (the service in `medianscan.service.watch` starts them):
- the watchdog observer (`observe`: inotify on Linux, or polling for NFS/SMB mounts) turns file events into
  notes on a `HotFolder`: which files changed, were closed after writing or renamed into place, and when each
  folder last saw activity;
- the `Planner` (a `threading.Condition` loop whose `stop()` notifies) asks the `HotFolder` which stacks are
  complete and not blended yet, and hands them to the blend pool.

When a file counts as complete: a close-after-write event (inotify's IN_CLOSE_WRITE), a rename into place
(rsync's `.name.XXXXXX` -> `name`), or, where no write of it was seen (polling observer, files found by the
catch-up scan or in a folder moved in whole), size and mtime unchanged for `settle_seconds` (an mtime older than
that counts: tools that preserve times set them after the last write). A file seen being written waits for its
close, however long its writer stalls (up to STALLED_SECONDS, in case a close event was lost). Temp names
(`.hidden`, `*.part`, `*.tmp`, `*.partial`, `*.crdownload`, `~*`) are never frames, and a folder with an active
temp file in it is still busy.

Grouping (per folder; a stack never spans folders, as `blend_stack` requires):
- `folder`: each sub-folder of DIR is a stack, complete once nothing in it changed for `quiet_seconds` (or as
  soon as it holds `watch.frames` complete frames, when set). Files directly in DIR are not a stack.
- `count:N`: the frames of a folder, in name order, in groups of N; a group is complete when its N frames are.
- `gap:SECONDS`: frames in mtime order; a pause longer than SECONDS starts a new stack. A group is complete
  when a later frame lies beyond the gap, or nothing changed in the folder for SECONDS.
  Groups are blended beside their frames as `<first>-<last>_<method>.<ext>` (and `.json`); a late frame that
  joins a gap group blends it again under its new name (the earlier blend stays, nothing is deleted).

A stack whose sidecar lists exactly its current frames and their sha256 is already blended and skipped; one
that changed since is blended again. A stack that cannot be blended (mixed exposures, too few frames) gets its
one-sentence reason in the log and in status, and is not retried until it changes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from medianscan.blend import checks, frames, sniff
from medianscan.blend.options import BlendOptions
from medianscan.blend.pipeline import output_paths
from medianscan.blend.record import recorded_frames
from medianscan.errors import MedianscanError
from medianscan.formats import Sniffed
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
class Stack:
    """One stack to blend: its key (the folder, or `<folder>/<group name>`), its frames and where it goes."""

    key: Path
    frames: tuple[Path, ...]
    fingerprint: tuple[tuple[str, str], ...]
    options: BlendOptions


# --- file state -----------------------------------------------------------------------------------------


@dataclass
class _File:
    signature: tuple[int, int, int] | None = None  # size, mtime_ns, inode as last seen
    since: float = 0.0  # monotonic time the signature was first seen
    closed: tuple[int, int] | None = None  # size and inode at the last close-write or rename into place
    live: bool = False  # written while watched by an observer that reports closes: only a close completes it


@dataclass
class _Folder:
    activity: float = 0.0  # monotonic time of the last event in it (frames or temps)
    dirty: bool = True


def _signature(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ino


class _Facts:
    """What a file holds (kind, sha256), cached by size, mtime and inode: a folder is re-checked after every
    event in it, and a flat folder of hundreds of raws must not be sniffed and hashed whole each time."""

    def __init__(self) -> None:
        self._kinds: dict[Path, tuple[tuple[int, int, int], Sniffed]] = {}
        self._hashes: dict[Path, tuple[tuple[int, int, int], str]] = {}
        self._lock = threading.Lock()

    def inspect(self, path: Path) -> Sniffed:
        try:
            sig = _signature(path.stat())
        except OSError:
            return sniff.inspect(path)  # gone meanwhile: says so
        with self._lock:
            hit = self._kinds.get(path)
        if hit is not None and hit[0] == sig:
            return hit[1]
        value = sniff.inspect(path)
        with self._lock:
            self._kinds[path] = (sig, value)
        return value

    def kind(self, path: Path) -> frames.Kind | None:
        return self.inspect(path).kind

    def sha256(self, path: Path) -> str:
        sig = _signature(path.stat())
        with self._lock:
            hit = self._hashes.get(path)
        if hit is not None and hit[0] == sig:
            return hit[1]
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        value = digest.hexdigest()
        with self._lock:
            self._hashes[path] = (sig, value)
        return value

    def forget(self, under: Path) -> None:
        with self._lock:
            for cache in (self._kinds, self._hashes):
                for path in [p for p in cache if p == under or under in p.parents]:
                    del cache[path]


# --- the hot folder -------------------------------------------------------------------------------------


class HotFolder:
    """What the watcher knows about DIR, and which stacks in it are ready to blend.

    `note_*` methods are called from the observer's thread, `plan` from the planner's; `finished` from the
    service's main loop. One lock guards the state; hashing and sniffing happen outside it.
    """

    def __init__(
        self,
        root: Path,
        grouping: Grouping,
        options: BlendOptions,
        *,
        quiet_seconds: float = 10.0,
        settle_seconds: float = 2.0,
        frames_per_stack: int | None = None,
        closes_reported: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = Path(root).expanduser().resolve()
        self.grouping = grouping
        self.options = options
        self.quiet_seconds = quiet_seconds
        self.settle_seconds = settle_seconds
        self.frames_per_stack = frames_per_stack
        self.closes_reported = closes_reported
        self.clock = clock
        self.cond = threading.Condition()
        self._files: dict[Path, _File] = {}
        self._folders: dict[Path, _Folder] = {}
        self._inflight: dict[Path, Stack] = {}
        self._failed: dict[Path, tuple[tuple[str, str], ...]] = {}
        self.problems: dict[str, str] = {}  # stack key -> why it cannot be blended (for status)
        self.waiting: dict[str, str] = {}  # folder -> what it waits for (count groups short of N)
        self._facts = _Facts()

    # --- events (observer thread) ---------------------------------------------------------------------

    def note_changed(self, path: Path, *, complete: bool = False, live: bool = True) -> None:
        """A file was created or written (`complete`: closed after writing, or renamed into place; `live`: a
        write seen as it happened, so its close will be reported too)."""
        path = Path(path)
        if is_ours(path) or not self._inside(path):
            return
        with self.cond:
            self._touch(path.parent)
            if not is_temp_name(path):
                entry = self._files.setdefault(path, _File())
                sig = self._stat(path)
                if sig != entry.signature:
                    entry.signature, entry.since = sig, self.clock()
                # A close or rename completes the file; a write after it reopens it. Times set after the close
                # (cp -p, rsync -t) are attribute events and do not.
                entry.closed = (sig[0], sig[2]) if complete and sig is not None else None
                entry.live = entry.live or (live and self.closes_reported)
            self.cond.notify_all()

    def note_removed(self, path: Path) -> None:
        """A file or folder went away (deleted or moved out)."""
        path = Path(path)
        if is_ours(path) or not self._inside(path):
            return
        with self.cond:
            for known in [p for p in self._files if p == path or path in p.parents]:
                del self._files[known]
            for folder in [f for f in self._folders if f == path or path in f.parents]:
                del self._folders[folder]
            self._facts.forget(path)
            for key in [k for k in self.problems if k == str(path) or Path(k).is_relative_to(path)]:
                del self.problems[key]
            if path.parent in self._folders or path.parent == self.root or self.root in path.parent.parents:
                self._touch(path.parent)
            self.cond.notify_all()

    def note_folder(self, folder: Path) -> None:
        """A folder appeared (created, moved in, or found by the catch-up scan): learn everything in it."""
        self.scan(folder)

    def scan(self, top: Path | None = None) -> int:
        """Walk `top` (default DIR) and note every file and folder in it; returns the number of files seen.

        Activity is credited from mtimes: a folder whose newest file is older than `quiet_seconds` is quiet
        already, so the catch-up at start need not wait for what arrived while the watcher was down.
        """
        top = Path(top) if top is not None else self.root
        seen = 0
        now, wall = self.clock(), time.time()
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            folder = Path(dirpath)
            newest = None
            with self.cond:
                for name in filenames:
                    path = folder / name
                    if is_ours(path):
                        continue
                    try:
                        st = path.stat()
                    except OSError:
                        continue
                    if not stat.S_ISREG(st.st_mode):
                        continue
                    newest = st.st_mtime if newest is None else max(newest, st.st_mtime)
                    if is_temp_name(path):
                        continue
                    seen += 1
                    entry = self._files.setdefault(path, _File())
                    sig = _signature(st)
                    if sig != entry.signature:
                        entry.signature, entry.since = sig, now
                state = self._folders.setdefault(folder, _Folder(activity=-1e18))
                if newest is not None:
                    state.activity = max(state.activity, now - max(0.0, wall - newest))
                state.dirty = True
                self.cond.notify_all()
        return seen

    def _touch(self, folder: Path) -> None:
        state = self._folders.setdefault(folder, _Folder())
        state.activity, state.dirty = self.clock(), True

    def _inside(self, path: Path) -> bool:
        return self.root in path.parents and not any(
            part.startswith(".") for part in path.parent.relative_to(self.root).parts
        )

    @staticmethod
    def _stat(path: Path) -> tuple[int, int, int] | None:
        try:
            return _signature(path.stat())
        except OSError:
            return None

    # --- planning (planner thread) --------------------------------------------------------------------

    def busy(self) -> bool:
        """Something is still pending: a folder waiting for quiet or settle, or a stack being blended."""
        with self.cond:
            return bool(self._inflight) or any(f.dirty for f in self._folders.values())

    def inflight(self) -> list[Path]:
        with self.cond:
            return list(self._inflight)

    def plan(self) -> list[Stack]:
        """The stacks that are complete and need a blend now; each is then in flight until `finished`."""
        with self.cond:
            dirty = sorted(f for f, s in self._folders.items() if s.dirty)
        ready: list[Stack] = []
        for folder in dirty:
            try:
                stacks, settled = self._evaluate(folder)
            except OSError as exc:  # the folder vanished or is unreadable meanwhile
                log.debug("%s: %s", folder, exc)
                stacks, settled = [], not folder.is_dir()
            with self.cond:
                state = self._folders.get(folder)
                for stack in stacks:
                    if stack.key in self._inflight:
                        settled = False  # re-check once the running blend is done
                        continue
                    self._inflight[stack.key] = stack
                    ready.append(stack)
                if state is not None and settled and not any(folder in (k.parent, k) for k in self._inflight):
                    state.dirty = False
                if state is not None and not folder.is_dir():
                    del self._folders[folder]
        return ready

    def finished(self, key: Path, error: str | None) -> Stack | None:
        """A blend ended: remember a failure (not retried until the stack changes) and re-check its folder."""
        with self.cond:
            stack = self._inflight.pop(key, None)
            if stack is None:
                return None
            if error is None:
                self._failed.pop(key, None)
                self.problems.pop(str(key), None)
            else:
                self._failed[key] = stack.fingerprint
                self.problems[str(key)] = error
            folder = key if self.grouping.kind == "folder" else key.parent
            self._folders.setdefault(folder, _Folder(activity=-1e18)).dirty = True
            self.cond.notify_all()
            return stack

    def _evaluate(self, folder: Path) -> tuple[list[Stack], bool]:
        """The stacks of `folder` ready now, and whether the folder is settled (nothing left to wait for)."""
        if not folder.is_dir():
            return [], True
        now = self.clock()
        listing = sorted(p for p in folder.iterdir() if not is_ours(p))
        files = [p for p in listing if p.is_file()]
        wall = time.time()
        busy_temp = any(
            is_temp_name(p) and wall - p.stat().st_mtime < max(self.quiet_seconds, self.settle_seconds) for p in files
        )
        candidates = [p for p in files if not is_temp_name(p)]
        complete = [p for p in candidates if self._complete(p, now, wall)]
        all_complete = len(complete) == len(candidates) and not busy_temp
        with self.cond:
            state = self._folders.get(folder)
            quiet_for = now - state.activity if state is not None else float("inf")
        if not all_complete:  # a file still being written: its name order and mtime mean nothing yet
            return [], False
        if self.grouping.kind == "folder":
            return self._evaluate_folder(folder, complete, quiet_for)
        if self.grouping.kind == "count":
            return self._evaluate_count(folder, complete, quiet_for)
        return self._evaluate_gap(folder, complete, quiet_for)

    def _complete(self, path: Path, now: float, wall: float) -> bool:
        try:
            st = path.stat()
        except OSError:
            return False
        sig = _signature(st)
        with self.cond:
            entry = self._files.setdefault(path, _File())
            if sig != entry.signature:
                entry.signature, entry.since = sig, now
            if entry.closed == (sig[0], sig[2]):
                return True
            if entry.live:  # its writer will close it (or it stalled: a very long wait in case a close was lost)
                return now - entry.since >= max(STALLED_SECONDS, self.settle_seconds)
            if st.st_size == 0:  # created, not written yet
                return False
            return now - entry.since >= self.settle_seconds or wall - st.st_mtime >= self.settle_seconds

    def _frames(self, complete: Sequence[Path]) -> tuple[list[Path], list[Path]]:
        """The files among complete ones that group into stacks (the frames by content, and the candidates
        that cannot be read: a blend names them), and those left out (a JPEG beside raws: named by the blend of
        a folder stack). The one rule of `medianscan.library.contents`, with cached sniffing."""
        found = contents.sort_out(complete, self._facts.inspect)
        grouped = sorted([*found.frames, *(u.path for u in found.unreadable)])
        return grouped, [i.path for i in found.ignored]

    def _evaluate_folder(self, folder: Path, complete: list[Path], quiet_for: float) -> tuple[list[Stack], bool]:
        if folder == self.root:
            if self._frames(complete)[0]:
                with self.cond:
                    self.waiting[str(folder)] = "frames directly in the watched folder: not a stack with group folder"
            return [], True
        target = self.frames_per_stack
        if quiet_for < self.quiet_seconds and not target:
            return [], False
        frames_now, left_out = self._frames(complete)
        if quiet_for < self.quiet_seconds and len(frames_now) < (target or 0):
            return [], False
        if not frames_now:
            return [], True
        stack = self._stack(folder, frames_now, None, left_out)
        return ([stack] if stack is not None else []), True

    def _evaluate_count(self, folder: Path, complete: list[Path], quiet_for: float) -> tuple[list[Stack], bool]:
        frames_now, _ = self._frames(complete)
        claimed = self._claimed(folder, frames_now)
        n = self.grouping.count
        free: list[Path] = []
        stacks: list[Stack] = []
        for path in frames_now:
            if path in claimed:
                continue
            free.append(path)
            if len(free) == n:
                stack = self._stack(folder, free, _group_name(free))
                if stack is not None:
                    stacks.append(stack)
                free = []
        with self.cond:
            self.waiting.pop(str(folder), None)
            if free:
                self.waiting[str(folder)] = f"{len(free)} frame(s) from {free[0].name} wait for a group of {n}"
        return stacks, True

    def _evaluate_gap(self, folder: Path, complete: list[Path], quiet_for: float) -> tuple[list[Stack], bool]:
        frames_now, _ = self._frames(complete)
        timed = sorted(((p.stat().st_mtime, p) for p in frames_now), key=lambda t: (t[0], t[1].name))
        groups: list[list[Path]] = []
        last = None
        for mtime, path in timed:
            if last is None or mtime - last > self.grouping.gap:
                groups.append([])
            groups[-1].append(path)
            last = mtime
        stacks: list[Stack] = []
        settled = True
        for i, group in enumerate(groups):
            closed = i < len(groups) - 1 or quiet_for >= self.grouping.gap
            if not closed:
                settled = False
                continue
            stack = self._stack(folder, group, _group_name(group))
            if stack is not None:
                stacks.append(stack)
        return stacks, settled

    def _claimed(self, folder: Path, frames_now: Sequence[Path]) -> set[Path]:
        """Frames already in a group whose sidecar (in this folder) matches them: they are done."""
        current = {p.name: p for p in frames_now}
        claimed: set[Path] = set()
        for sidecar in sorted(folder.glob(f"*_{self.options.method}.json")):
            recorded = recorded_frames(sidecar)
            if not recorded or not all(name in current for name in recorded):
                continue
            if all(self._facts.sha256(current[name]) == digest for name, digest in recorded.items()):
                claimed.update(current[name] for name in recorded)
        return claimed

    def _stack(
        self, folder: Path, frames_in: Sequence[Path], group: str | None, left_out: Sequence[Path] = ()
    ) -> Stack | None:
        """A Stack for these frames (and the files the blend will name as left out), or None when it is blended
        already or failed as it is now."""
        key = folder if group is None else folder / group
        if len(frames_in) < checks.MIN_FRAMES:
            message = (
                f"{key}: {len(frames_in)} frame(s); a blend needs at least {checks.MIN_FRAMES} frames of the same scene"
            )
            if self.problems.get(str(key)) != message:
                log.error("%s", message)
            with self.cond:
                self.problems[str(key)] = message
            return None
        given = sorted([*frames_in, *left_out])
        fingerprint = tuple((p.name, self._facts.sha256(p)) for p in given)
        kinds = [k for k in map(self._facts.kind, frames_in) if k is not None]
        kind: frames.Kind = kinds[0] if kinds else "raw"
        options = self.options
        if group is not None:
            name = output_paths(Path(group), options.method, kind, None)[0].name
            options = dataclasses.replace(options, output=folder / name)
        sidecar = output_paths(folder, options.method, kind, options.output)[1]
        if recorded_frames(sidecar) == dict(fingerprint):
            with self.cond:
                self.problems.pop(str(key), None)
            return None
        with self.cond:
            if self._failed.get(key) == fingerprint:
                return None
            if self.problems.get(str(key), "").endswith("frames of the same scene"):
                self.problems.pop(str(key), None)
        return Stack(key, tuple(given), fingerprint, options)


def _group_name(group: Sequence[Path]) -> str:
    first, last = group[0].stem, group[-1].stem
    return first if first == last else f"{first}-{last}"


# --- threads --------------------------------------------------------------------------------------------


class _Handler:
    """watchdog's event handler: translates events into HotFolder notes (runs on the observer's thread)."""

    def __init__(self, hot: HotFolder) -> None:
        self.hot = hot

    def dispatch(self, event: Any) -> None:
        kind = event.event_type
        src = Path(os.fsdecode(event.src_path))
        try:
            if event.is_directory:
                if kind == "created":
                    self.hot.note_folder(src)
                elif kind == "moved":
                    self.hot.note_removed(src)
                    self.hot.note_folder(Path(os.fsdecode(event.dest_path)))
                elif kind == "deleted":
                    self.hot.note_removed(src)
                return
            if kind in ("created", "modified"):
                # Only a write seen as it happens makes the file wait for its close: watchdog also reports
                # "created" for files it finds in a folder that appeared, whose writes and close it never saw.
                self.hot.note_changed(src, live=kind == "modified")
            elif kind == "closed":
                self.hot.note_changed(src, complete=True)
            elif kind == "moved":
                self.hot.note_removed(src)
                self.hot.note_changed(Path(os.fsdecode(event.dest_path)), complete=True)
            elif kind == "deleted":
                self.hot.note_removed(src)
        except Exception:  # an event must never stop the observer
            log.exception("handling %s", event)


class Planner(threading.Thread):
    """Wakes on every note (or each tick while something waits), plans ready stacks and submits them.

    A stack the pool cannot take yet (queue full) waits here, in order; `stop()` notifies and ends it.
    """

    def __init__(self, hot: HotFolder, submit: Callable[[Stack], bool]) -> None:
        super().__init__(name="watch-planner", daemon=True)
        self.hot = hot
        self.submit = submit
        self.backlog: deque[Stack] = deque()
        self._stopping = False

    def stop(self) -> None:
        with self.hot.cond:
            self._stopping = True
            self.hot.cond.notify_all()
        self.join(5)

    def run(self) -> None:
        while True:
            with self.hot.cond:
                if self._stopping:
                    return
                self.hot.cond.wait(TICK_SECONDS)
                if self._stopping:
                    return
            try:
                self.step()
            except Exception:  # a bug must not end the watch
                log.exception("planning the hot folder failed")

    def step(self) -> None:
        self.backlog.extend(self.hot.plan())
        while self.backlog:
            if not self.submit(self.backlog[0]):
                return
            self.backlog.popleft()


def observe(hot: HotFolder, polling: bool) -> Any:
    """A started watchdog observer noting DIR's events on `hot` (polling for network mounts)."""
    if polling:
        from watchdog.observers.polling import PollingObserver

        observer: Any = PollingObserver(timeout=max(0.2, hot.settle_seconds / 2))
    else:
        from watchdog.observers import Observer

        observer = Observer()
    try:
        observer.schedule(_Handler(hot), str(hot.root), recursive=True)
        observer.start()
    except OSError as exc:
        raise MedianscanError(
            f"{hot.root}: cannot watch this folder ({exc.strerror or exc}); on a network mount set "
            "`watch.polling: true`, or raise fs.inotify.max_user_watches"
        ) from None
    return observer
