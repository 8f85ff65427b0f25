"""The console's connections, bounded, so nobody on this machine can make the daemon spend what the scanning needs.

uvicorn keeps every connection it accepts for as long as the client likes: a connection that never sends a
request, or sends it a byte at a time, is never closed. 1,100 of them took all of a daemon's file descriptors
(the unit's default `ulimit -n` 1024): the control socket, the camera and the library's writes then failed. So the
console's HTTP protocol (uvicorn's h11 one, with three limits added):
- at most MAX_CONNECTIONS at once: one more is closed as soon as it is accepted (its descriptor freed at once);
- a request (headers and body) must arrive whole within REQUEST_SECONDS of its first byte, or of the connection
  (an idle or half-sent request is closed); after a response, uvicorn's keep-alive timeout closes an idle one;
- request bodies are read by `read_body` up to MAX_BODY bytes (the console's requests are a few hundred).
Streams the console serves (live view, events) are responses, not requests: they are not timed.
"""

from __future__ import annotations

import asyncio
import logging

import h11
from starlette.requests import Request
from uvicorn.protocols.http.h11_impl import H11Protocol

from medianscan.errors import MedianscanError

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 64  # one operator, a few tabs and their streams, with room to spare
# Connections taken from the kernel's queue at a time (the listen backlog too): asyncio accepts `backlog` of them
# in one go, so uvicorn's default of 2048 let a flood take 400 file descriptors before any could be turned away
ACCEPT_BATCH = 16
REQUEST_SECONDS = 10.0
MAX_BODY = 64 * 1024  # bytes


class BodyTooLargeError(MedianscanError):
    """A request body larger than the console takes."""


class BoundedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a connection cap and a deadline for each request (see the module)."""

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > MAX_CONNECTIONS:
            log.warning("console: more than %d connections at once; closing the newest", MAX_CONNECTIONS)
            transport.abort()
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR):
            self._disarm()  # the request is whole: answering it (a stream, say) takes as long as it takes
        elif self._deadline is None:
            self._arm()  # the next request on a kept-alive connection has begun

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(REQUEST_SECONDS, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.conn.their_state not in (h11.DONE, h11.MUST_CLOSE) and not self.transport.is_closing():
            self.transport.close()


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request's body, or BodyTooLargeError as soon as it passes `limit` (by its Content-Length, or as it comes)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError(f"the request body is {int(declared):,} bytes; the console takes at most {limit:,}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLargeError(f"the request body passes {limit:,} bytes, the most the console takes")
    return bytes(body)
