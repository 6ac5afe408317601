"""The suite's own bookkeeping stays true: every test named slow exists."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import SLOW_TESTS
from slow_measured import MEASURED_SLOW

HERE = Path(__file__).resolve().parent


def test_every_listed_slow_test_exists() -> None:
    # conftest keys by file name, wherever under tests/ the file is; each file parsed once.
    functions: dict[str, set[str]] = {}
    for path in HERE.rglob("test_*.py"):
        functions.setdefault(path.name, set()).update(
            n.name
            for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        )
    missing = []
    for entry in sorted(SLOW_TESTS | set(MEASURED_SLOW)):
        filename, _, function = entry.partition("::")
        if function not in functions.get(filename, set()):
            missing.append(entry)
    assert not missing, "SLOW_TESTS/MEASURED_SLOW name tests that do not exist: " + ", ".join(
        missing
    )
    assert not SLOW_TESTS & set(MEASURED_SLOW)  # one list each: mutation.py tells them apart
