"""Device commands fetched with vkGetInstanceProcAddr: every call goes through the loader's
trampoline instead of straight to the driver."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vkctypes import (
    PFN_Destroy,
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
wait_idle = fn(gipa(instance, b"vkDeviceWaitIdle"), PFN_WaitIdle)
destroy_device = fn(gipa(instance, b"vkDestroyDevice"), PFN_Destroy)
for _ in range(3):
    assert wait_idle(device) == 0
destroy_device(device, None)
fn(gipa(instance, b"vkDestroyInstance"), PFN_Destroy)(instance, None)
print("ok")
