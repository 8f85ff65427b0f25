"""The console's web server: uvicorn on its own thread and event loop inside the daemon, on a socket bound
before the daemon says READY (a port in use is a clear error at start, not a silent console-less daemon).

It is one of the hub's sources: started and stopped with the footswitch and the control socket.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import TYPE_CHECKING

import uvicorn

from medianscan.config.listen import parse_listen
from medianscan.config.schema import ConsoleConfig
from medianscan.console.app import console_app
from medianscan.console.bounded import ACCEPT_BATCH, BoundedH11Protocol
from medianscan.console.guard import Guard
from medianscan.errors import MedianscanError

if TYPE_CHECKING:
    from medianscan.console.scanner import Scanner

log = logging.getLogger(__name__)

STOP_SECONDS = 5.0


class ConsoleServer:
    def __init__(self, cfg: ConsoleConfig, daemon: Scanner) -> None:
        if cfg.listen is None:
            raise MedianscanError("the console is switched off (console.listen: null)")
        self.listen = parse_listen(cfg.listen)
        self.token = cfg.token
        self.daemon = daemon
        self.port = self.listen.port
        self._closing = threading.Event()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.listen.url(self.port)

    def start(self) -> None:
        host = self.listen.host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            sock = socket.create_server((host, self.listen.port), family=family)
        except OSError as exc:
            why = os.strerror(exc.errno) if exc.errno else str(exc)  # create_server's strerror adds the address
            raise MedianscanError(
                f"console.listen {self.listen.host}:{self.listen.port}: cannot listen there: {why.lower()}; is "
                "another medianscan running? Set console.listen to a free port, or null for no console"
            ) from exc
        self.port = sock.getsockname()[1]
        app = Guard(console_app(self.daemon, self._closing), self.listen, lambda: self.port, self.token)
        config = uvicorn.Config(
            app,
            log_config=None,  # the daemon's logging stays as it is
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            http=BoundedH11Protocol,  # at most so many connections, each request whole within seconds
            backlog=ACCEPT_BATCH,  # and never many file descriptors at once for those turned away
            loop="asyncio",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="console", daemon=True
        )
        self._thread.start()
        log.info("console on %s", self.url)

    def stop(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(STOP_SECONDS)
            if self._thread.is_alive():
                log.warning("the console did not stop within %.0f s", STOP_SECONDS)
