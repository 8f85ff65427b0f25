"""The one rule by which a typed record (a dataclass) becomes JSON and is read back: field by field, nested records
as objects, tuples and lists as arrays, paths as strings, enums as their values.

What differs between records is declared on the field, never in a hand-written pair: `field(metadata=
stored(digits=4))` rounds a float (or each float inside a container) when it is written; `keys=` renames the
fields of a nested record in its JSON object (a LeftOut's path is "frame" in one list, "file" in another);
`paths=` stores paths against the folder the record lives in (its name, its path relative to it, or the folder
itself, read back as the folder it is in now); `absent=` is what a file written before the field existed gives it.

Reading checks each value against the field's type and converts it (3 for a float reads 3.0); a field missing
from the JSON takes its default, or None where it may be None. Any damage is a ValueError naming the record.
A record's file (`stack.json`, `tiles.json`) is opened by `read_record_file`: one sentence naming the file for
a file that is missing, unreadable, not JSON or not an object.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, TypeVar, Union, get_args, get_origin, get_type_hints

from medianscan.errors import MedianscanError

T = TypeVar("T")
PathRule = Literal["name", "relative", "folder"]
_META = "record_json"
_ABSENT = object()


def stored(
    *,
    digits: int | None = None,
    keys: dict[str, str] | None = None,
    paths: PathRule | None = None,
    absent: object = _ABSENT,
) -> dict[str, Any]:
    """A field's metadata for the JSON rule (see the module): `field(metadata=stored(digits=3))`."""
    return {_META: _Rule(digits, keys or {}, paths, absent)}


@dataclass(frozen=True)
class _Rule:
    digits: int | None = None  # decimals kept of a float when written (None: as it is)
    keys: dict[str, str] = dataclasses.field(default_factory=dict)  # a nested record's field -> its JSON key
    paths: PathRule | None = None  # how a path is stored against the record's folder (None: as given)
    absent: object = _ABSENT  # the value of a field missing from an older file

    def inner(self, field: dataclasses.Field[Any]) -> _Rule:
        """The rule for `field` of a record this rule applies to: its own, digits and paths inherited."""
        own: _Rule = field.metadata.get(_META, _Rule())
        return _Rule(
            own.digits if own.digits is not None else self.digits, own.keys, own.paths or self.paths, own.absent
        )


_PLAIN = _Rule()


class JsonRecord:
    """A record written and read by this module's rule; `WHAT` names it in errors ("a blend record")."""

    WHAT: ClassVar[str] = "a record"

    def to_json(self) -> dict[str, Any]:
        return to_json(self)

    @classmethod
    def from_json(cls, data: object) -> Self:
        return from_json(cls, data, what=cls.WHAT)


def read_record_file(path: Path, what: str, missing: str) -> dict[str, Any]:
    """The JSON object `path` holds, for the reader of `what` ("the tile set"); a MedianscanError in one sentence
    otherwise: `missing` when there is no such file, else naming the file and what stops it being read."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise MedianscanError(missing) from exc
    except (OSError, ValueError) as exc:
        raise MedianscanError(f"{path}: cannot read {what} ({exc})") from exc
    if not isinstance(data, dict):
        raise MedianscanError(f"{path}: not a valid {what.removeprefix('the ')} (not a JSON object)")
    return data


def to_json(record: object, *, folder: Path | None = None, drop_none: bool = False) -> dict[str, Any]:
    """`record` as a JSON object; `folder` is the one its `paths=` fields are stored against; with `drop_none`
    a field that is None is left out."""
    data = _encode(record, _PLAIN, folder)
    assert isinstance(data, dict)
    return {k: v for k, v in data.items() if v is not None} if drop_none else data


def from_json(cls: type[T], data: object, *, what: str, folder: Path | None = None) -> T:
    """The record of type `cls` that `to_json` wrote (this version or an earlier one), its `paths=` fields taken
    in `folder`; ValueError when `data` is not one."""
    if not isinstance(data, dict):
        raise ValueError(f"{what} is a JSON object")
    try:
        record: T = _decode(data, cls, _PLAIN, folder)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"not {what} ({exc})") from None
    return record


def _encode(value: object, rule: _Rule, folder: Path | None) -> Any:  # noqa: PLR0911 - one return per JSON kind
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            rule.keys.get(f.name, f.name): _encode(getattr(value, f.name), rule.inner(f), folder)
            for f in dataclasses.fields(value)
        }
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return _store_path(value, rule.paths, folder)
    if isinstance(value, float):
        return value if rule.digits is None else round(value, rule.digits)
    if isinstance(value, list | tuple):
        return [_encode(v, rule, folder) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v, rule, folder) for k, v in value.items()}
    return value


def _store_path(path: Path, how: PathRule | None, folder: Path | None) -> str:
    if how is None or folder is None:
        return str(path)
    if how == "name":
        return path.name
    if how == "relative":
        return str(path.relative_to(folder))
    return str(path)  # "folder": kept for the reader's eyes; read back as the folder the record is in


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    """The field types of `cls`, resolved once (annotations are strings here)."""
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


def _decode(data: Any, hint: Any, rule: _Rule, folder: Path | None) -> Any:  # noqa: PLR0911 - one return per kind
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        (kind,) = [a for a in args if a is not type(None)]
        return _decode(data, kind, rule, folder)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _decode_record(data, hint, rule, folder)
    if origin is tuple:
        _need(data, list, hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(v, args[0], rule, folder) for v in data)
        if len(data) != len(args):
            raise ValueError(f"{data!r} is not {len(args)} values")
        return tuple(_decode(v, a, rule, folder) for v, a in zip(data, args, strict=True))
    if origin is list:
        _need(data, list, hint)
        return [_decode(v, args[0], rule, folder) for v in data]
    if origin is dict:
        _need(data, dict, hint)
        return {str(k): _decode(v, args[1], rule, folder) for k, v in data.items()}
    if hint is Path:
        _need(data, str, hint)
        return Path(data) if rule.paths is None or folder is None else folder / data
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(data)
    if hint is bool:
        _need(data, bool, hint)
        return data
    if hint in (float, int, str):
        return hint(data)
    return data


def _decode_record(data: Any, cls: type[Any], rule: _Rule, folder: Path | None) -> Any:
    _need(data, dict, cls)
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        inner = rule.inner(f)
        key = rule.keys.get(f.name, f.name)
        if inner.paths == "folder" and folder is not None:
            kwargs[f.name] = folder
        elif key in data:
            kwargs[f.name] = _decode(data[key], hints[f.name], inner, folder)
        elif inner.absent is not _ABSENT:
            kwargs[f.name] = inner.absent
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            if type(None) not in get_args(hints[f.name]):
                raise KeyError(key)
            kwargs[f.name] = None
    return cls(**kwargs)


def _need(data: object, kind: type[Any], hint: object) -> None:
    if not isinstance(data, kind):
        raise TypeError(f"{str(data)[:40]!r} is not a JSON {kind.__name__} ({hint})")
