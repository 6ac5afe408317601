"""The diagnosis of one report: ids, remedies fitted to this machine, links, the verdict."""

from __future__ import annotations

from dataclasses import replace

from vkdoctor.diagnosis import links, verdict
from vkdoctor.diagnosis.remedies import Machine, fit_finding
from vkdoctor.report.model import Report


def diagnose(report: Report, machine: Machine | None) -> Report:
    """``report`` with every finding given an id (and, when ``machine`` is known, its remedy
    fitted to it), the cause-and-symptom links, ``root_causes`` and ``verdict``.  In place."""
    for probe in report.probes:
        probe.findings = [
            fit_finding(replace(f, id=f"{probe.id}.{n}"), machine)
            if machine
            else replace(f, id=f.id or f"{probe.id}.{n}")
            for n, f in enumerate(probe.findings, start=1)
        ]
    found = links.link(report)
    links.apply(report, found)
    report.verdict = verdict.verdict(report, found.headline)
    return report
