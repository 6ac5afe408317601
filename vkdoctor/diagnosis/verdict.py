"""The one-line verdict: what works, or what is broken and the first fix."""

from __future__ import annotations

import os

from vkdoctor.report.model import Finding, Report, Status


def _what_works(report: Report) -> str:
    """``loader 1.3.239; device 0: llvmpipe (cpu, Vulkan 1.3.230) via lvp_icd.x86_64.json``."""
    parts: list[str] = []
    if report.loader and report.loader.version:
        parts.append(f"loader {report.loader.version}")
    for device in report.devices:
        via = f" via {os.path.basename(device.driver_manifest)}" if device.driver_manifest else ""
        parts.append(
            f"device {device.index}: {device.name} ({device.type}, Vulkan {device.api_version})"
            + via
        )
    in_use = [d.manifest for d in report.drivers if d.in_use]
    idle = [m for m in in_use if m not in {d.driver_manifest for d in report.devices}]
    if report.devices and idle:
        parts.append(f"{len(idle)} more driver{'s' if len(idle) != 1 else ''} without a device")
    elif in_use and not report.devices:
        parts.append(", ".join(os.path.basename(m) for m in in_use))
    dispatch = next((p for p in report.probes if p.id == "dispatch"), None)
    if dispatch is not None and dispatch.status in (Status.OK, Status.INFO):
        parts.append("compute dispatch verified")
    return "; ".join(parts)


_CUT_SHORT = ("run-interrupted", "run-deadline-exceeded")
# A root cause in vkdoctor's own installation: nothing is known of Vulkan either way.
_NOT_CHECKED = ("probe-unavailable",)


def _cut_short(report: Report) -> Finding | None:
    """The finding that says a signal or the deadline stopped the run, if one did."""
    return next((f for _, f in report.findings() if f.code in _CUT_SHORT), None)


def _nothing_computes(report: Report) -> bool:
    """The smoke dispatch failed and verified no device: devices exist, but none computes."""
    dispatch = next((p for p in report.probes if p.id == "dispatch"), None)
    if dispatch is None or not dispatch.status.is_failure:
        return False
    rows = dispatch.facts.get("devices") or []  # the probe's own evidence rows
    return not any(isinstance(row, dict) and row.get("verified") for row in rows)


# The steps that show Vulkan creates an instance, loads a device and computes: a run of only
# earlier ones (`check loader-discovery layer-enumeration`) can say neither "works" nor
# "unusable" of Vulkan as a whole, only of the steps it ran.
_WHOLE_RUN = ("instance", "device", "dispatch")


def _steps_run(report: Report) -> list[str] | None:
    """The probes a partial run ran, or None for a run through to the dispatch."""
    ran = [p.id for p in report.probes if p.id != "requirements"]
    return None if all(step in ran for step in _WHOLE_RUN) else ran


def _more(roots: list[Finding]) -> str:
    """`` (and N more problems)`` after the first root cause; a fold counts as the many it is."""
    others = sum(max(1, f.folded) for f in roots[1:])
    return f" (and {others} more problem{'s' if others > 1 else ''})" if others else ""


def _fix(finding: Finding) -> str:
    commands = finding.remedy.commands if finding.remedy else ()
    return f" — fix: {commands[0].split('  #')[0]}" if commands else ""


def verdict(report: Report, headline: str = "") -> str:
    """``Vulkan works: loader 1.3.239; driver lvp_icd.x86_64.json; device 0: llvmpipe ...`` or
    ``Vulkan is unusable: <the first root cause> — fix: <its first command>``."""
    by_id = report.findings_by_id()
    roots = [by_id[i][1] for i in report.root_causes if i in by_id]
    works = _what_works(report)
    if not roots:
        cut = _cut_short(report)
        if cut is not None:  # nothing failed, but not everything ran: no "works" without a check
            return f"Not checked to the end: {cut.summary}" + (
                f"; so far: {works}" if works else ""
            )
        partial = _steps_run(report)
        if partial is not None:
            return f"No problems in the steps run ({', '.join(partial)})" + (
                f": {works}" if works else ""
            )
        return "Vulkan works" + (f": {works}" if works else "")
    first = roots[0]
    partial = _steps_run(report)
    failed = {p.id for p in report.probes if p.status.is_failure or p.status is Status.SKIPPED}
    # No device counts only where the step that lists them ran.
    no_devices = not report.devices and any(p.id == "instance" for p in report.probes)
    unusable = (
        bool(failed & {"instance", "loader-discovery"}) or no_devices or _nothing_computes(report)
    )
    if first.code in _NOT_CHECKED:
        state = "vkdoctor could not check Vulkan"
    elif unusable:
        state = "Vulkan is unusable"
    elif partial is not None:
        state = f"Problems in the steps run ({', '.join(partial)})"
    else:
        state = "Vulkan works, with problems"
    return f"{state}: {headline or first.summary}{_fix(first)}{_more(roots)}"


def trace_verdict(report: Report, headline: str = "") -> str:
    """``The program ran clean`` or ``The program has problems: <first root cause> — fix: …``."""
    by_id = report.findings_by_id()
    roots = [by_id[i][1] for i in report.root_causes if i in by_id]
    if not roots:
        return "The traced program ran clean: no Vulkan library or entry-point problem"
    first = roots[0]
    return (
        f"The traced program has problems: {headline or first.summary}{_fix(first)}{_more(roots)}"
    )
