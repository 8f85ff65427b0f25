"""YAML -> Config: unknown keys, wrong types and out-of-range values are reported all at once, each naming the
file, the line and the key.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import logging
import types
import typing
from pathlib import Path
from typing import Any, Literal, NoReturn

import yaml

from medianscan.config.listen import parse_listen
from medianscan.config.rules import CHECKS, ITEM_CHECKS, KEY_CHECKS, cross_problems
from medianscan.config.schema import Config, ConfigError
from medianscan.vocabulary import ALIASES, CANONICAL, canonical_key

log = logging.getLogger(__name__)

# Keys renamed since a release: (section, old name) -> (new name, how an old value reads now). An old config
# still loads, with a warning that names the line.
_RENAMED: dict[tuple[str, str], tuple[str, typing.Callable[[Any], Any]]] = {
    ("Config", "frame_template"): (
        "negative_template",
        lambda text: text.replace("{frame", "{negative") if isinstance(text, str) else text,
    ),
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
        choices = typing.get_args(hint)
        return repr(choices[0]) if len(choices) == 1 else "one of " + ", ".join(repr(a) for a in choices)
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
        for key_node, value_node, written in self.pairs(node, key, "a mapping"):
            name, upgrade = written, None
            if written not in fields and (cls.__name__, written) in _RENAMED:
                name, upgrade = _RENAMED[(cls.__name__, written)]
                log.warning("%s", self.where(key_node, written, f"is now called {name!r} (the old name still works)"))
            sub = f"{key}.{name}" if key else name
            try:
                if name not in fields:
                    self.fail(key_node, sub, f"unknown key{self.suggest(name, cls, key)}")
                self.nodes[sub] = value_node
                value = self.convert(hints[name], value_node, sub)
                if upgrade is not None:
                    value = upgrade(value)
                self.check((cls.__name__, name), value, value_node, sub)
            except _KeyError as exc:
                self.problems.append(str(exc))
                continue
            values[name] = value
        return cls(**values)

    def check(self, where: tuple[str, str], value: Any, value_node: yaml.Node, key: str) -> None:
        """Range and format checks, pointing at the offending line (the key's own line for dict keys)."""
        check = CHECKS.get(where)
        if check is not None and (problem := check(value)):
            self.fail(value_node, key, problem)
        key_check = KEY_CHECKS.get(where)
        item_check = ITEM_CHECKS.get(where)
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
    listen = cfg.console.listen
    try:
        open_to_others = listen is not None and not parse_listen(listen).loopback
    except ValueError:  # reported by its own check
        open_to_others = False
    if open_to_others and cfg.console.token is None:
        reader.note(
            nodes.get("console.listen"),
            "console.listen",
            f"is {listen!r}, off loopback: anyone on that network could fire the camera; set console.token too "
            "(or reach a loopback console over an SSH tunnel)",
        )
    if cfg.mode == "capture" and cfg.watch.folder is not None:  # kept ready, perhaps: a hint, not an error
        log.warning(
            "%s",
            reader.where(
                nodes.get("watch.folder"),
                "watch.folder",
                "is set, but mode is 'capture': the hot folder runs only with `mode: watch` (or `medianscan watch "
                "DIR`)",
            ),
        )
    _setting_names(cfg, reader)
    for key, problem in cross_problems(cfg):
        reader.note(nodes.get(key), key, problem)


def _setting_names(cfg: Config, reader: _Reader) -> None:
    """A setting name close to one medianscan knows is most likely a slip of the keyboard (`apperture`): a hint,
    not an error, since any widget name of the body is allowed too and only the body can tell."""
    known = sorted({*ALIASES, *CANONICAL})
    for name in [*cfg.camera.settings, *cfg.camera.optional]:
        if canonical_key(name) in ALIASES:
            continue
        close = difflib.get_close_matches(name.strip().lower(), known, n=1, cutoff=0.8)
        if close:
            key = f"camera.settings.{name}"
            log.warning(
                "%s",
                reader.where(
                    reader.nodes.get(key),
                    key,
                    f"medianscan knows no setting of this name (did you mean {canonical_key(close[0])!r}?); a name of "
                    "the body's own works too: `medianscan config check --camera FILE` checks it against the body",
                ),
            )


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
