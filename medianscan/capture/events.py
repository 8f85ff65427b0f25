"""What the operator asks for and what the daemon answers: requests from every source on one hub.

Every source (footswitch, keyboard, control socket) runs on its own daemon thread and puts its requests on one
TriggerHub; the daemon's camera thread takes them off with `get_event(timeout)` and answers each. Nothing here
touches the camera: a source only says what the operator asked for.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from medianscan.records import FilmRecord
from medianscan.vocabulary import FIRING, REQUESTS, Request

log = logging.getLogger(__name__)


Emit = Callable[[Request, str], None]  # (action, source name)
RequestHandler = Callable[[Request, dict[str, Any]], dict[str, Any]]  # control socket: (action, request) -> reply
SOCKET_NAME = "control.sock"
WAIT = 30.0
MAX_WAIT = 3600.0  # the longest wait a client may ask for
# seconds a client waits: a burst may be long, a roll run longer
DEFAULT_WAIT = {"capture": 600.0, "retake": 600.0, "flat": 600.0, "base": 600.0}
DEFAULT_WAIT |= {"scan-roll": MAX_WAIT, "scan-tiles": MAX_WAIT}  # a run ends when the strip or the plan does
MAX_LINE = 64 * 1024
MAX_DEPTH = 16  # a request nested deeper than this is no request of ours


class BadRequestError(ValueError):
    """A request that is not one: the reason, in one sentence about the input."""


def parse_request(data: bytes) -> dict[str, Any]:
    """A JSON object from a client (the control socket's line, the console's body), or BadRequestError saying
    what is wrong: not UTF-8, not JSON, nested too deep, not an object."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestError("the request is not UTF-8 text") from None
    if _depth(text) > MAX_DEPTH:
        raise BadRequestError(f"the request is nested more than {MAX_DEPTH} levels deep")
    try:
        request = json.loads(text)
    except ValueError as exc:
        raise BadRequestError(f"the request is not JSON ({exc})") from None
    except RecursionError:  # pragma: no cover - _depth keeps it away
        raise BadRequestError("the request is nested too deep") from None
    if not isinstance(request, dict):
        raise BadRequestError('a request is a JSON object such as {"action": "capture"}')
    return request


def _depth(text: str) -> int:
    """How deep brackets nest in `text`, outside strings (a cheap bound before the JSON parser recurses)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def wait_seconds(request: dict[str, Any], action: Request) -> float:
    """How long the client asks to wait for `action`'s answer: its "wait", checked (a finite number of seconds,
    more than 0 and at most MAX_WAIT), or the action's default."""
    wait = request.get("wait", DEFAULT_WAIT.get(action, WAIT))
    number = isinstance(wait, int | float) and not isinstance(wait, bool)
    if not number or not math.isfinite(wait) or not 0 < wait <= MAX_WAIT:
        limit = f"more than 0 and at most {MAX_WAIT:g}"
        raise BadRequestError(f"wait must be a number of seconds, {limit}, not {wait!s:.40}")
    return float(wait)


def not_in_time(reply: Future[Answer], seconds: float) -> str:
    """The answer when a client stops waiting: what was left undone is cancelled, so it does not fire later,
    behind the client's back; what already began goes on, and the client is told so."""
    if reply.cancel():
        return f"no answer within {seconds:g} s; cancelled: not done"
    return f"no answer within {seconds:g} s; it is under way (see `medianscan status`)"


Outcome = Literal["done", "queued", "ignored", "refused"]


@dataclass(frozen=True)
class Answer:
    """What the daemon did with a request, as the operator is told it (the control socket's reply, the
    console's): no "sent" when a press was ignored."""

    ok: bool
    action: Request
    text: str  # one sentence: "frame-012: 9 frames in 4.2 s; advance the negative", "ignored: paused"
    outcome: Outcome = "done"
    stack: str | None = None  # the stack captured or set aside
    roll: str | None = None  # the roll started
    whole: str | None = None  # a refusal's whole sentence, where `text` is short as the console's banner says why

    def to_json(self) -> dict[str, Any]:
        data = {"ok": self.ok, "action": self.action, "outcome": self.outcome, "text": self.text}
        if not self.ok:
            data["error"] = self.whole or self.text  # the CLI prints it, and has no banner
        return data | {k: v for k, v in (("stack", self.stack), ("roll", self.roll)) if v is not None}

    @classmethod
    def paused(cls, action: Request) -> Answer:
        """The one answer to a press that shoots (capture, flat, base, scan-roll) while the daemon is paused."""
        return cls(False, action, f"{action} ignored: the daemon is paused (send resume first)", "ignored")

    def after_queue(self, behind: str) -> Answer:
        """The same answer for a press that waited for the burst under way (`behind`) first."""
        return dataclasses.replace(self, text=f"queued behind {behind}, then: {self.text}", outcome="queued")


@dataclass(frozen=True)
class Told:
    """The last answer the daemon gave, to whichever source asked (the footswitch's too): the console shows it,
    so the operator at the stand sees what a press did. `number` counts answers, so a repeat shows as new."""

    number: int
    source: str
    answer: Answer


@dataclass(frozen=True)
class TriggerEvent:
    """One request from one source, stamped on arrival (time.monotonic) so the daemon can tell whether it
    came during a burst. `reply`, when the source waits for an answer (the control socket), is resolved once
    the daemon has done, queued or refused it."""

    action: Request
    source: str
    at: float
    reply: Future[Answer] | None = dataclasses.field(default=None, compare=False)
    behind: str | None = None  # the burst this press was queued behind, once the daemon kept it for later
    film: FilmRecord | None = None  # new-roll: the film of the new roll (over the configured defaults)
    strip: bool | None = None  # scan-tiles: the whole strip of 120 (None: as tiles.strip says)
    told: Callable[[TriggerEvent, Answer], None] | None = dataclasses.field(default=None, compare=False)

    def begin(self) -> bool:
        """The daemon is about to act on this request: False when its client has stopped waiting and cancelled
        it (it is then not done at all)."""
        return self.reply is None or self.reply.set_running_or_notify_cancel()

    def answer(self, answer: Answer) -> None:
        """Tell the waiting source (if any) what happened; a second answer is ignored."""
        if self.behind is not None:
            answer = answer.after_queue(self.behind)
        if self.told is not None:
            self.told(self, answer)
        if self.reply is not None and not self.reply.done():
            with contextlib.suppress(InvalidStateError):
                self.reply.set_result(answer)


class TriggerSource(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


class TriggerHub:
    """One queue for every source; thread-safe."""

    def __init__(self) -> None:
        self._queue: queue.Queue[TriggerEvent] = queue.Queue()
        self._sources: list[TriggerSource] = []
        self.told: Told | None = None  # the last answer to an operator's action (status requests are not one)
        self._told_lock = threading.Lock()
        # requests answered at once on the caller's thread, not queued for the camera thread (stop-roll: the
        # camera thread is busy with the run); a handler returning None lets the request queue as usual
        self.at_once: dict[Request, Callable[[Request, str], Answer | None]] = {}

    def emit(
        self,
        action: Request,
        source: str = "",
        reply: Future[Answer] | None = None,
        film: FilmRecord | None = None,
        strip: bool | None = None,
    ) -> None:
        if action not in REQUESTS:
            log.warning("ignoring unknown action %r from %s", action, source or "a trigger")
            return
        log.info("%s from %s", action, source or "a trigger")
        event = TriggerEvent(action, source, time.monotonic(), reply, film=film, strip=strip, told=self._tell)
        handler = self.at_once.get(action)
        answer = None if handler is None else handler(action, source)
        if answer is not None:
            event.begin()
            event.answer(answer)
            return
        self._queue.put(event)

    def _tell(self, event: TriggerEvent, answer: Answer) -> None:
        if event.action == "status":
            return
        with self._told_lock:
            self.told = Told(1 if self.told is None else self.told.number + 1, event.source, answer)

    def get_event(self, timeout: float | None = None) -> TriggerEvent | None:
        """The next request, or None after `timeout` seconds without one."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def drain(self) -> list[TriggerEvent]:
        """Everything waiting, without blocking."""
        out = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out

    def add(self, source: TriggerSource) -> TriggerSource:
        self._sources.append(source)
        return source

    def start(self) -> None:
        for source in self._sources:
            source.start()

    def stop(self) -> None:
        """Stop every source (in reverse order of start); never raises."""
        for source in reversed(self._sources):
            try:
                source.stop()
            except Exception:
                log.exception("could not stop %r cleanly", source)


class PressPolicy:
    """What a capture or retake arriving during a burst does: "queue" keeps at most one for after the burst,
    "ignore" drops it. Other actions (pause, new-roll, status...) are always accepted."""

    def __init__(self, mode: Literal["queue", "ignore"]) -> None:
        self.mode = mode
        self._pending: Request | None = None
        self._lock = threading.Lock()

    def offer(self, action: Request, busy: bool) -> bool:
        """True: run `action` now (not busy) or it is now the pending press; False: it is dropped."""
        if not busy or action not in FIRING:
            return True
        with self._lock:
            if self.mode == "ignore" or self._pending is not None:
                log.info("%s during a burst ignored (%s)", action, self.why_ignored())
                return False
            self._pending = action
            return True

    def why_ignored(self) -> str:
        if self.mode == "ignore":
            return "a burst was under way (triggers.press_during_burst: ignore)"
        return "a burst was under way and one press already waits for it"

    def take(self) -> Request | None:
        """The press that waited for the burst to finish (once), or None."""
        with self._lock:
            action, self._pending = self._pending, None
            return action

    def clear(self) -> None:
        with self._lock:
            self._pending = None


# ------------------------------------------------------------------------------------------------------------
# Footswitch


class PressQueue:
    """The camera thread's view of the hub: presses kept back from a burst run first, in order; presses that
    came during a burst are sorted by the one PressPolicy of the session."""

    def __init__(self, hub: TriggerHub, policy: PressPolicy) -> None:
        self.hub = hub
        self.policy = policy
        self._ready: deque[TriggerEvent] = deque()

    def next(self, timeout: float) -> TriggerEvent | None:
        if self._ready:
            return self._ready.popleft()
        return self.hub.get_event(timeout)

    def sort(self, burst_ended: float, stack: str) -> None:
        """Presses that came during the burst of `stack`: the first capture/retake is kept (or none, per the
        `press_during_burst` policy) and told it was queued, the others told they were ignored; later presses
        and other actions keep their order."""
        self.policy.clear()
        for event in self.hub.drain():
            during = event.at <= burst_ended
            if self.policy.offer(event.action, during):
                kept = during and event.action in FIRING
                self._ready.append(dataclasses.replace(event, behind=f"the burst of {stack}") if kept else event)
            else:
                why = self.policy.why_ignored()
                event.answer(Answer(False, event.action, f"{event.action} ignored: {why}", "ignored"))

    def refuse_all(self, text: str) -> None:
        """Answer every request still waiting (at shutdown): the operator hears it was not done."""
        for event in [*self._ready, *self.hub.drain()]:
            event.answer(Answer(False, event.action, text, "refused"))
        self._ready.clear()
