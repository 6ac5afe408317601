"""JSON form of the report's typed records, derived from their type hints.

One codec serves writing, reading and the JSON Schema, so the three cannot drift apart: a field
added to a record appears in the report, is read back, and is constrained by the generated schema
without further code.  Reading is tolerant by design: reports come from other machines and other
versions, and a value of the wrong type becomes the field's default instead of a traceback (the
schema validator is what reports such a value).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from enum import Enum
from functools import cache
from typing import Any, TypeVar, Union, get_args, get_origin

T = TypeVar("T")

_JSON_SCALARS: dict[type, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@cache
def _fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    return tuple(f for f in dataclasses.fields(cls) if f.metadata.get("json", True))


_PLAIN = frozenset({str, int, float, bool, type(None)})  # exact types: enums are str subclasses


def to_json(value: Any) -> Any:
    """A record (or a value inside one) as plain JSON data."""
    if type(value) in _PLAIN:  # most values: the fast path of 10 000-record reports
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in _fields(type(value))}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    return value


@cache
def _init_fields(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if f.init)


def map_strings(
    value: T,
    text: Callable[[str], str],
    on_mapping: Callable[[dict[str, Any]], None] | None = None,
) -> T:
    """A copy of ``value`` (records, lists, mappings, scalars) with every string and mapping key
    passed through ``text``; ``on_mapping`` may edit each copied mapping.  Records stay records:
    masking secrets or control characters in a report this way costs one walk, where a round
    trip through the JSON form costs a type-checked rebuild of every record (10 000 driver
    records: seconds)."""
    kind = type(value)
    if kind is str:
        return text(value)  # type: ignore[return-value]
    if kind in _PLAIN or isinstance(value, Enum):  # enums are str subclasses: kept as they are
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        changed = {
            name: map_strings(getattr(value, name), text, on_mapping) for name in _init_fields(cls)
        }
        return cls(**changed)  # type: ignore[return-value]
    if isinstance(value, list):
        return [map_strings(v, text, on_mapping) for v in value]  # type: ignore[return-value]
    if isinstance(value, tuple):
        return tuple(map_strings(v, text, on_mapping) for v in value)  # type: ignore[return-value]
    if isinstance(value, Mapping):
        out = {text(str(k)): map_strings(v, text, on_mapping) for k, v in value.items()}
        if on_mapping is not None:
            on_mapping(out)
        return out  # type: ignore[return-value]
    return value


def _default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return _MISSING


_MISSING = object()


def from_json(cls: type[T], data: Any) -> T:
    """Build ``cls`` from JSON data; a missing or mistyped field takes its default."""
    if not isinstance(data, Mapping):
        data = {}
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for field in _fields(cls):
        default = _default(field)
        raw = data.get(field.name, _MISSING)
        value = _MISSING if raw is _MISSING else _convert(hints[field.name], raw)
        if value is _MISSING:
            value = default if default is not _MISSING else _empty(hints[field.name])
        values[field.name] = value
    return cls(**values)


def _optional_inner(hint: Any) -> tuple[bool, Any]:
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(get_args(hint)) == 2:
            return True, args[0]
    return False, hint


def _convert(hint: Any, raw: Any) -> Any:
    """``raw`` as ``hint``, or _MISSING when it does not fit."""
    optional, inner = _optional_inner(hint)
    if raw is None:
        return None if optional or hint is Any else _MISSING
    hint = inner
    origin = get_origin(hint)
    if hint is Any:
        return raw
    if isinstance(hint, type) and issubclass(hint, Enum):
        try:
            return hint(raw)
        except ValueError:
            return _MISSING
    if dataclasses.is_dataclass(hint):
        return from_json(hint, raw) if isinstance(raw, Mapping) else _MISSING
    if hint is bool:
        return raw if isinstance(raw, bool) else _MISSING
    if hint is int:
        return raw if isinstance(raw, int) and not isinstance(raw, bool) else _MISSING
    if hint is float:
        ok = isinstance(raw, (int, float)) and not isinstance(raw, bool)
        return float(raw) if ok else _MISSING
    if hint is str:
        return raw if isinstance(raw, str) else _MISSING
    if origin in (tuple, list):
        if not isinstance(raw, list):
            return _MISSING
        item = get_args(hint)[0]
        converted = [_convert(item, v) for v in raw]
        kept = [v for v in converted if v is not _MISSING]
        return tuple(kept) if origin is tuple else kept
    if origin in (dict, Mapping) or origin is typing.Mapping:
        if not isinstance(raw, Mapping):
            return _MISSING
        value_hint = get_args(hint)[1]
        out = {str(k): _convert(value_hint, v) for k, v in raw.items()}
        return {k: v for k, v in out.items() if v is not _MISSING}
    return _MISSING


def _empty(hint: Any) -> Any:
    optional, inner = _optional_inner(hint)
    if optional:
        return None
    origin = get_origin(inner)
    if origin is tuple:
        return ()
    if origin is list:
        return []
    if origin in (dict, Mapping):
        return {}
    if inner in (str,):
        return ""
    if inner is bool:
        return False
    if inner in (int, float):
        return inner(0)
    if dataclasses.is_dataclass(inner):
        return from_json(inner, {})
    if isinstance(inner, type) and issubclass(inner, Enum):
        return next(iter(inner))
    return None


def json_schema(hint: Any, definitions: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of ``hint``; records are added to ``definitions`` by class name."""
    optional, inner = _optional_inner(hint)
    if optional:
        return {"anyOf": [json_schema(inner, definitions), {"type": "null"}]}
    hint = inner
    origin = get_origin(hint)
    if hint is Any:
        return {}
    if isinstance(hint, type) and issubclass(hint, Enum):
        return {"enum": [m.value for m in hint]}
    if dataclasses.is_dataclass(hint):
        name = hint.__name__
        if name not in definitions:
            definitions[name] = {}  # placeholder: records may refer to themselves
            hints = _hints(hint)
            fields = _fields(hint)
            definitions[name] = {
                "type": "object",
                "description": (hint.__doc__ or name).strip().splitlines()[0],
                "properties": {
                    # A field may narrow its schema (finding codes are kebab-case).
                    f.name: f.metadata.get("schema") or json_schema(hints[f.name], definitions)
                    for f in fields
                },
                "required": [f.name for f in fields],
            }
        return {"$ref": f"#/$defs/{name}"}
    if hint in _JSON_SCALARS:
        if hint is int:
            return {"type": "integer"}
        return {"type": _JSON_SCALARS[hint]}
    if origin in (tuple, list):
        return {"type": "array", "items": json_schema(get_args(hint)[0], definitions)}
    if origin in (dict, Mapping):
        return {
            "type": "object",
            "additionalProperties": json_schema(get_args(hint)[1], definitions),
        }
    raise TypeError(f"no JSON Schema for {hint!r}")
