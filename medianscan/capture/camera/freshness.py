"""Which of the files a body announces after a trigger that trigger really made: a frame of another picture is never
taken as this burst's.

Bodies hand over files that are not the shot just fired: the Sony A7 III and later keep an image in their buffer
and give it at the next capture, shifting every frame by one (libgphoto2#1124); a press on the body's own shutter
button adds a file at any moment. What the body gives tells them apart:
- the capture time in the file's EXIF (DateTimeOriginal, SubSecTimeOriginal): once the camera's clock is known
  against the host's (from the first fresh frame of the session), a file taken well before its trigger is stale;
- the file number (DSC_0123 in folder 100NIKON): a session's frames only count up, so a file numbered below a frame
  already taken is older than it, and of several raws announced for one trigger only the newest is this shot;
- a camera file already taken in this session is never taken again.
A file set aside is kept on disk (in the stack's SET_ASIDE folder, never blended) and named with the reason.
"""

from __future__ import annotations

import calendar
import re
import time
from dataclasses import dataclass

from medianscan.exiv2_once import Exiv2Error, exiv2, read_image

STALE_SECONDS = 2.5  # taken this long before its trigger (beyond the exposure): a file from an earlier shot
_NUMBER = re.compile(r"(\d+)(?!.*\d)")


@dataclass(frozen=True)
class CameraFile:
    """One file a body announced: where it is on the body, and what its head says of when it was taken."""

    folder: str
    name: str
    taken: float | None = None  # the EXIF capture time, seconds, on the camera's own clock (None: not in it)

    @property
    def path(self) -> str:
        return f"{self.folder.rstrip('/')}/{self.name}"

    @property
    def number(self) -> tuple[int, int] | None:
        """(folder number, file number) as the body counts them ('100NIKON', 'DSC_0123' -> (100, 123))."""
        found = _NUMBER.search(self.name.rsplit(".", 1)[0])
        if found is None:
            return None
        folder = re.match(r".*?(\d+)[^/\d]*/?$", self.folder)
        return (int(folder.group(1)) if folder else 0, int(found.group(1)))


def file_number(name: str) -> int | None:
    """The number a body gives a file ('DSC_0123.NEF' -> 123), or None."""
    found = _NUMBER.search(name.rsplit(".", 1)[0])
    return int(found.group(1)) if found else None


def capture_time(head: bytes) -> float | None:
    """The EXIF capture time of a file from its first bytes (64 KiB hold the EXIF of every raw), with sub-seconds,
    as seconds of the camera's clock; None when the file does not say."""
    try:
        image = read_image(head)
    except Exiv2Error:
        return None
    exif = image.exifData()
    found = exif.findKey(exiv2.ExifKey("Exif.Photo.DateTimeOriginal"))
    if found == exif.end():
        return None
    try:
        stamp = calendar.timegm(time.strptime(str(found.toString()).strip("\x00 "), "%Y:%m:%d %H:%M:%S"))
    except ValueError:
        return None
    sub = exif.findKey(exiv2.ExifKey("Exif.Photo.SubSecTimeOriginal"))
    digits = str(sub.toString()).strip("\x00 ") if sub != exif.end() else ""
    return stamp + (float(f"0.{digits}") if digits.isdigit() else 0.0)


class Freshness:
    """What one camera session knows of its files' order. Used by the thread that owns the camera."""

    def __init__(self) -> None:
        self.taken: set[str] = set()  # camera paths already taken as frames (or set aside)
        self.newest: tuple[int, int] | None = None  # the highest file number taken as a frame
        self.clock_offset: float | None = None  # host time minus camera time, from fresh frames

    def stale(self, file: CameraFile, triggered: float, exposure: float = 0.0) -> str | None:
        """Why `file` cannot be the frame of a trigger fired at host time `triggered` (None: it can be)."""
        if file.path in self.taken:
            return f"{file.path} was already taken in this session"
        number = file.number
        if number is not None and self.newest is not None and number <= self.newest:
            return f"{file.path} is numbered before a frame already taken (an earlier shot left in the body)"
        if file.taken is not None and self.clock_offset is not None:
            early = triggered - (file.taken + self.clock_offset)
            if early > STALE_SECONDS + exposure:
                return f"{file.path} was taken {early:.0f} s before its trigger (an earlier shot left in the body)"
        return None

    def newest_first(self, files: list[CameraFile]) -> list[CameraFile]:
        """Several raws announced for one trigger: the newest (capture time, then file number) first."""
        return sorted(files, key=lambda f: (f.taken or 0.0, f.number or (0, 0)), reverse=True)

    def took(self, file: CameraFile, triggered: float) -> None:
        """`file` is a frame of the trigger fired at `triggered`: the session's order and clock learn from it."""
        self.taken.add(file.path)
        if file.number is not None and (self.newest is None or file.number > self.newest):
            self.newest = file.number
        if file.taken is not None:  # the smallest offset seen: a stale first frame is outgrown by the fresh ones
            offset = triggered - file.taken
            self.clock_offset = offset if self.clock_offset is None else min(self.clock_offset, offset)

    def set_aside(self, file: CameraFile) -> None:
        self.taken.add(file.path)
