"""Device groups (Vulkan 1.1, vkEnumeratePhysicalDeviceGroups) and, for a group of two or more
devices, the peer-memory features between them, in the instance probe's child.

Peer-memory features are a device-level query: vkGetDeviceGroupPeerMemoryFeatures needs a
VkDevice created over the whole group (VkDeviceGroupDeviceCreateInfo), so a group of one -- what
every driver without linked GPUs reports, lavapipe included -- creates nothing and costs one call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# VkPeerMemoryFeatureFlagBits, in the registry's order.
PEER_MEMORY_FEATURES = {0x1: "copy-src", 0x2: "copy-dst", 0x4: "generic-src", 0x8: "generic-dst"}


def device_groups(session: Any, handles: Sequence[Any]) -> dict[str, Any]:
    """``{"result": VkResult, "groups": [{devices, subset_allocation, peer_memory?}]}``; each
    group's ``devices`` are indices into vkEnumeratePhysicalDevices' order."""
    ffi, lib, vk = session.ffi, session.lib, session.vk
    session.emit.crumb("vkEnumeratePhysicalDeviceGroups")
    count = ffi.new("uint32_t *")
    code = lib.vkEnumeratePhysicalDeviceGroups(session.instance, count, ffi.NULL)
    if code < 0:
        return {"result": code, "groups": []}
    n = count[0]
    props = ffi.new("VkPhysicalDeviceGroupProperties[]", max(n, 1))
    for i in range(n):
        props[i].sType = vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_GROUP_PROPERTIES
    code = lib.vkEnumeratePhysicalDeviceGroups(session.instance, count, props)
    if code < 0:
        return {"result": code, "groups": []}
    # Handles are compared by value: the same VkPhysicalDevice as vkEnumeratePhysicalDevices'.
    index_of = {int(ffi.cast("uintptr_t", h)): i for i, h in enumerate(handles)}
    groups = []
    for g in range(count[0]):
        members = [props[g].physicalDevices[i] for i in range(props[g].physicalDeviceCount)]
        group: dict[str, Any] = {
            "devices": [index_of.get(int(ffi.cast("uintptr_t", m))) for m in members],
            "subset_allocation": bool(props[g].subsetAllocation),
        }
        if len(members) > 1:
            group["peer_memory"] = _peer_memory(session, members)
        groups.append(group)
    return {"result": code, "groups": groups}


def _peer_memory(session: Any, members: Sequence[Any]) -> dict[str, Any]:
    """Per heap, per ordered pair (local, remote) of the group's device indices, the flags
    vkGetDeviceGroupPeerMemoryFeatures reports."""
    ffi, lib, vk = session.ffi, session.lib, session.vk
    keep: list[Any] = []
    array = ffi.new("VkPhysicalDevice[]", list(members))
    group_info = ffi.new(
        "VkDeviceGroupDeviceCreateInfo *",
        {
            "sType": vk.VK_STRUCTURE_TYPE_DEVICE_GROUP_DEVICE_CREATE_INFO,
            "physicalDeviceCount": len(members),
            "pPhysicalDevices": array,
        },
    )
    priority = ffi.new("float *", 1.0)
    queue = ffi.new(
        "VkDeviceQueueCreateInfo *",
        {
            "sType": vk.VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
            "queueFamilyIndex": 0,  # every device has family 0; any queue will do for a query
            "queueCount": 1,
            "pQueuePriorities": priority,
        },
    )
    info = ffi.new(
        "VkDeviceCreateInfo *",
        {
            "sType": vk.VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
            "pNext": group_info,
            "queueCreateInfoCount": 1,
            "pQueueCreateInfos": queue,
        },
    )
    keep += [array, group_info, priority, queue, info]
    memory = ffi.new("VkPhysicalDeviceMemoryProperties *")
    lib.vkGetPhysicalDeviceMemoryProperties(members[0], memory)
    handle = ffi.new("VkDevice *")
    session.emit.crumb(f"vkCreateDevice(device group of {len(members)})")
    code = lib.vkCreateDevice(members[0], info, ffi.NULL, handle)
    if code != 0:
        return {"create_result": code, "heaps": []}
    device = handle[0]
    flags = ffi.new("VkPeerMemoryFeatureFlags *")
    heaps = []
    for heap in range(memory.memoryHeapCount):
        pairs = []
        for local in range(len(members)):
            for remote in range(len(members)):
                if local == remote:
                    continue
                session.emit.crumb(f"vkGetDeviceGroupPeerMemoryFeatures(heap {heap})")
                lib.vkGetDeviceGroupPeerMemoryFeatures(device, heap, local, remote, flags)
                pairs.append(
                    {
                        "local": local,
                        "remote": remote,
                        "features": [n for b, n in PEER_MEMORY_FEATURES.items() if flags[0] & b],
                    }
                )
        heaps.append({"heap": heap, "pairs": pairs})
    session.emit.crumb("vkDestroyDevice")
    lib.vkDestroyDevice(device, ffi.NULL)
    return {"create_result": code, "heaps": heaps}
