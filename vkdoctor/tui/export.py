"""Saving a report from the TUI: JSON or Markdown, redacted or not.

Secrets are always masked (``redact.scrub_report``, as every report vkdoctor writes); identity
(home, user, host, machine ids) is replaced when asked, which the save dialog does by default.
The Markdown is the report tooling's (``render.markdown``), kernel runs included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vkdoctor.record import frozen
from vkdoctor.render.markdown import render_markdown
from vkdoctor.report.io import dumps, write_text
from vkdoctor.report.model import Report
from vkdoctor.report.redact import redact_report, scrub_report

FORMATS = ("json", "markdown")


@frozen
class SaveRequest:
    path: str
    format: str = "json"  # json | markdown
    redact: bool = True


def render(report: Report, request: SaveRequest) -> str:
    report = redact_report(report) if request.redact else scrub_report(report)
    if request.format == "markdown":
        return render_markdown(report)
    return dumps(report)


def save(report: Report, request: SaveRequest) -> Path:
    """Write (atomically for a file, never replacing a device); returns the absolute path."""
    path = Path(request.path).expanduser()
    write_text(render(report, request), str(path))
    return path.absolute()


def default_name(fmt: str, base: Any = "vkdoctor-report") -> str:
    return f"{base}.{'md' if fmt == 'markdown' else 'json'}"
