"""What the views show, computed from a report: plain immutable values, no textual.

The app computes these and hands them to the views, so a view never looks at another view or
digs through the report itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields, replace
from typing import Any

from vkdoctor.diagnosis.order import ranked
from vkdoctor.kernels.run import DeviceRun, KernelRun
from vkdoctor.record import frozen
from vkdoctor.render.styles import SEVERITY_LOOK, STATUS_LOOK
from vkdoctor.report.model import Finding, LogEntry, ProbeResult, Report, Severity
from vkdoctor.report.records import DeviceRecord

STATUS_ICON = {status: look.icon for status, look in STATUS_LOOK.items()}
SEVERITY_ICON = {severity: look.icon for severity, look in SEVERITY_LOOK.items()}


@frozen
class FindingItem:
    """One finding with the probe that raised it: the unit of the finding view."""

    key: str  # stable within one report: "probe/position"
    probe_id: str
    probe_title: str
    finding: Finding
    log: tuple[LogEntry, ...] = ()  # the loader-log lines that bear on it


def counts(findings: Iterable[Finding]) -> str:
    tally = {s: 0 for s in (Severity.FAIL, Severity.WARN, Severity.INFO)}
    for finding in findings:
        tally[finding.severity] += 1
    return ", ".join(f"{n} {s.value}" for s, n in tally.items() if n)


def finding_items(report: Report | None) -> tuple[FindingItem, ...]:
    """Root causes first, then the symptoms they explain, then what is left by severity
    (pipeline order within each), as the console and the Markdown export order them."""
    if report is None:
        return ()
    items = []
    for probe in report.probes:
        for position, finding in enumerate(probe.findings):
            log = relevant_log(report, probe, finding)
            items.append(FindingItem(f"{probe.id}/{position}", probe.id, probe.title, finding, log))
    order: dict[int, int] = {}
    for shown in ranked(report, include_info=True):
        for finding in (shown.finding, *shown.symptoms):
            order.setdefault(id(finding), len(order))
    return tuple(
        sorted(
            items, key=lambda i: (order.get(id(i.finding), len(order)), -i.finding.severity.rank)
        )
    )


_TOKEN_KEYS = ("path", "library", "library_path", "manifest", "driver_manifest", "layer", "name")


def _tokens(evidence: Mapping[str, Any]) -> set[str]:
    """Distinctive words of a finding's evidence: file names and layer or library names."""
    found: set[str] = set()

    def visit(value: Any, key: str = "") -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                visit(v, str(k))
        elif isinstance(value, (list, tuple)):
            for v in value:
                visit(v, key)
        elif isinstance(value, str) and (key in _TOKEN_KEYS or "/" in value or ".so" in value):
            base = value.rstrip("/").rsplit("/", 1)[-1]
            if len(base) >= 6:
                found.add(base)

    visit(evidence)
    return found


def relevant_log(
    report: Report, probe: ProbeResult, finding: Finding, limit: int = 12
) -> tuple[LogEntry, ...]:
    """Loader-log lines that mention what the finding is about; failing that, the errors and
    warnings the same probe saw.  Harmless, classified noise is left out."""
    entries = [e for e in (probe.loader_log or report.loader_log) if not e.classification]
    tokens = _tokens(finding.evidence)
    if tokens:
        hits = [e for e in entries if any(t in e.message for t in tokens)]
        if hits:
            return tuple(hits[:limit])
    if finding.severity is Severity.INFO:
        return ()
    return tuple(e for e in entries if e.level in ("error", "warn"))[:limit]


# -- devices --------------------------------------------------------------------------------------


@frozen
class DeviceModel:
    index: int
    name: str
    summary: str  # "cpu · Vulkan 1.3.230 · llvmpipe Mesa 22.3.6 (LLVM 15.0.6)"
    properties: tuple[tuple[str, str], ...]
    queues: tuple[tuple[str, str, str, str], ...]  # index, flags, count, timestamp bits
    memory: tuple[tuple[str, str], ...]  # heap size, flags
    findings: tuple[FindingItem, ...]
    kernels: DeviceRun | None = None


def _size(n: Any) -> str:
    if not isinstance(n, int) or n <= 0:
        return "?"
    for suffix, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.3g} {suffix}"
    return f"{n} B"


def _properties(device: DeviceRecord) -> tuple[tuple[str, str], ...]:
    values: tuple[tuple[str, Any], ...] = (
        ("Type", device.type),
        ("Vulkan", device.api_version),
        ("Driver", device.driver_name),
        ("Driver info", device.driver_info),
        ("Driver version", device.driver_version),
        ("Conformance", device.conformance_version),
        ("Vendor id", f"0x{device.vendor_id:04x}"),
        ("Device id", f"0x{device.device_id:04x}"),
        ("Device UUID", device.device_uuid),
        ("Driver UUID", device.driver_uuid),
        ("Pipeline cache UUID", device.pipeline_cache_uuid),
        ("Manifest", device.driver_manifest or ", ".join(device.driver_manifest_candidates)),
        ("Extensions", device.extensions_supported),
        ("shaderFloat16", device.shader_float16),
        ("Device-local", _size(device.device_local_bytes) if device.device_local_bytes else None),
    )
    rows = [
        (label, "yes" if value is True else "no" if value is False else str(value))
        for label, value in values
        if value is not None and value != ""
    ]
    limits = device.limits
    if limits and limits.max_workgroup_invocations:
        rows.append(("Max workgroup", str(limits.max_workgroup_invocations)))
    if limits and limits.max_compute_shared_memory:
        rows.append(("Shared memory", _size(limits.max_compute_shared_memory)))
    if device.subgroup and device.subgroup.size:
        rows.append(("Subgroup size", str(device.subgroup.size)))
    return tuple(rows)


def _queues(device: DeviceRecord) -> tuple[tuple[str, str, str, str], ...]:
    return tuple(
        (
            str(family.index),
            ", ".join(family.flags) or "-",
            str(family.count),
            str(family.timestamp_valid_bits),
        )
        for family in device.queue_families
    )


def _memory(device: DeviceRecord) -> tuple[tuple[str, str], ...]:
    heaps = [
        (_size(h.size), ", ".join(h.flags) or "-")
        for h in (device.memory.heaps if device.memory else ())
    ]
    if not heaps and device.device_local_bytes:
        heaps = [(_size(device.device_local_bytes), "device-local (largest heap)")]
    return tuple(heaps)


def summary_line(device: DeviceRecord) -> str:
    parts = [device.type] if device.type else []
    if device.api_version:
        parts.append(f"Vulkan {device.api_version}")
    if device.driver_name:
        parts.append(device.driver)
    return " · ".join(parts)


def _merged(base: DeviceRecord, over: DeviceRecord) -> DeviceRecord:
    """``over``'s fields wherever it has a value: the check report's device record knows the
    manifest, memory and conformance; the kernel run's knows limits and subgroups."""
    known = {
        f.name: getattr(over, f.name)
        for f in fields(over)
        if getattr(over, f.name) not in (None, "", (), {}, 0)
    }
    return replace(base, **known)


def _mentions(item: FindingItem, index: int, name: str) -> bool:
    evidence = item.finding.evidence
    if str(evidence.get("index", "")) == str(index) and "index" in evidence:
        return True
    if evidence.get("device") == name:
        return True
    return bool(name) and name in item.finding.summary


def device_models(report: Report | None) -> tuple[DeviceModel, ...]:
    """Devices from the device probe, completed by what kernel runs learnt about them."""
    if report is None:
        return ()
    kernel_run = KernelRun.from_report(report)
    merged: dict[int, DeviceRecord] = {}
    if kernel_run is not None:
        for info in kernel_run.devices:
            merged[info.index] = info
        for run in kernel_run.runs:
            merged.setdefault(run.index, run.device)
    for device in report.devices:
        merged[device.index] = (
            _merged(merged[device.index], device) if device.index in merged else device
        )
    items = finding_items(report)
    models = []
    for index in sorted(merged):
        device = merged[index]
        name = device.name or f"device {index}"
        models.append(
            DeviceModel(
                index=index,
                name=name,
                summary=summary_line(device),
                properties=_properties(device),
                queues=_queues(device),
                memory=_memory(device),
                findings=tuple(i for i in items if _mentions(i, index, name)),
                kernels=kernel_run.run_for(index) if kernel_run else None,
            )
        )
    return tuple(models)


def no_device_reason(report: Report | None) -> str:
    """Why there is no device to show, in one line the user can act on."""
    if report is None:
        return "No diagnosis yet: press r to run one."
    blocking = [p for p in report.probes if p.status.is_failure]
    if blocking:
        probe = blocking[0]
        worst = max(probe.findings, key=lambda f: f.severity.rank, default=None)
        why = f": {worst.summary}" if worst else ""
        return f"No Vulkan device: the {probe.id} probe {probe.status.value}{why}"
    if not any(p.id in ("instance", "device") for p in report.probes):
        return "This report has no device information (the device probes did not run)."
    return "Vulkan reports no physical device."


# -- the trace view's library chart -------------------------------------------------------------


def span_cells(start: int, end: int | None, last: int, width: int) -> tuple[int, int]:
    """Column range [a, b) of a lifetime from event ``start`` to ``end`` (None: still loaded)."""
    last = max(last, 1)
    a = min(width - 1, max(0, (start - 1) * width // last))
    b = width if end is None else max(a + 1, min(width, -(-end * width // last)))
    return a, b


_WORDS = re.compile(r"\s+")


def one_line(text: str, limit: int = 200) -> str:
    flat = _WORDS.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def device_label(model: DeviceModel) -> str:
    return f"{model.index}: {model.name}"


def sorted_devices(models: Sequence[DeviceModel]) -> list[DeviceModel]:
    return sorted(models, key=lambda m: m.index)
