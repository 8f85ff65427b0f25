"""The planner thread: asks the HotFolder which stacks are ready and hands them to the blend pool, in order."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from medianscan.service.hotfolder.grouping import TICK_SECONDS, PlannedStack
from medianscan.service.hotfolder.tracker import HotFolder

log = logging.getLogger(__name__)


class Planner(threading.Thread):
    """Wakes on every note (or each tick while something waits), plans ready stacks and submits them.

    A stack the pool cannot take yet (queue full) waits here, in order; `stop()` notifies and ends it.
    """

    def __init__(self, hot: HotFolder, submit: Callable[[PlannedStack], bool]) -> None:
        super().__init__(name="watch-planner", daemon=True)
        self.hot = hot
        self.submit = submit
        self.backlog: deque[PlannedStack] = deque()
        self._stopping = False

    def stop(self) -> None:
        with self.hot.cond:
            self._stopping = True
            self.hot.cond.notify_all()
        self.join(5)

    def run(self) -> None:
        while True:
            with self.hot.cond:
                if self._stopping:
                    return
                self.hot.cond.wait(TICK_SECONDS)
                if self._stopping:
                    return
            try:
                self.step()
            except Exception:  # a bug must not end the watch
                log.exception("planning the hot folder failed")

    def step(self) -> None:
        self.backlog.extend(self.hot.plan())
        while self.backlog:
            if not self.submit(self.backlog[0]):
                return
            self.backlog.popleft()
