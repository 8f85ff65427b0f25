"""libgphoto2 error codes, sorted by what to do about them, and the sentence that tells the user the fix.

No gphoto2 import here: codes are plain ints (they are part of libgphoto2's stable ABI).
"""

from __future__ import annotations

BUSY = -110  # GP_ERROR_CAMERA_BUSY: "I/O in progress", PTP Device Busy
CLAIM = -53  # GP_ERROR_IO_USB_CLAIM: another process holds the USB interface
USB_FIND = -52  # GP_ERROR_IO_USB_FIND: the device is gone from the bus
IO = -7  # GP_ERROR_IO
LOCK = -60  # GP_ERROR_IO_LOCK: could not lock the device
TIMEOUT = -10  # GP_ERROR_TIMEOUT
MODEL_NOT_FOUND = -105  # GP_ERROR_MODEL_NOT_FOUND
BAD_PARAMETERS = -2  # GP_ERROR_BAD_PARAMETERS: also "no such widget"
NOT_SUPPORTED = -6
IO_INIT = -31
IO_READ = -34
IO_WRITE = -35
IO_UPDATE = -37

# The session is lost: close it, make a new Camera object, reconnect with backoff.
GONE = frozenset({USB_FIND, IO, TIMEOUT, CLAIM, LOCK, IO_INIT, IO_READ, IO_WRITE, IO_UPDATE})

GVFS_FIX = (
    "the desktop's gvfs-gphoto2 volume monitor usually holds it: run `gio mount -s gphoto2` "
    "(or stop gvfs-gphoto2-volume-monitor), then unplug and replug the camera"
)
PERMISSION_FIX = (
    "install libgphoto2's udev rules (`print-camera-list udev-rules`) and add this user to their group "
    "(usually plugdev), then log in again and replug the camera"
)
NO_CAMERA_FIX = (
    "connect it by USB, switch it on in PTP/PC mode, make sure no other program is using it, "
    "then check `medianscan camera list` (to try medianscan without a camera: `medianscan demo`)"
)


_IO_CODES = (IO, IO_READ, IO_WRITE, IO_INIT, IO_UPDATE)
_FIXES: dict[int, str] = {
    CLAIM: "the camera{on} is claimed by another process; " + GVFS_FIX,
    LOCK: "the camera{on} is locked by another process; " + GVFS_FIX,
    BUSY: "the camera{on} stayed busy (PTP Device Busy); check it is in manual focus and not writing to a slow "
    "card, then try again",
    USB_FIND: "the camera{on} is no longer on the USB bus; check the cable and that it is switched on",
    TIMEOUT: "the camera{on} stopped answering; switch it off and on again",
    MODEL_NOT_FOUND: "no camera libgphoto2 knows{on}; " + NO_CAMERA_FIX,
    **dict.fromkeys(_IO_CODES, "USB I/O error with the camera{on}; check the cable, or unplug and replug it"),
}


def explain(code: int, doing: str, where: str = "", detail: str = "") -> str:
    """One sentence for a libgphoto2 error `code` raised while `doing` something (`where`: model and port)."""
    on = f" ({where})" if where else ""
    fix = _FIXES.get(code)
    if fix is None:
        text = f" ({detail})" if detail else ""
        return f"could not {doing}: libgphoto2 error {code}{text} with the camera{on}"
    return f"could not {doing}: " + fix.format(on=on)
