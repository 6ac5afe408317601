"""Which libvulkan the ``vulkan`` binding gets in a child: the one ``check --loader`` names.

The binding dlopens "libvulkan.so.1" by name, which would always diagnose the loader
applications get by default.  The dynamic linker answers a name with an already loaded library
whose soname it is, so loading the chosen loader first makes it the binding's; the parent
names it in LOADER_VAR (set only when --loader is not the default).  A chosen library whose
soname is not libvulkan.so.1 cannot be substituted: that is an OSError, like a loader that
does not load, rather than a silent diagnosis of another loader.

vkdoctor uses only the binding's cffi objects (``ffi``, ``lib``: functions and enum constants),
never its Python wrappers, so it loads the binding's compiled FFI description alone: running
the package's 1.1 MB wrapper module (``import vulkan``) cost each Vulkan child ~25 ms of CPU
here, on the path of every check.  Where the package has no such file (another release), it is
imported whole.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from vkdoctor.engine.protocol import LOADER_VAR
from vkdoctor.record import frozen

_chosen: list[ctypes.CDLL] = []  # kept open for the child's lifetime
_FFI_MODULE = "vulkan._vulkancache"  # the binding's out-of-line cffi description
_SONAME = "libvulkan.so.1"  # what the binding itself dlopens on Linux


@frozen
class Binding:
    """The binding's ``ffi`` and ``lib``; other attributes (``VK_STRUCTURE_TYPE_...``, every enum
    constant) come from ``lib``, as ``vulkan.NAME`` did."""

    ffi: Any
    lib: Any

    def __getattr__(self, name: str) -> Any:
        return getattr(self.lib, name)


def import_vulkan() -> Binding:
    """The binding, bound to the loader LOADER_VAR names when it is set."""
    path = os.environ.get(LOADER_VAR)
    if path and not _chosen:
        _chosen.append(ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_LOCAL))
    vulkan = _binding()

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


@functools.cache
def _binding() -> Binding:
    """Once per process: the binding's FFI description without its wrappers, dlopening the
    loader by name (OSError when it does not load, as ``import vulkan`` raised)."""
    ffi = _ffi_only()
    if ffi is None:
        import vulkan

        return Binding(vulkan.ffi, vulkan.lib)
    return Binding(ffi, ffi.dlopen(_SONAME))


def _ffi_only() -> Any:
    """``vulkan._vulkancache.ffi`` loaded without running the package (its ``__init__`` imports
    the wrappers); None when the package is laid out differently."""
    if _FFI_MODULE in sys.modules:
        return sys.modules[_FFI_MODULE].ffi
    package = importlib.util.find_spec("vulkan")  # finds, does not import
    if package is None or not package.submodule_search_locations:
        raise ImportError("No module named 'vulkan'")
    for location in package.submodule_search_locations:
        source = Path(location) / "_vulkancache.py"
        if source.is_file():
            spec = importlib.util.spec_from_file_location(_FFI_MODULE, source)
            if spec is None or spec.loader is None:
                return None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)  # imports _cffi_backend: ImportError if missing
            return module.ffi
    return None
