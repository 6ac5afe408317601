"""Probe 6, dispatch: a real compute shader from ``shaders/`` on every usable device, run twice
with different push constants, verified bit-exact against numpy and timed with timestamp queries.

Devices the device probe found broken are not tried again.  A device lost, a fence that never
signals, a wrong result or a crash becomes a finding naming the device and its driver.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vkdoctor.engine.child import ChildHandle, ItemOutcome
from vkdoctor.engine.plan import DISPATCH_TASK, early_dispatch_payload, fence_timeout
from vkdoctor.engine.runner import ProbeContext, ProbeOutcome, ProbeSpec
from vkdoctor.loader import log as loaderlog
from vkdoctor.report import codec
from vkdoctor.report.codes import CodeInfo, code_table, make_finding
from vkdoctor.report.model import Finding, Severity, Status
from vkdoctor.report.records import DeviceRecord
from vkdoctor.system import kernellog

TASK = DISPATCH_TASK
GPU_FAULTS = ("dispatch-device-lost", "dispatch-timeout", "dispatch-crashed", "dispatch-hung")
BROKEN = (
    "device-creation-crashed",
    "device-creation-hung",
    "device-creation-failed",
    "device-no-compute-queue",
)

CODES = code_table(
    [
        CodeInfo(
            "dispatch-crashed",
            Severity.FAIL,
            "the smoke dispatch crashes",
            "The process died while creating, compiling or running the smoke shader on this device.",
            ("a driver bug", "a GPU fault"),
            "Update the driver; check the kernel log (dmesg).",
        ),
        CodeInfo(
            "dispatch-hung",
            Severity.FAIL,
            "the smoke dispatch hangs",
            "The smoke shader did not finish and the driver did not return in time.",
            ("a hung GPU", "a driver deadlock"),
            "Check the kernel log (dmesg) for GPU resets.",
        ),
    ]
)


def _broken_devices(ctx: ProbeContext) -> set[int]:
    """Indices of devices the device probe could not create (or that lack compute)."""
    device = ctx.wait_for("device")
    if device is None:
        return set()
    return {
        int(f.evidence["index"])
        for f in device.findings
        if f.code in BROKEN and "index" in f.evidence
    }


def start_early(ctx: ProbeContext) -> ChildHandle:
    """The smoke check on every device the loader enumerates, started while the instance probe
    still runs: it needs only the device count, which the child finds itself."""
    # The same request as the one warm_pool started ahead (engine/plan.py): it takes that child.
    return ctx.start_child(TASK, early_dispatch_payload(ctx.options))


def _same_device(item: ItemOutcome, device: Mapping[str, Any]) -> bool:  # an item sent
    """The early child saw this device at this index (or died there, which a re-run checks)."""
    seen = ((item.result or {}).get("smoke") or {}).get("device")
    return item.state != "ok" or seen == device["name"]


def run(ctx: ProbeContext) -> ProbeOutcome:
    from vkdoctor.report.model import Finding as FindingValue

    outcome = ProbeOutcome()
    started = kernellog.boot_seconds()
    # The instance child's description of each device (a JSON boundary), read once.
    devices = [
        codec.from_json(DeviceRecord, row)
        for row in ctx.facts("instance").get("physical_devices", [])
    ]
    # Runs alongside the device probe (the dispatch child needs no result of it); what that
    # probe found broken is consulted afterwards, so a broken device is reported once, there.
    items = [{"key": str(d.index), "index": d.index, "name": d.name} for d in devices]
    results, children = ctx.run_batch_adopting(
        TASK, items, "key", {"fence_timeout_s": fence_timeout(ctx.options)}, _same_device
    )
    broken = _broken_devices(ctx)
    results = [r for r in results if int(r.key) not in broken]
    for child in children:
        outcome.loader_log += loaderlog.parse(child.stderr)
    rows: list[dict[str, Any]] = []
    status = Status.OK
    by_index = {str(d.index): d for d in devices}
    for item in results:
        device = by_index[item.key]
        label = f"device {item.key} ({device.name}, driver {device.driver_manifest})"
        evidence = {
            "device": device.name,
            "driver_manifest": device.driver_manifest,
            "last_step": item.last_crumb,
        }
        if item.state == "crashed":
            outcome.findings.append(
                make_finding(
                    CODES,
                    "dispatch-crashed",
                    f"{label}: {item.signal} during: {item.last_crumb}",
                    evidence={**evidence, "signal": item.signal},
                )
            )
            status = Status.CRASHED
            continue
        if item.state in ("timeout", "error", "not-run"):
            outcome.findings.append(
                make_finding(
                    CODES,
                    "dispatch-hung",
                    f"{label}: no result ({item.state}) during: {item.last_crumb}",
                    evidence=evidence,
                )
            )
            status = Status.TIMEOUT if item.state == "timeout" else status
            continue
        data = item.result or {}
        smoke = data.get("smoke") or {}
        rows.append({"index": device.index, "name": device.name, **smoke})
        outcome.findings += [
            _with_driver(FindingValue.from_dict(f), device) for f in data.get("findings", [])
        ]
    outcome.findings = _with_kernel_log(outcome.findings, started)
    outcome.facts = {"devices": rows, "skipped_broken": sorted(broken)}
    outcome.status = status if status is not Status.OK else None
    return outcome


def _with_kernel_log(findings: list[Finding], since: float) -> list[Finding]:
    """A lost or hung GPU: what the kernel logged meanwhile (Xid, GPU reset...) goes with it."""
    from dataclasses import replace

    if not any(f.code in GPU_FAULTS for f in findings):
        return findings
    lines = kernellog.gpu_faults_since(since)
    note = (
        {"kernel_log": lines}
        if lines is not None
        else {"kernel_log": "unreadable here (container or dmesg_restrict); run: sudo dmesg | tail"}
    )
    said = f"; the kernel logged: {lines[0]}" if lines else ""
    return [
        replace(f, summary=f.summary + said, evidence={**f.evidence, **note})
        if f.code in GPU_FAULTS
        else f
        for f in findings
    ]


def _with_driver(finding: Finding, device: DeviceRecord) -> Finding:
    from dataclasses import replace

    return replace(
        finding, evidence={**finding.evidence, "driver_manifest": device.driver_manifest}
    )


SPEC = ProbeSpec(
    id="dispatch",
    title="Smoke compute dispatch",
    run=run,
    requires=("instance",),
    consults=("device",),
    native=True,
    early=start_early,
    early_after=("loader-discovery",),
)
