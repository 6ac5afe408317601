"""Kernel-suite runs for the terminal: one table per device, from the kernel-run records.

``vkdoctor kernels`` prints them after a run, ``vkdoctor report show`` from a stored report.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from vkdoctor.kernels import fmt as kernelfmt
from vkdoctor.kernels.run import KernelRun
from vkdoctor.render.safe_text import clean
from vkdoctor.render.styles import KERNEL_STATUS_COLOUR


def kernel_run_parts(result: KernelRun) -> list[Any]:
    """A heading line, then per device its description and a table of its kernels."""
    loader = result.loader_version or "unknown"
    parts: list[Any] = [
        Text(
            f"vkdoctor kernels · seed {result.seed} · loader {loader} · "
            f"{result.wall_s:.1f} s" + (" · cancelled" if result.cancelled else ""),
            style="bold",
        )
    ]
    for run in result.runs:
        parts.append(Text(""))
        device = clean(kernelfmt.device_line(run.device))  # names come from the driver
        parts.append(Text(f"Device {run.index}: {device}", style="bold"))
        reps = kernelfmt.repetitions(run.sizes, kernelfmt.timing_source(run.rows))
        parts.append(Text(f"  sizes: {run.preset}" + (f", {reps}" if reps else ""), style="dim"))
        parts.append(Text(f"  {kernelfmt.peak_text(run.peak)}", style="dim"))
        if not run.rows:
            continue
        table = Table(box=None, pad_edge=False, header_style="bold", padding=(0, 1))
        for column, justify in (
            ("kernel", "left"),
            ("size", "right"),
            ("status", "left"),
            ("median", "right"),
            ("spread", "right"),
            ("figure", "right"),
            ("of peak", "right"),
        ):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for row in run.rows:
            table.add_row(
                row.kernel,
                kernelfmt.problem_size(row.result),
                Text(row.status, style=KERNEL_STATUS_COLOUR.get(row.status, "")),
                kernelfmt.time_ns(row.timing.get("median_ns")),
                kernelfmt.spread(row.timing),
                kernelfmt.figure_text(row.figure),
                kernelfmt.of_peak(row.figure),
            )
        parts.append(table)
    return parts
