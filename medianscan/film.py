"""What a roll is (the film, how it was shot and developed) and the rule its free text must keep: every DNG of the
roll carries it in its XMP (AnalogExif), so text XML cannot hold, or too much of it, is refused where it is given
(new-roll, the config's `film`, the console) and cleaned where it was stored before the rule existed."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from medianscan.record_json import from_json, to_json

TEXT_LIMIT = 200  # characters of a film field
NOTES_LIMIT = 2000  # characters of the notes


def text_problem(field_name: str, value: str, *, multiline: bool = False) -> str | None:
    """Why `value` cannot be a free-text field that every DNG of a roll will carry in its XMP (None: it can):
    text that is not valid Unicode (a lone surrogate, from a byte that is not UTF-8), characters XML forbids (NUL,
    other control characters, U+FFFE, U+FFFF), line breaks in a one-line field, or too much of it."""
    limit = NOTES_LIMIT if multiline else TEXT_LIMIT
    if len(value) > limit:
        return f"{field_name} is {len(value):,} characters long; at most {limit:,} are kept with a roll"
    for position, char in enumerate(value):
        code = ord(char)
        if 0xD800 <= code <= 0xDFFF:
            return f"{field_name} is not valid text at character {position + 1} (a byte that is not UTF-8?)"
        allowed_break = multiline and char in "\t\n\r"
        if (code < 0x20 or 0x7F <= code < 0xA0 or code in (0xFFFE, 0xFFFF)) and not allowed_break:
            return f"{field_name} holds a control character (U+{code:04X}) at character {position + 1}"
    return None


def clean_text(value: str, *, multiline: bool = False) -> str:
    """`value` with whatever `text_problem` would refuse replaced (U+FFFD) and cut to its limit: for records
    accepted before the rule existed, so that nothing already stored can make a later blend fail."""
    kept = "".join(char if text_problem("", char, multiline=multiline) is None else "\ufffd" for char in value)
    return kept[: NOTES_LIMIT if multiline else TEXT_LIMIT]


@dataclass(frozen=True)
class FilmRecord:
    """What a roll is: the film and how it was shot and developed, as the operator gives it at `new-roll` (or the
    config's `film` defaults). Every DNG of the roll carries it (AnalogExif XMP), and so does every sidecar."""

    film: str | None = None  # "Ilford HP5 Plus 400"
    film_maker: str | None = None  # "Ilford"
    film_type: str | None = None  # "B&W negative", "color negative", "slide"
    iso: int | None = None  # the box speed, or the speed it was shot at
    camera: str | None = None  # the film camera, "Nikon F3"
    lens: str | None = None
    developer: str | None = None  # "ID-11 1+1"
    process: str | None = None  # "C-41", "E-6", "push +1"
    lab: str | None = None
    notes: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The fields given (a field saying nothing is left out)."""
        return to_json(self, drop_none=True)

    @classmethod
    def from_json(cls, data: object, *, stored: bool = False) -> FilmRecord:
        """A film record from JSON; an unknown key, a wrong type or text `text_problem` refuses is a ValueError
        naming it. A `stored` record (a roll's, accepted before) has such text cleaned instead."""
        if not isinstance(data, dict):
            raise ValueError('a film record is a JSON object such as {"film": "Ilford HP5 Plus 400"}')
        known = [f.name for f in dataclasses.fields(cls)]
        cleaned: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise ValueError(f"unknown film field {str(key)[:40]!r} (known: {', '.join(known)})")
            if key == "iso":
                whole = isinstance(value, int) and not isinstance(value, bool)
                if value is not None and not (whole and 0 < value < 10**6):
                    raise ValueError(f"iso must be a whole number from 1 to 999999, not {str(value)[:40]!r}")
                cleaned[key] = value
            elif value is not None and not isinstance(value, str):
                raise ValueError(f"{key} must be text, not {type(value).__name__}")
            elif isinstance(value, str):
                multiline = key == "notes"
                problem = text_problem(key, value, multiline=multiline)
                if problem is not None and not stored:
                    raise ValueError(problem)
                cleaned[key] = clean_text(value, multiline=multiline).strip() or None
        return from_json(cls, cleaned, what="a film record")

    def merged_over(self, defaults: FilmRecord) -> FilmRecord:
        """These fields, and the defaults' where these say nothing."""
        return FilmRecord(**(defaults.to_json() | self.to_json()))
