"""The compare view: the report on screen (A) against a second report (B), the same diff that
``vkdoctor report diff`` prints (``render.diff``), coloured by kind of line."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from vkdoctor.render.diff import ReportDiff, render_lines

# The CLI's colours for the same kinds of line (commands/report.py).
_STYLE = {
    "header": "bold",
    "section": "bold underline",
    "added": "green",
    "removed": "red",
    "changed": "yellow",
    "detail": "dim",
}


def diff_text(diff: ReportDiff) -> Text:
    text = Text()
    for n, (kind, line) in enumerate(render_lines(diff)):  # lines come cleaned of escapes
        if n:
            text.append("\n")
        text.append(line, style=_STYLE.get(kind, ""))
    return text


class CompareView(Vertical):
    def compose(self) -> ComposeResult:
        yield Static(
            Text("Nothing to compare: press d and give a second report.", style="dim"),
            id="compare-empty",
        )
        with VerticalScroll(id="compare-body"):
            yield Static("", id="compare-text")

    def on_mount(self) -> None:
        self.query_one("#compare-body").display = False

    def show(self, diff: ReportDiff | None) -> None:
        self.query_one("#compare-empty").display = diff is None
        self.query_one("#compare-body").display = diff is not None
        if diff is not None:
            self.query_one("#compare-text", Static).update(diff_text(diff))
            self.query_one("#compare-body", VerticalScroll).scroll_home(animate=False)
