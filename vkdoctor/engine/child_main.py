"""Entry point of vkdoctor's child processes (``python -m vkdoctor.engine.child_main``).

Reads ``{"task": "module:function", "payload": {...}}`` from stdin, calls the function with the
payload and an ``Emitter``, and reports on the pipe named by VKDOCTOR_CHILD_FD.  Kept tiny: it is
on the critical path of every native probe.

Before anything else it ties its life to vkdoctor's (engine/child.py explains the contract):
SIGKILL on parent death, and a watcher process that kills the child's whole process group
(drivers may fork) when the child dies or vkdoctor is gone (EOF on the lifeline pipe).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import select
import signal
import sys
import time
import traceback
from typing import Any

from vkdoctor.engine.protocol import (
    DONE_MARKER,
    ITEM_MARKER,
    LIFELINE_FD_VAR,
    PARENT_PID_VAR,
    PROTO_FD_VAR,
)

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _set_pdeathsig(signum: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _kill_group_and_exit() -> None:
    with contextlib.suppress(OSError):
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os._exit(1)  # not reached when this process is in the group


def _group_watcher(child: int, lifeline: int, keep: tuple[int, ...]) -> None:
    """A tiny process in the child's group that outlives the child: when the child dies (its
    PR_SET_PDEATHSIG) or vkdoctor does (EOF on the lifeline), it kills the whole group, so a
    helper a driver forked cannot stay behind.  A process and not a thread: the child may be
    SIGKILLed at any moment, and a forked helper copies no threads."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    for fd in keep:
        with contextlib.suppress(OSError):
            os.close(fd)  # the protocol pipe: the parent must see EOF when the child ends
    signal.signal(signal.SIGUSR1, lambda *_: _kill_group_and_exit())
    _set_pdeathsig(signal.SIGUSR1)
    if os.getppid() != child:
        _kill_group_and_exit()
    watched = [lifeline] if lifeline >= 0 else []
    while True:
        try:
            readable, _, _ = select.select(watched, [], [], None if watched else 3600)
        except InterruptedError:
            continue
        except OSError:
            watched = []
            continue
        if readable:
            _kill_group_and_exit()  # vkdoctor is gone


def tie_to_parent(proto_fd: int) -> None:
    """PR_SET_PDEATHSIG(SIGKILL), then close the race with a parent that died before it, then
    start the group watcher.  Each part is best effort: a failure costs only this guarantee."""
    _set_pdeathsig(signal.SIGKILL)
    parent = int(os.environ.get(PARENT_PID_VAR, "0") or 0)
    if parent and os.getppid() != parent:
        _kill_group_and_exit()  # reparented already: vkdoctor died between fork and here
    lifeline = int(os.environ.get(LIFELINE_FD_VAR, "-1") or -1)
    if os.getpgrp() != os.getpid():
        return  # not a group of our own (run by hand): killing the group would hit others
    me = os.getpid()
    try:
        watcher = os.fork()
    except OSError:
        return
    if watcher == 0:
        try:
            _group_watcher(me, lifeline, (proto_fd,))
        finally:
            os._exit(1)
    if lifeline >= 0:
        os.close(lifeline)  # only the watcher needs it


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


def _apply(environ: dict[str, str | None]) -> dict[str, str | None]:
    """Set a task's Vulkan variables; returns what they were, to restore them after it."""
    before = {key: os.environ.get(key) for key in environ}
    for key, value in environ.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    return before


def _sitecustomize() -> None:
    """Children start with -S (engine/child.py: no .pth processing, the parent's sys.path is
    handed over), but a sitecustomize on that path still runs, as it would without -S."""
    with contextlib.suppress(Exception):
        importlib.import_module("sitecustomize")


def main() -> int:
    _sitecustomize()
    fd = int(os.environ.get(PROTO_FD_VAR, "-1"))
    if fd < 0:
        print("vkdoctor.engine.child_main is internal to vkdoctor", file=sys.stderr)
        return 2
    tie_to_parent(fd)
    emitter = Emitter(fd)
    # One request per line.  A request that says "keep" is followed by the next one once this
    # task ended normally (engine/child.py, ChildPool): the process, its imports and the
    # libraries the loader mapped stay, which is most of a task's cost.  EOF ends the child.
    while line := sys.stdin.readline():
        try:
            request = json.loads(line)
            # A warm child learns its Vulkan variables only now, before anything reads them.
            before = _apply(request.get("environ") or {})
            module_name, _, function_name = request["task"].partition(":")
            function = getattr(importlib.import_module(module_name), function_name)
            emitter._crumbs = []
            function(request.get("payload") or {}, emitter)
        except Exception:
            emitter._send({"kind": "error", "text": traceback.format_exc()})
            return 1
        if not request.get("keep"):
            return 0
        _apply(before)
        sys.stdout.flush()
        sys.stderr.flush()
        os.write(2, DONE_MARKER.encode())
        emitter._send({"kind": "done"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
