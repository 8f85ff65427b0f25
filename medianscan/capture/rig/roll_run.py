"""A roll shot without hands: advance, settle, find, correct, burst, and on, until the strip ends or the operator
stops it.

The run never shoots a frame twice: after a burst it always advances before it looks again, and a frame that looks
like the last one shot after an advance stops it (the film slips). A stop (the operator's, a fault's) comes only
between frames and leaves the film where it is; `scan-roll` again carries on from the frame in view, or from the
next when the one in view is the last one shot. Live view is the camera thread's (the
run is called on it); the rig is the run's alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from medianscan.capture.events import Answer
from medianscan.capture.rig.base import Rig
from medianscan.capture.rig.finding import FrameFinder, Sight, decode, same_picture, still
from medianscan.capture.rig.port import RigError
from medianscan.config.schema import RigConfig
from medianscan.errors import MedianscanError
from medianscan.library.manifest import State, read_manifest
from medianscan.reports import RollFrameReport
from medianscan.wording import counted

log = logging.getLogger(__name__)

MOST_FRAMES = 100  # frames one run shoots at most: an uncut roll of 36 (or 72 half-frames) and then some


class Flag(Protocol):
    """A stop asked for (a threading.Event is one)."""

    def is_set(self) -> bool: ...


class Eyes(Protocol):
    """What the run sees and shoots through (the camera thread gives it)."""

    def preview(self) -> bytes | None:
        """The next live-view frame (shown on the console too); None: the body has no live view."""

    def shoot(self, strip_frame: int) -> Answer:
        """One negative's burst, as a press (strip frame `strip_frame` of the strip): its stack (the answer's
        `stack`: the stack folder's path), blended beside the next frame's finding."""


@dataclass(frozen=True)
class FrameLine:
    """One strip frame as the run met it: found, centred by so many moves and shot as a stack; or blank and
    skipped."""

    strip_frame: int
    blank: bool = False
    corrections: int = 0
    stack: str | None = None  # the stack folder it was shot as
    by_pitch: bool = False  # placed by the calibrated pitch alone (no live view to find it in)

    def report(self) -> RollFrameReport:
        """The line the operator reads, with the stack's blend as its manifest says now."""
        head = f"strip frame {self.strip_frame}: "
        if self.blank or self.stack is None:
            return RollFrameReport(self.strip_frame, head + "blank (unexposed), skipped", True)
        moves = f" in {counted(self.corrections, 'move')}" if self.corrections else ""
        placed = "placed by the pitch" if self.by_pitch else f"found, centred{moves}"
        stack = Path(self.stack)
        try:
            m = read_manifest(stack)
        except MedianscanError:  # a retake set it aside in discarded/
            return RollFrameReport(self.strip_frame, f"{head}{placed}, shot as {stack.name}, set aside", True)
        blend = {
            State.BLENDED: "blended",
            State.BLENDING: "blending",
            State.CAPTURED: "queued for its blend",
            State.FAILED: f"blend failed: {m.error}",
            State.INCOMPLETE: f"cut off: {m.error or m.note}",
        }.get(m.state, m.state.value)
        text = f"{head}{placed}, shot as {stack.name}, {blend}"
        return RollFrameReport(self.strip_frame, text, m.state in (State.BLENDED, State.FAILED, State.INCOMPLETE))


@dataclass(frozen=True)
class RollProgress:
    """Where a run is, for status and the console."""

    frame: int  # the strip's frame under the lens (1-based)
    shot: int
    blanks: int
    corrections: int
    doing: str  # "advancing", "settling", "finding frame 3", "shooting frame 3"...
    outline: tuple[float, float, float, float] | None  # the found picture in the view (fractions), once found
    frames: tuple[FrameLine, ...] = ()  # the frames met so far, in order
    started: float = 0.0  # the run's start (wall clock): which run this is
    under_way: bool = True  # False: the run is over (its frames kept for status until the next)

    def reports(self) -> tuple[RollFrameReport, ...]:
        return tuple(line.report() for line in self.frames)

    def said(self) -> str:
        """'2 shot, 1 blank, 2 corrections; finding strip frame 3'."""
        blanks, corrections = counted(self.blanks, "blank"), counted(self.corrections, "correction")
        return f"{self.shot} shot, {blanks}, {corrections}; {self.doing}"


@dataclass
class RollSummary:
    """What a run did, said in one sentence at its end."""

    shot: list[str] = field(default_factory=list)  # the stacks, in order
    strip_frames: list[int] = field(default_factory=list)  # the strip's frame each of them is
    blanks: list[int] = field(default_factory=list)  # the strip's frames found blank, skipped
    corrections: int = 0
    worst_centring: float = 0.0  # the largest centring error shot, as a share of the picture's width
    ended: bool = False  # the strip ended by itself
    stopped: str | None = None  # why the run stopped before the strip's end
    live_view: bool = True
    seconds: float = 0.0

    def said(self) -> str:
        shots = counted(len(self.shot), "frame") + " shot"
        if self.shot:
            where = (
                "strip frame" + ("s " if len(self.strip_frames) > 1 else " ") + ", ".join(map(str, self.strip_frames))
            )
            shots += f" ({self.shot[0]}" + (f" to {self.shot[-1]}" if len(self.shot) > 1 else "") + f": {where})"
        blanks = (
            f", {counted(len(self.blanks), 'blank frame')} skipped (strip frame "
            + ", ".join(map(str, self.blanks))
            + ")"
            if self.blanks
            else ""
        )
        how = ", placed by the calibrated pitch alone (no live view on this body)"
        if self.live_view:
            how = f", {counted(self.corrections, 'correction')}" + (
                f", worst centring {self.worst_centring:.1%} of the picture's width" if self.shot else ""
            )
        end = "the strip ended" if self.ended else f"stopped: {self.stopped}"
        return f"roll run: {shots}{blanks}{how} in {self.seconds:.0f} s; {end}"


@dataclass(frozen=True)
class Resume:
    """Where a stopped run left off, for the next: the frame it shot last (never shot again), the strip frame in
    view, and the copy stand's scale as measured."""

    last_shot: Sight | None
    frame: int


class RollRun:
    """One run of the strip under the lens (see the module)."""

    def __init__(self, rig: Rig, eyes: Eyes, cfg: RigConfig, stop: Flag,
                 progress: Callable[[RollProgress], None] = lambda p: None, *,
                 resume: Resume | None = None) -> None:  # fmt: skip
        """`resume`: where a run before this one stopped (a new strip without it)."""
        self.rig, self.eyes, self.cfg, self.stop = rig, eyes, cfg, stop
        self.report = progress
        self.finder = FrameFinder(cfg.picture_mm, flipped=cfg.view_reversed)
        self.summary = RollSummary()
        self.frame = 1 if resume is None else resume.frame
        self.outline: tuple[float, float, float, float] | None = None
        self.moves = 0  # the frame under way's correcting moves
        self.last_shot = None if resume is None else resume.last_shot
        self.lines: list[FrameLine] = []
        self.started = time.time()
        if self.last_shot is not None and self.last_shot.mm_per_px is not None:  # the copy stand's scale
            self.finder.mm_per_px = self.last_shot.mm_per_px

    def resume(self) -> Resume | None:
        """Where the next run carries on; None once the strip has ended (the next run starts a new strip)."""
        return None if self.summary.ended else Resume(self.last_shot, self.frame)

    def run(self) -> RollSummary:
        started = time.monotonic()
        try:
            self._run()
        except MedianscanError as exc:  # the rig's faults, a camera gone, a burst that failed: one sentence each
            self.summary.stopped = str(exc)
        finally:
            self.summary.seconds = time.monotonic() - started
            self._tell("done")
        log.info("%s", self.summary.said())
        return self.summary

    def _tell(self, doing: str) -> None:
        s = self.summary
        self.report(RollProgress(self.frame, len(s.shot), len(s.blanks), s.corrections, doing, self.outline,
                                 tuple(self.lines), self.started, doing != "done"))  # fmt: skip

    def _run(self) -> None:
        if self.eyes.preview() is None:
            self._by_pitch()
            return
        advanced = False  # the first frame is where the operator put it: no "far from the pitch" check
        while not self.stop.is_set():
            if self.frame > MOST_FRAMES:
                self.summary.stopped = f"{MOST_FRAMES} frames and no end of the strip in sight: is the strip's end lit?"
                return
            if not self._frame(advanced):
                return
            advanced = True
        self.summary.stopped = "by the operator"

    def _frame(self, advanced: bool) -> bool:
        """Find, centre and shoot the frame in view, then advance: False when the run ends (the summary says
        why)."""
        sight = self._settled_sight()
        if sight.kind in ("end", "lost"):
            self.summary.ended = sight.kind == "end"
            if sight.kind == "lost":
                self.summary.stopped = f"frame {self.frame} of the strip not found in live view: {sight.why}"
            return False
        if sight.kind == "blank":
            log.info("strip frame %d is blank (unexposed): skipped", self.frame)
            self.summary.blanks.append(self.frame)
            self.lines.append(FrameLine(self.frame, blank=True))
            self.frame += 1
            self._advance(sight.offset_mm)
            return True
        far = self.cfg.far * abs(self.cfg.pitch_mm)
        if advanced and abs(sight.offset_mm) > far:
            self.summary.stopped = (
                f"frame {self.frame} landed {abs(sight.offset_mm):.1f} mm from where the pitch put it (more than "
                f"{far:.1f} mm): is the film slipping? Centre it by hand and run scan-roll again"
            )
            return False
        centred = self._centre(sight)
        if centred is None or not self._shoot(centred, advanced):
            return False
        self._advance(0.0)
        return True

    def _centre(self, sight: Sight) -> Sight | None:
        """Correcting moves until the picture is centred within tolerance; None (the run stops) if it will not."""
        tolerance = self.cfg.centre_tolerance * self.cfg.picture_mm
        self.moves = 0
        for _ in range(self.cfg.corrections):
            if abs(sight.offset_mm) <= tolerance:
                return sight
            self._tell(f"centring strip frame {self.frame} ({sight.offset_mm:+.1f} mm)")
            self.rig.move(sight.offset_mm)
            self.summary.corrections += 1
            self.moves += 1
            sight = self._settled_sight()
            if sight.kind != "picture":
                self.summary.stopped = f"frame {self.frame} lost while centring it: {sight.why or sight.kind}"
                return None
        if abs(sight.offset_mm) <= tolerance:
            return sight
        self.summary.stopped = (
            f"frame {self.frame} still {sight.offset_mm:+.1f} mm off centre after {self.cfg.corrections} correcting "
            "moves: is the rig losing steps?"
        )
        return None

    def _shoot(self, sight: Sight, advanced: bool) -> bool:
        """The burst of the centred frame; False (the run stops) when it fails, or when the frame looks like the
        last one shot after an advance (the film did not move: never shoot a frame twice). Seen at a run's start,
        that frame is passed (a run stopped after its burst, before its advance): True, nothing shot."""
        if same_picture(sight.fingerprint, None if self.last_shot is None else self.last_shot.fingerprint):
            if not advanced:
                log.info("the frame in view is the one the last run shot last: advancing past it")
                return True
            last = self.summary.shot[-1] if self.summary.shot else "the last run's last frame"
            self.summary.stopped = (
                f"the frame in view looks like the one just shot ({last}): did the film move? Advance it by hand "
                "and run scan-roll again"
            )
            return False
        self._tell(f"shooting strip frame {self.frame}")
        answer = self.eyes.shoot(self.frame)
        if not answer.ok:
            self.summary.stopped = f"the burst of strip frame {self.frame} failed: {answer.text}"
            return False
        self.summary.shot.append(Path(answer.stack).name if answer.stack else f"frame {self.frame}")
        self.summary.strip_frames.append(self.frame)
        self.lines.append(FrameLine(self.frame, corrections=self.moves, stack=answer.stack))
        error = abs(sight.offset_mm) / self.cfg.picture_mm
        self.summary.worst_centring = max(self.summary.worst_centring, error)
        self.last_shot = sight
        self.frame += 1
        return True

    def _advance(self, extra_mm: float) -> None:
        """One pitch on (plus `extra_mm`: a blank frame's own offset), to the next frame."""
        if self.stop.is_set():
            return
        self.outline = None
        self._tell(f"advancing to strip frame {self.frame}")
        self.rig.move(self.cfg.pitch_mm + extra_mm)

    def _settled_sight(self) -> Sight:
        """Previews until two in a row agree (the film has stopped), then what the last one shows."""
        self._tell(f"finding strip frame {self.frame}")
        deadline = time.monotonic() + self.cfg.settle_seconds
        before = None
        while True:
            jpeg = self.eyes.preview()
            if jpeg is None:
                raise RigError("live view stopped during the roll run; the film is where it stopped")
            now = decode(jpeg)
            if before is not None and still(before, now):
                sight = self.finder.look(now)
                self.outline = sight.outline
                found = "found" if sight.kind == "picture" else sight.kind
                self._tell(f"strip frame {self.frame}: {found}")
                return sight
            if time.monotonic() > deadline:
                raise RigError(
                    f"live view did not stand still within {self.cfg.settle_seconds:g} s of the move to frame "
                    f"{self.frame}: is the rig still moving, or the light flickering?"
                )
            before = now

    def _by_pitch(self) -> None:
        """No live view: the calibrated pitch alone, up to the strip's configured number of frames. Each shot is
        followed by its advance, stop or not, so a resumed run starts at the next frame."""
        self.summary.live_view = False
        log.warning("no live view on this body: frames placed by the calibrated pitch, no correction")
        while self.frame <= self.cfg.frames_without_live_view:
            if self.stop.is_set():
                self.summary.stopped = "by the operator"
                return
            self._tell(f"shooting strip frame {self.frame} (by the pitch)")
            answer = self.eyes.shoot(self.frame)
            if not answer.ok:
                self.summary.stopped = f"the burst of strip frame {self.frame} failed: {answer.text}"
                return
            self.summary.shot.append(Path(answer.stack).name if answer.stack else f"frame {self.frame}")
            self.summary.strip_frames.append(self.frame)
            self.lines.append(FrameLine(self.frame, stack=answer.stack, by_pitch=True))
            self.frame += 1
            if self.frame <= self.cfg.frames_without_live_view:
                self._tell(f"advancing to strip frame {self.frame}")
                self.rig.move(self.cfg.pitch_mm)
        self.summary.ended = True
