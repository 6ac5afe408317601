"""From a trace to diagnoses: replay the events per process, then name what went wrong.

The replay keeps, per process, the mapped objects (with their address ranges, so a crash address
can be tied to a library that used to be there), the live and destroyed Vulkan instances and
devices (from the layer) and the proc-address queries (from the audit module).  Library roles
(loader, driver, layer) come from the trace itself: the loader takes ``vk_icd*`` entry points
from drivers and ``vkNegotiateLoaderLayerInterfaceVersion`` from layers; driver manifests found on
the machine fill in what the trace does not show.
"""

from __future__ import annotations

import copy
import functools
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from vkdoctor.report.codes import CodeInfo, code_table, make_finding
from vkdoctor.report.model import Finding, Severity
from vkdoctor.trace.crash import Attribution, CrashAnalyzer, record_how
from vkdoctor.trace.events import Event, ParsedTrace, parse_addr
from vkdoctor.trace.launch import ProgramOutcome, signal_name
from vkdoctor.trace.provenance import (
    HOW_DLSYM,
    HOW_GDPA,
    HOW_GIPA,
    HOW_LINKED,
    PointerRecord,
    Provenance,
)

CODES = code_table(
    [
        CodeInfo(
            "premature-unload",
            Severity.FAIL,
            "Vulkan library unloaded while still in use",
            "libvulkan, a driver or a layer was unmapped (dlclose) while a VkInstance or VkDevice "
            "created through it was still alive. Every function pointer and dispatch table that "
            "points into it now dangles; the next call through one of them jumps into unmapped "
            "memory.",
            (
                "a loader wrapper object (vk::DynamicLoader, a RuntimeLoader member) whose "
                "destructor calls dlclose before the instance is destroyed",
                "a plugin that dlopens libvulkan itself and dlcloses it on unload",
            ),
            "Keep the libvulkan handle open until after the last Vulkan call: make the loader "
            "object outlive the instance (static, or owned by the object that owns the "
            "instance), destroy devices and instances first, or dlopen it with RTLD_NODELETE.",
        ),
        CodeInfo(
            "call-after-unload",
            Severity.FAIL,
            "Call into an unloaded Vulkan library",
            "The program crashed with its instruction pointer (or the faulting address) inside "
            "the former mapping of a Vulkan library that had been unloaded: a function pointer "
            "obtained before the dlclose was called after it.",
            (
                "cached PFN_vk* pointers used after dlclose of libvulkan",
                "driver pointers from vkGetDeviceProcAddr used after vkDestroyInstance unloaded "
                "the driver",
            ),
            "Do not unload libvulkan (or destroy the instance, which unloads drivers and layers) "
            "while pointers obtained from it can still be called.",
        ),
        CodeInfo(
            "loader-bypass",
            Severity.FAIL,
            "Driver entry points used directly",
            "The program took Vulkan entry points straight from a driver library (dlsym on the "
            "ICD, or linked against it), bypassing the loader: layers never see those calls, "
            "the driver's objects are not the loader's, and it breaks as soon as another driver "
            "or layer is involved.",
            ("dlopen of libvulkan_*.so / an ICD library and dlsym of vk* from it",),
            "Load only libvulkan.so.1, take vkGetInstanceProcAddr from it, and fetch everything "
            "else with vkGetInstanceProcAddr / vkGetDeviceProcAddr (volk, "
            "vk::DispatchLoaderDynamic).",
        ),
        CodeInfo(
            "dlsym-entry-point",
            Severity.INFO,
            "Vulkan commands taken with dlsym from libvulkan",
            "Only vkGetInstanceProcAddr should be taken from libvulkan with dlsym. The loader "
            "exports trampolines for the core commands of its own version only: extension "
            "commands are missing, newer core commands are missing on older loaders, and a "
            "device command that is not enabled on the device crashes when called.",
            ("hand-rolled loading code", "bindings that dlsym every core command"),
            "Take vkGetInstanceProcAddr with dlsym and load everything else through it and "
            "vkGetDeviceProcAddr.",
        ),
        CodeInfo(
            "device-command-via-gipa",
            Severity.INFO,
            "Device commands fetched with vkGetInstanceProcAddr",
            "Device-level commands obtained with vkGetInstanceProcAddr are loader trampolines: "
            "every call looks up the device's dispatch table first. vkGetDeviceProcAddr returns "
            "the driver's (or the top layer's) function directly.",
            ("one instance-level dispatch table used for everything",),
            "After vkCreateDevice, load device commands with vkGetDeviceProcAddr(device, ...) "
            "(volkLoadDevice, VULKAN_HPP_DEFAULT_DISPATCHER.init(device)).",
        ),
        CodeInfo(
            "gipa-null-instance",
            Severity.WARN,
            "vkGetInstanceProcAddr(NULL, …) for a non-global command",
            "With a NULL instance only vkEnumerateInstanceVersion, "
            "vkEnumerateInstanceExtensionProperties, vkEnumerateInstanceLayerProperties, "
            "vkCreateInstance and vkGetInstanceProcAddr may be queried. Loaders since 1.2.19x "
            "return NULL for anything else; older ones returned a pointer, so the bug appears "
            "after an upgrade.",
            ("layers or loading code written against old loaders",),
            "Pass the VkInstance for every command that is not one of the five global ones.",
        ),
        CodeInfo(
            "device-pointers-shared",
            Severity.WARN,
            "Device function pointers likely used with another device",
            "Several devices were alive at once but vkGetDeviceProcAddr was only ever asked for "
            "some of them. Pointers from vkGetDeviceProcAddr belong to the device they were "
            "fetched for; calling them with another device works only while both devices sit on "
            "the same driver and layers.",
            ("a single global dispatch table initialised with the first device",),
            "Keep one dispatch table per VkDevice (volkLoadDeviceTable, "
            "vk::DispatchLoaderDynamic per device), or use instance-level pointers for code that "
            "serves several devices.",
        ),
        CodeInfo(
            "instance-destroyed-before-devices",
            Severity.FAIL,
            "vkDestroyInstance while its devices are alive",
            "The instance was destroyed while devices created from it still existed. "
            "vkDestroyInstance unloads the driver and layer libraries, so those devices can no "
            "longer be used or even destroyed safely.",
            (
                "teardown in the wrong order",
                "static or global objects destroyed in unspecified order at exit",
            ),
            "Destroy every device (after vkDeviceWaitIdle) before destroying its instance.",
        ),
        CodeInfo(
            "use-after-destroy",
            Severity.FAIL,
            "Vulkan handle used after it was destroyed",
            "A VkInstance or VkDevice was passed to Vulkan after it had been destroyed.",
            ("a handle kept in a wrapper after its destroy call", "double destroy"),
            "Reset stored handles to VK_NULL_HANDLE when destroying them; destroy each object "
            "exactly once.",
        ),
        CodeInfo(
            "unknown-handle",
            Severity.WARN,
            "Vulkan handle that was never created",
            "A handle was passed to vkGetInstanceProcAddr / vkGetDeviceProcAddr that no "
            "vkCreateInstance / vkCreateDevice ever returned in this process.",
            (
                "a handle truncated to 32 bits by ctypes (missing restype/argtypes)",
                "an instance passed where a device is expected, or the reverse",
            ),
            "Check the handle's origin; with ctypes declare restype=c_void_p for functions "
            "returning pointers and argtypes for every call.",
        ),
        CodeInfo(
            "vulkan-objects-leaked",
            Severity.INFO,
            "Instances or devices still alive at a normal exit",
            "The process exited normally without destroying every VkInstance / VkDevice. That is "
            "harmless at exit: the kernel and the driver release everything with the process. "
            "Many correct programs (wgpu, Python bindings) leave their instance to process "
            "teardown.",
            ("objects owned by globals or a garbage-collected runtime",),
            "Nothing is needed; to exit cleanly, destroy devices, then instances, before "
            "returning from main.",
        ),
        CodeInfo(
            "vulkan-objects-accumulated",
            Severity.WARN,
            "Instances or devices accumulate",
            "The process created many instances or devices and destroyed few of them: each one "
            "keeps driver memory, threads and file descriptors, so a long-running program "
            "grows until vkCreateInstance / vkCreateDevice fails.",
            ("an instance or device created per task, in a loop, and never destroyed",),
            "Create the instance and device once and reuse them, or destroy each one "
            "(vkDestroyDevice, then vkDestroyInstance) when its task is done.",
        ),
        CodeInfo(
            "multiple-vulkan-loaders",
            Severity.WARN,
            "Two different libvulkan copies in one process",
            "Two distinct libvulkan files were mapped at the same time. Each copy keeps its own "
            "instances, reads the environment with its own version's rules and loads its own "
            "drivers; objects from one must never reach the other.",
            (
                "a bundled libvulkan next to the system one",
                "a plugin or wheel carrying its own loader",
            ),
            "Remove the bundled copy so that every component uses the system libvulkan.so.1.",
        ),
        CodeInfo(
            "fork-after-vulkan-init",
            Severity.WARN,
            "fork() with Vulkan objects alive",
            "The process forked while instances or devices existed. Only the forking thread is "
            "copied: driver threads, locks and device file state are not valid in the child, "
            "which may hang or lose the device when it uses Vulkan.",
            ("Python multiprocessing with the default 'fork' start method",),
            "Create Vulkan objects after forking, exec in the child, or use multiprocessing's "
            "'spawn'/'forkserver' start method.",
        ),
        CodeInfo(
            "null-proc-addr-called",
            Severity.FAIL,
            "Call through a NULL function pointer",
            "The program jumped to address 0 after vkGetInstanceProcAddr / vkGetDeviceProcAddr "
            "had returned NULL: the pointer was called without being checked.",
            (
                "extension not enabled at vkCreateDevice",
                "core command above the API version",
                "instance-level command asked from vkGetDeviceProcAddr",
            ),
            "Check every returned pointer; enable the extension or raise the API version, or "
            "ask vkGetInstanceProcAddr for instance-level commands.",
        ),
        CodeInfo(
            "unsupported-command-called",
            Severity.FAIL,
            "Command called on a device that does not have it",
            "The program called a Vulkan command through a pointer taken from libvulkan by name "
            "(dlsym, or linking against it). That pointer is a loader trampoline: it jumps "
            "through the device's dispatch table, and the slot for this command is empty "
            "because the device does not support it (vkGetDeviceProcAddr answers NULL for "
            "it), so the call lands at address 0.",
            (
                "a core command of a newer Vulkan version than the instance's apiVersion",
                "an extension command whose extension or feature was not enabled",
            ),
            "Load device commands with vkGetDeviceProcAddr(device, ...) and check for NULL; "
            "raise VkApplicationInfo.apiVersion or enable the extension and its feature.",
        ),
        CodeInfo(
            "program-crashed",
            Severity.FAIL,
            "The traced program crashed",
            "The program died from a fatal signal.",
            (),
            "Run it under a debugger (gdb --args ...) at the address reported.",
        ),
        CodeInfo(
            "program-timeout",
            Severity.FAIL,
            "The traced program did not finish in time",
            "The program was still running when the --timeout expired and was killed.",
            ("a hang in vkCreateInstance or a driver", "a wait on a fence after fork()"),
            "Raise --timeout if the program is just slow; otherwise attach gdb to see where it "
            "waits.",
        ),
        CodeInfo(
            "program-exit-nonzero",
            Severity.INFO,
            "The traced program exited with a non-zero status",
            "The program ran to completion and reported failure through its exit status.",
            (),
            "",
        ),
    ]
)

# Commands that may be queried with vkGetInstanceProcAddr(NULL, ...).
GLOBAL_COMMANDS = frozenset(
    {
        "vkEnumerateInstanceVersion",
        "vkEnumerateInstanceExtensionProperties",
        "vkEnumerateInstanceLayerProperties",
        "vkCreateInstance",
        "vkGetInstanceProcAddr",
    }
)

ROLE_LOADER = "loader"
ROLE_DRIVER = "driver"
ROLE_LAYER = "layer"
ROLE_OTHER = "other"

_LOADER_NAME = re.compile(r"^libvulkan\.so(\.\d+)*$")
_MAX_TIMELINE = 200
_MAX_NAMES = 20
# Instances or devices alive at exit from which on they "accumulate": one or two are a
# program's normal working set (wgpu keeps one instance per adapter request).
_ACCUMULATED = 4


# ---- helpers -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def canonical(path: str) -> str:
    if not path or not path.startswith("/"):
        return path
    try:
        return os.path.realpath(path)
    except OSError:
        return path


def short(path: Any) -> str:
    if not isinstance(path, str) or not path:
        return "?"
    return path.rsplit("/", 1)[-1] or path


def hexs(value: int | None) -> str:
    return "NULL" if not value else hex(value)


@functools.lru_cache(maxsize=1)
def _registry_levels() -> dict[str, str] | None:
    """Command levels from vkdoctor's registry (vk.xml via vulkan-object, cached per user)."""
    try:
        from vkdoctor.loader.registry import default_table

        return {cmd.name: cmd.level.value for cmd in default_table()}
    except Exception:  # the registry is a refinement; the name rules below still answer
        return None


# Names whose level is plain from the name alone: the registry (a cold parse of vk.xml takes
# seconds) is consulted only for the rest.
_INSTANCE_PREFIXES = (
    "vkGetPhysicalDevice",
    "vkEnumeratePhysicalDevice",
    "vkEnumerateInstance",
    "vkEnumerateDeviceExtensionProperties",
    "vkEnumerateDeviceLayerProperties",
    "vkCreateInstance",
    "vkDestroyInstance",
    "vkCreateDevice",
    "vkGetInstanceProcAddr",
    "vkCreateDebug",
    "vkDestroyDebug",
    "vkSubmitDebugUtilsMessage",
    "vkDebugReportMessage",
    "vkDestroySurface",
    "vkGetDisplay",
    "vkCreateDisplay",
    "vkReleaseDisplay",
    "vkAcquireXlibDisplay",
    "vkGetRandROutputDisplay",
    "vkAcquireDrmDisplay",
    "vkGetDrmDisplay",
)
_DEVICE_PREFIXES = (
    "vkCmd",
    "vkQueue",
    "vkDeviceWaitIdle",
    "vkGetDeviceQueue",
    "vkDestroyDevice",
)


def is_device_command(name: str) -> bool:
    if not name.startswith("vk"):
        return False
    if name.startswith(_DEVICE_PREFIXES):
        return True
    if name.startswith(_INSTANCE_PREFIXES) or (
        name.startswith("vkCreate") and name.endswith(("SurfaceKHR", "SurfaceEXT"))
    ):
        return False
    levels = _registry_levels()
    if levels is not None:
        return levels.get(name) == "device"
    return False


# ---- replay state ------------------------------------------------------------------------------


@dataclass
class Lib:
    path: str
    canon: str
    base: int
    ranges: list[tuple[int, int, bool]]
    opened: Event
    closed: Event | None = None
    at_exit: bool = False

    def contains(self, addr: int | None, *, code_only: bool = False) -> bool:
        if not addr:
            return False
        return any(lo <= addr < hi and (ex or not code_only) for lo, hi, ex in self.ranges)


@dataclass
class VkObject:
    kind: str  # instance | device
    handle: int
    created: Event
    instance: int | None = None
    anchor: int | None = None
    driver: str | None = None  # canonical path of the library the anchor lies in
    destroyed: Event | None = None
    gdpa_queries: int = 0
    unsupported: frozenset[str] | None = None  # loader exports this device answers NULL for
    orphaned: bool = False  # its instance was destroyed first (reported once, not again)


@dataclass
class Proc:
    pid: int
    exe: str | None = None
    parent: int | None = None
    forked_at: Event | None = None
    inherited_objects: int = 0  # instances + devices alive in the parent at fork
    execed: bool = False
    used_vulkan_in_child: list[Event] = field(default_factory=list)
    live_libs: dict[int, Lib] = field(default_factory=dict)
    closed_libs: list[Lib] = field(default_factory=list)
    objects: dict[int, VkObject] = field(default_factory=dict)
    dead: dict[int, VkObject] = field(default_factory=dict)
    all_objects: list[VkObject] = field(default_factory=list)
    exit_event: Event | None = None
    layer_loaded: bool = False
    audit_seen: bool = False
    null_results: list[Event] = field(default_factory=list)
    gipa_device: dict[str, Event] = field(default_factory=dict)
    gdpa_names: set[str] = field(default_factory=set)
    gipa_null: dict[str, Event] = field(default_factory=dict)
    dlsym_from_loader: dict[str, Event] = field(default_factory=dict)
    bypass: dict[str, list[Event]] = field(default_factory=dict)  # driver canon -> binds
    signals: list[Event] = field(default_factory=list)
    loader_pairs: set[tuple[str, str]] = field(default_factory=set)
    loader_pair_events: list[tuple[Lib, Lib]] = field(default_factory=list)
    provenance: Provenance = field(default_factory=Provenance)
    # The mappings at each crash (live ones, then formerly mapped ones): later events of the
    # replay must not change what the crash addresses are symbolized against.
    signal_libs: dict[int, list[tuple[Lib, bool]]] = field(default_factory=dict)

    def instances(self) -> list[VkObject]:
        return [o for o in self.objects.values() if o.kind == "instance"]

    def devices(self) -> list[VkObject]:
        return [o for o in self.objects.values() if o.kind == "device"]

    def live(self) -> list[VkObject]:
        """Objects that can still be used: orphaned devices are already a reported bug."""
        return [o for o in self.objects.values() if not o.orphaned]

    def lib_at(self, addr: int | None) -> Lib | None:
        for lib in self.live_libs.values():
            if lib.contains(addr):
                return lib
        return None

    def former_lib_at(self, addr: int | None, *, code_only: bool) -> Lib | None:
        """The most recently unloaded library whose old mapping holds ``addr``, if nothing
        mapped now covers that address."""
        if not addr or self.lib_at(addr) is not None:
            return None
        for lib in reversed(self.closed_libs):
            if not lib.at_exit and lib.contains(addr, code_only=code_only):
                return lib
        return None

    def fork_child(self, pid: int, event: Event) -> Proc:
        child = Proc(pid=pid, exe=self.exe, parent=self.pid, forked_at=event)
        child.live_libs = copy.deepcopy(self.live_libs)
        child.objects = copy.deepcopy(self.objects)
        child.layer_loaded = self.layer_loaded
        child.audit_seen = self.audit_seen
        child.inherited_objects = len(self.objects)
        child.provenance = self.provenance.copy()
        child.closed_libs = list(self.closed_libs)
        return child


# ---- context and result ------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceContext:
    """What the analysis needs to know beyond the events."""

    mode: str = "audit+layer"
    main_pid: int | None = None
    outcome: ProgramOutcome | None = None
    audit_expected: bool = True
    layer_expected: bool = True
    driver_paths: frozenset[str] = frozenset()  # canonical ICD library paths from manifests
    layer_paths: frozenset[str] = frozenset()
    own_layer: str | None = None
    attached: bool = False


@dataclass(frozen=True)
class TraceAnalysis:
    findings: list[Finding]
    facts: dict[str, Any]


# ---- the analysis ------------------------------------------------------------------------------


class _Analyzer:
    def __init__(self, trace: ParsedTrace, ctx: TraceContext, *, strict: bool = False) -> None:
        self.trace = trace
        self.ctx = ctx
        self.strict = strict
        self.unanalysable: list[int] = []
        self.procs: dict[int, Proc] = {}
        self.roles = self._classify()
        self.findings: list[Finding] = []
        self._seen_keys: set[tuple[Any, ...]] = set()
        self.explained_signals: set[int] = set()
        self.unloads_with_live_objects: list[Event] = []
        own = [canonical(ctx.own_layer)] if ctx.own_layer else []
        self.crash = CrashAnalyzer(self.role, own)

    # -- roles --

    def _classify(self) -> dict[str, str]:
        roles: dict[str, str] = {}
        for path in self.ctx.driver_paths:
            roles[canonical(path)] = ROLE_DRIVER
        for path in self.ctx.layer_paths:
            roles[canonical(path)] = ROLE_LAYER
        if self.ctx.own_layer:
            roles[canonical(self.ctx.own_layer)] = ROLE_LAYER
        for event in self.trace.of("bind", "open"):
            if event.ev == "open":
                path = event.text("path")
                if _LOADER_NAME.match(short(path)):
                    roles.setdefault(canonical(path), ROLE_LOADER)
                elif short(path).startswith("libVkLayer"):
                    roles.setdefault(canonical(path), ROLE_LAYER)
                continue
            requester = event.text("from")
            target = canonical(event.text("to"))
            sym = event.text("sym")
            if not _LOADER_NAME.match(short(requester)):
                continue
            if sym.startswith("vk_icd"):
                roles[target] = ROLE_DRIVER
            elif sym == "vkNegotiateLoaderLayerInterfaceVersion":
                roles.setdefault(target, ROLE_LAYER)
        return roles

    def role(self, path: str | None) -> str:
        if not path:
            return ROLE_OTHER
        canon = canonical(path)
        if canon in self.roles:
            return self.roles[canon]
        if _LOADER_NAME.match(short(path)):
            return ROLE_LOADER
        return ROLE_OTHER

    # -- output helpers --

    def add(self, key: tuple[Any, ...], code: str, summary: str, **kwargs: Any) -> None:
        if key in self._seen_keys:
            return
        self._seen_keys.add(key)
        self.findings.append(make_finding(CODES, code, summary, **kwargs))

    def describe(self, e: Event) -> str:
        d = e.data
        if e.ev == "open":
            text = f"loaded {short(d.get('path'))}"
            if d.get("by"):
                text += f" (dlopen from {short(d.get('by'))})"
        elif e.ev == "close":
            text = f"unloaded {short(d.get('path'))}"
            if d.get("at_exit"):
                text += " at exit"
            elif d.get("by"):
                text += f" (dlclose from {short(d.get('by'))})"
        elif e.ev == "create_instance":
            text = f"vkCreateInstance -> {hexs(e.addr('inst'))} (result {d.get('res')})"
        elif e.ev == "destroy_instance":
            text = f"vkDestroyInstance({hexs(e.addr('inst'))})"
        elif e.ev == "create_device":
            text = (
                f"vkCreateDevice -> {hexs(e.addr('dev'))} on instance "
                f"{hexs(e.addr('inst'))} (result {d.get('res')})"
            )
        elif e.ev == "destroy_device":
            text = f"vkDestroyDevice({hexs(e.addr('dev'))})"
        elif e.ev in ("gipa", "gdpa"):
            fn = "vkGetInstanceProcAddr" if e.ev == "gipa" else "vkGetDeviceProcAddr"
            text = f'{fn}({hexs(e.addr("h"))}, "{d.get("name")}") -> {hexs(e.addr("ret"))}'
        elif e.ev == "bind":
            how = "dlsym" if d.get("dlsym") else "linked"
            text = f"{short(d.get('from'))} {how} {d.get('sym')} from {short(d.get('to'))}"
        elif e.ev == "signal":
            sig = e.integer("sig")
            name = signal_name(sig) if sig else "signal"
            text = f"{name}: ip {hexs(e.addr('ip'))}, address {hexs(e.addr('addr'))}"
            inside = e.mapping("inside")
            if inside:
                text += f' inside {inside.get("fn")}("{inside.get("name")}")'
        elif e.ev in ("fork", "fork_seen"):
            text = f"fork(): process {e.pid} is a child of {d.get('ppid')}"
        elif e.ev == "exit":
            text = "process exit begins (static destructors done)"
        elif e.ev == "hello":
            text = f"exec {d.get('exe')}"
        elif e.ev == "trace_end":
            text = f"program ended: {d.get('status')}"
        else:
            text = e.ev
        pid = f" [pid {e.pid}]" if e.pid is not None and e.pid != self.ctx.main_pid else ""
        return f"#{e.seq}{pid} {text}"

    def timeline(self, events: Iterable[Event | None]) -> list[str]:
        unique = sorted({e.seq: e for e in events if e is not None}.values(), key=lambda e: e.seq)
        return [self.describe(e) for e in unique]

    # -- replay --

    def proc(self, event: Event) -> Proc:
        pid = event.pid if event.pid is not None else (self.ctx.main_pid or 0)
        proc = self.procs.get(pid)
        if proc is None:
            parent_pid = event.get("ppid")
            parent = self.procs.get(parent_pid) if isinstance(parent_pid, int) else None
            if parent is not None and event.ev in ("fork", "fork_seen"):
                proc = parent.fork_child(pid, event)
            else:
                proc = Proc(pid=pid)
            self.procs[pid] = proc
        return proc

    def run(self) -> None:
        handlers = {
            "hello": self.on_hello,
            "fork_seen": self.on_fork,
            "fork": self.on_fork,
            "open": self.on_open,
            "close": self.on_close,
            "bind": self.on_bind,
            "gipa": self.on_gipa,
            "gdpa": self.on_gdpa,
            "signal": self.on_signal,
            "exit": self.on_exit,
            "layer_load": self.on_layer_load,
            "create_instance": self.on_create_instance,
            "destroy_instance": self.on_destroy_instance,
            "enum_pd": self.on_enum_pd,
            "create_device": self.on_create_device,
            "destroy_device": self.on_destroy_device,
            "device_nulls": self.on_device_nulls,
        }
        for event in self.trace:
            if event.src == "vkdoctor":
                continue
            handler = handlers.get(event.ev)
            if handler is None:
                continue
            try:
                proc = self.proc(event)
                if event.src == "audit":
                    proc.audit_seen = True
                if (
                    proc.forked_at is not None
                    and not proc.execed
                    and event.ev
                    in (
                        "gipa",
                        "gdpa",
                        "create_instance",
                        "destroy_instance",
                        "enum_pd",
                        "create_device",
                        "destroy_device",
                    )
                ) or (
                    event.ev == "bind"
                    and event.text("sym").startswith("vk")
                    and self.role(event.text("from")) == ROLE_OTHER
                ):
                    proc.used_vulkan_in_child.append(event)
                handler(proc, event)
            except Exception:
                # A damaged trace costs one event, not the report (tests run strict).
                if self.strict:
                    raise
                self.unanalysable.append(event.seq)

    def on_hello(self, proc: Proc, e: Event) -> None:
        if proc.live_libs or proc.objects or proc.forked_at is not None:
            # exec() replaces the image: a fresh address space, same pid.
            fresh = Proc(
                pid=proc.pid,
                parent=proc.parent,
                forked_at=proc.forked_at,
                inherited_objects=proc.inherited_objects,
                execed=True,
                used_vulkan_in_child=proc.used_vulkan_in_child,
            )
            self.procs[proc.pid] = fresh
            proc = fresh
        proc.exe = e.text("exe") or proc.exe
        proc.audit_seen = True

    def on_fork(self, proc: Proc, e: Event) -> None:
        if e.ev == "fork" and proc.forked_at is not None and proc.forked_at.ev == "fork_seen":
            proc.forked_at = e  # the layer's record is exact; the audit one is lazy

    def on_open(self, proc: Proc, e: Event) -> None:
        path = e.text("path")
        ranges = []
        for item in e.items("ranges"):
            if not isinstance(item, list) or len(item) != 3:
                continue
            lo, hi = parse_addr(item[0]), parse_addr(item[1])
            if lo is not None and hi is not None:
                ranges.append((lo, hi, item[2] == "x"))
        base = e.addr("base") or (min(r[0] for r in ranges) if ranges else 0)
        lib = Lib(path=path, canon=canonical(path), base=base, ranges=ranges, opened=e)
        old = proc.live_libs.get(base)
        if old is not None and old.path != path:
            proc.closed_libs.append(old)
        proc.live_libs[base] = lib
        if self.role(path) == ROLE_LOADER:
            for other in proc.live_libs.values():
                if other is lib or self.role(other.path) != ROLE_LOADER:
                    continue
                if other.canon != lib.canon:
                    pair = tuple(sorted((other.canon, lib.canon)))
                    if pair not in proc.loader_pairs:
                        proc.loader_pairs.add(pair)  # type: ignore[arg-type]
                        proc.loader_pair_events.append((other, lib))

    def _find_lib(self, proc: Proc, e: Event) -> Lib | None:
        path = e.text("path")
        base = e.addr("base")
        lib = proc.live_libs.get(base) if base is not None else None
        if lib is not None and (lib.path == path or not path):
            return lib
        for candidate in proc.live_libs.values():
            if candidate.path == path:
                return candidate
        return lib

    def on_close(self, proc: Proc, e: Event) -> None:
        lib = self._find_lib(proc, e)
        at_exit = e.flag("at_exit") or proc.exit_event is not None
        if lib is None:
            return
        del proc.live_libs[lib.base]
        lib.closed = e
        lib.at_exit = at_exit
        proc.closed_libs.append(lib)
        if at_exit:
            return
        self.check_premature_unload(proc, lib, e)

    def check_premature_unload(self, proc: Proc, lib: Lib, e: Event) -> None:
        role = self.role(lib.path)
        if role == ROLE_OTHER:
            return
        if role == ROLE_DRIVER:
            victims = [d for d in proc.live() if d.kind == "device" and d.driver == lib.canon]
        elif role == ROLE_LAYER:
            victims = [i for i in proc.instances() if i.created.seq > lib.opened.seq]
        else:
            victims = proc.live()
        by = e.get("by")
        by_text = f" (dlclose from {short(by)})" if by else ""
        if not victims:
            if role == ROLE_LOADER and not proc.layer_loaded and e.src == "poll":
                # Without the layer we cannot know whether anything was still alive.
                self.add(
                    ("premature-unload", proc.pid, e.seq),
                    "premature-unload",
                    f"{short(lib.path)} was unloaded at event {e.seq} while the process kept "
                    "running; whether instances were still alive is invisible in this mode",
                    severity=Severity.INFO,
                    evidence={
                        "pid": proc.pid,
                        "library": lib.path,
                        "event": e.seq,
                        "timeline": self.timeline([lib.opened, e]),
                    },
                )
            return
        self.unloads_with_live_objects.append(e)
        n_inst = sum(1 for v in victims if v.kind == "instance")
        n_dev = sum(1 for v in victims if v.kind == "device")
        alive = ", ".join(
            part
            for part in (
                f"{n_inst} VkInstance" if n_inst else "",
                f"{n_dev} VkDevice" if n_dev else "",
            )
            if part
        )
        what = {
            "loader": "the Vulkan loader",
            "driver": "the Vulkan driver",
            "layer": "the Vulkan layer",
        }[role]
        self.add(
            ("premature-unload", proc.pid, lib.canon, e.seq),
            "premature-unload",
            f"{short(lib.path)} ({what}) was unloaded{by_text} at event {e.seq} while "
            f"{alive} created through it {'was' if len(victims) == 1 else 'were'} still alive",
            evidence={
                "pid": proc.pid,
                "library": lib.path,
                "role": role,
                "unloaded_at_event": e.seq,
                "unloaded_by": by,
                "live_objects": [
                    {"kind": v.kind, "handle": hex(v.handle), "created_at_event": v.created.seq}
                    for v in victims
                ],
                "timeline": self.timeline([lib.opened, *(v.created for v in victims), e]),
            },
        )

    def on_bind(self, proc: Proc, e: Event) -> None:
        sym = e.text("sym")
        requester = e.text("from")
        target = e.text("to")
        if not sym.startswith("vk") or canonical(requester) == canonical(target):
            return
        req_role = self.role(requester)
        to_role = self.role(target)
        if req_role in (ROLE_LOADER, ROLE_DRIVER, ROLE_LAYER):
            return
        if to_role in (ROLE_LOADER, ROLE_DRIVER):
            proc.provenance.add(
                PointerRecord(
                    sym,
                    e.addr("addr") or 0,
                    HOW_DLSYM if e.flag("dlsym") else HOW_LINKED,
                    e,
                    source=target,
                )
            )
        if to_role == ROLE_DRIVER:
            proc.bypass.setdefault(canonical(target), []).append(e)
        elif to_role == ROLE_LOADER and e.flag("dlsym") and sym != "vkGetInstanceProcAddr":
            proc.dlsym_from_loader.setdefault(sym, e)

    def _check_handle(self, proc: Proc, e: Event, handle: int, kind: str, via: str) -> None:
        obj = proc.objects.get(handle)
        if obj is not None and obj.kind == kind:
            return
        dead = proc.dead.get(handle)
        if dead is not None and dead.kind == kind and obj is None:
            self.add(
                ("use-after-destroy", proc.pid, handle, e.seq),
                "use-after-destroy",
                f"{via} was called with Vk{kind.capitalize()} {hex(handle)} at event {e.seq}, "
                f"after it was destroyed at event {dead.destroyed.seq if dead.destroyed else '?'}",
                evidence={
                    "pid": proc.pid,
                    "handle": hex(handle),
                    "kind": kind,
                    "timeline": self.timeline([dead.created, dead.destroyed, e]),
                },
            )
            return
        if proc.layer_loaded and obj is None:
            self.add(
                ("unknown-handle", proc.pid, handle),
                "unknown-handle",
                f"{via} was called at event {e.seq} with {hex(handle)}, which no "
                f"vkCreate{kind.capitalize()} returned in this process",
                evidence={
                    "pid": proc.pid,
                    "handle": hex(handle),
                    "expected": kind,
                    "timeline": self.timeline([e]),
                },
            )

    def on_gipa(self, proc: Proc, e: Event) -> None:
        handle = e.addr("h") or 0
        name = e.text("name")
        ret = e.addr("ret") or 0
        if not ret:
            proc.null_results.append(e)
        proc.provenance.add(PointerRecord(name, ret, HOW_GIPA, e, handle=handle))
        if not handle:
            if name not in GLOBAL_COMMANDS:
                proc.gipa_null.setdefault(name, e)
            return
        self._check_handle(proc, e, handle, "instance", f'vkGetInstanceProcAddr(…, "{name}")')
        if ret and name != "vkGetDeviceProcAddr" and is_device_command(name):
            proc.gipa_device.setdefault(name, e)

    def on_gdpa(self, proc: Proc, e: Event) -> None:
        handle = e.addr("h") or 0
        name = e.text("name")
        if not (e.addr("ret") or 0):
            proc.null_results.append(e)
        proc.provenance.add(PointerRecord(name, e.addr("ret") or 0, HOW_GDPA, e, handle=handle))
        proc.gdpa_names.add(name)
        obj = proc.objects.get(handle)
        if obj is not None and obj.kind == "device":
            obj.gdpa_queries += 1
        elif handle:
            self._check_handle(proc, e, handle, "device", f'vkGetDeviceProcAddr(…, "{name}")')

    def on_signal(self, proc: Proc, e: Event) -> None:
        proc.signals.append(e)
        own = canonical(self.ctx.own_layer) if self.ctx.own_layer else None
        proc.signal_libs[e.seq] = [(lib, False) for lib in proc.live_libs.values()] + [
            (lib, True)
            for lib in reversed(proc.closed_libs)
            if not lib.at_exit and lib.canon != own
        ]

    def on_device_nulls(self, proc: Proc, e: Event) -> None:
        obj = proc.objects.get(e.addr("dev") or 0)
        if obj is not None and obj.kind == "device":
            obj.unsupported = frozenset(n for n in e.items("names") if isinstance(n, str))

    def on_exit(self, proc: Proc, e: Event) -> None:
        if proc.exit_event is None:
            proc.exit_event = e

    def on_layer_load(self, proc: Proc, e: Event) -> None:
        proc.layer_loaded = True

    def on_create_instance(self, proc: Proc, e: Event) -> None:
        proc.layer_loaded = True
        handle = e.addr("inst") or 0
        if e.get("res") != 0 or not handle:
            return
        obj = VkObject("instance", handle, e)
        proc.objects[handle] = obj
        proc.dead.pop(handle, None)
        proc.all_objects.append(obj)

    def on_destroy_instance(self, proc: Proc, e: Event) -> None:
        handle = e.addr("inst") or 0
        obj = proc.objects.get(handle)
        if obj is None or obj.kind != "instance":
            if handle:
                self._check_handle(proc, e, handle, "instance", "vkDestroyInstance")
            return
        devices = [d for d in proc.devices() if d.instance == handle and not d.orphaned]
        for device in devices:
            device.orphaned = True
        if devices:
            self.add(
                ("instance-destroyed-before-devices", proc.pid, handle),
                "instance-destroyed-before-devices",
                f"vkDestroyInstance({hex(handle)}) at event {e.seq} while {len(devices)} "
                f"device(s) created from it were still alive "
                f"({', '.join(hex(d.handle) for d in devices)})",
                evidence={
                    "pid": proc.pid,
                    "instance": hex(handle),
                    "live_devices": [hex(d.handle) for d in devices],
                    "timeline": self.timeline([obj.created, *(d.created for d in devices), e]),
                },
            )
        obj.destroyed = e
        del proc.objects[handle]
        proc.dead[handle] = obj

    def on_enum_pd(self, proc: Proc, e: Event) -> None:
        handle = e.addr("inst") or 0
        if handle and handle not in proc.objects:
            self._check_handle(proc, e, handle, "instance", "vkEnumeratePhysicalDevices")

    def on_create_device(self, proc: Proc, e: Event) -> None:
        proc.layer_loaded = True
        handle = e.addr("dev") or 0
        if e.get("res") != 0 or not handle:
            return
        anchor = e.addr("anchor")
        lib = proc.lib_at(anchor)
        obj = VkObject(
            "device",
            handle,
            e,
            instance=e.addr("inst"),
            anchor=anchor,
            driver=lib.canon if lib is not None else None,
        )
        proc.objects[handle] = obj
        proc.dead.pop(handle, None)
        proc.all_objects.append(obj)

    def on_destroy_device(self, proc: Proc, e: Event) -> None:
        handle = e.addr("dev") or 0
        obj = proc.objects.get(handle)
        if obj is None or obj.kind != "device":
            if handle:
                self._check_handle(proc, e, handle, "device", "vkDestroyDevice")
            return
        obj.destroyed = e
        del proc.objects[handle]
        proc.dead[handle] = obj

    # -- conclusions after the replay --

    def conclude(self) -> None:
        for proc in self.procs.values():
            self.conclude_signals(proc)
            self.conclude_proc_addr(proc)
            self.conclude_bypass(proc)
            self.conclude_loaders(proc)
            self.conclude_fork(proc)
            self.conclude_leaks(proc)
            self.conclude_shared_pointers(proc)
        self.conclude_outcome()

    def conclude_signals(self, proc: Proc) -> None:
        for e in proc.signals:
            ip = e.addr("ip")
            # si_code <= 0: sent with kill()/raise(); si_addr then holds no address.
            code = e.get("code")
            addr = e.addr("addr") if isinstance(code, int) and code > 0 else None
            sig = e.integer("sig")
            name = signal_name(sig) if sig else "a fatal signal"
            if self.crash_on_destroyed_handle(proc, e, name):
                continue
            libs = proc.signal_libs.get(e.seq) or [(lib, False) for lib in proc.live_libs.values()]
            objects: dict[int, VkObject] = {**proc.dead, **proc.objects}
            att = self.crash.attribute(e, libs, proc.provenance, objects)
            own = canonical(self.ctx.own_layer) if self.ctx.own_layer else None
            former = proc.former_lib_at(ip, code_only=False)
            touched = False
            if former is None:
                former = proc.former_lib_at(addr, code_only=False)
                touched = former is not None
            if former is not None and former.canon == own:
                former = None  # our layer stays mapped (RTLD_NODELETE); never the culprit
            if former is not None and former.closed is not None:
                self.add_call_after_unload(proc, e, att, former, name, ip, addr, touched)
                continue
            if (not ip or ip < 4096) and self.add_null_call(proc, e, att, name, ip):
                continue
            self.add_crash(proc, e, name, ip, addr, att)

    def _crash_evidence(self, att: Attribution) -> dict[str, Any]:
        return {
            "command": att.command,
            "call_site": att.call_site.call_site if att.call_site else None,
            "pointer": att.pointer.to_dict() if att.pointer else None,
            "candidates": [c.to_dict() for c in att.candidates[:_MAX_NAMES]],
            "backtrace": att.backtrace(),
        }

    def _from_text(self, att: Attribution, lead: str = ", called from") -> str:
        return f"{lead} {att.call_site.call_site}" if att.call_site else ""

    def add_call_after_unload(
        self,
        proc: Proc,
        e: Event,
        att: Attribution,
        former: Lib,
        name: str,
        ip: int | None,
        addr: int | None,
        touched: bool,
    ) -> None:
        closed = former.closed
        assert closed is not None
        by = closed.get("by")
        by_text = f" from {short(by)}" if by else ""
        verb = "touched memory of" if touched else "called into"
        where = addr if touched else ip
        offset = (where - former.base) if where is not None else None
        command = att.command
        if not touched and not command and att.frames and att.frames[0].function:
            command = att.frames[0].function
        what = f"{command} in " if command and not touched else ""
        pointer = f" (pointer {record_how(att.pointer)})" if att.pointer else ""
        self.explained_signals.add(e.seq)
        self.add(
            ("call-after-unload", proc.pid, e.seq),
            "call-after-unload",
            f"the program {verb} {what}{short(former.path)} after dlclose{by_text} at event "
            f"{closed.seq}{self._from_text(att)}{pointer} ({name} at {hexs(where)}, "
            f"{short(former.path)}+{hex(offset) if offset is not None else '?'})",
            evidence={
                "pid": proc.pid,
                "signal": name,
                "ip": hexs(ip),
                "address": hexs(addr),
                "library": former.path,
                "unloaded_at_event": closed.seq,
                "unloaded_by": by,
                "crash_event": e.seq,
                "stack": e.items("stack"),
                **self._crash_evidence(att),
                "command": command,
                "timeline": self.timeline([former.opened, closed, e]),
            },
        )

    def add_null_call(
        self, proc: Proc, e: Event, att: Attribution, name: str, ip: int | None
    ) -> bool:
        """A jump to (near) address 0: through a NULL the program was given, or through a
        loader trampoline whose dispatch slot is empty on this device."""
        pointer = att.pointer
        exports = [c for c in att.candidates if c.is_trampoline_export]
        if (pointer is not None and pointer.is_trampoline_export) or (
            pointer is None and exports and len({c.name for c in att.candidates}) == 1
        ):
            record = pointer or exports[-1]
            self.add_unsupported_call(proc, e, att, record, name)
            return True
        nulls = [c for c in att.candidates if not c.value]
        if pointer is not None and not pointer.value:
            nulls = [pointer]
        if not nulls:
            nulls = [
                PointerRecord(
                    n.text("name"), 0, HOW_GIPA if n.ev == "gipa" else HOW_GDPA, n, n.addr("h")
                )
                for n in proc.null_results
                if n.seq < e.seq
            ][-5:]
        if not nulls:
            return False
        exact = len({n.name for n in nulls}) == 1
        called = nulls[-1]
        if exact:
            text = (
                f"the program called {called.name} through a NULL pointer ({name} at "
                f"{ip or 0:#x}){self._from_text(att)}; {called.how_text()} had returned NULL at "
                f"event {called.event.seq}"
            )
        else:
            text = (
                f"the program jumped to address {ip or 0:#x} ({name}){self._from_text(att)}, "
                f"through one of the NULL pointers it was given: "
                + ", ".join(n.how_text() for n in nulls[-5:])
            )
        self.explained_signals.add(e.seq)
        self.add(
            ("null-proc-addr-called", proc.pid, e.seq),
            "null-proc-addr-called",
            text,
            evidence={
                "pid": proc.pid,
                "signal": name,
                "ip": hexs(ip),
                "null_results": [f'{n.how}("{n.name}")' for n in nulls[-5:]],
                "crash_event": e.seq,
                **self._crash_evidence(att),
                "command": called.name if exact else None,
                "timeline": self.timeline([*(n.event for n in nulls[-5:]), e]),
            },
        )
        return True

    def add_unsupported_call(
        self, proc: Proc, e: Event, att: Attribution, record: PointerRecord, name: str
    ) -> None:
        command = record.name
        device = att.device
        device_text = f"device {hex(device.handle)}" if device is not None else "the device"
        fix, commands = _unsupported_fix(command)
        self.explained_signals.add(e.seq)
        self.add(
            ("unsupported-command-called", proc.pid, e.seq),
            "unsupported-command-called",
            f"the program called {command}{self._from_text(att, ' from')}, {record_how(record)}, on "
            f"{device_text}, which does not support it (vkGetDeviceProcAddr returns NULL for "
            f"{command}): the loader's trampoline jumped through an empty dispatch slot to "
            f"address 0 ({name})",
            evidence={
                "pid": proc.pid,
                "signal": name,
                "ip": hexs(e.addr("ip")),
                "device": hex(device.handle) if device is not None else None,
                "device_supports_command": False,
                "crash_event": e.seq,
                **self._crash_evidence(att),
                "pointer": record.to_dict(),
                "command": command,
                "timeline": self.timeline(
                    [record.event, *(device.created for device in [device] if device), e]
                ),
            },
            remedy=fix,
            commands=commands,
        )

    def crash_on_destroyed_handle(self, proc: Proc, e: Event, name: str) -> bool:
        """A crash inside vkGet*ProcAddr called with a destroyed handle: the audit module
        records the query after it returns, so the crash record is all that is left of it."""
        inside = e.mapping("inside")
        handle = parse_addr(inside.get("h"))
        kind = {"vkGetInstanceProcAddr": "instance", "vkGetDeviceProcAddr": "device"}.get(
            str(inside.get("fn"))
        )
        dead = proc.dead.get(handle) if handle else None
        if kind is None or dead is None or dead.kind != kind or handle in proc.objects:
            return False
        self.explained_signals.add(e.seq)
        destroyed = dead.destroyed.seq if dead.destroyed else "?"
        self.add(
            ("use-after-destroy", proc.pid, handle, e.seq),
            "use-after-destroy",
            f'{inside.get("fn")}(…, "{inside.get("name")}") was called with '
            f"Vk{kind.capitalize()} {hex(handle)}, destroyed at event {destroyed}, and "
            f"crashed ({name}, event {e.seq})",
            evidence={
                "pid": proc.pid,
                "handle": hex(handle),
                "kind": kind,
                "signal": name,
                "crash_event": e.seq,
                "timeline": self.timeline([dead.created, dead.destroyed, e]),
            },
        )
        return True

    def add_crash(
        self,
        proc: Proc,
        e: Event,
        name: str,
        ip: int | None,
        addr: int | None,
        att: Attribution | None = None,
    ) -> None:
        # Where: the innermost frame that is not vkdoctor's own layer or audit module.
        frames = att.frames if att is not None else []
        culprit = next((f for f in frames if f.role != "vkdoctor"), None)
        if culprit is not None and culprit.path:
            where = culprit.describe()
        else:
            lib = proc.lib_at(ip)
            where = f"{short(lib.path)}+{hex(ip - lib.base)}" if lib and ip else hexs(ip)
        lib = proc.lib_at(culprit.addr if culprit is not None else ip)
        inside = e.mapping("inside")
        inside_text = (
            f' inside {inside.get("fn")}({inside.get("h")}, "{inside.get("name")}")'
            if inside
            else ""
        )
        command_text = ""
        if att is not None and att.command and not inside:
            command_text = f" while executing {att.command}"
        code = e.get("code")
        if isinstance(code, int) and code <= 0:
            cause = f"sent by kill() or raise(), event {e.seq}"
        else:
            cause = f"faulting address {hexs(addr)}, event {e.seq}"
        self.explained_signals.add(e.seq)
        self.add(
            ("program-crashed", proc.pid, e.seq),
            "program-crashed",
            f"process {proc.pid} died from {name} at {where}{inside_text}{command_text}"
            f"{self._from_text(att) if att is not None else ''} ({cause})",
            evidence={
                "pid": proc.pid,
                "signal": name,
                "ip": hexs(ip),
                "address": hexs(addr),
                "ip_object": lib.path if lib else e.get("ip_obj"),
                "stack": e.items("stack"),
                "inside": inside or None,
                **(self._crash_evidence(att) if att is not None else {}),
                "timeline": self.timeline([e]),
            },
            commands=(f"gdb --args {' '.join(self.ctx.outcome.argv)}",)
            if self.ctx.outcome and self.ctx.outcome.argv
            else (),
        )

    def conclude_proc_addr(self, proc: Proc) -> None:
        if proc.gipa_null:
            names = sorted(proc.gipa_null)
            events = [proc.gipa_null[n] for n in names]
            nulls = [n for n in names if not (proc.gipa_null[n].addr("ret") or 0)]
            self.add(
                ("gipa-null-instance", proc.pid),
                "gipa-null-instance",
                f"vkGetInstanceProcAddr(NULL, …) was asked for {len(names)} non-global "
                f"command(s): {', '.join(names[:_MAX_NAMES])}"
                + (f"; {len(nulls)} came back NULL on this loader" if nulls else ""),
                evidence={
                    "pid": proc.pid,
                    "commands": names,
                    "returned_null": nulls,
                    "timeline": self.timeline(events[:_MAX_NAMES]),
                },
            )
        if proc.gipa_device and any(o.kind == "device" for o in proc.all_objects):
            only_gipa = sorted(n for n in proc.gipa_device if n not in proc.gdpa_names)
            if only_gipa:
                self.add(
                    ("device-command-via-gipa", proc.pid),
                    "device-command-via-gipa",
                    f"{len(only_gipa)} device command(s) were fetched with vkGetInstanceProcAddr "
                    f"and never with vkGetDeviceProcAddr: {', '.join(only_gipa[:_MAX_NAMES])}",
                    evidence={
                        "pid": proc.pid,
                        "commands": only_gipa,
                        "timeline": self.timeline(
                            proc.gipa_device[n] for n in only_gipa[:_MAX_NAMES]
                        ),
                    },
                )
        if proc.dlsym_from_loader:
            names = sorted(proc.dlsym_from_loader)
            first = proc.dlsym_from_loader[names[0]]
            self.add(
                ("dlsym-entry-point", proc.pid),
                "dlsym-entry-point",
                f"{short(first.get('from'))} took {len(names)} Vulkan command(s) from "
                f"{short(first.get('to'))} with dlsym instead of vkGetInstanceProcAddr: "
                f"{', '.join(names[:_MAX_NAMES])}",
                evidence={
                    "pid": proc.pid,
                    "commands": names,
                    "timeline": self.timeline(
                        proc.dlsym_from_loader[n] for n in names[:_MAX_NAMES]
                    ),
                },
            )

    def conclude_bypass(self, proc: Proc) -> None:
        for driver, binds in proc.bypass.items():
            names = sorted({str(b.get("sym")) for b in binds})
            requesters = sorted({short(b.get("from")) for b in binds})
            how = "dlsym" if any(b.flag("dlsym") for b in binds) else "direct linking"
            self.add(
                ("loader-bypass", proc.pid, driver),
                "loader-bypass",
                f"{', '.join(requesters)} took {len(names)} entry point(s) straight from the "
                f"driver {short(driver)} ({how}): {', '.join(names[:_MAX_NAMES])}",
                evidence={
                    "pid": proc.pid,
                    "driver": driver,
                    "commands": names,
                    "requesters": requesters,
                    "how": how,
                    "timeline": self.timeline(binds[:_MAX_NAMES]),
                },
            )

    def conclude_loaders(self, proc: Proc) -> None:
        for first, second in proc.loader_pair_events:
            self.add(
                ("multiple-vulkan-loaders", proc.pid, first.canon, second.canon),
                "multiple-vulkan-loaders",
                f"process {proc.pid} has two different Vulkan loaders mapped: {first.canon} "
                f"and {second.canon}"
                + (
                    f" (the second loaded by {short(second.opened.get('by'))})"
                    if second.opened.get("by")
                    else ""
                ),
                evidence={
                    "pid": proc.pid,
                    "loaders": [first.canon, second.canon],
                    "timeline": self.timeline([first.opened, second.opened]),
                },
            )

    def _child_end(self, proc: Proc) -> str:
        """How a forked child ended, as far as its own records tell."""
        if proc.signals:
            sig = proc.signals[-1].integer("sig")
            return f"died from {signal_name(sig) if sig else 'a fatal signal'}"
        if proc.exit_event is not None:
            return "exited (its exit handlers ran)"
        return "no record of its end (it called _exit() or was killed)"

    def _vulkan_crash(self, proc: Proc) -> Event | None:
        """A crash of the child with a Vulkan library on its stack or at its instruction
        pointer: the child was inside Vulkan, through pointers it inherited."""
        for e in proc.signals:
            libs = proc.signal_libs.get(e.seq, [])
            addrs = [e.addr("ip"), *(parse_addr(a) for a in e.items("bt"))]
            for lib, _former in libs:
                if self.role(lib.path) in (ROLE_LOADER, ROLE_DRIVER) and any(
                    lib.contains(a, code_only=True) for a in addrs if a
                ):
                    return e
        return None

    def conclude_fork(self, proc: Proc) -> None:
        if proc.forked_at is None or proc.inherited_objects == 0:
            return
        used = list(proc.used_vulkan_in_child)
        crash = self._vulkan_crash(proc)
        if crash is not None:
            used.append(crash)
        if proc.execed and not used:
            return  # fork + exec: the child never touched the inherited objects
        parent = proc.parent
        severity = Severity.FAIL if used else None
        detail_used = f"; the child then used Vulkan ({self.describe(used[0])})" if used else ""
        end = self._child_end(proc)
        self.add(
            ("fork-after-vulkan-init", proc.pid),
            "fork-after-vulkan-init",
            f"process {parent} forked child {proc.pid} at event {proc.forked_at.seq} with "
            f"{proc.inherited_objects} Vulkan instance/device object(s) alive{detail_used}; "
            f"the child {end}",
            severity=severity,
            evidence={
                "parent": parent,
                "child": proc.pid,
                "inherited_objects": proc.inherited_objects,
                "child_used_vulkan": bool(used),
                "child_end": end,
                "timeline": self.timeline([proc.forked_at, *used[:5], *proc.signals[-1:]]),
            },
        )

    def _exited_normally(self, proc: Proc) -> bool:
        if proc.exit_event is not None:
            return True
        outcome = self.ctx.outcome
        return (
            proc.pid == self.ctx.main_pid
            and outcome is not None
            and outcome.exited_normally
            and not proc.audit_seen
        )

    def conclude_leaks(self, proc: Proc) -> None:
        live = proc.live()
        if not live or not self._exited_normally(proc) or proc.signals:
            return
        objects = [
            {"kind": o.kind, "handle": hex(o.handle), "created_at_event": o.created.seq}
            for o in live
        ]
        for kind in ("instance", "device"):
            alive = [o for o in live if o.kind == kind]
            created = sum(1 for o in proc.all_objects if o.kind == kind)
            if len(alive) < _ACCUMULATED:
                continue
            self.add(
                ("vulkan-objects-accumulated", proc.pid, kind),
                "vulkan-objects-accumulated",
                f"process {proc.pid} created {created} Vk{kind.capitalize()} objects and "
                f"{len(alive)} were never destroyed (first at event {alive[0].created.seq}, "
                f"last at event {alive[-1].created.seq})",
                evidence={
                    "pid": proc.pid,
                    "kind": kind,
                    "created": created,
                    "alive_at_exit": len(alive),
                    "timeline": self.timeline([o.created for o in alive[:_MAX_NAMES]]),
                },
            )
        self.add(
            ("vulkan-objects-leaked", proc.pid),
            "vulkan-objects-leaked",
            f"process {proc.pid} exited normally with "
            + ", ".join(
                f"{o.kind} {hex(o.handle)} (created at event {o.created.seq})" for o in live[:10]
            )
            + (f" and {len(live) - 10} more" if len(live) > 10 else "")
            + " still alive; harmless at exit (the process teardown releases them)",
            evidence={
                "pid": proc.pid,
                "objects": objects[:50],
                "timeline": self.timeline([*(o.created for o in live[:10]), proc.exit_event]),
            },
        )

    def conclude_shared_pointers(self, proc: Proc) -> None:
        devices = [o for o in proc.all_objects if o.kind == "device"]
        if len(devices) < 2:
            return
        end = float("inf")
        for b in devices:
            if b.gdpa_queries:
                continue
            b_end = b.destroyed.seq if b.destroyed else end
            for a in devices:
                if a is b or not a.gdpa_queries:
                    continue
                a_end = a.destroyed.seq if a.destroyed else end
                if a.created.seq < b_end and b.created.seq < a_end:
                    other_driver = a.driver and b.driver and a.driver != b.driver
                    self.add(
                        ("device-pointers-shared", proc.pid, b.handle),
                        "device-pointers-shared",
                        f"device {hex(b.handle)} was alive together with device {hex(a.handle)} "
                        f"but vkGetDeviceProcAddr was only asked for {hex(a.handle)} "
                        f"({a.gdpa_queries} queries): {hex(a.handle)}'s pointers are likely used "
                        f"with {hex(b.handle)}"
                        + (
                            f" although they belong to different drivers ({short(a.driver)}, "
                            f"{short(b.driver)})"
                            if other_driver
                            else ""
                        ),
                        severity=Severity.FAIL if other_driver else None,
                        evidence={
                            "pid": proc.pid,
                            "queried_device": hex(a.handle),
                            "other_device": hex(b.handle),
                            "drivers": [a.driver, b.driver],
                            "timeline": self.timeline([a.created, b.created]),
                        },
                    )
                    break

    def conclude_outcome(self) -> None:
        outcome = self.ctx.outcome
        if outcome is None or not outcome.started:
            return
        main = self.procs.get(outcome.pid or -1)
        if outcome.timed_out:
            self.add(
                ("program-timeout",),
                "program-timeout",
                f"{short(outcome.argv[0])} was still running after the timeout and was "
                f"killed after {outcome.duration_s:.1f} s",
                evidence={"pid": outcome.pid, "duration_s": round(outcome.duration_s, 3)},
            )
            return
        if outcome.signal_number:
            signalled = main.signals if main is not None else []
            if not any(s.seq in self.explained_signals for s in signalled):
                self.add_signal_without_audit(main, outcome)
        elif outcome.returncode:
            self.add(
                ("program-exit-nonzero",),
                "program-exit-nonzero",
                f"{short(outcome.argv[0])} exited with status {outcome.returncode}",
                evidence={"pid": outcome.pid, "exit_code": outcome.returncode},
            )

    def add_signal_without_audit(self, main: Proc | None, outcome: ProgramOutcome) -> None:
        name = outcome.signal_name or "a signal"
        unloads = []
        if main is not None:
            unloads = [
                lib
                for lib in main.closed_libs
                if not lib.at_exit and self.role(lib.path) != ROLE_OTHER
            ]
        if unloads:
            lib = unloads[-1]
            assert lib.closed is not None
            self.add(
                ("call-after-unload", outcome.pid, "likely"),
                "call-after-unload",
                f"{short(outcome.argv[0])} died from {name} after {short(lib.path)} had been "
                f"unloaded at event {lib.closed.seq}; the crash address is not visible in this "
                "mode, but a call into the unloaded library is the likely cause",
                severity=Severity.WARN,
                evidence={
                    "pid": outcome.pid,
                    "signal": name,
                    "library": lib.path,
                    "timeline": self.timeline([lib.opened, lib.closed]),
                },
            )
            return
        self.add(
            ("program-crashed", outcome.pid, "status"),
            "program-crashed",
            f"{short(outcome.argv[0])} died from {name}"
            + ("" if self.ctx.audit_expected else " (no crash address without the audit module)"),
            evidence={"pid": outcome.pid, "signal": name},
            commands=(f"gdb --args {' '.join(outcome.argv)}",),
        )

    # -- facts --

    def facts(self) -> dict[str, Any]:
        libraries = []
        instances = []
        devices = []
        timeline_events: list[Event] = []
        for proc in self.procs.values():
            for lib in [*proc.closed_libs, *proc.live_libs.values()]:
                role = self.role(lib.path)
                if role == ROLE_OTHER:
                    continue
                libraries.append(
                    {
                        "pid": proc.pid,
                        "path": lib.path,
                        "role": role,
                        "loaded_at_event": lib.opened.seq,
                        "loaded_by": lib.opened.get("by"),
                        "unloaded_at_event": lib.closed.seq if lib.closed else None,
                        "unloaded_by": lib.closed.get("by") if lib.closed else None,
                        "at_exit": lib.at_exit,
                    }
                )
                timeline_events.append(lib.opened)
                if lib.closed is not None and not lib.at_exit:
                    timeline_events.append(lib.closed)
            for obj in proc.all_objects:
                record = {
                    "pid": proc.pid,
                    "handle": hex(obj.handle),
                    "created_at_event": obj.created.seq,
                    "destroyed_at_event": obj.destroyed.seq if obj.destroyed else None,
                }
                if obj.kind == "instance":
                    instances.append(record)
                else:
                    record["instance"] = hexs(obj.instance)
                    record["driver"] = obj.driver
                    record["gdpa_queries"] = obj.gdpa_queries
                    devices.append(record)
                timeline_events.extend(e for e in (obj.created, obj.destroyed) if e)
            timeline_events.extend(proc.signals)
            if proc.forked_at is not None:
                timeline_events.append(proc.forked_at)
        counts: dict[str, int] = {}
        for event in self.trace:
            counts[event.ev] = counts.get(event.ev, 0) + 1
        libraries.sort(key=lambda r: r["loaded_at_event"])
        timeline = self.timeline(timeline_events)
        return {
            "events": len(self.trace),
            "event_counts": dict(sorted(counts.items())),
            "processes": [
                {
                    "pid": p.pid,
                    "exe": p.exe,
                    "parent": p.parent,
                    "forked_at_event": p.forked_at.seq if p.forked_at else None,
                    "exit_seen": p.exit_event is not None,
                    "layer_loaded": p.layer_loaded,
                }
                for p in self.procs.values()
            ],
            "vulkan_libraries": libraries,
            "instances": instances,
            "devices": devices,
            "proc_addr_queries": {
                "vkGetInstanceProcAddr": counts.get("gipa", 0),
                "vkGetDeviceProcAddr": counts.get("gdpa", 0),
                "null_results": sum(len(p.null_results) for p in self.procs.values()),
            },
            "timeline": timeline[:_MAX_TIMELINE],
            "timeline_clipped": len(timeline) > _MAX_TIMELINE,
            "unanalysable_events": self.unanalysable[:50],
        }


def analyze(trace: ParsedTrace, ctx: TraceContext, *, strict: bool = False) -> TraceAnalysis:
    """Replay ``trace`` and return the findings (diagnoses) and the timeline facts.

    ``strict`` lets an exception from a malformed event propagate (tests); otherwise the event
    is skipped and listed in the facts."""
    analyzer = _Analyzer(trace, ctx, strict=strict)
    analyzer.run()
    analyzer.conclude()
    findings = sorted(analyzer.findings, key=lambda f: -f.severity.rank)
    return TraceAnalysis(findings=findings, facts=analyzer.facts())


def _unsupported_fix(command: str) -> tuple[str, tuple[str, ...]]:
    """The remedy for calling ``command`` on a device without it, from the registry: the
    Vulkan version that made it core and the extensions that provide it."""
    version = None
    extensions: list[str] = []
    try:
        from vkdoctor.loader.registry import default_table

        table = default_table()
        cmd = table.get(command)
        if cmd is not None:
            version = cmd.version_name
            for alias in (command, *table.aliases_of(command)):
                other = table.get(alias)
                for provider in other.providers if other is not None else ():
                    extensions.append(f"{provider.extension} ({alias})")
    except Exception:  # the registry only sharpens the remedy text
        pass
    parts = [
        f'Load {command} with vkGetDeviceProcAddr(device, "{command}") and check it for NULL '
        "instead of taking it from libvulkan by name."
    ]
    if version:
        number = version.removeprefix("VK_VERSION_").replace("_", ".")
        parts.append(
            f"{command} is core in Vulkan {number}: create the instance with "
            f"VkApplicationInfo.apiVersion >= VK_API_VERSION_{version.removeprefix('VK_VERSION_')}"
            " on a device that supports it, and enable the features it needs"
        )
    if extensions:
        parts.append(
            ("or e" if version else "E")
            + "nable "
            + ", ".join(sorted(set(extensions))[:3])
            + " at vkCreateDevice, with its feature"
        )
    return " ".join(parts[:1]) + (" " + "; ".join(parts[1:]) + "." if parts[1:] else ""), ()


def driver_paths_from_manifests(manifest_files: Sequence[str]) -> frozenset[str]:
    """Library paths named by ICD manifests (absolute ones only; bare names are searched by
    the dynamic linker and show up in the trace under their resolved path anyway)."""
    import json

    paths = set()
    for file in manifest_files:
        try:
            with open(file, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            continue
        icd = data.get("ICD") if isinstance(data, dict) else None
        library = icd.get("library_path") if isinstance(icd, dict) else None
        if isinstance(library, str) and library.startswith("/"):
            paths.add(canonical(library))
    return frozenset(paths)
