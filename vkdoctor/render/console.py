"""Console rendering with rich: one line per probe, then findings with their remedies.

``vkdoctor check`` prints ``probe_line`` live as results arrive and ``findings_block`` at the end;
``report show`` prints the same two for a stored report, so both look identical.  Three levels:
the default (verdict, what needs action and its fix, one line per probe), ``-v`` (every finding
with its evidence as labelled fields) and ``-vv`` (everything: facts and the loader log); ``-q``
prints the verdict alone.  Everything wraps to the terminal's width.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, TextIO

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.text import Text

from vkdoctor.diagnosis.order import Shown, ranked
from vkdoctor.render.fields import Field, fields
from vkdoctor.render.safe_text import ascii_fallback, clean, clean_finding, clean_report
from vkdoctor.render.styles import SEVERITY_LOOK, STATUS_LOOK, headline
from vkdoctor.report.codes import code_info
from vkdoctor.report.model import Finding, ProbeResult, Report, Severity, Status

MAX_HANG = 16  # widest hanging indent of a labelled field
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


def make_console(stderr: bool = False, force_plain: bool = False, color: str = "auto") -> Console:
    """The console of every command.  ``color``: auto (styles on a terminal, unless NO_COLOR),
    always (styles even into a pipe) or never (no escape sequence at all); ``force_plain`` is
    the older ``never``.

    Off a terminal lines are not wrapped (logs and CI output stay greppable, one finding a
    line) unless COLUMNS asks for a width; on a terminal everything wraps to its width."""
    if force_plain:
        color = "never"
    options: dict[str, Any] = {}
    if color == "never":
        options["color_system"] = None
    elif color == "always":
        options["force_terminal"] = True
    console = Console(
        file=_stream_for(stderr),
        stderr=stderr,
        no_color=True if color == "never" else None,
        highlight=False,
        **options,
    )
    if color == "always" and not (stderr and sys.stderr.isatty()) and not sys.stdout.isatty():
        console.soft_wrap = not os.environ.get("COLUMNS")
    else:
        console.soft_wrap = not console.is_terminal and not os.environ.get("COLUMNS")
    return console


class Wrapped:
    """Text wrapped to the width it is rendered at, with a hanging indent (the continuation
    lines start under the text, not at the margin) and no trailing padding.  ``joiner`` ends
    every line but the last: " \\" keeps a wrapped shell command one pasteable command.
    Rendered with ``no_wrap`` (soft wrap, off a terminal) it stays one line."""

    def __init__(
        self,
        parts: Sequence[tuple[str, str]],
        indent: int = 0,
        hang: int = 0,
        joiner: str = "",
    ) -> None:
        self.parts = [(text, style) for text, style in parts if text]
        self.indent = indent
        self.hang = hang
        self.joiner = joiner

    def plain(self) -> str:
        return "".join(text for text, _ in self.parts)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        plain = self.plain()
        if options.no_wrap:
            yield self._styled(" " * self.indent, 0, len(plain))
            return
        width = max(20, options.max_width - self.indent - len(self.joiner))
        lines = textwrap.wrap(
            plain,
            width=width,
            subsequent_indent=" " * self.hang,
            break_long_words=True,
            break_on_hyphens=False,
            expand_tabs=False,
            replace_whitespace=False,
            drop_whitespace=True,
        ) or [""]
        # Map each wrapped line back to its span of ``plain`` to keep the styles.
        position = 0
        for number, line in enumerate(lines):
            body = line[self.hang :] if number else line
            start = plain.index(body, position) if body else position
            position = start + len(body)
            text = self._styled(" " * (self.indent + (self.hang if number else 0)), start, position)
            if number < len(lines) - 1 and self.joiner:
                text.append(self.joiner, style=self.parts[-1][1])
            yield text

    def _styled(self, pad: str, start: int, end: int) -> Text:
        text = Text(pad, no_wrap=True, overflow="ignore", end="\n")
        offset = 0
        for chunk, style in self.parts:
            low, high = max(start, offset), min(end, offset + len(chunk))
            if low < high:
                text.append(chunk[low - offset : high - offset], style=style)
            offset += len(chunk)
        return text


def _field_lines(fields_: Iterable[Field], indent: int) -> list[RenderableType]:
    # Continuation lines start under the value for short keys; a long key (a dotted path)
    # would leave too narrow a column, so its value continues a little indented instead.
    return [
        Wrapped(
            [(f"{f.key}: ", "dim bold"), (f.value, "dim")],
            indent,
            hang=len(f.key) + 2 if len(f.key) + 2 <= MAX_HANG else 4,
        )
        for f in fields_
    ]


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


def finding_block(probe: ProbeResult, finding: Finding, verbose: int | bool = 0) -> RenderableType:
    """One finding: its headline, the fix (text and commands); from -v its explanation and its
    evidence as labelled fields (lists cut at -v, whole at -vv)."""
    finding = clean_finding(finding)  # callers other than findings_block (kernels) pass raw ones
    verbosity = int(verbose)
    style = SEVERITY_STYLE[finding.severity]
    label = f"[{finding.severity.value.upper()}] "
    parts: list[RenderableType] = [
        Wrapped(
            [(label, style), (finding.summary, ""), (f"  ({finding.code}, {probe.id})", "dim")],
            hang=len(label),
        )
    ]
    if verbosity and finding.detail:
        for paragraph in finding.detail.splitlines() or [""]:
            parts.append(Wrapped([(paragraph, "dim")], 4))
    if finding.remedy:
        parts.append(Wrapped([("→ " + finding.remedy.text, "")], 4, hang=2))
        for command in finding.remedy.commands:
            parts.append(Wrapped([("$ " + command, "bold")], 6, hang=4, joiner=" \\"))
    if verbosity and finding.evidence:
        parts.extend(_field_lines(fields(finding.evidence, cut=verbosity < 2), 4))
    return Group(*parts)


def _for_developers(finding: Finding) -> bool:
    if finding.severity is not Severity.INFO:
        return False
    info = code_info(finding.code)
    return info is not None and info.audience == "developer"


def verdict_line(report: Report) -> RenderableType:
    """The one-line verdict (``-q`` prints only this), or the summary when there is none."""
    status = report.summary()["status"]
    if not report.verdict:
        return summary_line(status, stopped_early=report.stopped_early())
    style = {"ok": "bold green", "warn": "bold yellow"}.get(status, "bold red")
    return Wrapped([(clean(report.verdict), style)])


def findings_block(report: Report, verbose: int | bool = 0) -> RenderableType:
    """The verdict, then root causes with the symptoms they explain folded under them.

    Default: findings that need action (warn, fail).  -v: every finding with its evidence,
    the informational ones only application developers act on grouped in one line.  -vv:
    those too, the facts of every probe and the loader log."""
    # No terminal escapes from manifests or reports; the component records are not shown
    # here, and cleaning 10 000 driver records cost 0.4 s of a hostile machine's check.
    report = clean_report(replace(report, loader=None, drivers=[], layers=[], devices=[]))
    verbosity = int(verbose)
    parts: list[RenderableType] = []
    status = report.summary()["status"]
    if report.verdict:
        parts.append(Text(""))
        parts.append(verdict_line(report))
    shown = ranked(report, include_info=verbosity >= 1)
    developer = [s for s in shown if not s.symptoms and _for_developers(s.finding)]
    if verbosity < 2:
        shown = [s for s in shown if s not in developer]
    total = len(report.findings())
    hidden = total - len(shown) - sum(len(s.symptoms) for s in shown)
    for item in shown:
        parts.append(Text(""))
        parts.append(finding_block(item.probe, item.finding, verbosity))
        if item.symptoms:
            parts.append(Text("    because of this:", style="dim"))
            for symptom in item.symptoms:
                parts.append(
                    Wrapped([(f"- {symptom.summary}  ({symptom.code})", "dim")], 6, hang=2)
                )
    if verbosity == 1 and developer:
        parts.append(Text(""))
        parts.append(_developer_line(developer))
    if verbosity >= 2:
        parts.extend(_facts_and_log(report))
    parts.append(Text(""))
    hidden_info = max(hidden, 0) if verbosity == 0 else 0
    parts.append(summary_line(status, hidden_info, report.stopped_early()))
    return Group(*parts)


def _developer_line(items: Sequence[Shown]) -> RenderableType:
    codes = list(dict.fromkeys(item.finding.code for item in items))
    count = len(items)
    return Wrapped(
        [
            (f"[INFO] {count} finding{'s' if count != 1 else ''} for application developers", ""),
            (f" ({', '.join(codes)}); -vv shows them", "dim"),
        ],
        hang=7,
    )


def _facts_and_log(report: Report) -> list[RenderableType]:
    parts: list[RenderableType] = []
    for probe in report.probes:
        if probe.facts:
            parts.append(Text(""))
            parts.append(Text(f"facts of {probe.id}:", style="bold"))
            parts.extend(_field_lines(fields(probe.facts, cut=False), 2))
    log = report.log_table()
    if log:
        parts.append(Text(""))
        parts.append(Text(f"loader log ({len(log)} distinct lines):", style="bold"))
        for entry in log:
            label = f"{entry.level}: "
            parts.append(Wrapped([(label, "dim bold"), (entry.message, "dim")], 2, len(label)))
    return parts


def summary_line(status: str, hidden_info: int = 0, stopped_early: bool = False) -> Text:
    style = {"ok": "yellow" if stopped_early else "green", "warn": "yellow", "fail": "bold red"}
    line = Text(f"vkdoctor: {headline(status, stopped_early)}", style=style[status])
    if hidden_info:
        plural = "s" if hidden_info != 1 else ""
        line.append(f" ({hidden_info} informational finding{plural} hidden; -v shows them)", "dim")
    return line


def render_report(
    console: Console, report: Report, verbose: int | bool = 0, quiet: bool = False
) -> None:
    """What ``check`` printed for this report (``report show``)."""
    report = clean_report(report)
    if quiet:
        console.print(verdict_line(report))
        return
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
