"""Exiv2 (python-exiv2), set up once for the whole process: the only module that imports `exiv2`.

Exiv2 starts its XMP toolkit lazily, on the first XMP packet it decodes or encodes, and that start is not
thread-safe: two frame readers meeting an XMP packet at once (our own DNGs carry the film's XMP) both entered
`XmpParser::initialize` and the process segfaulted or hung (issue 27). Its documentation says to call
`XmpParser::initialize()` once before any thread uses it, and that later namespace registrations are
thread-safe only with a lock function passed to it, which python-exiv2 cannot take from Python. So, here:
- the toolkit is started at import, and the AnalogExif namespace (the film's XMP) registered then, before any
  thread of ours exists (importing this module is the first thing every Exiv2 user does);
- what decodes or encodes XMP (reading or writing a file's metadata, encoding a packet) runs under one lock,
  since decoding a packet registers its unknown namespaces (a GoPro's, say) in the toolkit. It costs well under a
  millisecond per file; the pixels are decoded in parallel as before;
- Exiv2's log is muted once: what it would warn of, the callers name in one sentence themselves.
`XmpParser.terminate()` is never called: a thread still reading at exit would use the freed toolkit.
See docs/design.md (native libraries and threads).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import exiv2

ANALOG_EXIF = "http://analogexif.sourceforge.net/ns/"  # the film's XMP schema (medianscan.outputs.xmp)
DARKTABLE = "http://darktable.sf.net/"  # darktable's sidecar schema (medianscan.outputs.editors.darktable)

Exiv2Error = exiv2.Exiv2Error
_xmp = threading.Lock()  # one XMP decode or encode at a time (the toolkit's namespace table is shared)

exiv2.LogMsg.setLevel(exiv2.LogMsg.Level.mute)
if not exiv2.XmpParser.initialize():
    raise ImportError("Exiv2's XMP toolkit did not start")
exiv2.XmpProperties.registerNs(ANALOG_EXIF, "AnalogExif")
exiv2.XmpProperties.registerNs(DARKTABLE, "darktable")


def read_image(source: bytes | Path | str) -> Any:
    """An exiv2.Image of a file (by path) or of bytes, its metadata read; Exiv2Error when Exiv2 cannot read it."""
    image = exiv2.ImageFactory.open(source if isinstance(source, bytes) else str(source))
    with _xmp:
        image.readMetadata()
    return image


def write_image(image: Any) -> None:
    """Write an exiv2.Image's metadata back to its file (Exiv2Error when it cannot)."""
    with _xmp:
        image.writeMetadata()


def encode_xmp(data: Any) -> tuple[int, str]:
    """An exiv2.XmpData as a compact XMP packet: (Exiv2's code, 0 when it succeeded; the packet)."""
    with _xmp:
        code, packet = exiv2.XmpParser.encode(data, exiv2.XmpParser.XmpFormatFlags.useCompactFormat)
    return int(code), str(packet)


__all__ = ["ANALOG_EXIF", "Exiv2Error", "encode_xmp", "exiv2", "read_image", "write_image"]
