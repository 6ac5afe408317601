"""The pipeline view: one row per probe with its status icon, duration and finding counts,
updated live while a run is in progress."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Static

from vkdoctor.render.console import SEVERITY_STYLE, STATUS_STYLE
from vkdoctor.report.model import ProbeResult, Report, Severity, Status
from vkdoctor.tui.viewmodel import SEVERITY_ICON, FindingItem, counts, one_line

_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class PipelineView(Vertical):
    """Rows are keyed by probe id; the app tells the view what happened, the view posts
    ``ProbeChosen`` when the user opens a probe."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "choose", "Findings of probe", show=False)
    ]

    class ProbeChosen(Message):
        def __init__(self, probe_id: str) -> None:
            super().__init__()
            self.probe_id = probe_id

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._probe_titles: dict[str, str] = {}
        self._in_flight: dict[str, float] = {}
        self._probe_results: dict[str, ProbeResult] = {}
        self._problems: tuple[tuple[FindingItem, ...], str] = ((), "")
        self._spin = 0

    def compose(self) -> ComposeResult:
        table: DataTable[str | Text] = DataTable(id="probes", cursor_type="row")
        yield table
        yield Static("", id="probe-detail")
        with VerticalScroll(id="problems"):
            yield Static("", id="problem-list")

    def on_mount(self) -> None:
        table = self.query_one("#probes", DataTable)
        table.add_column("", key="icon", width=1)
        table.add_column("probe", key="probe", width=20)
        table.add_column("status", key="status", width=8)
        table.add_column("time", key="time", width=7)
        table.add_column("findings", key="findings")
        self.set_interval(0.25, self._spin_running)

    # -- what the app tells it

    def reset(self, probes: Sequence[tuple[str, str]]) -> None:
        """A new run: every probe pending."""
        table = self.query_one("#probes", DataTable)
        table.clear()
        self._probe_titles = dict(probes)
        self._in_flight.clear()
        self._probe_results.clear()
        for probe_id, _title in probes:
            table.add_row(
                Text("·", style="dim"), probe_id, Text("pending", style="dim"), "", "", key=probe_id
            )
        self._show_detail()

    def started(self, probe_id: str) -> None:
        self._in_flight[probe_id] = time.monotonic()
        self._ensure_row(probe_id, self._probe_titles.get(probe_id, probe_id))
        self._set_cells(
            probe_id, icon=Text(_SPINNER[0], style="cyan"), status=Text("running", style="cyan")
        )

    def finished(self, result: ProbeResult) -> None:
        self._in_flight.pop(result.id, None)
        self._probe_results[result.id] = result
        self._probe_titles.setdefault(result.id, result.title)
        self._ensure_row(result.id, result.title)
        icon, style = STATUS_STYLE[result.status]
        if result.status is Status.SKIPPED:
            duration = ""
            found = f"blocked by {result.blocked_by}" if result.blocked_by else "not run"
        else:
            duration = f"{result.duration_s:.2f}s"
            found = counts(result.findings)
        self._set_cells(
            result.id,
            icon=Text(icon, style=style),
            status=Text(result.status.value, style=style),
            time=duration,
            findings=Text(found, style="dim"),
        )
        self._show_detail()

    def show_problems(self, items: Sequence[FindingItem], verdict: str = "") -> None:
        """Under the probes: the verdict, what is wrong and the first command that fixes it, then
        the informational findings.  Where the area has room (a tall terminal) each finding also
        gets its detail; at 80x24 the list stays compact, so every fix shows first."""
        self._problems = (tuple(items), verdict)
        self._render_problems()

    def on_resize(self) -> None:
        if self._problems[0] or self._problems[1]:
            self._render_problems()

    def _render_problems(self) -> None:
        items, verdict = self._problems
        area = self.query_one("#problems", VerticalScroll)
        compact = self._problem_text(items, verdict, detail=False)
        full = self._problem_text(items, verdict, detail=True)
        room = area.size.height
        fits = room > 0 and len(full.wrap(self.app.console, max(20, area.size.width - 2))) <= room
        self.query_one("#problem-list", Static).update(full if fits else compact)

    @staticmethod
    def _problem_text(items: Sequence[FindingItem], verdict: str, detail: bool) -> Text:
        problems = [i for i in items if i.finding.severity is not Severity.INFO]
        infos = [i for i in items if i.finding.severity is Severity.INFO]
        text = Text()
        if verdict:
            text.append(one_line(verdict, 240) + "\n", style="bold")
        if not problems:
            text.append("No problems found.", style="green")
            if infos:
                text.append(
                    f" {len(infos)} informational finding{'s' if len(infos) != 1 else ''}: "
                    "press 2.",
                    style="dim",
                )
        for n, item in enumerate(problems):
            finding = item.finding
            if n:
                text.append("\n")
            text.append(
                f"{SEVERITY_ICON[finding.severity]} ", style=SEVERITY_STYLE[finding.severity]
            )
            text.append(one_line(finding.summary, 240))
            if finding.remedy and finding.remedy.commands:
                text.append(f"\n  $ {finding.remedy.commands[0]}", style="bold")
            if detail and finding.detail:
                text.append(f"\n  {one_line(finding.detail, 480)}", style="dim")
        if infos:
            text.append("\n\nInformational (2 shows each in full)", style="bold underline")
        for item in infos:
            finding = item.finding
            text.append(
                f"\n{SEVERITY_ICON[finding.severity]} ", style=SEVERITY_STYLE[finding.severity]
            )
            text.append(one_line(finding.summary, 240))
            text.append(f"  {finding.code}", style="dim")
            if detail and finding.detail:
                text.append(f"\n  {one_line(finding.detail, 480)}", style="dim")
        return text

    def show_report(self, report: Report) -> None:
        """A finished report (opened from a file, or the end of a run)."""
        self.reset([(p.id, p.title) for p in report.probes])
        for result in report.probes:
            self.finished(result)

    # -- internals

    def _ensure_row(self, probe_id: str, title: str) -> None:
        table = self.query_one("#probes", DataTable)
        if probe_id not in table.rows:
            table.add_row(Text("·", style="dim"), probe_id, "", "", "", key=probe_id)
            self._probe_titles.setdefault(probe_id, title)

    def _set_cells(self, probe_id: str, **cells: str | Text) -> None:
        table = self.query_one("#probes", DataTable)
        for column, value in cells.items():
            table.update_cell(probe_id, column, value)

    def _spin_running(self) -> None:
        if not self._in_flight:
            return
        self._spin += 1
        now = time.monotonic()
        for probe_id, started in self._in_flight.items():
            self._set_cells(
                probe_id,
                icon=Text(_SPINNER[self._spin % len(_SPINNER)], style="cyan"),
                time=f"{now - started:.1f}s",
            )

    def _show_detail(self) -> None:
        table = self.query_one("#probes", DataTable)
        detail = self.query_one("#probe-detail", Static)
        if table.row_count == 0:
            detail.update("")
            return
        row = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value or ""
        result = self._probe_results.get(row)
        text = Text()
        text.append(self._probe_titles.get(row, row), style="bold")
        if result is not None and result.blocked_by:
            text.append(f" · skipped: {result.blocked_by} failed", style="dim")
        elif result is not None and result.findings:
            text.append(" · enter: its findings", style="dim")
        detail.update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value:
            self.post_message(self.ProbeChosen(event.row_key.value))

    def action_choose(self) -> None:
        table = self.query_one("#probes", DataTable)
        if table.row_count:
            row = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            if row:
                self.post_message(self.ProbeChosen(row))
