"""libgphoto2's real virtual camera (the vusb iolib in the gphoto2 wheel), set up for tests and benchmarks.

It goes through the real ptp2 driver: autodetect, config get/set, capture, trigger + events, download, delete.
Its quirks, which everything here respects:
- a capture is a byte copy of the one `.JPG` in VCAMERADIR, re-read at each download with the size cached when
  the camera was loaded: rewrite it *at the same size* between shots to get a new frame each time;
- 26 captures per loaded camera (the 27th fails); the state resets only once every gp.Camera is freed;
- `exit()` then `init()` on one gp.Camera aborts the process: reconnecting needs a new object.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gphoto2 as gp
import numpy as np
import pytest
import tifffile

VUSB = Path(gp.__file__).parent / "libgphoto2" / "vusb"
CAPTURES_PER_SESSION = 26  # the virtual camera's limit per loaded camera
MODEL = "Nikon DSC D750"
PORT = "usb:001,001"
SERIAL = "0.1"
OPCODE_FILE_ADDED = "0x9999,0x0,0x10"  # the virtual camera's event injection through its 'opcode' widget
OPCODE_CAPTURE_COMPLETE = "0x9999,0x2,0x10"
INJECTED_EVENT_DELAY = 0.3  # injected events are queued some 10-80 ms later: wait this long to be sure


def tiny_dng(seed: int, shape: tuple[int, int] = (64, 96)) -> bytes:
    """A small TIFF carrying a DNGVersion tag: raw by content, same size for every seed."""
    mosaic = np.random.default_rng(seed).integers(0, 4096, size=shape, dtype=np.uint16)
    out = io.BytesIO()
    tifffile.imwrite(out, mosaic, photometric="minisblack", extratags=[(50706, "B", 4, (1, 4, 0, 0), True)])
    return out.getvalue()


def jpeg_like(seed: int, size: int) -> bytes:
    """`size` bytes that start like a JPEG, different for every seed."""
    body = np.random.default_rng(seed).integers(0, 256, size=size - 4, dtype=np.uint8).tobytes()
    return b"\xff\xd8\xff\xe0" + body


class VirtualCamera:
    """The folder the virtual camera shoots from, and what each shot showed."""

    def __init__(self, root: Path, *, kind: str = "dng", size: int = 0) -> None:
        self.dir = root / "vcamera"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.source = self.dir / "source.JPG"
        self.kind = kind
        self._size = size
        self.shown: list[bytes] = []  # the bytes each shot captured, in order
        self.cameras: list[RewritingCamera] = []  # every wrapper made, released at the end of the test
        self.source.write_bytes(self.content(0))
        self.size = self.source.stat().st_size

    def content(self, k: int) -> bytes:
        """Shot k's bytes: a tiny DNG or a JPEG-like blob, always the same size."""
        if self.kind == "dng":
            return tiny_dng(k)
        return jpeg_like(k, self._size or 20000)

    def next_shot(self) -> bytes:
        """Put a new frame in the source file (same size, same inode) before the camera fires."""
        assert len(self.shown) < CAPTURES_PER_SESSION, (
            "libgphoto2's virtual camera fails the 27th capture of a loaded camera: use a new test (fixture)"
        )
        data = self.content(len(self.shown) + 1)
        assert len(data) == self.size, "the virtual camera caches the source size: keep it constant"
        with self.source.open("r+b") as fh:
            fh.write(data)
        self.shown.append(data)
        return data


class RewritingCamera:
    """A real gp.Camera whose scene changes between shots (not a fake: every call reaches libgphoto2).

    The virtual camera serves every file it names from its one source file: so that a file fetched after the next
    shot was fired (a pipelined burst) is still its own shot's, each name is mapped to the bytes its shot showed,
    and the source holds those bytes while that file is fetched."""

    def __init__(self, vcam: VirtualCamera) -> None:
        self._cam: Any = gp.Camera()
        self.vcam = vcam
        vcam.cameras.append(self)
        self._shown: dict[str, bytes] = {}  # camera file name -> the bytes of the shot that made it
        self._unnamed: list[bytes] = []  # triggered shots whose file is not named yet

    def release(self) -> None:
        """End the session and drop the gp.Camera, even if a failed test still holds this wrapper."""
        if self._cam is not None:
            with contextlib.suppress(gp.GPhoto2Error):
                self._cam.exit()
            self._cam = None

    def capture(self, kind: int) -> Any:
        data = self._before_shot()
        path = self._cam.capture(kind)
        self._shown[path.name] = data
        return path

    def trigger_capture(self) -> None:
        self._unnamed.append(self._before_shot())
        self._cam.trigger_capture()

    def wait_for_event(self, timeout: int) -> Any:
        kind, data = self._cam.wait_for_event(timeout)
        if kind == gp.GP_EVENT_FILE_ADDED and data.name not in self._shown and self._unnamed:
            self._shown[data.name] = self._unnamed.pop(0)
        return kind, data

    def file_get(self, folder: str, name: str, kind: int) -> Any:
        if name in self._shown:
            with self.vcam.source.open("r+b") as fh:  # the shot's own bytes, same size, same inode
                fh.write(self._shown[name])
        return self._cam.file_get(folder, name, kind)

    def _before_shot(self) -> bytes:
        return self.vcam.next_shot()

    def inject(self, opcode: str) -> None:
        """Make the camera queue an event as if its own shutter button had been pressed (see OPCODE_*)."""
        widget = self._cam.get_single_config("opcode")
        widget.set_value(opcode)
        self._cam.set_single_config("opcode", widget)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cam, name)


class FaultPlan:
    """Which calls of the FAKE fault layer raise which libgphoto2 error, shared across reconnections."""

    def __init__(self, **faults: list[int]) -> None:
        self.faults = {name: list(codes) for name, codes in faults.items()}  # 0 = let the call through
        self.created = 0  # gp.Camera objects made so far (a reconnect makes a new one)
        self.raised: list[tuple[str, int]] = []

    def check(self, name: str) -> None:
        codes = self.faults.get(name)
        if codes:
            code = codes.pop(0)
            if code:
                self.raised.append((name, code))
                raise gp.GPhoto2Error(code)


class FaultyCamera(RewritingCamera):
    """FAKE: the real virtual camera cannot be busy (-110), claimed (-53) or unplugged (-52/-7), so this thin
    layer raises gp.GPhoto2Error(code) on the calls a FaultPlan names, and otherwise calls the real camera."""

    def __init__(self, vcam: VirtualCamera, plan: FaultPlan) -> None:
        super().__init__(vcam)
        self.plan = plan
        plan.created += 1

    def init(self) -> None:
        self.plan.check("init")
        self._cam.init()

    def capture(self, kind: int) -> Any:
        self.plan.check("capture")
        return super().capture(kind)

    def trigger_capture(self) -> None:
        self.plan.check("trigger_capture")
        super().trigger_capture()

    def file_get(self, folder: str, name: str, kind: int) -> Any:
        self.plan.check("file_get")
        return super().file_get(folder, name, kind)

    def get_single_config(self, name: str) -> Any:
        self.plan.check("get_single_config")
        return self._cam.get_single_config(name)

    def capture_preview(self) -> Any:
        self.plan.check("capture_preview")
        return self._cam.capture_preview()


@contextlib.contextmanager
def virtual_camera(root: Path, monkeypatch: pytest.MonkeyPatch, *, kind: str = "dng") -> Iterator[VirtualCamera]:
    """Switch libgphoto2 to its virtual camera for one test; every gp.Camera is freed at the end."""
    vcam = VirtualCamera(root, kind=kind)
    monkeypatch.setenv("VCAMERADIR", str(vcam.dir))
    monkeypatch.setenv("IOLIBS", str(VUSB))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(root / "xdg"))  # the ptp2 driver persists capturetarget there
    try:
        yield vcam
    finally:
        for cam in vcam.cameras:
            cam.release()
        vcam.cameras.clear()
        gc.collect()  # free every gp.Camera so the next test gets a fresh virtual camera


def environ_for_subprocess(vcam: VirtualCamera, xdg: Path) -> dict[str, str]:
    """The environment a child process needs to see the same virtual camera."""
    env = dict(os.environ)
    env.update(VCAMERADIR=str(vcam.dir), IOLIBS=str(VUSB), XDG_CONFIG_HOME=str(xdg))
    return env
