"""The trace view: a ``vkdoctor trace`` file as library lifetimes (load → unload, on the event
axis), the diagnoses, and the event timeline."""

from __future__ import annotations

from pathlib import Path

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from vkdoctor.render.console import SEVERITY_STYLE
from vkdoctor.tui.documents import LibrarySpan, TraceDoc
from vkdoctor.tui.viewmodel import SEVERITY_ICON, one_line, span_cells

_ROLE_STYLE = {"loader": "cyan", "driver": "green", "layer": "magenta"}
_KIND_STYLE = {"load": "green", "unload": "yellow", "signal": "bold red", "program": "dim"}
MAX_EVENTS = 2000  # rows in the timeline table; the rest is counted, not shown

EMPTY = (
    "No trace open.\n\n"
    "Record one with\n"
    "    vkdoctor trace --out trace.jsonl -- ./your-app\n"
    "then press o and open trace.jsonl (or start with `vkdoctor tui --trace trace.jsonl`)."
)


def lifetimes(
    spans: tuple[LibrarySpan, ...], last: int, width: int, flagged: frozenset[int] = frozenset()
) -> Text:
    """One line per library: ``name  ····████████····`` over events 1..last; a lifetime whose
    unload a finding blames (``flagged``) ends in red."""
    text = Text()
    if not spans:
        return Text("no Vulkan library was loaded", style="dim")
    name_w = min(26, max(len(s.path.rsplit("/", 1)[-1]) for s in spans))
    bar_w = max(10, width - name_w - 2)
    for n, span in enumerate(spans):
        if n:
            text.append("\n")
        name = span.path.rsplit("/", 1)[-1]
        name = name if len(name) <= name_w else name[: name_w - 1] + "…"
        text.append(f"{name:<{name_w}} ", style=_ROLE_STYLE.get(span.role, ""))
        a, b = span_cells(span.loaded_at, span.unloaded_at, last, bar_w)
        text.append("·" * a, style="dim")
        fill = "█" * (b - a)
        blamed = span.unloaded_at is not None and span.unloaded_at in flagged
        text.append(fill, style="bold red" if blamed else _ROLE_STYLE.get(span.role, "white"))
        text.append("·" * (bar_w - b), style="dim")
    return text


class LifetimeChart(Static):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._doc: TraceDoc | None = None

    def show(self, doc: TraceDoc) -> None:
        self._doc = doc
        self.refresh(layout=True)

    def render(self) -> RenderableType:
        if self._doc is None:
            return Text("")
        doc = self._doc
        return lifetimes(doc.libraries, doc.last_seq, max(self.size.width, 30), doc.flagged_unloads)


class TraceView(Vertical):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)

    def compose(self) -> ComposeResult:
        yield Static(Text(EMPTY, style="dim"), id="trace-empty")
        with VerticalScroll(id="trace-top"):
            yield Static("", id="trace-head")
            yield Static("", id="trace-findings")
            yield Static("Library lifetimes, over the events", classes="section")
            yield LifetimeChart(id="trace-libs")
        yield DataTable(id="trace-events", cursor_type="row")

    def on_mount(self) -> None:
        table = self.query_one("#trace-events", DataTable)
        table.add_column("#", key="seq")
        table.add_column("ms", key="ms")
        table.add_column("pid", key="pid")
        table.add_column("event", key="event")
        self.show(None)

    def show(self, doc: TraceDoc | None) -> None:
        empty = self.query_one("#trace-empty", Static)
        top = self.query_one("#trace-top")
        table = self.query_one("#trace-events", DataTable)
        empty.display = doc is None
        top.display = table.display = doc is not None
        if doc is None:
            return
        head = Text()
        head.append(doc.title, style="bold")
        head.append(f" · {Path(doc.path).name} · {len(doc.events)} events", style="dim")
        if doc.malformed:
            head.append(f" · {doc.malformed} damaged lines skipped", style="yellow")
        for note in doc.notes:
            head.append(f"\n{note}", style="yellow")
        self.query_one("#trace-head", Static).update(head)
        self.query_one("#trace-libs", LifetimeChart).show(doc)
        findings = Text()
        for n, finding in enumerate(doc.findings):
            if n:
                findings.append("\n")
            findings.append(
                f"{SEVERITY_ICON[finding.severity]} ", style=SEVERITY_STYLE[finding.severity]
            )
            findings.append(one_line(finding.summary, 300))
            findings.append(f" ({finding.code})", style="dim")
            if finding.remedy and finding.remedy.text:
                findings.append(f"\n  → {one_line(finding.remedy.text, 300)}", style="dim")
        if not doc.findings:
            findings.append("no findings", style="dim")
        self.query_one("#trace-findings", Static).update(findings)
        table.clear()
        for event in doc.events[:MAX_EVENTS]:
            table.add_row(
                str(event.seq),
                f"{event.t_ms:.1f}" if event.t_ms is not None else "",
                str(event.pid) if event.pid is not None else "",
                Text(event.text, style=_KIND_STYLE.get(event.kind, "")),
            )
        if len(doc.events) > MAX_EVENTS:
            table.add_row("…", "", "", Text(f"{len(doc.events) - MAX_EVENTS} more", style="dim"))
