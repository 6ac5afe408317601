"""Prints the instance layers the program sees, asked both ways a program can: the export
taken with dlsym (ctypes) and the pointer from vkGetInstanceProcAddr(NULL, ...)."""

from __future__ import annotations

import ctypes


class LayerProperties(ctypes.Structure):
    _fields_ = [
        ("layerName", ctypes.c_char * 256),
        ("specVersion", ctypes.c_uint32),
        ("implementationVersion", ctypes.c_uint32),
        ("description", ctypes.c_char * 256),
    ]


ENUM = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.POINTER(ctypes.c_uint32), ctypes.c_void_p)


def names(enum) -> list[str]:
    count = ctypes.c_uint32(0)
    assert enum(ctypes.byref(count), None) == 0
    props = (LayerProperties * count.value)()
    assert enum(ctypes.byref(count), props) in (0, 5)
    return [p.layerName.decode() for p in props[: count.value]]


lib = ctypes.CDLL("libvulkan.so.1")
exported = ENUM(("vkEnumerateInstanceLayerProperties", lib))
gipa = lib.vkGetInstanceProcAddr
gipa.restype = ctypes.c_void_p
gipa.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
queried = ENUM(gipa(None, b"vkEnumerateInstanceLayerProperties"))
print("dlsym:", ",".join(names(exported)))
print("gipa:", ",".join(names(queried)))
