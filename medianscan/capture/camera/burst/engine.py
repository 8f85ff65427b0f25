"""The burst: N frames of one negative at the body's own speed.

The camera thread fires (by the strategy chosen for the body), hears each file the body names, fetches it, and
hands it to the writer thread (temp name, fsync, rename) while it fires and fetches the next; a file is deleted
from the body only once it is on disk. With `trigger` the next shot is fired as soon as the body has named the last
one's file, and that file is fetched while the body exposes; with `native` the body shoots on its own and each
file is fetched as it comes.

Which file is which shot's: a file whose name stem a shot has already is its companion (RAW+JPEG); any other is the
oldest waiting shot's (in a continuous burst, a new shot's). Files are fetched as soon as they are named, a raw
(by name) before its companions; a JPEG that would become a frame waits until nothing more can come for its shot
(the body said the capture is complete, a later shot's file came, or COMPANION_SECONDS passed), so that a JPEG
named before its raw (Sony) never becomes the frame. A raw the burst did not make (an earlier shot left in the
body) is judged by `Freshness`, kept in SET_ASIDE, never a frame, and the burst fires again for the frame it lacks.
A file named with no shot waiting (the body's own shutter button) is left on it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from medianscan.capture.camera.base import CameraError
from medianscan.capture.camera.burst.enough import FrameCount
from medianscan.capture.camera.burst.journal import BurstJournal
from medianscan.capture.camera.burst.link import Announced, BodyLink
from medianscan.capture.camera.burst.quirks import Quirk
from medianscan.capture.camera.burst.shots import Fetch, Shot, stem_of
from medianscan.capture.camera.burst.writer import FrameWriter
from medianscan.capture.camera.files import classify, frame_name
from medianscan.capture.camera.freshness import SET_ASIDE, CameraFile, Freshness, capture_time
from medianscan.config.schema import CameraConfig
from medianscan.formats import RAW_EXTS, extension
from medianscan.records import BurstRecord, LeftOut
from medianscan.vocabulary import Strategy
from medianscan.wording import counted

log = logging.getLogger(__name__)

MAX_SHOTS_PER_FRAME = 2  # a burst gives up after this many shots per frame that brought no fresh file
COMPANION_SECONDS = 0.5  # a shot's second file (RAW+JPEG) comes within this of its first
SETTLE_SECONDS = 0.1  # after a shot's first file, the next trigger waits at most this for "capture complete"
HEAD = 65536  # bytes of a file that hold its kind and its EXIF


class BurstEngine:
    """Runs one burst on `link` for a body with `quirk`; `freshness` is the session's (it outlives the burst)."""

    def __init__(
        self,
        link: BodyLink,
        cfg: CameraConfig,
        quirk: Quirk,
        freshness: Freshness,
        *,
        announce_timeout_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.link = link
        self.cfg = cfg
        self.quirk = quirk
        self.freshness = freshness
        self.announce_timeout_seconds = announce_timeout_seconds
        self.clock = clock
        self._warned_not_raw = False

    # --- the burst ----------------------------------------------------------------------------------------------

    def run(self, strategy: Strategy, frames: FrameCount, record: BurstRecord, stem: str, exposure: float) -> None:
        """Fill `record` with the frames `frames` wants, named `stem`, in its stack; CameraError (the record
        holding what is safe on disk) when the body fails. libgphoto2's own errors pass through for the backend
        to explain."""
        self.count, self.record, self.stem, self.exposure = frames, record, stem, exposure
        self.n = frames.most  # for the frames' names: their number's width
        self.shots: list[Shot] = []
        self.deletes: list[tuple[Future[Path] | None, Announced]] = []  # in order: written (or not kept) -> delete
        self.on_body = 0  # files named and not deleted yet
        self.last_frame_at = self.clock()
        self.native_start: float | None = None  # while a continuous burst runs: when it was started
        self.done_heard = 0  # "capture complete" events: a body that sends one per shot is waited for at the end
        record.stack.mkdir(parents=True, exist_ok=True)
        self._drain_before()
        self.writer = FrameWriter()
        self.journal = BurstJournal(record.stack)
        finished = False
        try:
            if strategy == "native":
                self._native()
            else:
                self._one_by_one(capture=strategy == "capture", overlap=strategy == "trigger" and self.quirk.overlap)
            self._companions_after()
            record.auto = frames.record(len(record.frames))
            finished = True
        finally:
            frames.close()  # its measuring thread ends with the burst, however it ends
            self.writer.close()  # every file handed over is on disk (or failed) before the burst ends
            self._delete_written(wait=True, strict=finished)
            self.journal.close(finished=finished)

    def _promised(self) -> int:
        """Frames taken, and those the shots still unjudged should bring."""
        return len(self.record.frames) + sum(1 for s in self.shots if not s.judged)

    def _short(self) -> bool:
        """More frames wanted: the count is asked as it is; with all it wanted taken, its last measure is waited
        for (the only wait it costs the burst), which may want more."""
        if len(self.record.frames) < self.count.wanted():
            return True
        return len(self.record.frames) < self.count.settle()

    def _one_by_one(self, *, capture: bool, overlap: bool) -> None:
        """`capture` or `trigger`: one command per frame. With `overlap` the next shot is fired as soon as the
        body has named the last one's raw, and the files already named are fetched while it exposes."""
        while self._short():
            if self._promised() >= self.count.wanted():  # every frame is on its way: fetch them (or wait)
                if not self._fetch_ready():
                    self._hear(0.05)
                self._delete_written(wait=False)
                continue
            if len(self.shots) >= MAX_SHOTS_PER_FRAME * self.count.most:
                raise CameraError(
                    f"the camera ({self.link.where()}) gave {counted(len(self.record.frames), 'fresh frame')} of "
                    f"{self.count.wanted()} in {len(self.shots)} shots: the other files were not this burst's (see "
                    f"{SET_ASIDE}/)"
                )
            self._make_room()
            if not overlap:
                self._fetch_all_named()
            shot = Shot(time.time())
            self.shots.append(shot)
            if capture:
                self._name(self.link.capture(), shot)
                self._hear(0.0)  # a companion already queued (RAW+JPEG)
            else:
                self.link.trigger()
                self._fetch_ready()  # the last shot's files, while this one exposes
                self._await_named(shot)
                self._settle(shot)
            if self.quirk.after_shot_seconds:
                self._hear(self.quirk.after_shot_seconds)  # the body's own events after a shot, drained
            self._delete_written(wait=False)
        self._fetch_all_named()

    def _native(self) -> None:
        """The body's own continuous burst: started once, each file fetched as it is named, stopped at N."""
        self.native_start = time.time()
        self.link.start_native(self.count.most)  # stopped once the count has what it wants
        try:
            deadline = self.clock() + self.announce_timeout_seconds
            while self._short():
                named = len(self.shots)
                if not self._fetch_ready():
                    self._hear(0.05)
                if len(self.shots) > named:
                    deadline = self.clock() + self.announce_timeout_seconds
                elif self.clock() > deadline:
                    raise CameraError(
                        f"the camera ({self.link.where()}) stopped its burst after "
                        f"{counted(len(self.record.frames), 'frame')} of {self.count.wanted()}; check the card and its "
                        "buffer"
                    )
                self._delete_written(wait=False)
        finally:
            self.link.stop_native()
        self._fetch_all_named()

    # --- what the body names ------------------------------------------------------------------------------------

    def _hear(self, seconds: float) -> None:
        """Take in what the body says within `seconds` (until it falls quiet after the first thing it says)."""
        until = self.clock() + seconds
        wait = seconds
        while True:
            event = self.link.next_event(max(0.0, wait))
            if event.kind == "file" and event.file is not None:
                self._name(event.file, None)
            elif event.kind == "done":
                self.done_heard += 1
                for shot in self.shots:
                    if shot.files:
                        shot.closed = True
            else:
                return
            wait = min(0.001, until - self.clock())

    def _await_named(self, shot: Shot) -> None:
        """Wait until the body names `shot`'s first file."""
        deadline = self.clock() + self.announce_timeout_seconds
        while not shot.files:
            if self.clock() > deadline:
                raise CameraError(
                    f"the camera ({self.link.where()}) announced no file within "
                    f"{self.announce_timeout_seconds:g} s of the trigger; check the capture target and card"
                )
            self._hear(0.1)

    def _settle(self, shot: Shot) -> None:
        """After a shot's first file: until the body says the capture is complete (at most SETTLE_SECONDS), a
        file it names is this shot's too. An older file handed over with it (Sony's leftover, a press on the
        body) is then judged beside it, rather than taken for this shot and this shot's for the next."""
        until = (shot.named_at or self.clock()) + SETTLE_SECONDS
        while not shot.closed and (left := until - self.clock()) > 0:
            self._hear(min(left, 0.02))

    def _name(self, file: Announced, shot: Shot | None) -> None:
        """A named file's shot: `shot` (a capture's own), the shot sharing its stem (a companion), the oldest shot
        still waiting for a file, or in a continuous burst a new one. With none, it is left on the body."""
        stem = stem_of(file.name)
        owner = shot or next((s for s in self.shots if stem in s.stems()), None)
        if owner is None:
            owner = next((s for s in self.shots if not s.files), None)
        if owner is None and self.native_start is not None:  # a continuous burst: each new stem is a shot
            owner = Shot(self.native_start)
            self.shots.append(owner)
        if owner is None and self.shots and self.shots[-1].files and not self.shots[-1].closed:
            owner = self.shots[-1]  # named while its shot settles: judged with it
        if owner is None:
            log.warning(
                "%s appeared on %s with no shot of the burst waiting for it (shutter pressed on the body?); left "
                "on the camera",
                file.path,
                self.link.where(),
            )
            return
        for earlier in self.shots:  # a later shot's file: nothing more comes for the shots before it
            if earlier is owner:
                break
            earlier.closed = earlier.closed or bool(earlier.files)
        owner.files.append(file)
        owner.named_at = owner.named_at or self.clock()
        self.on_body += 1
        self.journal.named(file)

    # --- fetching and placing -----------------------------------------------------------------------------------

    def _fetch_ready(self) -> bool:
        """Fetch every file named and not fetched yet; False when there was none."""
        todo = [s for s in self.shots if s.unfetched()]
        for shot in todo:
            self._fetch_shot(shot)
        return bool(todo)

    def _fetch_all_named(self) -> None:
        while self._fetch_ready():
            pass

    def _fetch_shot(self, shot: Shot) -> None:
        """Fetch a shot's files not fetched yet (raws by name first), judge its raws together when it has none
        judged yet (the newest fresh one is the frame), and place each."""
        fetched: list[Fetch] = []
        while shot.unfetched():
            left = sorted(shot.unfetched(), key=lambda f: extension(f.name) not in RAW_EXTS)
            shot.files = shot.files[: shot.fetched] + left
            shot.fetched = len(shot.files)
            fetched += [self._download(file) for file in left]
            if not shot.judged and not any(f.kind == "raw" for f in fetched):
                self._await_raw(shot)  # a JPEG named first: its raw may still come, and is the frame
        roles = self._judge(shot, fetched) if not shot.judged else {}
        for item in fetched:
            target, role = roles.get(item.file) or self._companion(item, shot)
            self._keep(item, target, role)

    def _download(self, file: Announced) -> Fetch:
        download = self.link.download(file)
        head = bytes(download.data[:HEAD])
        kind = classify(file.name, head)
        self.record.camera_files.append(file.path)
        return Fetch(file, download, head, kind.kind, kind.ext)

    def _await_raw(self, shot: Shot) -> None:
        """Before a shot's JPEG becomes its frame: hear the body until nothing more can come for the shot (a raw
        named meanwhile is fetched with it)."""
        until = (shot.named_at or self.clock()) + COMPANION_SECONDS
        while not shot.closed and not shot.unfetched() and (left := until - self.clock()) > 0:
            self._hear(min(left, 0.05))

    def _judge(self, shot: Shot, fetched: list[Fetch]) -> dict[Announced, tuple[Path | None, str]]:
        """A shot's frame: its newest fresh raw (by capture time, then file number), or its first file when it
        has no raw (a JPEG-only body); the other raws, and their companions, are set aside with the reason."""
        shot.judged = True
        raws = [f for f in fetched if f.kind == "raw"] or fetched[:1]
        files = {id(item): CameraFile(item.file.folder, item.file.name, capture_time(item.head)) for item in raws}
        order = self.freshness.newest_first(list(files.values()))
        roles: dict[Announced, tuple[Path | None, str]] = {}
        frame_stem = None
        for camera_file in order:
            item = next(r for r in raws if files[id(r)] is camera_file)
            why = self.freshness.stale(camera_file, shot.fired, self.exposure)
            if why is None and frame_stem is None:
                self.freshness.took(camera_file, shot.fired)
                roles[item.file] = self._frame(item, shot)
                frame_stem = stem_of(item.file.name)
                continue
            self.freshness.set_aside(camera_file)
            roles[item.file] = self._set_aside(item, why or f"{camera_file.path} was named for the same shot as a "
                                               "newer raw")  # fmt: skip
        for item in fetched:  # the companions (same stem) of a raw set aside go with it
            if item.file not in roles and stem_of(item.file.name) != frame_stem:
                roles[item.file] = self._set_aside(item, f"{item.file.path} belongs to a shot set aside")
        return roles

    def _frame(self, item: Fetch, shot: Shot) -> tuple[Path, str]:
        shot.frame = len(self.record.frames) + 1
        if item.kind != "raw" and not self._warned_not_raw:
            where = self.link.where()
            log.warning("%s is not shooting RAW (got %s): set camera.settings.imageformat", where, item.file.name)
            self._warned_not_raw = True
        named = shot.named_at or self.clock()  # the body's cadence: from one frame's naming to the next's
        self.record.per_frame_seconds.append(max(0.0, named - self.last_frame_at))
        self.last_frame_at = named
        return self.record.stack / frame_name(self.stem, shot.frame, self.n, item.ext), "frame"

    def _set_aside(self, item: Fetch, why: str) -> tuple[Path, str]:
        target = self.record.stack / SET_ASIDE / item.file.name
        target.parent.mkdir(exist_ok=True)
        self.record.set_aside.append(LeftOut(target, why))
        log.warning("%s: set aside in %s/: %s", self.record.stack.name, SET_ASIDE, why)
        return target, "set aside"

    def _companion(self, item: Fetch, shot: Shot) -> tuple[Path | None, str]:
        """A file fetched after its shot was judged: its frame's JPEG (kept if configured), else not kept."""
        if shot.frame is not None and item.kind == "jpeg" and self.cfg.keep_jpeg:
            return self.record.stack / frame_name(self.stem, shot.frame, self.n, item.ext), "jpeg"
        if item.kind == "raw":
            log.warning("a second raw %s for one shot was not kept", item.file.path)
        return None, "not kept"

    def _keep(self, item: Fetch, target: Path | None, role: str) -> None:
        """Hand a fetched file to the writer (or, not kept, straight to deleting), and record it."""
        self.journal.placed(item.file, "" if target is None else str(target.relative_to(self.record.stack)))
        if target is None:
            self.deletes.append((None, item.file))
            return
        self.deletes.append((self.writer.submit(target, item.download), item.file))
        if role == "frame":
            self.record.frames.append(target)
            self.count.took(item.download.data)
        elif role == "jpeg":
            self.record.jpegs.append(target)
        if role != "set aside":
            self.record.sizes[target.name] = len(item.download.data)

    # --- deleting from the body, once on disk ---------------------------------------------------------------------

    def _delete_written(self, *, wait: bool, strict: bool = True) -> None:
        """Delete from the body each file whose write is done, in order; with `wait`, every one handed over.
        A write that failed leaves its file on the body; `strict` makes that the burst's error."""
        while self.deletes:
            future, file = self.deletes[0]
            if future is not None and not future.done() and not wait:
                return
            self.deletes.pop(0)
            if future is not None:
                try:
                    future.result()
                except OSError as exc:
                    if strict:
                        raise CameraError(
                            f"{file.path} could not be written into {self.record.stack} ({exc.strerror or exc}); "
                            "it stays on the camera"
                        ) from exc
                    continue
            if self.cfg.delete_from_camera:
                self.link.delete(file)
                self.journal.deleted(file)
            self.on_body -= 1

    def _make_room(self) -> None:
        """A body with a small buffer refuses to shoot once it is full: fetch and delete before firing again."""
        limit = self.quirk.buffer_frames
        while limit and self.on_body >= limit and self.cfg.delete_from_camera:
            self._fetch_all_named()
            self._delete_written(wait=True)

    # --- before and after ---------------------------------------------------------------------------------------

    def _drain_before(self) -> None:
        """Empty the body's event queue before the first shot: a file named now is no shot of this burst's (the
        shutter pressed on the body), left on the camera, named."""
        for _ in range(1000):
            event = self.link.next_event(0.001)
            if event.kind == "nothing":
                return
            if event.kind == "file" and event.file is not None:
                log.warning(
                    "%s appeared on %s outside a burst (shutter pressed on the body?); left on the camera",
                    event.file.path,
                    self.link.where(),
                )

    def _companions_after(self) -> None:
        """After the last frame: a companion still to come (RAW+JPEG, as the other shots had) is waited for and
        fetched; any other file the body names now is no shot of this burst's and is left on it."""
        named = [s for s in self.shots if s.files]
        per_shot = max((len(s.files) for s in named), default=1)
        last = max((s.named_at or 0.0 for s in named), default=0.0)
        says_done = self.done_heard >= len(named) - 1 > 0  # it ended each earlier shot with "capture complete"
        while any((len(s.files) < per_shot or says_done) and not s.closed for s in named):
            left = last + COMPANION_SECONDS - self.clock()
            if left <= 0:
                break
            self._hear(min(left, 0.05))
        self.native_start = None
        self._fetch_all_named()
