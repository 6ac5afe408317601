"""Wraps make_finding so each built finding appends ``code<TAB>test id`` to the log."""

from __future__ import annotations

import functools
import os
from typing import Any

from vkdoctor.report import codes as _codes

_original = _codes.make_finding


@functools.wraps(_original)
def make_finding(table: Any, code: str, *args: Any, **kwargs: Any) -> Any:
    finding = _original(table, code, *args, **kwargs)
    log = os.environ.get("VKDOCTOR_TEST_CODE_LOG")
    if log:
        test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
        line = f"{finding.code}\t{test}\n".encode()  # an alias is built as its new code
        try:
            # O_APPEND with one write: lines from concurrent processes never interleave.
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError:
            pass
    return finding


if not getattr(_original, "_vkdoctor_codes_seen", False):
    make_finding._vkdoctor_codes_seen = True  # type: ignore[attr-defined]
    _codes.make_finding = make_finding
