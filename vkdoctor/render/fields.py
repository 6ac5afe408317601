"""Evidence and facts as short labelled fields (``key: value``) instead of raw JSON.

Nested mappings become dotted keys (``driver.library.path``), list items an index
(``layers[0].name``); at ``-v`` long lists are cut (``a, b, c, d, e … 186 more``) and
multi-line strings show their first line, at ``-vv`` nothing is cut.  Headless (no rich): the
console wraps the fields to the terminal, the Markdown export could reuse them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from vkdoctor.record import frozen

LIST_ITEMS = 5  # scalars shown of a long list at -v
LIST_RECORDS = 3  # mappings or lists shown of a list of them at -v


@frozen
class Field:
    key: str
    value: str


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value if value else '""'
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return str(value)


def _more(count: int) -> str:
    return f"… {count} more"


def fields(value: Any, cut: bool = True, prefix: str = "") -> list[Field]:
    """``value`` (a JSON-like evidence or facts mapping) flattened into labelled fields."""
    out: list[Field] = []
    _flatten(value, prefix, cut, out)
    return out


def _flatten(value: Any, key: str, cut: bool, out: list[Field]) -> None:
    if isinstance(value, Mapping):
        if not value:
            out.append(Field(key or "(empty)", "{}"))
        for name in sorted(value, key=str):
            _flatten(value[name], f"{key}.{name}" if key else str(name), cut, out)
        return
    if isinstance(value, list | tuple):
        _flatten_list(list(value), key or "(list)", cut, out)
        return
    text = _scalar(value)
    lines = text.splitlines() or [text]
    if cut and len(lines) > 1:
        text = f"{lines[0]} {_more(len(lines) - 1)} lines"
    out.append(Field(key or "(value)", text))


def _flatten_list(items: list[Any], key: str, cut: bool, out: list[Field]) -> None:
    if not items:
        out.append(Field(key, "(none)"))
        return
    if all(not isinstance(item, Mapping | list | tuple) for item in items):
        shown = items[:LIST_ITEMS] if cut else items
        text = ", ".join(_scalar(item).replace("\n", " ") for item in shown)
        if len(items) > len(shown):
            text += f" {_more(len(items) - len(shown))}"
        out.append(Field(key, text))
        return
    shown = items[:LIST_RECORDS] if cut else items
    for index, item in enumerate(shown):
        _flatten(item, f"{key}[{index}]", cut, out)
    if len(items) > len(shown):
        out.append(Field(key, _more(len(items) - len(shown))))
