"""Pipelines and shaders: SPIR-V modules, layouts and compute pipelines under their full cache
key, and the descriptor sets that bind storage buffers to them."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vkdoctor.record import frozen
from vkdoctor.vulkan.binding import check
from vkdoctor.vulkan.device import SHADER_STAGE_COMPUTE
from vkdoctor.vulkan.errors import ComputeError

if TYPE_CHECKING:
    from vkdoctor.vulkan.loader_choice import Binding
    from vkdoctor.vulkan.memory import Buffer

_STORAGE_BUFFER = 7  # VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
MAX_SETS = 64
_SPIRV_MAGIC = b"\x03\x02\x23\x07"


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


@frozen
class PipelineSpec:
    """Everything that changes the compiled pipeline, and so its cache key (a key on the shader
    alone is the RUN-04 bug)."""

    name: str
    spirv: bytes
    bindings: int
    push_constant_size: int
    specialization: Mapping[int, int | float | bool]

    @classmethod
    def build(
        cls,
        spirv: bytes,
        *,
        bindings: int,
        push_constant_size: int,
        specialization: Mapping[int, int | float | bool] | None,
        name: str,
    ) -> PipelineSpec:
        if len(spirv) % 4 or len(spirv) < 20 or spirv[:4] != _SPIRV_MAGIC:
            raise ComputeError(f"{name or 'shader'}: not a SPIR-V module ({len(spirv)} bytes)")
        return cls(name, spirv, bindings, push_constant_size, dict(specialization or {}))

    @property
    def packed(self) -> tuple[bytes, tuple]:
        return pack_specialization(self.specialization)

    @property
    def key(self) -> tuple:
        data, entries = self.packed
        digest = hashlib.sha256(self.spirv).hexdigest()
        return (digest, self.bindings, self.push_constant_size, data, entries)


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


def create_pipeline(vk: Binding, device: Any, spec: PipelineSpec) -> Pipeline:
    """Shader module, set layout, pipeline layout and pipeline; on failure the ones made so far
    are destroyed before the error propagates."""
    ffi, lib = vk.ffi, vk.lib
    created: list[tuple[Any, Any]] = []
    try:
        module = _shader_module(vk, device, spec.spirv)
        created.append((lib.vkDestroyShaderModule, module))
        set_layout = _set_layout(vk, device, spec.bindings)
        created.append((lib.vkDestroyDescriptorSetLayout, set_layout))
        layout = _pipeline_layout(vk, device, set_layout, spec.push_constant_size)
        created.append((lib.vkDestroyPipelineLayout, layout))
        handle = _compute_pipeline(vk, device, module, layout, spec)
    except BaseException:
        for destroy, obj in reversed(created):
            destroy(device, obj, ffi.NULL)
        raise
    return Pipeline(
        name=spec.name,
        key=spec.key,
        bindings=spec.bindings,
        push_constant_size=spec.push_constant_size,
        specialization=spec.specialization,
        module=module,
        set_layout=set_layout,
        layout=layout,
        handle=handle,
    )


def destroy_pipeline(vk: Binding, device: Any, pipe: Pipeline) -> None:
    ffi, lib = vk.ffi, vk.lib
    lib.vkDestroyPipeline(device, pipe.handle, ffi.NULL)
    lib.vkDestroyPipelineLayout(device, pipe.layout, ffi.NULL)
    lib.vkDestroyDescriptorSetLayout(device, pipe.set_layout, ffi.NULL)
    lib.vkDestroyShaderModule(device, pipe.module, ffi.NULL)


def _shader_module(vk: Binding, device: Any, spirv: bytes) -> Any:
    ffi = vk.ffi
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
    check(
        vk.lib.vkCreateShaderModule(device, module_info, ffi.NULL, module), "vkCreateShaderModule"
    )
    return module[0]


def _set_layout(vk: Binding, device: Any, bindings: int) -> Any:
    """Set 0: ``bindings`` storage buffers, visible to the compute stage."""
    ffi = vk.ffi
    binding_info = ffi.new(
        "VkDescriptorSetLayoutBinding[]",
        [
            {
                "binding": i,
                "descriptorType": _STORAGE_BUFFER,
                "descriptorCount": 1,
                "stageFlags": SHADER_STAGE_COMPUTE,
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
    check(
        vk.lib.vkCreateDescriptorSetLayout(device, set_info, ffi.NULL, set_layout),
        "vkCreateDescriptorSetLayout",
    )
    return set_layout[0]


def _pipeline_layout(vk: Binding, device: Any, set_layout: Any, push_constant_size: int) -> Any:
    ffi = vk.ffi
    set_layouts = ffi.new("VkDescriptorSetLayout[1]", [set_layout])
    ranges = ffi.new(
        "VkPushConstantRange[1]",
        [{"stageFlags": SHADER_STAGE_COMPUTE, "offset": 0, "size": push_constant_size}],
    )
    layout_info = ffi.new(
        "VkPipelineLayoutCreateInfo *",
        {
            "sType": vk.VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
            "setLayoutCount": 1,
            "pSetLayouts": set_layouts,
            "pushConstantRangeCount": 1 if push_constant_size else 0,
            "pPushConstantRanges": ranges if push_constant_size else ffi.NULL,
        },
    )
    layout = ffi.new("VkPipelineLayout *")
    check(
        vk.lib.vkCreatePipelineLayout(device, layout_info, ffi.NULL, layout),
        "vkCreatePipelineLayout",
    )
    return layout[0]


def _compute_pipeline(
    vk: Binding, device: Any, module: Any, layout: Any, spec: PipelineSpec
) -> Any:
    ffi = vk.ffi
    keep: list[Any] = []  # the specialization data must outlive the create call
    spec_data, spec_entries = spec.packed
    spec_info: Any = ffi.NULL
    if spec_entries:
        entries = ffi.new(
            "VkSpecializationMapEntry[]",
            [{"constantID": c, "offset": o, "size": s} for c, o, s in spec_entries],
        )
        blob = ffi.new("char[]", spec_data)
        keep += [entries, blob]
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
                "stage": SHADER_STAGE_COMPUTE,
                "module": module,
                "pName": entry,
                "pSpecializationInfo": spec_info,
            },
            "layout": layout,
            "basePipelineIndex": -1,
        },
    )
    handle = ffi.new("VkPipeline *")
    check(
        vk.lib.vkCreateComputePipelines(device, ffi.NULL, 1, create, ffi.NULL, handle),
        "vkCreateComputePipelines",
    )
    return handle[0]


class DescriptorSets:
    """One descriptor pool and the sets allocated from it, cached by (pipeline, buffer serials).

    The pool is reset whole once it holds ``MAX_SETS``: nothing is in flight between submits.
    """

    def __init__(self, vk: Binding, device: Any) -> None:
        self._vk = vk
        self.device = device
        self._sets: dict[tuple, Any] = {}
        ffi = vk.ffi
        sizes = ffi.new(
            "VkDescriptorPoolSize[1]",
            [{"type": _STORAGE_BUFFER, "descriptorCount": MAX_SETS * 8}],
        )
        dp_info = ffi.new(
            "VkDescriptorPoolCreateInfo *",
            {
                "sType": vk.VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                "maxSets": MAX_SETS,
                "poolSizeCount": 1,
                "pPoolSizes": sizes,
            },
        )
        dpool = ffi.new("VkDescriptorPool *")
        check(
            vk.lib.vkCreateDescriptorPool(device, dp_info, ffi.NULL, dpool),
            "vkCreateDescriptorPool",
        )
        self._pool = dpool[0]

    def destroy(self) -> None:
        self._vk.lib.vkDestroyDescriptorPool(self.device, self._pool, self._vk.ffi.NULL)
        self._sets.clear()

    def get(self, pipeline: Pipeline, buffers: Sequence[Buffer]) -> Any:
        key = (pipeline.key, tuple(b.serial for b in buffers))
        found = self._sets.get(key)
        if found is not None:
            return found
        vk = self._vk
        ffi, lib = vk.ffi, vk.lib
        if len(self._sets) >= MAX_SETS:
            check(lib.vkResetDescriptorPool(self.device, self._pool, 0), "vkResetDescriptorPool")
            self._sets.clear()
        layouts = ffi.new("VkDescriptorSetLayout[1]", [pipeline.set_layout])
        alloc = ffi.new(
            "VkDescriptorSetAllocateInfo *",
            {
                "sType": vk.VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                "descriptorPool": self._pool,
                "descriptorSetCount": 1,
                "pSetLayouts": layouts,
            },
        )
        out = ffi.new("VkDescriptorSet[1]")
        check(lib.vkAllocateDescriptorSets(self.device, alloc, out), "vkAllocateDescriptorSets")
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
                    "descriptorType": _STORAGE_BUFFER,
                    "pBufferInfo": infos + i,
                }
                for i in range(len(buffers))
            ],
        )
        lib.vkUpdateDescriptorSets(self.device, len(buffers), writes, 0, ffi.NULL)
        self._sets[key] = out[0]
        return out[0]
