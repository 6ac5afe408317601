"""Child task: load libvulkan.so.1 the way an application does and ask it what it sees.

Results come in stages so that a crash inside a driver the loader preloads (during
vkEnumerateInstanceExtensionProperties) still leaves the loader's own facts behind.

ctypes, not the ``vulkan`` cffi binding: the payload names the loader (``--loader``: a soname or
a path) and it is dlopened RTLD_LOCAL by that name, so the loader the user named is the one asked;
the binding dlopens libvulkan.so.1 by name (vulkan/loader_choice.py substitutes the chosen loader
only where it has that soname), and a failed dlopen must stay a result here.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

from vkdoctor.engine.child_main import Emitter
from vkdoctor.loader import vkversion
from vkdoctor.tasks import dl


class _ExtensionProperties(ctypes.Structure):
    _fields_ = [("extensionName", ctypes.c_char * 256), ("specVersion", ctypes.c_uint32)]


class _LayerProperties(ctypes.Structure):
    _fields_ = [
        ("layerName", ctypes.c_char * 256),
        ("specVersion", ctypes.c_uint32),
        ("implementationVersion", ctypes.c_uint32),
        ("description", ctypes.c_char * 256),
    ]


def _enumerate(
    function: Any, struct: type[ctypes.Structure], *leading: Any
) -> tuple[int, list[Any]]:
    """The two-call idiom for the one library ctypes opens (see the module docstring); the cffi
    side has its own in ``vkdoctor.vulkan.binding``.  ctypes copies the structs out by slicing."""
    count = ctypes.c_uint32(0)
    result = function(*leading, ctypes.byref(count), None)
    if result < 0:
        return result, []
    array = (struct * max(count.value, 1))()
    result = function(*leading, ctypes.byref(count), array)
    return result, list(array[: count.value])


def loader_info(payload: dict[str, Any], emit: Emitter) -> None:
    soname = payload.get("soname", "libvulkan.so.1")
    emit.crumb(f"dlopen({soname})")
    try:
        loaded = dl.open_library(soname, dl.RTLD_NOW | dl.RTLD_LOCAL)
    except OSError as exc:
        emit.result({"stage": "dlopen", "loaded": False, "dlerror": str(exc)})
        return
    lib = loaded.lib
    version: str | None = None
    enumerate_version = dl.symbol(lib, "vkEnumerateInstanceVersion")
    if enumerate_version:
        emit.crumb("vkEnumerateInstanceVersion")
        packed = ctypes.c_uint32(0)
        function = lib.vkEnumerateInstanceVersion
        function.restype = ctypes.c_int32
        if function(ctypes.byref(packed)) == 0:
            version = vkversion.to_string(packed.value)
    else:
        version = "1.0.0"  # a 1.0 loader has no vkEnumerateInstanceVersion
    emit.result(
        {
            "stage": "loaded",
            "loaded": True,
            "path": loaded.path,
            "real_path": os.path.realpath(loaded.path),
            "version": version,
            "exports_enumerate_version": bool(enumerate_version),
            "gipa_exported": bool(dl.symbol(lib, "vkGetInstanceProcAddr")),
            "mapped_loaders": dl.mapped_objects("libvulkan"),
        }
    )
    if payload.get("skip_enumeration"):
        return
    emit.crumb(
        "vkEnumerateInstanceExtensionProperties(NULL): the loader scans and preloads drivers"
    )
    function = lib.vkEnumerateInstanceExtensionProperties
    function.restype = ctypes.c_int32
    result, extensions = _enumerate(function, _ExtensionProperties, None)
    emit.result(
        {
            "stage": "extensions",
            "result": result,
            "extensions": {e.extensionName.decode(): e.specVersion for e in extensions},
        }
    )
    emit.crumb("vkEnumerateInstanceLayerProperties: the loader scans layer manifests")
    function = lib.vkEnumerateInstanceLayerProperties
    function.restype = ctypes.c_int32
    result, layers = _enumerate(function, _LayerProperties)
    emit.result(
        {
            "stage": "layers",
            "result": result,
            "layers": [
                {
                    "name": layer.layerName.decode(),
                    "spec_version": vkversion.to_string(layer.specVersion),
                    "implementation_version": layer.implementationVersion,
                    "description": layer.description.decode("utf-8", "replace"),
                }
                for layer in layers
            ],
        }
    )
