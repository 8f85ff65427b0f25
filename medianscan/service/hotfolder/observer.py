"""watchdog's events turned into notes on the HotFolder (inotify on Linux, or polling for NFS/SMB mounts)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from medianscan.errors import MedianscanError
from medianscan.service.hotfolder.tracker import HotFolder

log = logging.getLogger(__name__)


def _path(raw: str | bytes) -> Path:
    return Path(os.fsdecode(raw))


class HotFolderHandler(FileSystemEventHandler):
    """Translates watchdog's typed events into HotFolder notes (runs on the observer's thread; an event that
    fails is logged, never allowed to stop the observer)."""

    def __init__(self, hot: HotFolder) -> None:
        super().__init__()
        self.hot = hot

    def dispatch(self, event: FileSystemEvent) -> None:
        try:
            super().dispatch(event)
        except Exception:
            log.exception("handling %s", event)

    def on_created(self, event: DirCreatedEvent | FileCreatedEvent) -> None:
        if event.is_directory:
            self.hot.note_folder(_path(event.src_path))
        else:
            # watchdog also reports "created" for the files of a folder that appeared, whose writes and close it
            # never saw: only a write seen as it happens makes a file wait for its close
            self.hot.note_changed(_path(event.src_path), live=False)

    def on_modified(self, event: FileModifiedEvent | object) -> None:
        if isinstance(event, FileModifiedEvent):
            self.hot.note_changed(_path(event.src_path), live=True)

    def on_closed(self, event: FileClosedEvent) -> None:
        self.hot.note_changed(_path(event.src_path), complete=True)

    def on_moved(self, event: DirMovedEvent | FileMovedEvent) -> None:
        self.hot.note_removed(_path(event.src_path))
        if event.is_directory:
            self.hot.note_folder(_path(event.dest_path))
        else:
            self.hot.note_changed(_path(event.dest_path), complete=True)

    def on_deleted(self, event: DirDeletedEvent | FileDeletedEvent) -> None:
        self.hot.note_removed(_path(event.src_path))


def observe(hot: HotFolder, polling: bool) -> BaseObserver:
    """A started watchdog observer noting DIR's events on `hot` (polling for network mounts)."""
    observer: BaseObserver = PollingObserver(timeout=max(0.2, hot.settle_seconds / 2)) if polling else Observer()
    try:
        observer.schedule(HotFolderHandler(hot), str(hot.root), recursive=True)
        observer.start()
    except OSError as exc:
        raise MedianscanError(
            f"{hot.root}: cannot watch this folder ({exc.strerror or exc}); on a network mount set "
            "`watch.polling: true`, or raise fs.inotify.max_user_watches"
        ) from None
    return observer
