"""The order renderers show findings in: root causes first, each with the symptoms it explains."""

from __future__ import annotations

from vkdoctor.record import frozen
from vkdoctor.report.model import Finding, ProbeResult, Report, Severity


@frozen
class Shown:
    probe: ProbeResult
    finding: Finding
    symptoms: tuple[Finding, ...] = ()  # folded under it ("because of this")


def ranked(report: Report, include_info: bool) -> list[Shown]:
    """Root causes in the diagnosis' order, then what no cause explains by severity; symptoms
    are folded under their cause.  A report without a diagnosis ranks by severity alone."""
    caused = report.caused()
    by_id = report.findings_by_id()
    roots = [by_id[i] for i in report.root_causes if i in by_id]
    listed = {f.id for _, f in roots}
    rest = sorted(
        ((p, f) for p, f in report.findings() if f.id not in listed and f.id not in caused),
        key=lambda pf: -pf[1].severity.rank,
    )
    if not report.root_causes:
        rest = sorted(report.findings(), key=lambda pf: -pf[1].severity.rank)
    out: list[Shown] = []
    for probe, finding in roots + rest:
        if finding.severity is Severity.INFO and not include_info:
            continue
        symptoms = tuple(by_id[i][1] for i in finding.causes if i in by_id)
        out.append(Shown(probe, finding, symptoms))
    return out
