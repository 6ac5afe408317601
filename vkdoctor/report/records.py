"""The report's component sections as typed records, defined once.

The loader, every driver and layer manifest, every physical device and every kernel-suite run is a
frozen dataclass here.  The JSON report is their serialisation (``vkdoctor.report.codec``), the
readers (``report show|diff|markdown``, the TUI) rebuild them from it, and the committed JSON
Schema is generated from these classes (``vkdoctor.report.schema.generated_schema``).

Identity is uniform: vendor and device ids are integers everywhere (Mesa's vendor id is 0x10005,
which PCI's 16-bit ids cannot hold); every UUID says which UUID it is.  Each component carries the
kebab-case finding codes found on it (``issues``); drivers and layers also carry ``excluded_by``:
why the loader will not use the component in a process started now.  The model follows
steam-runtime-system-info's per-driver records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from enum import Enum
from typing import Any

from vkdoctor.record import frozen

# Finding codes on a component: kebab-case, as the schema's "code" definition says.
_CODES = {"schema": {"type": "array", "items": {"$ref": "#/$defs/code"}}}


def _issues() -> Any:
    return field(default=(), metadata=_CODES)


class ExclusionReason(str, Enum):
    """Why the loader leaves a manifest out of a process started now."""

    FILTERED = "filtered"  # VK_LOADER_DRIVERS_SELECT/DISABLE, VK_LOADER_LAYERS_DISABLE
    HIDDEN_BY_OVERRIDE = "hidden-by-override"  # VK_DRIVER_FILES / VK_ICD_FILENAMES replace it
    OUTSIDE_SEARCH_PATH = "outside-search-path"  # XDG_DATA_DIRS leaves its directory out
    SKIPPED_BY_LOADER = "skipped-by-loader"  # the loader rejects the manifest itself
    WRONG_ARCHITECTURE = "wrong-architecture"  # a 32-bit library for a 64-bit process
    LOAD_FAILED = "load-failed"  # missing, unreadable, dlopen failed, missing exports
    DUPLICATE = "duplicate"  # a layer name declared earlier wins
    CRASHED = "crashed"  # crashed in a named step
    HUNG = "hung"  # did not return from a named step
    INACTIVE = "inactive"  # an implicit layer switched off, an explicit layer nobody enables


@frozen
class Exclusion:
    """One reason the loader will not use a driver or layer."""

    reason: ExclusionReason
    detail: str  # one readable sentence
    variable: str | None = None  # the variable responsible, when one is
    pattern: str | None = None  # its value or the matching pattern


@frozen
class LoadOutcome:
    """What happened when a child process dlopen'ed the library and negotiated with it."""

    state: str  # ok | crashed | timeout | error
    signal: str | None = None
    last_step: str | None = None
    dlopen_error: str | None = None


@frozen
class LoaderRecord:
    """The libvulkan that applications get."""

    soname: str
    path: str | None = None
    real_path: str | None = None
    version: str | None = None
    secure_execution: bool = False
    settings_files: tuple[str, ...] = ()
    issues: tuple[str, ...] = _issues()


@frozen(kw_only=True)
class LibraryFacts:
    """What drivers and layers share: the library a manifest names, resolved and checked like
    the loader would, and what happened when a child loaded it."""

    library_path: str | None = None
    library_path_kind: str | None = None
    resolved: str | None = None
    real_path: str | None = None
    exists: bool = False
    readable: bool = False
    elf_class: int | None = None
    machine: str | None = None
    other_abi: bool = False
    load: LoadOutcome | None = None
    exports: Mapping[str, bool] = field(default_factory=dict)
    interface_version: int | None = None
    negotiate_result: int | None = None


@frozen(kw_only=True)
class DriverRecord(LibraryFacts):
    """One driver (ICD) manifest and the library it names."""

    manifest: str
    origin: str = ""
    # usable | broken | other-abi | skipped-by-loader | candidate | hidden (by an override)
    state: str = "candidate"
    file_format_version: str | None = None
    api_version: str | None = None
    library_arch: str | None = None
    is_portability_driver: bool = False
    instance_version: str | None = None
    gipa_create_instance: bool | None = None
    filtered: str | None = None  # the filter variable's verdict, as the loader would apply it
    issues: tuple[str, ...] = _issues()
    excluded_by: tuple[Exclusion, ...] = ()

    @property
    def in_use(self) -> bool:
        """The loader hands this driver to a process started now."""
        return self.state == "usable" and not self.excluded_by


@frozen(kw_only=True)
class LayerRecord(LibraryFacts):
    """One layer declared by a manifest (a manifest may declare several)."""

    manifest: str
    name: str | None = None
    origin: str = ""
    implicit: bool = False
    state: str = "candidate"  # usable | broken | meta | duplicate | other-abi | skipped-by-loader
    type: str | None = None
    api_version: str | None = None
    implementation_version: str | None = None
    description: str | None = None
    enable_environment: Mapping[str, str] = field(default_factory=dict)
    disable_environment: Mapping[str, str] = field(default_factory=dict)
    component_layers: tuple[str, ...] = ()
    active: bool = False
    why: str = ""
    issues: tuple[str, ...] = _issues()
    excluded_by: tuple[Exclusion, ...] = ()


@frozen
class MemoryHeap:
    """One memory heap: its size in bytes and its VkMemoryHeapFlagBits names."""

    size: int
    flags: tuple[str, ...] = ()


@frozen
class MemoryType:
    """One memory type: the heap it draws from and its VkMemoryPropertyFlagBits names."""

    heap: int
    flags: tuple[str, ...] = ()


@frozen
class Memory:
    """A device's memory heaps and types, in the order vkGetPhysicalDeviceMemoryProperties lists them."""

    heaps: tuple[MemoryHeap, ...] = ()
    types: tuple[MemoryType, ...] = ()


@frozen
class QueueFamily:
    """One queue family: its index, queue count, VkQueueFlagBits names and timestamp bits."""

    index: int
    count: int
    flags: tuple[str, ...] = ()
    timestamp_valid_bits: int = 0

    @property
    def compute(self) -> bool:
        return "compute" in self.flags


@frozen
class DeviceLimits:
    """The limits the kernel suite sizes its work by."""

    max_compute_shared_memory: int = 0
    max_memory_allocation_size: int = 0
    max_push_constants_size: int = 0
    max_storage_buffer_range: int = 0
    max_workgroup_count: tuple[int, ...] = ()
    max_workgroup_invocations: int = 0
    max_workgroup_size: tuple[int, ...] = ()
    min_storage_buffer_offset_alignment: int = 0
    timestamp_compute_and_graphics: bool = False
    timestamp_period_ns: float = 0.0


@frozen
class Subgroup:
    """Subgroup properties: the size, the supported operations and the shader stages."""

    size: int
    operations: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()


@frozen
class DeviceRecord:
    """One physical device, with the same identity fields in check and kernels reports."""

    index: int
    name: str
    type: str = "other"  # discrete-gpu | integrated-gpu | virtual-gpu | cpu | other
    vendor_id: int = 0
    device_id: int = 0
    api_version: str = ""
    driver_name: str | None = None
    driver_info: str | None = None
    driver_id: int | None = None  # VkDriverId
    driver_version: str = ""
    driver_version_raw: int = 0
    conformance_version: str | None = None
    device_uuid: str | None = None
    driver_uuid: str | None = None
    pipeline_cache_uuid: str | None = None
    # "dddd:bb:dd.f" as sysfs names the PCI function, from VK_EXT_pci_bus_info; None where the
    # device does not expose it (CPU drivers, older drivers).
    pci_address: str | None = None
    driver_manifest: str | None = None  # the manifest whose driver exposes this device
    # When the mapping is ambiguous (several drivers report an identical device).
    driver_manifest_candidates: tuple[str, ...] = ()
    extensions_supported: int | None = None
    extensions: tuple[str, ...] = ()  # the supported device extensions' names (--require)
    # Supported core features as ``VkPhysicalDeviceVulkan12Features.bufferDeviceAddress``.
    features: tuple[str, ...] = ()
    memory: Memory | None = None
    device_local_bytes: int | None = None  # the largest DEVICE_LOCAL heap
    queue_families: tuple[QueueFamily, ...] = ()
    compute_family: int | None = None
    limits: DeviceLimits | None = None
    subgroup: Subgroup | None = None
    shader_float16: bool | None = None
    proc_addr: Mapping[str, Any] | None = None  # the device probe's lookup tallies (evidence)
    issues: tuple[str, ...] = _issues()

    @property
    def driver(self) -> str:
        """One line naming the driver: ``llvmpipe Mesa 22.3.6 (LLVM 15.0.6)``."""
        if self.driver_name:
            return f"{self.driver_name} {self.driver_info or ''}".strip()
        return f"driver {self.driver_version}" if self.driver_version else "unknown driver"

    @property
    def ids(self) -> str:
        """``vendor:device`` in the hex form lspci and vulkaninfo print."""
        return f"{self.vendor_id:04x}:{self.device_id:04x}"

    @property
    def is_cpu(self) -> bool:
        return self.type == "cpu"
