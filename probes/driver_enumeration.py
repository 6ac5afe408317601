"""Probe 2, driver-enumeration: every driver manifest the loader would read, and its library.

The search and parsing are pure (``loaderenv``, ``manifests``, ``libraries``); loading each
library, reading its exports and negotiating the interface version happen in child processes,
one batch item per library, so a crashing or hanging driver is named and the others still count.
The loader's own log (from loader-discovery) is compared with what we found.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from typing import Any

from vkdoctor.engine.child import ItemOutcome
from vkdoctor.engine.env import Env
from vkdoctor.engine.runner import ProbeContext, ProbeOutcome, ProbeSpec
from vkdoctor.loader import libcheck
from vkdoctor.loader import log as loaderlog
from vkdoctor.loader.exclusions import by_manifest, state_exclusions
from vkdoctor.loader.manifests import (
    DriverManifest,
    list_manifest_files,
    parse_driver,
    problem_finding,
    read_manifest,
)
from vkdoctor.loader.search import (
    SearchEntry,
    effective_get,
    filter_list,
    glob_match,
    parse_version,
    search_entries,
    version_str,
)
from vkdoctor.loader.versions import Behaviour, has
from vkdoctor.report import shell
from vkdoctor.report.codes import CodeInfo, code_table, make_finding
from vkdoctor.report.model import Finding, LogEntry, Severity
from vkdoctor.report.records import DriverRecord, Exclusion, ExclusionReason, LoadOutcome
from vkdoctor.report.redact import record_value
from vkdoctor.system import distro

TASK = "vkdoctor.tasks.libraries:check_libraries"
VK_ERROR_INCOMPATIBLE_DRIVER = -9

CODES = code_table(
    [
        CodeInfo(
            "no-driver-manifests",
            Severity.FAIL,
            "no Vulkan driver is installed",
            "The loader's search found no driver manifest, so vkCreateInstance fails with "
            "VK_ERROR_INCOMPATIBLE_DRIVER ('Found no drivers!').",
            (
                "no driver package installed",
                "a container built without the driver",
                "XDG_DATA_DIRS or an override variable hiding the system directories",
            ),
            "Install a Vulkan driver (Mesa's includes the lavapipe CPU driver).",
        ),
        CodeInfo(
            "no-usable-driver",
            Severity.FAIL,
            "no driver manifest leads to a usable driver",
            "Driver manifests exist but every one is broken, filtered out or for another "
            "architecture, so the loader will report 'Found no drivers!'.",
            ("stale manifests", "filters matching nothing", "only 32-bit drivers"),
            "Fix the root cause named above it (each driver's state and why the loader skips it "
            "are in the Drivers section); with no driver installed, install Mesa's.",
        ),
        CodeInfo(
            "driver-search-overridden",
            Severity.INFO,
            "an override variable replaces the driver search",
            "VK_DRIVER_FILES or VK_ICD_FILENAMES replaces the whole driver search: drivers "
            "installed elsewhere are invisible.",
            ("driver-selection scripts", "leftover exports"),
            "Unset the variable, or use VK_ADD_DRIVER_FILES to add a driver.",
        ),
        CodeInfo(
            "driver-hidden-by-override",
            Severity.WARN,
            "installed drivers are hidden by an override",
            "Driver manifests exist in the default directories but the override variable makes "
            "the loader ignore them.",
            ("a stale VK_DRIVER_FILES/VK_ICD_FILENAMES",),
            "Unset the override variable.",
        ),
        CodeInfo(
            "driver-outside-search-path",
            Severity.WARN,
            "installed drivers lie outside the search path",
            "XDG_DATA_DIRS replaces the default data directories (/usr/local/share:/usr/share), "
            "so the loader never looks in the directories where the installed driver manifests "
            "are.",
            (
                "XDG_DATA_DIRS set by a desktop session, a Flatpak/Snap or a script without "
                "/usr/share",
            ),
            "Append the default directories to XDG_DATA_DIRS.",
        ),
        CodeInfo(
            "driver-filtered",
            Severity.INFO,
            "a driver is removed by a filter variable",
            "VK_LOADER_DRIVERS_SELECT/DISABLE match manifest file names (globs); this driver "
            "is ignored.",
            ("deliberate selection", "a glob matching more or less than meant"),
            "Adjust or unset the filter variable.",
        ),
        CodeInfo(
            "driver-missing-exports",
            Severity.FAIL,
            "the library exports no driver entry points",
            "Neither vk_icdNegotiateLoaderICDInterfaceVersion, vk_icdGetInstanceProcAddr nor "
            "vkGetInstanceProcAddr is exported: this is not a Vulkan driver.",
            ("a manifest pointing at the wrong library",),
            "Fix the manifest's library_path.",
        ),
        CodeInfo(
            "driver-no-gipa",
            Severity.FAIL,
            "the driver does not export vk_icdGetInstanceProcAddr",
            "The driver negotiates an interface version above 0 but does not export "
            "vk_icdGetInstanceProcAddr; the loader skips it.",
            ("a broken driver build",),
            "Update the driver.",
        ),
        CodeInfo(
            "driver-negotiation-failed",
            Severity.FAIL,
            "the driver rejects the loader's interface",
            "vk_icdNegotiateLoaderICDInterfaceVersion returned VK_ERROR_INCOMPATIBLE_DRIVER; "
            "the loader skips this driver.",
            ("a driver too old or too new for this loader",),
            "Update the driver or the loader.",
        ),
        CodeInfo(
            "driver-old-interface",
            Severity.WARN,
            "the driver's loader interface is too old",
            "Drivers for Vulkan 1.1+ need loader interface version 5 or newer (Policy "
            "#LDP_DRIVER_7); the loader warns and may misbehave.",
            ("an old driver",),
            "Update the driver.",
        ),
        CodeInfo(
            "driver-gipa-incomplete",
            Severity.FAIL,
            "the driver returns no vkCreateInstance",
            "vk_icdGetInstanceProcAddr(NULL, 'vkCreateInstance') returned NULL: the loader logs "
            "\"Could not get 'vkCreateInstance' via 'vk_icdGetInstanceProcAddr'\" and skips the "
            "driver. NVIDIA's driver does this when its kernel module or device nodes are missing.",
            ("NVIDIA kernel module not loaded", "/dev/nvidia* missing in a container"),
            "Load the kernel driver / pass the device nodes into the container.",
        ),
        CodeInfo(
            "driver-is-the-loader",
            Severity.FAIL,
            "a driver manifest names the Vulkan loader as its driver",
            "The manifest's library_path is libvulkan.so, the loader itself, not a driver. The "
            "loader loads it as a driver and recurses into its own vkCreateInstance (it hangs "
            "or fails). Installers that wrote a manifest for the wrong library do this.",
            ("a hand-written manifest", "an installer that confused the loader with its driver"),
            "Remove the manifest (it is no driver), or point library_path at the real driver.",
        ),
        CodeInfo(
            "driver-duplicate",
            Severity.WARN,
            "several manifests load the same driver library",
            "The same GPU will be listed more than once, and apps picking device 0 may get "
            "either entry.",
            ("leftover manifests", "both a generic and an arch-specific manifest"),
            "Remove the duplicate manifest.",
        ),
        CodeInfo(
            "driver-portability",
            Severity.INFO,
            "a portability (non-conformant subset) driver",
            "The loader hides portability drivers unless the application enables "
            "VK_KHR_portability_enumeration.",
            ("MoltenVK-style drivers",),
            "Applications must opt in to portability enumeration.",
        ),
        CodeInfo(
            "loader-disagrees",
            Severity.WARN,
            "the loader rejected a driver vkdoctor found usable",
            "vkdoctor's own checks pass but the loader's log reports a problem with this driver.",
            (
                "a difference between RTLD_NOW and the loader's conditions",
                "a driver failing only inside the loader",
            ),
            "The loader will not use this driver although it loads here: the quoted loader "
            "line is its reason. Update the driver, or disable it with VK_LOADER_DRIVERS_DISABLE "
            "set to the manifest's file name if another driver serves the device; "
            "`VK_LOADER_DEBUG=all vulkaninfo --summary` shows the loader's full account.",
        ),
        CodeInfo(
            "loader-search-differs",
            Severity.INFO,
            "the loader searched differently than expected",
            "The loader's log lists manifest locations or files that vkdoctor's model of the "
            "search did not predict (e.g. a loader built with another SYSCONFDIR).",
            ("a loader built by a distribution with other paths",),
            "Compare the two lists.",
        ),
    ]
)


def _filtered_reason(env: Env, manifest: str, version: tuple[int, int, int] | None) -> str | None:
    name = os.path.basename(manifest)
    select = filter_list(effective_get(env, "VK_LOADER_DRIVERS_SELECT", version))
    disable = filter_list(effective_get(env, "VK_LOADER_DRIVERS_DISABLE", version))
    selected = any(glob_match(p, name) for p in select)
    if select and not selected:
        return f"not selected by VK_LOADER_DRIVERS_SELECT={','.join(select)}"
    if not selected and any(glob_match(p, name) for p in disable):
        return f"disabled by VK_LOADER_DRIVERS_DISABLE={','.join(disable)}"
    return None


def _driver_findings(
    manifest: DriverManifest,
    record: DriverRecord,
    result: libcheck.LibraryLoad,
    loader_version: tuple[int, int, int] | None = None,
) -> list[Finding]:
    path = manifest.path
    library = record.resolved
    findings: list[Finding] = []
    commands = libcheck.disable_commands("driver", path, loader_version=loader_version)
    exports = result.exports
    evidence = {"manifest": path, "library": library, "exports": exports}
    if not any(exports.values()) and result.negotiate_via_gipa is None:
        return [
            make_finding(
                CODES,
                "driver-missing-exports",
                f"{library} (from {path}) exports no Vulkan driver entry points",
                evidence=evidence,
                commands=commands,
            )
        ]
    if result.negotiate_result == VK_ERROR_INCOMPATIBLE_DRIVER:
        return [
            make_finding(
                CODES,
                "driver-negotiation-failed",
                f"{library} (from {path}) rejects loader interface version 7 "
                "(VK_ERROR_INCOMPATIBLE_DRIVER)",
                evidence=evidence,
                commands=commands,
            )
        ]
    version = result.interface_version
    if version and version >= 1 and not exports.get("vk_icdGetInstanceProcAddr"):
        findings.append(
            make_finding(
                CODES,
                "driver-no-gipa",
                f"{library} (from {path}) negotiates interface {version} but does "
                "not export vk_icdGetInstanceProcAddr",
                evidence=evidence,
                commands=commands,
            )
        )
        return findings
    api = parse_version(manifest.api_version or "")
    if version is not None and version <= 4 and api and api >= (1, 1, 0):
        findings.append(
            make_finding(
                CODES,
                "driver-old-interface",
                f"{library} claims Vulkan {manifest.api_version} but supports only "
                f"loader interface {version} (5 or newer required)",
                evidence=evidence,
                # Loaders before 1.2.203 have no such policy and use the driver as it is
                # (Debian 11's 1.2.162 with its own Mesa 20.3, tests/matrix): not a problem there.
                severity=None
                if has(Behaviour.DRIVER_INTERFACE_5_POLICY, loader_version)
                else Severity.INFO,
            )
        )
    if result.gipa_create_instance is False:
        findings.append(
            make_finding(
                CODES,
                "driver-gipa-incomplete",
                f"{library} (from {path}) returns NULL for vkCreateInstance from "
                "vk_icdGetInstanceProcAddr",
                evidence=evidence,
                commands=["cat /proc/driver/nvidia/version", "ls -l /dev/nvidia*"]
                if "nvidia" in (library or "").lower()
                else commands,
            )
        )
    return findings


def run(ctx: ProbeContext) -> ProbeOutcome:
    env = ctx.env
    loader = ctx.facts("loader-discovery")
    version = parse_version(loader.get("version") or "")
    outcome = ProbeOutcome()
    entries = search_entries(env, "driver", version)
    files = list_manifest_files(env, entries)
    manifests = [parse_driver(read_manifest(env, p, o)) for p, o in files]
    records: dict[str, DriverRecord] = {}
    loader_path = loader.get("real_path")
    loader_file = os.path.realpath(env.path(loader_path)) if loader_path else None
    items: list[dict[str, Any]] = []
    for manifest in manifests:
        for problem in manifest.problems:
            outcome.findings.append(problem_finding(problem, "driver", manifest.path, version))
        record, findings, item = _examine(env, manifest, version, loader_file)
        records[manifest.path] = record
        outcome.findings += findings
        if item is not None:
            items.append(item)
    item_outcomes, _ = ctx.run_batch(TASK, items, key="key") if items else ([], [])
    by_path = {m.path: m for m in manifests}
    for item in item_outcomes:
        outcome.loader_log += loaderlog.parse(item.stderr)
        records[item.key], native = _loaded(
            env, by_path[item.key], records[item.key], item, version
        )
        outcome.findings += native
    discovery = ctx.results.get("loader-discovery")
    loader_log = discovery.loader_log if discovery else []
    hidden = _hidden_by_override(env, list(records.values()), entries, version)
    cross = _cross_findings(env, list(records.values()), entries, loader_log, hidden)
    outcome.findings += cross
    own = by_manifest(outcome.findings)
    final = [_with_exclusions(r, own) for r in records.values()]
    final += _hidden_records(env, hidden)
    outcome.facts = {
        "search": [e.to_dict() for e in entries],
        "manifests_found": len(manifests),
        "usable": [r.manifest for r in final if r.in_use],
    }
    outcome.drivers = final
    return outcome


def _examine(
    env: Env,
    manifest: DriverManifest,
    version: tuple[int, int, int] | None,
    loader_file: str | None,
) -> tuple[DriverRecord, list[Finding], dict[str, Any] | None]:
    """The record of one manifest from what the parent can check (the manifest, its library
    file), its findings, and the batch item that dlopens the library when it is worth it."""
    record = DriverRecord(
        manifest=manifest.path,
        origin=manifest.origin,
        file_format_version=manifest.file_format_version,
        api_version=manifest.api_version,
        library_arch=manifest.library_arch,
        is_portability_driver=manifest.is_portability_driver,
        filtered=_filtered_reason(env, manifest.path, version),
        issues=tuple(problem.code for problem in manifest.problems),
    )
    if manifest.library_path is None or manifest.skipped_by_loader:
        return replace(record, state="skipped-by-loader"), [], None
    check = libcheck.static_check(
        env, "driver", manifest.path, manifest.library_path, manifest.library_arch
    )
    findings = list(check.findings)
    itself = _names_the_loader(env, check.resolution.path, loader_file) if check.loadable else ""
    if itself:
        findings.append(
            make_finding(
                CODES,
                "driver-is-the-loader",
                f"{manifest.path} names {manifest.library_path}, the Vulkan loader itself, "
                "as its driver",
                evidence={"manifest": manifest.path, "resolved": check.resolution.path},
                commands=[shell.command("sudo", "rm", manifest.path, comment="it is no driver")],
            )
        )
        broken = replace(record, **check.fields(), state="broken", issues=(*record.issues, itself))
        return broken, findings, None
    state = "other-abi" if check.other_abi else ("candidate" if check.loadable else "broken")
    record = replace(
        record,
        **check.fields(),
        state=state,
        issues=record.issues + tuple(f.code for f in check.findings),
    )
    if not check.loadable:
        return record, findings, None
    item = {
        "key": manifest.path,
        "path": str(env.path(check.resolution.path or "")),
        "kind": "driver",
    }
    return record, findings, item


def _loaded(
    env: Env,
    manifest: DriverManifest,
    record: DriverRecord,
    item: ItemOutcome,
    version: tuple[int, int, int] | None,
) -> tuple[DriverRecord, list[Finding]]:
    """The record and findings after the child dlopened the library and negotiated with it."""
    native = libcheck.native_findings(
        env, "driver", item.key, record.resolved or "", item, loader_version=version
    )
    result = libcheck.LibraryLoad.parse(item.result)
    record = replace(
        record,
        load=LoadOutcome(
            state=item.state,
            signal=item.signal,
            last_step=item.last_crumb,
            dlopen_error=result.dlopen_error,
        ),
        exports=result.exports,
        interface_version=result.interface_version,
        negotiate_result=result.negotiate_result,
        instance_version=result.instance_version,
        gipa_create_instance=result.gipa_create_instance,
    )
    if not native and result.loaded:
        native = _driver_findings(manifest, record, result, version)
    hard = [f for f in native if f.severity is Severity.FAIL]
    record = replace(
        record,
        state="broken" if hard else "usable",
        issues=record.issues + tuple(f.code for f in native),
    )
    return record, native


def _names_the_loader(env: Env, resolved: str | None, loader_file: str | None) -> str:
    """``driver-is-the-loader`` when a loadable driver library is the loader (the very file
    this process's loader is, or any libvulkan.so).  Asked of loadable libraries only: a
    realpath per manifest is seconds for 10 000 manifests naming missing libraries."""
    if not resolved:
        return ""
    real = os.path.realpath(env.path(resolved))
    named = re.fullmatch(r"libvulkan\.so(\.\d+)*", os.path.basename(real)) is not None
    return "driver-is-the-loader" if named or real == loader_file else ""


def _hidden_by_override(
    env: Env,
    records: list[DriverRecord],
    entries: list[SearchEntry],
    version: tuple[int, int, int] | None,
) -> tuple[str | None, list[str]]:
    """The variable that keeps installed manifests out of the driver search (an override that
    replaces it, or an XDG_DATA_DIRS without the default directories), and those manifests."""
    override = next(
        (
            e.origin
            for e in entries
            if e.is_override and e.origin in ("VK_DRIVER_FILES", "VK_ICD_FILENAMES")
        ),
        None,
    )
    if override:
        clean = {override: None, "VK_ICD_FILENAMES": None, "VK_DRIVER_FILES": None}
    elif env.get("XDG_DATA_DIRS"):
        override, clean = "XDG_DATA_DIRS", {"XDG_DATA_DIRS": None}
    else:
        return None, []
    defaults = list_manifest_files(
        env, search_entries(env.with_environ(**clean), "driver", version)
    )
    # Compare real paths: distributions symlink one manifest into several directories.
    selected = {os.path.realpath(env.path(r.manifest)) for r in records}
    return override, [p for p, _ in defaults if os.path.realpath(env.path(p)) not in selected]


def _hidden_records(env: Env, hidden_by: tuple[str | None, list[str]]) -> list[DriverRecord]:
    """Installed manifests an override variable keeps out of the search: records of their own,
    so that the report says what the override hides (they were not examined further)."""
    variable, hidden = hidden_by
    if variable is None:
        return []
    value = record_value(variable, env.get(variable) or "")
    reason = (
        Exclusion(
            ExclusionReason.OUTSIDE_SEARCH_PATH,
            "XDG_DATA_DIRS does not include the directory of this manifest",
            variable=variable,
            pattern=value,
        )
        if variable == "XDG_DATA_DIRS"
        else Exclusion(
            ExclusionReason.HIDDEN_BY_OVERRIDE,
            f"{variable} replaces the driver search",
            variable=variable,
            pattern=value,
        )
    )
    return [DriverRecord(manifest=p, state="hidden", excluded_by=(reason,)) for p in hidden]


def _with_exclusions(record: DriverRecord, findings: dict[str, list[Finding]]) -> DriverRecord:
    """The record with why the loader will not use it in a process started now."""
    reasons = state_exclusions(record, findings)
    if record.filtered:
        variable, _, pattern = record.filtered.rpartition(" by ")[2].partition("=")
        reasons.insert(
            0, Exclusion(ExclusionReason.FILTERED, record.filtered, variable, pattern or None)
        )
    return replace(record, excluded_by=tuple(reasons))


def _cross_findings(
    env: Env,
    records: list[DriverRecord],
    entries: list[SearchEntry],
    loader_log: list[LogEntry],
    hidden_by: tuple[str | None, list[str]],
) -> list[Finding]:
    """Findings about the drivers together: the search, filters, duplicates, none usable."""
    searched = [e.path for e in entries]
    findings = _search_findings(env, records, hidden_by)
    findings += _filter_findings(records)
    findings += _duplicate_findings(records)
    findings += _agreement(records, searched, loader_log)
    findings += _none_usable(env, records, searched)
    return findings


def _search_findings(
    env: Env, records: list[DriverRecord], hidden_by: tuple[str | None, list[str]]
) -> list[Finding]:
    """A variable that replaces the search or keeps installed manifests out of it."""
    override, hidden = hidden_by
    # Hiding installed drivers is deliberate when the search still gives a usable driver (a
    # Flatpak's XDG_DATA_DIRS, a VK_DRIVER_FILES that picks one driver): then it is only info.
    working = any(r.state == "usable" and not r.filtered for r in records)
    hiding = Severity.INFO if working else Severity.WARN
    findings: list[Finding] = []
    if override == "XDG_DATA_DIRS":
        value = env.get("XDG_DATA_DIRS") or ""
        if hidden:
            findings.append(
                make_finding(
                    CODES,
                    "driver-outside-search-path",
                    f"XDG_DATA_DIRS={value} leaves out /usr/share, where {len(hidden)} installed "
                    "driver manifest(s) are: " + ", ".join(hidden),
                    evidence={
                        "variable": "XDG_DATA_DIRS",
                        "value": record_value("XDG_DATA_DIRS", value),
                        "hidden": hidden,
                    },
                    commands=[
                        shell.export("XDG_DATA_DIRS", f"{value}:/usr/local/share:/usr/share")
                    ],
                    severity=hiding,
                )
            )
    elif override:
        findings.append(
            make_finding(
                CODES,
                "driver-search-overridden",
                f"{override}={env.get(override)} replaces the driver search",
                evidence={
                    "variable": override,
                    "value": record_value(override, env.get(override) or ""),
                },
                commands=[shell.unset(override)],
            )
        )
        if hidden:
            findings.append(
                make_finding(
                    CODES,
                    "driver-hidden-by-override",
                    f"{override} hides {len(hidden)} installed driver manifest(s): "
                    + ", ".join(hidden),
                    evidence={"variable": override, "hidden": hidden},
                    commands=[shell.unset(override)],
                    severity=hiding,
                )
            )
    return findings


def _filter_findings(records: list[DriverRecord]) -> list[Finding]:
    """Drivers a filter variable removes, and portability drivers."""
    findings: list[Finding] = []
    for record in records:
        if record.filtered:
            findings.append(
                make_finding(
                    CODES,
                    "driver-filtered",
                    f"{record.manifest} is ignored: {record.filtered}",
                    evidence={"manifest": record.manifest, "reason": record.filtered},
                    # The variable the verdict names ("disabled by VK_LOADER_DRIVERS_DISABLE=*").
                    commands=[shell.unset(record.filtered.rpartition(" by ")[2].partition("=")[0])],
                )
            )
        if record.is_portability_driver:
            findings.append(
                make_finding(
                    CODES,
                    "driver-portability",
                    f"{record.manifest} is a portability driver",
                    evidence={"manifest": record.manifest},
                )
            )
    return findings


def _duplicate_findings(records: list[DriverRecord]) -> list[Finding]:
    """Several manifests that load one library (the loader would load it twice)."""
    by_library: dict[str, list[str]] = {}
    for record in records:
        if record.real_path and record.state in ("usable", "candidate"):
            by_library.setdefault(record.real_path, []).append(record.manifest)
    return [
        make_finding(
            CODES,
            "driver-duplicate",
            f"{len(owners)} manifests load {library}: {', '.join(owners)}",
            evidence={"library": library, "manifests": owners},
            commands=_remove_copy(owners),
        )
        for library, owners in sorted(by_library.items())
        if len(owners) > 1
    ]


def _none_usable(env: Env, records: list[DriverRecord], searched: list[str]) -> list[Finding]:
    usable = [r for r in records if r.state == "usable" and not r.filtered]
    if not records:
        return [
            make_finding(
                CODES,
                "no-driver-manifests",
                "no Vulkan driver manifest found in: " + ", ".join(searched),
                evidence={"searched": searched},
                commands=[distro.install_command("mesa-vulkan", env)],
            )
        ]
    if usable:
        return []
    reasons = "; ".join(f"{os.path.basename(r.manifest)}: {r.filtered or r.state}" for r in records)
    return [
        make_finding(
            CODES,
            "no-usable-driver",
            f"none of the {len(records)} driver manifests gives a usable driver ({reasons})",
            evidence={"manifests": [r.manifest for r in records]},
            commands=[distro.install_command("mesa-vulkan", env)],
        )
    ]


def _agreement(
    records: list[DriverRecord], searched: list[str], entries: list[LogEntry]
) -> list[Finding]:
    if not entries:
        return []
    findings: list[Finding] = []
    view = loaderlog.discovery(entries, "driver")
    findings += libcheck.loader_complaints(CODES, "loader-disagrees", entries, records)
    ours = {r.manifest for r in records}
    extra_files = [f for f in view.files if f not in ours]
    extra_dirs = [d for d in view.locations if d not in searched]
    if extra_files or extra_dirs:
        findings.append(
            make_finding(
                CODES,
                "loader-search-differs",
                "the loader also considered: " + ", ".join(extra_dirs + extra_files),
                evidence={
                    "loader_locations": list(view.locations),
                    "loader_files": list(view.files),
                    "predicted_locations": searched,
                },
            )
        )
    return findings


SPEC = ProbeSpec(
    id="driver-enumeration",
    title="Driver (ICD) enumeration",
    run=run,
    requires=("loader-discovery",),
    native=True,
)

__all__ = ["CODES", "SPEC", "version_str"]


# Where distribution packages put manifests: a copy elsewhere is what a user or an installer
# script added, and the one to remove (the remedy fitter still refuses a package's own file).
PACKAGE_MANIFEST_DIRS = ("/usr/share/", "/usr/lib/", "/usr/lib64/", "/etc/")


def _remove_copy(owners: list[str]) -> list[str]:
    """Remove one of several manifests that load the same library: a copy outside the package
    directories when there is one, keeping the packaged manifest."""
    added = [m for m in owners if not m.startswith(PACKAGE_MANIFEST_DIRS)]
    target = added[-1] if added else owners[-1]
    keep = next(m for m in owners if m != target)
    return [shell.command("sudo", "rm", target, comment=f"the same driver as {keep}, which stays")]
