"""Capture mode: the daemon that owns the camera. `daemon` wires it (triggers -> camera thread -> library ->
blend pool -> the operator); `camera_thread` runs the operator's requests and live view on the camera's own
thread, through `camera_link`; `status` is what it reports. Its parts take the Daemon, and only this package's
modules do."""

from medianscan.service.capture.daemon import Daemon

__all__ = ["Daemon"]
