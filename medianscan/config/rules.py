"""The range and format rules of the options, each defined once: the loader applies them key by key, and
`medianscan blend` applies the blend section's to its flags.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import shlex
import typing
from types import ModuleType
from typing import Any

from medianscan.config.listen import parse_listen
from medianscan.config.schema import DEVICE_ID_PATTERN, GROUP_PATTERN, BlendConfig
from medianscan.errors import MedianscanError
from medianscan.library.names import Template

ecodes: ModuleType | None
try:  # evdev's key-name table, where it is installed (Linux); elsewhere names are checked by their shape
    from evdev import ecodes
except ImportError:  # pragma: no cover - evdev is a dependency on Linux
    ecodes = None


def _at_least(low: float, *, strict: bool = False) -> typing.Callable[[Any], str | None]:
    """A range check: the value must be >= low (or > low when strict)."""

    def check(value: Any) -> str | None:
        if value is None or (value > low if strict else value >= low):
            return None
        return f"must be {'greater than' if strict else 'at least'} {low}, got {value}"

    return check


def _template_check(counter: str, what: str) -> typing.Callable[[Any], str | None]:
    """A folder-name template, checked by the very class the library formats it with (one set of rules)."""

    def check(value: Any) -> str | None:

        try:
            Template(value, counter, what)
        except MedianscanError as exc:
            return str(exc).replace(f"{what} {value!r} ", "", 1)
        except ValueError as exc:  # unbalanced braces fail in string.Formatter itself
            return f"is not a valid template ({exc})"
        return None

    return check


def _sim_size(value: Any) -> str | None:
    """Whole 2x2 Bayer cells, and enough of them to show a scene."""
    if value < 32 or value % 2:
        return f"must be an even number of pixels, at least 32, got {value}"
    return None


def _winsor(value: Any) -> str | None:
    return None if 0 <= value < 0.5 else f"must be in [0, 0.5), got {value}"


def _device(value: Any) -> str | None:
    if value is None or value.startswith("/") or DEVICE_ID_PATTERN.match(value):
        return None
    return f"must be a /dev/input/by-id/... path or vendor:product in hex (e.g. 0c45:7403), got {value!r}"


def _key_name(value: Any) -> str | None:
    """Footswitch keys are evdev names (KEY_B, BTN_LEFT), checked against evdev's table when installed."""
    known = [] if ecodes is None else [name for name in ecodes.ecodes if name.startswith(("KEY_", "BTN_"))]
    if value in known:
        return None
    if not known and re.match(r"^(KEY|BTN)_[A-Z0-9_]+$", value):
        return None
    hint = difflib.get_close_matches(value.upper(), known, n=1)
    suffix = f" (did you mean {hint[0]!r}?)" if hint else " (names look like KEY_B or BTN_LEFT; see `evtest`)"
    return f"{value!r} is not an evdev key name{suffix}"


def _command(value: Any) -> str | None:
    try:
        words = shlex.split(value)
    except ValueError as exc:
        return f"cannot split {value!r} into words ({exc})"
    return None if words else "is an empty command"


def _listen(value: Any) -> str | None:
    if value is None:
        return None
    try:
        parse_listen(value)
    except ValueError as exc:
        return str(exc)
    return None


def _token(value: Any) -> str | None:
    if value is None or len(value) >= 16:
        return None
    return "must be at least 16 characters (for example from `openssl rand -hex 16`)"


def _group(value: Any) -> str | None:
    return None if GROUP_PATTERN.match(value) else f"must be folder, count:N or gap:SECONDS, got {value!r}"


def _port(value: Any) -> str | None:
    return None if value is None or ":" in value else f"must look like usb:001,004, got {value!r}"


# (dataclass name, field) -> check of the converted value; returns the problem or None.
_CHECKS: dict[tuple[str, str], typing.Callable[[Any], str | None]] = {
    ("Config", "frames"): _at_least(3),
    ("Config", "workers"): _at_least(1),
    ("Config", "queue_size"): _at_least(1),
    ("Config", "roll_template"): _template_check("roll", "roll_template"),
    ("Config", "negative_template"): _template_check("negative", "negative_template"),
    ("CameraConfig", "port"): _port,
    ("CameraConfig", "settle_seconds"): _at_least(0),
    ("CameraConfig", "keep_alive_seconds"): _at_least(0),
    ("CameraConfig", "reconnect_max_seconds"): _at_least(0, strict=True),
    ("SimulatedConfig", "width"): _sim_size,
    ("SimulatedConfig", "height"): _sim_size,
    ("SimulatedConfig", "seconds_per_frame"): _at_least(0),
    ("SimulatedConfig", "flicker_frame"): _at_least(1),
    ("SimulatedConfig", "shifted_frame"): _at_least(1),
    ("SimulatedConfig", "dead_after_frames"): _at_least(0),
    ("SimulatedConfig", "preview_fps"): _at_least(0, strict=True),
    ("SimulatedConfig", "preview_focus_period_seconds"): _at_least(0),
    ("SimulatedConfig", "light"): _at_least(0, strict=True),
    ("BlendConfig", "kappa"): _at_least(0, strict=True),
    ("BlendConfig", "iterations"): _at_least(1),
    ("BlendConfig", "winsor_fraction"): _winsor,
    ("BlendConfig", "level_tolerance"): _at_least(0, strict=True),  # 0 would refuse every real stack
    ("BlendConfig", "max_shift_px"): _at_least(0, strict=True),
    ("FootswitchConfig", "device"): _device,
    ("FootswitchConfig", "debounce_ms"): _at_least(0),
    ("ConsoleConfig", "listen"): _listen,
    ("ConsoleConfig", "token"): _token,
    ("ConsoleConfig", "live_fps"): _at_least(0, strict=True),
    ("WatchConfig", "group"): _group,
    ("WatchConfig", "quiet_seconds"): _at_least(0, strict=True),
    ("WatchConfig", "frames"): _at_least(3),
    ("WatchConfig", "settle_seconds"): _at_least(0, strict=True),
}


# Checks of each key of a dict field, and of each item of a list field (so the error points at its line).
def blend_problems(blend: BlendConfig, spell: typing.Callable[[str], str] = str) -> list[str]:
    """Every blend option out of range, as "name: what is wrong" (`spell` names it: a config key or a CLI flag):
    the one rule the config loader and `medianscan blend` share."""
    problems = []
    for f in dataclasses.fields(BlendConfig):
        check = _CHECKS.get(("BlendConfig", f.name))
        if check is not None and (problem := check(getattr(blend, f.name))):
            problems.append(f"{spell(f.name)}: {problem}")
    return problems


_KEY_CHECKS: dict[tuple[str, str], typing.Callable[[Any], str | None]] = {
    ("FootswitchConfig", "keys"): _key_name,
}
_ITEM_CHECKS: dict[tuple[str, str], typing.Callable[[Any], str | None]] = {
    ("HooksConfig", "burst_done"): _command,
    ("HooksConfig", "blend_done"): _command,
    ("HooksConfig", "error"): _command,
}
