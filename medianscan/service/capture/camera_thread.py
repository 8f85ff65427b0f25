"""The camera thread of the capture mode: it owns the camera and the capture side of the library. It takes the
operator's requests off the hub and answers each: a burst (disk checked, frames recorded, the stack queued for
blending), a retake, a new roll, pause and resume. The main thread (medianscan.service.capture) owns the rest;
what both share is the daemon's state (service.capture.state), changed only through its methods.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from medianscan.capture.bracket_burst import bracket_choices, shoot_bracket
from medianscan.capture.camera import BurstError, Camera, CameraError
from medianscan.capture.camera.burst.enough import Auto, FrameCount, flat_gain
from medianscan.capture.events import Answer, PressQueue, TriggerEvent
from medianscan.capture.live_view import LiveFeed
from medianscan.capture.rig.roll_run import Resume
from medianscan.capture.rig.tile_run import Resume as TileResume
from medianscan.config.schema import Config
from medianscan.errors import MedianscanError
from medianscan.library import flats
from medianscan.library.manifest import State
from medianscan.library.recovery import cut_off_note
from medianscan.library.rolls import Library, raw_files
from medianscan.records import FilmRecord
from medianscan.service.capture.base_turn import shoot_base
from medianscan.service.capture.camera_link import CameraLink
from medianscan.service.capture.cut_off import fetch_cut_off, left_a_journal
from medianscan.service.capture.live_view_turns import LiveViewTurns
from medianscan.service.capture.roll_turn import no_run, scan_roll
from medianscan.service.capture.state import DaemonState
from medianscan.service.capture.tiles_turn import scan_tiles
from medianscan.service.loop import ServicePool
from medianscan.service.progress import BurstDone, FlatDone, Progress
from medianscan.vocabulary import Request

log = logging.getLogger(__name__)

DEFAULT_FRAME_BYTES = 50 * 1024 * 1024  # a 24 MP raw is ~25-35 MB; used until a first stack is on disk
SPACE_MARGIN_FRAMES = 3  # room for the blend DNG, its sidecar and slack, in frames
ONE_PRESS_SECONDS = 1.0  # a retake pressed again this soon is the same press (a double tap on the pedal)


class SettingRefusedError(MedianscanError):
    """An action the connected body cannot do because it refused a setting. `short` is the answer where the
    console's banner already says why; the whole sentence goes to the log, status and the control socket."""

    def __init__(self, doing: str, reason: str) -> None:
        super().__init__(f"cannot {doing}: {reason}")
        self.short = f"cannot {doing}: a camera setting is refused (see the banner)"


class CameraThread:
    """The camera thread's work: the body (`link`), the requests (`presses`), the library's capture side, the
    stacks it hands to the blend pool, and the daemon's shared `state` it changes (each change under its lock).
    `config` and `library` are read at each use (a reload replaces them)."""

    def __init__(
        self,
        *,
        state: DaemonState,
        link: CameraLink,
        presses: PressQueue,
        live: LiveFeed,
        config: Callable[[], Config],
        library: Callable[[], Library],
        pool: ServicePool,
        submit: Callable[[Path], bool],
        emit: Callable[[Progress], None],
        report: Callable[[str, Path | None], None],
        status_line: Callable[[], str],
        stop: threading.Event,
        cut_off: set[Path],
    ) -> None:
        self.state = state
        self.link = link
        self.presses = presses
        self.live = live
        self.config = config
        self.library = library
        self.pool = pool
        self.submit = submit
        self.emit = emit
        self.report = report
        self.status_line = status_line
        self.stop = stop
        self.cut_off = cut_off  # bursts cut off with frames on the body: fetched once it is here (this thread's)
        self.turns = LiveViewTurns(link, live, lambda: config().console.live_fps)
        self._refused: str | None = None  # the last action refused, as the status's message said it
        self.roll_resume: Resume | None = None  # where the last roll run stopped, for the next (roll_turn)
        self.tiles_resume: tuple[Path, TileResume] | None = None  # where the last tile run left the stage (tiles_turn)
        self._last_retake: float | None = None  # when the last retake was pressed (monotonic)

    def run(self) -> None:
        """The camera thread: keep a camera connected (retrying with backoff), run the operator's actions, and
        fetch live view between them while it is watched."""
        try:
            while not self.stop.is_set():
                self.link.tend()
                if self.cut_off and self.link.camera is not None and self.link.refused is None:
                    fetch_cut_off(self.cut_off, self.link.camera, self.library(), self.hold)
                event = self.presses.next(self.turns.wait())
                if event is None:
                    self.turns.preview()
                    continue
                if not event.begin():  # its client stopped waiting and cancelled it: never fire behind its back
                    log.info("%s from %s not done: its client stopped waiting for it", event.action, event.source)
                    continue
                self.do(event)
        finally:
            self.link.close()
            self.presses.refuse_all("the daemon is stopping: not done")

    def do(self, event: TriggerEvent) -> None:
        """Act on one request and answer it (a pause or resume takes effect with its answer, as one step)."""
        action = event.action
        try:
            answer = self.act(action, event.film, at=event.at, strip=event.strip)
        except SettingRefusedError as exc:  # the console's banner says why: its answer is short, the socket's whole
            self.report(str(exc), None)
            self._refused = str(exc)
            self.state.answer(event, Answer(False, action, exc.short, "refused", whole=str(exc)))
        except MedianscanError as exc:
            self.report(str(exc), None)
            self._refused = str(exc)
            self.state.answer(event, Answer(False, action, str(exc), "refused"))
        except Exception as exc:  # a bug must not end the session
            log.exception("%s failed", action)
            text = f"{action} failed unexpectedly: {type(exc).__name__}: {exc}"
            self.report(text, None)
            self.state.answer(event, Answer(False, action, text, "refused"))
        else:
            paused = action == "pause" if action in ("pause", "resume") else None
            self.state.answer(event, answer, paused=paused, forget=self._refused)

    def act(
        self, action: Request, film: FilmRecord | None = None, *, at: float | None = None, strip: bool | None = None
    ) -> Answer:
        """Do one operator action on the camera thread (`film`: a new roll's; `at`: when it was pressed, on the
        monotonic clock; `strip`: scan-tiles along the whole strip); the answer says what happened."""
        shooting: dict[str, Callable[[], Answer]] = {
            "capture": self.press,
            "flat": self.shoot_flat,
            "base": lambda: shoot_base(self),
            "scan-roll": lambda: scan_roll(self, self.state),
            "scan-tiles": lambda: scan_tiles(self, self.state, strip),
        }
        if action in shooting:
            return shooting[action]()
        if action in ("stop-roll", "stop-tiles"):  # answered at once while a run is under way; this came after it
            return no_run(action)
        # what an action did is its answer (the console shows the last one, whoever asked); `message` is kept
        # for what went wrong
        if action == "retake":
            return self.retake(time.monotonic() if at is None else at)
        if action == "new-roll":
            library = self.library()
            roll = library.new_roll(film)
            self.roll_resume = None  # a new roll's strip starts at its first frame
            on = (film or FilmRecord()).merged_over(library.film).film
            return Answer(True, action, f"new roll {roll.name}" + (f" on {on}" if on else ""), roll=roll.name)
        if action in ("pause", "resume"):  # takes effect with its answer (`do`)
            text = "paused: captures are ignored until resume" if action == "pause" else "resumed: captures are taken"
            return Answer(True, action, text)
        line = self.status_line()  # the keyboard's `s`; the socket answers status itself
        print(line, file=sys.stderr, flush=True)
        return Answer(True, action, line)

    def press(self) -> Answer:
        """The pedal: a burst, unless paused."""
        if not self.state.paused:
            return self.capture()
        log.info("capture ignored: the daemon is paused")
        return Answer.paused("capture")

    def retake(self, at: float) -> Answer:
        """Set the roll's last negative aside (its blend, if queued or running, is called off) for the next capture
        to shoot it again. Pressed again before that capture, it is the same retake: the answer says the negative
        is set aside already (and a press within ONE_PRESS_SECONDS of the last is said to be one press)."""
        one_press = self._last_retake is not None and at - self._last_retake < ONE_PRESS_SECONDS
        self._last_retake = at
        library = self.library()
        pending = library.retake_pending(library.roll)
        last = library.last_stack() if pending is None else None
        if last is not None:
            where = self.state.call_off(last, self.pool.cancel)
            if where:
                log.info("retake: the blend of %s (%s) is called off", last.name, where)
        done = library.retake()
        moved = done.moved
        where = f"{moved.parent.parent.name}/{moved.parent.name}/" + (moved.name if moved.name != done.name else "")
        if not done.again:
            log.info("%s set aside in %s to shoot it again", done.name, moved)
            return Answer(True, "retake", f"{done.name} set aside in {where} to shoot it again", stack=done.name)
        said = "retake pressed again within a second: one press" if one_press else "retake again before a capture"
        text = f"{said}; {done.name} is set aside in {where} already, and the next capture shoots it again"
        log.info("%s", text)
        return Answer(True, "retake", text, "ignored", stack=done.name)

    def ready_camera(self, doing: str) -> Camera:
        """The connected camera, reconnected if need be; MedianscanError saying why `doing` cannot be done."""
        if self.link.camera is None and not self.link.connect():
            raise MedianscanError(f"cannot {doing}: {self.link.status.error}")
        if self.link.refused is not None:
            raise SettingRefusedError(doing, self.link.refused)
        camera = self.link.camera
        assert camera is not None
        return camera

    def shoot_flat(self) -> Answer:
        """A flat burst (the bare light, no film) for the roll's later negatives; whole, or set aside."""
        if self.state.paused:
            return Answer.paused("flat")
        camera = self.ready_camera("shoot a flat")
        self.check_space()
        roll = self.library().roll
        shot = flats.shooting_folder(roll)
        try:
            with self.burst_under_way("a flat burst is under way", "the flat"):
                record = camera.burst(self.config().flat_frames(), shot, flats.FLAT_STEM)
        except CameraError as exc:
            kept = flats.set_aside(shot, "flat-cut-off")
            if not camera.connected:
                self.link.drop(str(exc))
            raise MedianscanError(f"flat not taken ({exc}); its frames are kept in {kept}") from exc
        folder = flats.keep_flat(roll, shot)
        self.state.clear_message()
        text = (
            f"flat field shot: {len(record.frames)} frames in {record.seconds:.1f} s into "
            f"{roll.name}/{flats.FLATS}/{folder.name}; the roll's next negatives are corrected with it: "
            "put the film back"
        )
        log.info("%s", text)
        last = folder / record.frames[-1].name if record.frames else None  # shot in the shooting folder, now moved
        self.emit(FlatDone(folder, len(record.frames), record.seconds, last))
        return Answer(True, "flat", text, stack=folder.name)

    def capture(self, strip_frame: int | None = None, into: Callable[[int], Path] | None = None) -> Answer:
        """A burst into the roll's next negative (`strip_frame`: the strip's frame the rig put under the lens,
        recorded in its manifest; `into`: a tile run's, making the tile's stack folder for the frames expected)."""
        camera = self.ready_camera("capture")
        if not self.wait_for_room():
            return Answer(False, "capture", "capture not done: the daemon is stopping", "refused")
        self.check_space()
        cfg, library = self.config(), self.library()
        flat = flats.current_flat(library.roll)
        if flat is None and cfg.roll.flat == "required":
            text = (
                f"capture refused: roll {library.roll.name} has no flat field yet (roll.flat: required); "
                "shoot one first with `medianscan flat`, the bare light and no film in the holder"
            )
            return Answer(False, "capture", text, "refused")
        values = bracket_choices(camera, cfg.bracket) if cfg.bracket else []  # before any frame
        least, most = (n * max(1, len(values)) for n in cfg.frames_range())
        stack = library.new_stack(most) if into is None else into(most)  # frames: auto records what it shot after
        started = time.monotonic()
        try:
            with self.burst_under_way("a burst is under way", stack.name):
                if values:
                    record = shoot_bracket(  # the longest exposure decides; the others shoot the least
                        camera, camera.cfg.settings, values,
                        lambda deciding: self.frame_count(flat) if deciding else cfg.frames_range()[0], stack,
                        progress=self.group_progress,
                    )  # fmt: skip
                else:
                    record = camera.burst(self.frame_count(flat), stack, stack.name)
        except CameraError as exc:
            kept = exc.record if isinstance(exc, BurstError) else None
            library.mark(
                stack,
                State.INCOMPLETE,
                error=str(exc),
                burst=kept,
                capture_seconds=time.monotonic() - started,
                note=cut_off_note(len(raw_files(stack)), most),
            )
            if left_a_journal(stack):  # frames still on the body: fetched once it is back
                self.cut_off.add(stack)
            if not camera.connected:
                self.link.drop(str(exc))
            raise MedianscanError(f"{stack.name}: {exc}") from exc
        except Exception as exc:  # a bug in a backend: the frames on disk are kept all the same
            library.mark(stack, State.INCOMPLETE, error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            self.link.read_battery()
        seconds = record.seconds or time.monotonic() - started
        library.mark(
            stack,
            State.CAPTURED,
            burst=record,
            capture_seconds=seconds,
            flat=flat,
            bracket=values or None,
            frames_expected=max(least, len(record.frames)),
            strip_frame=strip_frame,
        )
        last = record.frames[-1] if record.frames else None
        why = f" ({record.auto.said()})" if record.auto is not None else ""
        then = ": advance the negative" if strip_frame is None else f" (strip frame {strip_frame}; the rig advances)"
        then = then if into is None else " (the stage moves on)"
        cue = f"{stack.name}: burst done, {len(record.frames)} frames{why} in {seconds:.1f} s{then}"
        log.info("%s", cue)
        self.emit(BurstDone(stack, len(record.frames), seconds, last))
        if not self.submit(stack):  # only the camera thread fills the last slot, so this is rare
            self.state.hold(stack, first=True)
        self.state.clear_message()
        return Answer(True, "capture", cue, stack=stack.name)

    def hold(self, stack: Path) -> None:
        """A stack whole again (its cut-off burst fetched): queued for blending by the main loop."""
        self.state.hold(stack)

    def frame_count(self, flat: Path | None) -> int | FrameCount:
        """A burst's frames: `frames`, or for `frames: auto` a fresh count, its densest tenth found after the
        roll's flat field's gain when its master is blended (burst.enough)."""
        cfg = self.config()
        if cfg.frames != "auto":
            return cfg.frames
        from medianscan.blend.stack_files import output_paths  # (the blend's files, scipy: for `frames: auto` alone)

        master = None if flat is None else output_paths(flat, "median", "raw", None)[0]
        return Auto(cfg.auto_frames, cfg.blend, flat_gain(master))

    @contextlib.contextmanager
    def burst_under_way(self, why: str, label: str) -> Iterator[None]:
        """While the camera shoots: presses are held for the policy, status says capturing, live view says `why`
        it stands still; afterwards the presses that came meanwhile are sorted (`label`: what they waited for)."""
        self.state.begin_burst()
        self.live.paused = why
        try:
            yield
        finally:
            self.state.end_burst()
            self.live.paused = None
            self.presses.sort(time.monotonic(), label)

    def group_progress(self, group: int, groups: int, shutter: str) -> None:
        """A bracket's group under way, for status and the console ("group 2 of 2")."""
        self.state.bracket_at((group, groups, shutter))
        self.live.paused = f"a bracket is under way: group {group} of {groups} ({shutter})"

    def wait_for_room(self) -> bool:
        """Back-pressure: hold the capture while the blend queue is full. False if stopping meanwhile."""
        if not self.pool.full:
            return True
        self.state.wait_for_room(True)
        log.info("blend queue full: the capture waits for a blend to finish")
        try:
            while self.pool.full:
                if self.stop.wait(0.05):
                    return False
            return True
        finally:
            self.state.wait_for_room(False)

    def check_space(self) -> None:
        library = self.library()
        per_frame = library.bytes_per_frame() or DEFAULT_FRAME_BYTES
        most = self.config().frames_range()[1]
        need = per_frame * (most + SPACE_MARGIN_FRAMES)
        folder = library.roll
        free = shutil.disk_usage(folder).free
        if free < need:
            raise MedianscanError(
                f"not enough free disk space in {folder}: {free / 1e6:.0f} MB free, a stack of "
                f"{most} frames and its blend need about {need / 1e6:.0f} MB; free some space "
                "or move the library, then press again"
            )
