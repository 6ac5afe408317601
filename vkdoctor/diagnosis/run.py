"""The diagnosis of one report: ids, remedies fitted to this machine, links, the verdict."""

from __future__ import annotations

from dataclasses import replace

from vkdoctor.diagnosis import fold, links, verdict
from vkdoctor.diagnosis.remedies import Machine, fit_finding
from vkdoctor.report.model import Report


def diagnose(report: Report, machine: Machine | None) -> Report:
    """``report`` with every finding given an id, the cause-and-symptom links, ``root_causes``,
    long runs of same-kind findings folded, remedies fitted to ``machine`` (when known) and the
    ``verdict``.  In place.  Remedies are fitted after folding: fitting costs a shell parse per
    command, and a folded finding's commands are not shown."""
    for probe in report.probes:
        probe.findings = [
            replace(f, id=f"{probe.id}.{n}")
            if machine
            else replace(f, id=f.id or f"{probe.id}.{n}")
            for n, f in enumerate(probe.findings, start=1)
        ]
    found = links.link(report)
    links.apply(report, found)
    fold.fold_repeats(report)
    if machine:
        for probe in report.probes:
            probe.findings = [fit_finding(f, machine) for f in probe.findings]
    report.verdict = verdict.verdict(report, found.headline)
    return report
