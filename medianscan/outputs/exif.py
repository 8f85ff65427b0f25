"""The source frame's metadata carried whole into a blend's DNG, by Exiv2 (python-exiv2), not a list of our own.

Editors read more than exposure and lens from EXIF: darktable's default exposure undoes the camera's exposure
compensation (ExposureBiasValue), RawTherapee and darktable look the lens up by its maker-note name, Lightroom
shows the capture settings. So every EXIF tag of the source goes over (the ExifIFD, GPS, interoperability and
the maker note, which Exiv2 re-writes with its offsets fixed), plus IFD0's descriptive tags (artist, copyright,
rating). What describes the file itself stays the DNG writer's: image structure, preview, DNG and colour tags,
orientation, software and description. MakerNoteSafety says the maker note survived safely, as the DNG
specification asks.
"""

from __future__ import annotations

from pathlib import Path

from medianscan.errors import MedianscanError
from medianscan.exiv2_once import Exiv2Error, exiv2, read_image, write_image

# IFD0 tags that describe the picture rather than the file; everything else there is the writer's.
_DESCRIPTIVE_IFD0 = frozenset(
    {
        "Exif.Image.Artist",
        "Exif.Image.Copyright",
        "Exif.Image.DateTime",
        "Exif.Image.Rating",
        "Exif.Image.RatingPercent",
        "Exif.Image.LensInfo",
        "Exif.Image.TimeZoneOffset",
        "Exif.Image.SelfTimerMode",
    }
)
# Groups carried whole besides the maker-note groups (Exiv2 knows which those are).
_WHOLE_GROUPS = frozenset({"Photo", "GPSInfo", "Iop"})
MAKER_NOTE_SAFETY = "Exif.Image.MakerNoteSafety"


def carried(key: exiv2.ExifKey | str) -> bool:
    """True for an EXIF key that goes from the source frame into the blend."""
    key = exiv2.ExifKey(key) if isinstance(key, str) else key
    group = key.groupName()
    if group in _WHOLE_GROUPS or exiv2.ExifTags.isMakerGroup(group):
        return True
    return group == "Image" and str(key.key()) in _DESCRIPTIVE_IFD0


def carry_exif(target: Path, source: Path) -> int:
    """Copy every carried EXIF tag of `source` into the (already written) TIFF-based `target`, replacing the tags
    the writer put there under the same keys; returns how many were carried. A source whose metadata Exiv2
    cannot read carries nothing (the writer's own tags stay); a target Exiv2 cannot write is a MedianscanError."""
    try:
        found = read_image(source)
    except Exiv2Error:
        return 0
    wanted = [datum for datum in found.exifData() if carried(datum.key())]
    if not wanted:
        return 0
    try:
        image = read_image(target)
        exif = image.exifData()
        for datum in wanted:
            key = exiv2.ExifKey(datum.key())
            while (old := exif.findKey(key)) != exif.end():
                exif.erase(old)
            exif.add(datum)
        if any(exiv2.ExifTags.isMakerGroup(d.groupName()) for d in wanted):
            exif[MAKER_NOTE_SAFETY] = exiv2.UShortValue(1)  # safe: Exiv2 re-wrote it with its offsets fixed
        write_image(image)
    except Exiv2Error as exc:
        raise MedianscanError(f"{target}: the source's metadata could not be written into it (Exiv2: {exc})") from exc
    return len(wanted)
