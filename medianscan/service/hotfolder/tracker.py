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

import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from medianscan.blend.options import BlendOptions
from medianscan.library import contents
from medianscan.service.hotfolder.files import FileFacts, SeenFile, SeenFolder, signature
from medianscan.service.hotfolder.grouping import STALLED_SECONDS, Grouping, PlannedStack, is_ours, is_temp_name
from medianscan.service.hotfolder.ready import ReadyStacks

log = logging.getLogger(__name__)


def _looked_into(folder: Path) -> bool:
    """A sub-folder the watcher looks into for stacks: not hidden, and not a stack's files kept apart from its
    frames (the capture daemon's spares and set-aside: the rule of `medianscan.library.contents`)."""
    return not folder.name.startswith(".") and not contents.is_kept_apart(folder)


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
        self._files: dict[Path, SeenFile] = {}
        self.folders: dict[Path, SeenFolder] = {}
        self._inflight: dict[Path, PlannedStack] = {}
        self.failed: dict[Path, tuple[tuple[str, str], ...]] = {}
        self.problems: dict[str, str] = {}  # stack key -> why it cannot be blended (for status)
        self.waiting: dict[str, str] = {}  # folder -> what it waits for (count groups short of N)
        self.settling: dict[str, str] = {}  # folder -> what it waits for before it can be planned (files settling)
        self.blended_before: set[Path] = set()  # stacks found blended as they are by an earlier run (skipped)
        self.blended_here: set[Path] = set()  # stacks this run blended
        self.facts = FileFacts()
        self.ready = ReadyStacks(self)  # which stacks are ready: the planning half

    def label(self, key: Path) -> str:
        """A stack as the operator names it: its path below DIR ("roll-07/frame-003", "x_01-x_03")."""
        return str(key.relative_to(self.root)) if self.root in key.parents else key.name

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
                entry = self._files.setdefault(path, SeenFile())
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
            for folder in [f for f in self.folders if f == path or path in f.parents]:
                del self.folders[folder]
            self.facts.forget(path)
            for said in (self.problems, self.settling):
                for key in [k for k in said if k == str(path) or Path(k).is_relative_to(path)]:
                    del said[key]
            if path.parent in self.folders or path.parent == self.root or self.root in path.parent.parents:
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
        if top != self.root and not (self._inside(top) and _looked_into(top)):
            return 0
        for dirpath, dirnames, filenames in os.walk(top):
            folder = Path(dirpath)
            dirnames[:] = sorted(d for d in dirnames if _looked_into(folder / d))
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
                    entry = self._files.setdefault(path, SeenFile())
                    sig = signature(st)
                    if sig != entry.signature:
                        entry.signature, entry.since = sig, now
                state = self.folders.setdefault(folder, SeenFolder(activity=-1e18))
                if newest is not None:
                    state.activity = max(state.activity, now - max(0.0, wall - newest))
                state.dirty = True
                self.cond.notify_all()
        return seen

    def _touch(self, folder: Path) -> None:
        state = self.folders.setdefault(folder, SeenFolder())
        state.activity, state.dirty = self.clock(), True

    def _inside(self, path: Path) -> bool:
        """Below DIR and in no folder the watcher leaves alone (see `_looked_into`)."""
        if self.root not in path.parents:
            return False
        return all(_looked_into(self.root / part) for part in path.parent.relative_to(self.root).parts)

    @staticmethod
    def _stat(path: Path) -> tuple[int, int, int] | None:
        try:
            return signature(path.stat())
        except OSError:
            return None

    # --- planning (planner thread) --------------------------------------------------------------------

    def busy(self) -> bool:
        """Something is still pending: a folder waiting for quiet or settle, or a stack being blended."""
        with self.cond:
            return bool(self._inflight) or any(f.dirty for f in self.folders.values())

    def inflight(self) -> list[Path]:
        with self.cond:
            return list(self._inflight)

    def plan(self) -> list[PlannedStack]:
        """The stacks that are complete and need a blend now; each is then in flight until `finished`."""
        with self.cond:
            dirty = sorted(f for f, s in self.folders.items() if s.dirty)
        ready: list[PlannedStack] = []
        for folder in dirty:
            try:
                stacks, settled = self.ready.evaluate(folder)
            except OSError as exc:  # the folder vanished or is unreadable meanwhile
                log.debug("%s: %s", folder, exc)
                stacks, settled = [], not folder.is_dir()
            with self.cond:
                state = self.folders.get(folder)
                for stack in stacks:
                    if stack.key in self._inflight:
                        settled = False  # re-check once the running blend is done
                        continue
                    self._inflight[stack.key] = stack
                    ready.append(stack)
                if state is not None and settled and not any(folder in (k.parent, k) for k in self._inflight):
                    state.dirty = False
                if state is not None and not folder.is_dir():
                    del self.folders[folder]
        return ready

    def finished(self, key: Path, error: str | None) -> PlannedStack | None:
        """A blend ended: remember a failure (not retried until the stack changes) and re-check its folder."""
        with self.cond:
            planned = self._inflight.pop(key, None)
            if planned is None:
                return None
            if error is None:
                self.failed.pop(key, None)
                self.problems.pop(str(key), None)
                self.blended_before.discard(key)
                self.blended_here.add(key)
            else:
                self.failed[key] = planned.fingerprint
                self.problems[str(key)] = error
            folder = key if self.grouping.kind == "folder" else key.parent
            self.folders.setdefault(folder, SeenFolder(activity=-1e18)).dirty = True
            self.cond.notify_all()
            return planned

    def complete(self, path: Path, now: float, wall: float) -> bool:
        try:
            st = path.stat()
        except OSError:
            return False
        sig = signature(st)
        with self.cond:
            entry = self._files.setdefault(path, SeenFile())
            if sig != entry.signature:
                entry.signature, entry.since = sig, now
            if entry.closed == (sig[0], sig[2]):
                return True
            if entry.live:  # its writer will close it (or it stalled: a very long wait in case a close was lost)
                return now - entry.since >= max(STALLED_SECONDS, self.settle_seconds)
            if st.st_size == 0:  # created, not written yet
                return False
            return now - entry.since >= self.settle_seconds or wall - st.st_mtime >= self.settle_seconds
