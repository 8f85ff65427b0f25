"""Capture mode: the daemon that owns the camera. `daemon` wires it (triggers -> camera thread -> library ->
blend pool -> the operator); `camera_thread` runs the operator's requests and live view on the camera's own
thread, through `camera_link`; `state` is what the threads share, behind one lock; `status` is what it reports.
Each part takes only the collaborators it uses (never the Daemon), so the daemon stands above its parts."""

from medianscan.service.capture.daemon import Daemon

__all__ = ["Daemon"]
