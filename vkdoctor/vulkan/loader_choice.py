"""Which libvulkan the ``vulkan`` binding gets in a child: the one ``check --loader`` names.

The binding dlopens "libvulkan.so.1" by name, which would always diagnose the loader
applications get by default.  The dynamic linker answers a name with an already loaded library
whose soname it is, so loading the chosen loader first makes it the binding's; the parent
names it in LOADER_VAR (set only when --loader is not the default).  A chosen library whose
soname is not libvulkan.so.1 cannot be substituted: that is an OSError, like a loader that
does not load, rather than a silent diagnosis of another loader.
"""

from __future__ import annotations

import ctypes
import os
from types import ModuleType

from vkdoctor.engine.protocol import LOADER_VAR

_chosen: list[ctypes.CDLL] = []  # kept open for the child's lifetime


def import_vulkan() -> ModuleType:
    """``import vulkan``, bound to the loader LOADER_VAR names when it is set."""
    path = os.environ.get(LOADER_VAR)
    if path and not _chosen:
        _chosen.append(ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_LOCAL))
    import vulkan

    if _chosen:
        # vkGetInstanceProcAddr: the one export a loader must have (loader-discovery checks it).
        ffi = vulkan.ffi
        bound = int(ffi.cast("uintptr_t", ffi.addressof(vulkan.lib, "vkGetInstanceProcAddr")))
        export = getattr(_chosen[0], "vkGetInstanceProcAddr", None)
        chosen = ctypes.cast(export, ctypes.c_void_p).value if export is not None else None
        if bound != chosen:
            raise OSError(
                f"--loader {path}: its soname is not libvulkan.so.1, so the vulkan binding "
                "loads another libvulkan.so.1 and this loader cannot be checked past discovery"
            )
    return vulkan
