"""Saving a report from the TUI: JSON or Markdown, redacted or not.

Secrets are always masked (``redact.scrub_report``, as every report vkdoctor writes); identity
(home, user, host, machine ids) is replaced when asked, which the save dialog does by default.
The Markdown is the report tooling's (``render.markdown``) plus a section for kernel runs, which
that renderer knows nothing of.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vkdoctor import kernelfmt
from vkdoctor.kernelrun import KernelRun
from vkdoctor.model import Report
from vkdoctor.redact import redact_report, scrub_report
from vkdoctor.render.markdown import render_markdown
from vkdoctor.report_io import dumps, write_atomic

FORMATS = ("json", "markdown")


@dataclass(frozen=True)
class SaveRequest:
    path: str
    format: str = "json"  # json | markdown
    redact: bool = True


def markdown(report: Report) -> str:
    text = render_markdown(report)
    run = KernelRun.from_report(report)
    if run is not None and run.runs:
        # Before the renderer's closing "<sub>vkdoctor ...</sub>" line, when it has one.
        body, sep, footer = text.rstrip("\n").rpartition("\n<sub>")
        if sep:
            text = f"{body}\n\n{kernels_markdown(run)}\n{sep.lstrip()}{footer}\n"
        else:
            text = text.rstrip("\n") + "\n\n" + kernels_markdown(run)
    return text


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
    report = redact_report(report) if request.redact else scrub_report(report)
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
