"""Command submission and timing: one command buffer, fence and timestamp query pool per
context, re-recorded for every submit; every wait has a timeout, so a hung GPU becomes
``FenceTimeout`` instead of a hang."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vkdoctor.record import frozen
from vkdoctor.vulkan.binding import VK_TIMEOUT, check
from vkdoctor.vulkan.device import SHADER_STAGE_COMPUTE
from vkdoctor.vulkan.errors import FenceTimeout, UnsupportedFeature

if TYPE_CHECKING:
    from vkdoctor.vulkan.loader_choice import Binding
    from vkdoctor.vulkan.pipeline import Pipeline

STAGE_COMPUTE = 0x800
STAGE_TRANSFER = 0x1000
STAGE_BOTTOM = 0x2000
STAGE_HOST = 0x4000
ACCESS_SHADER_READ = 0x20
ACCESS_SHADER_WRITE = 0x40
ACCESS_SHADER = ACCESS_SHADER_READ | ACCESS_SHADER_WRITE
ACCESS_TRANSFER_READ = 0x800
ACCESS_TRANSFER_WRITE = 0x1000
ACCESS_HOST_READ = 0x2000
ACCESS_HOST_WRITE = 0x4000


@frozen
class DispatchTiming:
    """Per-dispatch GPU times (empty without timestamps) and the host's submit-to-fence time."""

    gpu_ns: tuple[float, ...]
    wall_s: float
    dispatches: int  # warm-up included

    @property
    def has_gpu_time(self) -> bool:
        return bool(self.gpu_ns)


class Commands:
    """The command pool with its one resettable command buffer, the fence and the query pool.

    Built in the constructor; a failure part-way destroys what was made before raising, so the
    owner never holds half of it.
    """

    def __init__(self, vk: Binding, device: Any, queue: Any, family: int) -> None:
        self._vk = vk
        self.device = device
        self.queue = queue
        self._pool: Any = None
        self._fence: Any = None
        self._query_pool: Any = None
        self._query_capacity = 0
        try:
            self._pool, self.cmd = self._create_buffer(family)
            self._fence = self._create_fence()
        except BaseException:
            self.destroy()
            raise

    def _create_buffer(self, family: int) -> tuple[Any, Any]:
        vk = self._vk
        ffi, lib = vk.ffi, vk.lib
        pool_info = ffi.new(
            "VkCommandPoolCreateInfo *",
            {
                "sType": vk.VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                "flags": 0x2,  # RESET_COMMAND_BUFFER: one buffer, re-recorded per submit
                "queueFamilyIndex": family,
            },
        )
        pool = ffi.new("VkCommandPool *")
        check(
            lib.vkCreateCommandPool(self.device, pool_info, ffi.NULL, pool), "vkCreateCommandPool"
        )
        self._pool = pool[0]
        alloc = ffi.new(
            "VkCommandBufferAllocateInfo *",
            {
                "sType": vk.VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                "commandPool": pool[0],
                "level": 0,
                "commandBufferCount": 1,
            },
        )
        cmd = ffi.new("VkCommandBuffer[1]")
        check(lib.vkAllocateCommandBuffers(self.device, alloc, cmd), "vkAllocateCommandBuffers")
        return pool[0], cmd[0]

    def _create_fence(self) -> Any:
        vk = self._vk
        ffi = vk.ffi
        fence_info = ffi.new(
            "VkFenceCreateInfo *", {"sType": vk.VK_STRUCTURE_TYPE_FENCE_CREATE_INFO}
        )
        fence = ffi.new("VkFence *")
        check(vk.lib.vkCreateFence(self.device, fence_info, ffi.NULL, fence), "vkCreateFence")
        return fence[0]

    def destroy(self) -> None:
        ffi, lib = self._vk.ffi, self._vk.lib
        if self._query_pool is not None:
            lib.vkDestroyQueryPool(self.device, self._query_pool, ffi.NULL)
            self._query_pool = None
        if self._fence is not None:
            lib.vkDestroyFence(self.device, self._fence, ffi.NULL)
            self._fence = None
        if self._pool is not None:
            lib.vkDestroyCommandPool(self.device, self._pool, ffi.NULL)
            self._pool = None

    # -- recording

    def begin(self) -> Any:
        vk = self._vk
        ffi, lib = vk.ffi, vk.lib
        check(lib.vkResetCommandBuffer(self.cmd, 0), "vkResetCommandBuffer")
        begin = ffi.new(
            "VkCommandBufferBeginInfo *",
            {"sType": vk.VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO, "flags": 0x1},
        )
        check(lib.vkBeginCommandBuffer(self.cmd, begin), "vkBeginCommandBuffer")
        return self.cmd

    def barrier(self, cmd: Any, src_stage: int, dst_stage: int, src: int, dst: int) -> None:
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

    def record_dispatch(
        self,
        pipeline: Pipeline,
        descriptor_set: Any,
        groups: tuple[int, int, int],
        push_constants: bytes,
        repeat: int,
        warmup: int,
        pool: Any | None,
    ) -> None:
        """Record ``warmup + repeat`` back-to-back dispatches; with a query ``pool``, a timestamp
        pair around each measured one."""
        ffi, lib = self._vk.ffi, self._vk.lib
        timed = pool is not None
        cmd = self.begin()
        if timed:
            lib.vkCmdResetQueryPool(cmd, pool, 0, 2 * repeat)
        lib.vkCmdBindPipeline(cmd, 1, pipeline.handle)  # 1 = COMPUTE
        desc_sets = ffi.new("VkDescriptorSet[1]", [descriptor_set])
        lib.vkCmdBindDescriptorSets(cmd, 1, pipeline.layout, 0, 1, desc_sets, 0, ffi.NULL)
        if push_constants:
            data = ffi.new("char[]", push_constants)
            lib.vkCmdPushConstants(
                cmd, pipeline.layout, SHADER_STAGE_COMPUTE, 0, len(push_constants), data
            )
        # Host writes to mapped buffers and earlier transfers must be visible to the shader.
        self.barrier(
            cmd,
            STAGE_HOST | STAGE_TRANSFER,
            STAGE_COMPUTE,
            ACCESS_HOST_WRITE | ACCESS_TRANSFER_WRITE,
            ACCESS_SHADER,
        )
        # BOTTOM_OF_PIPE for both stamps: the first is written once earlier work has drained,
        # the second once the dispatch has finished, so the pair never under-measures.
        total = warmup + repeat
        for i in range(total):
            measured = i - warmup
            if timed and measured >= 0:
                lib.vkCmdWriteTimestamp(cmd, STAGE_BOTTOM, pool, 2 * measured)
            lib.vkCmdDispatch(cmd, *groups)
            if timed and measured >= 0:
                lib.vkCmdWriteTimestamp(cmd, STAGE_BOTTOM, pool, 2 * measured + 1)
            if i < total - 1:
                # Back-to-back dispatches must not overlap, or each stamp pair mis-measures.
                self.barrier(cmd, STAGE_COMPUTE, STAGE_COMPUTE, ACCESS_SHADER, ACCESS_SHADER)
        self.barrier(
            cmd,
            STAGE_COMPUTE,
            STAGE_COMPUTE | STAGE_TRANSFER | STAGE_HOST,
            ACCESS_SHADER_WRITE,
            ACCESS_SHADER | ACCESS_TRANSFER_READ | ACCESS_HOST_READ,
        )

    # -- submission

    def submit_and_wait(self, what: str, timeout_s: float) -> float:
        """End, submit and wait for the command buffer; returns the host-side seconds.

        ``DeviceLost`` and ``FenceTimeout`` leave the owner's context unusable; it records them.
        """
        vk = self._vk
        ffi, lib = vk.ffi, vk.lib
        check(lib.vkEndCommandBuffer(self.cmd), "vkEndCommandBuffer")
        cmds = ffi.new("VkCommandBuffer[1]", [self.cmd])
        submit = ffi.new(
            "VkSubmitInfo *",
            {
                "sType": vk.VK_STRUCTURE_TYPE_SUBMIT_INFO,
                "commandBufferCount": 1,
                "pCommandBuffers": cmds,
            },
        )
        fences = ffi.new("VkFence[1]", [self._fence])
        check(lib.vkResetFences(self.device, 1, fences), "vkResetFences")
        start = time.perf_counter()
        check(lib.vkQueueSubmit(self.queue, 1, submit, self._fence), f"vkQueueSubmit ({what})")
        code = lib.vkWaitForFences(self.device, 1, fences, 1, int(timeout_s * 1e9))
        if code == VK_TIMEOUT:
            raise FenceTimeout(f"vkWaitForFences ({what})", timeout_s)
        check(code, f"vkWaitForFences ({what})")
        return time.perf_counter() - start

    def wait_again(self, timeout_s: float) -> int:
        """Wait once more for the last submit's fence; returns the VkResult."""
        ffi, lib = self._vk.ffi, self._vk.lib
        fences = ffi.new("VkFence[1]", [self._fence])
        return lib.vkWaitForFences(self.device, 1, fences, 1, int(timeout_s * 1e9))

    # -- timestamps

    def queries(self, count: int) -> Any:
        """A timestamp query pool of at least ``count`` queries (grown, never shrunk)."""
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
        check(lib.vkCreateQueryPool(self.device, info, ffi.NULL, pool), "vkCreateQueryPool")
        self._query_pool = pool[0]
        self._query_capacity = capacity
        return self._query_pool

    def intervals_ns(self, pool: Any, pairs: int, bits: int, period_ns: float) -> tuple[float, ...]:
        """The ``pairs`` (start, end) timestamp pairs of ``pool`` as nanoseconds each."""
        ffi = self._vk.ffi
        nqueries = 2 * pairs
        stamps = ffi.new("uint64_t[]", nqueries)
        code = self._vk.lib.vkGetQueryPoolResults(
            self.device,
            pool,
            0,
            nqueries,
            nqueries * 8,
            stamps,
            8,
            0x1 | 0x2,  # 64 | WAIT
        )
        check(code, "vkGetQueryPoolResults")
        mask = (1 << bits) - 1 if bits < 64 else (1 << 64) - 1
        # Subtracting modulo the valid bits survives a counter that wraps mid-run.
        return tuple(((stamps[2 * i + 1] - stamps[2 * i]) & mask) * period_ns for i in range(pairs))


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
