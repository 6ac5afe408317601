"""The replayed state of a traced run: libraries, Vulkan objects and pointers per process, the
command-level helpers, and the context the analysis runs in."""

from __future__ import annotations

import copy
import functools
import os
import re
from dataclasses import field
from typing import Any

from vkdoctor.record import frozen, mutable
from vkdoctor.report.model import Finding
from vkdoctor.trace.events import Event
from vkdoctor.trace.launch import ProgramOutcome
from vkdoctor.trace.provenance import (
    Provenance,
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


@functools.lru_cache(maxsize=1)
def _instance_extension_commands() -> frozenset[str]:
    """Commands provided only by instance extensions (VK_EXT_debug_utils' vkCmd*Label*EXT):
    device-level by their first parameter, but the spec has them fetched with
    vkGetInstanceProcAddr."""
    try:
        from vkdoctor.loader.registry import ExtensionKind, default_table

        return frozenset(
            cmd.name
            for cmd in default_table()
            if cmd.providers and all(p.kind == ExtensionKind.INSTANCE for p in cmd.providers)
        )
    except Exception:  # without the registry the finding may include them; it is info
        return frozenset()


def from_instance_extension(name: str) -> bool:
    return name.endswith(("EXT", "KHR", "NV", "AMD", "INTEL")) and (
        name in _instance_extension_commands()
    )


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


@mutable
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


@mutable
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


@mutable
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


@frozen
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


@frozen
class TraceAnalysis:
    findings: list[Finding]
    facts: dict[str, Any]
