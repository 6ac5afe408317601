"""The one boundary between vkdoctor and Vulkan compute: instance, devices, buffers, pipelines.

Everything goes through the ``vulkan`` PyPI binding's raw cffi objects (``vulkan.ffi`` and
``vulkan.lib``) rather than its Python wrappers, because the wrappers raise bare classes without the
VkResult (and a ``KeyError`` for results they do not know), turn VK_INCOMPLETE/VK_TIMEOUT into
exceptions, hand back one-shot generators from enumerations and refuse core names in
``vkGetInstanceProcAddr``.  Here every VkResult is checked by number and every failure becomes a
``ComputeError`` subclass that names the VkResult (``VK_ERROR_DEVICE_LOST``) and the call.

The binding is imported lazily: ``import vulkan`` dlopens libvulkan and raises OSError when it is
missing, which must become a finding, not an import error of vkdoctor.

Objects are not thread-safe; one thread drives one ``ComputeContext``.  Work is synchronous: every
submit waits on a fence with a timeout, so a hung GPU becomes ``FenceTimeout`` instead of a hang.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from vkdoctor.report import codec, records
from vkdoctor.report.records import DeviceRecord

# ---------------------------------------------------------------------------------------------
# Errors


class ComputeError(Exception):
    """Base of every error raised here; ``result`` names the VkResult when one is involved."""

    result: str | None = None


class LoaderUnavailable(ComputeError):
    """libvulkan (or the ``vulkan`` binding itself) could not be loaded."""


class VulkanError(ComputeError):
    """A Vulkan call returned an error VkResult."""

    def __init__(self, result: str, call: str, code: int | None = None) -> None:
        self.result = result
        self.call = call
        self.code = code
        super().__init__(f"{call} returned {result}")


class DeviceLost(VulkanError):
    """VK_ERROR_DEVICE_LOST: a GPU reset, watchdog, invalid access or driver bug (RUN-03)."""


class FenceTimeout(VulkanError):
    """The GPU did not finish in time (VK_TIMEOUT from vkWaitForFences): treat as a hang."""

    def __init__(self, call: str, timeout_s: float) -> None:
        super().__init__("VK_TIMEOUT", call, 2)
        self.timeout_s = timeout_s
        self.args = (f"{call} timed out after {timeout_s:g} s (VK_TIMEOUT)",)


class NoComputeQueue(ComputeError):
    """The device has no queue family with VK_QUEUE_COMPUTE_BIT (DEV-02)."""

    def __init__(self, device: str, families: Sequence[QueueFamily]) -> None:
        self.device = device
        self.families = tuple(families)
        flags = ", ".join(f"{f.index}: {'|'.join(f.flag_names) or 'none'}" for f in self.families)
        super().__init__(f"{device} has no queue family with VK_QUEUE_COMPUTE_BIT ({flags})")


class UnsupportedFeature(ComputeError):
    """A kernel needs a feature or limit the device does not offer."""


class ShaderNotFound(ComputeError):
    """A SPIR-V module is missing from the installed package."""


# ---------------------------------------------------------------------------------------------
# The binding


def load_vulkan() -> ModuleType:
    """Import the binding (dlopens libvulkan.so.1); failures become ``LoaderUnavailable``."""
    try:
        import vulkan
    except OSError as exc:
        raise LoaderUnavailable(f"libvulkan could not be loaded: {exc}") from exc
    except ImportError as exc:
        raise LoaderUnavailable(f"the 'vulkan' Python binding is unusable: {exc}") from exc
    return vulkan


_VK_SUCCESS = 0
_VK_TIMEOUT = 2
_VK_INCOMPLETE = 5
_VK_ERROR_DEVICE_LOST = -4


def _result_name(code: int) -> str:
    vk = load_vulkan()
    name = vk.ffi.typeof("VkResult").elements.get(code)
    return name or f"VkResult({code})"


def _check(code: int, call: str) -> None:
    if code == _VK_SUCCESS:
        return
    name = _result_name(code)
    if code == _VK_ERROR_DEVICE_LOST:
        raise DeviceLost(name, call, code)
    raise VulkanError(name, call, code)


def make_version(major: int, minor: int, patch: int = 0) -> int:
    return (major << 22) | (minor << 12) | patch


def version_tuple(raw: int) -> tuple[int, int, int]:
    return ((raw >> 22) & 0x7F, (raw >> 12) & 0x3FF, raw & 0xFFF)


def version_string(raw: int) -> str:
    return "{}.{}.{}".format(*version_tuple(raw))


def driver_version_string(vendor_id: int, raw: int) -> str:
    """Decode driverVersion, whose packing is vendor-specific (NVIDIA uses 10.8.8.6 bits)."""
    if vendor_id == 0x10DE:
        return f"{(raw >> 22) & 0x3FF}.{(raw >> 14) & 0xFF}.{(raw >> 6) & 0xFF}.{raw & 0x3F}"
    return version_string(raw)


def _enum_name(vk: ModuleType, enum: str, value: int) -> str | None:
    return vk.ffi.typeof(enum).elements.get(value)


def _flag_names(vk: ModuleType, enum: str, flags: int, prefix: str, suffix: str) -> tuple[str, ...]:
    names = []
    for bit, name in sorted(vk.ffi.typeof(enum).elements.items()):
        if bit and bit & (bit - 1) == 0 and flags & bit and name.endswith(suffix):
            names.append(name.removeprefix(prefix).removesuffix(suffix).lower().replace("_", "-"))
    return tuple(names)


def _cstr(vk: ModuleType, chars: Any) -> str:
    return vk.ffi.string(chars).decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------
# Device description (plain values, JSON-able)

_DEVICE_TYPES = {
    0: "other",
    1: "integrated-gpu",
    2: "discrete-gpu",
    3: "virtual-gpu",
    4: "cpu",
}
_QUEUE_COMPUTE = 0x2
_SHADER_STAGE_COMPUTE = 0x20
_SUBGROUP_BASIC = 0x1
_SUBGROUP_ARITHMETIC = 0x4
_MEM_DEVICE_LOCAL = 0x1
_MEM_HOST_VISIBLE = 0x2
_MEM_HOST_COHERENT = 0x4
_MEM_HOST_CACHED = 0x8
_HEAP_DEVICE_LOCAL = 0x1


@dataclass(frozen=True)
class QueueFamily:
    index: int
    flags: int
    flag_names: tuple[str, ...]
    count: int
    timestamp_valid_bits: int

    @property
    def compute(self) -> bool:
        return bool(self.flags & _QUEUE_COMPUTE)


@dataclass(frozen=True)
class DeviceLimits:
    timestamp_period_ns: float
    timestamp_compute_and_graphics: bool
    max_compute_shared_memory: int
    max_workgroup_invocations: int
    max_workgroup_size: tuple[int, int, int]
    max_workgroup_count: tuple[int, int, int]
    max_push_constants_size: int
    max_storage_buffer_range: int
    min_storage_buffer_offset_alignment: int
    max_memory_allocation_size: int | None  # Vulkan 1.1; None when unknown


@dataclass(frozen=True)
class Subgroup:
    size: int
    stages: tuple[str, ...]
    operations: tuple[str, ...]
    compute: bool  # subgroup operations usable in compute shaders
    arithmetic: bool  # subgroupAdd & co. (VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) there


@dataclass(frozen=True)
class CooperativeMatrixShape:
    """One VkCooperativeMatrixPropertiesKHR of subgroup scope: M x N x K and component types."""

    m: int
    n: int
    k: int
    a: str
    b: str
    c: str
    result: str


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    type: str  # cpu | integrated-gpu | discrete-gpu | virtual-gpu | other
    api_version: str
    api_version_raw: int
    driver_version: str
    driver_version_raw: int
    vendor_id: int
    device_id: int
    driver_id: int | None  # VkDriverId, Vulkan 1.2 / VK_KHR_driver_properties
    driver_name: str | None
    driver_info: str | None
    pipeline_cache_uuid: str
    device_uuid: str | None  # Vulkan 1.1 (VkPhysicalDeviceIDProperties)
    driver_uuid: str | None
    limits: DeviceLimits
    subgroup: Subgroup | None  # Vulkan 1.1
    shader_float16: bool
    queue_families: tuple[QueueFamily, ...]
    device_local_bytes: int  # the largest DEVICE_LOCAL heap
    extensions: tuple[str, ...] = field(repr=False, default=())
    # VK_KHR_cooperative_matrix usable by a shader (the feature, vulkanMemoryModel and
    # shaderFloat16 all supported), and the shapes it lists for subgroup scope.
    cooperative_matrix: bool = False

    @property
    def is_cpu(self) -> bool:
        return self.type == "cpu"

    @property
    def driver(self) -> str:
        """One line naming the driver: ``llvmpipe Mesa 22.3.6 (LLVM 15.0.6)``."""
        if self.driver_name:
            return f"{self.driver_name} {self.driver_info or ''}".strip()
        return f"driver {self.driver_version}"

    def compute_families(self) -> tuple[QueueFamily, ...]:
        return tuple(f for f in self.queue_families if f.compute)

    def to_record(self) -> DeviceRecord:
        """The device as the report's record: the same identity fields as in check reports."""
        limits = self.limits
        return DeviceRecord(
            index=self.index,
            name=self.name,
            type=self.type,
            vendor_id=self.vendor_id,
            device_id=self.device_id,
            api_version=self.api_version,
            driver_name=self.driver_name,
            driver_info=self.driver_info,
            driver_id=self.driver_id,
            driver_version=self.driver_version,
            driver_version_raw=self.driver_version_raw,
            device_uuid=self.device_uuid,
            driver_uuid=self.driver_uuid,
            pipeline_cache_uuid=self.pipeline_cache_uuid,
            device_local_bytes=self.device_local_bytes,
            queue_families=tuple(
                records.QueueFamily(f.index, f.count, f.flag_names, f.timestamp_valid_bits)
                for f in self.queue_families
            ),
            limits=records.DeviceLimits(
                max_compute_shared_memory=limits.max_compute_shared_memory,
                max_memory_allocation_size=limits.max_memory_allocation_size or 0,
                max_push_constants_size=limits.max_push_constants_size,
                max_storage_buffer_range=limits.max_storage_buffer_range,
                max_workgroup_count=limits.max_workgroup_count,
                max_workgroup_invocations=limits.max_workgroup_invocations,
                max_workgroup_size=limits.max_workgroup_size,
                min_storage_buffer_offset_alignment=limits.min_storage_buffer_offset_alignment,
                timestamp_compute_and_graphics=limits.timestamp_compute_and_graphics,
                timestamp_period_ns=limits.timestamp_period_ns,
            ),
            subgroup=records.Subgroup(
                self.subgroup.size, self.subgroup.operations, self.subgroup.stages
            )
            if self.subgroup
            else None,
            shader_float16=self.shader_float16,
        )

    def to_dict(self) -> dict[str, Any]:
        return codec.to_json(self.to_record())


# ---------------------------------------------------------------------------------------------
# Instance


def loader_version() -> tuple[int, int, int]:
    """The loader's instance version; 1.0 when vkEnumerateInstanceVersion does not exist."""
    vk = load_vulkan()
    ffi, lib = vk.ffi, vk.lib
    # A 1.0 loader lacks the entry point; vkGetInstanceProcAddr(NULL, ...) says so with NULL.
    ptr = lib.vkGetInstanceProcAddr(ffi.NULL, b"vkEnumerateInstanceVersion")
    if ptr == ffi.NULL:
        return (1, 0, 0)
    fn = ffi.cast("PFN_vkEnumerateInstanceVersion", ptr)
    out = ffi.new("uint32_t *")
    _check(fn(out), "vkEnumerateInstanceVersion")
    return version_tuple(out[0])


class Instance:
    """A VkInstance plus the physical devices it sees.  Close it last (it owns its contexts)."""

    def __init__(
        self,
        *,
        api_version: tuple[int, int] = (1, 3),
        extensions: Sequence[str] = (),
        layers: Sequence[str] = (),
        app_name: str = "vkdoctor",
    ) -> None:
        vk = load_vulkan()
        self._vk = vk
        ffi, lib = vk.ffi, vk.lib
        loader = loader_version()
        # A 1.0 loader rejects any apiVersion above 1.0 with VK_ERROR_INCOMPATIBLE_DRIVER.
        requested = (1, 0) if loader[:2] == (1, 0) else api_version
        self.api_version = make_version(*requested)
        self.loader_version = loader
        self.extensions = tuple(extensions)
        keep: list[Any] = []
        name = ffi.new("char[]", app_name.encode())
        app = ffi.new(
            "VkApplicationInfo *",
            {
                "sType": vk.VK_STRUCTURE_TYPE_APPLICATION_INFO,
                "pApplicationName": name,
                "applicationVersion": 1,
                "pEngineName": name,
                "engineVersion": 1,
                "apiVersion": self.api_version,
            },
        )
        ext_array = _string_array(ffi, extensions, keep)
        layer_array = _string_array(ffi, layers, keep)
        info = ffi.new(
            "VkInstanceCreateInfo *",
            {
                "sType": vk.VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                "pApplicationInfo": app,
                "enabledLayerCount": len(layers),
                "ppEnabledLayerNames": layer_array,
                "enabledExtensionCount": len(extensions),
                "ppEnabledExtensionNames": ext_array,
            },
        )
        handle = ffi.new("VkInstance *")
        _check(lib.vkCreateInstance(info, ffi.NULL, handle), "vkCreateInstance")
        self.handle = handle[0]
        self._contexts: weakref.WeakSet[ComputeContext] = weakref.WeakSet()
        self._leaked = False
        self._physical: list[Any] | None = None
        self._infos: tuple[DeviceInfo, ...] | None = None

    # -- lifetime

    def close(self) -> None:
        """Destroy contexts first: vkDestroyInstance unloads the drivers they still use (LIB-02)."""
        if self.handle is None:
            return
        for ctx in list(self._contexts):
            ctx.close()
            self._leaked |= ctx._leak_on_close
        if not self._leaked:
            self._vk.lib.vkDestroyInstance(self.handle, self._vk.ffi.NULL)
        # else: a device may still be executing our work; destroying the instance would unload
        # its driver under it (LIB-02), so both are left to process exit.
        self.handle = None

    def __enter__(self) -> Instance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queries

    def _proc(self, core: str, extension: str) -> Any | None:
        """A Vulkan 1.1 instance command, or its KHR alias when ``extension`` was enabled.

        Loaders hand out trampolines for extension commands whether or not the extension is
        enabled, so a non-NULL pointer alone does not make a call valid.
        """
        ffi, lib = self._vk.ffi, self._vk.lib
        if self.api_version >= make_version(1, 1):
            name = core
        elif extension in self.extensions:
            name = core + "KHR"
        else:
            return None
        ptr = lib.vkGetInstanceProcAddr(self.handle, name.encode())
        return None if ptr == ffi.NULL else ffi.cast("PFN_" + core, ptr)

    def physical_handles(self) -> list[Any]:
        if self._physical is None:
            lib = self._vk.lib
            devices, n = _enumerate(
                self._vk,
                "vkEnumeratePhysicalDevices",
                "VkPhysicalDevice",
                lib.vkEnumeratePhysicalDevices,
                self.handle,
            )
            self._physical = [devices[i] for i in range(n)]  # handle values, copied
        return self._physical

    def physical_devices(self) -> tuple[DeviceInfo, ...]:
        if self._infos is None:
            self._infos = tuple(self._describe(i, h) for i, h in enumerate(self.physical_handles()))
        return self._infos

    def find_device(self, *, cpu: bool | None = None, name_contains: str = "") -> DeviceInfo | None:
        for info in self.physical_devices():
            if cpu is not None and info.is_cpu != cpu:
                continue
            if name_contains.lower() in info.name.lower():
                return info
        return None

    def device_extensions(self, physical: Any) -> tuple[str, ...]:
        vk = self._vk
        props, n = _enumerate(
            vk,
            "vkEnumerateDeviceExtensionProperties",
            "VkExtensionProperties",
            vk.lib.vkEnumerateDeviceExtensionProperties,
            physical,
            vk.ffi.NULL,
        )
        return tuple(sorted(_cstr(vk, props[i].extensionName) for i in range(n)))

    def _describe(self, index: int, physical: Any) -> DeviceInfo:
        vk = self._vk
        ffi, lib = vk.ffi, vk.lib
        base = ffi.new("VkPhysicalDeviceProperties *")
        lib.vkGetPhysicalDeviceProperties(physical, base)
        api_raw = base.apiVersion
        effective = min(api_raw & ~0xFFF, self.api_version & ~0xFFF)
        extensions = self.device_extensions(physical)

        # Extended properties/features need Vulkan 1.1 (or the KHR aliases); chain only the
        # structures the device knows, since chaining unknown ones is invalid usage.
        props2_ext = "VK_KHR_get_physical_device_properties2"
        get_props2 = self._proc("vkGetPhysicalDeviceProperties2", props2_ext)
        get_feats2 = self._proc("vkGetPhysicalDeviceFeatures2", props2_ext)
        v11 = effective >= make_version(1, 1)
        v12 = effective >= make_version(1, 2)
        subgroup: Subgroup | None = None
        driver_id: int | None = None
        driver_name = driver_info = device_uuid = driver_uuid = None
        max_alloc: int | None = None
        if get_props2 is not None:
            props2 = ffi.new(
                "VkPhysicalDeviceProperties2 *",
                {"sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2},
            )
            chain: list[Any] = []
            sub_p = maint3 = driver_p = id_p = None
            if v11:
                id_p = ffi.new(
                    "VkPhysicalDeviceIDProperties *",
                    {"sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ID_PROPERTIES},
                )
                chain.append(id_p)
                sub_p = ffi.new(
                    "VkPhysicalDeviceSubgroupProperties *",
                    {"sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES},
                )
                maint3 = ffi.new(
                    "VkPhysicalDeviceMaintenance3Properties *",
                    {"sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES},
                )
                chain += [sub_p, maint3]
            if v12 or "VK_KHR_driver_properties" in extensions:
                driver_p = ffi.new(
                    "VkPhysicalDeviceDriverProperties *",
                    {"sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES},
                )
                chain.append(driver_p)
            _link(ffi, props2, chain)
            get_props2(physical, props2)
            if sub_p is not None:
                ops = sub_p.supportedOperations
                stages = sub_p.supportedStages
                subgroup = Subgroup(
                    size=sub_p.subgroupSize,
                    stages=_flag_names(
                        vk, "VkShaderStageFlagBits", stages, "VK_SHADER_STAGE_", "_BIT"
                    ),
                    operations=_flag_names(
                        vk, "VkSubgroupFeatureFlagBits", ops, "VK_SUBGROUP_FEATURE_", "_BIT"
                    ),
                    compute=bool(stages & _SHADER_STAGE_COMPUTE) and bool(ops & _SUBGROUP_BASIC),
                    arithmetic=bool(stages & _SHADER_STAGE_COMPUTE)
                    and bool(ops & _SUBGROUP_BASIC)
                    and bool(ops & _SUBGROUP_ARITHMETIC),
                )
            if maint3 is not None:
                max_alloc = int(maint3.maxMemoryAllocationSize)
            if id_p is not None:
                device_uuid = bytes(ffi.buffer(id_p.deviceUUID, 16)).hex()
                driver_uuid = bytes(ffi.buffer(id_p.driverUUID, 16)).hex()
            if driver_p is not None:
                driver_id = int(driver_p.driverID)
                driver_name = _cstr(vk, driver_p.driverName)
                driver_info = _cstr(vk, driver_p.driverInfo)

        shader_float16 = False
        if get_feats2 is not None and (v12 or "VK_KHR_shader_float16_int8" in extensions):
            f16 = ffi.new(
                "VkPhysicalDeviceShaderFloat16Int8Features *",
                {"sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES},
            )
            feats2 = ffi.new(
                "VkPhysicalDeviceFeatures2 *",
                {"sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, "pNext": f16},
            )
            get_feats2(physical, feats2)
            shader_float16 = bool(f16.shaderFloat16)
        cooperative_matrix = False
        if get_feats2 is not None and v12 and "VK_KHR_cooperative_matrix" in extensions:
            coop = ffi.new(
                "VkPhysicalDeviceCooperativeMatrixFeaturesKHR *",
                {"sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR},
            )
            model = ffi.new(
                "VkPhysicalDeviceVulkanMemoryModelFeatures *",
                {
                    "sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES,
                    "pNext": coop,
                },
            )
            feats2 = ffi.new(
                "VkPhysicalDeviceFeatures2 *",
                {"sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, "pNext": model},
            )
            get_feats2(physical, feats2)
            cooperative_matrix = bool(
                coop.cooperativeMatrix and model.vulkanMemoryModel and shader_float16
            )

        count = ffi.new("uint32_t *")
        lib.vkGetPhysicalDeviceQueueFamilyProperties(physical, count, ffi.NULL)
        qprops = ffi.new("VkQueueFamilyProperties[]", count[0])
        lib.vkGetPhysicalDeviceQueueFamilyProperties(physical, count, qprops)
        families = tuple(
            QueueFamily(
                index=i,
                flags=qprops[i].queueFlags,
                flag_names=_flag_names(
                    vk, "VkQueueFlagBits", qprops[i].queueFlags, "VK_QUEUE_", "_BIT"
                ),
                count=qprops[i].queueCount,
                timestamp_valid_bits=qprops[i].timestampValidBits,
            )
            for i in range(count[0])
        )

        mem = ffi.new("VkPhysicalDeviceMemoryProperties *")
        lib.vkGetPhysicalDeviceMemoryProperties(physical, mem)
        local = [
            int(mem.memoryHeaps[i].size)
            for i in range(mem.memoryHeapCount)
            if mem.memoryHeaps[i].flags & _HEAP_DEVICE_LOCAL
        ]

        lim = base.limits
        return DeviceInfo(
            index=index,
            name=_cstr(vk, base.deviceName),
            type=_DEVICE_TYPES.get(base.deviceType, "other"),
            api_version=version_string(api_raw),
            api_version_raw=api_raw,
            driver_version=driver_version_string(base.vendorID, base.driverVersion),
            driver_version_raw=base.driverVersion,
            vendor_id=base.vendorID,
            device_id=base.deviceID,
            driver_id=driver_id,
            driver_name=driver_name,
            driver_info=driver_info,
            pipeline_cache_uuid=bytes(ffi.buffer(base.pipelineCacheUUID, 16)).hex(),
            device_uuid=device_uuid,
            driver_uuid=driver_uuid,
            limits=DeviceLimits(
                timestamp_period_ns=float(lim.timestampPeriod),
                timestamp_compute_and_graphics=bool(lim.timestampComputeAndGraphics),
                max_compute_shared_memory=lim.maxComputeSharedMemorySize,
                max_workgroup_invocations=lim.maxComputeWorkGroupInvocations,
                max_workgroup_size=tuple(lim.maxComputeWorkGroupSize),  # type: ignore[arg-type]
                max_workgroup_count=tuple(lim.maxComputeWorkGroupCount),  # type: ignore[arg-type]
                max_push_constants_size=lim.maxPushConstantsSize,
                max_storage_buffer_range=lim.maxStorageBufferRange,
                min_storage_buffer_offset_alignment=int(lim.minStorageBufferOffsetAlignment),
                max_memory_allocation_size=max_alloc,
            ),
            subgroup=subgroup,
            shader_float16=shader_float16,
            queue_families=families,
            device_local_bytes=max(local, default=0),
            extensions=extensions,
            cooperative_matrix=cooperative_matrix,
        )

    def cooperative_matrix_shapes(self, device_index: int) -> tuple[CooperativeMatrixShape, ...]:
        """The subgroup-scope shapes VK_KHR_cooperative_matrix lists for a device (empty when it
        has none)."""
        vk = self._vk
        ffi, lib = vk.ffi, vk.lib
        if not self.physical_devices()[device_index].cooperative_matrix:
            return ()
        name = b"vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR"
        ptr = lib.vkGetInstanceProcAddr(self.handle, name)
        if ptr == ffi.NULL:
            return ()
        fn = ffi.cast("PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR", ptr)
        physical = self.physical_handles()[device_index]
        count = ffi.new("uint32_t *")
        _check(fn(physical, count, ffi.NULL), "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR")
        props = ffi.new("VkCooperativeMatrixPropertiesKHR[]", count[0])
        for i in range(count[0]):
            props[i].sType = vk.VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR
        _check(fn(physical, count, props), "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR")
        names = {0: "f16", 1: "f32", 2: "f64", 3: "s8", 4: "s16", 5: "s32", 6: "s64"}
        names |= {7: "u8", 8: "u16", 9: "u32", 10: "u64"}
        return tuple(
            CooperativeMatrixShape(
                m=p.MSize,
                n=p.NSize,
                k=p.KSize,
                a=names.get(p.AType, str(p.AType)),
                b=names.get(p.BType, str(p.BType)),
                c=names.get(p.CType, str(p.CType)),
                result=names.get(p.ResultType, str(p.ResultType)),
            )
            for p in props[0 : count[0]]
            if p.scope == vk.VK_SCOPE_SUBGROUP_KHR
        )

    def context(self, device_index: int = 0, **kwargs: Any) -> ComputeContext:
        return ComputeContext(self, device_index, **kwargs)


def _enumerate(vk: ModuleType, call: str, ctype: str, fn: Any, *args: Any) -> tuple[Any, int]:
    """The two-call enumeration idiom: (owning cdata array, valid count).

    Callers read the items while they hold the array: an element taken out of a cffi array
    does not keep the array alive.
    """
    ffi = vk.ffi
    count = ffi.new("uint32_t *")
    while True:
        _check(fn(*args, count, ffi.NULL), call)
        items = ffi.new(f"{ctype}[]", count[0])
        code = fn(*args, count, items)
        # VK_INCOMPLETE: the list grew between the two calls; ask again.
        if code != _VK_INCOMPLETE:
            _check(code, call)
            return items, count[0]


def _string_array(ffi: Any, strings: Sequence[str], keep: list[Any]) -> Any:
    if not strings:
        return ffi.NULL
    owned = [ffi.new("char[]", s.encode()) for s in strings]
    keep.extend(owned)
    return ffi.new("char *[]", owned)


def _link(ffi: Any, head: Any, chain: Sequence[Any]) -> None:
    """Link ``chain`` (owning struct pointers) behind ``head`` through pNext."""
    prev = head
    for item in chain:
        prev.pNext = item
        prev = item


# ---------------------------------------------------------------------------------------------
# Buffers


_serials = itertools.count(1)


class Buffer:
    """A storage buffer in device memory; ``write``/``read`` copy numpy data in and out.

    Where device-local memory is also host-visible, coherent and cached (CPU drivers, most
    integrated GPUs) it is mapped directly; otherwise transfers go through a staging buffer,
    because host-visible VRAM (ReBAR) is uncached and reading it back crawls.
    """

    def __init__(self, ctx: ComputeContext, nbytes: int, *, staging: bool = False) -> None:
        self._ctx = ctx
        self.nbytes = nbytes
        # A serial, not the handle value, identifies the buffer in caches: drivers recycle
        # handle values after vkDestroyBuffer (RUN-05).
        self.serial = next(_serials)
        vk = ctx._vk
        ffi, lib = vk.ffi, vk.lib
        usage = 0x1 | 0x2  # TRANSFER_SRC | TRANSFER_DST
        if not staging:
            usage |= 0x20  # STORAGE_BUFFER
        info = ffi.new(
            "VkBufferCreateInfo *",
            {
                "sType": vk.VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                "size": nbytes,
                "usage": usage,
                "sharingMode": 0,
            },
        )
        handle = ffi.new("VkBuffer *")
        _check(lib.vkCreateBuffer(ctx.device, info, ffi.NULL, handle), "vkCreateBuffer")
        self.handle = handle[0]
        self.memory = None
        self._mapped: Any = None
        try:
            req = ffi.new("VkMemoryRequirements *")
            lib.vkGetBufferMemoryRequirements(ctx.device, self.handle, req)
            type_index, self.host_visible = ctx._memory_type(req.memoryTypeBits, staging=staging)
            alloc = ffi.new(
                "VkMemoryAllocateInfo *",
                {
                    "sType": vk.VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                    "allocationSize": req.size,
                    "memoryTypeIndex": type_index,
                },
            )
            memory = ffi.new("VkDeviceMemory *")
            _check(lib.vkAllocateMemory(ctx.device, alloc, ffi.NULL, memory), "vkAllocateMemory")
            self.memory = memory[0]
            _check(
                lib.vkBindBufferMemory(ctx.device, self.handle, self.memory, 0),
                "vkBindBufferMemory",
            )
            if self.host_visible:
                ptr = ffi.new("void **")
                _check(lib.vkMapMemory(ctx.device, self.memory, 0, nbytes, 0, ptr), "vkMapMemory")
                self._mapped = np.frombuffer(ffi.buffer(ptr[0], nbytes), dtype=np.uint8)
        except BaseException:
            self.destroy()
            raise

    def __enter__(self) -> Buffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    @property
    def alive(self) -> bool:
        return self.handle is not None

    def destroy(self) -> None:
        if self.handle is None:
            return
        ctx = self._ctx
        self._mapped = None  # unmapped implicitly by vkFreeMemory
        if ctx.device is not None:
            if ctx._work_may_be_running:
                # After a fence timeout the device may still read or write this buffer;
                # freeing it now is a use-after-free in the driver.  Park it until the work is
                # known to be finished (wait_late, close).
                ctx._parked.append((self.handle, self.memory))
            else:
                ctx._free_buffer(self.handle, self.memory)
        self.handle = None
        self.memory = None
        ctx._buffers.discard(self)

    def write(self, array: np.ndarray, offset: int = 0) -> None:
        data = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
        if offset < 0 or offset + data.nbytes > self.nbytes:
            raise ValueError(f"write of {data.nbytes} bytes at {offset} exceeds {self.nbytes}")
        if self._mapped is not None:
            self._mapped[offset : offset + data.nbytes] = data
        else:
            self._ctx._staged_write(self, data, offset)

    def read(self, dtype: Any = np.uint8, count: int | None = None, offset: int = 0) -> np.ndarray:
        """A copy of ``count`` items of ``dtype`` starting at byte ``offset``."""
        dt = np.dtype(dtype)
        if count is None:
            count = (self.nbytes - offset) // dt.itemsize
        nbytes = count * dt.itemsize
        if offset < 0 or offset + nbytes > self.nbytes:
            raise ValueError(f"read of {nbytes} bytes at {offset} exceeds {self.nbytes}")
        out = np.empty(count, dtype=dt)
        if self._mapped is not None:
            out.view(np.uint8)[:] = self._mapped[offset : offset + nbytes]
        else:
            self._ctx._staged_read(self, out.view(np.uint8), offset)
        return out


# ---------------------------------------------------------------------------------------------
# Pipelines and dispatch


def pack_specialization(values: Mapping[int, int | float | bool]) -> tuple[bytes, tuple]:
    """Pack specialization constants as 32-bit values; returns (data, map entries)."""
    data = bytearray()
    entries = []
    for constant_id in sorted(values):
        value = values[constant_id]
        if isinstance(value, bool):
            raw = struct.pack("<I", int(value))
        elif isinstance(value, int):
            raw = struct.pack("<i" if value < 0 else "<I", value)
        else:
            raw = struct.pack("<f", float(value))
        entries.append((constant_id, len(data), 4))
        data += raw
    return bytes(data), tuple(entries)


@dataclass(eq=False)
class Pipeline:
    """A compute pipeline with its layouts.  Identity is the cache key, which includes everything
    that changes the compiled pipeline: code, binding count, push-constant size and the
    specialization constants (a key on the shader alone is the RUN-04 bug)."""

    name: str
    key: tuple
    bindings: int
    push_constant_size: int
    specialization: Mapping[int, int | float | bool]
    module: Any
    set_layout: Any
    layout: Any
    handle: Any


@dataclass(frozen=True)
class DispatchTiming:
    """Per-dispatch GPU times (empty without timestamps) and the host's submit-to-fence time."""

    gpu_ns: tuple[float, ...]
    wall_s: float
    dispatches: int  # warm-up included

    @property
    def has_gpu_time(self) -> bool:
        return bool(self.gpu_ns)


_STAGING_CHUNK = 64 << 20
_STAGE_COMPUTE = 0x800
_STAGE_TRANSFER = 0x1000
_STAGE_BOTTOM = 0x2000
_STAGE_HOST = 0x4000
_ACCESS_SHADER_READ = 0x20
_ACCESS_SHADER_WRITE = 0x40
_ACCESS_SHADER = _ACCESS_SHADER_READ | _ACCESS_SHADER_WRITE
_ACCESS_TRANSFER_READ = 0x800
_ACCESS_TRANSFER_WRITE = 0x1000
_ACCESS_HOST_READ = 0x2000
_ACCESS_HOST_WRITE = 0x4000
_MAX_SETS = 64


class ComputeContext:
    """A logical device with one compute queue, on one physical device of an ``Instance``.

    Pipelines are cached by their full key, descriptor sets by (pipeline, buffer serials); one
    command buffer, fence and query pool are reused for every submit.
    """

    def __init__(
        self,
        instance: Instance,
        device_index: int = 0,
        *,
        enable_float16: bool | None = None,
        timeout_s: float = 10.0,
        staging: bool | None = None,
        cooperative_matrix: bool = False,
    ) -> None:
        """``enable_float16``: True requires shaderFloat16, None enables it where supported.

        ``cooperative_matrix``: enable VK_KHR_cooperative_matrix (with vulkanMemoryModel and
        shaderFloat16, which its shaders need) where the device supports it.

        ``staging``: None maps memory directly only where device memory is host-cached (CPU
        drivers, most iGPUs) and stages transfers otherwise; True always stages, which lets a
        CPU driver exercise the path discrete GPUs take.
        """
        vk = instance._vk
        self._vk = vk
        ffi, lib = vk.ffi, vk.lib
        self.instance = instance
        handles = instance.physical_handles()
        if not 0 <= device_index < len(handles):
            raise ComputeError(f"no physical device {device_index} ({len(handles)} present)")
        self.physical = handles[device_index]
        self.info = instance.physical_devices()[device_index]
        self.timeout_s = timeout_s
        self.force_staging = bool(staging)
        self.device: Any = None
        self._leak_on_close = False
        self._failure: VulkanError | None = None
        self._buffers: weakref.WeakSet[Buffer] = weakref.WeakSet()
        self._parked: list[tuple[Any, Any]] = []
        self._pipelines: dict[tuple, Pipeline] = {}
        self._sets: dict[tuple, Any] = {}
        self._staging: Buffer | None = None
        self._query_pool: Any = None
        self._query_capacity = 0
        self._desc_pool: Any = None
        self._cmd_pool: Any = None
        self._fence: Any = None

        family = self._pick_family()
        self.queue_family = family.index
        self.timestamp_bits = family.timestamp_valid_bits
        if enable_float16 and not self.info.shader_float16:
            raise UnsupportedFeature(f"{self.info.name} does not support shaderFloat16")
        self.float16 = bool(self.info.shader_float16 if enable_float16 is None else enable_float16)

        keep: list[Any] = []
        priorities = ffi.new("float[]", [1.0])
        queue_info = ffi.new(
            "VkDeviceQueueCreateInfo[1]",
            [
                {
                    "sType": vk.VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                    "queueFamilyIndex": family.index,
                    "queueCount": 1,
                    "pQueuePriorities": priorities,
                }
            ],
        )
        extensions: list[str] = []
        pnext: Any = ffi.NULL
        if self.float16:
            f16 = ffi.new(
                "VkPhysicalDeviceShaderFloat16Int8Features *",
                {
                    "sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
                    "shaderFloat16": 1,
                },
            )
            keep.append(f16)
            pnext = f16
            effective = min(self.info.api_version_raw, instance.api_version) & ~0xFFF
            if effective < make_version(1, 2):
                extensions.append("VK_KHR_shader_float16_int8")
        self.cooperative_matrix = bool(cooperative_matrix and self.info.cooperative_matrix)
        if self.cooperative_matrix and self.float16:
            extensions.append("VK_KHR_cooperative_matrix")
            coop = ffi.new(
                "VkPhysicalDeviceCooperativeMatrixFeaturesKHR *",
                {
                    "sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR,
                    "pNext": pnext,
                    "cooperativeMatrix": 1,
                },
            )
            model = ffi.new(
                "VkPhysicalDeviceVulkanMemoryModelFeatures *",
                {
                    "sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES,
                    "pNext": coop,
                    "vulkanMemoryModel": 1,
                },
            )
            keep += [coop, model]
            pnext = model
        else:
            self.cooperative_matrix = False
        ext_array = _string_array(ffi, extensions, keep)
        info = ffi.new(
            "VkDeviceCreateInfo *",
            {
                "sType": vk.VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                "pNext": pnext,
                "queueCreateInfoCount": 1,
                "pQueueCreateInfos": queue_info,
                "enabledExtensionCount": len(extensions),
                "ppEnabledExtensionNames": ext_array,
            },
        )
        device = ffi.new("VkDevice *")
        _check(lib.vkCreateDevice(self.physical, info, ffi.NULL, device), "vkCreateDevice")
        self.device = device[0]
        instance._contexts.add(self)
        try:
            queue = ffi.new("VkQueue *")
            lib.vkGetDeviceQueue(self.device, family.index, 0, queue)
            self.queue = queue[0]
            self._create_command_objects()
        except BaseException:
            self.close()
            raise

    # -- setup

    def _pick_family(self) -> QueueFamily:
        compute = self.info.compute_families()
        if not compute:
            raise NoComputeQueue(self.info.name, self.info.queue_families)
        # Any compute family will do (DEV-02: never demand a dedicated one); prefer one that
        # can write timestamps, then the first.
        timed = [f for f in compute if f.timestamp_valid_bits > 0]
        return (timed or list(compute))[0]

    def _create_command_objects(self) -> None:
        vk = self._vk
        ffi, lib = vk.ffi, vk.lib
        pool_info = ffi.new(
            "VkCommandPoolCreateInfo *",
            {
                "sType": vk.VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                "flags": 0x2,  # RESET_COMMAND_BUFFER: one buffer, re-recorded per submit
                "queueFamilyIndex": self.queue_family,
            },
        )
        pool = ffi.new("VkCommandPool *")
        _check(
            lib.vkCreateCommandPool(self.device, pool_info, ffi.NULL, pool), "vkCreateCommandPool"
        )
        self._cmd_pool = pool[0]
        alloc = ffi.new(
            "VkCommandBufferAllocateInfo *",
            {
                "sType": vk.VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                "commandPool": self._cmd_pool,
                "level": 0,
                "commandBufferCount": 1,
            },
        )
        cmd = ffi.new("VkCommandBuffer[1]")
        _check(lib.vkAllocateCommandBuffers(self.device, alloc, cmd), "vkAllocateCommandBuffers")
        self._cmd = cmd[0]
        fence_info = ffi.new(
            "VkFenceCreateInfo *", {"sType": vk.VK_STRUCTURE_TYPE_FENCE_CREATE_INFO}
        )
        fence = ffi.new("VkFence *")
        _check(lib.vkCreateFence(self.device, fence_info, ffi.NULL, fence), "vkCreateFence")
        self._fence = fence[0]
        sizes = ffi.new(
            "VkDescriptorPoolSize[1]", [{"type": 7, "descriptorCount": _MAX_SETS * 8}]
        )  # 7 = STORAGE_BUFFER
        dp_info = ffi.new(
            "VkDescriptorPoolCreateInfo *",
            {
                "sType": vk.VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                "maxSets": _MAX_SETS,
                "poolSizeCount": 1,
                "pPoolSizes": sizes,
            },
        )
        dpool = ffi.new("VkDescriptorPool *")
        _check(
            lib.vkCreateDescriptorPool(self.device, dp_info, ffi.NULL, dpool),
            "vkCreateDescriptorPool",
        )
        self._desc_pool = dpool[0]

    def _memory_type(self, type_bits: int, *, staging: bool) -> tuple[int, bool]:
        """(memory type index, host-mappable) for a storage or staging buffer."""
        ffi, lib = self._vk.ffi, self._vk.lib
        mem = ffi.new("VkPhysicalDeviceMemoryProperties *")
        lib.vkGetPhysicalDeviceMemoryProperties(self.physical, mem)
        types = [
            (i, mem.memoryTypes[i].propertyFlags)
            for i in range(mem.memoryTypeCount)
            if type_bits & (1 << i)
        ]
        host = _MEM_HOST_VISIBLE | _MEM_HOST_COHERENT
        if staging:
            # Cached host memory reads back fast; uncached is fine for uploads.
            for want in (host | _MEM_HOST_CACHED, host):
                for i, flags in types:
                    if flags & want == want:
                        return i, True
            raise UnsupportedFeature("no HOST_VISIBLE|HOST_COHERENT memory type for staging")
        uma = _MEM_DEVICE_LOCAL | host | _MEM_HOST_CACHED
        for i, flags in types:
            if flags & uma == uma:
                return i, not self.force_staging
        for i, flags in types:
            if flags & _MEM_DEVICE_LOCAL and not flags & _MEM_HOST_VISIBLE:
                return i, False
        for i, flags in types:
            if flags & _MEM_DEVICE_LOCAL:
                return i, False
        for i, flags in types:
            if flags & host == host:
                return i, True
        raise UnsupportedFeature("no usable memory type for a storage buffer")

    # -- lifetime

    @property
    def _work_may_be_running(self) -> bool:
        return isinstance(self._failure, FenceTimeout)

    def _free_buffer(self, handle: Any, memory: Any) -> None:
        ffi, lib = self._vk.ffi, self._vk.lib
        lib.vkDestroyBuffer(self.device, handle, ffi.NULL)
        if memory is not None:
            lib.vkFreeMemory(self.device, memory, ffi.NULL)

    def _free_parked(self) -> None:
        parked, self._parked = self._parked, []
        for handle, memory in parked:
            self._free_buffer(handle, memory)

    def _ensure_usable(self, call: str) -> None:
        if self.device is None:
            raise ComputeError(f"{call}: the compute context is closed")
        prev = self._failure
        if prev is None:
            return
        # Re-raise the same kind of error, so callers classify later calls like the first one.
        what = f"{call} (context unusable after {prev.call})"
        if isinstance(prev, FenceTimeout):
            raise FenceTimeout(what, prev.timeout_s)
        raise type(prev)(prev.result or "VK_ERROR_UNKNOWN", what, prev.code)

    def close(self) -> None:
        """Destroy everything in reverse order of creation, device last.

        After a fence timeout the GPU may still be executing our commands; destroying objects it
        uses is undefined behaviour, so they are leaked and left to process exit.
        """
        if self.device is None:
            return
        vk = self._vk
        ffi, lib = vk.ffi, vk.lib
        if self._work_may_be_running:
            self._leak_on_close = True
        if self._leak_on_close:
            self.device = None
            self.instance._leaked = True
            self.instance._contexts.discard(self)
            return
        lib.vkDeviceWaitIdle(self.device)  # DEVICE_LOST is fine here: destruction still works
        dev = self.device
        if self._desc_pool is not None:
            lib.vkDestroyDescriptorPool(dev, self._desc_pool, ffi.NULL)
        for p in self._pipelines.values():
            lib.vkDestroyPipeline(dev, p.handle, ffi.NULL)
            lib.vkDestroyPipelineLayout(dev, p.layout, ffi.NULL)
            lib.vkDestroyDescriptorSetLayout(dev, p.set_layout, ffi.NULL)
            lib.vkDestroyShaderModule(dev, p.module, ffi.NULL)
        self._pipelines.clear()
        self._sets.clear()
        for buf in list(self._buffers):
            buf.destroy()
        if self._staging is not None:
            self._staging.destroy()
        self._free_parked()
        if self._query_pool is not None:
            lib.vkDestroyQueryPool(dev, self._query_pool, ffi.NULL)
        if self._fence is not None:
            lib.vkDestroyFence(dev, self._fence, ffi.NULL)
        if self._cmd_pool is not None:
            lib.vkDestroyCommandPool(dev, self._cmd_pool, ffi.NULL)
        lib.vkDestroyDevice(dev, ffi.NULL)
        self.device = None
        self.instance._contexts.discard(self)

    def __enter__(self) -> ComputeContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_late(self, timeout_s: float) -> bool:
        """After a ``FenceTimeout``, wait ``timeout_s`` more for the same submit.

        True means the work finished late (a slow device, not a hung one) and the context is
        usable again; False means it is still running: treat the device as hung.
        """
        if not isinstance(self._failure, FenceTimeout) or self.device is None:
            return self._failure is None and self.device is not None
        ffi, lib = self._vk.ffi, self._vk.lib
        fences = ffi.new("VkFence[1]", [self._fence])
        code = lib.vkWaitForFences(self.device, 1, fences, 1, int(timeout_s * 1e9))
        if code == _VK_TIMEOUT:
            return False
        try:
            _check(code, "vkWaitForFences (late)")
        except DeviceLost as exc:
            self._failure = exc
            return False
        self._failure = None
        self._free_parked()
        return True

    @property
    def has_timestamps(self) -> bool:
        return self.timestamp_bits > 0

    # -- buffers

    def buffer(self, nbytes: int) -> Buffer:
        """An uninitialised storage buffer of ``nbytes`` (a multiple of 4)."""
        self._ensure_usable("buffer")
        if nbytes <= 0 or nbytes % 4:
            raise ValueError(f"storage buffer size must be a positive multiple of 4, not {nbytes}")
        limit = self.info.limits.max_storage_buffer_range
        if nbytes > limit:
            raise UnsupportedFeature(
                f"{nbytes} bytes exceed maxStorageBufferRange ({limit}) of {self.info.name}"
            )
        buf = Buffer(self, nbytes)
        self._buffers.add(buf)
        return buf

    def upload(self, array: np.ndarray) -> Buffer:
        buf = self.buffer(array.nbytes)
        try:
            buf.write(array)
        except BaseException:
            buf.destroy()
            raise
        return buf

    def fill(self, buffer: Buffer, value: int = 0) -> None:
        """Fill a buffer with a 32-bit pattern on the device (vkCmdFillBuffer)."""
        self._ensure_usable("vkCmdFillBuffer")
        lib = self._vk.lib
        cmd = self._begin()
        lib.vkCmdFillBuffer(cmd, buffer.handle, 0, buffer.nbytes, value & 0xFFFFFFFF)
        self._barrier(
            cmd,
            _STAGE_TRANSFER,
            _STAGE_COMPUTE | _STAGE_HOST,
            _ACCESS_TRANSFER_WRITE,
            _ACCESS_SHADER | _ACCESS_HOST_READ,
        )
        self._submit_and_wait("vkCmdFillBuffer", self.timeout_s)

    def _staging_buffer(self, nbytes: int) -> Buffer:
        size = min(max(nbytes, 4), _STAGING_CHUNK)
        if self._staging is None or self._staging.nbytes < size:
            if self._staging is not None:
                self._staging.destroy()
            self._staging = Buffer(self, size, staging=True)
        return self._staging

    def _staged_write(self, dst: Buffer, data: np.ndarray, offset: int) -> None:
        self._ensure_usable("vkCmdCopyBuffer")
        staging = self._staging_buffer(data.nbytes)
        ffi, lib = self._vk.ffi, self._vk.lib
        for start in range(0, data.nbytes, staging.nbytes):
            chunk = data[start : start + staging.nbytes]
            staging._mapped[: chunk.nbytes] = chunk
            region = ffi.new(
                "VkBufferCopy *",
                {"srcOffset": 0, "dstOffset": offset + start, "size": chunk.nbytes},
            )
            cmd = self._begin()
            lib.vkCmdCopyBuffer(cmd, staging.handle, dst.handle, 1, region)
            self._barrier(
                cmd, _STAGE_TRANSFER, _STAGE_COMPUTE, _ACCESS_TRANSFER_WRITE, _ACCESS_SHADER
            )
            self._submit_and_wait("vkCmdCopyBuffer", self.timeout_s)

    def _staged_read(self, src: Buffer, out: np.ndarray, offset: int) -> None:
        self._ensure_usable("vkCmdCopyBuffer")
        staging = self._staging_buffer(out.nbytes)
        ffi, lib = self._vk.ffi, self._vk.lib
        for start in range(0, out.nbytes, staging.nbytes):
            size = min(staging.nbytes, out.nbytes - start)
            region = ffi.new(
                "VkBufferCopy *", {"srcOffset": offset + start, "dstOffset": 0, "size": size}
            )
            cmd = self._begin()
            lib.vkCmdCopyBuffer(cmd, src.handle, staging.handle, 1, region)
            self._barrier(
                cmd, _STAGE_TRANSFER, _STAGE_HOST, _ACCESS_TRANSFER_WRITE, _ACCESS_HOST_READ
            )
            self._submit_and_wait("vkCmdCopyBuffer", self.timeout_s)
            out[start : start + size] = staging._mapped[:size]

    # -- pipelines

    def pipeline(
        self,
        spirv: bytes,
        *,
        bindings: int,
        push_constant_size: int = 0,
        specialization: Mapping[int, int | float | bool] | None = None,
        name: str = "",
    ) -> Pipeline:
        """A compute pipeline for ``spirv`` with ``bindings`` storage buffers at set 0.

        Cached under the full key; asking again with other specialization constants or another
        push-constant size builds another pipeline.
        """
        self._ensure_usable("vkCreateComputePipelines")
        if len(spirv) % 4 or len(spirv) < 20 or spirv[:4] != b"\x03\x02\x23\x07":
            raise ComputeError(f"{name or 'shader'}: not a SPIR-V module ({len(spirv)} bytes)")
        if push_constant_size % 4 or push_constant_size > self.info.limits.max_push_constants_size:
            raise UnsupportedFeature(
                f"push-constant size {push_constant_size} is not a multiple of 4 or exceeds "
                f"maxPushConstantsSize ({self.info.limits.max_push_constants_size})"
            )
        spec = dict(specialization or {})
        spec_data, spec_entries = pack_specialization(spec)
        key = (
            hashlib.sha256(spirv).hexdigest(),
            bindings,
            push_constant_size,
            spec_data,
            spec_entries,
        )
        cached = self._pipelines.get(key)
        if cached is not None:
            return cached

        vk = self._vk
        ffi, lib = vk.ffi, vk.lib
        dev = self.device
        code = ffi.new("uint32_t[]", len(spirv) // 4)
        ffi.memmove(code, spirv, len(spirv))
        module_info = ffi.new(
            "VkShaderModuleCreateInfo *",
            {
                "sType": vk.VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                "codeSize": len(spirv),
                "pCode": code,
            },
        )
        module = ffi.new("VkShaderModule *")
        _check(lib.vkCreateShaderModule(dev, module_info, ffi.NULL, module), "vkCreateShaderModule")
        created: list[tuple[str, Any]] = [("module", module[0])]
        try:
            binding_info = ffi.new(
                "VkDescriptorSetLayoutBinding[]",
                [
                    {
                        "binding": i,
                        "descriptorType": 7,  # STORAGE_BUFFER
                        "descriptorCount": 1,
                        "stageFlags": _SHADER_STAGE_COMPUTE,
                    }
                    for i in range(bindings)
                ],
            )
            set_info = ffi.new(
                "VkDescriptorSetLayoutCreateInfo *",
                {
                    "sType": vk.VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                    "bindingCount": bindings,
                    "pBindings": binding_info,
                },
            )
            set_layout = ffi.new("VkDescriptorSetLayout *")
            _check(
                lib.vkCreateDescriptorSetLayout(dev, set_info, ffi.NULL, set_layout),
                "vkCreateDescriptorSetLayout",
            )
            created.append(("set_layout", set_layout[0]))
            ranges = ffi.new(
                "VkPushConstantRange[1]",
                [{"stageFlags": _SHADER_STAGE_COMPUTE, "offset": 0, "size": push_constant_size}],
            )
            layout_info = ffi.new(
                "VkPipelineLayoutCreateInfo *",
                {
                    "sType": vk.VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                    "setLayoutCount": 1,
                    "pSetLayouts": set_layout,
                    "pushConstantRangeCount": 1 if push_constant_size else 0,
                    "pPushConstantRanges": ranges if push_constant_size else ffi.NULL,
                },
            )
            layout = ffi.new("VkPipelineLayout *")
            _check(
                lib.vkCreatePipelineLayout(dev, layout_info, ffi.NULL, layout),
                "vkCreatePipelineLayout",
            )
            created.append(("layout", layout[0]))
            spec_info: Any = ffi.NULL
            if spec_entries:
                entries = ffi.new(
                    "VkSpecializationMapEntry[]",
                    [{"constantID": c, "offset": o, "size": s} for c, o, s in spec_entries],
                )
                blob = ffi.new("char[]", spec_data)
                spec_info = ffi.new(
                    "VkSpecializationInfo *",
                    {
                        "mapEntryCount": len(spec_entries),
                        "pMapEntries": entries,
                        "dataSize": len(spec_data),
                        "pData": blob,
                    },
                )
            entry = ffi.new("char[]", b"main")
            create = ffi.new(
                "VkComputePipelineCreateInfo *",
                {
                    "sType": vk.VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
                    "stage": {
                        "sType": vk.VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                        "stage": _SHADER_STAGE_COMPUTE,
                        "module": module[0],
                        "pName": entry,
                        "pSpecializationInfo": spec_info,
                    },
                    "layout": layout[0],
                    "basePipelineIndex": -1,
                },
            )
            handle = ffi.new("VkPipeline *")
            _check(
                lib.vkCreateComputePipelines(dev, ffi.NULL, 1, create, ffi.NULL, handle),
                "vkCreateComputePipelines",
            )
        except BaseException:
            destroy = {
                "module": lib.vkDestroyShaderModule,
                "set_layout": lib.vkDestroyDescriptorSetLayout,
                "layout": lib.vkDestroyPipelineLayout,
            }
            for kind, obj in reversed(created):
                destroy[kind](dev, obj, ffi.NULL)
            raise
        pipe = Pipeline(
            name=name,
            key=key,
            bindings=bindings,
            push_constant_size=push_constant_size,
            specialization=spec,
            module=module[0],
            set_layout=set_layout[0],
            layout=layout[0],
            handle=handle[0],
        )
        self._pipelines[key] = pipe
        return pipe

    def _descriptor_set(self, pipeline: Pipeline, buffers: Sequence[Buffer]) -> Any:
        key = (pipeline.key, tuple(b.serial for b in buffers))
        found = self._sets.get(key)
        if found is not None:
            return found
        vk = self._vk
        ffi, lib = vk.ffi, vk.lib
        if len(self._sets) >= _MAX_SETS:
            # Nothing is in flight between submits, so recycling the whole pool is safe.
            _check(
                lib.vkResetDescriptorPool(self.device, self._desc_pool, 0), "vkResetDescriptorPool"
            )
            self._sets.clear()
        layouts = ffi.new("VkDescriptorSetLayout[1]", [pipeline.set_layout])
        alloc = ffi.new(
            "VkDescriptorSetAllocateInfo *",
            {
                "sType": vk.VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                "descriptorPool": self._desc_pool,
                "descriptorSetCount": 1,
                "pSetLayouts": layouts,
            },
        )
        out = ffi.new("VkDescriptorSet[1]")
        _check(lib.vkAllocateDescriptorSets(self.device, alloc, out), "vkAllocateDescriptorSets")
        infos = ffi.new(
            "VkDescriptorBufferInfo[]",
            [{"buffer": b.handle, "offset": 0, "range": b.nbytes} for b in buffers],
        )
        writes = ffi.new(
            "VkWriteDescriptorSet[]",
            [
                {
                    "sType": vk.VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                    "dstSet": out[0],
                    "dstBinding": i,
                    "descriptorCount": 1,
                    "descriptorType": 7,
                    "pBufferInfo": infos + i,
                }
                for i in range(len(buffers))
            ],
        )
        lib.vkUpdateDescriptorSets(self.device, len(buffers), writes, 0, ffi.NULL)
        self._sets[key] = out[0]
        return out[0]

    def _queries(self, count: int) -> Any:
        if count <= self._query_capacity:
            return self._query_pool
        vk = self._vk
        ffi, lib = vk.ffi, vk.lib
        if self._query_pool is not None:
            lib.vkDestroyQueryPool(self.device, self._query_pool, ffi.NULL)
            self._query_pool = None
        capacity = max(count, 64)
        info = ffi.new(
            "VkQueryPoolCreateInfo *",
            {
                "sType": vk.VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                "queryType": 2,  # TIMESTAMP
                "queryCount": capacity,
            },
        )
        pool = ffi.new("VkQueryPool *")
        _check(lib.vkCreateQueryPool(self.device, info, ffi.NULL, pool), "vkCreateQueryPool")
        self._query_pool = pool[0]
        self._query_capacity = capacity
        return self._query_pool

    # -- submission

    def _begin(self) -> Any:
        vk = self._vk
        ffi, lib = vk.ffi, vk.lib
        _check(lib.vkResetCommandBuffer(self._cmd, 0), "vkResetCommandBuffer")
        begin = ffi.new(
            "VkCommandBufferBeginInfo *",
            {"sType": vk.VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO, "flags": 0x1},
        )
        _check(lib.vkBeginCommandBuffer(self._cmd, begin), "vkBeginCommandBuffer")
        return self._cmd

    def _barrier(self, cmd: Any, src_stage: int, dst_stage: int, src: int, dst: int) -> None:
        vk = self._vk
        barrier = vk.ffi.new(
            "VkMemoryBarrier *",
            {
                "sType": vk.VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                "srcAccessMask": src,
                "dstAccessMask": dst,
            },
        )
        vk.lib.vkCmdPipelineBarrier(
            cmd, src_stage, dst_stage, 0, 1, barrier, 0, vk.ffi.NULL, 0, vk.ffi.NULL
        )

    def _submit_and_wait(self, what: str, timeout_s: float) -> float:
        """End, submit and wait for the command buffer; returns the host-side seconds."""
        vk = self._vk
        ffi, lib = vk.ffi, vk.lib
        _check(lib.vkEndCommandBuffer(self._cmd), "vkEndCommandBuffer")
        cmds = ffi.new("VkCommandBuffer[1]", [self._cmd])
        submit = ffi.new(
            "VkSubmitInfo *",
            {
                "sType": vk.VK_STRUCTURE_TYPE_SUBMIT_INFO,
                "commandBufferCount": 1,
                "pCommandBuffers": cmds,
            },
        )
        fences = ffi.new("VkFence[1]", [self._fence])
        _check(lib.vkResetFences(self.device, 1, fences), "vkResetFences")
        start = time.perf_counter()
        try:
            _check(lib.vkQueueSubmit(self.queue, 1, submit, self._fence), f"vkQueueSubmit ({what})")
            code = lib.vkWaitForFences(self.device, 1, fences, 1, int(timeout_s * 1e9))
            if code == _VK_TIMEOUT:
                raise FenceTimeout(f"vkWaitForFences ({what})", timeout_s)
            _check(code, f"vkWaitForFences ({what})")
        except (DeviceLost, FenceTimeout) as exc:
            self._failure = exc  # the context is unusable from here on
            raise
        return time.perf_counter() - start

    def dispatch(
        self,
        pipeline: Pipeline,
        buffers: Sequence[Buffer],
        groups: tuple[int, int, int],
        push_constants: bytes = b"",
        *,
        repeat: int = 1,
        warmup: int = 0,
        timeout_s: float | None = None,
    ) -> DispatchTiming:
        """Run ``warmup + repeat`` back-to-back dispatches in one submit and time each measured one.

        A barrier separates the dispatches so each timestamp pair brackets exactly one dispatch.
        Push constants are recorded for every submit, never inherited from a cached pipeline.
        """
        self._ensure_usable("vkCmdDispatch")
        if repeat < 1 or warmup < 0:
            raise ValueError(f"repeat must be >= 1 and warmup >= 0, not {repeat}, {warmup}")
        if len(buffers) != pipeline.bindings:
            raise ValueError(f"{pipeline.name}: {pipeline.bindings} bindings, {len(buffers)} given")
        if len(push_constants) != pipeline.push_constant_size:
            raise ValueError(
                f"{pipeline.name}: push constants are {len(push_constants)} bytes, "
                f"layout says {pipeline.push_constant_size}"
            )
        max_count = self.info.limits.max_workgroup_count
        if any(g < 1 or g > m for g, m in zip(groups, max_count, strict=True)):
            raise UnsupportedFeature(
                f"dispatch {groups} exceeds maxComputeWorkGroupCount {max_count}"
            )
        for b in buffers:
            if not b.alive:
                raise ValueError(f"{pipeline.name}: buffer {b.serial} was destroyed")
        vk = self._vk
        ffi, lib = vk.ffi, vk.lib
        desc = self._descriptor_set(pipeline, buffers)
        timed = self.has_timestamps
        nqueries = 2 * repeat
        pool = self._queries(nqueries) if timed else None
        cmd = self._begin()
        if timed:
            lib.vkCmdResetQueryPool(cmd, pool, 0, nqueries)
        lib.vkCmdBindPipeline(cmd, 1, pipeline.handle)  # 1 = COMPUTE
        sets = ffi.new("VkDescriptorSet[1]", [desc])
        lib.vkCmdBindDescriptorSets(cmd, 1, pipeline.layout, 0, 1, sets, 0, ffi.NULL)
        if push_constants:
            data = ffi.new("char[]", push_constants)
            lib.vkCmdPushConstants(
                cmd, pipeline.layout, _SHADER_STAGE_COMPUTE, 0, len(push_constants), data
            )
        # Host writes to mapped buffers and earlier transfers must be visible to the shader.
        self._barrier(
            cmd,
            _STAGE_HOST | _STAGE_TRANSFER,
            _STAGE_COMPUTE,
            _ACCESS_HOST_WRITE | _ACCESS_TRANSFER_WRITE,
            _ACCESS_SHADER,
        )
        # BOTTOM_OF_PIPE for both stamps: the first is written once earlier work has drained,
        # the second once the dispatch has finished, so the pair never under-measures.
        total = warmup + repeat
        for i in range(total):
            measured = i - warmup
            if timed and measured >= 0:
                lib.vkCmdWriteTimestamp(cmd, _STAGE_BOTTOM, pool, 2 * measured)
            lib.vkCmdDispatch(cmd, *groups)
            if timed and measured >= 0:
                lib.vkCmdWriteTimestamp(cmd, _STAGE_BOTTOM, pool, 2 * measured + 1)
            if i < total - 1:
                # Back-to-back dispatches must not overlap, or each stamp pair mis-measures.
                self._barrier(cmd, _STAGE_COMPUTE, _STAGE_COMPUTE, _ACCESS_SHADER, _ACCESS_SHADER)
        self._barrier(
            cmd,
            _STAGE_COMPUTE,
            _STAGE_COMPUTE | _STAGE_TRANSFER | _STAGE_HOST,
            _ACCESS_SHADER_WRITE,
            _ACCESS_SHADER | _ACCESS_TRANSFER_READ | _ACCESS_HOST_READ,
        )
        wall = self._submit_and_wait(pipeline.name or "dispatch", timeout_s or self.timeout_s)
        gpu: tuple[float, ...] = ()
        if timed:
            stamps = ffi.new("uint64_t[]", nqueries)
            code = lib.vkGetQueryPoolResults(
                self.device,
                pool,
                0,
                nqueries,
                nqueries * 8,
                stamps,
                8,
                0x1 | 0x2,  # 64 | WAIT
            )
            _check(code, "vkGetQueryPoolResults")
            mask = (1 << self.timestamp_bits) - 1 if self.timestamp_bits < 64 else (1 << 64) - 1
            period = self.info.limits.timestamp_period_ns
            # Subtracting modulo the valid bits survives a counter that wraps mid-run.
            gpu = tuple(
                ((stamps[2 * i + 1] - stamps[2 * i]) & mask) * period for i in range(repeat)
            )
        return DispatchTiming(gpu_ns=gpu, wall_s=wall, dispatches=warmup + repeat)


def grid_1d(groups: int, max_count: Sequence[int]) -> tuple[int, int, int]:
    """Spread ``groups`` workgroups over x and y so neither exceeds the device's limits.

    Shaders index with ``gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x`` and
    bounds-check, because the x*y product may overshoot.
    """
    if groups <= max_count[0]:
        return (max(groups, 1), 1, 1)
    y = -(-groups // max_count[0])
    x = -(-groups // y)
    if y > max_count[1]:
        raise UnsupportedFeature(f"{groups} workgroups exceed maxComputeWorkGroupCount")
    return (x, y, 1)
