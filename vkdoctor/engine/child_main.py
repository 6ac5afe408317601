"""Entry point of vkdoctor's child processes (``python -m vkdoctor.engine.child_main``).

Reads ``{"task": "module:function", "payload": {...}}`` from stdin, calls the function with the
payload and an ``Emitter``, and reports on the pipe named by VKDOCTOR_CHILD_FD.  Kept tiny: it is
on the critical path of every native probe.

Before anything else it ties its life to vkdoctor's (engine/child.py explains the contract):
SIGKILL on parent death, and a watcher of the lifeline pipe that kills the child's whole process
group (drivers may fork) when vkdoctor is gone.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import select
import signal
import sys
import threading
import time
import traceback
from typing import Any

from vkdoctor.engine.child import ITEM_MARKER, LIFELINE_FD_VAR, PARENT_PID_VAR, PROTO_FD_VAR

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_group() -> None:
    os.killpg(os.getpgrp(), signal.SIGKILL)
    os._exit(1)  # not reached: SIGKILL reaches this process too


def _watch_lifeline(fd: int) -> None:
    # Readable means EOF (vkdoctor never writes to it): the parent is gone, take the group down.
    while True:
        try:
            readable, _, _ = select.select([fd], [], [])
        except InterruptedError:
            continue
        except OSError:
            return
        if readable:
            _die_with_group()


def tie_to_parent() -> None:
    """PR_SET_PDEATHSIG(SIGKILL), then close the race with a parent that died before it, then
    start the lifeline watcher.  Each part is best effort: a failure costs only this guarantee."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        pass
    parent = int(os.environ.get(PARENT_PID_VAR, "0") or 0)
    if parent and os.getppid() != parent:
        _die_with_group()  # reparented already: vkdoctor died between fork and here
    lifeline = int(os.environ.get(LIFELINE_FD_VAR, "-1") or -1)
    if lifeline >= 0:
        threading.Thread(
            target=_watch_lifeline, args=(lifeline,), name="lifeline", daemon=True
        ).start()


class Emitter:
    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._item_started = 0.0
        self._crumbs: list[str] = []

    def _send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message, default=str) + "\n").encode()
        # One write per message: the parent must see each crumb before a crash can happen.
        os.write(self._fd, data)

    def crumb(self, text: str) -> None:
        self._crumbs.append(text)
        self._send({"kind": "crumb", "text": text})

    def result(self, data: Any) -> None:
        self._send({"kind": "result", "data": data})

    def begin(self, item: str) -> None:
        os.write(2, f"{ITEM_MARKER}{item}\n".encode())
        self._crumbs = []
        self._item_started = time.monotonic()
        self._send({"kind": "begin", "item": item})

    def end(self, item: str, ok: bool = True) -> None:
        self._send(
            {
                "kind": "end",
                "item": item,
                "ok": ok,
                "crumbs": self._crumbs,
                "duration_s": time.monotonic() - self._item_started,
            }
        )


def main() -> int:
    fd = int(os.environ.get(PROTO_FD_VAR, "-1"))
    if fd < 0:
        print("vkdoctor.engine.child_main is internal to vkdoctor", file=sys.stderr)
        return 2
    tie_to_parent()
    emitter = Emitter(fd)
    try:
        request = json.loads(sys.stdin.read())
        # A warm child learns its Vulkan variables only now, before anything reads them.
        for key, value in (request.get("environ") or {}).items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        module_name, _, function_name = request["task"].partition(":")
        function = getattr(importlib.import_module(module_name), function_name)
        function(request.get("payload") or {}, emitter)
    except Exception:
        emitter._send({"kind": "error", "text": traceback.format_exc()})
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
