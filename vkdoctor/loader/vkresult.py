"""VkResult names and what they usually mean when the loader returns them (no binding import:
the parent process never loads libvulkan)."""

from __future__ import annotations

from vkdoctor.loader.search import Version
from vkdoctor.loader.versions import Behaviour, has

NAMES = {
    0: "VK_SUCCESS",
    1: "VK_NOT_READY",
    2: "VK_TIMEOUT",
    3: "VK_EVENT_SET",
    4: "VK_EVENT_RESET",
    5: "VK_INCOMPLETE",
    -1: "VK_ERROR_OUT_OF_HOST_MEMORY",
    -2: "VK_ERROR_OUT_OF_DEVICE_MEMORY",
    -3: "VK_ERROR_INITIALIZATION_FAILED",
    -4: "VK_ERROR_DEVICE_LOST",
    -5: "VK_ERROR_MEMORY_MAP_FAILED",
    -6: "VK_ERROR_LAYER_NOT_PRESENT",
    -7: "VK_ERROR_EXTENSION_NOT_PRESENT",
    -8: "VK_ERROR_FEATURE_NOT_PRESENT",
    -9: "VK_ERROR_INCOMPATIBLE_DRIVER",
    -10: "VK_ERROR_TOO_MANY_OBJECTS",
    -11: "VK_ERROR_FORMAT_NOT_SUPPORTED",
    -12: "VK_ERROR_FRAGMENTED_POOL",
    -13: "VK_ERROR_UNKNOWN",
    -1000069000: "VK_ERROR_OUT_OF_POOL_MEMORY",
    -1000072003: "VK_ERROR_INVALID_EXTERNAL_HANDLE",
    -1000161000: "VK_ERROR_FRAGMENTATION",
    -1000257000: "VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS",
}
_MEANING = {
    -9: "the loader found no usable driver ('Found no drivers!')",
    -6: "a requested layer is not installed",
    -7: "a requested instance extension is not available",
    -3: "a driver failed to initialise (kernel driver, device access)",
    -4: "the GPU was lost (reset, hang or driver fault)",
}


def result_name(code: int | None) -> str:
    if code is None:
        return "no result"
    return NAMES.get(code, f"VkResult {code}")


def explain_result(
    code: int, loader_version: Version | None = None, malformed: list[str] | None = None
) -> str:
    """What a VkResult from vkCreateInstance usually means; ``malformed`` lists manifests that
    are not valid JSON (the real cause of OUT_OF_HOST_MEMORY on loaders before 1.3.268)."""
    if code == -1 and not has(Behaviour.MALFORMED_MANIFEST_SKIPPED, loader_version):
        if malformed:
            return f"this loader reports the malformed manifest {', '.join(malformed)} this way"
        return (
            "on loaders before 1.3.268 this usually means a malformed manifest JSON, not a lack "
            "of memory"
        )
    return _MEANING.get(code, "see the loader messages in the evidence")
