"""Packed Vulkan versions (VK_MAKE_API_VERSION) and the vendor-specific driverVersion.

One place for the bit layout, used by the parent (registry, trace rules) and by the children
(tasks/, vulkan/); no imports, so a child pays nothing for it.  The variant (top 3 bits) is
dropped: no loader or driver vkdoctor meets uses one other than 0.
"""

from __future__ import annotations

NVIDIA = 0x10DE


def make(major: int, minor: int, patch: int = 0) -> int:
    """VK_MAKE_API_VERSION(0, major, minor, patch)."""
    return (major << 22) | (minor << 12) | patch


def decode(packed: int) -> tuple[int, int, int]:
    """(major, minor, patch) of a packed version."""
    return ((packed >> 22) & 0x7F, (packed >> 12) & 0x3FF, packed & 0xFFF)


def to_string(packed: int) -> str:
    """``1.3.239`` for a packed version."""
    return "{}.{}.{}".format(*decode(packed))


def at_least(packed: int, major: int, minor: int) -> bool:
    """Whether a packed version is ``major.minor`` or later, whatever its patch."""
    return packed >= make(major, minor)


def driver_version_string(vendor_id: int, packed: int) -> str:
    """Decode driverVersion, whose packing is vendor-specific (NVIDIA uses 10.8.8.6 bits)."""
    if vendor_id == NVIDIA:
        return f"{(packed >> 22) & 0x3FF}.{(packed >> 14) & 0xFF}.{(packed >> 6) & 0xFF}.{packed & 0x3F}"
    return to_string(packed)
