"""A Vulkan program that asks vkGetInstanceProcAddr about the commands named on its command line.

It loads libvulkan.so.1 the way every program does (the ``vulkan`` binding's dlopen, so
LD_LIBRARY_PATH decides which loader it gets), creates an instance at API 1.3 with no layer or
extension requested, and prints one JSON object: for each name whether
vkGetInstanceProcAddr(NULL, name) and vkGetInstanceProcAddr(instance, name) are non-NULL, and
the loader files mapped.  Tests compare its answers through the real loader and a fault loader
or layer, independently of vkdoctor.
"""

from __future__ import annotations

import json
import sys


def main(names: list[str]) -> int:
    import vulkan as vk

    ffi, lib = vk.ffi, vk.lib
    app = ffi.new(
        "VkApplicationInfo *",
        {"sType": vk.VK_STRUCTURE_TYPE_APPLICATION_INFO, "apiVersion": vk.VK_MAKE_VERSION(1, 3, 0)},
    )
    info = ffi.new(
        "VkInstanceCreateInfo *",
        {"sType": vk.VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, "pApplicationInfo": app},
    )
    handle = ffi.new("VkInstance *")
    result = lib.vkCreateInstance(info, ffi.NULL, handle)
    if result != 0:
        print(json.dumps({"create": result}))
        return 1
    gipa = lib.vkGetInstanceProcAddr
    answers = {
        "create": result,
        "null": {n: gipa(ffi.NULL, n.encode()) != ffi.NULL for n in names},
        "instance": {n: gipa(handle[0], n.encode()) != ffi.NULL for n in names},
    }
    with open("/proc/self/maps") as maps:
        answers["loaders"] = sorted({ln.split()[-1] for ln in maps if "/libvulkan.so" in ln})
    lib.vkDestroyInstance(handle[0], ffi.NULL)
    print(json.dumps(answers))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
