"""Checks shared by driver and layer libraries: resolution, file, ELF, and the child's dlopen.

Codes come in pairs (``driver-library-missing`` / ``layer-library-missing``) so a finding says
which kind of manifest is broken; both are generated from one template table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import field
from typing import Any

from vkdoctor.engine.child import ItemOutcome
from vkdoctor.engine.env import Env
from vkdoctor.loader import log as loaderlog
from vkdoctor.loader.libraries import (
    FileCheck,
    Resolution,
    check_file,
    missing_dependencies,
    resolve_library_path,
    truncated_in_closure,
)
from vkdoctor.loader.versions import reads_variable
from vkdoctor.record import frozen, mutable
from vkdoctor.report import shell
from vkdoctor.report.codes import CodeInfo, code_table, make_finding
from vkdoctor.report.model import Finding, LogEntry, Severity
from vkdoctor.report.records import DriverRecord, LayerRecord
from vkdoctor.system import distro

_TEMPLATES = (
    (
        "library-missing",
        Severity.FAIL,
        "the manifest's library does not exist",
        "The manifest's library_path resolves to no file, so the loader ignores this manifest.",
        (
            "the package was removed or upgraded and left its manifest behind",
            "a container got the manifest but not the library",
            "a relative or bare library_path that resolves elsewhere than intended",
        ),
        "Reinstall the package that owns the manifest, or delete the stale manifest.",
    ),
    (
        "library-unreadable",
        Severity.FAIL,
        "the manifest's library cannot be read",
        "The library exists but this user may not read it, so the loader cannot load it.",
        ("file modes", "sandbox confinement"),
        "Fix the file's permissions.",
    ),
    (
        "library-not-elf",
        Severity.FAIL,
        "the manifest's library is not a shared library",
        "The file is not an ELF shared object (empty, truncated, or another format).",
        ("an interrupted install", "a corrupt file"),
        "Reinstall the package that owns it.",
    ),
    (
        "library-other-abi",
        Severity.INFO,
        "the library is for another architecture",
        "The library is for another ABI (e.g. 32-bit). The loader skips it quietly; it serves programs "
        "of that architecture only. 'wrong ELF class' messages about it are harmless.",
        ("multiarch installs with manifests for both ABIs",),
        "Nothing to do for programs of this architecture.",
    ),
    (
        "dependency-missing",
        Severity.FAIL,
        "a dependency of the library is missing",
        "The library exists but one of the shared objects it needs cannot be found, so dlopen fails.",
        ("a partial driver injection in a container", "a partial upgrade", "sandbox rules"),
        "Install the package that provides the missing library.",
    ),
    (
        "dependency-truncated",
        Severity.FAIL,
        "the library or one it needs is truncated",
        "A shared object in the library's dependency closure is shorter than its own ELF headers "
        "say: mapping it faults (SIGBUS while loading) or dlopen reports 'file too short'. The "
        "library itself is fine; reinstalling the package that owns the damaged file repairs it.",
        ("an interrupted upgrade or a full disk during install", "a damaged file system"),
        "Reinstall the package that owns the truncated file.",
    ),
    (
        "dlopen-failed",
        Severity.FAIL,
        "the library cannot be loaded",
        "dlopen rejected the library; the dynamic linker's message says why.",
        ("a corrupt or incompatible library",),
        "Reinstall or update the driver or layer.",
    ),
    (
        "unresolved-symbols",
        Severity.WARN,
        "the library has unresolved symbols",
        "The library loads lazily (as the loader loads it) but not with RTLD_NOW: calling the "
        "missing function later will crash the program.",
        ("a library built against another version of a dependency",),
        "Update the library or the dependency it was built against.",
    ),
    (
        "load-crashed",
        Severity.FAIL,
        "loading or initialising the library crashed",
        "vkdoctor's child process died while loading or negotiating with this library; the loader "
        "would crash every Vulkan program the same way.",
        ("a driver or layer bug", "mismatched user-space and kernel driver"),
        "Update or remove the library, or disable it (see the commands).",
    ),
    (
        "load-hung",
        Severity.FAIL,
        "loading or initialising the library hangs",
        "vkdoctor's child process did not finish loading or negotiating with this library in time.",
        ("a driver waiting on a device or server that does not answer",),
        "Update or remove the library, or disable it (see the commands).",
    ),
)
KINDS = ("driver", "layer")

CODES = code_table(
    CodeInfo(f"{kind}-{suffix}", severity, f"{kind}: {title}", explanation, causes, remedy)
    for kind in KINDS
    for suffix, severity, title, explanation, causes, remedy in _TEMPLATES
)


@mutable
class StaticCheck:
    resolution: Resolution
    file: FileCheck | None
    loadable: bool  # worth a dlopen in a child
    other_abi: bool
    findings: list[Finding]

    def fields(self) -> dict[str, Any]:
        """The library fields of a DriverRecord or LayerRecord (``dataclasses.replace`` them in)."""
        file = self.file
        return {
            "library_path": self.resolution.requested,
            "library_path_kind": self.resolution.kind,
            "resolved": self.resolution.path,
            "real_path": file.real_path if file else None,
            "exists": bool(file and file.exists),
            "readable": bool(file and file.readable),
            "elf_class": file.elf.elf_class if file and file.elf else None,
            "machine": file.elf.machine_name if file and file.elf and file.elf.machine else None,
            "other_abi": self.other_abi,
        }


def disable_commands(
    kind: str,
    manifest: str,
    disable_env: dict[str, str] | None = None,
    loader_version: tuple[int, int, int] | None = None,
) -> list[str]:
    name = os.path.basename(manifest)
    if kind == "driver":
        if not reads_variable("VK_LOADER_DRIVERS_DISABLE", loader_version):
            # This loader ignores the variable (Debian 11's 1.2.162): the loader reads only
            # *.json, so renaming the manifest is what takes the driver out.
            return [
                shell.command(
                    "sudo",
                    "mv",
                    manifest,
                    f"{manifest}.disabled",
                    comment="this loader has no VK_LOADER_DRIVERS_DISABLE",
                ),
                shell.command("sudo", "rm", manifest, comment="if it is stale"),
            ]
        return [
            shell.export("VK_LOADER_DRIVERS_DISABLE", name),
            shell.command("sudo", "rm", manifest, comment="if it is stale"),
        ]
    commands = [shell.export(k, v or "1") for k, v in (disable_env or {}).items()][:1]
    return [*commands, shell.command("sudo", "rm", manifest, comment="if it is stale")]


@frozen
class LibraryLoad:
    """What the libraries child (``tasks/libraries.py``) reported for one driver or layer
    library, parsed once at the JSON boundary; probes read attributes."""

    loaded: bool = False
    dlopen_error: str | None = None  # RTLD_LAZY failed too: the loader cannot load it
    dlopen_now_error: str | None = None  # RTLD_NOW failed
    missing_object: str | None = None  # the soname the dynamic linker could not find
    loads_lazily_only: bool = False
    exports: dict[str, bool] = field(default_factory=dict)  # in the child's order
    negotiate_via_gipa: bool | None = None  # None: not asked (the export was there)
    negotiate_result: int | None = None
    interface_version: int | None = None
    gipa_create_instance: bool | None = None
    instance_version: str | None = None

    @classmethod
    def parse(cls, result: Mapping[str, Any] | None) -> LibraryLoad:
        data = result or {}
        return cls(
            loaded=bool(data.get("loaded")),
            dlopen_error=data.get("dlopen_error"),
            dlopen_now_error=data.get("dlopen_now_error"),
            missing_object=data.get("missing_object"),
            loads_lazily_only=bool(data.get("loads_lazily_only")),
            exports=dict(data.get("exports") or {}),
            negotiate_via_gipa=data.get("negotiate_via_gipa"),
            negotiate_result=data.get("negotiate_result"),
            interface_version=data.get("interface_version"),
            gipa_create_instance=data.get("gipa_create_instance"),
            instance_version=data.get("instance_version"),
        )


def static_check(
    env: Env, kind: str, manifest: str, library_path: str, library_arch: str | None
) -> StaticCheck:
    """Resolve a manifest's library as the loader would and check the file it names, before any
    child dlopens it: the first problem found is the finding."""
    resolution = resolve_library_path(env, library_path, manifest)
    if resolution.path is None:
        return _unresolved(kind, manifest, library_path, resolution, env)
    file = check_file(env, resolution.path)
    problem = _file_problem(env, kind, manifest, library_path, resolution, file)
    if problem is not None:
        return StaticCheck(resolution, file, False, False, [problem])
    declared_other = library_arch is not None and library_arch != str(
        64 if "64" in env.machine else 32
    )
    if file.arch_ok is False or declared_other:
        finding = _other_abi(env, kind, manifest, library_path, resolution, file, library_arch)
        return StaticCheck(resolution, file, False, True, [finding])
    return StaticCheck(resolution, file, True, False, [])


def _unresolved(
    kind: str, manifest: str, library_path: str, resolution: Resolution, env: Env
) -> StaticCheck:
    """A bare name the dynamic linker's search does not find (or finds for another ABI only)."""
    searched = ", ".join(resolution.searched)
    found = resolution.candidates
    if found:
        finding = make_finding(
            CODES,
            f"{kind}-library-other-abi",
            f"{manifest}: {library_path} exists only for another architecture ({found[0]})",
            evidence={"manifest": manifest, "candidates": list(found)},
        )
        return StaticCheck(resolution, check_file(env, found[0]), False, True, [finding])
    finding = make_finding(
        CODES,
        f"{kind}-library-missing",
        f"{manifest} points at {library_path}, which the dynamic linker cannot find",
        detail=f"'{library_path}' is a bare name, looked up like dlopen does in: {searched}",
        evidence={
            "manifest": manifest,
            "library_path": library_path,
            "searched": list(resolution.searched),
        },
        commands=[shell.command("dpkg", "-S", manifest, comment="which package owns the manifest")],
    )
    return StaticCheck(resolution, None, False, False, [finding])


def _file_problem(
    env: Env,
    kind: str,
    manifest: str,
    library_path: str,
    resolution: Resolution,
    file: FileCheck,
) -> Finding | None:
    """The resolved library is missing, not a regular file, unreadable or not ELF."""
    path = resolution.path or ""
    evidence = {"manifest": manifest, "library_path": library_path, "resolved": path}
    if not file.exists or not file.is_file:
        how = {
            "relative": " (relative paths are resolved against the manifest's directory)",
            "absolute": "",
        }.get(resolution.kind, "")
        return make_finding(
            CODES,
            f"{kind}-library-missing",
            f"{manifest} points at {path}, which {'is not a regular file' if file.exists else 'does not exist'}{how}",
            evidence=evidence,
            commands=[
                shell.command("dpkg", "-S", manifest, comment="which package owns the manifest"),
                shell.command("sudo", "rm", manifest, comment="if it is stale"),
            ],
        )
    if not file.readable:
        return make_finding(
            CODES,
            f"{kind}-library-unreadable",
            f"{path} (from {manifest}) is not readable by uid {env.euid}",
            evidence=evidence,
            commands=[
                shell.command("ls", "-l", path),
                shell.command("sudo", "chmod", "a+r", path),
            ],
        )
    if file.elf is None or file.elf.elf_class is None:
        reason = file.elf.error if file.elf else "unreadable"
        return make_finding(
            CODES,
            f"{kind}-library-not-elf",
            f"{path} (from {manifest}) is not a shared library: {reason}",
            evidence={**evidence, "size": file.size, "reason": reason},
            commands=[
                shell.command(
                    "dpkg",
                    "-S",
                    path,
                    comment="then: sudo apt-get install --reinstall <package>",
                )
            ],
        )
    return None


def _other_abi(
    env: Env,
    kind: str,
    manifest: str,
    library_path: str,
    resolution: Resolution,
    file: FileCheck,
    library_arch: str | None,
) -> Finding:
    elf = file.elf
    assert elf is not None  # _file_problem returned None: the file is ELF
    return make_finding(
        CODES,
        f"{kind}-library-other-abi",
        f"{manifest}: {resolution.path} is {elf.elf_class}-bit {elf.machine_name}; "
        f"this machine runs {env.machine} programs",
        evidence={
            "manifest": manifest,
            "library_path": library_path,
            "resolved": resolution.path,
            "elf_class": elf.elf_class,
            "machine": elf.machine_name,
            "library_arch": library_arch,
        },
        commands=[distro.install_command("mesa-vulkan-32bit", env) + "  # only for 32-bit programs"]
        if kind == "driver"
        else [],
    )


def native_findings(
    env: Env,
    kind: str,
    manifest: str,
    library: str,
    item: ItemOutcome,
    disable_env: dict[str, str] | None = None,
    loader_version: tuple[int, int, int] | None = None,
) -> list[Finding]:
    """Findings from the child's dlopen of one library (crash, hang, dlerror, missing deps)."""
    commands = disable_commands(kind, manifest, disable_env, loader_version)
    evidence: dict[str, Any] = {
        "manifest": manifest,
        "library": library,
        "last_step": item.last_crumb,
    }
    load = LibraryLoad.parse(item.result)
    if item.state == "crashed" or (item.state == "ok" and not load.loaded):
        # A crash or refusal while loading: a truncated object in the closure explains both.
        damaged = truncated_in_closure(env, library)
        if damaged:
            return [_truncated(kind, manifest, library, item, damaged, evidence)]
    if item.state == "crashed":
        return [
            make_finding(
                CODES,
                f"{kind}-load-crashed",
                f"{library} (from {manifest}) crashed with {item.signal} during: {item.last_crumb}",
                evidence={**evidence, "signal": item.signal, "stderr_tail": item.stderr[-2000:]},
                commands=commands,
            )
        ]
    if item.state == "timeout":
        return [
            make_finding(
                CODES,
                f"{kind}-load-hung",
                f"{library} (from {manifest}) did not return within {item.duration_s:.1f}s from: {item.last_crumb}",
                evidence={**evidence, "stderr_tail": item.stderr[-2000:]},
                commands=commands,
            )
        ]
    if load.loaded:
        if load.loads_lazily_only:
            return [
                make_finding(
                    CODES,
                    f"{kind}-unresolved-symbols",
                    f"{library} loads only lazily: {load.dlopen_now_error}",
                    evidence={**evidence, "dlerror": load.dlopen_now_error},
                )
            ]
        return []
    return [_dlopen_failed(env, kind, manifest, library, load, evidence, commands)]


def _truncated(
    kind: str,
    manifest: str,
    library: str,
    item: ItemOutcome,
    damaged: Sequence[Any],
    evidence: dict[str, Any],
) -> Finding:
    first = damaged[0]
    return make_finding(
        CODES,
        f"{kind}-dependency-truncated",
        f"{library} (from {manifest}) cannot load: {first.path} is truncated "
        f"({first.size} of {first.expected} bytes)",
        evidence={
            **evidence,
            "signal": item.signal,
            "truncated": [
                {"path": t.path, "size": t.size, "expected": t.expected} for t in damaged
            ],
        },
        commands=[shell.command("dpkg", "-S", t.path) for t in damaged][:3],
    )


def _dlopen_failed(
    env: Env,
    kind: str,
    manifest: str,
    library: str,
    load: LibraryLoad,
    evidence: dict[str, Any],
    commands: list[str],
) -> Finding:
    """dlopen refused the library: a missing dependency named with its chain, else the dlerror."""
    error = load.dlopen_error or load.dlopen_now_error or "unknown dlopen failure"
    missing_object = load.missing_object
    if not missing_object:
        return make_finding(
            CODES,
            f"{kind}-dlopen-failed",
            f"{library} (from {manifest}) cannot be loaded: {error}",
            evidence={**evidence, "dlerror": error},
            commands=commands,
        )
    chain = missing_dependencies(env, library)
    needed_by = next((m.needed_by for m in chain if m.soname == missing_object), library)
    others = sorted({m.soname for m in chain} - {missing_object})
    return make_finding(
        CODES,
        f"{kind}-dependency-missing",
        f"{library} (from {manifest}) cannot load: {missing_object} (needed by {needed_by}) is missing"
        + (f"; also missing: {', '.join(others)}" if others else ""),
        evidence={
            **evidence,
            "dlerror": error,
            "missing": missing_object,
            "needed_by": needed_by,
            "all_missing": [{"soname": m.soname, "needed_by": m.needed_by} for m in chain],
        },
        commands=[
            shell.command("apt-file", "search", missing_object, comment="which package provides it")
        ],
    )


def loader_complaints(
    table: Mapping[str, CodeInfo],
    code: str,
    entries: list[LogEntry],
    records: Sequence[DriverRecord | LayerRecord],
) -> list[Finding]:
    """A finding for each usable library the loader's own log complains about: vkdoctor's checks
    passed, yet the loader reports a problem."""
    findings: list[Finding] = []
    for record in records:
        # Only where vkdoctor saw nothing wrong: known problems are already findings.
        filtered = isinstance(record, DriverRecord) and record.filtered
        if record.state != "usable" or filtered or record.issues:
            continue
        complaints = loaderlog.mentioning(entries, record.manifest, record.resolved or "")
        if complaints:
            label = record.name if isinstance(record, LayerRecord) else record.manifest
            findings.append(
                make_finding(
                    table,
                    code,
                    f"the loader reports a problem with {label}: {complaints[0].message}",
                    evidence={
                        "manifest": record.manifest,
                        "loader_lines": [c.message for c in complaints],
                    },
                )
            )
    return findings
