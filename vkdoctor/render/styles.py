"""How every renderer shows a status or a severity: one table for console, Markdown and TUI.

Plain data (no rich import), so that the console, the Markdown export and the TUI's views agree
on icons, colours and words, and a new status is added in one place.
"""

from __future__ import annotations

from vkdoctor.record import frozen
from vkdoctor.report.model import Severity, Status


@frozen
class Look:
    icon: str  # terminal glyph (console, TUI)
    emoji: str  # Markdown, where GitHub renders emoji
    colour: str  # a rich style
    words: str  # how a sentence says it


STATUS_LOOK: dict[Status, Look] = {
    Status.OK: Look("✔", "✅", "green", "ok"),
    Status.INFO: Look("ℹ", "ℹ️", "cyan", "informational"),
    Status.WARN: Look("!", "⚠️", "yellow", "warnings"),
    Status.FAIL: Look("✘", "❌", "bold red", "failed"),
    Status.SKIPPED: Look("-", "⏭️", "dim", "skipped"),
    Status.TIMEOUT: Look("⏱", "⏱️", "bold magenta", "timed out"),
    Status.CRASHED: Look("☠", "💥", "bold red", "crashed"),
}
SEVERITY_LOOK: dict[Severity, Look] = {
    Severity.INFO: Look("ℹ", "ℹ️", "cyan", "info"),
    Severity.WARN: Look("!", "⚠️", "yellow", "warning"),
    Severity.FAIL: Look("✘", "❌", "bold red", "failure"),
}
# The report's overall status (summary.status) as a headline.
HEADLINE: dict[str, str] = {
    "ok": "no problems found",
    "warn": "warnings found",
    "fail": "problems found",
}
# The headline of an "ok" run that a signal or the deadline stopped: not a clean bill of health.
STOPPED_HEADLINE = "stopped before the end: no problem found in the steps that ran"


def headline(status: str, stopped_early: bool) -> str:
    """The words for a report's overall status (``Report.summary()["status"]``)."""
    return STOPPED_HEADLINE if status == "ok" and stopped_early else HEADLINE[status]


# A kernel row's status (vkdoctor.kernels): its colour in tables.
KERNEL_STATUS_COLOUR: dict[str, str] = {
    "ok": "green",
    "unsupported": "dim",
    "skipped": "dim",
    "wrong-result": "bold red",
    "failed": "bold red",
    "timeout": "bold magenta",
    "hung": "bold magenta",
    "device-lost": "bold red",
    "crashed": "bold red",
}
