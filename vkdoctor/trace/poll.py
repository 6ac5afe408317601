"""The fallback tracker: poll /proc/PID/maps and turn differences into open/close events.

Used when the audit module is not available, and for ``vkdoctor trace --pid PID`` (a process we
did not start, where LD_AUDIT cannot be injected).  It sees which code objects are mapped, at the
poll interval's resolution, and nothing else: no symbol bindings, no proc-address queries, no
crash address, no caller of dlopen/dlclose, and libraries loaded and unloaded between two polls.

/proc/PID/maps is read directly rather than through psutil's memory_maps(), which reads smaps and
costs milliseconds per poll in the traced process's kernel time; psutil answers the lifecycle
questions (does the process exist, is it a zombie, what is it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psutil

from vkdoctor.record import frozen, mutable

Range = tuple[int, int, bool]  # start, end, executable

# What the poller cannot see, for the report.
POLL_BLIND_SPOTS = (
    "vk* symbol bindings and dlsym() calls (loader bypass cannot be detected)",
    "vkGetInstanceProcAddr / vkGetDeviceProcAddr queries (trampoline use, NULL-instance "
    "queries, NULL results and cross-device pointers cannot be detected)",
    "the address and instruction pointer of a crash (a crash cannot be tied to an unloaded "
    "library)",
    "which code called dlopen()/dlclose()",
    "libraries loaded and unloaded again between two polls",
)


def parse_maps(text: str) -> dict[str, list[Range]]:
    """File-backed mappings of ``/proc/PID/maps`` grouped by path; only objects with code.

    Data files that a program mmaps (caches, fonts) have no executable mapping, so requiring one
    keeps the result to loaded ELF objects.
    """
    objects: dict[str, list[Range]] = {}
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 6:
            continue
        path = parts[5].strip()
        if not path.startswith("/"):
            continue
        if path.endswith(" (deleted)"):
            path = path[: -len(" (deleted)")]
        try:
            lo_s, hi_s = parts[0].split("-", 1)
            lo, hi = int(lo_s, 16), int(hi_s, 16)
        except ValueError:
            continue
        objects.setdefault(path, []).append((lo, hi, "x" in parts[1]))
    return {path: ranges for path, ranges in objects.items() if any(r[2] for r in ranges)}


def read_maps(procfs: Path, pid: int) -> str | None:
    try:
        return (procfs / str(pid) / "maps").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _range_json(r: Range) -> list[str]:
    return [hex(r[0]), hex(r[1]), "x" if r[2] else "-"]


@mutable
class MapsPoller:
    """Diffs successive snapshots of one process's maps; emits events through ``emit``."""

    pid: int
    procfs: Path
    emit: Callable[[Mapping[str, Any]], None]
    polls: int = 0
    unreadable: str | None = None

    def __post_init__(self) -> None:
        self._known: dict[str, list[Range]] = {}
        # Libraries seen vanishing in the last poll: an unload if the process lives on, but a
        # snapshot taken while the kernel tears an exiting process down also shows libraries
        # missing, so they are judged at the next poll.
        self._vanished: list[dict[str, Any]] = []

    def _make(self, kind: str, path: str, mapped: list[Range], **extra: Any) -> dict[str, Any]:
        event: dict[str, Any] = {
            "ev": kind,
            "src": "poll",
            "pid": self.pid,
            "t": time.monotonic_ns(),
            "path": path,
            "base": hex(min(r[0] for r in mapped)),
        }
        event.update(extra)
        return event

    def _event(self, kind: str, path: str, mapped: list[Range], **extra: Any) -> None:
        self.emit(self._make(kind, path, mapped, **extra))

    def finish(self, exited: bool) -> None:
        """Report what vanished in the last poll, once it is known whether the process ended."""
        self._settle(at_exit=exited)

    def _settle(self, at_exit: bool) -> None:
        for event in self._vanished:
            event["at_exit"] = at_exit
            self.emit(event)
        self._vanished = []

    def poll(self, *, initial: bool = False) -> bool:
        """Take one snapshot; False once the process is gone (or its maps cannot be read)."""
        text = read_maps(self.procfs, self.pid)
        if text is None:
            self.unreadable = self.unreadable or "gone"
            self._settle(at_exit=True)
            return False
        # A zombie (exited, not yet reaped) shows empty maps: that is exit, not an unload.
        if not text.strip():
            self._settle(at_exit=True)
            return False
        self._settle(at_exit=False)  # the process outlived the last poll's unloads
        self.polls += 1
        current = parse_maps(text)
        for path, ranges in current.items():
            old = self._known.get(path)
            if old is None:
                self._event(
                    "open",
                    path,
                    ranges,
                    ranges=[_range_json(r) for r in ranges],
                    initial=initial,
                )
            elif min(r[0] for r in old) != min(r[0] for r in ranges):
                # Unloaded and loaded again at another address between two polls.
                self._event("close", path, old, at_exit=False)
                self._event("open", path, ranges, ranges=[_range_json(r) for r in ranges])
        for path, ranges in self._known.items():
            if path not in current:
                self._vanished.append(self._make("close", path, ranges))
        self._known = current
        return True


@frozen
class AttachOutcome:
    pid: int
    found: bool
    exited: bool  # the process ended while we watched
    polls: int
    duration_s: float
    error: str | None = None  # not-found | access-denied
    exe: str | None = None
    cmdline: tuple[str, ...] = ()


def attach(
    pid: int,
    procfs: Path,
    emit: Callable[[Mapping[str, Any]], None],
    *,
    duration: float | None,
    interval: float,
) -> AttachOutcome:
    """Watch a running process until it exits, ``duration`` elapses, or Ctrl-C."""
    started = time.monotonic()
    try:
        proc = psutil.Process(pid)
        exe = _safe(proc.exe)
        cmdline = tuple(_safe(proc.cmdline) or ())
    except psutil.NoSuchProcess:
        return AttachOutcome(pid, False, False, 0, 0.0, "not-found")
    except psutil.AccessDenied:
        exe, cmdline = None, ()
    poller = MapsPoller(pid, procfs, emit)
    if not poller.poll(initial=True):
        error = "not-found" if not psutil.pid_exists(pid) else "access-denied"
        return AttachOutcome(pid, error != "not-found", False, 0, 0.0, error, exe, cmdline)
    exited = False
    try:
        while duration is None or time.monotonic() - started < duration:
            time.sleep(interval)
            if not poller.poll() or _is_zombie(proc):
                exited = True
                break
    except KeyboardInterrupt:
        pass
    poller.finish(exited)
    return AttachOutcome(
        pid, True, exited, poller.polls, time.monotonic() - started, None, exe, cmdline
    )


def _is_zombie(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _safe(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except psutil.Error:
        return None
