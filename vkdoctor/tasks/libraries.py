"""Child task: dlopen driver and layer libraries one by one, check exports, negotiate.

Each library is a batch item, so a constructor that crashes or a negotiation that hangs costs
only that item; the parent resumes with the next library in a fresh child.

ctypes, not the ``vulkan`` cffi binding: these calls go to a driver's or layer's own entry
points (vk_icd*, the negotiate functions), found by dlsym in a library opened by path, with no
loader in between; the binding only reaches Vulkan through the libvulkan.so.1 it dlopens itself.
"""

from __future__ import annotations

import ctypes
from typing import Any

from vkdoctor.engine.child_main import Emitter
from vkdoctor.loader import vkversion
from vkdoctor.tasks import dl

VK_ERROR_INCOMPATIBLE_DRIVER = -9
LOADER_ICD_INTERFACE_VERSION = 7  # what loader 1.3.239+ offers (vk_icd.h)
LOADER_LAYER_INTERFACE_VERSION = 2
DRIVER_SYMBOLS = (
    "vk_icdNegotiateLoaderICDInterfaceVersion",
    "vk_icdGetInstanceProcAddr",
    "vk_icdGetPhysicalDeviceProcAddr",
    "vkGetInstanceProcAddr",
)

PFN_GIPA = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p)
PFN_NEGOTIATE_ICD = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.POINTER(ctypes.c_uint32))
PFN_ENUMERATE_VERSION = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.POINTER(ctypes.c_uint32))


class _NegotiateLayerInterface(ctypes.Structure):
    _fields_ = [
        ("sType", ctypes.c_int32),
        ("pNext", ctypes.c_void_p),
        ("loaderLayerInterfaceVersion", ctypes.c_uint32),
        ("pfnGetInstanceProcAddr", ctypes.c_void_p),
        ("pfnGetDeviceProcAddr", ctypes.c_void_p),
        ("pfnGetPhysicalDeviceProcAddr", ctypes.c_void_p),
    ]


PFN_NEGOTIATE_LAYER = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.POINTER(_NegotiateLayerInterface))


def _open(item: dict[str, Any], emit: Emitter, result: dict[str, Any]) -> dl.Loaded | None:
    path = item["path"]
    emit.crumb(f"dlopen({path}, RTLD_NOW): running its constructors")
    try:
        return dl.open_library(path, dl.RTLD_NOW | dl.RTLD_LOCAL)
    except OSError as exc:
        result["dlopen_now_error"] = str(exc)
        result["missing_object"] = dl.missing_object(str(exc), path)
    # The loader itself uses RTLD_LAZY: learn whether it would still get the library.
    emit.crumb(f"dlopen({path}, RTLD_LAZY)")
    try:
        loaded = dl.open_library(path, dl.RTLD_LAZY | dl.RTLD_LOCAL)
        result["loads_lazily_only"] = True
        return loaded
    except OSError as exc:
        result["dlopen_error"] = str(exc)
        return None


def _driver(item: dict[str, Any], emit: Emitter) -> dict[str, Any]:
    result: dict[str, Any] = {"loaded": False}
    loaded = _open(item, emit, result)
    if loaded is None:
        return result
    lib = loaded.lib
    result.update(loaded=True, loaded_path=loaded.path)
    exports = {name: bool(dl.symbol(lib, name)) for name in DRIVER_SYMBOLS}
    result["exports"] = exports
    gipa_address = dl.symbol(lib, "vk_icdGetInstanceProcAddr")
    gipa = PFN_GIPA(gipa_address) if gipa_address else None
    negotiate_address = dl.symbol(lib, "vk_icdNegotiateLoaderICDInterfaceVersion")
    if not negotiate_address and gipa is not None:
        # Interface 7 lets drivers hide the negotiate export behind their GIPA.
        emit.crumb("vk_icdGetInstanceProcAddr(NULL, vk_icdNegotiateLoaderICDInterfaceVersion)")
        negotiate_address = gipa(None, b"vk_icdNegotiateLoaderICDInterfaceVersion") or 0
        result["negotiate_via_gipa"] = bool(negotiate_address)
    if negotiate_address:
        version = ctypes.c_uint32(LOADER_ICD_INTERFACE_VERSION)
        emit.crumb("vk_icdNegotiateLoaderICDInterfaceVersion(7)")
        code = PFN_NEGOTIATE_ICD(negotiate_address)(ctypes.byref(version))
        result["negotiate_result"] = code
        result["interface_version"] = version.value
    elif gipa is not None:
        result["interface_version"] = 1
    elif exports["vkGetInstanceProcAddr"]:
        result["interface_version"] = 0
    if gipa is not None and result.get("negotiate_result", 0) != VK_ERROR_INCOMPATIBLE_DRIVER:
        emit.crumb("vk_icdGetInstanceProcAddr(NULL, vkCreateInstance)")
        result["gipa_create_instance"] = bool(gipa(None, b"vkCreateInstance"))
        result["gipa_enumerate_extensions"] = bool(
            gipa(None, b"vkEnumerateInstanceExtensionProperties")
        )
        enumerate_version = gipa(None, b"vkEnumerateInstanceVersion")
        if enumerate_version:
            emit.crumb("driver vkEnumerateInstanceVersion")
            packed = ctypes.c_uint32(0)
            if PFN_ENUMERATE_VERSION(enumerate_version)(ctypes.byref(packed)) == 0:
                result["instance_version"] = vkversion.to_string(packed.value)
    return result


def _layer(item: dict[str, Any], emit: Emitter) -> dict[str, Any]:
    result: dict[str, Any] = {"loaded": False}
    loaded = _open(item, emit, result)
    if loaded is None:
        return result
    lib = loaded.lib
    result.update(loaded=True, loaded_path=loaded.path)
    functions = item.get("functions") or {}
    negotiate_name = functions.get(
        "vkNegotiateLoaderLayerInterfaceVersion", "vkNegotiateLoaderLayerInterfaceVersion"
    )
    gipa_name = functions.get("vkGetInstanceProcAddr", "vkGetInstanceProcAddr")
    gdpa_name = functions.get("vkGetDeviceProcAddr", "vkGetDeviceProcAddr")
    result["exports"] = {
        negotiate_name: bool(dl.symbol(lib, negotiate_name)),
        gipa_name: bool(dl.symbol(lib, gipa_name)),
        gdpa_name: bool(dl.symbol(lib, gdpa_name)),
    }
    address = dl.symbol(lib, negotiate_name)
    if address:
        info = _NegotiateLayerInterface(1, None, LOADER_LAYER_INTERFACE_VERSION, None, None, None)
        emit.crumb(f"{negotiate_name}(version {LOADER_LAYER_INTERFACE_VERSION})")
        result["negotiate_result"] = PFN_NEGOTIATE_LAYER(address)(ctypes.byref(info))
        result["interface_version"] = info.loaderLayerInterfaceVersion
        result["negotiated_gipa"] = bool(info.pfnGetInstanceProcAddr)
        result["negotiated_gdpa"] = bool(info.pfnGetDeviceProcAddr)
    return result


def check_libraries(payload: dict[str, Any], emit: Emitter) -> None:
    for item in payload["items"]:
        key = item["key"]
        emit.begin(key)
        data = _driver(item, emit) if item["kind"] == "driver" else _layer(item, emit)
        emit.result(data)
        emit.end(key)
