"""FN-04: two devices, one global dispatch table.  vkGetDeviceProcAddr is only asked for the
first device; its pointers are then used with the second one too (harmless on one driver,
a crash with two)."""

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
pd = first_physical_device(gipa, instance)
first = create_device(gipa, instance, pd)
second = create_device(gipa, instance, pd)
gdpa = fn(gipa(instance, b"vkGetDeviceProcAddr"), PFN_GetProcAddr)
wait_idle = fn(gdpa(first, b"vkDeviceWaitIdle"), PFN_WaitIdle)  # the one global table
destroy_device = fn(gdpa(first, b"vkDestroyDevice"), PFN_Destroy)
for device in (first, second):
    assert wait_idle(device) == 0
destroy_device(second, None)
destroy_device(first, None)
fn(gipa(instance, b"vkDestroyInstance"), PFN_Destroy)(instance, None)
print("ok")
