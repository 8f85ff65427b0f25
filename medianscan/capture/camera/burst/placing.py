"""Where each file a burst fetched goes, and its deletion from the body once it is there.

A frame goes into the stack as <stem>_NN; a raw that is not this burst's (judged by the engine's freshness) into
SET_ASIDE; a fresh shot past the frames the burst wants (a continuous burst's release is a moment late) into SPARES,
numbered on from the frames, or with `camera.extra_shots: delete` deleted from the body unfetched; a companion JPEG
beside its raw when `keep_jpeg`, else nowhere. Each is written off the camera thread (FrameWriter) and deleted from
the body only once it is on disk; the journal follows every step, and the record names every file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from medianscan.capture.camera.base import CameraError
from medianscan.capture.camera.burst.enough import FrameCount
from medianscan.capture.camera.burst.journal import BurstJournal
from medianscan.capture.camera.burst.link import Announced, BodyLink
from medianscan.capture.camera.burst.shots import Fetch, Role, Shot
from medianscan.capture.camera.burst.writer import FrameWriter
from medianscan.capture.camera.files import frame_name
from medianscan.config.schema import CameraConfig
from medianscan.library.contents import SET_ASIDE, SPARES
from medianscan.records import BurstRecord, LeftOut
from medianscan.wording import counted

log = logging.getLogger(__name__)

Target = tuple[Path | None, Role]  # where a fetched file goes (None: not kept), and as what


class Placing:
    """One burst's files on their way from the body to the stack; used by the camera thread only."""

    def __init__(
        self, link: BodyLink, cfg: CameraConfig, count: FrameCount, record: BurstRecord, stem: str, *,
        clock: Callable[[], float],
    ) -> None:  # fmt: skip
        self.link, self.cfg, self.count, self.record, self.stem, self.clock = link, cfg, count, record, stem, clock
        self.n = count.most  # for the frames' names: their number's width
        self.writer = FrameWriter()
        self.journal = BurstJournal(record.stack)
        self.deletes: list[tuple[Future[Path] | None, Announced]] = []  # in order: written (or not kept) -> delete
        self.on_body = 0  # files named and not deleted yet
        self.last_frame_at = clock()
        self._warned_not_raw = False

    def named(self, file: Announced) -> None:
        self.on_body += 1
        self.journal.named(file)

    # --- what a file becomes ------------------------------------------------------------------------------------

    def frame(self, item: Fetch, shot: Shot) -> Target:
        shot.frame = len(self.record.frames) + 1
        if item.kind != "raw" and not self._warned_not_raw:
            where = self.link.where()
            log.warning("%s is not shooting RAW (got %s): set camera.settings.imageformat", where, item.file.name)
            self._warned_not_raw = True
        named = shot.named_at or self.clock()  # the body's cadence: from one frame's naming to the next's
        self.record.per_frame_seconds.append(max(0.0, named - self.last_frame_at))
        self.last_frame_at = named
        return self.record.stack / frame_name(self.stem, shot.frame, self.n, item.ext), Role.FRAME

    def enough(self) -> bool:
        """The burst has every frame it wants: a shot judged now is a spare."""
        return len(self.record.frames) >= self.count.wanted() and len(self.record.frames) >= self.count.settle()

    def spare_reason(self) -> str:
        return (f"a shot past the {counted(self.count.wanted(), 'frame')} asked for (a continuous burst stops a "
                "moment after its release is let go)")  # fmt: skip

    def spare(self, item: Fetch, shot: Shot) -> Target:
        """A fresh shot past the frames: kept in SPARES, numbered on from the frames (s_10.dng after 9)."""
        number = len(self.record.frames) + len(self.record.spares) + 1
        shot.spare = self.record.stack / SPARES / frame_name(self.stem, number, self.n, item.ext)
        shot.spare.parent.mkdir(exist_ok=True)
        self.record.spares.append(LeftOut(shot.spare, self.spare_reason()))
        return shot.spare, Role.SPARE

    def drop_spare(self, shot: Shot) -> None:
        """`camera.extra_shots: delete`: a spare's files deleted from the body unfetched, each named."""
        shot.judged = shot.dropped = True
        for file in shot.unfetched():
            self.journal.placed(file, "")
            self.deletes.append((None, file))
            self.record.spares_deleted.append(file.path)
        shot.fetched = len(shot.files)

    def set_aside(self, item: Fetch, why: str) -> Target:
        target = self.record.stack / SET_ASIDE / item.file.name
        target.parent.mkdir(exist_ok=True)
        self.record.set_aside.append(LeftOut(target, why))
        log.warning("%s: set aside in %s/: %s", self.record.stack.name, SET_ASIDE, why)
        return target, Role.SET_ASIDE

    def companion(self, item: Fetch, shot: Shot) -> Target:
        """A file fetched after its shot was judged: its frame's (or spare's) JPEG if configured, else not kept."""
        if item.kind == "jpeg" and self.cfg.keep_jpeg:
            if shot.frame is not None:
                return self.record.stack / frame_name(self.stem, shot.frame, self.n, item.ext), Role.JPEG
            if shot.spare is not None:
                return shot.spare.with_suffix(f".{item.ext}"), Role.SPARE
        if item.kind == "raw":
            log.warning("a second raw %s for one shot was not kept", item.file.path)
        return None, Role.NOT_KEPT

    def keep(self, item: Fetch, target: Path | None, role: Role) -> None:
        """Hand a fetched file to the writer (or, not kept, straight to deleting), and record it."""
        self.journal.placed(item.file, "" if target is None else str(target.relative_to(self.record.stack)))
        if target is None:
            self.deletes.append((None, item.file))
            return
        self.deletes.append((self.writer.submit(target, item.download), item.file))
        if role is Role.FRAME:
            self.record.frames.append(target)
            self.count.took(item.download.data)
        elif role is Role.JPEG:
            self.record.jpegs.append(target)
        if role in (Role.FRAME, Role.JPEG):
            self.record.sizes[target.name] = len(item.download.data)

    def say_spares(self) -> None:
        where = self.record.stack.name
        if self.record.spares:
            log.info("%s: %s kept in %s/: %s", where, counted(len(self.record.spares), "spare file"), SPARES,
                     self.spare_reason())  # fmt: skip
        if self.record.spares_deleted:
            log.info("%s: %s deleted from the camera unfetched (camera.extra_shots: delete): %s", where,
                     counted(len(self.record.spares_deleted), "spare file"), self.spare_reason())  # fmt: skip

    # --- deleting from the body, once on disk ---------------------------------------------------------------------

    def delete_written(self, *, wait: bool, strict: bool = True) -> None:
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

    def close(self, *, finished: bool) -> None:
        """Every file handed over on disk (or failed) and deleted from the body where configured; the journal
        closed (and gone, the burst finished)."""
        self.writer.close()
        self.delete_written(wait=True, strict=finished)  # a write that failed: the journal stays for recovery
        self.journal.close(finished=finished)
