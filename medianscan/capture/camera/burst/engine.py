"""The burst: N frames of one negative at the body's own speed.

The camera thread fires (by the strategy chosen for the body), hears each file the body names, fetches it, and
hands it to the writer thread (temp name, fsync, rename) while it fires and fetches the next; a file is deleted
from the body only once it is on disk. With `trigger` the next shot is fired as soon as the body has named the last
one's file, and that file is fetched while the body exposes; with `native` the body shoots on its own while the
release is held, each file fetched as it comes, and the release is let go as soon as the body has named the shots
the burst wants.

A body held in continuous drive shoots until the release reaches it: one to three shots more are normal. They are
this burst's: the engine hears the body out (until it says its capture is complete, or falls quiet), and each shot
past the frames wanted is a spare, fetched into the stack's SPARES folder (never blended) or, with
`camera.extra_shots: delete`, deleted from the body unfetched; the record names them either way, so none is left
for the next burst. A continuous burst that stopped short of its frames (a file set aside) is fired again at once.

Which file is which shot's: a file whose name stem a shot has already is its companion (RAW+JPEG); any other is the
oldest waiting shot's (in a continuous burst, a new shot's). Files are fetched as soon as they are named, a raw
(by name) before its companions; a JPEG that would become a frame waits until nothing more can come for its shot
(the body said the capture is complete, a later shot's file came, or COMPANION_SECONDS passed), so that a JPEG
named before its raw (Sony) never becomes the frame. A raw the burst did not make (an earlier shot left in the
body) is judged by `Freshness`, kept in SET_ASIDE, never a frame, and the burst fires again for the frame it lacks.
A file named with no shot waiting (the body's own shutter button) is left on it.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass

from medianscan.capture.camera.base import CameraError
from medianscan.capture.camera.burst.enough import FrameCount
from medianscan.capture.camera.burst.link import Announced, BodyLink, drain_before
from medianscan.capture.camera.burst.placing import Placing, Target
from medianscan.capture.camera.burst.quirks import Quirk
from medianscan.capture.camera.burst.shots import Fetch, Shot, stem_of
from medianscan.capture.camera.files import classify
from medianscan.capture.camera.freshness import CameraFile, Freshness, capture_time
from medianscan.config.schema import CameraConfig
from medianscan.formats import RAW_EXTS, extension
from medianscan.library.contents import SET_ASIDE
from medianscan.records import BurstRecord
from medianscan.vocabulary import Strategy
from medianscan.wording import counted

log = logging.getLogger(__name__)

MAX_SHOTS_PER_FRAME = 2  # a burst gives up after this many shots per frame that brought no fresh file
COMPANION_SECONDS = 0.5  # a shot's second file (RAW+JPEG) comes within this of its first
SETTLE_SECONDS = 0.1  # after a shot's first file, the next trigger waits at most this for "capture complete"
HEAD = 65536  # bytes of a file that hold its kind and its EXIF
QUIET_SECONDS = 0.5  # a continuous burst let go is over once the body is this quiet (or 3 shot intervals, if longer)
DONE_QUIET_SECONDS = 0.02  # ... or this quiet after it said its capture is complete


@dataclass(frozen=True)
class BurstEngine:
    """Runs bursts on `link` for a body with `quirk`; `freshness` is the session's (it outlives the burst)."""

    link: BodyLink
    cfg: CameraConfig
    quirk: Quirk
    freshness: Freshness
    _: KW_ONLY
    announce_timeout_seconds: float = 30.0
    clock: Callable[[], float] = time.monotonic

    def run(self, strategy: Strategy, frames: FrameCount, record: BurstRecord, stem: str, exposure: float) -> None:
        """Fill `record` with the frames `frames` wants, named `stem`, in its stack; CameraError (the record
        holding what is safe on disk) when the body fails. libgphoto2's own errors pass through for the backend
        to explain."""
        record.stack.mkdir(parents=True, exist_ok=True)
        drain_before(self.link)
        Burst(self, frames, record, stem, exposure).run(strategy)


class Burst:
    """One burst's state, made by `BurstEngine.run` for that burst alone: its shots, when the body last named a
    file or said its capture is complete, and where each file goes (`place`). Used by the camera thread only."""

    def __init__(self, engine: BurstEngine, count: FrameCount, record: BurstRecord, stem: str, exposure: float) -> None:
        self.link, self.cfg, self.quirk, self.freshness = engine.link, engine.cfg, engine.quirk, engine.freshness
        self.announce_timeout_seconds, self.clock = engine.announce_timeout_seconds, engine.clock
        self.count, self.record, self.exposure = count, record, exposure
        self.shots: list[Shot] = []
        self.native_start: float | None = None  # while a continuous burst runs: when it was started
        self.done_heard = 0  # "capture complete" events: a body that sends one per shot is waited for at the end
        self.done_at = self.last_named_at = float("-inf")  # monotonic: the last "capture complete", the last file
        self.released_at = float("inf")  # monotonic: when a continuous burst was let go
        self.place = Placing(self.link, self.cfg, count, record, stem, clock=self.clock)

    def run(self, strategy: Strategy) -> None:
        """Shoot by `strategy` until the count has its frames; what was handed over is on disk when it ends."""
        finished = False
        try:
            if strategy == "native":
                self._native()
            else:
                self._one_by_one(capture=strategy == "capture", overlap=strategy == "trigger" and self.quirk.overlap)
            self._companions_after()
            self.record.auto = self.count.record(len(self.record.frames))
            finished = True
            self.place.say_spares()
        finally:
            self.count.close()  # its measuring thread ends with the burst, however it ends
            self.place.close(finished=finished)

    def _promised(self) -> int:
        """Frames taken, and those the shots still unjudged should bring."""
        return len(self.record.frames) + sum(1 for s in self.shots if not s.judged)

    def _short(self) -> bool:
        """More frames wanted: the count is asked as it is; with all it wanted taken, its last measure is waited
        for (the only wait it costs the burst), which may want more."""
        return len(self.record.frames) < self.count.wanted() or len(self.record.frames) < self.count.settle()

    def _too_few(self) -> CameraError:
        return CameraError(
            f"the camera ({self.link.where()}) gave {counted(len(self.record.frames), 'fresh frame')} of "
            f"{self.count.wanted()} in {len(self.shots)} shots: the other files were not this burst's (see "
            f"{SET_ASIDE}/)"
        )

    def _one_by_one(self, *, capture: bool, overlap: bool) -> None:
        """`capture` or `trigger`: one command per frame. With `overlap` the next shot is fired as soon as the
        body has named the last one's raw, and the files already named are fetched while it exposes."""
        while self._short():
            if self._promised() >= self.count.wanted():  # every frame is on its way: fetch them (or wait)
                if not self._fetch_ready():
                    self._hear(0.05)
                self.place.delete_written(wait=False)
                continue
            if len(self.shots) >= MAX_SHOTS_PER_FRAME * self.count.most:
                raise self._too_few()
            self._make_room()
            if not overlap:
                self._fetch_all_named()
            shot = Shot(time.time())
            self.shots.append(shot)
            if capture:
                self._assign(self.link.capture(), shot)
                self._hear(0.0)  # a companion already queued (RAW+JPEG)
            else:
                self.link.trigger()
                self._fetch_ready()  # the last shot's files, while this one exposes
                self._await_named(shot)
                self._settle(shot)
            if self.quirk.after_shot_seconds:
                self._hear(self.quirk.after_shot_seconds)  # the body's own events after a shot, drained
            self.place.delete_written(wait=False)
        self._fetch_all_named()

    def _native(self) -> None:
        """The body's own continuous burst: the release held until the shots wanted are named, the body heard out
        after it is let go (its late shots are this burst's spares), fired again at once while frames lack."""
        barren = 0  # fires in a row that brought no frame
        while True:
            taken = len(self.record.frames)
            self._hold()
            self._hear_out()
            if not self._short():
                break
            barren = 0 if len(self.record.frames) > taken else barren + 1
            if barren >= MAX_SHOTS_PER_FRAME:
                raise self._too_few()
            log.info("%s: the camera's burst stopped %s short; fired again", self.record.stack.name,
                     counted(self.count.wanted() - len(self.record.frames), "frame"))  # fmt: skip
        self._fetch_all_named()

    def _hold(self) -> None:
        """Hold the release, fetching each file as it is named, until the shots named promise the frames wanted
        (with `frames: auto`, until its measure has decided, or the most)."""
        self.native_start = time.time()
        self.link.start_native(self.count.most)
        try:
            deadline = self.clock() + self.announce_timeout_seconds
            while True:
                named = len(self.shots)
                self._hear(0.0)  # what the body named during the last download: the release is let go in time
                want = self.count.wanted() if self.count.decided() else self.count.most
                if self._promised() >= want:
                    return
                if not self._fetch_next():
                    self._hear(0.02)
                if len(self.shots) > named:
                    deadline = self.clock() + self.announce_timeout_seconds
                elif self.clock() > deadline:
                    raise CameraError(
                        f"the camera ({self.link.where()}) stopped its burst after "
                        f"{counted(len(self.record.frames), 'frame')} of {self.count.wanted()}; check the card and its "
                        "buffer"
                    )
                self.place.delete_written(wait=False)
        finally:
            self.link.stop_native()
            self.released_at = self.clock()

    def _hear_out(self) -> None:
        """After the release: fetch (or drop) what is named until the body has stopped, i.e. it said its capture
        is complete, or it has been quiet for 3 of its shot intervals (at least QUIET_SECONDS)."""
        named = [s.named_at for s in self.shots if s.named_at is not None]
        gaps = sorted(b - a for a, b in itertools.pairwise(named))
        quiet = max(QUIET_SECONDS, 3 * gaps[len(gaps) // 2]) if gaps else QUIET_SECONDS
        if self.done_at >= self.released_at:
            quiet = DONE_QUIET_SECONDS
        while True:
            self._hear(0.0)
            if not self._fetch_next():
                if self.done_at >= self.released_at:
                    quiet = DONE_QUIET_SECONDS
                if self.clock() - max(self.last_named_at, self.released_at) >= quiet:
                    return
                self._hear(0.01)
            self.place.delete_written(wait=False)

    # --- what the body names ------------------------------------------------------------------------------------

    def _hear(self, seconds: float) -> None:
        """Take in what the body says within `seconds` (until it falls quiet after the first thing it says)."""
        until = self.clock() + seconds
        wait = seconds
        while True:
            event = self.link.next_event(max(0.0, wait))
            if event.kind == "file" and event.file is not None:
                self._assign(event.file, None)
            elif event.kind == "done":
                self.done_heard += 1
                self.done_at = self.clock()
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

    def _assign(self, file: Announced, shot: Shot | None) -> None:
        """Assign a file the body named to its shot: `shot` (a capture's own), the shot sharing its stem (a
        companion), the oldest shot still waiting for a file, or in a continuous burst a new one. With none, it is
        left on the body."""
        stem = stem_of(file.name)
        owner = shot or next((s for s in self.shots if stem in s.stems()), None)
        if owner is None:
            owner = next((s for s in self.shots if not s.files), None)
        if owner is None and self.native_start is not None:  # a continuous burst: each new stem is a shot
            owner = Shot(time.time())  # taken just before it was named: freshness judges it against this
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
        self.last_named_at = self.clock()
        self.place.named(file)

    # --- fetching and placing -----------------------------------------------------------------------------------

    def _fetch_ready(self) -> bool:
        """Fetch every file named and not fetched yet; False when there was none."""
        todo = [s for s in self.shots if s.unfetched()]
        for shot in todo:
            self._fetch_shot(shot)
        return bool(todo)

    def _fetch_next(self) -> bool:
        """Fetch the files of the first shot that has some not fetched yet; False when none has."""
        shot = next((s for s in self.shots if s.unfetched()), None)
        if shot is not None:
            self._fetch_shot(shot)
        return shot is not None

    def _fetch_all_named(self) -> None:
        while self._fetch_ready():
            pass

    def _fetch_shot(self, shot: Shot) -> None:
        """Fetch a shot's files not fetched yet (raws by name first), judge its raws together when it has none
        judged yet (the newest fresh one is the frame), and place each."""
        if self.cfg.extra_shots == "delete" and (shot.dropped or (not shot.judged and self._past_frames(shot))):
            self._drop_spare(shot)
            return
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
            target, role = roles.get(item.file) or self.place.companion(item, shot)
            self.place.keep(item, target, role)

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

    def _judge(self, shot: Shot, fetched: list[Fetch]) -> dict[Announced, Target]:
        """A shot's frame: its newest fresh raw (by capture time, then file number), or its first file when it
        has no raw (a JPEG-only body); the other raws, and their companions, are set aside with the reason."""
        shot.judged = True
        raws = [f for f in fetched if f.kind == "raw"] or fetched[:1]
        files = {id(item): CameraFile(item.file.folder, item.file.name, capture_time(item.head)) for item in raws}
        order = self.freshness.newest_first(list(files.values()))
        roles: dict[Announced, Target] = {}
        frame_stem = None
        for camera_file in order:
            item = next(r for r in raws if files[id(r)] is camera_file)
            why = self.freshness.stale(camera_file, shot.fired, self.exposure)
            if why is None and frame_stem is None:
                self.freshness.took(camera_file, shot.fired)
                roles[item.file] = self.place.spare(item, shot) if self.place.enough() else self.place.frame(item, shot)
                frame_stem = stem_of(item.file.name)
                continue
            self.freshness.set_aside(camera_file)
            roles[item.file] = self.place.set_aside(item, why or f"{camera_file.path} was named for the same shot as a "
                                               "newer raw")  # fmt: skip
        for item in fetched:  # the companions (same stem) of a raw set aside go with it
            if item.file not in roles and stem_of(item.file.name) != frame_stem:
                roles[item.file] = self.place.set_aside(item, f"{item.file.path} belongs to a shot set aside")
        return roles

    def _past_frames(self, shot: Shot) -> bool:
        """`shot` is past the frames wanted, known before it is fetched: every shot before it is judged."""
        return all(s.judged for s in self.shots[: self.shots.index(shot)]) and self.place.enough()

    def _drop_spare(self, shot: Shot) -> None:
        for file in shot.unfetched():  # numbered after the frames: a later burst's file never is
            if extension(file.name) in RAW_EXTS:
                self.freshness.took(CameraFile(file.folder, file.name), shot.fired)
        self.place.drop_spare(shot)

    # --- the body's buffer ----------------------------------------------------------------------------------------

    def _make_room(self) -> None:
        """A body with a small buffer refuses to shoot once it is full: fetch and delete before firing again."""
        limit = self.quirk.buffer_frames
        while limit and self.place.on_body >= limit and self.cfg.delete_from_camera:
            self._fetch_all_named()
            self.place.delete_written(wait=True)

    # --- before and after ---------------------------------------------------------------------------------------

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
