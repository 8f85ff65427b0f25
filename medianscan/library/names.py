"""Folder-name templates such as `{date}-roll{roll:03d}`: they format new names and recognise existing ones."""

from __future__ import annotations

import datetime as dt
import logging
import re
import string
from pathlib import Path

from medianscan.errors import MedianscanError
from medianscan.library.manifest import DISCARDED

log = logging.getLogger(__name__)


def fresh_path(folder: Path, name: str) -> Path:
    """`folder/name`, or `folder/name-2`, `-3`... when that exists (a counter never overwrites)."""
    candidate = folder / name
    n = 1
    while candidate.exists():
        n += 1
        candidate = folder / f"{name}-{n}"
    return candidate


class Template:
    """A folder-name template such as `{date}-roll{roll:03d}`: formats names and recognises them."""

    def __init__(self, text: str, counter: str, what: str) -> None:
        self.text = text
        self.counter = counter
        allowed = {"date", counter}
        pattern = ""
        seen: set[str] = set()
        for literal, name, _spec, conversion in string.Formatter().parse(text):
            pattern += re.escape(literal)
            if name is None:
                continue
            if name not in allowed or conversion:
                raise MedianscanError(f"{what} {text!r} uses {{{name}}}: only {{date}} and {{{counter}}} are available")
            group = r"\d+" if name == counter else r".+?"
            pattern += f"(?P<{name}>{group})" if name not in seen else f"(?:{group})"
            seen.add(name)
        self.uses_counter = counter in seen
        if what == "negative_template" and not self.uses_counter:
            raise MedianscanError(f"negative_template {text!r} must contain {{negative}} to number the negatives")
        self.regex = re.compile(pattern + "$")
        try:
            sample = self.format(1, dt.date(2000, 1, 2))
        except (ValueError, KeyError, IndexError) as exc:
            raise MedianscanError(f"{what} {text!r} cannot be formatted ({exc})") from exc
        if not sample or "/" in sample or sample.startswith(".") or sample == DISCARDED:
            raise MedianscanError(f"{what} {text!r} does not give a usable folder name (got {sample!r})")

    def format(self, number: int, date: dt.date) -> str:
        return self.text.format(**{"date": date, self.counter: number})

    def number(self, name: str) -> int | None:
        """The counter in a folder name made by this template, or None if the name is not one of ours."""
        match = self.regex.match(name)
        if match is None:
            return None
        return int(match.group(self.counter)) if self.uses_counter else 0
