"""The errors of the compute boundary: every failure is a ``ComputeError`` that names the VkResult
(``VK_ERROR_DEVICE_LOST``) and the call, so callers classify without parsing messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vkdoctor.vulkan.device import QueueFamily


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
