"""Vendor setting names and values, so one config works on Canon, Nikon, Sony and the rest.

Cameras disagree on names (`aperture` vs `f-number`, `imageformat` vs `imagequality`) and on how values are
spelled ('1/50' vs '0.0200s', 'sdram' vs 'Internal RAM'). Everything here is pure: it maps the user's key to
the widget names to try, and finds the camera choice that means the same as the user's value. The backends use
it to set a value and to prove the read-back is the value asked for.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable, Sequence

from medianscan.vocabulary import ALIASES, canonical_key

# Spellings that mean the same value, per config key (compared after `_plain`).
SYNONYMS: dict[str, tuple[frozenset[str], ...]] = {
    "capturetarget": (
        frozenset({"sdram", "internal ram", "ram", "internal memory"}),
        frozenset({"card", "memory card", "sd card", "cf card"}),
        frozenset({"card+sdram", "card + sdram", "memory card + internal ram"}),
    ),
    "focusmode": (
        frozenset({"manual", "mf", "manual focus", "manual-focus", "off"}),
        frozenset({"auto", "af", "autofocus", "on", "af-s", "one shot", "single"}),
    ),
}

_RAW_WORDS = ("raw", "nef", "arw", "cr2", "cr3", "orf", "raf", "rw2", "pef", "dng", "srw")
_JPEG_WORDS = ("jpeg", "jpg", "fine", "normal", "basic", "+")


def nearest_names(key: str, names: Iterable[str]) -> str:
    """' (did you mean 'aperture'?)' from the setting names a body has (its widgets and their config keys), or ''."""
    known = {n for name in names for n in (name, canonical_key(name))}
    close = difflib.get_close_matches(key.strip().lower(), sorted(known), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def widget_candidates(key: str) -> tuple[str, ...]:
    """Widget names to look up for a config key, most common first."""
    return ALIASES.get(canonical_key(key), (key.strip(),))


def _plain(value: str) -> str:
    return re.sub(r"\s+", " ", value.strip().lower())


def parse_seconds(value: str) -> float | None:
    """'1/50', '1/50s', '0.0200s', '2"', '2.5', '30s' -> seconds; None for 'bulb', 'auto' and the like."""
    text = _plain(value).replace("sec", "s").rstrip()
    text = text.removesuffix("s").removesuffix('"').strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)", text)
    if match:
        den = float(match.group(2))
        return float(match.group(1)) / den if den else None
    try:
        seconds = float(text)
    except ValueError:
        return None
    return seconds if seconds > 0 else None


def parse_fnumber(value: str) -> float | None:
    """'f/8', 'F8', '8', '8.0' -> 8.0."""
    text = _plain(value).removeprefix("f/").removeprefix("f").strip()
    try:
        number = float(text)
    except ValueError:
        return None
    return number if number > 0 else None


def parse_iso(value: str) -> float | None:
    """'100', 'ISO 100', 'iso100' -> 100.0; None for 'Auto'."""
    text = _plain(value).removeprefix("iso").strip()
    try:
        return float(text)
    except ValueError:
        return None


def _close(a: float, b: float, rel: float, absolute: float = 0.0) -> bool:
    return abs(a - b) <= max(rel * max(abs(a), abs(b)), absolute)


# config key -> (parser, relative tolerance, absolute tolerance) for values compared as numbers.
# Cameras print shutter speeds with 4 decimals ('0.0001s' for 1/8000): allow half a unit in the last place.
_NUMERIC: dict[str, tuple[Callable[[str], float | None], float, float]] = {
    "shutterspeed": (parse_seconds, 0.01, 0.00005 + 1e-12),
    "aperture": (parse_fnumber, 0.01, 0.05),
    "iso": (parse_iso, 0.0, 0.0),
}


def same_value(key: str, wanted: str, actual: str) -> bool:
    """True when `actual` (as the camera spells it) means `wanted` (as the user spelled it) for `key`."""
    key = canonical_key(key)
    if _plain(wanted) == _plain(actual):
        return True
    numeric = _NUMERIC.get(key)
    if numeric is not None:
        parse, rel, absolute = numeric
        a, b = parse(wanted), parse(actual)
        return a is not None and b is not None and _close(a, b, rel, absolute)
    if key == "imageformat":
        return _is_plain_raw(wanted) and _is_plain_raw(actual)
    if any(_plain(wanted) in group and _plain(actual) in group for group in SYNONYMS.get(key, ())):
        return True
    try:
        return float(_plain(wanted)) == float(_plain(actual))
    except ValueError:
        return False


def _is_plain_raw(value: str) -> bool:
    """A RAW-only format choice ('RAW', 'NEF (Raw)', 'cRAW'), not RAW+JPEG."""
    text = _plain(value)
    return any(word in text for word in _RAW_WORDS) and not any(word in text for word in _JPEG_WORDS)


def match_choice(key: str, wanted: str, choices: Sequence[str]) -> str | None:
    """The camera choice that means `wanted`, preferring an exact spelling, then the nearest number."""
    for choice in choices:
        if _plain(choice) == _plain(wanted):
            return choice
    matches = [choice for choice in choices if same_value(key, wanted, choice)]
    if len(matches) <= 1:
        return matches[0] if matches else None
    key = canonical_key(key)
    parse = {"shutterspeed": parse_seconds, "aperture": parse_fnumber, "iso": parse_iso}.get(key)
    target = parse(wanted) if parse else None
    if parse is None or target is None:
        return matches[0]
    return min(matches, key=lambda c: abs((parse(c) or 0.0) - target))


NEAREST = 5  # choices a refused value's sentence names (a body offers 37 shutter speeds)


def nearest_choices(key: str, wanted: str, choices: Sequence[str]) -> str:
    """'1/100, 1/80, 1/60, 1/50 or 1/40 (the nearest of 37; ...)': the body's choices nearest `wanted` (in stops
    for shutter, aperture and ISO, by spelling otherwise), in the body's order; all of them when they are few; the
    range when `wanted` is no number of a numeric setting."""
    if len(choices) <= NEAREST:
        return _either(list(choices))
    every = f"`medianscan camera show` lists all {len(choices)}"
    parse = {"shutterspeed": parse_seconds, "aperture": parse_fnumber, "iso": parse_iso}.get(canonical_key(key))
    if parse is not None:
        numbered = [(i, v) for i, v in enumerate(map(parse, choices)) if v is not None and v > 0]
        target = parse(wanted)
        if target is None or target <= 0:
            return f"{choices[numbered[0][0]]} to {choices[numbered[-1][0]]} ({every})" if numbered else every
        near = sorted(numbered, key=lambda t: abs(math.log2(t[1] / target)))[:NEAREST]
        return f"{_either([choices[i] for i, _ in sorted(near)])} nearest ({every})"
    close = set(difflib.get_close_matches(_plain(wanted), [_plain(c) for c in choices], n=NEAREST, cutoff=0.3))
    picked = [c for c in choices if _plain(c) in close][:NEAREST]
    return f"{_either(picked)} nearest ({every})" if picked else f"{_either(list(choices[:NEAREST]))} ... ({every})"


def _either(values: list[str]) -> str:
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " or " + values[-1]


def true_seconds(label: str) -> float | None:
    """The real duration behind a shutter label: standard labels are rounded third-stops ("1/125" is 1/128 s,
    "1/3" is 0.315 s); a value no third-stop is near (an exact "0.0200s") is taken as it is."""
    nominal = parse_seconds(label)
    if nominal is None or nominal <= 0:
        return None
    third = round(3 * math.log2(nominal)) / 3
    exact = 2.0**third
    return exact if abs(exact / nominal - 1) < 0.06 else nominal


def exposure_values(settings: dict[str, str]) -> tuple[float | None, float | None, float | None]:
    """(iso, exposure time in s, f-number) from a settings dict keyed by config keys or widget names."""
    iso = shutter = aperture = None
    for name, value in settings.items():
        key = canonical_key(name)
        if key == "iso":
            iso = parse_iso(value)
        elif key == "shutterspeed":
            shutter = parse_seconds(value)
        elif key == "aperture":
            aperture = parse_fnumber(value)
    return iso, shutter, aperture
