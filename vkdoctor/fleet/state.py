"""What a fleet engine acts on, read from a report's typed records and its diagnosis.

A node is *up* when the run finished and nothing failed: no probe failed, timed out or crashed
and no finding is a failure (exactly when ``vkdoctor check --fail-on fail`` exits 0).  Warnings
leave it up: a fleet drains nodes for broken Vulkan, not for an odd layer.  A broken extra
driver does take it down, because on a GPU node "lavapipe still works" means the GPU is lost.

*Undecided* means vkdoctor itself could not tell: it failed internally, was interrupted, or hit
its deadline before finding any real failure.  node-problem-detector calls that "unknown".
"""

from __future__ import annotations

import os
import re

from vkdoctor.diagnosis.links import VARIABLE_CODES
from vkdoctor.record import frozen
from vkdoctor.report.model import BLOCKED_DEADLINE, BLOCKED_INTERRUPTED, Finding, Report, Severity

HEALTHY_CODE = "ok"  # the verdict code of a machine with no root cause
INTERNAL_CODE = "internal-error"
UNKNOWN_CODE = "unknown"  # not up, and no finding says why
# Findings about vkdoctor's own run, not about the machine: they never decide a verdict.
UNDECIDED_CODES = frozenset(
    {"run-interrupted", "run-deadline-exceeded", INTERNAL_CODE, "kernels-internal-error"}
)
# A culprit is a manifest's file name or a variable's name, nothing longer (label cardinality).
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_CULPRIT = 128


@frozen
class NodeState:
    up: bool
    decided: bool  # False: interrupted, deadline before any failure, internal error
    code: str  # the root cause's finding code; HEALTHY_CODE when there is none
    culprit: str  # the culprit's manifest basename or variable name; "" when none
    verdict: str  # the diagnosis's one line (may be empty for a report never diagnosed)


def _stopped(report: Report) -> bool:
    """The run did not finish: a signal or the deadline cut it short."""
    return any(
        p.blocked_by in (BLOCKED_INTERRUPTED, BLOCKED_DEADLINE)
        or any(f.code in UNDECIDED_CODES for f in p.findings)
        for p in report.probes
    )


def _failing(report: Report) -> bool:
    return any(p.status.is_failure for p in report.probes) or any(
        f.severity is Severity.FAIL for _, f in report.findings()
    )


def root_finding(report: Report) -> Finding | None:
    """The first root cause of the diagnosis, a failure preferred; for a report that was never
    diagnosed (an internal error mid-run) the first failure, then the first warning."""
    by_id = report.findings_by_id()
    roots = [by_id[i][1] for i in report.root_causes if i in by_id]
    if not roots:
        roots = [f for _, f in report.findings() if f.severity is not Severity.INFO]
        roots.sort(key=lambda f: -f.severity.rank)
    real = [f for f in roots if f.code not in UNDECIDED_CODES]
    failures = [f for f in real if f.severity is Severity.FAIL]
    if failures or real:
        return (failures or real)[0]
    undecided = [f for _, f in report.findings() if f.code in UNDECIDED_CODES]
    return undecided[0] if undecided else None


def culprit(report: Report, finding: Finding) -> str:
    """What the root cause is about, in a word: the variable that hides or filters every
    driver (read from the drivers' typed exclusions), else the manifest's file name."""
    for driver in report.drivers:
        for exclusion in driver.excluded_by:
            if (
                exclusion.variable
                and VARIABLE_CODES.get(exclusion.reason) == finding.code
                and _VARIABLE_NAME.match(exclusion.variable)
            ):
                return exclusion.variable
    # Findings name their component in the evidence (links.py reads the same key).
    for key in ("manifest", "driver_manifest"):
        manifest = finding.evidence.get(key)
        if isinstance(manifest, str) and manifest.strip("/"):
            return os.path.basename(manifest.rstrip("/"))[:MAX_CULPRIT]
    variable = finding.evidence.get("variable")
    if isinstance(variable, str) and _VARIABLE_NAME.match(variable):
        return variable
    return ""


def assess(report: Report, internal_error: bool = False) -> NodeState:
    """The node's state; ``internal_error``: the run itself failed, the report is partial."""
    up = not internal_error and not _stopped(report) and not _failing(report)
    root = root_finding(report)
    if internal_error:
        return NodeState(False, False, INTERNAL_CODE, "", report.verdict)
    if root is None:  # a failed probe without a finding says nothing vkdoctor could name
        return NodeState(up, up, HEALTHY_CODE if up else UNKNOWN_CODE, "", report.verdict)
    decided = up or (root.severity is Severity.FAIL and root.code not in UNDECIDED_CODES)
    return NodeState(up, decided, root.code, culprit(report, root), report.verdict)
