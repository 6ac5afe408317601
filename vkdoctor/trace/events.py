"""Parsing the raw trace: one JSON object per line, written by the audit module, the layer,
the /proc poller and the tracer itself.

Lines are numbered in file order (``seq``), which is also the order in which things happened:
every writer appends whole lines with O_APPEND as the events occur.  A damaged line (a process
killed mid-write, a file cut at the size bound) is counted, never fatal.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import field
from pathlib import Path
from typing import Any

from vkdoctor.record import frozen

# Event kinds, by source.
AUDIT_KINDS = frozenset(
    {"hello", "fork_seen", "open", "close", "bind", "gipa", "gdpa", "signal", "exit"}
)
LAYER_KINDS = frozenset(
    {
        "layer_load",
        "layer_unload",
        "create_instance",
        "destroy_instance",
        "enum_pd",
        "create_device",
        "destroy_device",
        "device_nulls",
        "child_call",
        "fork",
    }
)
TRACER_KINDS = frozenset({"trace_start", "trace_end"})


@frozen
class Event:
    seq: int
    ev: str
    src: str
    pid: int | None
    tid: int | None
    t: int | None  # CLOCK_MONOTONIC nanoseconds (native writers); None for tracer lines
    data: Mapping[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def addr(self, key: str) -> int | None:
        """An address field ("0x..." strings in the raw file) as an int."""
        return parse_addr(self.data.get(key))

    def flag(self, key: str) -> bool:
        return self.data.get(key) is True

    # Typed accessors: a damaged or hand-edited trace must never crash the analysis.
    def text(self, key: str) -> str:
        value = self.data.get(key)
        return value if isinstance(value, str) else ""

    def items(self, key: str) -> list[Any]:
        value = self.data.get(key)
        return list(value) if isinstance(value, list) else []

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.data.get(key)
        return dict(value) if isinstance(value, dict) else {}

    def integer(self, key: str) -> int | None:
        return _int_or_none(self.data.get(key))


def parse_addr(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 16) if value.lower().startswith("0x") else int(value)
        except ValueError:
            return None
    return None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@frozen
class ParsedTrace:
    events: tuple[Event, ...]
    malformed: int = 0
    truncated: bool = False

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def of(self, *kinds: str) -> list[Event]:
        return [e for e in self.events if e.ev in kinds]


def parse_lines(lines: Iterable[str | bytes]) -> ParsedTrace:
    """Parse JSON lines; ``seq`` is the 1-based line number, so "event 12" is line 12 of the
    file that --out keeps."""
    events: list[Event] = []
    malformed = 0
    truncated = False
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", errors="replace")
        line = raw.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            malformed += 1
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("ev"), str):
            malformed += 1
            continue
        kind = obj["ev"]
        if kind == "truncated":
            truncated = True
            continue
        events.append(
            Event(
                seq=number,
                ev=kind,
                src=str(obj.get("src", "")),
                pid=_int_or_none(obj.get("pid")),
                tid=_int_or_none(obj.get("tid")),
                t=_int_or_none(obj.get("t")),
                data={k: v for k, v in obj.items() if k not in ("ev", "src", "pid", "tid", "t")},
            )
        )
    return ParsedTrace(events=tuple(events), malformed=malformed, truncated=truncated)


def read_trace(path: Path) -> ParsedTrace:
    """Parse a trace file; a missing or unreadable file is an empty trace."""
    try:
        with path.open("rb") as handle:
            return parse_lines(handle)
    except OSError:
        return ParsedTrace(events=())


def append_event(path: Path, event: Mapping[str, Any]) -> None:
    """Append one line the way the native writers do (one write, O_APPEND), so tracer lines
    land between native ones in the order things happened."""
    data = (json.dumps(dict(event), separators=(",", ":")) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)
