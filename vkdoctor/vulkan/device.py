"""What a physical device offers: the plain, JSON-able ``DeviceInfo`` and how it is read.

``describe`` reads one device in named steps (base properties, the Vulkan 1.1 property chain,
the float16 and cooperative-matrix features, queue families, memory heaps); each step chains
only the structures the device's effective API version or extensions know, since chaining
unknown ones is invalid usage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field
from typing import TYPE_CHECKING, Any

from vkdoctor.loader import vkversion
from vkdoctor.record import frozen
from vkdoctor.report import codec, records
from vkdoctor.report.records import DeviceRecord
from vkdoctor.vulkan.binding import (
    DEVICE_TYPES,
    check,
    cstr,
    enumerate_checked,
    flag_names,
    link,
    pci_bus_info,
    queue_family_properties,
    uuid_hex,
)

if TYPE_CHECKING:
    from vkdoctor.vulkan.loader_choice import Binding

QUEUE_COMPUTE = 0x2
SHADER_STAGE_COMPUTE = 0x20
_SUBGROUP_BASIC = 0x1
_SUBGROUP_ARITHMETIC = 0x4
_HEAP_DEVICE_LOCAL = 0x1


@frozen
class QueueFamily:
    index: int
    flags: int
    flag_names: tuple[str, ...]
    count: int
    timestamp_valid_bits: int

    @property
    def compute(self) -> bool:
        return bool(self.flags & QUEUE_COMPUTE)


@frozen
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


@frozen
class Subgroup:
    size: int
    stages: tuple[str, ...]
    operations: tuple[str, ...]
    compute: bool  # subgroup operations usable in compute shaders
    arithmetic: bool  # subgroupAdd & co. (VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) there


@frozen
class CooperativeMatrixShape:
    """One VkCooperativeMatrixPropertiesKHR of subgroup scope: M x N x K and component types."""

    m: int
    n: int
    k: int
    a: str
    b: str
    c: str
    result: str


@frozen
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
    pci_address: str | None = None  # VK_EXT_pci_bus_info, as sysfs names the slot

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
            pci_address=self.pci_address,
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
# Reading a device

# An instance-level command, or None where the instance cannot call it (see Instance.proc).
ProcLookup = Callable[[str, str], Any]


@frozen
class _Properties2:
    """What the VkPhysicalDeviceProperties2 chain adds to the base properties."""

    subgroup: Subgroup | None = None
    driver_id: int | None = None
    driver_name: str | None = None
    driver_info: str | None = None
    device_uuid: str | None = None
    driver_uuid: str | None = None
    max_alloc: int | None = None


def device_extensions(vk: Binding, physical: Any) -> tuple[str, ...]:
    ffi = vk.ffi
    props, n = enumerate_checked(
        ffi,
        "vkEnumerateDeviceExtensionProperties",
        vk.lib.vkEnumerateDeviceExtensionProperties,
        "VkExtensionProperties",
        physical,
        ffi.NULL,
    )
    return tuple(sorted(cstr(ffi, props[i].extensionName) for i in range(n)))


def describe(
    vk: Binding, instance_api: int, proc: ProcLookup, index: int, physical: Any
) -> DeviceInfo:
    """One physical device, seen by an instance created for ``instance_api``."""
    ffi, lib = vk.ffi, vk.lib
    base = ffi.new("VkPhysicalDeviceProperties *")
    lib.vkGetPhysicalDeviceProperties(physical, base)
    api_raw = base.apiVersion
    effective = min(api_raw & ~0xFFF, instance_api & ~0xFFF)
    extensions = device_extensions(vk, physical)
    # Extended properties/features need Vulkan 1.1 (or the KHR aliases).
    props2_ext = "VK_KHR_get_physical_device_properties2"
    get_props2 = proc("vkGetPhysicalDeviceProperties2", props2_ext)
    get_feats2 = proc("vkGetPhysicalDeviceFeatures2", props2_ext)
    extra = (
        _properties2(vk, get_props2, physical, effective, extensions)
        if get_props2 is not None
        else _Properties2()
    )
    shader_float16 = get_feats2 is not None and _float16(
        vk, get_feats2, physical, effective, extensions
    )
    cooperative_matrix = (
        get_feats2 is not None
        and vkversion.at_least(effective, 1, 2)
        and "VK_KHR_cooperative_matrix" in extensions
        and shader_float16
        and _cooperative_matrix(vk, get_feats2, physical)
    )
    return DeviceInfo(
        index=index,
        name=cstr(ffi, base.deviceName),
        type=DEVICE_TYPES.get(base.deviceType, "other"),
        api_version=vkversion.to_string(api_raw),
        api_version_raw=api_raw,
        driver_version=vkversion.driver_version_string(base.vendorID, base.driverVersion),
        driver_version_raw=base.driverVersion,
        vendor_id=base.vendorID,
        device_id=base.deviceID,
        driver_id=extra.driver_id,
        driver_name=extra.driver_name,
        driver_info=extra.driver_info,
        pipeline_cache_uuid=uuid_hex(ffi, base.pipelineCacheUUID),
        device_uuid=extra.device_uuid,
        driver_uuid=extra.driver_uuid,
        limits=_limits(base.limits, extra.max_alloc),
        subgroup=extra.subgroup,
        shader_float16=shader_float16,
        queue_families=_queue_families(vk, physical),
        device_local_bytes=_device_local_bytes(vk, physical),
        extensions=extensions,
        cooperative_matrix=cooperative_matrix,
        pci_address=pci_bus_info(vk, get_props2, physical)
        if get_props2 is not None and "VK_EXT_pci_bus_info" in extensions
        else None,
    )


def _properties2(
    vk: Binding, get_props2: Any, physical: Any, effective: int, extensions: tuple[str, ...]
) -> _Properties2:
    """IDs, subgroup and maintenance-3 properties (1.1), driver properties (1.2 or the KHR)."""
    ffi = vk.ffi
    props2 = ffi.new(
        "VkPhysicalDeviceProperties2 *",
        {"sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2},
    )
    chain: list[Any] = []
    sub_p = maint3 = driver_p = id_p = None
    if vkversion.at_least(effective, 1, 1):
        id_p = ffi.new(
            "VkPhysicalDeviceIDProperties *",
            {"sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ID_PROPERTIES},
        )
        sub_p = ffi.new(
            "VkPhysicalDeviceSubgroupProperties *",
            {"sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES},
        )
        maint3 = ffi.new(
            "VkPhysicalDeviceMaintenance3Properties *",
            {"sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES},
        )
        chain += [id_p, sub_p, maint3]
    if vkversion.at_least(effective, 1, 2) or "VK_KHR_driver_properties" in extensions:
        driver_p = ffi.new(
            "VkPhysicalDeviceDriverProperties *",
            {"sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES},
        )
        chain.append(driver_p)
    link(props2, chain)
    get_props2(physical, props2)
    return _Properties2(
        subgroup=_subgroup(vk, sub_p) if sub_p is not None else None,
        driver_id=int(driver_p.driverID) if driver_p is not None else None,
        driver_name=cstr(ffi, driver_p.driverName) if driver_p is not None else None,
        driver_info=cstr(ffi, driver_p.driverInfo) if driver_p is not None else None,
        device_uuid=uuid_hex(ffi, id_p.deviceUUID) if id_p is not None else None,
        driver_uuid=uuid_hex(ffi, id_p.driverUUID) if id_p is not None else None,
        max_alloc=int(maint3.maxMemoryAllocationSize) if maint3 is not None else None,
    )


def _subgroup(vk: Binding, sub_p: Any) -> Subgroup:
    ops = sub_p.supportedOperations
    stages = sub_p.supportedStages
    compute = bool(stages & SHADER_STAGE_COMPUTE) and bool(ops & _SUBGROUP_BASIC)
    return Subgroup(
        size=sub_p.subgroupSize,
        stages=flag_names(vk, "VkShaderStageFlagBits", stages, "VK_SHADER_STAGE_", "_BIT"),
        operations=flag_names(vk, "VkSubgroupFeatureFlagBits", ops, "VK_SUBGROUP_FEATURE_", "_BIT"),
        compute=compute,
        arithmetic=compute and bool(ops & _SUBGROUP_ARITHMETIC),
    )


def _float16(
    vk: Binding, get_feats2: Any, physical: Any, effective: int, extensions: tuple[str, ...]
) -> bool:
    if not (vkversion.at_least(effective, 1, 2) or "VK_KHR_shader_float16_int8" in extensions):
        return False
    ffi = vk.ffi
    f16 = ffi.new(
        "VkPhysicalDeviceShaderFloat16Int8Features *",
        {"sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES},
    )
    feats2 = ffi.new(
        "VkPhysicalDeviceFeatures2 *",
        {"sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, "pNext": f16},
    )
    get_feats2(physical, feats2)
    return bool(f16.shaderFloat16)


def _cooperative_matrix(vk: Binding, get_feats2: Any, physical: Any) -> bool:
    """The cooperativeMatrix feature and vulkanMemoryModel, which its shaders need."""
    ffi = vk.ffi
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
    return bool(coop.cooperativeMatrix and model.vulkanMemoryModel)


def _queue_families(vk: Binding, physical: Any) -> tuple[QueueFamily, ...]:
    qprops, count = queue_family_properties(vk.ffi, vk.lib, physical)
    return tuple(
        QueueFamily(
            index=i,
            flags=qprops[i].queueFlags,
            flag_names=flag_names(vk, "VkQueueFlagBits", qprops[i].queueFlags, "VK_QUEUE_", "_BIT"),
            count=qprops[i].queueCount,
            timestamp_valid_bits=qprops[i].timestampValidBits,
        )
        for i in range(count)
    )


def _device_local_bytes(vk: Binding, physical: Any) -> int:
    """The largest DEVICE_LOCAL heap."""
    mem = vk.ffi.new("VkPhysicalDeviceMemoryProperties *")
    vk.lib.vkGetPhysicalDeviceMemoryProperties(physical, mem)
    local = [
        int(mem.memoryHeaps[i].size)
        for i in range(mem.memoryHeapCount)
        if mem.memoryHeaps[i].flags & _HEAP_DEVICE_LOCAL
    ]
    return max(local, default=0)


def _limits(lim: Any, max_alloc: int | None) -> DeviceLimits:
    return DeviceLimits(
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
    )


_COMPONENT_TYPES = {0: "f16", 1: "f32", 2: "f64", 3: "s8", 4: "s16", 5: "s32", 6: "s64"}
_COMPONENT_TYPES |= {7: "u8", 8: "u16", 9: "u32", 10: "u64"}


def cooperative_matrix_shapes(
    vk: Binding, instance: Any, physical: Any
) -> tuple[CooperativeMatrixShape, ...]:
    """The subgroup-scope shapes VK_KHR_cooperative_matrix lists (empty without the command)."""
    ffi, lib = vk.ffi, vk.lib
    name = "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR"
    ptr = lib.vkGetInstanceProcAddr(instance, name.encode())
    if ptr == ffi.NULL:
        return ()
    fn = ffi.cast("PFN_" + name, ptr)
    # Not binding.enumerate_array: every element needs its sType before the second call.
    count = ffi.new("uint32_t *")
    check(fn(physical, count, ffi.NULL), name)
    props = ffi.new("VkCooperativeMatrixPropertiesKHR[]", count[0])
    for i in range(count[0]):
        props[i].sType = vk.VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR
    check(fn(physical, count, props), name)
    names = _COMPONENT_TYPES
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
