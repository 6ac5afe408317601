"""Rendering stored reports whose free-form sections have shapes no vkdoctor wrote.

The schema leaves ``environment``, probe ``facts`` and finding ``evidence`` open (they grow with
every probe), so a schema-valid report can hold ``"os": -1`` or ``"variables": "x"``, and a
renderer written for real reports meets an int where it expects an object.  Rather than teach
every renderer every wrong shape, ``render_tolerant`` renders the report as it is and, when a
renderer trips over a shape (TypeError, AttributeError, KeyError, IndexError, ValueError),
blanks the open sections one at a time, most likely first, until it renders, and says which
sections it left out.  A report vkdoctor wrote renders on the first try, unchanged.

Headless: pure functions over dicts.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

SHAPE_ERRORS = (TypeError, AttributeError, KeyError, IndexError, ValueError)

# Top-level sections renderers read besides the probes, with the empty value of their kind.
_SECTIONS: tuple[tuple[str, Any], ...] = (
    ("environment", {}),
    ("drivers", []),
    ("layers", []),
    ("devices", []),
    ("loader_log", []),
    ("kernels", None),
)


class ShapeError(Exception):
    """No blanking made the report renderable; the message names the first error."""


def _candidates(
    reports: tuple[Mapping[str, Any], ...],
) -> Iterator[tuple[str, tuple[Any, ...], Any]]:
    """(label, path, empty value) for every open section, in the order they are tried."""
    for key, empty in _SECTIONS:
        if any(key in r for r in reports):
            yield key, (key,), empty
    count = max((len(r.get("probes") or ()) for r in reports), default=0)
    for i in range(count):
        yield f"probes[{i}].facts", ("probes", i, "facts"), {}
    for i in range(count):
        findings = max((len(_at(r, ("probes", i, "findings")) or ()) for r in reports), default=0)
        for j in range(findings):
            yield (
                f"probes[{i}].findings[{j}].evidence",
                ("probes", i, "findings", j, "evidence"),
                {},
            )
    for key in sorted({k for r in reports for k in r} - {k for k, _ in _SECTIONS}):
        if key not in ("schema_version", "tool", "summary", "probes", "created"):
            yield key, (key,), None


def _at(data: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _blank(data: Any, path: tuple[Any, ...], empty: Any) -> bool:
    parent = _at(data, path[:-1])
    last = path[-1]
    if isinstance(parent, dict) and last in parent:
        if empty is None:
            del parent[last]
        else:
            parent[last] = copy.copy(empty)
        return True
    if isinstance(parent, list) and isinstance(last, int) and last < len(parent):
        parent[last] = copy.copy(empty)
        return True
    return False


def _label(label: str, side: tuple[int, ...], count: int) -> str:
    if count == 1 or len(side) == count:
        return label
    return f"{label} of {'AB'[side[0]] if side[0] < 2 else side[0]}"


def render_tolerant(render: Callable[..., T], *reports: Mapping[str, Any]) -> tuple[T, list[str]]:
    """``render(*reports)``, and the labels of the sections left out to make it work: first
    each open section alone, then cumulatively (two bad sections)."""
    try:
        return render(*reports), []
    except SHAPE_ERRORS as exc:
        first = exc
    candidates = list(_candidates(tuple(reports)))
    # One report at a time first: blanking a section in both sides of a diff would hide a
    # real difference.
    sides = [(i,) for i in range(len(reports))] + (
        [tuple(range(len(reports)))] * (len(reports) > 1)
    )
    for label, path, empty in candidates:
        for side in sides:
            work = [copy.deepcopy(dict(r)) for r in reports]
            if not any([_blank(work[i], path, empty) for i in side]):
                continue
            try:
                return render(*work), [_label(label, side, len(reports))]
            except SHAPE_ERRORS:
                continue
    work = [copy.deepcopy(dict(r)) for r in reports]
    left_out: list[str] = []
    for label, path, empty in candidates:
        if not any([_blank(r, path, empty) for r in work]):
            continue
        left_out.append(_label(label, tuple(range(len(reports))), len(reports)))
        try:
            return render(*work), left_out
        except SHAPE_ERRORS:
            continue
    raise ShapeError(
        f"a section has a shape vkdoctor cannot render ({type(first).__name__}: {first})"
    )
