"""The finding view: the list (failures first) and, for the highlighted finding, its summary,
remedy and copyable commands first (at 80x24 nothing else fits above the fold), then the detail,
evidence and the loader-log lines that bear on it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import ClassVar

from rich.console import Group, RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, OptionList, Static
from textual.widgets.option_list import Option

from vkdoctor.render.console import SEVERITY_STYLE
from vkdoctor.report.model import Severity
from vkdoctor.tui.viewmodel import SEVERITY_ICON, FindingItem, one_line

_LOG_STYLE = {"error": "bold red", "warn": "yellow", "info": "cyan", "debug": "dim"}


def finding_head(item: FindingItem) -> RenderableType:
    """What is wrong and what fixes it: shown above the commands."""
    finding = item.finding
    style = SEVERITY_STYLE[finding.severity]
    parts: list[RenderableType] = []
    head = Text()
    head.append(f"{SEVERITY_ICON[finding.severity]} {finding.severity.value.upper()} ", style=style)
    head.append(finding.summary, style="bold")
    parts.append(head)
    parts.append(Text(f"{finding.code} · probe {item.probe_id}", style="dim"))
    if finding.remedy and finding.remedy.text:
        parts.append(Text("→ " + finding.remedy.text))
    return Group(*parts)


def finding_detail(item: FindingItem) -> RenderableType:
    """Below the commands: why, the evidence and the loader log."""
    finding = item.finding
    parts: list[RenderableType] = []
    if finding.detail:
        parts += [Text(""), Text(finding.detail)]
    if finding.evidence:
        evidence = json.dumps(finding.evidence, indent=2, sort_keys=True, default=str)
        parts += [Text(""), Text("Evidence", style="bold underline"), Text(evidence, style="dim")]
    if item.log:
        parts += [Text(""), Text("Loader log", style="bold underline")]
        for entry in item.log:
            line = Text()
            line.append(f"{entry.level:<5} ", style=_LOG_STYLE.get(entry.level, ""))
            line.append(entry.message)
            parts.append(line)
    return Group(*parts)


class FindingsView(Vertical):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("c", "copy", "Copy command")]

    class CopyRequested(Message):
        """The app owns the clipboard (OSC 52 reaches the local terminal over SSH)."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._items: dict[str, FindingItem] = {}
        self._current: FindingItem | None = None
        self._filled_width = -1

    def compose(self) -> ComposeResult:
        table: DataTable[str | Text] = DataTable(id="finding-list", cursor_type="row")
        yield table
        with VerticalScroll(id="finding-detail"):
            yield Static("", id="finding-text")
            yield Static("Commands (enter or c copies)", id="commands-title")
            yield OptionList(id="remedy-commands")
            yield Static("", id="finding-more")

    def on_mount(self) -> None:
        table = self.query_one("#finding-list", DataTable)
        table.add_column("", key="sev", width=1)
        table.add_column("code", key="code", width=28)
        table.add_column("summary", key="summary")
        self._show(None)

    def show(self, items: Sequence[FindingItem]) -> None:
        self._items = {item.key: item for item in items}
        self._fill()
        self._show(items[0] if items else None)

    def _fill(self) -> None:
        """(Re)list the findings, summaries cut to the room left: no sideways scrolling."""
        table = self.query_one("#finding-list", DataTable)
        row = table.cursor_row
        table.clear()
        # sev + code columns, cell padding, the scrollbar.
        room = max(16, table.size.width - 1 - 28 - 6 - 3) if table.size.width else 60
        self._filled_width = table.size.width
        for item in self._items.values():
            finding = item.finding
            style = SEVERITY_STYLE[finding.severity]
            table.add_row(
                Text(SEVERITY_ICON[finding.severity], style=style),
                finding.code,
                one_line(finding.summary, room),
                key=item.key,
            )
        if self._items:
            table.move_cursor(row=min(row, len(self._items) - 1))

    def on_resize(self) -> None:
        if self.query_one("#finding-list", DataTable).size.width != self._filled_width:
            self._fill()

    def select_probe(self, probe_id: str) -> None:
        """Move to the probe's worst finding (the list is sorted worst first)."""
        table = self.query_one("#finding-list", DataTable)
        for row, key in enumerate(table.rows):
            item = self._items.get(key.value or "")
            if item is not None and item.probe_id == probe_id:
                table.move_cursor(row=row)
                self._show(item)
                return

    def _show(self, item: FindingItem | None) -> None:
        self._current = item
        text = self.query_one("#finding-text", Static)
        commands = self.query_one("#remedy-commands", OptionList)
        title = self.query_one("#commands-title", Static)
        more = self.query_one("#finding-more", Static)
        commands.clear_options()
        if item is None:
            text.update(Text("No findings.", style="dim"))
            more.update("")
            title.display = commands.display = False
            return
        text.update(finding_head(item))
        more.update(finding_detail(item))
        remedy = item.finding.remedy
        lines = list(remedy.commands) if remedy else []
        title.display = commands.display = bool(lines)
        commands.add_options([Option(f"$ {line}", id=str(n)) for n, line in enumerate(lines)])
        if lines:
            commands.highlighted = 0

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        item = self._items.get(event.row_key.value or "")
        if item is not None and item is not self._current:
            self._show(item)
            self.query_one("#finding-detail", VerticalScroll).scroll_home(animate=False)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._copy(int(event.option.id or 0))

    def action_copy(self) -> None:
        commands = self.query_one("#remedy-commands", OptionList)
        self._copy(commands.highlighted or 0)

    def _copy(self, index: int) -> None:
        remedy = self._current.finding.remedy if self._current else None
        if remedy is None or not remedy.commands:
            self.notify("This finding has no command to copy.", severity="warning")
            return
        self.post_message(self.CopyRequested(remedy.commands[min(index, len(remedy.commands) - 1)]))

    @property
    def worst(self) -> Severity | None:
        return max(
            (i.finding.severity for i in self._items.values()), key=lambda s: s.rank, default=None
        )
