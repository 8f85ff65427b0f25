"""The hot folder's state: which files in a watched folder are complete, and which stacks in it are ready.

When a file counts as complete: a close-after-write event (inotify's IN_CLOSE_WRITE), a rename into place
(rsync's `.name.XXXXXX` -> `name`), or, where no write of it was seen (polling observer, files found by the
catch-up scan or in a folder moved in whole), size and mtime unchanged for `settle_seconds` (an mtime older than
that counts: tools that preserve times set them after the last write). A file seen being written waits for its
close, however long its writer stalls (up to STALLED_SECONDS, in case a close event was lost). Temp names are never
frames, and a folder with an active temp file in it is still busy.

A stack whose sidecar lists exactly its current files and their sha256 is already blended and skipped; one that
changed since is blended again. A stack that cannot be blended gets its one-sentence reason in the log and in
status, and is not retried until it changes.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from medianscan.blend import checks, frames
from medianscan.blend.options import BlendOptions
from medianscan.blend.pipeline import output_paths
from medianscan.blend.sidecar import recorded_frames
from medianscan.library import contents
from medianscan.service.hotfolder.files import _Facts, _File, _Folder, _signature
from medianscan.service.hotfolder.grouping import STALLED_SECONDS, Grouping, Stack, is_ours, is_temp_name

log = logging.getLogger(__name__)


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
