"""Memory and buffers: the memory type a buffer lives in, storage buffers with numpy
``write``/``read``, and the staging copies for memory the host cannot map cheaply."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import numpy as np

from vkdoctor.vulkan.binding import check
from vkdoctor.vulkan.commands import (
    ACCESS_HOST_READ,
    ACCESS_SHADER,
    ACCESS_TRANSFER_WRITE,
    STAGE_COMPUTE,
    STAGE_HOST,
    STAGE_TRANSFER,
)
from vkdoctor.vulkan.errors import UnsupportedFeature

if TYPE_CHECKING:
    from vkdoctor.vulkan.context import ComputeContext

_MEM_DEVICE_LOCAL = 0x1
_MEM_HOST_VISIBLE = 0x2
_MEM_HOST_COHERENT = 0x4
_MEM_HOST_CACHED = 0x8
STAGING_CHUNK = 64 << 20


def memory_type(
    memory_types: list[tuple[int, int]], *, staging: bool, force_staging: bool
) -> tuple[int, bool]:
    """(memory type index, host-mappable) for a storage or staging buffer, from the allowed
    (index, property flags) pairs."""
    host = _MEM_HOST_VISIBLE | _MEM_HOST_COHERENT
    if staging:
        # Cached host memory reads back fast; uncached is fine for uploads.
        for want in (host | _MEM_HOST_CACHED, host):
            for i, flags in memory_types:
                if flags & want == want:
                    return i, True
        raise UnsupportedFeature("no HOST_VISIBLE|HOST_COHERENT memory type for staging")
    uma = _MEM_DEVICE_LOCAL | host | _MEM_HOST_CACHED
    for i, flags in memory_types:
        if flags & uma == uma:
            return i, not force_staging
    for i, flags in memory_types:
        if flags & _MEM_DEVICE_LOCAL and not flags & _MEM_HOST_VISIBLE:
            return i, False
    for i, flags in memory_types:
        if flags & _MEM_DEVICE_LOCAL:
            return i, False
    for i, flags in memory_types:
        if flags & host == host:
            return i, True
    raise UnsupportedFeature("no usable memory type for a storage buffer")


def allowed_memory_types(ctx: ComputeContext, type_bits: int) -> list[tuple[int, int]]:
    """(index, property flags) of the device's memory types that ``type_bits`` allows."""
    ffi, lib = ctx._vk.ffi, ctx._vk.lib
    mem = ffi.new("VkPhysicalDeviceMemoryProperties *")
    lib.vkGetPhysicalDeviceMemoryProperties(ctx.physical, mem)
    return [
        (i, mem.memoryTypes[i].propertyFlags)
        for i in range(mem.memoryTypeCount)
        if type_bits & (1 << i)
    ]


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
        check(lib.vkCreateBuffer(ctx.device, info, ffi.NULL, handle), "vkCreateBuffer")
        self.handle = handle[0]
        self.memory = None
        self._mapped: Any = None
        try:
            self._bind_memory(staging)
        except BaseException:
            self.destroy()
            raise

    def _bind_memory(self, staging: bool) -> None:
        ctx = self._ctx
        vk = ctx._vk
        ffi, lib = vk.ffi, vk.lib
        req = ffi.new("VkMemoryRequirements *")
        lib.vkGetBufferMemoryRequirements(ctx.device, self.handle, req)
        type_index, self.host_visible = memory_type(
            allowed_memory_types(ctx, req.memoryTypeBits),
            staging=staging,
            force_staging=ctx.force_staging,
        )
        alloc = ffi.new(
            "VkMemoryAllocateInfo *",
            {
                "sType": vk.VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                "allocationSize": req.size,
                "memoryTypeIndex": type_index,
            },
        )
        memory = ffi.new("VkDeviceMemory *")
        check(lib.vkAllocateMemory(ctx.device, alloc, ffi.NULL, memory), "vkAllocateMemory")
        self.memory = memory[0]
        check(
            lib.vkBindBufferMemory(ctx.device, self.handle, self.memory, 0),
            "vkBindBufferMemory",
        )
        if self.host_visible:
            ptr = ffi.new("void **")
            check(lib.vkMapMemory(ctx.device, self.memory, 0, self.nbytes, 0, ptr), "vkMapMemory")
            self._mapped = np.frombuffer(ffi.buffer(ptr[0], self.nbytes), dtype=np.uint8)

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
                free_buffer(ctx, self.handle, self.memory)
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
            staged_write(self._ctx, self, data, offset)

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
            staged_read(self._ctx, self, out.view(np.uint8), offset)
        return out


def free_buffer(ctx: ComputeContext, handle: Any, memory: Any) -> None:
    ffi, lib = ctx._vk.ffi, ctx._vk.lib
    lib.vkDestroyBuffer(ctx.device, handle, ffi.NULL)
    if memory is not None:
        lib.vkFreeMemory(ctx.device, memory, ffi.NULL)


# ---------------------------------------------------------------------------------------------
# Staging: copies through one host-mapped buffer, at most STAGING_CHUNK bytes per submit


def _staging_buffer(ctx: ComputeContext, nbytes: int) -> Buffer:
    size = min(max(nbytes, 4), STAGING_CHUNK)
    if ctx._staging is None or ctx._staging.nbytes < size:
        if ctx._staging is not None:
            ctx._staging.destroy()
        ctx._staging = Buffer(ctx, size, staging=True)
    return ctx._staging


def staged_write(ctx: ComputeContext, dst: Buffer, data: np.ndarray, offset: int) -> None:
    ctx._ensure_usable("vkCmdCopyBuffer")
    staging = _staging_buffer(ctx, data.nbytes)
    commands = ctx._commands
    ffi, lib = ctx._vk.ffi, ctx._vk.lib
    for start in range(0, data.nbytes, staging.nbytes):
        chunk = data[start : start + staging.nbytes]
        staging._mapped[: chunk.nbytes] = chunk
        region = ffi.new(
            "VkBufferCopy *",
            {"srcOffset": 0, "dstOffset": offset + start, "size": chunk.nbytes},
        )
        cmd = commands.begin()
        lib.vkCmdCopyBuffer(cmd, staging.handle, dst.handle, 1, region)
        commands.barrier(cmd, STAGE_TRANSFER, STAGE_COMPUTE, ACCESS_TRANSFER_WRITE, ACCESS_SHADER)
        ctx._submit_and_wait("vkCmdCopyBuffer", ctx.timeout_s)


def staged_read(ctx: ComputeContext, src: Buffer, out: np.ndarray, offset: int) -> None:
    ctx._ensure_usable("vkCmdCopyBuffer")
    staging = _staging_buffer(ctx, out.nbytes)
    commands = ctx._commands
    ffi, lib = ctx._vk.ffi, ctx._vk.lib
    for start in range(0, out.nbytes, staging.nbytes):
        size = min(staging.nbytes, out.nbytes - start)
        region = ffi.new(
            "VkBufferCopy *", {"srcOffset": offset + start, "dstOffset": 0, "size": size}
        )
        cmd = commands.begin()
        lib.vkCmdCopyBuffer(cmd, src.handle, staging.handle, 1, region)
        commands.barrier(cmd, STAGE_TRANSFER, STAGE_HOST, ACCESS_TRANSFER_WRITE, ACCESS_HOST_READ)
        ctx._submit_and_wait("vkCmdCopyBuffer", ctx.timeout_s)
        out[start : start + size] = staging._mapped[:size]
