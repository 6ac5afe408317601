"""A correct ctypes Vulkan program: no finding expected."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vkctypes import (
    PFN_Destroy,
    PFN_GetProcAddr,
    PFN_WaitIdle,
    create_device,
    create_instance,
    first_physical_device,
    fn,
    load_loader,
)

lib, gipa = load_loader()
instance = create_instance(gipa)
device = create_device(gipa, instance, first_physical_device(gipa, instance))
gdpa = fn(gipa(instance, b"vkGetDeviceProcAddr"), PFN_GetProcAddr)
wait_idle = fn(gdpa(device, b"vkDeviceWaitIdle"), PFN_WaitIdle)
destroy_device = fn(gdpa(device, b"vkDestroyDevice"), PFN_Destroy)
destroy_instance = fn(gipa(instance, b"vkDestroyInstance"), PFN_Destroy)
assert wait_idle(device) == 0
destroy_device(device, None)
destroy_instance(instance, None)
print("ok")
