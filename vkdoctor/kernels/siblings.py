"""Devices of the same model compared kernel by kernel: on a machine with several identical GPUs,
one that is more than 10 % below the median of its siblings on a kernel is throttled, on a
narrower PCIe link, or misconfigured (``kernel-slower-than-siblings``, a warning).

Siblings are devices with the same name (the same model).  Only verified rows with a figure
count.  Every model's comparison is kept as evidence; the warning is for GPUs at real sizes only.  Pure: typed rows in, typed comparisons
and findings out.  Headless.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import field
from typing import TYPE_CHECKING, Any

from vkdoctor.kernels.peaks import UNITS
from vkdoctor.record import frozen
from vkdoctor.report import shell
from vkdoctor.report.codes import CodeInfo, code_table, make_finding
from vkdoctor.report.model import Finding, Severity

if TYPE_CHECKING:
    from vkdoctor.kernels.run import DeviceRun

SLOWER_BY = 0.10  # more than this fraction below the siblings' median is a warning

CODES = code_table(
    [
        CodeInfo(
            "kernel-slower-than-siblings",
            Severity.WARN,
            "a GPU is more than 10 % slower than identical GPUs on the same kernel",
            "Devices of the same model ran the same kernel at the same size; this one's figure "
            "is more than 10 % below the median of the others'.",
            causes=(
                "thermal or power throttling",
                "a narrower or slower PCIe link",
                "another process using that GPU",
                "clocks or power limits set differently",
            ),
            remedy="Compare clocks, power limits, temperatures and the PCIe link of the GPUs "
            "(`nvidia-smi -q -d CLOCK,POWER,TEMPERATURE,PERFORMANCE`, `lspci -vv`) and what "
            "else runs on it.",
        ),
    ]
)


@frozen
class Comparison:
    """One kernel across the devices of one model: each device's figure (metric units)."""

    name: str  # the device model
    kernel: str
    metric: str
    values: Mapping[int, float] = field(default_factory=dict)  # device index -> figure

    def median_of_siblings(self, index: int) -> float | None:
        others = [v for i, v in self.values.items() if i != index]
        return statistics.median(others) if others else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kernel": self.kernel,
            "metric": self.metric,
            "values": {str(i): round(v, 4) for i, v in sorted(self.values.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comparison:
        values = data.get("values") or {}
        return cls(
            name=str(data.get("name", "")),
            kernel=str(data.get("kernel", "")),
            metric=str(data.get("metric", "")),
            values={
                int(i): float(v)
                for i, v in values.items()
                if str(i).isdigit() and isinstance(v, (int, float))
            },
        )


def compare(runs: Sequence[DeviceRun]) -> tuple[Comparison, ...]:
    """A comparison for every kernel that two or more devices of one model both verified."""
    models: dict[str, list[DeviceRun]] = {}
    for run in runs:
        models.setdefault(run.name, []).append(run)
    out: list[Comparison] = []
    for name, siblings in models.items():
        if len(siblings) < 2:
            continue
        kernels: dict[str, dict[int, float]] = {}
        metrics: dict[str, str] = {}
        for run in siblings:
            for row in run.rows:
                if row.status == "ok" and row.figure is not None:
                    kernels.setdefault(row.kernel, {})[run.index] = row.figure.value
                    metrics[row.kernel] = row.figure.metric
        for kernel, values in kernels.items():
            if len(values) >= 2:
                out.append(Comparison(name, kernel, metrics[kernel], values))
    return tuple(out)


def slower_findings(
    comparisons: Sequence[Comparison], runs: Sequence[DeviceRun] = ()
) -> list[Finding]:
    where = {r.index: r.device.pci_address for r in runs}
    nvidia = {r.index for r in runs if r.device.vendor_id == 0x10DE}
    # No warning for CPU devices (lavapipe twice is one CPU measured twice: the spread is host
    # noise, not a slow device) nor for tiny sizes (a few microseconds of work).
    quiet = {r.index for r in runs if r.device.is_cpu or r.preset == "tiny"}
    findings = []
    for comparison in comparisons:
        unit = UNITS.get(comparison.metric, "")
        for index, value in sorted(comparison.values.items()):
            median = comparison.median_of_siblings(index)
            if index in quiet or median is None or median <= 0 or value >= (1 - SLOWER_BY) * median:
                continue
            below = (1 - value / median) * 100
            at = f" at {where[index]}" if where.get(index) else ""
            siblings = len(comparison.values) - 1
            findings.append(
                make_finding(
                    CODES,
                    "kernel-slower-than-siblings",
                    f"GPU {index} ({comparison.name}{at}) {comparison.kernel}: {value:.1f} {unit}, "
                    f"{below:.0f} % below the median {median:.1f} {unit} of its {siblings} "
                    f"sibling{'s' if siblings != 1 else ''}",
                    evidence={
                        "index": index,
                        "kernel": comparison.kernel,
                        "value": round(value, 4),
                        "siblings_median": round(median, 4),
                        "unit": unit,
                        "values": {str(i): round(v, 4) for i, v in comparison.values.items()},
                    },
                    commands=_commands(where.get(index), index in nvidia),
                )
            )
    return findings


def _commands(pci: str | None, nvidia: bool) -> list[str]:
    """What tells the GPU apart from its siblings; only with its PCI address, since Vulkan's
    device index is not nvidia-smi's."""
    if pci is None:
        return []
    commands = []
    if nvidia:
        commands.append(
            shell.command(
                "nvidia-smi", "-q", "-d", "CLOCK,POWER,TEMPERATURE,PERFORMANCE", "-i", pci
            )
        )
    commands.append(shell.command("lspci", "-vv", "-s", pci))
    return commands
