"""The report's JSON Schema and a small validator for it, with messages meant for people.

The schema ships as package data (``vkdoctor/report/report.schema.json``; a copy lives in ``reports/``).
Validation at run time uses the subset of JSON Schema 2020-12 that the schema needs, implemented
here so ``vkdoctor report validate`` has no extra dependency; the tests check that this validator
agrees with the ``jsonschema`` reference implementation and that the schema uses no keyword it
does not implement.  On top of the schema, ``check_consistency`` verifies what a schema cannot
express: the summary matches the probes, ``blocked_by`` names a probe, probe ids are unique.

Headless: no rich/textual imports.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from vkdoctor.record import frozen

SCHEMA_RESOURCE = "report.schema.json"
VOLATILE_MARK = "x-vkdoctor-volatile"
# Inside free-form facts no schema path can mark a field: a time says so by its key's unit suffix.
VOLATILE_KEYS_MARK = "x-vkdoctor-volatile-keys"

# Keywords that carry no constraint.
ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "$defs", "title", "description", "default", "examples"}
)
# Keywords this validator enforces; any other keyword in the schema is an error (a test checks).
SUPPORTED = frozenset(
    {
        "$ref",
        "type",
        "enum",
        "const",
        "required",
        "properties",
        "additionalProperties",
        "items",
        "pattern",
        "minimum",
        "minLength",
        "anyOf",
    }
)
_MAX_ERRORS = 50


@frozen
class SchemaError:
    """One violation: where (``probes[2].findings[0].severity``) and what, in words."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '(top level)'}: {self.message}"


@cache
def _schema_text() -> str:
    return resources.files("vkdoctor.report").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")


def load_schema() -> dict[str, Any]:
    """A fresh copy of the packaged schema (callers may mutate it)."""
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


def schema_keywords(schema: Any) -> set[str]:
    """Every keyword used anywhere in ``schema`` (for the test that we implement all of them)."""
    found: set[str] = set()
    if isinstance(schema, Mapping):
        for key, value in schema.items():
            found.add(key)
            if key in ("properties", "$defs"):
                for sub in value.values():
                    found |= schema_keywords(sub)
            elif key in ("items", "additionalProperties") and isinstance(value, Mapping):
                found |= schema_keywords(value)
            elif key == "anyOf":
                for sub in value:
                    found |= schema_keywords(sub)
    return found


_TYPE_NAMES = {
    "object": "an object",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _same(value: Any, wanted: Any) -> bool:
    """JSON equality: true is not 1 (Python's ``True == 1`` is)."""
    return isinstance(value, bool) == isinstance(wanted, bool) and value == wanted


def _is_type(value: Any, name: str) -> bool:
    actual = _type_of(value)
    if name == "number":
        return actual in ("integer", "number")
    if name == "integer":
        return actual == "integer" or (actual == "number" and float(value).is_integer())
    return actual == name


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


class _Validator:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.errors: list[SchemaError] = []

    def resolve(self, ref: str) -> Mapping[str, Any]:
        if not ref.startswith("#/"):
            raise ValueError(f"only local $ref is supported, not {ref!r}")
        node: Any = self.root
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node  # type: ignore[no-any-return]

    def check(self, value: Any, schema: Mapping[str, Any], path: str) -> list[SchemaError]:
        """Errors of ``value`` against ``schema``, without recording them."""
        saved, self.errors = self.errors, []
        try:
            self.validate(value, schema, path)
            return self.errors
        finally:
            self.errors = saved

    def fail(self, path: str, message: str) -> None:
        self.errors.append(SchemaError(path, message))

    def validate(self, value: Any, schema: Mapping[str, Any], path: str) -> None:
        if "$ref" in schema:
            self.validate(value, self.resolve(schema["$ref"]), path)
        if "type" in schema:
            names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            if not any(_is_type(value, n) for n in names):
                wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
                self.fail(
                    path,
                    f"expected {wanted}, got {_TYPE_NAMES.get(_type_of(value), 'a value')} "
                    f"{_show(value)}",
                )
                return  # the other keywords would only repeat the type error
        if "const" in schema and not _same(value, schema["const"]):
            self.fail(path, f"must be {_show(schema['const'])}, not {_show(value)}")
        if "enum" in schema and not any(_same(value, v) for v in schema["enum"]):
            allowed = ", ".join(str(v) for v in schema["enum"])
            self.fail(path, f"{_show(value)} is not one of: {allowed}")
        if "anyOf" in schema:
            branches = [self.check(value, sub, path) for sub in schema["anyOf"]]
            if all(branches):
                # The branch with the fewest errors is the one the author most likely meant.
                self.errors.extend(min(branches, key=len))
        if isinstance(value, str):
            if "minLength" in schema and len(value) < schema["minLength"]:
                self.fail(
                    path,
                    "must not be empty"
                    if schema["minLength"] == 1
                    else f"must have at least {schema['minLength']} characters",
                )
            if "pattern" in schema and not re.search(schema["pattern"], value):
                self.fail(path, f"{_show(value)} does not match the pattern {schema['pattern']}")
        numeric = _type_of(value) in ("integer", "number")
        if numeric and "minimum" in schema and value < schema["minimum"]:
            self.fail(path, f"must be at least {schema['minimum']}, not {_show(value)}")
        if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
            for index, item in enumerate(value):
                self.validate(item, schema["items"], _join(path, index))
        if isinstance(value, Mapping):
            self._object(value, schema, path)

    def _object(self, value: Mapping[str, Any], schema: Mapping[str, Any], path: str) -> None:
        for key in schema.get("required", ()):
            if key not in value:
                self.fail(path, f"missing required key {key!r}")
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                self.validate(item, properties[key], _join(path, key))
            elif extra is False:
                self.fail(path, f"unexpected key {key!r}")
            elif isinstance(extra, Mapping):
                self.validate(item, extra, _join(path, key))


def validate(data: Any, schema: Mapping[str, Any] | None = None) -> list[SchemaError]:
    """Every schema violation of ``data`` (at most 50), in document order.  A report of an
    earlier schema version is checked in the form readers upgrade it to."""
    from vkdoctor.report.upgrade import upgrade

    if isinstance(data, Mapping):
        data = upgrade(data)
    validator = _Validator(schema if schema is not None else load_schema())
    validator.validate(data, validator.root, "")
    return validator.errors[:_MAX_ERRORS]


def check_consistency(data: Mapping[str, Any]) -> list[SchemaError]:
    """What the schema cannot say: derived fields agree with the data.  Call on schema-valid
    data only."""
    from vkdoctor.report.model import Report

    errors: list[SchemaError] = []
    probes = data.get("probes") or []
    ids = [p["id"] for p in probes]
    for index, probe_id in enumerate(ids):
        if probe_id in ids[:index]:
            errors.append(SchemaError(f"probes[{index}].id", f"probe {probe_id!r} appears twice"))
    for index, probe in enumerate(probes):
        blocker = probe.get("blocked_by")
        if blocker is not None and blocker not in ids:
            errors.append(
                SchemaError(
                    f"probes[{index}].blocked_by",
                    f"names {blocker!r}, which is not a probe of this report",
                )
            )
    try:
        expected = Report.from_dict(data).summary()
    except (KeyError, ValueError, TypeError) as exc:
        return [*errors, SchemaError("", f"cannot be read as a report: {exc}")]
    summary = data.get("summary") or {}
    if summary.get("status") != expected["status"]:
        errors.append(
            SchemaError(
                "summary.status",
                f"says {summary.get('status')!r} but the probes make it {expected['status']!r}",
            )
        )
    for group, counts in expected["counts"].items():
        stored = (summary.get("counts") or {}).get(group) or {}
        for key, count in counts.items():
            if stored.get(key) != count:
                errors.append(
                    SchemaError(
                        f"summary.counts.{group}.{key}",
                        f"says {stored.get(key)} but the probes have {count}",
                    )
                )
    return errors


def volatile_paths(schema: Mapping[str, Any] | None = None) -> list[tuple[str, ...]]:
    """Paths of the fields marked volatile, ``*`` standing for every list item; used to compare
    two runs and to drop times from a diff."""
    root = schema if schema is not None else load_schema()
    found: list[tuple[str, ...]] = []

    def walk(node: Mapping[str, Any], prefix: tuple[str, ...], depth: int) -> None:
        if depth > 8:
            return
        if "$ref" in node:
            walk(_Validator(root).resolve(node["$ref"]), prefix, depth + 1)
        if node.get(VOLATILE_MARK):
            found.append(prefix)
        for key, sub in (node.get("properties") or {}).items():
            walk(sub, (*prefix, key), depth + 1)
        if isinstance(node.get("items"), Mapping):
            walk(node["items"], (*prefix, "*"), depth + 1)

    walk(root, (), 0)
    return found


def volatile_key_pattern(schema: Mapping[str, Any] | None = None) -> re.Pattern[str] | None:
    root = schema if schema is not None else load_schema()
    pattern = root.get(VOLATILE_KEYS_MARK)
    return re.compile(pattern) if pattern else None


def without_volatile(data: Any, schema: Mapping[str, Any] | None = None) -> Any:
    """A copy of a report dict without its times: the fields marked volatile, and every key
    named with a time unit (``wall_s``, ``gpu_time_ns``) anywhere in the tree."""
    root = schema if schema is not None else load_schema()
    keys = volatile_key_pattern(root)

    def strip(node: Any, path: tuple[str, ...]) -> Any:
        if not path:
            return node
        head, rest = path[0], path[1:]
        if head == "*" and isinstance(node, list):
            return [strip(item, rest) for item in node]
        if isinstance(node, Mapping) and head in node:
            copy = dict(node)
            if rest:
                copy[head] = strip(node[head], rest)
            else:
                del copy[head]
            return copy
        return node

    def strip_keys(node: Any) -> Any:
        if isinstance(node, Mapping):
            return {
                k: strip_keys(v)
                for k, v in node.items()
                if not (keys and isinstance(k, str) and keys.search(k))
            }
        if isinstance(node, list):
            return [strip_keys(item) for item in node]
        return node

    for path in volatile_paths(root):
        data = strip(data, path)
    return strip_keys(data)
