"""The film's metadata as an XMP packet, written by Exiv2 (python-exiv2), never by string concatenation.

The schema is AnalogExif's (`http://analogexif.sourceforge.net/ns/`), which film photographers' tools already
read: Film, FilmMaker, FilmType, RollId, ExposureNumber, Developer, DevelopProcess, Lab. Keywords go to
`dc:subject`, which darktable and Lightroom import as tags; the notes to `dc:description`; and
`Iptc4xmpExt:DigitalSourceType` says the picture is a scan of a negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medianscan.errors import MedianscanError
from medianscan.exiv2_once import Exiv2Error, encode_xmp, exiv2, read_image
from medianscan.film import FilmRecord, clean_text

SCAN_OF_NEGATIVE = "http://cv.iptc.org/newscodes/digitalsourcetype/negativeFilm"
SCAN_OF_SLIDE = "http://cv.iptc.org/newscodes/digitalsourcetype/positiveFilm"


@dataclass(frozen=True)
class RollPlace:
    """Where a negative is in its roll."""

    roll_id: str  # the roll's folder name
    exposure_number: int | None  # the negative's number in the roll


def keywords(film: FilmRecord, place: RollPlace) -> list[str]:
    """The tags an editor imports: the film, its maker, camera, lens, developer and the roll."""
    pairs = (
        ("film", film.film),
        ("film maker", film.film_maker),
        ("camera", film.camera),
        ("lens", film.lens),
        ("developer", film.developer),
        ("process", film.process),
        ("iso", None if film.iso is None else str(film.iso)),
        ("roll", place.roll_id),
    )
    return [f"{name}: {value}" for name, value in pairs if value]


def film_packet(film: FilmRecord, place: RollPlace) -> bytes:
    """The XMP packet (UTF-8) for one negative of a roll shot on `film`."""
    data = exiv2.XmpData()
    fields = {
        "Film": film.film,
        "FilmMaker": film.film_maker,
        "FilmType": film.film_type,
        "Developer": film.developer,
        "DevelopProcess": film.process,
        "Lab": film.lab,
        "RollId": place.roll_id,
        "ExposureNumber": None if place.exposure_number is None else str(place.exposure_number),
    }
    for name, value in fields.items():
        if value:  # clean_text: a record stored before its text was checked cannot spoil the packet
            data[f"Xmp.AnalogExif.{name}"] = clean_text(value)
    subject = exiv2.Value.create(exiv2.TypeId.xmpBag)
    for word in keywords(film, place):
        subject.read(clean_text(word))
    if subject.count():
        data.add(exiv2.XmpKey("Xmp.dc.subject"), subject)
    if film.notes:
        data["Xmp.dc.description"] = f'lang="x-default" {clean_text(film.notes, multiline=True)}'
    slide = (film.film_type or "").lower() in ("slide", "positive", "reversal")
    data["Xmp.iptcExt.DigitalSourceType"] = SCAN_OF_SLIDE if slide else SCAN_OF_NEGATIVE
    code, packet = encode_xmp(data)
    if code != 0:
        raise MedianscanError(f"the film's XMP could not be written (Exiv2 error {code})")
    return packet.encode("utf-8")


def read_back(path: Path, packet: bytes) -> None:
    """The XMP in the written file `path` must hold, as Exiv2 reads it, every property of `packet` with its
    value: a packet other readers cannot parse loses the film's metadata for all of them. MedianscanError if not."""
    wanted, found = _properties(packet), _properties(path)
    missing = [key for key, value in wanted.items() if found.get(key) != value]
    if not wanted or missing:
        raise MedianscanError(f"{path}: the film's metadata does not read back ({', '.join(missing[:3])})")


def _properties(source: bytes | Path) -> dict[str, str]:
    """Every XMP property Exiv2 reads from a packet or a file, key -> value as text (empty when unreadable)."""
    try:
        image = read_image(source)
    except Exiv2Error:
        return {}
    return {str(d.key()): str(d.toString()) for d in image.xmpData()}
