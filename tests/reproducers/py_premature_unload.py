"""Premature unload from Python: libvulkan is dlclose'd (ctypes' _ctypes.dlclose) while an
instance lives and a function pointer taken from it is still called: SIGSEGV."""

import _ctypes
import ctypes
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vkctypes import PFN_EnumeratePhysicalDevices, create_instance, fn, load_loader

lib, gipa = load_loader()
instance = create_instance(gipa)
enumerate_pds = fn(gipa(instance, b"vkEnumeratePhysicalDevices"), PFN_EnumeratePhysicalDevices)
_ctypes.dlclose(lib._handle)  # the bug: the library goes away, the pointer stays
count = ctypes.c_uint32(0)
enumerate_pds(instance, ctypes.byref(count), None)
print("survived (libvulkan was not unmapped?)")
