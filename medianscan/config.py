"""The daemon's configuration: YAML -> typed dataclasses.

Every option has a default here, so an empty file is a working configuration (the simulated camera demo).
`config/medianscan.yaml` documents each option; the loader below rejects unknown keys, wrong types and
out-of-range values, naming the file, the line and the key.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import re
import shlex
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

import yaml

from medianscan.errors import MedianscanError
from medianscan.vocabulary import Action, Method, Retention

Backend = Literal["gphoto2", "simulated"]
Strategy = Literal["capture", "trigger"]


@dataclass
class SimulatedConfig:
    """The simulated camera: a film-negative-like scene with realistic noise, deterministic by seed."""

    seed: int = 1
    width: int = 1536
    height: int = 1024
    seconds_per_frame: float = 0.0  # pretend USB/shutter time, for cadence demos
    flicker_frame: int | None = None  # 1-based frame of each burst whose level jumps
    shifted_frame: int | None = None  # 1-based frame of each burst shifted by 2 px
    dead_after_frames: int | None = None  # the camera "drops off the bus" after this many frames


@dataclass
class CameraConfig:
    """Which camera, and the settings locked (set, then read back) before every burst."""

    backend: Backend = "simulated"
    model: str | None = None  # pick by model name (substring), else autodetect
    port: str | None = None  # e.g. "usb:001,004"
    serial: str | None = None
    strategy: Strategy = "capture"
    settings: dict[str, str] = field(default_factory=dict)  # widget name or alias -> value
    optional: list[str] = field(default_factory=list)  # settings whose absence is only a warning
    keep_jpeg: bool = False  # with RAW+JPEG, keep the JPEG beside the raw
    delete_from_camera: bool = True
    settle_seconds: float = 3.0  # how long a set value may take to read back
    keep_alive_seconds: float = 0.0  # 0: off
    reconnect_max_seconds: float = 30.0  # backoff ceiling while the camera is gone
    simulated: SimulatedConfig = field(default_factory=SimulatedConfig)


@dataclass
class BlendConfig:
    """How each stack is combined (the same options as `medianscan blend`)."""

    method: Method = "median"
    kappa: float = 3.0  # sigma-clip: reject beyond kappa sigma
    iterations: int = 5  # sigma-clip: at most this many rounds
    winsor_fraction: float = 0.2  # winsorized: clamp this fraction at each end
    level_tolerance: float = 0.03  # a frame's mean level may differ this much (fraction) from the median
    max_shift_px: float = 0.5
    drop_bad_frames: bool = False
    tiff: bool = False
    compress: bool = False


@dataclass
class FootswitchConfig:
    """A USB pedal read through evdev (grabbed, so its keys never reach the desktop)."""

    device: str | None = None  # /dev/input/by-id/... path, or "vendor:product" in hex
    keys: dict[str, Action] = field(default_factory=lambda: {"KEY_B": "capture"})
    debounce_ms: int = 250


@dataclass
class TriggerConfig:
    footswitch: FootswitchConfig = field(default_factory=FootswitchConfig)
    socket: Path | None = None  # control socket; default under $XDG_RUNTIME_DIR or the library
    press_during_burst: Literal["queue", "ignore"] = "queue"


@dataclass
class HooksConfig:
    """Commands run on events, with MEDIANSCAN_EVENT, MEDIANSCAN_STACK and MEDIANSCAN_FILE set."""

    burst_done: list[str] = field(default_factory=list)
    blend_done: list[str] = field(default_factory=list)
    error: list[str] = field(default_factory=list)
    sound: Literal["auto", "off", "bell", "wav"] = "auto"  # auto: the terminal bell when run in a terminal


@dataclass
class WatchConfig:
    """The hot-folder mode: blend the stacks other tools drop into `folder`."""

    folder: Path | None = None
    group: str = "folder"  # folder | count:N | gap:SECONDS
    quiet_seconds: float = 10.0  # a folder is complete after being quiet this long
    frames: int | None = None  # group folder: blend as soon as a folder holds this many frames
    settle_seconds: float = 2.0  # without close/rename events: a file unchanged this long is complete
    polling: bool = False  # poll instead of inotify (NFS/SMB mounts, where inotify sees nothing)


@dataclass
class Config:
    mode: Literal["capture", "watch"] = "capture"
    library: Path = Path("~/Scans")
    roll_template: str = "{date}-roll{roll:03d}"
    frame_template: str = "frame-{frame:03d}"
    frames: int = 9  # raws per burst
    workers: int = 1  # blend worker processes
    queue_size: int = 4  # stacks waiting to blend before captures are held back
    retention: Retention = "keep"  # what happens to the raws after a verified blend
    archive: Path | None = None  # where `retention: archive` moves them
    camera: CameraConfig = field(default_factory=CameraConfig)
    blend: BlendConfig = field(default_factory=BlendConfig)
    triggers: TriggerConfig = field(default_factory=TriggerConfig)
    hooks: HooksConfig = field(default_factory=HooksConfig)
    watch: WatchConfig = field(default_factory=WatchConfig)


# ----------------------------------------------------------------------------------------------------------
# The loader: generic over the dataclasses above, driven by their type hints, so a new field needs no loader
# code. It walks yaml's node tree (not the constructed dict) because only nodes carry line numbers.

GROUP_PATTERN = re.compile(r"^(folder|count:[1-9]\d*|gap:\d+(\.\d+)?)$")
DEVICE_ID_PATTERN = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$")


class ConfigError(MedianscanError):
    """A configuration file that cannot be used as written; the message names the file, line and key."""


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
        from medianscan.library.names import Template  # the library imports nothing from here; lazy all the same

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
    try:
        from evdev import ecodes
    except ImportError:
        known: list[str] = []
    else:
        known = [name for name in ecodes.ecodes if name.startswith(("KEY_", "BTN_"))]
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
    ("Config", "frame_template"): _template_check("frame", "frame_template"),
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
    ("BlendConfig", "kappa"): _at_least(0, strict=True),
    ("BlendConfig", "iterations"): _at_least(1),
    ("BlendConfig", "winsor_fraction"): _winsor,
    ("BlendConfig", "level_tolerance"): _at_least(0, strict=True),  # 0 would refuse every real stack
    ("BlendConfig", "max_shift_px"): _at_least(0, strict=True),
    ("FootswitchConfig", "device"): _device,
    ("FootswitchConfig", "debounce_ms"): _at_least(0),
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

_TAG_NAMES = {
    "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:bool": "a boolean",
    "tag:yaml.org,2002:int": "an integer",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:str": "a string",
}


def _describe(node: yaml.Node) -> str:
    """What the user wrote, in words, for 'expected X, got Y'."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    kind = _TAG_NAMES.get(node.tag, node.tag)
    return kind if kind == "null" else f"{kind} ({node.value!r})"


def _type_name(hint: Any) -> str:
    """A type hint in the user's words."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(hint)[0]).removeprefix('a ').removeprefix('an ')}s"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(hint):
        return "a mapping"
    return {
        bool: "true or false",
        int: "an integer",
        float: "a number",
        str: "a string",
        Path: "a path",
        type(None): "null",
    }.get(hint, str(hint))


def _field_index(cls: type, prefix: str = "") -> dict[str, list[str]]:
    """Every field name -> the dotted sections that hold it, to say where a misplaced key belongs."""
    index: dict[str, list[str]] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        index.setdefault(f.name, []).append(prefix)
        if dataclasses.is_dataclass(hints[f.name]):
            for name, where in _field_index(hints[f.name], f"{prefix}{f.name}.").items():
                index.setdefault(name, []).extend(where)
    return index


class _KeyError(ConfigError):
    """One problem with one key; the reader notes it and goes on with that key's default."""


class _Reader:
    """Converts one document's node tree into Config, noting every problem with file:line: key (a key that is
    wrong keeps its default, so the keys after it are still checked)."""

    def __init__(self, source: str, base: Path | None) -> None:
        self.source = source
        self.base = base  # relative paths are taken from the config file's folder
        self.constructor = yaml.SafeLoader("")
        self.nodes: dict[str, yaml.Node] = {}
        self.problems: list[str] = []

    def where(self, node: yaml.Node | None, key: str, message: str) -> str:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        at = f" {key}:" if key else ""
        return f"{self.source}{line}:{at} {message}"

    def fail(self, node: yaml.Node | None, key: str, message: str) -> NoReturn:
        raise _KeyError(self.where(node, key, message))

    def note(self, node: yaml.Node | None, key: str, message: str) -> None:
        self.problems.append(self.where(node, key, message))

    def scalar(self, node: yaml.Node, key: str, expected: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, key, f"expected {expected}, got {_describe(node)}")
        return self.constructor.construct_object(node, deep=True)

    def convert(self, hint: Any, node: yaml.Node, key: str) -> Any:  # noqa: PLR0911 - one case per kind
        """The value of type `hint` that `node` spells, or a ConfigError."""
        self.nodes[key] = node
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        is_null = isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"
        if origin in (types.UnionType, typing.Union):
            if is_null and type(None) in args:
                return None
            options = [a for a in args if a is not type(None)]
            if len(options) == 1:
                return self.convert(options[0], node, key)
            for option in options:
                try:
                    return self.convert(option, node, key)
                except ConfigError:
                    continue
            self.fail(node, key, f"expected {_type_name(hint)}, got {_describe(node)}")
        if dataclasses.is_dataclass(hint):
            if is_null:  # an empty section means "all defaults"
                return hint()  # type: ignore[operator]
            return self.dataclass(hint, node, key)  # type: ignore[arg-type]
        if origin is Literal:
            value = self.scalar(node, key, _type_name(hint))
            if value in args:
                return value
            close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
            hint_text = f" (did you mean {close[0]!r}?)" if close else ""
            self.fail(node, key, f"expected {_type_name(hint)}, got {value!r}{hint_text}")
        if origin is list:
            if not isinstance(node, yaml.SequenceNode):
                self.fail(node, key, f"expected {_type_name(hint)}, got {_describe(node)}")
            return [self.convert(args[0], item, f"{key}[{i}]") for i, item in enumerate(node.value)]
        if origin is dict:
            return self.mapping(args, node, key)
        return self.plain(hint, node, key, is_null=is_null)

    def plain(self, hint: Any, node: yaml.Node, key: str, *, is_null: bool) -> Any:
        """bool, int, float, str, Path."""
        expected = _type_name(hint)
        if is_null:
            self.fail(node, key, f"expected {expected}, got null")
        value = self.scalar(node, key, expected)
        if hint is bool:
            if isinstance(value, bool):
                return value
        elif hint is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif hint is float:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
        elif hint in (str, Path):
            # A plain scalar is taken as written: `f-number: 5.6` or `iso: 100` are strings to the camera.
            text = value if isinstance(value, str) else node.value
            if isinstance(value, bytes | datetime.date):
                text = node.value
            if hint is str:
                return text
            if not text:
                self.fail(node, key, "expected a path, got an empty string")
            path = Path(text).expanduser()
            return path if path.is_absolute() or self.base is None else self.base / path
        else:  # pragma: no cover - a field type this loader does not know yet is a programming error
            raise TypeError(f"config loader cannot read type {hint!r} ({key})")
        return self.fail(node, key, f"expected {expected}, got {_describe(node)}")

    def pairs(self, node: yaml.Node, key: str, expected: str) -> list[tuple[yaml.Node, yaml.Node, str]]:
        """The (key node, value node, key text) pairs of a mapping, refusing duplicate keys."""
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, key, f"expected {expected}, got {_describe(node)}")
        seen: dict[str, yaml.Node] = {}
        out = []
        for key_node, value_node in node.value:
            name = self.scalar(key_node, key, "a plain key")
            name = str(name) if isinstance(name, str | int | float) else key_node.value
            if name in seen:
                where = f"{key}.{name}" if key else name
                first = seen[name].start_mark.line + 1
                self.fail(key_node, where, f"duplicate key (first given on line {first})")
            seen[name] = key_node
            out.append((key_node, value_node, name))
        return out

    def mapping(self, args: tuple[Any, ...], node: yaml.Node, key: str) -> dict[Any, Any]:
        key_type, value_type = args
        result = {}
        for key_node, value_node, name in self.pairs(node, key, "a mapping"):
            sub = f"{key}.{name}"
            result[self.convert(key_type, key_node, sub)] = self.convert(value_type, value_node, sub)
        return result

    def dataclass(self, cls: type, node: yaml.Node, key: str) -> Any:
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key_node, value_node, name in self.pairs(node, key, "a mapping"):
            sub = f"{key}.{name}" if key else name
            try:
                if name not in fields:
                    self.fail(key_node, sub, f"unknown key{self.suggest(name, cls, key)}")
                self.nodes[sub] = value_node
                value = self.convert(hints[name], value_node, sub)
                self.check((cls.__name__, name), value, value_node, sub)
            except _KeyError as exc:
                self.problems.append(str(exc))
                continue
            values[name] = value
        return cls(**values)

    def check(self, where: tuple[str, str], value: Any, value_node: yaml.Node, key: str) -> None:
        """Range and format checks, pointing at the offending line (the key's own line for dict keys)."""
        check = _CHECKS.get(where)
        if check is not None and (problem := check(value)):
            self.fail(value_node, key, problem)
        key_check = _KEY_CHECKS.get(where)
        item_check = _ITEM_CHECKS.get(where)
        if key_check is not None and isinstance(value_node, yaml.MappingNode):
            for k_node, _, k in self.pairs(value_node, key, "a mapping"):
                if problem := key_check(k):
                    self.fail(k_node, f"{key}.{k}", problem)
        if item_check is not None and isinstance(value_node, yaml.SequenceNode):
            for i, (item, item_node) in enumerate(zip(value, value_node.value, strict=True)):
                if problem := item_check(item):
                    self.fail(item_node, f"{key}[{i}]", problem)

    def suggest(self, name: str, cls: type, section: str) -> str:
        """' (did you mean ...?)' from this section's keys, or where the key belongs if it is elsewhere."""
        here = [f.name for f in dataclasses.fields(cls)]
        close = difflib.get_close_matches(name.replace("-", "_"), here, n=1, cutoff=0.6)
        if close:
            return f" (did you mean {close[0]!r}?)"
        elsewhere = _field_index(Config).get(name.replace("-", "_"), [])
        if elsewhere:
            place = elsewhere[0].rstrip(".")
            return f" here (it belongs under {place!r})" if place else " here (it belongs at the top level)"
        return f" (known keys here: {', '.join(here)})"


def _cross_checks(cfg: Config, reader: _Reader) -> None:
    """Rules that involve more than one option."""
    nodes = reader.nodes
    if cfg.retention == "archive" and cfg.archive is None:
        reader.note(nodes.get("retention"), "retention", "is 'archive' but no 'archive:' folder is set")
    if cfg.mode == "watch" and cfg.watch.folder is None:
        reader.note(nodes.get("mode"), "mode", "is 'watch' but no 'watch.folder' is set")
    sim = cfg.camera.simulated
    for name in ("flicker_frame", "shifted_frame"):
        value = getattr(sim, name)
        if value is not None and value > cfg.frames:
            key = f"camera.simulated.{name}"
            reader.note(nodes.get(key), key, f"is frame {value} but a burst has only {cfg.frames} frames")


def _expand_defaults(obj: Any) -> None:
    """Expand ~ in default paths too (the file's own paths were expanded while reading)."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, Path):
            setattr(obj, f.name, value.expanduser())
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            _expand_defaults(value)


def parse_config(text: str, source: str = "<config>", base: Path | None = None) -> Config:
    """Config from YAML text; `source` names it in errors, relative paths are taken from `base`."""
    reader = _Reader(source, base)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}{line}: not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    try:
        cfg = Config() if node is None else reader.dataclass(Config, node, "")
    except _KeyError as exc:  # the document itself is not a mapping
        raise ConfigError(str(exc)) from None
    _expand_defaults(cfg)
    _cross_checks(cfg, reader)
    if reader.problems:
        raise ConfigError("\n".join(reader.problems))
    return cfg


def load_config(path: Path | None) -> Config:
    """The configuration in `path` (None: all defaults), checked; every problem is a ConfigError naming
    the file, line and key."""
    if path is None:
        return parse_config("", "<defaults>")
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a configuration file") from None
    except PermissionError:
        raise ConfigError(f"{path}: not allowed to read it (check its owner and mode)") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from None
    return parse_config(text, str(path), base=path.resolve().parent)


def config_to_yaml(cfg: Config) -> str:
    """The effective configuration as YAML that `load_config` reads back to an equal Config."""

    def plain(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    data = plain(dataclasses.asdict(cfg))
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
