"""``--require``: gate a run (or a stored report) on what its devices can do.

``grammar`` parses expressions (a bad one is a usage error), ``evaluate`` checks them against
the report's device records; this module turns the outcome into the ``requirements`` step of a
report, whose fail finding makes the exit code 1.  Headless: no rich, no Vulkan.
"""

from __future__ import annotations

from collections.abc import Sequence

from vkdoctor.report.codes import CodeInfo, code_table, make_finding
from vkdoctor.report.model import ProbeResult, Report, Severity, Status
from vkdoctor.require.evaluate import Evaluation, best_device, evaluate
from vkdoctor.require.grammar import GRAMMAR, Requirement, RequirementError, parse, parse_all

__all__ = [
    "CODES",
    "GRAMMAR",
    "Evaluation",
    "Requirement",
    "RequirementError",
    "apply",
    "best_device",
    "evaluate",
    "parse",
    "parse_all",
]

PROBE_ID = "requirements"

CODES = code_table(
    [
        CodeInfo(
            "requirement-unmet",
            Severity.FAIL,
            "the devices do not meet the requirements",
            "vkdoctor was asked (--require, VKDOCTOR_REQUIRE or a pytest marker) for a device "
            "with certain properties, and no Vulkan device on this machine has all of them. The "
            "finding lists, for each device, what it has where it falls short.  With "
            "devices OP N (e.g. devices>=8), it is unmet when the number of devices meeting "
            "the other requirements does not compare so with N.",
            (
                "a runner without the GPU the job expects (only a CPU driver such as llvmpipe)",
                "a GPU on the bus that the loader does not expose (see gpu-not-exposed)",
                "the GPU's driver is not installed, hidden or filtered (see the other findings)",
                "a requirement stricter than the hardware (API version, memory, extension)",
            ),
            "Run the job on a machine with a matching device, fix the driver problems reported "
            "alongside, or relax the requirement.",
        ),
        CodeInfo(
            "requirement-met",
            Severity.INFO,
            "a device meets the requirements",
            "At least one Vulkan device has every property asked for with --require (with "
            "devices OP N: as many devices as asked have the others).",
        ),
    ]
)


def apply(report: Report, requirements: Sequence[Requirement]) -> Evaluation:
    """Evaluate and add the ``requirements`` step to ``report`` (replacing an earlier one, so a
    stored report can be gated again), then redo the diagnosis so the verdict accounts for it."""
    from vkdoctor.diagnosis.run import diagnose

    evaluation = evaluate(report, requirements)
    evidence = {
        "required": [str(r) for r in requirements],
        "devices": [
            {
                "index": v.device.index,
                "name": v.device.name,
                "met": v.ok,
                "checks": {str(c.requirement): [c.ok, c.have] for c in v.checks},
            }
            for v in evaluation.devices
        ],
    }
    code = "requirement-met" if evaluation.met else "requirement-unmet"
    finding = make_finding(CODES, code, evaluation.summary(), evidence=evidence)
    result = ProbeResult(
        PROBE_ID,
        "Requirements",
        Status.INFO if evaluation.met else Status.FAIL,
        findings=[finding],
        facts={
            "required": evidence["required"],
            "matching": [d.index for d in evaluation.matching],
        },
    )
    report.probes = [p for p in report.probes if p.id != PROBE_ID] + [result]
    diagnose(report, None)
    if not evaluation.met and not report.devices:
        _as_symptom(report, result)
    return evaluation


def _as_symptom(report: Report, step: ProbeResult) -> None:
    """With no device at all, the unmet requirement is a consequence of whatever broke Vulkan:
    list it under the first other root cause, so the verdict names that cause and its fix."""
    from dataclasses import replace

    from vkdoctor.diagnosis import verdict

    unmet = step.findings[0].id
    root = next((r for r in report.root_causes if r != unmet), None)
    if root is None:
        return
    for probe in report.probes:
        probe.findings = [
            replace(f, causes=(*f.causes, unmet)) if f.id == root else f for f in probe.findings
        ]
    report.root_causes = [r for r in report.root_causes if r != unmet]
    report.verdict = verdict.verdict(report, _headline(report))


def _headline(report: Report) -> str:
    """Keep the headline the link rules wrote (the verdict's words for the first root)."""
    from vkdoctor.diagnosis import links

    return links.link(report).headline
