"""Child tasks for test_child.py (imported inside vkdoctor's child processes)."""

from __future__ import annotations

import ctypes
import sys
import time
from typing import Any


def ok(payload: dict[str, Any], emit: Any) -> None:
    emit.crumb("computing")
    print("noise on stderr", file=sys.stderr, flush=True)
    emit.result({"doubled": payload["value"] * 2})


def segfault(payload: dict[str, Any], emit: Any) -> None:
    emit.crumb("about to dereference NULL")
    ctypes.string_at(0)


def hang(payload: dict[str, Any], emit: Any) -> None:
    emit.crumb("sleeping forever")
    time.sleep(3600)


def raises(payload: dict[str, Any], emit: Any) -> None:
    raise ValueError("broken on purpose")


def batch(payload: dict[str, Any], emit: Any) -> None:
    for item in payload["items"]:
        key = item["key"]
        emit.begin(key)
        print(f"stderr of {key}", file=sys.stderr, flush=True)
        if key == "crash":
            segfault(payload, emit)
        if key == "hang":
            hang(payload, emit)
        emit.result({"item": key})
        emit.end(key)


def whoami(payload: dict[str, Any], emit: Any) -> None:
    """The child's pid and the variables it sees, then sets one of its own (a leak to catch)."""
    import os

    print(f"stderr of {payload.get('tag')}", file=sys.stderr, flush=True)
    emit.result({"pid": os.getpid(), "seen": os.environ.get("VKD_TEST_VAR")})
