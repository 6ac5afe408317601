"""Files the TUI opens: reports (``check``/``kernels`` JSON) and traces (``vkdoctor trace``).

A trace comes in two forms: the raw event file that ``vkdoctor trace --out FILE`` keeps (JSON
lines, one event each: ``{"ev": "open", "src": "audit", "pid": .., "t": ns, "path": ..}``, see
``vkdoctor/trace/events.py``) or the trace's report (a vkdoctor report whose probe ``trace``
holds the findings and a timeline).  Everything format-specific about raw events lives in
``_event_rows``, so a change of the event format touches one function.  Findings for raw events
come from ``vkdoctor.trace.analysis`` when that package is installed.

Plain data only (no textual): the views render these values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from vkdoctor.record import frozen
from vkdoctor.render.safe_text import clean, clean_finding
from vkdoctor.report.io import ReportError, load_report
from vkdoctor.report.model import Finding, Report
from vkdoctor.system.safefile import FileRefused, read_regular

TRACE_PROBE = "trace"
_MAX_BYTES = 256 << 20  # a trace bigger than this is not read into a terminal UI


class DocumentError(Exception):
    """A file the TUI cannot open, with a message for the user."""


@frozen
class TraceEvent:
    seq: int  # line number in the event file: "event 12" everywhere means line 12
    pid: int | None
    t_ms: float | None  # since the first timed event
    kind: str  # load | unload | instance | device | signal | program | other
    text: str


@frozen
class LibrarySpan:
    path: str
    role: str  # loader | driver | layer
    pid: int | None
    loaded_at: int
    unloaded_at: int | None
    at_exit: bool = False


@frozen
class TraceDoc:
    path: str
    origin: str  # "events" | "report"
    title: str
    events: tuple[TraceEvent, ...]
    libraries: tuple[LibrarySpan, ...]
    findings: tuple[Finding, ...]
    last_seq: int
    malformed: int = 0
    notes: tuple[str, ...] = ()

    @property
    def flagged_unloads(self) -> frozenset[int]:
        """Events whose unload a finding blames (a premature unload): drawn as a problem."""
        return frozenset(
            f.evidence["unloaded_at_event"]
            for f in self.findings
            if isinstance(f.evidence.get("unloaded_at_event"), int)
        )


def _read(path: str) -> str:
    # Regular files only, non-blocking, bounded: a FIFO or /dev/zero must not hang the UI.
    try:
        return read_regular(path, _MAX_BYTES).decode("utf-8", errors="replace")
    except FileRefused as exc:
        raise DocumentError(f"{path}: {exc.reason}") from None
    except FileNotFoundError:
        raise DocumentError(f"{path}: no such file") from None
    except OSError as exc:
        raise DocumentError(f"{path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # a NUL byte in the path
        raise DocumentError(f"{path!r}: {exc}") from None


def _cleaned(doc: TraceDoc) -> TraceDoc:
    """The trace without terminal control characters: paths and messages come from the
    traced program and its libraries."""
    return replace(
        doc,
        title=clean(doc.title),
        events=tuple(replace(e, text=clean(e.text), kind=clean(e.kind)) for e in doc.events),
        libraries=tuple(
            replace(lib, path=clean(lib.path), role=clean(lib.role)) for lib in doc.libraries
        ),
        findings=tuple(clean_finding(f) for f in doc.findings),
        notes=tuple(clean(n) for n in doc.notes),
    )


def open_document(path: str) -> tuple[Report | None, TraceDoc | None]:
    """A report, or a trace: ``(report, None)`` or ``(None, trace)``; a trace's report gives
    both."""
    text = _read(path)
    if not _looks_like_events(text):
        try:
            report = load_report(path)
        except ReportError as exc:
            raise DocumentError(f"{exc} (and not a vkdoctor trace either)") from None
        if [p.id for p in report.probes] == [TRACE_PROBE]:
            return report, _trace_from_report(path, report)
        return report, None
    return None, parse_trace(path, text)


def _looks_like_events(text: str) -> bool:
    """Raw traces are JSON lines whose first line is a whole event; a report is one document."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    try:
        obj = json.loads(first)
    except ValueError:
        return False
    return isinstance(obj, dict) and isinstance(obj.get("ev"), str)


def open_trace(path: str) -> TraceDoc:
    _, trace = open_document(path)
    if trace is None:
        raise DocumentError(f"{path}: a vkdoctor report without a trace")
    return trace


def parse_trace(path: str, text: str) -> TraceDoc:
    """A trace document from raw JSON-lines events."""
    events, libraries, last_seq, malformed, notes = _event_rows(text.splitlines())
    findings, notes = _analyse(text, notes)
    if not events and not malformed:
        raise DocumentError(f"{path}: empty, or not a vkdoctor trace")
    doc = TraceDoc(
        path=path,
        origin="events",
        title="Trace events",
        events=tuple(events),
        libraries=tuple(libraries),
        findings=tuple(findings),
        last_seq=last_seq,
        malformed=malformed,
        notes=tuple(notes),
    )
    return _cleaned(doc)


# -- raw events ----------------------------------------------------------------------------------

_LOADER = re.compile(r"^libvulkan\.so(\.\d+)*$")
_DRIVER_HINTS = ("_icd", "libvulkan_", "nvidia", "lvp", "radeon", "intel", "mesa")


def _role(path: str, drivers: set[str]) -> str | None:
    name = path.rsplit("/", 1)[-1]
    if _LOADER.match(name):
        return "loader"
    if name.startswith("libVkLayer"):
        return "layer"
    if path in drivers or any(h in name.lower() for h in _DRIVER_HINTS):
        return "driver"
    return None


def _short(path: Any) -> str:
    return str(path or "?").rsplit("/", 1)[-1]


def _event_rows(
    lines: Iterable[str],
) -> tuple[list[TraceEvent], list[LibrarySpan], int, int, list[str]]:
    """The Vulkan-relevant timeline and library lifetimes of a raw event file."""
    raw: list[tuple[int, dict[str, Any]]] = []
    malformed = 0
    notes: list[str] = []
    last_seq = 0
    for seq, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            continue
        last_seq = seq
        try:
            obj = json.loads(line)
        except ValueError:
            malformed += 1
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("ev"), str):
            malformed += 1
            continue
        if obj["ev"] == "truncated":
            notes.append(f"the trace was cut at its size bound (line {seq})")
            continue
        raw.append((seq, obj))
    # The loader takes vk_icd* entry points from drivers only: that names them for certain.
    drivers = {
        str(o.get("to"))
        for _, o in raw
        if o["ev"] == "bind" and str(o.get("sym", "")).startswith("vk_icd")
    }
    t0 = next((o["t"] for _, o in raw if isinstance(o.get("t"), int)), None)
    events: list[TraceEvent] = []
    open_libs: dict[tuple[Any, str], LibrarySpan] = {}
    spans: list[LibrarySpan] = []
    for seq, o in raw:
        ev = o["ev"]
        pid = o.get("pid") if isinstance(o.get("pid"), int) else None
        t = o.get("t")
        t_ms = (t - t0) / 1e6 if isinstance(t, int) and t0 is not None else None
        path = str(o.get("path") or "")
        text: str | None = None
        kind = "other"
        if ev in ("open", "close"):
            role = _role(path, drivers)
            if role is None:
                continue
            key = (pid, o.get("base") or path)
            if ev == "open":
                kind, text = "load", f"loaded {_short(path)} ({role})"
                if o.get("by"):
                    text += f" by {_short(o['by'])}"
                open_libs[key] = LibrarySpan(path, role, pid, seq, None)
            else:
                at_exit = o.get("at_exit") is True
                kind, text = "unload", f"unloaded {_short(path)}" + (" at exit" if at_exit else "")
                if o.get("by"):
                    text += f" (dlclose from {_short(o['by'])})"
                span = open_libs.pop(key, None) or LibrarySpan(path, role, pid, seq, None)
                spans.append(LibrarySpan(span.path, span.role, pid, span.loaded_at, seq, at_exit))
        elif ev in ("create_instance", "destroy_instance", "create_device", "destroy_device"):
            kind = "instance" if "instance" in ev else "device"
            handle = o.get("inst") if kind == "instance" else o.get("dev")
            verb = "vkCreate" if ev.startswith("create") else "vkDestroy"
            text = f"{verb}{'Instance' if kind == 'instance' else 'Device'} {handle or ''}".strip()
            if o.get("res") not in (None, 0, "VK_SUCCESS"):
                text += f" -> {o.get('res')}"
        elif ev == "signal":
            kind = "signal"
            text = f"signal {o.get('sig')} at ip {o.get('ip')} (address {o.get('addr')})"
            if o.get("ip_obj"):
                text += f" in {_short(o['ip_obj'])}"
        elif ev in ("hello", "exit", "trace_start", "trace_end", "fork", "fork_seen"):
            kind = "program"
            text = {
                "hello": f"exec {o.get('exe', '')}",
                "exit": "process exit begins",
                "trace_start": f"trace starts ({o.get('mode', 'unknown mode')})",
                "trace_end": f"program ended: {_status(o.get('status'))}",
            }.get(ev, f"fork: child of {o.get('ppid')}")
        if text is not None:
            events.append(TraceEvent(seq, pid, t_ms, kind, text))
    spans.extend(open_libs.values())
    spans.sort(key=lambda s: s.loaded_at)
    return events, spans, last_seq, malformed, notes


def _status(status: Any) -> str:
    if isinstance(status, Mapping):
        if status.get("signal"):
            return f"killed by {status['signal']}"
        if status.get("exit_code") is not None:
            return f"exit status {status['exit_code']}"
        return str(status.get("state", "unknown"))
    return str(status or "unknown")


def _analyse(text: str, notes: list[str]) -> tuple[list[Finding], list[str]]:
    """Findings from vkdoctor's trace analysis, when this installation has it."""
    try:
        from vkdoctor.trace.analysis import TraceContext, analyze
        from vkdoctor.trace.events import parse_lines
    except ImportError:
        return [], [*notes, "this vkdoctor has no trace analysis: timeline only, no findings"]
    try:
        parsed = parse_lines(text.splitlines())
        main_pid = next((e.pid for e in parsed.events if e.ev == "trace_end"), None)
        analysis = analyze(parsed, TraceContext(main_pid=main_pid))
    except Exception as exc:  # a damaged trace must still show its timeline
        return [], [*notes, f"the trace analysis failed: {exc}"]
    return list(analysis.findings), notes


# -- the trace's report --------------------------------------------------------------------------

_TIMELINE = re.compile(r"^#(?P<seq>\d+)(?: \[pid (?P<pid>\d+)\])? (?P<text>.*)$")


def _kind_of(text: str) -> str:
    if text.startswith("loaded"):
        return "load"
    if text.startswith("unloaded"):
        return "unload"
    if "Instance" in text:
        return "instance"
    if "Device" in text and text.startswith("vk"):
        return "device"
    if text.startswith("SIG") or "signal" in text:
        return "signal"
    return "program"


def _trace_from_report(path: str, report: Report) -> TraceDoc:
    probe = next(p for p in report.probes if p.id == TRACE_PROBE)
    facts = probe.facts
    events = []
    for line in facts.get("timeline") or ():
        match = _TIMELINE.match(str(line))
        if match is None:
            continue
        pid = int(match["pid"]) if match["pid"] else None
        text = match["text"]
        events.append(TraceEvent(int(match["seq"]), pid, None, _kind_of(text), text))
    libraries = [
        LibrarySpan(
            path=str(lib.get("path", "")),
            role=str(lib.get("role", "")),
            pid=lib.get("pid"),
            loaded_at=int(lib.get("loaded_at_event") or 0),
            unloaded_at=lib.get("unloaded_at_event"),
            at_exit=bool(lib.get("at_exit")),
        )
        for lib in facts.get("vulkan_libraries") or ()
        if isinstance(lib, Mapping)
    ]
    notes = ["timeline clipped by the trace report"] if facts.get("timeline_clipped") else []
    last = max([e.seq for e in events] + [s.unloaded_at or s.loaded_at for s in libraries] + [0])
    doc = TraceDoc(
        path=path,
        origin="report",
        title=probe.title,
        events=tuple(events),
        libraries=tuple(libraries),
        findings=tuple(probe.findings),
        last_seq=int(facts.get("events") or last),
        notes=tuple(notes),
    )
    return _cleaned(doc)
