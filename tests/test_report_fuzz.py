"""Fuzzing every reader of stored reports with mutated real reports.

The example reports in reports/ (from real machines) are mutated structure-aware: a value
anywhere is replaced by another JSON type, a huge integer (thousands of digits, over Python's
int-str limit), a bare NaN, a string full of terminal escapes and HTML, or its key is deleted.
Every ``report`` subcommand (show, validate, markdown, diff) runs on the result in-process via
``vkdoctor.cli.main``, and the TUI's document loader and view models read it.  The contract:
exit 0, 1 or 2, never 3 (a traceback), and no ESC or BEL in anything rendered.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vkdoctor.cli import main

REPORTS = sorted(
    p
    for p in (Path(__file__).parent.parent / "reports").glob("*.json")
    if p.name != "report.schema.json"
)
EXAMPLES = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in REPORTS}

# Placeholders replaced in the JSON text: json.dumps cannot write these values itself.
HUGE = "__vkdoctor_fuzz_huge__"
NAN = "__vkdoctor_fuzz_nan__"
HOSTILE = "\u001b]0;pwned\u0007\u001b[2J</details><img src=x onerror=alert(1)>\u202e\x9b"

_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([HUGE, NAN, HOSTILE, "", "x", "-1", "ok", "fail"]),
    st.text(max_size=12),
)
_value = st.one_of(
    _leaf, st.lists(_leaf, max_size=3), st.dictionaries(st.text(max_size=6), _leaf, max_size=3)
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON value (depth-limited: reports are deep but the renderers read
    the first few levels)."""
    out = [prefix]
    if len(prefix) >= 6:
        return out
    if isinstance(data, dict):
        for key, value in data.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data[:4]):
            out += _paths(value, (*prefix, index))
    return out


def _mutate(data: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    data = json.loads(json.dumps(data))
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if delete:
        del parent[last]
    else:
        parent[last] = value
    return data


Mutation = tuple[tuple[Any, ...], Any, bool]  # path, new value, delete instead


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, list[Mutation]]:
    """An example report's name and the mutations to apply (small, so a failure reads well)."""
    name = draw(st.sampled_from(sorted(EXAMPLES)))
    data = EXAMPLES[name]
    mutations: list[Mutation] = []
    for _ in range(draw(st.integers(1, 3))):
        # Depth first, then a path of that depth: otherwise the thousands of deep leaves drown
        # the few sections (environment.os, probes[i].facts) renderers read directly.
        depth = draw(st.integers(1, 5))
        paths = [p for p in _paths(data)[1:] if len(p) == depth] or _paths(data)[1:]
        mutation = (draw(st.sampled_from(paths)), draw(_value), draw(st.booleans()))
        data = _mutate(data, *mutation)
        mutations.append(mutation)
    return name, mutations


def _text(name: str, mutations: list[Mutation]) -> str:
    data = EXAMPLES[name]
    for mutation in mutations:
        data = _mutate(data, *mutation)
    text = json.dumps(data)
    return text.replace(f'"{HUGE}"', "9" * 5000).replace(f'"{NAN}"', "NaN")


def _run(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue() + err.getvalue()


def _tui_models(path: str) -> None:
    from vkdoctor.render.safe_text import clean_report
    from vkdoctor.tui.documents import DocumentError, open_document
    from vkdoctor.tui.viewmodel import device_models, finding_items, no_device_reason

    try:
        report, _ = open_document(path)
    except DocumentError:
        return
    if report is not None:
        shown = clean_report(report)
        finding_items(shown)
        device_models(shown)
        no_device_reason(shown)


@settings(
    max_examples=int(os.environ.get("VKDOCTOR_FUZZ_EXAMPLES", "40")),
    derandomize=os.environ.get("VKDOCTOR_FUZZ_RANDOM") is None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=mutated())
def test_mutated_reports_never_crash_a_reader(
    tmp_path: Path, case: tuple[str, list[Mutation]]
) -> None:
    name, mutations = case
    path = tmp_path / "mutated.json"
    path.write_text(_text(name, mutations), encoding="utf-8")
    original = str(REPORTS[[p.name for p in REPORTS].index(name)])
    for argv in (
        ("report", "show", str(path)),
        ("report", "show", "-v", str(path)),
        ("report", "validate", str(path)),
        ("report", "markdown", str(path)),
        ("report", "diff", original, str(path)),
        ("report", "diff", "--json", "-", str(path), original),
    ):
        code, output = _run(*argv)
        assert code in (0, 1, 2), f"{' '.join(argv)} exited {code}:\n{output[-1500:]}"
        assert "Traceback" not in output
        assert "\x1b" not in output and "\x07" not in output, " ".join(argv)
    _tui_models(str(path))


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_examples_themselves_read_cleanly(name: str) -> None:
    path = str(REPORTS[[p.name for p in REPORTS].index(name)])
    assert _run("report", "validate", path)[0] == 0
    assert _run("report", "markdown", path)[0] == 0
