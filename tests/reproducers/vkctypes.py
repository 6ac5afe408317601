"""ctypes scaffolding for the Python reproducers of ``vkdoctor trace``.

Loads libvulkan the correct way (only vkGetInstanceProcAddr from the library, declared with
restype/argtypes so pointers are not truncated) and creates instances and devices; each
reproducer then breaks one rule.
"""

from __future__ import annotations

import ctypes
from ctypes import CFUNCTYPE, POINTER, Structure, c_char_p, c_float, c_int32, c_uint32, c_void_p

VK_SUCCESS = 0
API_1_1 = (1 << 22) | (1 << 12)


class VkApplicationInfo(Structure):
    _fields_ = [
        ("sType", c_int32),
        ("pNext", c_void_p),
        ("pApplicationName", c_char_p),
        ("applicationVersion", c_uint32),
        ("pEngineName", c_char_p),
        ("engineVersion", c_uint32),
        ("apiVersion", c_uint32),
    ]


class VkInstanceCreateInfo(Structure):
    _fields_ = [
        ("sType", c_int32),
        ("pNext", c_void_p),
        ("flags", c_uint32),
        ("pApplicationInfo", POINTER(VkApplicationInfo)),
        ("enabledLayerCount", c_uint32),
        ("ppEnabledLayerNames", c_void_p),
        ("enabledExtensionCount", c_uint32),
        ("ppEnabledExtensionNames", c_void_p),
    ]


class VkDeviceQueueCreateInfo(Structure):
    _fields_ = [
        ("sType", c_int32),
        ("pNext", c_void_p),
        ("flags", c_uint32),
        ("queueFamilyIndex", c_uint32),
        ("queueCount", c_uint32),
        ("pQueuePriorities", POINTER(c_float)),
    ]


class VkDeviceCreateInfo(Structure):
    _fields_ = [
        ("sType", c_int32),
        ("pNext", c_void_p),
        ("flags", c_uint32),
        ("queueCreateInfoCount", c_uint32),
        ("pQueueCreateInfos", POINTER(VkDeviceQueueCreateInfo)),
        ("enabledLayerCount", c_uint32),
        ("ppEnabledLayerNames", c_void_p),
        ("enabledExtensionCount", c_uint32),
        ("ppEnabledExtensionNames", c_void_p),
        ("pEnabledFeatures", c_void_p),
    ]


PFN_GetProcAddr = CFUNCTYPE(c_void_p, c_void_p, c_char_p)
PFN_CreateInstance = CFUNCTYPE(c_int32, POINTER(VkInstanceCreateInfo), c_void_p, POINTER(c_void_p))
PFN_EnumeratePhysicalDevices = CFUNCTYPE(c_int32, c_void_p, POINTER(c_uint32), POINTER(c_void_p))
PFN_CreateDevice = CFUNCTYPE(
    c_int32, c_void_p, POINTER(VkDeviceCreateInfo), c_void_p, POINTER(c_void_p)
)
PFN_Destroy = CFUNCTYPE(None, c_void_p, c_void_p)
PFN_WaitIdle = CFUNCTYPE(c_int32, c_void_p)


def load_loader():
    lib = ctypes.CDLL("libvulkan.so.1")
    gipa = lib.vkGetInstanceProcAddr
    gipa.restype = c_void_p
    gipa.argtypes = [c_void_p, c_char_p]
    return lib, gipa


def fn(address, prototype):
    if not address:
        raise SystemExit(f"reproducer: NULL function pointer for {prototype}")
    return prototype(address)


def create_instance(gipa) -> int:
    create = fn(gipa(None, b"vkCreateInstance"), PFN_CreateInstance)
    app = VkApplicationInfo(0, None, b"pyrepro", 1, None, 0, API_1_1)
    info = VkInstanceCreateInfo(1, None, 0, ctypes.pointer(app), 0, None, 0, None)
    instance = c_void_p()
    res = create(ctypes.byref(info), None, ctypes.byref(instance))
    if res != VK_SUCCESS:
        raise SystemExit(f"reproducer: vkCreateInstance {res}")
    return instance.value


def first_physical_device(gipa, instance: int) -> int:
    enumerate_pds = fn(gipa(instance, b"vkEnumeratePhysicalDevices"), PFN_EnumeratePhysicalDevices)
    count = c_uint32(1)
    pd = c_void_p()
    enumerate_pds(instance, ctypes.byref(count), ctypes.byref(pd))
    if not pd.value:
        raise SystemExit("reproducer: no physical device")
    return pd.value


def create_device(gipa, instance: int, pd: int) -> int:
    create = fn(gipa(instance, b"vkCreateDevice"), PFN_CreateDevice)
    priority = c_float(1.0)
    queue = VkDeviceQueueCreateInfo(2, None, 0, 0, 1, ctypes.pointer(priority))
    info = VkDeviceCreateInfo(3, None, 0, 1, ctypes.pointer(queue), 0, None, 0, None, None)
    device = c_void_p()
    res = create(pd, ctypes.byref(info), None, ctypes.byref(device))
    if res != VK_SUCCESS:
        raise SystemExit(f"reproducer: vkCreateDevice {res}")
    return device.value
