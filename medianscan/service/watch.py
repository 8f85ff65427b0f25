"""The hot-folder service: `medianscan watch` and the daemon's `mode: watch`, blending what other tools drop in.

Three threads: the watchdog observer and the `Planner` (`medianscan.service.hotfolder`: which files are complete,
how they group into stacks, which stacks are ready) hand stacks to the blend pool; the service's main loop
collects the pool's outcomes, applies retention, tells its listeners (the hooks among them) and keeps status,
systemd's notifications and the control socket going, with the same machinery as the capture daemon
(`medianscan.service.loop`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from watchdog.observers.api import BaseObserver

from medianscan.blend.options import BlendOptions
from medianscan.capture.control_socket import ControlServer, server_socket_path
from medianscan.config.schema import Config, WatchConfig
from medianscan.errors import DROP_HINT_CONFIG, MedianscanError
from medianscan.library.retention import blended_raws, release
from medianscan.records import BlendRecord
from medianscan.reports import RECENT, NeedsAttention, QueueState, RecentNegative, WatchStatus
from medianscan.service.hotfolder.grouping import TICK_SECONDS, Grouping, PlannedStack, is_temp_name
from medianscan.service.hotfolder.observer import observe
from medianscan.service.hotfolder.planner import Planner
from medianscan.service.hotfolder.tracker import HotFolder
from medianscan.service.jobs import BlendTask
from medianscan.service.loop import Service, ServicePool, log_blend_notes, make_pool
from medianscan.service.notify import Notifier
from medianscan.service.pool import Event, Outcome, Started
from medianscan.service.progress import BlendDone, StackQueued
from medianscan.service.tiled import TiledNegatives, at_work
from medianscan.wording import counted, unnamed

__all__ = ["Grouping", "WatchService", "is_temp_name", "watch_config"]

log = logging.getLogger(__name__)


class WatchService(Service):
    """`medianscan watch` and the daemon's `mode: watch`: `run()` serves until stopped; `run_once()` catches up.

    Same status, hooks, retention, sd_notify and signals as the capture daemon; the control socket answers
    `status` (capture actions are refused: there is no camera in this mode).
    """

    def stopping(self) -> str:
        return "stopping the watch"

    def __init__(
        self,
        cfg: Config,
        *,
        config_path: Path | None = None,
        notifier: Notifier | None = None,
        pool: ServicePool | None = None,
        control: bool = True,
        drop_hint: str = DROP_HINT_CONFIG,
        blend_flags: Mapping[str, Any] | None = None,
    ) -> None:
        watch = cfg.watch
        if watch.folder is None:
            raise MedianscanError("watch mode needs a folder: `medianscan watch DIR` or `watch.folder` in the config")
        root = Path(watch.folder).expanduser()
        if not root.is_dir():
            raise MedianscanError(f"{root}: no such folder to watch")
        super().__init__(cfg, config_path=config_path, notifier=notifier)
        self.pool = pool if pool is not None else make_pool(cfg)
        self.use_control = control
        self.drop_hint = drop_hint  # `medianscan watch` names its flag, the daemon its config key
        self.blend_flags = dict(blend_flags or {})  # the command line's blend options, over the config's (reloads too)
        self.hot = HotFolder(
            root,
            Grouping.parse(watch.group),
            BlendOptions.from_config(cfg.blend, editors=tuple(cfg.outputs.editors), **self.blend_flags),
            quiet_seconds=watch.quiet_seconds,
            settle_seconds=watch.settle_seconds,
            frames_per_stack=watch.frames,
            closes_reported=not watch.polling,
        )
        self.blends = 0  # blends started (tests count these: nothing is blended twice)
        self.blended = 0  # of those, blends written
        self.reblended = 0  # of those, stacks blended again because their files changed
        self.recent: deque[RecentNegative] = deque(maxlen=RECENT)
        self._planner: Planner | None = None
        self._observer: BaseObserver | None = None
        self._control: ControlServer | None = None
        self._pool_started = False
        self.tiled = TiledNegatives(lambda: self.hot.options.method)  # folders with tiles.json: stitched

    # --- public API -----------------------------------------------------------------------------------

    def status(self) -> WatchStatus:
        """What `medianscan status` shows in watch mode."""
        inflight = self.hot.inflight()
        at = self.pool.running()
        blending, stitching = at_work(at)
        running = {str(p) for p in at}
        backlog = len(self._planner.backlog) if self._planner is not None else 0
        with self.hot.cond:
            problems = {key: unnamed(why, self.hot.label(Path(key))) for key, why in self.hot.problems.items()}
            waiting = {**self.hot.settling, **self.hot.waiting}
        queued = [*inflight, *(p.key for p in (self._planner.backlog if self._planner is not None else ()))]
        waiting |= {str(p): "blending" if str(p) in running else "queued for a blend" for p in queued}
        waiting |= self.tiled.doing()  # tiled negatives: queued for a stitch, or stitching
        return WatchStatus(
            folder=str(self.hot.root),
            group=str(self.hot.grouping),
            queue=QueueState(
                waiting=len([p for p in inflight if str(p) not in running]) + backlog,
                blending=blending,
                capacity=self.cfg.queue_size,
                full=self.pool.full,
                stitching=stitching,
            ),
            blends=self.blends,
            message=self.message,
            attention=tuple(NeedsAttention(key, "failed", why) for key, why in sorted(problems.items())),
            waiting=waiting,
            recent=tuple(self.recent),
            blended=self.blended,
            reblended=self.reblended,
            blended_before=len(self.hot.blended_before),
        )

    def status_line(self) -> str:
        s = self.status()
        line = f"watching {s.folder} ({s.group}); queue {s.queue.said()}"
        if s.attention:
            line += f"; {counted(len(s.attention), 'stack')} cannot be blended"
        return line

    def run(self) -> int:
        """Catch up, then follow DIR until SIGTERM / SIGINT / stop(); returns the exit code."""
        self._install_signals()
        if self.use_control:
            self._start_control()
        try:
            self._pool_started = True
            self.pool.start()
            # the observer before the scan: nothing arriving during the scan is missed
            self._observer = observe(self.hot, self.cfg.watch.polling)
            found = self.hot.scan()
            self.tiled.check_all(self.hot.root)
            log.info("watching %s (%s): %s already there", self.hot.root, self.hot.grouping, counted(found, "file"))
            self._planner = Planner(self.hot, self.submit)
            self._planner.start()
        except BaseException:
            self._shutdown()
            raise
        self.notifier.ready(self.status_line())
        return self._serve()

    def run_once(self, timeout: float | None = None) -> int:
        """The catch-up pass alone: blend every complete stack not blended yet, wait for the blends, return
        0, or 1 when a stack could not be blended (its reason is logged and in `status()['problems']`)."""
        planner = Planner(self.hot, self.submit)
        self._planner = planner
        deadline = None if timeout is None else time.monotonic() + timeout
        said: dict[str, str] = {}
        try:
            self.hot.scan()
            self.tiled.check_all(self.hot.root)
            while not self.stop_event.is_set():
                planner.step()
                self._say_settling(said)
                self._collect(TICK_SECONDS)
                self._feed_stitches()
                if not planner.backlog and not self.hot.busy() and not self.tiled.busy():
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise MedianscanError(f"{self.hot.root}: the catch-up did not finish within {timeout:g} s")
        finally:
            self.pool.stop()
            self._hooks_wait()
        return 1 if self.hot.problems else 0

    # --- internals ------------------------------------------------------------------------------------

    def _say_settling(self, said: dict[str, str]) -> None:
        """The catch-up's waits, each said once as it begins (a copy still arriving holds the pass for
        watch.quiet_seconds): nothing silent."""
        with self.hot.cond:
            now = dict(self.hot.settling)
        for folder, why in now.items():
            if said.get(folder) != why:
                log.info("%s waits: %s", self.hot.label(Path(folder)), why)
        said.clear()
        said.update(now)

    def _serve_once(self) -> None:
        self._collect(0.2)
        self._feed_stitches()
        self._check_reload()
        self._publish_status()

    def submit(self, planned: PlannedStack) -> bool:
        if not self._pool_started:  # --once with nothing to blend starts no worker
            self._pool_started = True
            self.pool.start()
        label = self.hot.label(planned.key)
        ok = self.pool.submit(
            planned.key, BlendTask(planned.frames, planned.options, name=label, drop_hint=self.drop_hint)
        )
        if ok:
            self.blends += 1
            again = f" to blend again ({planned.again})" if planned.again else ""
            log.info("%s: %s queued%s", label, counted(len(planned.frames), "frame"), again)
            self.emit(StackQueued(planned.key, planned.frames))
        return ok

    def _feed_stitches(self) -> None:
        if self.tiled.due and not self._pool_started:
            self._pool_started = True
            self.pool.start()
        self.tiled.feed(self.pool.submit)

    def _record(self, event: Event) -> None:
        if self.tiled.owns(event.stack):  # a tiled negative's stitch: listed as the one negative it is
            st = self.tiled.record(event)
            if st is not None and st.record is not None:
                log.log(
                    logging.WARNING if st.unregistered else logging.INFO, "%s", st.said(self.hot.label(st.negative))
                )
                self.recent.append(RecentNegative(str(st.negative), "stitched", None, None, st.seconds, None,
                                                  None, str(st.record.output), None, tiles=st.tiles))  # fmt: skip
            elif st is not None:
                self.recent.append(RecentNegative(str(st.negative), "failed", None, None, st.seconds,
                                                  st.error, None, None, None, tiles=st.tiles))  # fmt: skip
                self.report_error(st.said(self.hot.label(st.negative)), st.negative)
            if st is not None:
                self.emit(st.news(self.hot.label(st.negative)))  # the stitch-done or stitch-failed hook
            return
        if isinstance(event, Started):
            return
        planned = self.hot.finished(event.stack, event.error)
        n = len(planned.frames) if planned is not None else 0
        label = self.hot.label(event.stack)
        if event.ok and event.result is not None:
            output = event.result.output
            kept = self._retain(event.result)
            again = planned is not None and planned.again is not None
            done = "re-blended" if again else "blended"
            self.blended += 1
            self.reblended += again
            raws = "" if kept == "kept" else f"; raws {kept}"
            log.info("%s: %s in %.1f s -> %s%s", label, done, event.seconds, output.name, raws)
            log_blend_notes(label, event.result)
            self._blended(event.stack)
            notes = [*([f"re-blended: {planned.again}"] if planned is not None and planned.again else []),
                     *([f"raws {kept}"] if kept != "kept" else [])]  # fmt: skip
            note = "; ".join(notes) or None
            if not self.tiled.after_blend(event.stack):  # a tile is not a negative of its own
                self.recent.append(self._recent(event, "blended", n, note=note, output=str(output)))
            self.emit(BlendDone(event.stack, event.result, event.seconds))
        else:
            message = event.error or "blend failed"
            self.recent.append(self._recent(event, "failed", n, error=unnamed(message, label)))
            self.report_error(message, event.stack)

    @staticmethod
    def _recent(
        event: Outcome[BlendRecord],
        state: str,
        frames: int,
        *,
        error: str | None = None,
        note: str | None = None,
        output: str | None = None,
    ) -> RecentNegative:
        """A finished blend as the last-stacks list shows it (the hot folder has no capture time)."""
        ratio = event.result.noise_ratio if event.result is not None else None
        snr = event.result.snr if event.result is not None else None
        return RecentNegative(str(event.stack), state, frames, None, event.seconds, error, note, output, ratio, snr)

    def _retain(self, record: BlendRecord) -> str:
        """The configured retention applied to the raws the blend read (and any it dropped); an archive keeps
        the folders below the watched folder."""
        raws = blended_raws(record)
        if not raws:
            return "kept"
        archive = None
        if self.cfg.archive is not None:
            archive = Path(self.cfg.archive).expanduser() / raws[0].parent.relative_to(self.hot.root)
        return release(raws, self.cfg.retention, archive)

    def _start_control(self) -> None:

        def handle(action: str, request: dict[str, Any]) -> dict[str, Any]:
            del request
            if action == "status":
                return {"ok": True, "status": self.status().to_json()}
            raise MedianscanError(f"{action}: the daemon is in watch mode (no camera); only status is available")

        server = ControlServer(server_socket_path(self.cfg), handle)
        server.start()
        self._control = server

    def _wind_down(self) -> None:
        if self._observer is not None:
            with contextlib.suppress(Exception):
                self._observer.stop()
                self._observer.join(5)
        if self._planner is not None and self._planner.is_alive():
            self._planner.stop()
        left = self.pool.stop()
        self.tiled.left_over([key for key in left if self.tiled.owns(key)])
        if left:
            log.info("%s not blended yet; the next start catches up with them", counted(len(left), "stack"))
        if self._control is not None:
            self._control.stop()
            self._control = None

    def _apply_config(self, cfg: Config) -> list[str]:
        """SIGHUP: blend options, hooks and retention apply to the next stacks; folder and grouping need a
        restart."""
        restart = [name for name in ("mode", "workers", "queue_size") if getattr(cfg, name) != getattr(self.cfg, name)]
        restart += [f"watch.{f.name}" for f in dataclasses.fields(WatchConfig)
                    if getattr(cfg.watch, f.name) != getattr(self.cfg.watch, f.name)]  # fmt: skip
        cfg = dataclasses.replace(cfg, watch=self.cfg.watch, mode=self.cfg.mode)
        with self.hot.cond:
            self.cfg = cfg
            self.hot.options = BlendOptions.from_config(
                cfg.blend, editors=tuple(cfg.outputs.editors), **self.blend_flags
            )
            self.hooks = self._make_hooks(cfg)
        return restart


def watch_config(cfg: Config, folder: Path | None = None, group: str | None = None) -> Config:
    """`cfg` with the command line's folder and grouping (checked like the config file's)."""
    watch = cfg.watch
    if folder is not None:
        watch = dataclasses.replace(watch, folder=Path(folder))
    if group is not None:
        Grouping.parse(group)
        watch = dataclasses.replace(watch, group=group)
    return dataclasses.replace(cfg, watch=watch, mode="watch")
