"""Probe 1, loader-discovery: which libvulkan an application gets, what it is, what it reads.

The loader is loaded in a child exactly as an application would (``dlopen("libvulkan.so.1")``);
the child also asks it to enumerate instance extensions and layers, which makes the loader scan
every manifest, so its log (attached here) is the loader's own account of discovery that the
driver and layer probes compare against.
"""

from __future__ import annotations

import glob
import os
import re
import sys
from typing import Any

from vkdoctor.engine.env import Env
from vkdoctor.engine.runner import ProbeContext, ProbeOutcome, ProbeSpec
from vkdoctor.loader import log as loaderlog
from vkdoctor.loader.libraries import (
    check_file,
    default_library_dirs,
    ld_cache_entries,
    ld_library_path,
)
from vkdoctor.loader.search import (
    KNOWN_BY_NAME,
    parse_version,
    related_variables,
    supported,
    unknown_loader_variables,
    version_str,
)
from vkdoctor.loader.versions import Behaviour, has, since
from vkdoctor.record import frozen
from vkdoctor.report import shell
from vkdoctor.report.codes import CodeInfo, code_table, make_finding
from vkdoctor.report.model import Finding, Severity, Status
from vkdoctor.report.records import LoaderRecord
from vkdoctor.report.redact import record_value
from vkdoctor.system import distro
from vkdoctor.system.environment import collect_environment

LOADER_SONAME = "libvulkan.so.1"
SETTINGS_SINCE = since(Behaviour.SETTINGS_FILE)  # the version table (loader/versions.py)

CODES = code_table(
    [
        CodeInfo(
            "loader-missing",
            Severity.FAIL,
            "no Vulkan loader",
            "No libvulkan.so.1 can be loaded, so no Vulkan program can start.",
            (
                "the libvulkan1 package is not installed (slim images, containers)",
                "the loader is installed for another architecture only",
            ),
            "Install the Vulkan loader.",
        ),
        CodeInfo(
            "loader-unloadable",
            Severity.FAIL,
            "the Vulkan loader exists but cannot be loaded",
            "libvulkan.so.1 was found but the dynamic linker rejected it.",
            (
                "a truncated or corrupt file",
                "a loader of the wrong architecture",
                "a missing dependency of the loader",
            ),
            "Reinstall the Vulkan loader.",
        ),
        CodeInfo(
            "loader-needs-newer-libc",
            Severity.FAIL,
            "the Vulkan loader was built for a newer C library",
            "The dynamic linker found a libvulkan.so.1 that needs symbol versions of glibc this "
            "system's C library does not have: a loader from a newer distribution (an SDK, a "
            "copied file) put ahead of the system's own, usually through LD_LIBRARY_PATH. "
            "Reinstalling the distribution's loader changes nothing: it is not the one loaded.",
            (
                "LD_LIBRARY_PATH naming a directory with a loader from a newer release",
                "a loader copied from another machine into /usr/local/lib",
            ),
            "Take that directory out of LD_LIBRARY_PATH, or use the distribution's loader.",
        ),
        CodeInfo(
            "loader-not-vulkan",
            Severity.FAIL,
            "the library given as the loader is not a Vulkan loader",
            "The library named with --loader loads, but exports no vkGetInstanceProcAddr, the "
            "one entry point every Vulkan loader has: nothing about Vulkan can be learnt from it.",
            ("a typo in --loader, or another library's name (libc.so.6)",),
            "Give --loader the path of a libvulkan.so.1, or leave the option out.",
        ),
        CodeInfo(
            "loader-shadowed",
            Severity.WARN,
            "another libvulkan shadows the system loader",
            "Applications get a libvulkan.so.1 other than the system's (through LD_LIBRARY_PATH or a "
            "bundled copy), so they may see other drivers, ignore variables or lack features.",
            ("LD_LIBRARY_PATH containing an SDK or application directory", "a bundled loader"),
            "Remove the directory from LD_LIBRARY_PATH or the bundled copy.",
        ),
        CodeInfo(
            "loader-other-copies",
            Severity.INFO,
            "other copies of libvulkan exist",
            "Copies of libvulkan other than the one applications get by default; programs with an "
            "RPATH or a changed LD_LIBRARY_PATH may load them instead.",
            ("SDK installs, bundled copies in applications or Python wheels",),
            "Nothing to do unless a program behaves differently from vulkaninfo.",
        ),
        CodeInfo(
            "loader-wrong-arch-copy",
            Severity.INFO,
            "a libvulkan of another architecture is on the search path",
            "The dynamic linker skips libraries of the wrong ELF class; it only matters for "
            "programs of that architecture.",
            ("multiarch (i386) installs",),
            "Install the loader for 32-bit programs only if you run them.",
        ),
        CodeInfo(
            "loader-old",
            Severity.WARN,
            "the Vulkan loader is very old",
            "A loader without vkEnumerateInstanceVersion supports Vulkan 1.0 only.",
            ("an old distribution or a bundled loader",),
            "Upgrade the Vulkan loader.",
        ),
        CodeInfo(
            "elevated-privileges",
            Severity.WARN,
            "running with elevated privileges: the loader ignores override variables",
            "Under setuid/setgid or file capabilities the loader reads its path and filter "
            "variables with secure_getenv, which returns nothing.",
            ("setuid or setgid bits", "file capabilities (setcap)"),
            "Install drivers and layers in the system directories instead of relying on "
            "variables, or run without elevated privileges.",
        ),
        CodeInfo(
            "variable-unknown",
            Severity.WARN,
            "a VK_* variable the loader does not read",
            "The loader reads a fixed set of variable names and silently ignores others.",
            ("a typo such as VK_ICD_FILES", "a variable of another tool"),
            "Use the variable name the loader knows.",
        ),
        CodeInfo(
            "variable-unsupported",
            Severity.WARN,
            "a loader variable this loader version does not know yet",
            "The variable was introduced in a later loader release; this loader ignores it.",
            ("documentation newer than the installed loader",),
            "Upgrade the loader or use the older equivalent variable.",
        ),
        CodeInfo(
            "settings-file",
            Severity.INFO,
            "a vk_loader_settings.json is present",
            "vkconfig writes vk_loader_settings.json; it can add or force layers and drivers and "
            "silence the environment variables. Loaders before 1.3.251 ignore it.",
            ("vkconfig",),
            "Check the file's content, or remove it to return to default behaviour.",
        ),
        CodeInfo(
            "loader-enumeration-failed",
            Severity.FAIL,
            "the loader fails before any instance exists",
            "vkEnumerateInstanceExtensionProperties failed, crashed or hung: every Vulkan "
            "program fails the same way at start.",
            (
                "a malformed manifest (loaders before 1.3.268 report it as out of memory)",
                "a driver or layer that crashes while the loader preloads it",
            ),
            "See the driver-enumeration and layer-enumeration findings for the culprit.",
        ),
    ]
)


def _settings_files(env: Env) -> list[str]:
    """vk_loader_settings.json candidates in the loader's order (settings.c, first hit wins)."""
    home = env.get_nonempty("HOME")
    bases: list[str] = []
    config_home = env.get_nonempty("XDG_CONFIG_HOME")
    data_home = env.get_nonempty("XDG_DATA_HOME")
    bases += [base for base in (config_home, data_home) if base]
    if home and not config_home:
        bases.append(f"{home}/.config")
    if home and not env.get_nonempty("XDG_DATA_HOME"):
        bases.append(f"{home}/.local/share")
    bases += (env.get_nonempty("XDG_CONFIG_DIRS") or "/etc/xdg").split(":")
    bases.append("/etc")
    bases += (env.get_nonempty("XDG_DATA_DIRS") or "/usr/local/share:/usr/share").split(":")
    paths = [
        f"{b.rstrip('/')}/vulkan/loader_settings.d/vk_loader_settings.json" for b in bases if b
    ]
    return [p for p in dict.fromkeys(paths) if env.path(p).is_file()]


def _candidate_copies(env: Env) -> list[str]:
    """Every libvulkan.so* an application might load: LD_LIBRARY_PATH, the ld.so cache, default
    and common private directories, and copies bundled in Python packages."""
    found: list[str] = []
    for directory in ld_library_path(env):
        found += glob.glob(str(env.path(directory)) + "/libvulkan.so*")
    for soname, target in ld_cache_entries(env):
        if soname.startswith("libvulkan.so"):
            found.append(str(env.path(target)))
    for directory in [
        *default_library_dirs(env),
        "/usr/local/lib",
        "/usr/lib32",
        "/usr/lib/i386-linux-gnu",
    ]:
        found += glob.glob(str(env.path(directory)) + "/libvulkan.so*")
    found += glob.glob(str(env.path("/opt")) + "/*/lib*/libvulkan.so*")
    if env.is_real_root:
        for entry in sys.path:
            if entry.endswith("-packages") and os.path.isdir(entry):
                found += _bundled_copies(entry)
    copies: dict[str, str] = {}
    for path in found:
        real = os.path.realpath(path)
        copies.setdefault(real, env.logical(path))
    return sorted(copies)


def _bundled_copies(site_packages: str) -> list[str]:
    """``libvulkan.so*`` one or two directories below ``site_packages`` (a wheel's bundled copy,
    e.g. ``pkg/lib/libvulkan.so.1``).  Walked with scandir and a prefix test: glob's two
    patterns listed every package directory twice and matched each name with fnmatch (13 ms
    for a small environment's site-packages, half the loader step's own CPU)."""
    found: list[str] = []
    pending = [(site_packages, 0)]
    while pending:
        directory, depth = pending.pop()
        try:
            entries = os.scandir(directory)
        except OSError:
            continue
        with entries:
            for entry in entries:
                if depth > 0 and entry.name.startswith("libvulkan.so"):
                    found.append(entry.path)
                elif depth < 2 and _is_dir(entry):
                    pending.append((entry.path, depth + 1))
    return sorted(found)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # follows symbolic links, as glob does
    except OSError:
        return False


def _version_from_file_name(real_path: str) -> str | None:
    """``1.3.239`` from ``libvulkan.so.1.3.239``: the loader's version when asking it failed
    (vkEnumerateInstanceVersion fails on a malformed manifest before 1.3.268, exactly when the
    version decides what that manifest does)."""
    match = re.fullmatch(r"libvulkan\.so\.(\d+\.\d+\.\d+)", os.path.basename(real_path))
    return match.group(1) if match else None


@frozen
class _LoaderCopy:
    """One libvulkan file an application might load, as checked on disk."""

    path: str
    size: int | None
    elf_class: int | None
    machine: str | None
    arch_ok: bool | None
    error: str | None

    def to_fact(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "elf_class": self.elf_class,
            "machine": self.machine,
            "arch_ok": self.arch_ok,
            "error": self.error,
        }


def _copies(env: Env, real_paths: list[str]) -> list[_LoaderCopy]:
    rows = []
    for real in real_paths:
        check = check_file(env, env.logical(real))
        rows.append(
            _LoaderCopy(
                path=env.logical(real),
                size=check.size,
                elf_class=check.elf.elf_class if check.elf else None,
                machine=check.elf.machine_name if check.elf and check.elf.machine else None,
                arch_ok=check.arch_ok,
                error=check.error or (check.elf.error if check.elf else None),
            )
        )
    return rows


@frozen
class _Loaded:
    """The loader child's "loaded" stage (tasks/loader.py), parsed once at the JSON boundary."""

    path: str
    real_path: str
    version: str | None
    gipa_exported: bool
    mapped_loaders: list[str]

    @classmethod
    def parse(cls, data: dict[str, Any]) -> _Loaded:
        return cls(
            path=data.get("path") or "",
            real_path=data.get("real_path") or "",
            version=data.get("version"),
            gipa_exported=bool(data.get("gipa_exported")),
            mapped_loaders=list(data.get("mapped_loaders", [])),
        )


def _variable_findings(env: Env, version: tuple[int, int, int] | None) -> list[Finding]:
    findings: list[Finding] = []
    for name, nearest in unknown_loader_variables(env):
        hint = f"; did you mean {nearest}?" if nearest else ""
        findings.append(
            make_finding(
                CODES,
                "variable-unknown",
                f"{name} is set but the Vulkan loader does not read it{hint}",
                # The name only: an unknown variable's value can be anything, a token included.
                evidence={"variable": name, "suggestion": nearest},
                remedy=f"Rename it to {nearest}."
                if nearest
                else "Unset it if you meant the loader.",
                commands=[shell.unset(name)],
                severity=Severity.WARN if nearest else Severity.INFO,
            )
        )
    for name, variable in KNOWN_BY_NAME.items():
        if env.get(name) is not None and not supported(variable, version):
            findings.append(
                make_finding(
                    CODES,
                    "variable-unsupported",
                    f"{name} needs loader {version_str(variable.since)} or newer; this loader "
                    f"({version_str(version)}) ignores it",
                    evidence={
                        "variable": name,
                        "value": record_value(name, env.environ[name]),
                        "since": version_str(variable.since),
                        "loader": version_str(version),
                    },
                    remedy="Upgrade the loader"
                    + (f", or use {variable.deprecated_by}" if variable.deprecated_by else "")
                    + (", or use VK_ICD_FILENAMES" if name in ("VK_DRIVER_FILES",) else "")
                    + ".",
                )
            )
    if env.secure:
        ignored = sorted(n for n, v in KNOWN_BY_NAME.items() if v.secure and env.get(n) is not None)
        ignored += [
            n
            for n in (
                "XDG_CONFIG_HOME",
                "XDG_DATA_HOME",
                "XDG_CONFIG_DIRS",
                "XDG_DATA_DIRS",
                "HOME",
            )
            if env.get(n)
        ]
        findings.append(
            make_finding(
                CODES,
                "elevated-privileges",
                "vkdoctor runs with elevated privileges (AT_SECURE): the loader ignores "
                + (", ".join(ignored) if ignored else "its path and filter variables"),
                evidence={
                    "uid": env.uid,
                    "euid": env.euid,
                    "gid": env.gid,
                    "egid": env.egid,
                    "ignored_variables": ignored,
                },
            )
        )
    return findings


# glibc's dynamic linker: "/lib/.../libc.so.6: version `GLIBC_2.38' not found (required by X)".
_LIBC_VERSION_MISSING = re.compile(
    r"libc\.so\.6: version [`']GLIBC_([0-9.]+)' not found \(required by ([^)]+)\)"
)


def _libc_mismatch(dlerror: str) -> tuple[str, str] | None:
    """(the library that needs it, the glibc version it needs) when dlopen failed for that."""
    match = _LIBC_VERSION_MISSING.search(dlerror)
    return (match[2], match[1]) if match else None


def _system_libc() -> str:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") or "unknown"
    except (ValueError, OSError):
        return "unknown"


def _newer_libc_finding(env: Env, asked: str, error: str, library: str, needs: str) -> Finding:
    directory = os.path.dirname(library)
    entries = [d for d in (env.get("LD_LIBRARY_PATH") or "").split(":") if d]
    on_path = [d for d in entries if os.path.normpath(d) == os.path.normpath(directory)]
    if on_path:
        rest = [d for d in entries if d not in on_path]
        commands = [
            shell.export("LD_LIBRARY_PATH", ":".join(rest))
            if rest
            else shell.unset("LD_LIBRARY_PATH")
        ]
        where = f"; LD_LIBRARY_PATH contains {directory}"
    elif asked != LOADER_SONAME:
        commands = ["vkdoctor check  # the distribution's loader, what applications load"]
        where = ""
    else:
        commands = [
            shell.command(
                "sudo", "mv", library, f"{library}.disabled", comment="a loader for a newer glibc"
            )
        ]
        where = ""
    return make_finding(
        CODES,
        "loader-needs-newer-libc",
        f"{library} needs glibc {needs}, and this system has {_system_libc()}: it is a loader "
        f"built for a newer distribution{where}",
        evidence={
            "dlerror": error,
            "library": library,
            "needs": f"GLIBC_{needs}",
            "system_libc": _system_libc(),
            "ld_library_path_entry": on_path[0] if on_path else None,
        },
        commands=commands,
    )


def _stage(results: tuple[dict[str, Any], ...], stage: str) -> dict[str, Any] | None:
    for message in results:
        data = message.get("data") or {}
        if data.get("stage") == stage:
            return data
    return None


def run(ctx: ProbeContext) -> ProbeOutcome:
    env = ctx.env
    outcome = ProbeOutcome()
    handle = ctx.start_child("vkdoctor.tasks.loader:loader_info", {"soname": ctx.options.loader})
    scan = collect_environment(env)  # while the child loads the loader
    outcome.environment = scan.facts
    copies = _copies(env, _candidate_copies(env))
    settings = _settings_files(env)
    variables = related_variables(env)
    child = handle.wait()
    outcome.loader_log = loaderlog.parse(child.stderr)
    loaded = _stage(child.results, "loaded")
    failed_open = _stage(child.results, "dlopen")
    facts: dict[str, Any] = {
        "soname": ctx.options.loader,
        "copies": [c.to_fact() for c in copies],
        "variables": variables,
        "secure_execution": env.secure,
        "settings_files": settings,
    }
    outcome.facts = facts
    if loaded is None and failed_open is None and child.last_crumb == "vkEnumerateInstanceVersion":
        outcome.findings.append(_scan_failed(child))
    elif loaded is None:
        error = (failed_open or {}).get("dlerror") or child.describe()
        facts["dlerror"] = error
        outcome.findings.append(_not_loaded(ctx, error, copies, settings, child.state, outcome))
    elif not loaded.get("gipa_exported"):
        # `--loader libc.so.6` loads fine; only the loader's one mandatory export tells.
        facts["path"] = loaded.get("path")
        outcome.findings.append(_not_vulkan(ctx.options.loader, loaded.get("path")))
    else:
        outcome.findings += _loaded_findings(
            ctx, _Loaded.parse(loaded), copies, settings, child, outcome
        )
    outcome.findings += scan.findings
    return outcome


def _scan_failed(child: Any) -> Finding:
    """dlopen worked; the loader then hung or crashed scanning implicit layer manifests (a FIFO
    or /dev/zero there): the layer probe names the culprit, so it must still run."""
    return make_finding(
        CODES,
        "loader-enumeration-failed",
        f"vkEnumerateInstanceVersion failed: {child.describe()}; the loader reads "
        "every implicit layer manifest there",
        evidence={
            "state": child.state,
            "signal": child.signal,
            "last_step": child.last_crumb,
        },
        severity=Severity.WARN,  # the culprit is named by the layer probe
    )


def _not_loaded(
    ctx: ProbeContext,
    error: str,
    copies: list[_LoaderCopy],
    settings_files: list[str],
    state: str,
    outcome: ProbeOutcome,
) -> Finding:
    """The loader cannot be dlopened: a libc too old for it, not there, or not loadable."""
    env, soname = ctx.env, ctx.options.loader
    settings = tuple(settings_files)
    libc = _libc_mismatch(error)
    if libc is not None:
        outcome.loader = LoaderRecord(
            soname=soname,
            path=libc[0],
            secure_execution=env.secure,
            settings_files=settings,
            issues=("loader-needs-newer-libc",),
        )
        return _newer_libc_finding(env, soname, error, *libc)
    code = "loader-missing" if "No such file or directory" in error else "loader-unloadable"
    outcome.loader = LoaderRecord(
        soname=soname, secure_execution=env.secure, settings_files=settings, issues=(code,)
    )
    return make_finding(
        CODES,
        code,
        f"{soname} cannot be loaded: {error}",
        evidence={"dlerror": error, "copies": [c.to_fact() for c in copies], "child": state},
        commands=[
            distro.reinstall_command("loader", env)
            if code == "loader-unloadable"
            else distro.install_command("loader", env)
        ],
    )


def _not_vulkan(soname: str, path: str | None) -> Finding:
    return make_finding(
        CODES,
        "loader-not-vulkan",
        f"{soname} ({path}) is not a Vulkan loader: it exports no vkGetInstanceProcAddr",
        evidence={"loaded": path, "soname": soname},
        commands=["vkdoctor check  # diagnoses libvulkan.so.1, what applications load"],
    )


def _loaded_findings(
    ctx: ProbeContext,
    loaded: _Loaded,
    copies: list[_LoaderCopy],
    settings: list[str],
    child: Any,
    outcome: ProbeOutcome,
) -> list[Finding]:
    """A Vulkan loader loaded: its record, copies and version, variables, settings file, and
    what its enumeration did."""
    env, facts = ctx.env, outcome.facts
    version_text = loaded.version or _version_from_file_name(loaded.real_path)
    version = parse_version(version_text or "")
    real_path = env.logical(loaded.real_path)
    facts.update(
        path=loaded.path,
        real_path=real_path,
        version=version_text,
        mapped_loaders=loaded.mapped_loaders,
    )
    # With --loader PATH the user chose this loader: that it is not the system's is the point,
    # not a finding ("shadowing" is about what applications get by default).
    chosen = ctx.options.loader != LOADER_SONAME
    own = _loader_findings(env, loaded, copies, version, chosen=chosen)
    outcome.loader = LoaderRecord(
        soname=ctx.options.loader,
        path=loaded.path,
        real_path=real_path,
        version=version_text,
        secure_execution=env.secure,
        settings_files=tuple(settings),
        issues=tuple(dict.fromkeys(f.code for f in own)),
    )
    findings = own + _variable_findings(env, version)
    if settings:
        in_effect = version is not None and version >= SETTINGS_SINCE
        findings.append(
            make_finding(
                CODES,
                "settings-file",
                f"loader settings file {settings[0]} "
                + ("is in effect" if in_effect else f"is ignored by loader {version_str(version)}"),
                evidence={"files": settings, "in_effect": in_effect},
                commands=[shell.command("cat", settings[0])],
            )
        )
    findings += _enumeration_findings(child, version, facts)
    return findings


def _loader_findings(
    env: Env,
    loaded: _Loaded,
    copies: list[_LoaderCopy],
    version: tuple[int, int, int] | None,
    *,
    chosen: bool = False,
) -> list[Finding]:
    real = (
        os.path.realpath(env.path(loaded.real_path)) if not env.is_real_root else loaded.real_path
    )
    system = [
        os.path.realpath(env.path(target))
        for soname, target in ld_cache_entries(env)
        if soname == LOADER_SONAME and check_file(env, target).arch_ok
    ]
    findings: list[Finding] = []
    if system and real not in system and not chosen:
        findings.append(_shadowed(env, loaded, system[0]))
    findings += _copy_findings(env, loaded, copies, real, system)
    if version is not None and version < (1, 1, 0):
        findings.append(
            make_finding(
                CODES,
                "loader-old",
                f"the loader is version {version_str(version)}",
                evidence={"version": version_str(version)},
                commands=[distro.install_command("loader", env)],
            )
        )
    return findings


def _shadowed(env: Env, loaded: _Loaded, system: str) -> Finding:
    via = next(
        (d for d in ld_library_path(env) if loaded.path.startswith(d.rstrip("/") + "/")),
        None,
    )
    return make_finding(
        CODES,
        "loader-shadowed",
        f"applications load {loaded.path} (version {loaded.version}), "
        f"not the system loader {system}" + (f": LD_LIBRARY_PATH contains {via}" if via else ""),
        evidence={
            "loaded": loaded.path,
            "system": system,
            "ld_library_path_entry": via,
        },
        commands=["unset LD_LIBRARY_PATH"] if via else [],
    )


def _copy_findings(
    env: Env, loaded: _Loaded, copies: list[_LoaderCopy], real: str, system: list[str]
) -> list[Finding]:
    """Other libvulkan copies next to the one loaded: same architecture, or another."""
    others = [c for c in copies if os.path.realpath(env.path(c.path)) != real]
    wrong_arch = [c for c in others if c.arch_ok is False]
    same_arch = [c for c in others if c.arch_ok and c.path not in system]
    paths = [c.path for c in same_arch]
    evidence: list[dict[str, Any]] = [c.to_fact() for c in same_arch]
    if len(loaded.mapped_loaders) > 1:
        paths.append(", ".join(loaded.mapped_loaders))
        evidence.append({"path": paths[-1], "note": "mapped together"})
    findings: list[Finding] = []
    if paths:
        findings.append(
            make_finding(
                CODES,
                "loader-other-copies",
                f"{len(paths)} other libvulkan cop{'y' if len(paths) == 1 else 'ies'}: "
                + ", ".join(paths),
                evidence={"copies": evidence},
            )
        )
    if wrong_arch:
        findings.append(
            make_finding(
                CODES,
                "loader-wrong-arch-copy",
                "libvulkan for another architecture: "
                + ", ".join(f"{c.path} ({c.machine}, {c.elf_class}-bit)" for c in wrong_arch),
                evidence={"copies": [c.to_fact() for c in wrong_arch]},
            )
        )
    return findings


def _enumeration_findings(
    child: Any, version: tuple[int, int, int] | None, facts: dict[str, Any]
) -> list[Finding]:
    extensions = _stage(child.results, "extensions")
    layers = _stage(child.results, "layers")
    if extensions is not None:
        facts["instance_extensions"] = extensions.get("extensions", {})
    if layers is not None:
        facts["available_layers"] = layers.get("layers", [])
    if child.state in ("crashed", "timeout", "error") or (extensions and extensions["result"] < 0):
        result = extensions["result"] if extensions else None
        note = ""
        if result == -1 and not has(Behaviour.MALFORMED_MANIFEST_SKIPPED, version):
            note = (
                " VK_ERROR_OUT_OF_HOST_MEMORY from this loader usually means a malformed "
                "manifest JSON, not memory."
            )
        what = child.describe() if child.state != "ok" else f"it returned {result}"
        return [
            make_finding(
                CODES,
                "loader-enumeration-failed",
                f"vkEnumerateInstanceExtensionProperties failed: {what}.{note}",
                evidence={
                    "state": child.state,
                    "signal": child.signal,
                    "result": result,
                    "last_step": child.last_crumb,
                },
                severity=Severity.WARN,  # the culprit is named by the driver/layer probes
            )
        ]
    return []


SPEC = ProbeSpec(
    id="loader-discovery",
    title="Loader discovery",
    run=run,
    requires=(),
    native=True,
)

__all__ = ["CODES", "SPEC", "Status"]
