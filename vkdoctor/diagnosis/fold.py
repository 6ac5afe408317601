"""Fold many findings of one kind into a few examples and one summary finding.

Anyone can write thousands of manifests into ``$XDG_DATA_HOME/vulkan/icd.d``; a finding per
manifest makes a report of tens of megabytes and a screen nobody reads, while the records
(``drivers``, ``layers``) already list every manifest with its ``issues``.  So a probe's findings
of one code and severity beyond ``FOLD_ABOVE`` keep their first ``KEEP`` in full and the rest
become one finding that counts them, keeps a bounded sample of their evidence and says where the
full list is.  Root causes and cause links that named a folded finding name the fold instead.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from vkdoctor.report.model import Finding, Remedy, Report

FOLD_ABOVE = 10  # a probe's findings of one code up to this many are all kept
KEEP = 3  # in full, before the fold
SAMPLE = 20  # evidence entries of folded findings kept as examples

# Where the complete list of folded subjects lives, per probe.
_WHERE = {
    "driver-enumeration": "the report's `drivers` section lists every manifest with its issues",
    "layer-enumeration": "the report's `layers` section lists every manifest with its issues",
}


def fold_repeats(report: Report) -> Report:
    """``report`` with long runs of same-kind findings folded (in place)."""
    renamed: dict[str, str] = {}
    headline = report.root_causes[0] if report.root_causes else ""  # the verdict's; never folded
    for probe in report.probes:
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        for index, finding in enumerate(probe.findings):
            groups[(finding.code, finding.severity.value)].append(index)
        folds: dict[int, Finding] = {}
        dropped: set[int] = set()
        for indices in groups.values():
            if len(indices) <= FOLD_ABOVE:
                continue
            folded = [i for i in indices[KEEP:] if probe.findings[i].id != headline]
            rest = [probe.findings[i] for i in folded]
            fold = _fold(rest, _WHERE.get(probe.id, ""))
            folds[folded[0]] = fold
            dropped.update(folded[1:])
            renamed.update((f.id, fold.id) for f in rest)
        if folds:
            probe.findings = [
                folds.get(i, f) for i, f in enumerate(probe.findings) if i not in dropped
            ]
    if renamed:
        _rename(report, renamed)
    return report


def _fold(rest: list[Finding], where: str) -> Finding:
    first = rest[0]
    count = len(rest)
    remedy = first.remedy
    if remedy is not None:
        # One command per folded file is not something to paste; the examples above carry the
        # command, the text says it applies to each.
        remedy = Remedy(text=f"The same for each of them: {remedy.text}", commands=())
    return Finding(
        code=first.code,
        severity=first.severity,
        summary=f"{count} more findings like this ({first.code}), the first: {first.summary}",
        detail=first.detail + (f" All of them: {where}." if where else ""),
        evidence={"examples": [dict(f.evidence) for f in rest[:SAMPLE]]},
        remedy=remedy,
        id=first.id,
        folded=count,
        causes=tuple(dict.fromkeys(c for f in rest for c in f.causes)),
    )


def _rename(report: Report, renamed: dict[str, str]) -> None:
    def ids(values: list[str] | tuple[str, ...]) -> list[str]:
        return list(dict.fromkeys(renamed.get(v, v) for v in values))

    report.root_causes = ids(report.root_causes)
    for probe in report.probes:
        probe.findings = [
            replace(f, causes=tuple(c for c in ids(f.causes) if c != f.id)) if f.causes else f
            for f in probe.findings
        ]
