"""The one boundary between vkdoctor and Vulkan compute: its public names, in one import.

The parts live in modules of one job each (see ARCHITECTURE.md): ``binding`` (the lazily
imported ``vulkan`` cffi binding and its idioms), ``errors``, ``device`` (what a physical device
offers), ``instance``, ``context`` (a logical device and its lifetime rules), ``memory``
(buffers and staging), ``pipeline`` (shaders, pipelines, descriptor sets) and ``commands``
(submission and timing).  Callers outside ``vkdoctor.vulkan`` import from here, so the split
stays an internal matter.

Work is synchronous: every submit waits on a fence with a timeout, so a hung GPU becomes
``FenceTimeout`` instead of a hang.
"""

from __future__ import annotations

from vkdoctor.vulkan.commands import DispatchTiming, grid_1d
from vkdoctor.vulkan.context import ComputeContext
from vkdoctor.vulkan.device import DeviceInfo
from vkdoctor.vulkan.errors import (
    ComputeError,
    DeviceLost,
    FenceTimeout,
    NoComputeQueue,
    ShaderNotFound,
    UnsupportedFeature,
    VulkanError,
)
from vkdoctor.vulkan.instance import Instance, loader_version

__all__ = [
    "ComputeContext",
    "ComputeError",
    "DeviceInfo",
    "DeviceLost",
    "DispatchTiming",
    "FenceTimeout",
    "Instance",
    "NoComputeQueue",
    "ShaderNotFound",
    "UnsupportedFeature",
    "VulkanError",
    "grid_1d",
    "loader_version",
]
