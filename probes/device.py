"""Probe 5, device: for every physical device, queues and memory, device creation with a compute
queue and every supported extension, and every device command through vkGetDeviceProcAddr.

One batch item per device, so a driver that crashes in vkCreateDevice costs only its own devices;
a failing device is bisected (its driver alone, each implicit layer disabled).  Also compares the
devices with the GPUs on the PCI bus: a software-only device next to a real GPU, or a GPU that no
driver exposes, is the most common "it runs but slowly" cause.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from vkdoctor.engine.bisect import active_implicit_layers, bisect, forced_explicit_layers
from vkdoctor.engine.child import ChildHandle, ChildOutcome, ItemOutcome
from vkdoctor.engine.plan import DEVICE_TASK, EARLY_DEVICE_PAYLOAD
from vkdoctor.engine.runner import ProbeContext, ProbeOutcome, ProbeSpec
from vkdoctor.loader import log as loaderlog
from vkdoctor.loader.libcheck import disable_commands
from vkdoctor.loader.search import parse_version
from vkdoctor.loader.vkresult import result_name
from vkdoctor.record import frozen
from vkdoctor.report import codec, shell
from vkdoctor.report.codes import CodeInfo, code_table, make_finding
from vkdoctor.report.model import Finding, Severity, Status
from vkdoctor.report.records import DeviceRecord
from vkdoctor.system import gpumatch

TASK = DEVICE_TASK
NVSMI_TASK = "vkdoctor.tasks.nvsmi:list_gpus"
VIRTUAL_GPU_VENDORS = {
    "1234",
    "1af4",
    "15ad",
    "1b36",
    "80ee",
    "1414",
}  # QEMU, virtio, VMware, Red Hat, VirtualBox, Hyper-V
VENDOR_DRIVERS = {
    "10de": "NVIDIA's driver (nvidia_icd.json)",
    "1002": "Mesa RADV (mesa-vulkan-drivers)",
    "8086": "Mesa ANV (mesa-vulkan-drivers)",
    "5143": "Mesa Turnip",
    "13b5": "Mesa PanVK",
}

CODES = code_table(
    [
        CodeInfo(
            "device-no-compute-queue",
            Severity.FAIL,
            "a device has no compute queue",
            "No queue family of this device supports compute, so compute work cannot run on it.",
            ("a graphics-only device", "a driver bug"),
            "Use another device.",
        ),
        CodeInfo(
            "device-creation-failed",
            Severity.FAIL,
            "vkCreateDevice fails",
            "The device cannot be created, so nothing can run on it.",
            ("driver or kernel problems", "lost device access"),
            "The evidence holds the VkResult; VK_ERROR_INITIALIZATION_FAILED or DEVICE_LOST with a "
            "GPU usually means the kernel driver (`dmesg | tail`); with bisection the culprit "
            "finding names the component to disable.",
        ),
        CodeInfo(
            "device-creation-crashed",
            Severity.FAIL,
            "vkCreateDevice or device setup crashes",
            "The process died while creating or querying the device.",
            ("a driver or layer bug",),
            "Disable the layer or driver that bisection names (its culprit finding); report the "
            "crash to the driver's vendor with this report attached.",
        ),
        CodeInfo(
            "device-creation-hung",
            Severity.FAIL,
            "vkCreateDevice or device setup hangs",
            "Device creation or a query did not return in time.",
            ("a driver waiting on the GPU",),
            "Check the kernel log for GPU faults (`dmesg | tail`); disable the component "
            "bisection names with VK_LOADER_DRIVERS_DISABLE=<manifest file name>.",
        ),
        CodeInfo(
            "device-extensions-refused",
            Severity.INFO,
            "the device refused all its extensions together",
            "Creating the device with every supported extension failed; it was created with core "
            "commands only, so extension commands were not checked.",
            ("extensions that exclude each other",),
            "Nothing to do for most applications.",
        ),
        CodeInfo(
            "gdpa-missing",
            Severity.FAIL,
            "vkGetDeviceProcAddr returns NULL for a required command",
            "A command the device's API version or enabled extensions provide resolves to NULL; "
            "programs that load it crash calling a NULL pointer.",
            ("a driver bug", "a layer that drops the command"),
            "Take the driver out with VK_LOADER_DRIVERS_DISABLE=<manifest file name> (programs "
            "then use the other drivers), and update it or report the bug to its vendor; where "
            "an implicit layer is on, VK_LOADER_LAYERS_DISABLE=~implicit~ tells whether it drops "
            "the command.",
        ),
        CodeInfo(
            "gdpa-missing-older-revision",
            Severity.INFO,
            "extension commands missing because the driver implements an older revision",
            "vkGetDeviceProcAddr returns NULL for commands that a later revision of an enabled "
            "extension added; the driver reports an older revision (specVersion) than the Vulkan "
            "registry vkdoctor knows, so this is expected.",
            ("a driver older than the registry",),
            "Check the extension's specVersion before using them.",
            audience="developer",
        ),
        CodeInfo(
            "gdpa-unexpected",
            Severity.INFO,
            "vkGetDeviceProcAddr returns a command the spec says is NULL",
            "Programs that rely on it break on conformant drivers.",
            ("driver or layer leniency",),
            "Applications must check versions and enabled extensions.",
            audience="developer",
        ),
        CodeInfo(
            "device-command-only-via-gipa",
            Severity.INFO,
            "device commands reachable only via vkGetInstanceProcAddr",
            "These device commands resolve through vkGetInstanceProcAddr (loader trampolines for every "
            "extension it knows) but not through vkGetDeviceProcAddr, because the device does not "
            "support or enable their extension: calling them crashes or fails.",
            ("extensions the device does not support",),
            "Load device commands with vkGetDeviceProcAddr.",
            audience="developer",
        ),
        CodeInfo(
            "software-device-only",
            Severity.WARN,
            "only a software (CPU) Vulkan device while a GPU is present",
            "Vulkan work runs on the CPU (llvmpipe/lavapipe) although a GPU sits on the PCI bus.",
            ("the GPU's Vulkan driver is not installed", "no access to the GPU's device nodes"),
            "Install the GPU's Vulkan driver and check device access.",
        ),
        CodeInfo(
            "gpu-not-exposed",
            Severity.FAIL,
            "a GPU on the PCI bus has no Vulkan device",
            "No Vulkan physical device maps to this GPU: none reports its PCI address "
            "(VK_EXT_pci_bus_info) or its UUID, and no device without either has its "
            "vendor:device ids.  Programs cannot use it.  Display-only adapters (a server's BMC "
            "graphics), for which no Vulkan driver exists, are info.",
            (
                "a container started without this GPU (NVIDIA_VISIBLE_DEVICES)",
                "no access to its device node (/dev/nvidiaN, /dev/dri/renderD*)",
                "a driver that failed for this GPU",
                "its Vulkan driver is not installed",
                "kernel driver not bound",
            ),
            "Install the vendor's Vulkan driver.",
        ),
    ]
)


def _device_rows(ctx: ProbeContext) -> list[dict[str, Any]]:
    return list(ctx.facts("instance").get("physical_devices", []))


def start_early(ctx: ProbeContext) -> ChildHandle:
    """Device creation on every device the loader enumerates, started while the instance probe
    still runs: the child counts the devices and reads the registry itself.  On a GPU this takes
    the creation with every extension (~0.4 s on the H200) off the end of the instance probe.
    The same request as the one warm_pool started ahead (engine/plan.py): it takes that child."""
    return ctx.start_child(TASK, EARLY_DEVICE_PAYLOAD)


def _same_device(names: list[str]) -> Callable[[ItemOutcome, Mapping[str, Any]], bool]:
    def same(item: ItemOutcome, row: Mapping[str, Any]) -> bool:
        """The early child saw this device at this index and checked these commands (or died
        there, which a re-run checks)."""
        seen = item.result or {}
        return item.state != "ok" or (
            seen.get("name") == row["name"] and seen.get("names_checked") == len(names)
        )

    return same


def run(ctx: ProbeContext) -> ProbeOutcome:
    from vkdoctor.loader.registry import Level, load_commands

    outcome = ProbeOutcome()
    table = load_commands(environ=ctx.env.environ)
    names = sorted(c.name for c in table if c.level is Level.DEVICE)
    rows = _device_rows(ctx)
    items = [{"key": str(r["index"]), "index": r["index"], "name": r["name"]} for r in rows]
    payload = {"names": names, "trampoline_names": EARLY_DEVICE_PAYLOAD["trampoline_names"]}
    results, children = ctx.run_batch_adopting(TASK, items, "key", payload, _same_device(names))
    for child in children:
        outcome.loader_log += loaderlog.parse(child.stderr)
    instance_api = parse_version(ctx.facts("instance").get("api_version") or "1.0") or (1, 0, 0)
    enabled_instance = set(ctx.facts("instance").get("enabled_extensions", []))
    worst = Status.OK
    records: list[DeviceRecord] = []
    for row, item in zip(rows, results, strict=False):
        findings, state = _device_findings(
            ctx, table, names, row, item, instance_api, enabled_instance
        )
        outcome.findings += findings
        worst = {"crashed": Status.CRASHED, "timeout": Status.TIMEOUT}.get(state, worst)
        # The row is the child's JSON description of the device (a JSON boundary).
        record = codec.from_json(DeviceRecord, row)
        records.append(replace(record, issues=tuple(dict.fromkeys(f.code for f in findings))))
    bus_findings, matches = _bus_findings(ctx, records)
    outcome.findings += bus_findings
    outcome.status = worst if worst is not Status.OK else None
    outcome.devices = records
    outcome.facts = {
        "devices": len(rows),
        "child_errors": [c.error for c in children if c.error][:3],
        # Each hardware GPU on the bus and the Vulkan device that drives it (None: none).
        "pci_gpus": [_match_fact(m) for m in matches],
    }
    return outcome


@frozen
class _DeviceResult:
    """The device child's result for one device (tasks/vkprobe.devices), parsed once here at
    the JSON boundary; the findings below read attributes."""

    queue_families: list[dict[str, Any]]  # kept as JSON: it is evidence and goes into the row
    supported: dict[str, int]  # extension -> the revision (specVersion) the driver implements
    no_compute: bool
    create_result: int | None
    all_extensions_result: int | None
    enabled: frozenset[str]
    gdpa: frozenset[str]
    gipa: frozenset[str]
    gdpa_addresses: dict[str, Any]

    @classmethod
    def parse(cls, data: dict[str, Any]) -> _DeviceResult:
        return cls(
            queue_families=list(data.get("queue_families") or []),
            supported=dict(data.get("supported_extensions") or {}),
            no_compute=bool(data.get("no_compute")),
            create_result=data.get("create_result"),
            all_extensions_result=data.get("all_extensions_result"),
            enabled=frozenset(data.get("enabled_extensions", [])),
            gdpa=frozenset(data.get("gdpa", [])),
            gipa=frozenset(data.get("gipa", [])),
            gdpa_addresses=dict(data.get("gdpa_addresses", {})),
        )


@frozen
class _Subject:
    """The device a finding is about: its label, the manifest of its driver, the evidence every
    finding of it carries."""

    label: str
    driver: Any  # the manifest path, a list of candidates, or None
    evidence: dict[str, Any]


@frozen
class _ProcAddrCheck:
    """The device commands sorted by what vkGetDeviceProcAddr answered against the spec."""

    api: tuple[int, int]
    missing: list[str]
    older: list[str]  # missing, but their extension is at an older revision than the registry's
    unexpected: list[str]
    only_gipa: list[str]


def _device_findings(
    ctx: ProbeContext,
    table: Any,
    names: list[str],
    row: dict[str, Any],
    item: ItemOutcome,
    instance_api: tuple[int, int, int],
    enabled_instance: set[str],
) -> tuple[list[Finding], str]:
    data = item.result or {}
    result = _DeviceResult.parse(data)
    # The row is the instance child's description of the device; the device child's queues,
    # memory and extensions join it (JSON into JSON, read by the DeviceRecord codec).
    row.update({k: data[k] for k in ("queue_families", "memory", "compute_family") if k in data})
    row["extensions_supported"] = len(result.supported)
    row["extensions"] = sorted(result.supported)
    subject = _subject(row, item)
    if item.state in ("crashed", "timeout", "error"):
        return _child_failed(ctx, subject, row, item), item.state
    if result.no_compute:
        return [_no_compute(subject, result)], "ok"
    code = result.create_result
    if code is None or code < 0:
        finding = make_finding(
            CODES,
            "device-creation-failed",
            f"{subject.label}: vkCreateDevice returned {result_name(code)}",
            evidence={**subject.evidence, "result": result_name(code)},
        )
        return [finding, *_bisect(ctx, row, subject.driver)], "fail"
    findings: list[Finding] = []
    if result.all_extensions_result is not None:
        findings.append(
            make_finding(
                CODES,
                "device-extensions-refused",
                f"{subject.label} refused all {len(result.supported)} extensions together "
                f"({result_name(result.all_extensions_result)}); checked core commands only",
                evidence=subject.evidence,
            )
        )
    device_api = parse_version(row.get("api_version") or "1.0") or (1, 0, 0)
    checked = _check_proc_addrs(
        table, names, result, min(device_api, instance_api)[:2], enabled_instance
    )
    row["proc_addr"] = {
        "gdpa_addresses": result.gdpa_addresses,
        "gdpa_non_null": len(result.gdpa),
        "gipa_non_null": len(result.gipa),
        "enabled_extensions": len(result.enabled),
        "api_version_checked": ".".join(map(str, checked.api)),
    }
    findings += _proc_addr_findings(ctx, table, subject, result, checked)
    return findings, "ok"


def _subject(row: dict[str, Any], item: ItemOutcome) -> _Subject:
    driver = row.get("driver_manifest")
    evidence = {
        "device": row["name"],
        "index": row["index"],
        "driver_manifest": driver,
        "last_step": item.last_crumb,
    }
    if item.wchan:
        evidence["wchan"] = list(item.wchan)  # where a hung child's threads wait in the kernel
    return _Subject(f"device {row['index']} ({row['name']})", driver, evidence)


def _child_failed(
    ctx: ProbeContext, subject: _Subject, row: dict[str, Any], item: ItemOutcome
) -> list[Finding]:
    """The child crashed, hung or failed on this device: say in which step, then bisect."""
    code = {"crashed": "device-creation-crashed", "timeout": "device-creation-hung"}.get(
        item.state, "device-creation-failed"
    )
    what = {"crashed": f"crashed with {item.signal}", "timeout": "did not return in time"}.get(
        item.state, "failed"
    )
    finding = make_finding(
        CODES,
        code,
        f"{subject.label}: Vulkan {what} during: {item.last_crumb}",
        evidence=subject.evidence,
    )
    return [finding, *_bisect(ctx, row, subject.driver)]


def _no_compute(subject: _Subject, result: _DeviceResult) -> Finding:
    families = "; ".join(
        f"family {f['index']}: {', '.join(f['flags'])}" for f in result.queue_families
    )
    return make_finding(
        CODES,
        "device-no-compute-queue",
        f"{subject.label} has no queue family with compute: {families}",
        evidence={**subject.evidence, "queue_families": result.queue_families},
    )


def _check_proc_addrs(
    table: Any,
    names: list[str],
    result: _DeviceResult,
    api: tuple[int, int],
    enabled_instance: set[str],
) -> _ProcAddrCheck:
    from vkdoctor.loader.registry import Expect

    enabled, gdpa, gipa = set(result.enabled), result.gdpa, result.gipa
    missing, unexpected, only_gipa = [], [], []
    for name in names:
        verdict = table.gdpa_verdict(
            name, api, enabled, enabled_instance, maintenance5="VK_KHR_maintenance5" in enabled
        )
        if verdict.expect is Expect.NON_NULL and name not in gdpa:
            missing.append(name)
        elif verdict.expect is Expect.NULL and name in gdpa:
            unexpected.append(name)
        if name in gipa and name not in gdpa:
            only_gipa.append(name)
    older = [n for n in missing if _older_revision(table, n, result.supported)]
    missing = [n for n in missing if n not in older]
    return _ProcAddrCheck(api, missing, older, unexpected, only_gipa)


def _proc_addr_findings(
    ctx: ProbeContext,
    table: Any,
    subject: _Subject,
    result: _DeviceResult,
    checked: _ProcAddrCheck,
) -> list[Finding]:
    label, evidence, supported = subject.label, subject.evidence, result.supported
    findings: list[Finding] = []
    if checked.older:
        older = checked.older
        findings.append(
            make_finding(
                CODES,
                "gdpa-missing-older-revision",
                f"{label}: {len(older)} command(s) of extensions at an older revision than "
                f"the registry's resolve to NULL: {', '.join(older[:6])}",
                evidence={
                    **evidence,
                    "commands": older,
                    "revisions": {
                        p.extension: [
                            supported.get(p.extension),
                            table.extensions[p.extension].spec_version,
                        ]
                        for n in older
                        for p in table[n].providers
                        if p.extension in supported
                    },
                },
            )
        )
    if checked.missing:
        findings.append(_gdpa_missing(ctx, subject, checked))
    if checked.unexpected:
        unexpected = checked.unexpected
        findings.append(
            make_finding(
                CODES,
                "gdpa-unexpected",
                f"{label}: vkGetDeviceProcAddr returns pointers for {len(unexpected)} command(s) "
                f"the spec says are NULL: {', '.join(unexpected[:8])}",
                evidence={**evidence, "commands": unexpected},
            )
        )
    if checked.only_gipa:
        only_gipa = checked.only_gipa
        findings.append(
            make_finding(
                CODES,
                "device-command-only-via-gipa",
                f"{label}: {len(only_gipa)} device command(s) resolve only through "
                f"vkGetInstanceProcAddr, e.g. {', '.join(only_gipa[:5])}",
                evidence={**evidence, "commands": only_gipa},
            )
        )
    return findings


def _gdpa_missing(ctx: ProbeContext, subject: _Subject, checked: _ProcAddrCheck) -> Finding:
    missing = checked.missing
    return make_finding(
        CODES,
        "gdpa-missing",
        f"{subject.label}: vkGetDeviceProcAddr returns NULL for {len(missing)} required "
        f"command(s): {', '.join(missing[:8])}",
        evidence={
            **subject.evidence,
            "commands": missing,
            "api_version": ".".join(map(str, checked.api)),
        },
        commands=_gdpa_commands(ctx, subject.driver),
    )


def _gdpa_commands(ctx: ProbeContext, driver: Any) -> list[str]:
    """The fix first: the loader's own switch takes out the driver whose vkGetDeviceProcAddr
    returns NULL (programs then use the other drivers instead of crashing); running without
    implicit layers only where a layer is on that could be the one dropping it; then the
    driver's package, to update it or report the bug."""
    version = parse_version(ctx.facts("loader-discovery").get("version") or "")
    known = isinstance(driver, str)
    commands = disable_commands("driver", driver, None, version)[:1] if known else []
    if not commands or active_implicit_layers(ctx) or forced_explicit_layers(ctx):
        commands.append("export VK_LOADER_LAYERS_DISABLE=~implicit~  # if a layer drops it")
    if known:
        commands.append(shell.command("dpkg", "-S", driver, comment="the driver's package"))
    return commands


def _older_revision(table: Any, name: str, supported: dict[str, int]) -> bool:
    """Every enabled extension providing ``name`` is implemented at an older revision than the
    registry describes (commands added by later revisions are then legitimately absent)."""
    providers = [p for p in table[name].providers if p.extension in supported]
    return bool(providers) and all(
        supported[p.extension] < table.extensions[p.extension].spec_version for p in providers
    )


def _bisect(ctx: ProbeContext, row: dict[str, Any], driver: Any) -> list[Finding]:
    if not (ctx.options.bisect and ctx.isolate):
        return []
    payload = {"items": [{"key": str(row["index"]), "index": row["index"]}], "names": []}

    def failed(outcome: ChildOutcome) -> bool:
        ends = [m for m in outcome.results if m.get("kind") == "end"]
        return outcome.state != "ok" or not ends or not ends[-1].get("ok", True)

    drivers = [driver] if isinstance(driver, str) else None
    # Driver-alone runs renumber devices: only the layer half applies when the device's driver is
    # unknown; with a known driver, its device is index 0 in a driver-alone run.
    if drivers:
        alone = {"items": [{"key": "0", "index": 0}], "names": []}
        findings = bisect(
            ctx, f"device creation on {row['name']}", TASK, payload, failed, drivers=[]
        )
        findings += bisect(
            ctx, f"device creation on {row['name']}", TASK, alone, failed, drivers=drivers
        )
        return [f for i, f in enumerate(findings) if f not in findings[:i]]
    return bisect(ctx, f"device creation on {row['name']}", TASK, payload, failed, drivers=[])


def _bus_findings(
    ctx: ProbeContext, devices: list[DeviceRecord]
) -> tuple[list[Finding], list[gpumatch.GpuMatch]]:
    environment = (ctx.outcomes.get("loader-discovery") or ProbeOutcome()).environment or {}
    facts = [g for g in environment.get("gpus") or () if isinstance(g, dict)]
    hardware = [g for g in facts if _hex(g.get("vendor_id")) not in VIRTUAL_GPU_VENDORS]
    gpus = [gpumatch.BusGpu.from_fact(g) for g in hardware]
    matches = gpumatch.match_gpus(gpus, devices)
    smi = None
    if any(m.device is None and m.gpu.vendor_id == "10de" for m in matches):
        # Only now: nvidia-smi tells whether the kernel driver sees the GPU (and its UUID
        # where /proc withholds it); a healthy check never waits for it.
        smi = _nvidia_smi(ctx)
        if smi is not None:
            gpus = _with_smi_uuids(gpus, smi)
            matches = gpumatch.match_gpus(gpus, devices)
    sandbox = environment.get("sandbox") or {}
    findings = [
        _not_exposed(m.gpu, matches, environment, bool(sandbox.get("container")), smi, ctx)
        for m in matches
        if m.device is None
    ]
    if devices and all(d.is_cpu for d in devices) and hardware:
        findings.append(
            make_finding(
                CODES,
                "software-device-only",
                f"only software Vulkan ({devices[0].name}) although {len(hardware)} GPU(s) are on the PCI bus",
                evidence={"devices": [d.name for d in devices], "gpus": hardware},
            )
        )
    return findings, matches


def _hex(value: Any) -> str:
    return str(value or "").lower().removeprefix("0x")


def _match_fact(match: gpumatch.GpuMatch) -> dict[str, Any]:
    return gpumatch.PciGpuFact.of(match).to_fact()


def _nvidia_smi(ctx: ProbeContext) -> tuple[gpumatch.SmiGpu, ...] | None:
    """``nvidia-smi -L``'s GPUs, or None where it is not installed or did not answer."""
    program = shutil.which("nvidia-smi", path=ctx.env.environ.get("PATH") or os.defpath)
    if program is None:
        return None
    outcome = ctx.run_child(NVSMI_TASK, {"program": program, "timeout_s": 10.0}, timeout_s=15.0)
    result = outcome.result or {}
    if outcome.state != "ok" or result.get("returncode") != 0:
        return None
    return gpumatch.parse_nvidia_smi_list(str(result.get("stdout") or ""))


def _with_smi_uuids(
    gpus: list[gpumatch.BusGpu], smi: tuple[gpumatch.SmiGpu, ...]
) -> list[gpumatch.BusGpu]:
    """Where /proc did not give the UUIDs (it prints ?? to some users), nvidia-smi's do: it
    lists the GPUs in PCI bus order, so with one line per NVIDIA GPU on the bus the k-th line is
    the k-th GPU.  With fewer lines (a container that sees only some) no line is assigned."""
    nvidia = sorted((g for g in gpus if g.vendor_id == "10de"), key=lambda g: g.slot)
    if len(nvidia) != len(smi) or all(g.nvidia_uuid for g in nvidia):
        return gpus
    uuids = {
        g.slot: s.uuid for g, s in zip(nvidia, sorted(smi, key=lambda s: s.index), strict=True)
    }
    return [replace(g, nvidia_uuid=g.nvidia_uuid or uuids.get(g.slot)) for g in gpus]


def _not_exposed(
    gpu: gpumatch.BusGpu,
    matches: list[gpumatch.GpuMatch],
    environment: dict[str, Any],
    container: bool,
    smi: tuple[gpumatch.SmiGpu, ...] | None,
    ctx: ProbeContext,
) -> Finding:
    exposed = sum(1 for m in matches if m.device is not None and m.gpu.vendor_id == gpu.vendor_id)
    visible = ctx.env.environ.get("NVIDIA_VISIBLE_DEVICES")
    causes = gpumatch.likely_causes(
        gpu,
        exposed_same_vendor=exposed,
        container=container,
        visible_devices=visible,
        device_nodes=[n for n in environment.get("device_nodes") or () if isinstance(n, dict)],
        smi=smi,
    )
    vendor = gpu.vendor_id
    label = f"{gpu.vendor or vendor or 'unknown vendor'} GPU {gpu.ids}"
    if causes:
        why = causes[0].text
    elif vendor in VENDOR_DRIVERS:
        why = f"it needs {VENDOR_DRIVERS[vendor]}"
    else:
        why = "no Vulkan driver is known for this vendor (a display-only adapter)"
    key = causes[0].key if causes else "no-driver"
    commands = _not_exposed_commands(key, gpu, visible)
    return make_finding(
        CODES,
        "gpu-not-exposed",
        f"{label} at {gpu.slot} (kernel driver {gpu.driver or 'none'}) has no Vulkan device: {why}",
        evidence={
            "gpu": gpu.slot,
            "ids": gpu.ids,
            "kernel_driver": gpu.driver,
            "nvidia_uuid": gpu.nvidia_uuid,
            "likely_causes": [c.text for c in causes],
            "vulkan_devices_of_vendor": exposed,
            "nvidia_smi": [s.uuid for s in smi] if smi is not None else None,
        },
        remedy=_NOT_EXPOSED_REMEDY[key],
        commands=commands,
        # BMC and other display-only adapters have no Vulkan driver anywhere.
        severity=None if vendor in VENDOR_DRIVERS else Severity.INFO,
    )


_NOT_EXPOSED_REMEDY = {
    "container-visible-devices": "Start the container with this GPU passed in (docker --gpus "
    "all, or NVIDIA_VISIBLE_DEVICES=all or the GPU's index or UUID), on the host.",
    "device-node": "Give this user access to the GPU's device node (the video or render group, "
    "or the container's --device list), or create it with nvidia-modprobe.",
    "kernel-driver": "Bind the GPU's kernel driver first (see the gpu-no-kernel-driver finding).",
    "driver-failed": "The driver failed for this GPU: read the kernel log for its PCI address "
    "(NVIDIA logs Xid errors as NVRM) and reset or reseat the GPU.",
    "vulkan-only": "The kernel driver sees the GPU but Vulkan does not: check that the NVIDIA "
    "Vulkan driver's version matches the kernel module and that the container has the graphics "
    "capability.",
    "no-driver": "Install the vendor's Vulkan driver.",
}


def _not_exposed_commands(key: str, gpu: gpumatch.BusGpu, visible: str | None) -> list[str]:
    if key == "container-visible-devices":
        return ["docker run --gpus all <image>", shell.command("nvidia-smi", "-L")]
    if key == "device-node":
        path = f"/dev/nvidia{gpu.nvidia_minor}"
        return [
            shell.command("ls", "-l", path),
            shell.command("sudo", "nvidia-modprobe", "-c", str(gpu.nvidia_minor)),
        ]
    if key in ("driver-failed", "vulkan-only"):
        commands = ["sudo dmesg | grep -i " + shlex.quote(gpu.slot.removeprefix("0000:"))]
        if gpu.vendor_id == "10de":
            commands.append(shell.command("nvidia-smi", "-L"))
        return commands
    if key == "kernel-driver":
        return [shell.command("lspci", "-nnk", "-s", gpu.slot)]
    return []


SPEC = ProbeSpec(
    id="device",
    title="Devices and function loading",
    run=run,
    requires=("instance",),
    native=True,
    early=start_early,
    early_after=("loader-discovery",),
)
