"""The range and format rules of the options, each defined once: the loader applies them key by key, and
`medianscan blend` applies the blend section's to its flags.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import shlex
import typing
from types import ModuleType
from typing import Any

from medianscan.config.listen import parse_listen
from medianscan.config.schema import DEVICE_ID_PATTERN, GROUP_PATTERN, LINE_FIELDS, BlendConfig, Config, RigConfig
from medianscan.errors import MedianscanError
from medianscan.film import FilmRecord, text_problem
from medianscan.library.names import Template


def _within(
    low: float, high: float, *, above: bool = False, why: str = "", hint: typing.Callable[[Any], str] | None = None
) -> typing.Callable[[Any], str | None]:
    """A range check: low <= value <= high (low < value with `above`), and a finite number; `why` says why the
    range is what it is, `hint` what the user probably meant."""

    def check(value: Any) -> str | None:
        if value is None:
            return None
        inside = math.isfinite(value) and (value > low if above else value >= low) and value <= high
        if inside:
            return None
        shown = f"{value:g}" if isinstance(value, float) else str(value) if abs(value) < 10**12 else f"{value:.3g}"
        lower = f"more than {low:g}" if above else f"at least {low:g}"
        extra = hint(value) if hint is not None and math.isfinite(value) else ""
        return f"must be {lower} and at most {high:g}{f' ({why})' if why else ''}, got {shown}{extra}"

    return check


def _percent_hint(value: Any) -> str:
    return f"; did you mean {value / 100:g} ({value:g} %)?" if 1 <= value <= 100 else ""


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
    """Whole 2x2 Bayer cells, and enough of them to show a scene (and few enough to fit in memory)."""
    if value < 32 or value > 16384 or value % 2:
        return f"must be an even number of pixels from 32 to 16384, got {value}"
    return None


def _winsor(value: Any) -> str | None:
    return None if math.isfinite(value) and 0 <= value < 0.5 else f"must be at least 0 and below 0.5, got {value:g}"


def _film_text(name: str) -> typing.Callable[[Any], str | None]:
    """A film field: text a DNG's XMP can carry (film.text_problem, the rule every entry point shares)."""

    def check(value: Any) -> str | None:
        problem = None if value is None else text_problem(name, value, multiline=name == "notes")
        return None if problem is None else problem.removeprefix(f"{name} ")

    return check


def _device(value: Any) -> str | None:
    if value is None or value.startswith("/") or DEVICE_ID_PATTERN.match(value):
        return None
    return f"must be a /dev/input/by-id/... path or vendor:product in hex (e.g. 0c45:7403), got {value!r}"


def _key_name(value: Any) -> str | None:
    """Footswitch keys are evdev names (KEY_B, BTN_LEFT), checked against evdev's table when installed (imported
    here, for a config that names keys: evdev's package brings asyncio, which a blend worker never needs)."""
    ecodes: ModuleType | None
    try:  # evdev's key-name table, where it is installed (Linux); elsewhere names are checked by their shape
        from evdev import ecodes
    except ImportError:  # pragma: no cover - evdev is a dependency on Linux
        ecodes = None
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


def _pitch(value: Any) -> str | None:
    if 1 <= abs(value) <= 1000:
        return None
    return f"must be 1 to 1000 mm (or -1 to -1000: advancing the other way), got {value}"


MAX_FRAMES = 255  # frames of one stack, at most
_frames = _within(3, MAX_FRAMES, why="a stack of more frames would not fit in memory or time")
FILM_TEXT_FIELDS = [f.name for f in dataclasses.fields(FilmRecord) if f.name != "iso"]


def _axis_letter(value: Any) -> str | None:
    return None if value in ("X", "Y", "Z", "A") else f"must be X, Y, Z or A, got {value!r}"


# (dataclass name, field) -> check of the converted value; returns the problem or None.
CHECKS: dict[tuple[str, str], typing.Callable[[Any], str | None]] = {
    ("Config", "frames"): lambda v: None if v == "auto" else _frames(v),
    ("AutoFrames", "snr"): _within(1, 100000, why="the signal-to-noise ratio the blend reaches"),
    ("AutoFrames", "min"): _within(3, MAX_FRAMES, why="a blend needs 3 frames"),
    ("AutoFrames", "max"): _within(3, MAX_FRAMES, why="a stack of more frames would not fit in memory or time"),
    ("Config", "workers"): _within(1, 64),
    ("Config", "queue_size"): _within(1, 1000),
    ("Config", "roll_template"): _template_check("roll", "roll_template"),
    ("Config", "negative_template"): _template_check("negative", "negative_template"),
    ("CameraConfig", "port"): _port,
    ("CameraConfig", "settle_seconds"): _within(0, 60),
    ("CameraConfig", "keep_alive_seconds"): _within(0, 3600),
    ("CameraConfig", "reconnect_max_seconds"): _within(0, 3600, above=True),
    ("SimulatedConfig", "seed"): _within(0, 2**32 - 1),
    ("SimulatedConfig", "width"): _sim_size,
    ("SimulatedConfig", "height"): _sim_size,
    ("SimulatedConfig", "seconds_per_frame"): _within(0, 60),
    ("SimulatedConfig", "flicker_frame"): _within(1, MAX_FRAMES),
    ("SimulatedConfig", "shifted_frame"): _within(1, MAX_FRAMES),
    ("SimulatedConfig", "dead_after_frames"): _within(0, 10**6),
    ("SimulatedConfig", "preview_fps"): _within(0, 120, above=True),
    ("SimulatedConfig", "preview_focus_period_seconds"): _within(0, 3600),
    ("SimulatedConfig", "light"): _within(0, 1000, above=True),
    ("BlendConfig", "kappa"): _within(0, 100, above=True),
    ("BlendConfig", "iterations"): _within(1, 100),
    ("BlendConfig", "winsor_fraction"): _winsor,
    # 0 would refuse every real stack; a whole frame off by half is no flicker but another exposure
    ("BlendConfig", "level_tolerance"): _within(0, 0.5, above=True, why="a fraction", hint=_percent_hint),
    ("BlendConfig", "max_shift_px"): _within(0, 100, above=True),
    ("FootswitchConfig", "device"): _device,
    ("FootswitchConfig", "debounce_ms"): _within(0, 10000),
    ("ConsoleConfig", "listen"): _listen,
    ("ConsoleConfig", "token"): _token,
    ("ConsoleConfig", "live_fps"): _within(0, 120, above=True),
    ("StripConfig", "frames"): _within(0, 100),
    ("StripConfig", "pitch_mm"): _within(1, 1000),
    ("StripConfig", "gap_mm"): _within(0, 100),
    ("StripConfig", "slip"): _within(0, 0.5, why="a fraction of each move"),
    ("StripConfig", "seed"): _within(0, 2**32 - 1),
    ("StripConfig", "start_mm"): _within(-10_000, 10_000),
    ("RigConfig", "baud"): _within(300, 4_000_000),
    ("RigConfig", "axis"): _axis_letter,
    ("RigConfig", "y_axis"): _axis_letter,
    ("RigConfig", "pitch_mm"): _pitch,
    ("RigConfig", "picture_mm"): _within(1, 1000),
    ("RigConfig", "feed_mm_per_minute"): _within(1, 100_000),
    ("RigConfig", "reply_timeout_seconds"): _within(0, 600, above=True),
    ("RigConfig", "move_timeout_seconds"): _within(0, 3600, above=True),
    ("RigConfig", "centre_tolerance"): _within(0, 0.5, above=True, why="a share of the picture's width"),
    ("RigConfig", "far"): _within(0, 1, above=True, why="a share of the pitch"),
    ("RigConfig", "corrections"): _within(0, 20),
    ("RigConfig", "settle_seconds"): _within(0, 600, above=True),
    ("RigConfig", "boot_seconds"): _within(0, 60),
    ("RigConfig", "frames_without_live_view"): _within(1, 100),
    ("LineProtocol", "steps_per_mm"): _within(0, 1e6, above=True),
    ("LineProtocol", "y_steps_per_mm"): _within(0, 1e6, above=True),
    ("SheetConfig", "width_mm"): _within(0, 1000),
    ("SheetConfig", "height_mm"): _within(0, 1000),
    ("SheetConfig", "mm_per_pixel"): _within(0.0005, 1, why="the picture's scale: a photosite's width on the sheet"),
    ("SheetConfig", "slip"): _within(0, 0.5, why="a fraction of each move"),
    ("SheetConfig", "rotation_degrees"): _within(-10, 10, why="a stage off square by a few degrees at most"),
    ("SheetConfig", "backlash_mm"): _within(0, 10),
    ("SheetConfig", "seed"): _within(0, 2**32 - 1),
    ("SheetConfig", "negatives"): _within(1, 40, why="a sheet, or a strip's negatives (a 220 roll holds 32)"),
    ("SheetConfig", "gap_mm"): _within(0, 50, why="the clear base between a strip's negatives"),
    ("SheetConfig", "gap_variation_mm"): _within(0, 20),
    ("SheetConfig", "film_mm"): _within(0, 1000, above=True, why="the film's height across the strip"),
    ("SheetConfig", "leader_mm"): _within(0, 1000),
    ("TilesConfig", "gap_mm"): _within(0, 50, why="the strip's nominal gap between negatives"),
    # a strip run stops after 40 negatives (tile_strip.MOST_NEGATIVES): a 220 roll holds 32
    ("TilesConfig", "negatives_without_live_view"): _within(1, 40, why="negatives placed by the pitch alone"),
    ("WatchConfig", "group"): _group,
    ("OutputsConfig", "editors"): lambda v: None if len(set(v)) == len(v) else f"names an editor twice: {v}",
    ("WatchConfig", "quiet_seconds"): _within(0, 86400, above=True),
    ("WatchConfig", "frames"): _within(3, MAX_FRAMES),
    ("WatchConfig", "settle_seconds"): _within(0, 3600, above=True),
    **{("FilmRecord", name): _film_text(name) for name in FILM_TEXT_FIELDS},
    ("FilmRecord", "iso"): _within(1, 999999),
}


# Checks of each key of a dict field, and of each item of a list field (so the error points at its line).
def blend_problems(blend: BlendConfig, spell: typing.Callable[[str], str] = str) -> list[str]:
    """Every blend option out of range, as "name: what is wrong" (`spell` names it: a config key or a CLI flag):
    the one rule the config loader and `medianscan blend` share."""
    problems = []
    for f in dataclasses.fields(BlendConfig):
        check = CHECKS.get(("BlendConfig", f.name))
        if check is not None and (problem := check(getattr(blend, f.name))):
            problems.append(f"{spell(f.name)}: {problem}")
    return problems


KEY_CHECKS: dict[tuple[str, str], typing.Callable[[Any], str | None]] = {
    ("FootswitchConfig", "keys"): _key_name,
}
ITEM_CHECKS: dict[tuple[str, str], typing.Callable[[Any], str | None]] = {
    ("HooksConfig", "burst_done"): _command,
    ("HooksConfig", "blend_done"): _command,
    ("HooksConfig", "stitch_done"): _command,
    ("HooksConfig", "stitch_failed"): _command,
    ("HooksConfig", "error"): _command,
}


def cross_problems(cfg: Config) -> list[tuple[str, str]]:
    """Rules that involve more than one option: (key, what is wrong)."""
    problems = []
    if cfg.auto_frames.min > cfg.auto_frames.max:
        problems.append(("auto_frames.min", f"is {cfg.auto_frames.min}, more than auto_frames.max "
                                            f"({cfg.auto_frames.max})"))  # fmt: skip
    most = cfg.frames_range()[1]
    sim = cfg.camera.simulated
    for name in ("flicker_frame", "shifted_frame"):
        value = getattr(sim, name)
        if value is not None and value > most:
            problems.append((f"camera.simulated.{name}", f"is frame {value} but a burst has at most {most} frames"))
    tiles = cfg.tiles
    if tiles.strip and tiles.format is None and None in (tiles.width_mm, tiles.height_mm) and tiles.columns:
        problems.append(("tiles.strip", "is true, but tiles gives a grid of columns and rows, and a strip advances by "
                                        "the negatives' width: give tiles.format (645, 6x6, 6x7, ...) or "
                                        "tiles.width_mm and height_mm"))  # fmt: skip
    return problems + _rig_problems(cfg)


def _rig_problems(cfg: Config) -> list[tuple[str, str]]:
    """The rig's and the simulated copy stand's cross rules."""
    sim, rig = cfg.camera.simulated, cfg.rig
    strip, sheet = sim.strip, sim.sheet
    problems: list[tuple[str, str]] = []
    if strip.gap_mm >= strip.pitch_mm:
        problems.append(("camera.simulated.strip.gap_mm", f"is {strip.gap_mm:g}, not less than the pitch"))
    if any(not 1 <= k <= strip.frames for k in strip.blank):
        problems.append(("camera.simulated.strip.blank", f"names frames beyond the strip's {strip.frames}"))
    if any(not 1 <= k <= sheet.negatives for k in sheet.blank):
        problems.append(("camera.simulated.sheet.blank", f"names negatives beyond the strip's {sheet.negatives}"))
    if sheet.gap_variation_mm > sheet.gap_mm:
        problems.append(("camera.simulated.sheet.gap_variation_mm", f"is {sheet.gap_variation_mm:g}, more than "
                         f"gap_mm ({sheet.gap_mm:g}): a gap would be negative"))  # fmt: skip
    if strip.frames > 0 and sheet.present:
        problems.append(("camera.simulated.sheet", "is set as well as camera.simulated.strip.frames: the copy "
                                                   "stand holds a strip or a sheet, not both"))  # fmt: skip
    if sheet.present and sheet.picture is None and (sheet.width_mm == 0 or sheet.height_mm == 0):
        problems.append(("camera.simulated.sheet", "needs width_mm and height_mm (or a picture to take them from)"))
    if sheet.picture is not None and not sheet.picture.is_file():
        problems.append(("camera.simulated.sheet.picture", f"{sheet.picture} is not a file"))
    if rig.picture_mm >= abs(rig.pitch_mm):
        problems.append(("rig.picture_mm", f"is {rig.picture_mm:g}, not less than the pitch ({abs(rig.pitch_mm):g})"))
    if rig.axes == "xy" and rig.y_axis == rig.axis:
        problems.append(("rig.y_axis", f"is {rig.y_axis}, the same letter as rig.axis: an XY stage needs two"))
    if rig.port == "simulated" and (cfg.camera.backend != "simulated" or (strip.frames == 0 and not sheet.present)):
        problems.append(("rig.port", "is 'simulated', which moves the simulated camera's strip or sheet: set "
                                     "camera.backend: simulated and camera.simulated.strip.frames (a roll) or "
                                     "camera.simulated.sheet (an XY stage)"))  # fmt: skip
    if rig.port == "simulated" and rig.axes == "xy" and strip.frames > 0:
        problems.append(("rig.axes", "is xy, but the simulated rig moves a strip along one axis: set "
                                     "camera.simulated.sheet for an XY stage (or rig.axes: x)"))  # fmt: skip
    if rig.port == "simulated" and rig.protocol != "grbl":
        problems.append(("rig.protocol", f"is {rig.protocol!r}, but the simulated rig speaks GRBL: set grbl"))
    return problems + _line_problems(rig)


def _line_problems(rig: RigConfig) -> list[tuple[str, str]]:
    """rig.line's patterns and its move template (which fields it may and must hold, for one axis or two)."""
    problems: list[tuple[str, str]] = []
    for name in ("done", "error"):
        try:
            re.compile(getattr(rig.line, name))
        except re.error as exc:
            problems.append((f"rig.line.{name}", f"is not a regular expression: {exc}"))
    move = rig.line.move
    try:
        move.format(**dict.fromkeys(LINE_FIELDS, "1"))
    except (KeyError, IndexError, ValueError) as exc:
        allowed = ", ".join(f"{{{name}}}" for name in LINE_FIELDS)
        return [*problems, ("rig.line.move", f"may hold only {allowed} (and {{{{ }}}} for a brace): {exc}")]
    holds = {name for name in LINE_FIELDS if f"{{{name}}}" in move}
    if not holds & {"mm", "steps", "x", "x_steps"}:
        problems.append(("rig.line.move", "must contain {mm} or {steps} (or {x}, {x_steps}): the move's length"))
    elif rig.axes == "xy" and rig.protocol == "line" and not holds & {"y", "y_steps"}:  # GRBL, Marlin: no template
        problems.append(("rig.line.move", "must contain {y} or {y_steps} for an XY stage (rig.axes: xy)"))
    return problems
