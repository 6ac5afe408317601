"""``ComputeContext``: a logical device with one compute queue, and the lifetime rules that keep
a hung or lost GPU from turning into a use-after-free in its driver.

The context owns the parts the other modules define (``commands.Commands``,
``pipeline.DescriptorSets`` and the pipeline cache, ``memory.Buffer``) and is the one place that
decides when they may be destroyed.  Objects are not thread-safe; one thread drives one context.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from vkdoctor.loader import vkversion
from vkdoctor.vulkan.binding import VK_TIMEOUT, check, string_array
from vkdoctor.vulkan.commands import (
    ACCESS_HOST_READ,
    ACCESS_SHADER,
    ACCESS_TRANSFER_WRITE,
    STAGE_COMPUTE,
    STAGE_HOST,
    STAGE_TRANSFER,
    Commands,
    DispatchTiming,
)
from vkdoctor.vulkan.device import QueueFamily
from vkdoctor.vulkan.errors import (
    ComputeError,
    DeviceLost,
    FenceTimeout,
    NoComputeQueue,
    UnsupportedFeature,
    VulkanError,
)
from vkdoctor.vulkan.memory import Buffer, free_buffer
from vkdoctor.vulkan.pipeline import (
    DescriptorSets,
    Pipeline,
    PipelineSpec,
    create_pipeline,
    destroy_pipeline,
)

if TYPE_CHECKING:
    from vkdoctor.vulkan.instance import Instance
    from vkdoctor.vulkan.loader_choice import Binding


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
        self._staging: Buffer | None = None
        self._commands: Commands | None = None
        self._sets: DescriptorSets | None = None

        family = self._pick_family()
        self.queue_family = family.index
        self.timestamp_bits = family.timestamp_valid_bits
        if enable_float16 and not self.info.shader_float16:
            raise UnsupportedFeature(f"{self.info.name} does not support shaderFloat16")
        self.float16 = bool(self.info.shader_float16 if enable_float16 is None else enable_float16)
        self.cooperative_matrix = bool(
            cooperative_matrix and self.info.cooperative_matrix and self.float16
        )
        effective = min(self.info.api_version_raw, instance.api_version) & ~0xFFF
        self.device = _create_device(
            vk, self.physical, family, effective, self.float16, self.cooperative_matrix
        )
        instance._contexts.add(self)
        try:
            queue = vk.ffi.new("VkQueue *")
            vk.lib.vkGetDeviceQueue(self.device, family.index, 0, queue)
            self.queue = queue[0]
            self._commands = Commands(vk, self.device, self.queue, family.index)
            self._sets = DescriptorSets(vk, self.device)
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

    # -- lifetime

    @property
    def _work_may_be_running(self) -> bool:
        return isinstance(self._failure, FenceTimeout)

    def _free_parked(self) -> None:
        parked, self._parked = self._parked, []
        for handle, memory in parked:
            free_buffer(self, handle, memory)

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

    def _submit_and_wait(self, what: str, timeout_s: float) -> float:
        """Submit the recorded commands; a lost device or a timeout makes the context unusable."""
        assert self._commands is not None
        try:
            return self._commands.submit_and_wait(what, timeout_s)
        except (DeviceLost, FenceTimeout) as exc:
            self._failure = exc  # the context is unusable from here on
            raise

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
        if self._sets is not None:
            self._sets.destroy()
        for p in self._pipelines.values():
            destroy_pipeline(vk, dev, p)
        self._pipelines.clear()
        for buf in list(self._buffers):
            buf.destroy()
        if self._staging is not None:
            self._staging.destroy()
        self._free_parked()
        if self._commands is not None:
            self._commands.destroy()
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
        assert self._commands is not None
        code = self._commands.wait_again(timeout_s)
        if code == VK_TIMEOUT:
            return False
        try:
            check(code, "vkWaitForFences (late)")
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
        commands = self._commands
        assert commands is not None
        cmd = commands.begin()
        self._vk.lib.vkCmdFillBuffer(cmd, buffer.handle, 0, buffer.nbytes, value & 0xFFFFFFFF)
        commands.barrier(
            cmd,
            STAGE_TRANSFER,
            STAGE_COMPUTE | STAGE_HOST,
            ACCESS_TRANSFER_WRITE,
            ACCESS_SHADER | ACCESS_HOST_READ,
        )
        self._submit_and_wait("vkCmdFillBuffer", self.timeout_s)

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
        spec = PipelineSpec.build(
            spirv,
            bindings=bindings,
            push_constant_size=push_constant_size,
            specialization=specialization,
            name=name,
        )
        if push_constant_size % 4 or push_constant_size > self.info.limits.max_push_constants_size:
            raise UnsupportedFeature(
                f"push-constant size {push_constant_size} is not a multiple of 4 or exceeds "
                f"maxPushConstantsSize ({self.info.limits.max_push_constants_size})"
            )
        key = spec.key
        cached = self._pipelines.get(key)
        if cached is None:
            cached = self._pipelines[key] = create_pipeline(self._vk, self.device, spec)
        return cached

    # -- dispatch

    def _check_dispatch(
        self,
        pipeline: Pipeline,
        buffers: Sequence[Buffer],
        groups: tuple[int, int, int],
        push_constants: bytes,
        repeat: int,
        warmup: int,
    ) -> None:
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
        self._check_dispatch(pipeline, buffers, groups, push_constants, repeat, warmup)
        commands, sets = self._commands, self._sets
        assert commands is not None and sets is not None
        desc = sets.get(pipeline, buffers)
        pool = commands.queries(2 * repeat) if self.has_timestamps else None
        commands.record_dispatch(pipeline, desc, groups, push_constants, repeat, warmup, pool)
        wall = self._submit_and_wait(pipeline.name or "dispatch", timeout_s or self.timeout_s)
        gpu: tuple[float, ...] = ()
        if pool is not None:
            gpu = commands.intervals_ns(
                pool, repeat, self.timestamp_bits, self.info.limits.timestamp_period_ns
            )
        return DispatchTiming(gpu_ns=gpu, wall_s=wall, dispatches=warmup + repeat)


def _create_device(
    vk: Binding,
    physical: Any,
    family: QueueFamily,
    effective_api: int,
    float16: bool,
    cooperative_matrix: bool,
) -> Any:
    """vkCreateDevice with one compute queue and the features a context enables."""
    ffi = vk.ffi
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
    extensions, pnext = _feature_chain(vk, effective_api, float16, cooperative_matrix, keep)
    ext_array = string_array(ffi, extensions, keep)
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
    check(vk.lib.vkCreateDevice(physical, info, ffi.NULL, device), "vkCreateDevice")
    return device[0]


def _feature_chain(
    vk: Binding, effective_api: int, float16: bool, cooperative_matrix: bool, keep: list[Any]
) -> tuple[list[str], Any]:
    """(device extensions, pNext chain) for float16 and cooperative matrices; ``keep`` holds
    the structures until vkCreateDevice returns."""
    ffi = vk.ffi
    extensions: list[str] = []
    pnext: Any = ffi.NULL
    if float16:
        f16 = ffi.new(
            "VkPhysicalDeviceShaderFloat16Int8Features *",
            {
                "sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
                "shaderFloat16": 1,
            },
        )
        keep.append(f16)
        pnext = f16
        if not vkversion.at_least(effective_api, 1, 2):
            extensions.append("VK_KHR_shader_float16_int8")
    if cooperative_matrix:
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
    return extensions, pnext
