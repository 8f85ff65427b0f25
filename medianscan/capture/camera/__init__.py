"""The camera: locked-exposure RAW bursts, from a real body (libgphoto2) or the simulator.

    cam = open_camera(cfg.camera)        # does not connect yet
    cam.connect()                        # CameraError with the fix if there is no usable camera
    record = cam.burst(9, stack, "frame-001")   # re-locks and verifies the settings first
    cam.close()                          # restores the settings found at connect

Only the gphoto2/ package here imports gphoto2; simulated/ is the body without a camera.
"""

from __future__ import annotations

from medianscan.capture.camera.base import (
    BurstError,
    BurstRecord,
    Camera,
    CameraError,
    CameraIdentity,
    NoLiveViewError,
    SettingError,
    SettingInfo,
)
from medianscan.config.schema import CameraConfig

__all__ = [
    "BurstError",
    "BurstRecord",
    "Camera",
    "CameraError",
    "CameraIdentity",
    "NoLiveViewError",
    "SettingError",
    "SettingInfo",
    "list_cameras",
    "open_camera",
]


def open_camera(cfg: CameraConfig) -> Camera:
    """The backend `cfg.backend` names, configured but not yet connected. Each backend is imported when chosen:
    a process pays for the one it drives (the simulator's scipy, libgphoto2's bindings), not both."""
    if cfg.backend == "gphoto2":
        from medianscan.capture.camera.gphoto2.backend import Gphoto2Camera

        return Gphoto2Camera(cfg)
    if cfg.backend == "simulated":
        from medianscan.capture.camera.simulated.camera import SimulatedCamera

        return SimulatedCamera(cfg)
    raise CameraError(f"unknown camera backend {cfg.backend!r}: use 'gphoto2' or 'simulated'")


def list_cameras(backend: str = "gphoto2") -> list[CameraIdentity]:
    """Every camera the backend can see (the simulator always has exactly one)."""
    if backend == "simulated":
        from medianscan.capture.camera.simulated.camera import SIMULATED_IDENTITY

        return [SIMULATED_IDENTITY]
    from medianscan.capture.camera.gphoto2.session import list_cameras as gphoto2_cameras

    return gphoto2_cameras()
