"""The console's routes (Starlette): the page, its state as server-sent events, live view as MJPEG, the
magnifier's crops, the positives, and the operator's requests, answered exactly as the control socket answers.

Everything slow (reading manifests, decoding a JPEG, rendering a positive) runs in Starlette's thread pool, so
the event loop only moves bytes; a client that goes away mid-stream just ends its generator.
"""

from __future__ import annotations

import asyncio
import json
import threading
import typing
from collections.abc import AsyncIterator
from concurrent.futures import Future
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request as HttpRequest
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from medianscan.capture.events import DEFAULT_WAIT, WAIT, Answer, BadRequestError, not_in_time, parse_request
from medianscan.console.bounded import BodyTooLargeError, read_body
from medianscan.console.focus import FocusMeter, crop
from medianscan.console.positives import Positives
from medianscan.console.state import StateBuilder
from medianscan.errors import MedianscanError
from medianscan.records import FilmRecord
from medianscan.vocabulary import ACTIONS, Request

if TYPE_CHECKING:
    from medianscan.console.scanner import Scanner

STATIC = Path(str(resources.files("medianscan.console") / "static"))
BOUNDARY = "medianscan-live"
FRAME_WAIT = 2.0  # seconds a live-view client waits for a frame before it looks again
EVENT_TICK = 0.25  # seconds between looks at the state for the event stream
KEEPALIVE_TICKS = 60  # a comment line this often keeps proxies and tunnels from closing an idle stream
NO_CACHE = {"Cache-Control": "no-store"}


def console_app(daemon: Scanner, closing: threading.Event) -> Starlette:
    """The console of `daemon`; `closing` ends every stream when the daemon stops."""
    routes = ConsoleRoutes(daemon, closing)
    return Starlette(
        routes=[
            Route("/", routes.page),
            Route("/api/state", routes.state),
            Route("/api/events", routes.events),
            Route("/api/live.mjpg", routes.live_stream),
            Route("/api/live.jpg", routes.live_frame),
            Route("/api/magnify.jpg", routes.magnify),
            Route("/api/focus/reset", routes.reset_focus, methods=["POST"]),
            Route("/api/zoom", routes.zoom, methods=["POST"]),
            Route("/api/positive/{roll}/{negative}.jpg", routes.positive),
            Route("/api/actions/{action}", routes.act, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC)),
        ]
    )


def _bad(status: int, reason: str) -> Response:
    return PlainTextResponse(reason + "\n", status_code=status)


class ConsoleRoutes:
    """One method per route, sharing the daemon's feed and the console's own meters and caches."""

    def __init__(self, daemon: Scanner, closing: threading.Event) -> None:
        self.daemon = daemon
        self.closing = closing
        self.feed = daemon.live
        self.states = StateBuilder(daemon)
        self.meter = FocusMeter()
        self.positives = Positives()

    async def page(self, request: HttpRequest) -> Response:
        return FileResponse(STATIC / "index.html", headers=NO_CACHE)

    async def state(self, request: HttpRequest) -> Response:
        built = await run_in_threadpool(self.states.state)
        return JSONResponse(built.to_json(), headers=NO_CACHE)

    async def events(self, request: HttpRequest) -> Response:
        """The state whenever it changes, and the focus reading of each new live-view frame."""
        return StreamingResponse(self._events(), media_type="text/event-stream", headers=NO_CACHE)

    async def _events(self) -> AsyncIterator[str]:
        sent_state, sent_focus, ticks = "", -1, 0
        while not self.closing.is_set():
            built = await run_in_threadpool(self.states.state)
            text = json.dumps(built.to_json(), separators=(",", ":"))
            if text != sent_state:
                sent_state = text
                yield f"event: state\ndata: {text}\n\n"
            latest = self.feed.latest()
            if built.live.watched and latest is not None and latest.number != sent_focus:
                reading = await run_in_threadpool(self.meter.reading, latest)
                if reading is not None:
                    sent_focus = reading.frame
                    yield f"event: focus\ndata: {json.dumps(reading.to_json())}\n\n"
            ticks += 1
            if ticks % KEEPALIVE_TICKS == 0:
                yield ": still here\n\n"
            await asyncio.sleep(EVENT_TICK)

    def _unavailable(self) -> Response | None:
        if self.feed.unavailable is not None:
            return _bad(503, self.feed.unavailable)
        if not self.daemon.has_camera():
            return _bad(503, f"no camera: {self.daemon.camera_view().error or 'not connected'}")
        return None

    async def live_stream(self, request: HttpRequest) -> Response:
        """MJPEG: every new frame, for as long as the client reads (live view runs while one does)."""
        refused = self._unavailable()
        if refused is not None:
            return refused
        media = f"multipart/x-mixed-replace; boundary={BOUNDARY}"
        return StreamingResponse(self._frames(), media_type=media, headers=NO_CACHE)

    async def _frames(self) -> AsyncIterator[bytes]:
        with self.feed.watch():
            number = 0
            while not self.closing.is_set() and self.feed.unavailable is None:
                frame = await self.feed.newer(number, FRAME_WAIT)
                if frame is None:
                    continue
                number = frame.number
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(frame.jpeg)}\r\n\r\n"
                yield head.encode() + frame.jpeg + b"\r\n"

    async def live_frame(self, request: HttpRequest) -> Response:
        """One live-view frame newer than `after` (default: any), for clients that poll."""
        refused = self._unavailable()
        if refused is not None:
            return refused
        try:
            after = int(request.query_params.get("after", "0"))
        except ValueError:
            return _bad(400, "after must be a frame number")
        self.feed.touch()
        frame = await self.feed.newer(after, FRAME_WAIT)
        if frame is None:
            return _bad(504, "no live-view frame arrived in time")
        return Response(frame.jpeg, media_type="image/jpeg", headers={**NO_CACHE, "X-Frame": str(frame.number)})

    async def magnify(self, request: HttpRequest) -> Response:
        """A 1:1 crop of the newest frame around (x, y), fractions of the view."""
        try:
            x, y = float(request.query_params["x"]), float(request.query_params["y"])
        except (KeyError, ValueError):
            return _bad(400, "give x and y, fractions of the live view from 0 to 1")
        if not (0 <= x <= 1 and 0 <= y <= 1):
            return _bad(400, "x and y are fractions of the live view, from 0 to 1")
        self.feed.touch()
        frame = self.feed.latest()
        if frame is None:
            return _bad(503, "no live-view frame yet")
        data = await run_in_threadpool(crop, frame, x, y)
        return Response(data, media_type="image/jpeg", headers=NO_CACHE)

    async def _json(self, request: HttpRequest) -> dict[str, object] | Response:
        """The request's JSON object (read up to the console's limit), or the response that refuses it."""
        try:
            body = await read_body(request)
        except BodyTooLargeError as exc:
            return _bad(413, str(exc))
        if not body.strip():
            return {}
        try:
            return parse_request(body)
        except BadRequestError as exc:
            return _bad(400, str(exc))

    async def zoom(self, request: HttpRequest) -> Response:
        """The body's own magnifier: `{"x": .., "y": ..}` turns it on there, `{"off": true}` off. The camera
        thread makes the change between two preview frames; the state says whether the body has one."""
        data = await self._json(request)
        if isinstance(data, Response):
            return data
        x, y = data.get("x"), data.get("y")
        if data.get("off") is True:
            at = None
        elif isinstance(x, int | float) and isinstance(y, int | float) and 0 <= x <= 1 and 0 <= y <= 1:
            at = (float(x), float(y))
        else:
            return _bad(400, 'send {"x": 0.5, "y": 0.5} (fractions of the view, from 0 to 1) or {"off": true}')
        self.feed.ask_zoom(at)
        return JSONResponse({"ok": True, "asked": "off" if at is None else "on"})

    async def reset_focus(self, request: HttpRequest) -> Response:
        self.meter.reset()
        return JSONResponse({"ok": True})

    async def positive(self, request: HttpRequest) -> Response:
        roll, name = request.path_params["roll"], request.path_params["negative"]
        blend = await run_in_threadpool(self.states.blend_of, roll, name)
        if blend is None:
            return _bad(404, f"{roll}/{name}: no blend of that negative in this roll")
        try:
            data = await run_in_threadpool(self.positives.jpeg, blend)
        except MedianscanError as exc:
            return _bad(500, str(exc))
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=60"})

    async def act(self, request: HttpRequest) -> Response:
        """An operator action, answered as the control socket answers it (no "done" for an ignored press)."""
        action = request.path_params["action"]
        if action not in ACTIONS:
            return _bad(404, f"unknown action {action!r}: use one of {', '.join(ACTIONS)}")
        data = await self._json(request)
        if isinstance(data, Response):
            return data
        film = None
        if action == "new-roll" and data.get("film"):
            try:
                film = FilmRecord.from_json(data["film"])
            except ValueError as exc:
                return _bad(400, f"new-roll: {exc}")
        strip = True if action == "scan-tiles" and data.get("strip") is True else None  # the "whole strip" box
        reply: Future[Answer] = Future()
        self.daemon.hub.emit(typing.cast(Request, action), "console", reply, film=film, strip=strip)
        try:
            answer = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(reply)), DEFAULT_WAIT.get(action, WAIT))
        except TimeoutError:
            text = f"{action}: {not_in_time(reply, DEFAULT_WAIT.get(action, WAIT))}"
            return JSONResponse({"ok": False, "action": action, "outcome": "refused", "text": text}, status_code=504)
        return JSONResponse(answer.to_json())
