"""Saving a report from the TUI: JSON or Markdown, redacted or not.

The Markdown renderer (``vkdoctor.render.markdown``) and redaction (``vkdoctor.redact``) belong
to the report tooling; this adapter uses them when they are installed and falls back to small
local versions otherwise, so the TUI never depends on their arrival order.  Kernel runs get a
Markdown section of their own (the report renderer knows nothing of them).
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vkdoctor import kernelfmt
from vkdoctor.kernelrun import KernelRun
from vkdoctor.model import Report, Severity
from vkdoctor.report_io import dumps, write_atomic

FORMATS = ("json", "markdown")


@dataclass(frozen=True)
class SaveRequest:
    path: str
    format: str = "json"  # json | markdown
    redact: bool = True


def redact(report: Report) -> Report:
    try:
        from vkdoctor.redact import redact_report  # type: ignore[import-not-found]
    except ImportError:
        return _fallback_redact(report)
    result: Report = redact_report(report)
    return result


def _fallback_redact(report: Report) -> Report:
    """Home directory, user and host name replaced in every string (JSON text level)."""
    text = json.dumps(report.to_dict())
    home = os.path.expanduser("~")
    replacements = []
    if home not in ("", "/"):
        replacements.append((home, "~"))
    for value, placeholder in ((_user(), "<user>"), (socket.gethostname(), "<host>")):
        if value and len(value) > 2:
            replacements.append((value, placeholder))
    for value, placeholder in replacements:
        text = text.replace(json.dumps(value)[1:-1], placeholder)
    data = json.loads(text)
    data.setdefault("environment", {})["redaction"] = {
        "applied": True,
        "placeholders": {"~": "home directory", "<user>": "user name", "<host>": "host name"},
    }
    return Report.from_dict(data)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return ""


def markdown(report: Report) -> str:
    try:
        from vkdoctor.render.markdown import render_markdown  # type: ignore[import-not-found]
    except ImportError:
        text = _fallback_markdown(report)
    else:
        text = render_markdown(report)
    run = KernelRun.from_report(report)
    if run is not None and run.runs:
        text = text.rstrip("\n") + "\n\n" + kernels_markdown(run)
    return text


def _fallback_markdown(report: Report) -> str:
    summary = report.summary()
    lines = [f"## vkdoctor: {summary['status']}", ""]
    lines += ["| Probe | Status | Time | Findings |", "|---|---|--:|---|"]
    for probe in report.probes:
        counts = ", ".join(
            f"{sum(f.severity is s for f in probe.findings)} {s.value}"
            for s in (Severity.FAIL, Severity.WARN, Severity.INFO)
            if any(f.severity is s for f in probe.findings)
        )
        lines.append(f"| {probe.id} | {probe.status.value} | {probe.duration_s:.2f}s | {counts} |")
    lines.append("")
    for probe, finding in sorted(report.findings(), key=lambda pf: -pf[1].severity.rank):
        lines.append(
            f"- **{finding.severity.value}** `{finding.code}` ({probe.id}): {finding.summary}"
        )
        if finding.remedy:
            lines.append(f"  - {finding.remedy.text}")
            lines += [f"  - `{command}`" for command in finding.remedy.commands]
    return "\n".join(lines) + "\n"


def kernels_markdown(run: KernelRun) -> str:
    """The kernel runs as a Markdown section: what a benchmark note needs."""
    lines = [
        "### Compute kernels",
        "",
        f"seed {run.seed} · loader {run.loader_version or 'unknown'} · vkdoctor kernel suite",
        "",
    ]
    for device in run.runs:
        lines.append(f"**Device {device.index}: {kernelfmt.device_line(device.device)}**")
        lines.append("")
        reps = kernelfmt.repetitions(device.sizes, kernelfmt.timing_source(device.rows))
        lines.append(f"sizes: {device.preset}" + (f", {reps}" if reps else ""))
        lines.append(f"{kernelfmt.peak_text(device.peak)}")
        lines.append("")
        lines.append("| Kernel | Size | Status | Median | Spread | Figure | Of peak |")
        lines.append("|---|--:|---|--:|--:|--:|--:|")
        for row in device.rows:
            lines.append(
                f"| {row.kernel} | {kernelfmt.problem_size(row.result)} | {row.status} | "
                f"{kernelfmt.time_ns(row.timing.get('median_ns'))} | "
                f"{kernelfmt.spread(row.timing)} | {kernelfmt.figure_text(row.figure)} | "
                f"{kernelfmt.fraction(row.figure.fraction if row.figure else None)} |"
            )
        lines.append("")
    return "\n".join(lines)


def render(report: Report, request: SaveRequest) -> str:
    if request.redact:
        report = redact(report)
    if request.format == "markdown":
        return markdown(report)
    return dumps(report)


def save(report: Report, request: SaveRequest) -> Path:
    """Write atomically; returns the absolute path written."""
    path = Path(request.path).expanduser()
    write_atomic(path, render(report, request))
    return path.absolute()


def default_name(fmt: str, base: Any = "vkdoctor-report") -> str:
    return f"{base}.{'md' if fmt == 'markdown' else 'json'}"
