"""Console rendering with rich: one line per probe, then findings with their remedies.

``vkdoctor check`` prints ``probe_line`` live as results arrive and ``findings_block`` at the end;
``report show`` prints the same two for a stored report, so both look identical.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.text import Text

from vkdoctor.diagnosis.order import ranked
from vkdoctor.render.safe_text import ascii_fallback, clean_finding, clean_report
from vkdoctor.render.styles import SEVERITY_LOOK, STATUS_LOOK
from vkdoctor.report.model import Finding, ProbeResult, Report, Severity, Status

STATUS_STYLE = {status: (look.icon, look.colour) for status, look in STATUS_LOOK.items()}
SEVERITY_STYLE = {severity: look.colour for severity, look in SEVERITY_LOOK.items()}


class _AsciiStream:
    """A stream whose encoding cannot show the status glyphs (PYTHONIOENCODING=ascii): they
    become ASCII markers instead of a UnicodeEncodeError."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(ascii_fallback(text, self._stream.encoding or "ascii"))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _stream_for(stderr: bool) -> TextIO | None:
    stream = sys.stderr if stderr else sys.stdout
    try:
        "✔→…".encode(getattr(stream, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return _AsciiStream(stream)  # type: ignore[return-value]
    return None  # rich picks sys.stdout/sys.stderr itself, at each write


def make_console(stderr: bool = False, force_plain: bool = False) -> Console:
    # rich honours NO_COLOR and switches to plain text when the stream is not a terminal; then
    # lines are not wrapped either, so logs and CI output stay greppable, one finding a line.
    console = Console(
        file=_stream_for(stderr), stderr=stderr, no_color=force_plain or None, highlight=False
    )
    console.soft_wrap = not console.is_terminal
    return console


def _indented(text: str, indent: int, style: str = "") -> Text:
    """Indent every line (Padding would pad lines with trailing spaces to the full width)."""
    pad = " " * indent
    return Text("\n".join(pad + line for line in text.splitlines() or [""]), style=style)


def probe_line(result: ProbeResult) -> Text:
    icon, style = STATUS_STYLE[result.status]
    line = Text()
    line.append(f"{icon} ", style=style)
    line.append(f"{result.id:<20}", style="bold")
    line.append(f" {result.status.value:<8}", style=style)
    if result.status is Status.SKIPPED:
        line.append(
            f" blocked by {result.blocked_by}" if result.blocked_by else " not run", style="dim"
        )
        return line
    line.append(f" {result.duration_s:6.2f}s", style="dim")
    counts = _counts(result.findings)
    if counts:
        line.append("  " + counts, style="dim")
    return line


def _counts(findings: Iterable[Finding]) -> str:
    tally = {s: 0 for s in Severity}
    for finding in findings:
        tally[finding.severity] += 1
    parts = [f"{n} {s.value}" for s, n in reversed(tally.items()) if n]
    return ", ".join(parts)


def finding_block(probe: ProbeResult, finding: Finding, verbose: bool = False) -> RenderableType:
    finding = clean_finding(finding)  # callers other than findings_block (kernels) pass raw ones
    style = SEVERITY_STYLE[finding.severity]
    head = Text()
    head.append(f"[{finding.severity.value.upper()}] ", style=style)
    head.append(finding.summary)
    head.append(f"  ({finding.code}, {probe.id})", style="dim")
    parts: list[RenderableType] = [head]
    if verbose and finding.detail:
        parts.append(_indented(finding.detail, 4, "dim"))
    if finding.remedy:
        parts.append(_indented("→ " + finding.remedy.text, 4))
        for command in finding.remedy.commands:
            parts.append(_indented("$ " + command, 6, "bold"))
    if verbose and finding.evidence:
        evidence = json.dumps(finding.evidence, indent=2, sort_keys=True, default=str)
        parts.append(_indented(evidence, 4, "dim"))
    return Group(*parts)


def findings_block(report: Report, verbose: bool = False) -> RenderableType:
    """The verdict, then root causes with the symptoms they explain folded under them; info
    findings only with -v."""
    report = clean_report(report)  # no terminal escapes from manifests or reports
    parts: list[RenderableType] = []
    status = report.summary()["status"]
    if report.verdict:
        parts.append(Text(""))
        parts.append(
            Text(
                report.verdict,
                style={"ok": "bold green", "warn": "bold yellow"}.get(status, "bold red"),
            )
        )
    shown = ranked(report, include_info=verbose)
    total = len(report.findings())
    hidden = total - len(shown) - sum(len(s.symptoms) for s in shown)
    for item in shown:
        parts.append(Text(""))
        parts.append(finding_block(item.probe, item.finding, verbose))
        if item.symptoms:
            parts.append(Text("    because of this:", style="dim"))
            for symptom in item.symptoms:
                parts.append(_indented(f"- {symptom.summary}  ({symptom.code})", 6, "dim"))
    if verbose:
        for probe in report.probes:
            if probe.facts:
                parts.append(Text(""))
                parts.append(Text(f"facts of {probe.id}:", style="bold"))
                body = json.dumps(probe.facts, indent=2, sort_keys=True, default=str)
                parts.append(_indented(body, 2, "dim"))
    parts.append(Text(""))
    parts.append(summary_line(status, max(hidden, 0)))
    return Group(*parts)


def summary_line(status: str, hidden_info: int = 0) -> Text:
    style = {"ok": "green", "warn": "yellow", "fail": "bold red"}[status]
    words = {"ok": "no problems found", "warn": "warnings found", "fail": "problems found"}[status]
    line = Text(f"vkdoctor: {words}", style=style)
    if hidden_info:
        line.append(
            f" ({hidden_info} informational finding{'s' if hidden_info != 1 else ''} hidden; -v shows them)",
            style="dim",
        )
    return line


def render_report(console: Console, report: Report, verbose: bool = False) -> None:
    report = clean_report(report)
    for probe in report.probes:
        console.print(probe_line(probe))
    from vkdoctor.kernels.run import KernelRun

    kernel_run = KernelRun.from_report(report)
    if kernel_run is not None and kernel_run.runs:
        from vkdoctor.render.kernels import kernel_run_parts

        console.print()
        for part in kernel_run_parts(kernel_run):
            console.print(part)
    console.print(findings_block(report, verbose))


def print_markup(console: Console, text: str) -> None:
    console.print(escape(text))
