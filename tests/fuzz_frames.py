"""Damage the real CR2 many ways and read each copy as a frame; one JSON line per case on stdout.

Run as its own process (`python -X faulthandler -m tests.fuzz_frames RAW FOLDER [K/N]`) by tests/test_fuzz.py, so
a crash in a native library (LibRaw, Exiv2, tifffile's codecs) fails that test with the case that caused it instead
of killing the test run; with K/N it reads the cases whose number is K modulo N (the test runs N such processes
side by side, one a core, each in its own FOLDER: every case is read by one of them). The cases: the file cut at
CUTS positions from its first byte to its last, and bytes flipped in every entry of its TIFF structure (the count
and the value or offset of each tag of each IFD, the EXIF IFD's included), where a damaged header sends a reader
astray.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tifffile

from medianscan.blend.reading import frames
from medianscan.errors import MedianscanError

CUTS = 24


def cases(data: bytes, raw: Path) -> Iterator[tuple[str, bytes]]:
    for cut in np.unique(np.geomspace(1, len(data) - 1, CUTS).astype(int)):
        yield f"cut at byte {cut}", data[: int(cut)]
    with tifffile.TiffFile(raw) as tif:
        pages = [page for page in tif.pages if isinstance(page, tifffile.TiffPage)]
        entries = [tag.offset for page in pages for tag in page.tags.values()]
        exif = tif.pages.first.tags.get(34665)
        if exif is not None:  # the ExifIFD: its offset is the pointer entry's value
            start = int.from_bytes(data[exif.offset + 8 : exif.offset + 12], "little")
            count = int.from_bytes(data[start : start + 2], "little")
            entries += [start + 2 + 12 * i for i in range(count)]
    for at in entries:
        for field, span in (("count", (4, 8)), ("value", (8, 12)))[1 if at < entries[-1] // 2 else 0 :]:
            damaged = bytearray(data)
            for i in range(*span):
                damaged[at + i] ^= 0xA5
            tag = int.from_bytes(data[at : at + 2], "little")
            yield f"tag {tag}'s {field} flipped at byte {at}", bytes(damaged)


def main(raw: Path, folder: Path, shard: str = "0/1") -> int:
    k, n = map(int, shard.split("/"))
    data = raw.read_bytes()
    original = frames.read_frame(raw).pixels
    for number, (name, damaged) in enumerate(cases(data, raw)):
        if number % n != k:
            continue
        path = folder / "IMG_0001.CR2"
        path.write_bytes(damaged)
        try:
            frame = frames.read_frame(path)
            same = frame.pixels.shape == original.shape and bool(np.array_equal(frame.pixels, original))
            result = {"case": name, "outcome": "read", "same_pixels": same}
            if not same:  # kept for the caller to blend among good frames: it must be named there
                kept = folder / f"different-{len(list(folder.glob('different-*')))}.CR2"
                path.rename(kept)
                result["file"] = str(kept)
        except MedianscanError as exc:
            result = {"case": name, "outcome": "named", "message": str(exc)}
        except Exception as exc:  # the defect this fuzz looks for: anything but a sentence
            result = {"case": name, "outcome": "exception", "message": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1]), Path(sys.argv[2]), *sys.argv[3:]))
