"""Probe 4, instance: create a VkInstance as an application would, resolve every command through
vkGetInstanceProcAddr against the registry, list the physical devices and map each to its driver.

When creation fails, crashes or hangs, the culprit is isolated by re-running with each active
implicit layer disabled and with each driver alone (the children run concurrently).
"""

from __future__ import annotations

from typing import Any

from vkdoctor.engine.bisect import (
    MAX_CANDIDATES,
    Ahead,
    bisect,
    candidate_drivers,
    usable_drivers,
)
from vkdoctor.engine.child import ChildOutcome, ItemOutcome
from vkdoctor.engine.runner import ProbeContext, ProbeOutcome, ProbeSpec
from vkdoctor.loader import log as loaderlog
from vkdoctor.loader import messages
from vkdoctor.loader.libcheck import disable_commands
from vkdoctor.loader.search import parse_version
from vkdoctor.loader.vkresult import explain_result, result_name
from vkdoctor.report import shell
from vkdoctor.report.codes import CodeInfo, code_table, make_finding
from vkdoctor.report.model import Finding, Severity, Status

TASK = "vkdoctor.tasks.vkprobe:instances"
TRAMPOLINE_SAMPLES = (
    "vkEnumeratePhysicalDevices",
    "vkCreateDevice",
    "vkCreateBuffer",
    "vkQueueSubmit",
    "vkCmdDispatch",
)

CODES = code_table(
    [
        CodeInfo(
            "instance-creation-failed",
            Severity.FAIL,
            "vkCreateInstance fails",
            "No Vulkan program can start: instance creation returns an error.",
            (
                "no usable driver ('Found no drivers!')",
                "a malformed manifest on old loaders",
                "a missing requested layer or extension",
            ),
            "Fix the root cause this report names first (a variable that hides the drivers, a "
            "broken driver, a missing layer); `VK_LOADER_DEBUG=all vulkaninfo --summary` shows the "
            "loader's own account.",
        ),
        CodeInfo(
            "instance-creation-crashed",
            Severity.FAIL,
            "vkCreateInstance crashes",
            "The process died inside instance creation; every Vulkan program does the same.",
            ("a buggy implicit layer", "a buggy driver"),
            "Disable the layer or driver that bisection names (the culprit-layer or culprit-driver "
            "finding): a layer with its disable variable or VK_LOADER_LAYERS_DISABLE=<name>, a "
            "driver with VK_LOADER_DRIVERS_DISABLE=<manifest file name>.",
        ),
        CodeInfo(
            "instance-creation-hung",
            Severity.FAIL,
            "vkCreateInstance hangs",
            "Instance creation did not return in time.",
            ("a driver waiting on a device or server", "a layer deadlock"),
            "Disable the layer or driver that bisection names (the culprit-layer or culprit-driver "
            "finding) with its disable variable or VK_LOADER_DRIVERS_DISABLE=<manifest file "
            "name>; a GPU driver that waits may need its kernel module (`dmesg`).",
        ),
        CodeInfo(
            "no-physical-devices",
            Severity.FAIL,
            "the instance sees no physical device",
            "vkEnumeratePhysicalDevices reports no device: drivers loaded but none found a GPU.",
            (
                "kernel driver not loaded or mismatched",
                "no access to the device nodes",
                "a driver for hardware that is not present",
            ),
            "Check the kernel driver and device-node access (see the environment findings).",
        ),
        CodeInfo(
            "driver-no-devices",
            Severity.INFO,
            "a driver exposes no device",
            "The driver loads but reports no physical device, usually because its hardware is "
            "absent (Mesa installs drivers for every vendor).",
            ("hardware absent", "no device access"),
            "Nothing to do if you have no such GPU.",
        ),
        CodeInfo(
            "gipa-global-missing",
            Severity.FAIL,
            "a global command is not available",
            "vkGetInstanceProcAddr(NULL, name) returned NULL for a command the spec requires.",
            ("a broken or very old loader",),
            "Reinstall or upgrade the loader.",
        ),
        CodeInfo(
            "gipa-null-leak",
            Severity.WARN,
            "vkGetInstanceProcAddr(NULL, ...) returns non-global commands",
            "The spec requires NULL for non-global names with a NULL instance; code relying on "
            "such pointers crashes with other loaders.",
            ("an old loader", "a layer"),
            "Upgrade the loader; applications must pass an instance.",
        ),
        CodeInfo(
            "gipa-instance-missing",
            Severity.FAIL,
            "an instance command resolves to NULL",
            "vkGetInstanceProcAddr(instance, name) returned NULL for a command the instance's "
            "version and extensions provide.",
            ("a broken loader or layer",),
            "Upgrade the loader; disable layers one by one to find the one dropping it.",
        ),
        CodeInfo(
            "gipa-instance-unexpected",
            Severity.INFO,
            "an unavailable command resolves",
            "vkGetInstanceProcAddr(instance, name) returned a pointer where the spec says NULL.",
            ("loader or layer leniency",),
            "Applications must not rely on it.",
            audience="developer",
        ),
        CodeInfo(
            "driver-create-instance-failed",
            Severity.WARN,
            "a driver's vkCreateInstance fails; the loader skips it",
            "The loader calls every driver's vkCreateInstance and skips those that fail "
            "('terminator_CreateInstance: Failed to CreateInstance in ICD n. Skipping ICD.'). "
            "Vulkan works with the other drivers, but the devices of this one are missing. The "
            "driver was run alone to tell which one fails.",
            (
                "a driver for hardware or a kernel module that is absent",
                "a driver too old for the API version requested",
                "a broken driver build",
            ),
            "Disable the driver with VK_LOADER_DRIVERS_DISABLE=<manifest file name>, or remove "
            "its manifest if you do not need it.",
        ),
        CodeInfo(
            "instance-loader-message",
            Severity.WARN,
            "the loader warned during instance creation",
            "A warning or error message from the loader's debug-utils messenger during "
            "vkCreateInstance.",
            ("a manifest or library the message names", "a requested layer or extension"),
            "The message names the component; `vkdoctor check driver-enumeration "
            "layer-enumeration -v` checks every manifest and library it could mean.",
        ),
    ]
)


def _data(outcome: ChildOutcome) -> dict[str, Any]:
    """All results of a one-item batch child, merged."""
    merged: dict[str, Any] = {}
    for message in outcome.results:
        if message.get("kind") == "result" and isinstance(message.get("data"), dict):
            merged.update(message["data"])
    return merged


def _creation_ok(outcome: ChildOutcome) -> bool:
    create = _data(outcome).get("create") or {}
    return outcome.state == "ok" and create.get("result") == 0


def _item_ok(item: ItemOutcome) -> bool:
    return item.state == "ok" and ((item.result or {}).get("create") or {}).get("result") == 0


BISECT_PAYLOAD = {"items": [{"key": "bisect"}]}
STAGE = "instance creation"


def _creation_failed(outcome: ChildOutcome) -> bool:
    return not _creation_ok(outcome)


def run(ctx: ProbeContext) -> ProbeOutcome:
    from vkdoctor.loader import registry

    outcome = ProbeOutcome()
    table = registry.load_commands(environ=ctx.env.environ)
    names = sorted(c.name for c in table)
    drivers = usable_drivers(ctx)
    items: list[dict[str, Any]] = [
        {
            "key": "all",
            "names": names,
            "trampoline_names": list(TRAMPOLINE_SAMPLES),
            "groups": True,  # vkEnumeratePhysicalDeviceGroups (and peer memory for 2+)
        }
    ]
    # Per-driver runs (same child, one after another) map devices to manifests and catch a driver
    # that breaks on its own: one per distinct library, and a bounded number (hostile input).
    candidates = candidate_drivers(ctx)[:MAX_CANDIDATES]
    if len(candidates) > 1:
        items += [
            {"key": m, "environ": {"VK_DRIVER_FILES": m, "VK_ICD_FILENAMES": None}}
            for m in candidates
        ]
    # The per-driver runs map a working instance's devices; when it crashed or hung, bisection
    # runs each driver alone instead, and they would only wait out the same hang again.
    # A first attempt that hung or crashed will most likely do so again: isolate the culprit
    # alongside the re-run instead of after it (the same hang is waited out once, not twice).
    isolating = ctx.options.bisect and ctx.first_attempt in (Status.TIMEOUT, Status.CRASHED)
    if isolating:
        ctx.wait_for("layer-enumeration")  # its layers are bisection candidates
    ahead = Ahead(ctx, STAGE, TASK, BISECT_PAYLOAD, _creation_failed) if isolating else None
    try:
        results, _ = ctx.run_batch(TASK, items, "key", needs_first=True)
    except BaseException:
        if ahead is not None:
            ahead.cancel()
        raise
    # Layer enumeration runs alongside this child (the payload needs only the drivers); what it
    # found explains the loader's messages and names the layers bisection tries.
    ctx.wait_for("layer-enumeration")
    main = results[0]
    if ahead is not None and _item_ok(main):
        ahead.cancel()  # it works after all: nothing to isolate
        ahead = None
    per_driver = {r.key: r for r in results[1:]}
    outcome.loader_log = loaderlog.parse(main.stderr)
    data = main.result or {}
    create = data.get("create") or {}
    loader_messages = data.get("messages") or []
    outcome.facts = {
        "api_version": create.get("api_version"),
        "enabled_extensions": create.get("enabled_extensions", []),
        "available_extensions": create.get("available_extensions", []),  # for --require
        "call_chain": _call_chain(outcome.loader_log),
        **_stored_messages(loader_messages),
        "child": {"state": main.state, "signal": main.signal, "last_step": main.last_crumb},
    }
    if not _item_ok(main):
        outcome.findings += _creation_failure(ctx, main, create, ahead)
        outcome.status = {"crashed": Status.CRASHED, "timeout": Status.TIMEOUT}.get(main.state)
        return outcome
    names, reported = _diagnosed(ctx)
    classified = messages.classify(loader_messages, names, reported)
    outcome.facts["message_classes"] = [m.to_fact() for m in classified[:MAX_STORED_MESSAGES]]
    outcome.findings += _message_findings(ctx, classified, per_driver)
    proc = data.get("proc")
    if proc is not None:
        outcome.facts["trampolines"] = {
            "note": "vkGetInstanceProcAddr returns the loader's exported trampolines (same address as "
            "dlsym): every call through them dispatches via the loader's tables to the layers and the "
            "driver. The device probe shows vkGetDeviceProcAddr's pointers for the same commands, "
            "which skip the trampoline (LoaderApplicationInterface.md, best performance setup).",
            "addresses": proc.get("trampolines", {}),
        }
        outcome.facts["proc_addr"] = {
            "registry": table.version,
            "names_checked": len(names),
            "gipa_null_non_null": len(proc["gipa_null"]),
            "gipa_instance_non_null": len(proc["gipa_instance"]),
        }
        outcome.findings += _proc_findings(ctx, table, create, proc)
    devices_stage = data.get("devices") or {"result": None, "devices": []}
    devices = devices_stage["devices"]
    _map_devices(devices, candidates or drivers, per_driver)
    outcome.facts["physical_devices"] = devices
    if "device_groups" in data:
        # Evidence (groups of device indices, subset allocation, peer-memory flags per heap and
        # pair): nothing reads it as an interface, so a fact rather than a record.
        outcome.facts["device_groups"] = data["device_groups"]
    outcome.findings += _device_count_findings(devices_stage, drivers, per_driver, main)
    return outcome


def _call_chain(entries: list[Any]) -> list[str]:
    """The 'vkCreateInstance layer callstack setup to:' block of the loader log."""
    chain: list[str] = []
    inside = False
    for entry in entries:
        if "callstack setup to" in entry.message and "Instance" in entry.message:
            inside, chain = True, []
            continue
        if inside:
            if entry.message in ("", "<Application>") or entry.message.startswith(
                ("||", "Type:", "Enabled", "Manifest", "Library", "Disable")
            ):
                continue
            chain.append(entry.message)
            if entry.message == "<Drivers>":
                inside = False
    return chain


def _creation_failure(
    ctx: ProbeContext, result: ItemOutcome, create: dict[str, Any], ahead: Ahead | None = None
) -> list[Finding]:
    code = create.get("result")
    evidence = {
        "state": result.state,
        "signal": result.signal,
        "last_step": result.last_crumb,
        "wchan": list(result.wchan),  # where a hung child's threads wait in the kernel
        "error": (result.error or "").strip().splitlines()[-1:],  # e.g. the binding missing
        "result": result_name(code) if code is not None else None,
        "loader_errors": [e.message for e in loaderlog.problems(loaderlog.parse(result.stderr))][
            :20
        ],
    }
    if result.state == "crashed":
        findings = [
            make_finding(
                CODES,
                "instance-creation-crashed",
                f"Vulkan crashed with {result.signal} during: {result.last_crumb}",
                evidence=evidence,
            )
        ]
    elif result.state == "timeout":
        findings = [
            make_finding(
                CODES,
                "instance-creation-hung",
                f"Vulkan did not return within {ctx.options.timeout_s:.0f}s from: "
                f"{result.last_crumb}",
                evidence=evidence,
            )
        ]
    elif code is not None:
        version = parse_version(ctx.facts("loader-discovery").get("version") or "")
        findings = [
            make_finding(
                CODES,
                "instance-creation-failed",
                f"vkCreateInstance returned {result_name(code)}: "
                f"{explain_result(code, version, _malformed_manifests(ctx))}",
                evidence=evidence,
            )
        ]
    else:
        findings = [
            make_finding(
                CODES,
                "instance-creation-failed",
                f"the instance probe failed ({result.state}) during: {result.last_crumb}"
                + (f": {evidence['error'][0]}" if evidence["error"] else ""),
                evidence=evidence,
            )
        ]
    if ahead is not None:
        findings += ahead.findings()
    elif ctx.options.bisect and ctx.isolate:
        findings += bisect(ctx, STAGE, TASK, BISECT_PAYLOAD, _creation_failed)
    return findings


def _malformed_manifests(ctx: ProbeContext) -> list[str]:
    return [
        str(f.evidence.get("manifest"))
        for probe_id in ("driver-enumeration", "layer-enumeration")
        for f in (ctx.results[probe_id].findings if probe_id in ctx.results else [])
        if f.code == "manifest-invalid-json"
    ]


def _diagnosed(ctx: ProbeContext) -> tuple[dict[str, str], set[str]]:
    """The component names the driver and layer probes diagnosed ({name: code}: the paths of
    records with issues, and every name their findings mention), and every code they reported."""
    paths: dict[str, str] = {}
    drivers, layers = ctx.outcomes.get("driver-enumeration"), ctx.outcomes.get("layer-enumeration")
    records = [
        *(drivers.drivers or [] if drivers else []),
        *(layers.layers or [] if layers else []),
    ]
    for record in records:
        if record.issues:
            for path in (record.manifest, record.library_path, record.resolved):
                if path:
                    paths.setdefault(path, record.issues[0])
    findings = [
        f
        for probe_id in ("driver-enumeration", "layer-enumeration", "loader-discovery")
        for f in (ctx.results[probe_id].findings if probe_id in ctx.results else [])
    ]
    return messages.diagnosed_names(findings, paths), {f.code for f in findings}


MAX_STORED_MESSAGES = 200  # distinct debug-utils messages the report keeps


def _stored_messages(received: list[dict[str, Any]]) -> dict[str, Any]:
    """The messages as the report keeps them: each distinct one once, warnings and errors first
    kept, at most MAX_STORED_MESSAGES (10 000 broken manifests make 50 000 messages), with the
    counts of what was left out."""
    distinct = list({(m.get("severity"), m.get("message")): m for m in received}.values())
    urgent = [m for m in distinct if m.get("severity") in ("warning", "error")]
    rest = [m for m in distinct if m.get("severity") not in ("warning", "error")]
    kept = {id(m) for m in (urgent + rest)[:MAX_STORED_MESSAGES]}
    stored = [m for m in distinct if id(m) in kept]
    counts = {"messages": len(received), "distinct": len(distinct), "stored": len(stored)}
    return {"messages": stored, "messages_stored": counts}


def _message_findings(
    ctx: ProbeContext, classified: list[messages.Classified], per_driver: dict[str, ItemOutcome]
) -> list[Finding]:
    """Findings for the loader's warnings and errors during creation: benign ones and those a
    driver or layer finding explains are not reported again (the facts keep their class); a
    driver whose vkCreateInstance fails is named; what is left is reported once each."""
    findings: list[Finding] = []
    for message in classified:
        if message.kind == messages.FINDING and message.label == "driver-create-instance-failed":
            named = _failing_drivers(ctx, per_driver, message)
            if named:
                findings += [f for f in named if f not in findings]
                continue
        if message.kind in (messages.FINDING, messages.UNKNOWN):
            findings.append(
                make_finding(
                    CODES,
                    "instance-loader-message",
                    f"loader {message.severity} during vkCreateInstance: {message.message}"
                    + (f" ({message.count} times)" if message.count > 1 else ""),
                    evidence={
                        "severity": message.severity,
                        "message": message.message,
                        "count": message.count,
                    },
                )
            )
    return findings


def _failing_drivers(
    ctx: ProbeContext, per_driver: dict[str, ItemOutcome], message: messages.Classified
) -> list[Finding]:
    """The drivers whose vkCreateInstance fails on their own (the per-driver runs) while the
    instance with all of them works: the loader skipped them."""
    loader_version = parse_version(ctx.facts("loader-discovery").get("version") or "")
    findings = []
    for manifest, item in per_driver.items():
        result = ((item.result or {}).get("create") or {}).get("result")
        if item.state != "ok" or result in (None, 0):
            continue
        findings.append(
            make_finding(
                CODES,
                "driver-create-instance-failed",
                f"driver {manifest}: its vkCreateInstance returns {result_name(result)}, so the "
                "loader skips it and Vulkan programs run without it",
                evidence={
                    "manifest": manifest,
                    "result": result_name(result),
                    "loader_message": message.message,
                },
                commands=[
                    *disable_commands("driver", manifest, None, loader_version)[:1],
                    shell.command("sudo", "rm", manifest, comment="if you do not need this driver"),
                ],
            )
        )
    return findings


def _proc_findings(
    ctx: ProbeContext, table: Any, create: dict[str, Any], proc: dict[str, Any]
) -> list[Finding]:
    from vkdoctor.loader.registry import Expect

    loader_version = parse_version(ctx.facts("loader-discovery").get("version") or "")
    api = parse_version(create.get("api_version") or "1.0") or (1, 0, 0)
    enabled = set(create.get("enabled_extensions", []))
    null_ok, instance_ok = set(proc["gipa_null"]), set(proc["gipa_instance"])
    missing_global, leaks, missing, unexpected = [], [], [], []
    for command in table:
        name = command.name
        verdict = table.gipa_null_verdict(name, loader_version)
        if verdict.expect is Expect.NON_NULL and name not in null_ok:
            missing_global.append(name)
        elif verdict.expect is Expect.NULL and name in null_ok:
            leaks.append(name)
        verdict = table.gipa_verdict(name, api[:2], enabled)
        if verdict.expect is Expect.NON_NULL and name not in instance_ok:
            missing.append(name)
        elif verdict.expect is Expect.NULL and name in instance_ok:
            unexpected.append(name)
    findings = []
    checks = (
        (
            "gipa-global-missing",
            missing_global,
            "vkGetInstanceProcAddr(NULL, ...) returns NULL for",
        ),
        (
            "gipa-null-leak",
            leaks,
            "vkGetInstanceProcAddr(NULL, ...) returns pointers for non-global",
        ),
        ("gipa-instance-missing", missing, "vkGetInstanceProcAddr(instance, ...) returns NULL for"),
        (
            "gipa-instance-unexpected",
            unexpected,
            "vkGetInstanceProcAddr(instance, ...) returns pointers for unavailable",
        ),
    )
    for code, names, text in checks:
        if names:
            findings.append(
                make_finding(
                    CODES,
                    code,
                    f"{text} {len(names)} command(s): {', '.join(names[:8])}"
                    + ("…" if len(names) > 8 else ""),
                    evidence={
                        "commands": names,
                        "api_version": create.get("api_version"),
                        "enabled_extensions": sorted(enabled),
                    },
                )
            )
    return findings


def _key(device: dict[str, Any]) -> tuple[Any, ...]:
    return (
        device.get("device_uuid"),
        device.get("driver_uuid"),
        device["name"],
        device["vendor_id"],
        device["device_id"],
    )


def _map_devices(
    devices: list[dict[str, Any]], drivers: list[str], per_driver: dict[str, ItemOutcome]
) -> None:
    if len(drivers) == 1:
        for device in devices:
            device["driver_manifest"] = drivers[0]
        return
    owners: dict[tuple[Any, ...], list[str]] = {}
    for manifest, outcome in per_driver.items():
        for device in ((outcome.result or {}).get("devices") or {}).get("devices", []):
            owners.setdefault(_key(device), []).append(manifest)
    for device in devices:
        found = owners.get(_key(device), [])
        device["driver_manifest"] = found[0] if len(found) == 1 else None
        if len(found) > 1:  # several drivers report an identical device
            device["driver_manifest_candidates"] = found


def _device_count_findings(
    stage: dict[str, Any],
    drivers: list[str],
    per_driver: dict[str, ItemOutcome],
    result: ItemOutcome,
) -> list[Finding]:
    findings: list[Finding] = []
    for manifest, outcome in per_driver.items():
        devices = ((outcome.result or {}).get("devices") or {}).get("devices")
        if _item_ok(outcome) and not devices:
            findings.append(
                make_finding(
                    CODES,
                    "driver-no-devices",
                    f"{manifest} exposes no physical device",
                    evidence={"manifest": manifest},
                )
            )
    if not stage["devices"]:
        code = stage.get("result")
        findings.append(
            make_finding(
                CODES,
                "no-physical-devices",
                "vkEnumeratePhysicalDevices found no device"
                + (f" ({result_name(code)})" if code not in (None, 0) else ""),
                evidence={
                    "result": result_name(code) if code is not None else None,
                    "drivers": drivers,
                    "loader_errors": [
                        e.message for e in loaderlog.problems(loaderlog.parse(result.stderr))
                    ][:10],
                },
            )
        )
    return findings


SPEC = ProbeSpec(
    id="instance",
    title="Instance and proc-addr resolution",
    run=run,
    requires=("loader-discovery",),
    uses=("driver-enumeration",),
    consults=("layer-enumeration",),
    native=True,
)
