"""The loader's version and a VkInstance with the physical devices it sees."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

from vkdoctor.loader import vkversion
from vkdoctor.vulkan.binding import check, enumerate_checked, load_vulkan, string_array
from vkdoctor.vulkan.context import ComputeContext
from vkdoctor.vulkan.device import (
    CooperativeMatrixShape,
    DeviceInfo,
    cooperative_matrix_shapes,
    describe,
)


def loader_version() -> tuple[int, int, int]:
    """The loader's instance version; 1.0 when vkEnumerateInstanceVersion does not exist."""
    vk = load_vulkan()
    ffi, lib = vk.ffi, vk.lib
    # A 1.0 loader lacks the entry point; vkGetInstanceProcAddr(NULL, ...) says so with NULL.
    ptr = lib.vkGetInstanceProcAddr(ffi.NULL, b"vkEnumerateInstanceVersion")
    if ptr == ffi.NULL:
        return (1, 0, 0)
    fn = ffi.cast("PFN_vkEnumerateInstanceVersion", ptr)
    out = ffi.new("uint32_t *")
    check(fn(out), "vkEnumerateInstanceVersion")
    return vkversion.decode(out[0])


class Instance:
    """A VkInstance plus the physical devices it sees.  Close it last (it owns its contexts)."""

    def __init__(
        self,
        *,
        api_version: tuple[int, int] = (1, 3),
        extensions: Sequence[str] = (),
        layers: Sequence[str] = (),
        app_name: str = "vkdoctor",
    ) -> None:
        vk = load_vulkan()
        self._vk = vk
        ffi, lib = vk.ffi, vk.lib
        loader = loader_version()
        # A 1.0 loader rejects any apiVersion above 1.0 with VK_ERROR_INCOMPATIBLE_DRIVER.
        requested = (1, 0) if loader[:2] == (1, 0) else api_version
        self.api_version = vkversion.make(*requested)
        self.loader_version = loader
        self.extensions = tuple(extensions)
        keep: list[Any] = []
        name = ffi.new("char[]", app_name.encode())
        app = ffi.new(
            "VkApplicationInfo *",
            {
                "sType": vk.VK_STRUCTURE_TYPE_APPLICATION_INFO,
                "pApplicationName": name,
                "applicationVersion": 1,
                "pEngineName": name,
                "engineVersion": 1,
                "apiVersion": self.api_version,
            },
        )
        ext_array = string_array(ffi, extensions, keep)
        layer_array = string_array(ffi, layers, keep)
        info = ffi.new(
            "VkInstanceCreateInfo *",
            {
                "sType": vk.VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                "pApplicationInfo": app,
                "enabledLayerCount": len(layers),
                "ppEnabledLayerNames": layer_array,
                "enabledExtensionCount": len(extensions),
                "ppEnabledExtensionNames": ext_array,
            },
        )
        handle = ffi.new("VkInstance *")
        check(lib.vkCreateInstance(info, ffi.NULL, handle), "vkCreateInstance")
        self.handle = handle[0]
        self._contexts: weakref.WeakSet[ComputeContext] = weakref.WeakSet()
        self._leaked = False
        self._physical: list[Any] | None = None
        self._infos: tuple[DeviceInfo, ...] | None = None

    # -- lifetime

    def close(self) -> None:
        """Destroy contexts first: vkDestroyInstance unloads the drivers they still use (LIB-02)."""
        if self.handle is None:
            return
        for ctx in list(self._contexts):
            ctx.close()
            self._leaked |= ctx._leak_on_close
        if not self._leaked:
            self._vk.lib.vkDestroyInstance(self.handle, self._vk.ffi.NULL)
        # else: a device may still be executing our work; destroying the instance would unload
        # its driver under it (LIB-02), so both are left to process exit.
        self.handle = None

    def __enter__(self) -> Instance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queries

    def _proc(self, core: str, extension: str) -> Any | None:
        """A Vulkan 1.1 instance command, or its KHR alias when ``extension`` was enabled.

        Loaders hand out trampolines for extension commands whether or not the extension is
        enabled, so a non-NULL pointer alone does not make a call valid.
        """
        ffi, lib = self._vk.ffi, self._vk.lib
        if vkversion.at_least(self.api_version, 1, 1):
            name = core
        elif extension in self.extensions:
            name = core + "KHR"
        else:
            return None
        ptr = lib.vkGetInstanceProcAddr(self.handle, name.encode())
        return None if ptr == ffi.NULL else ffi.cast("PFN_" + core, ptr)

    def physical_handles(self) -> list[Any]:
        if self._physical is None:
            lib = self._vk.lib
            handles, n = enumerate_checked(
                self._vk.ffi,
                "vkEnumeratePhysicalDevices",
                lib.vkEnumeratePhysicalDevices,
                "VkPhysicalDevice",
                self.handle,
            )
            self._physical = [handles[i] for i in range(n)]  # handle values, copied
        return self._physical

    def physical_devices(self) -> tuple[DeviceInfo, ...]:
        if self._infos is None:
            self._infos = tuple(
                describe(self._vk, self.api_version, self._proc, i, h)
                for i, h in enumerate(self.physical_handles())
            )
        return self._infos

    def find_device(self, *, cpu: bool | None = None, name_contains: str = "") -> DeviceInfo | None:
        for info in self.physical_devices():
            if cpu is not None and info.is_cpu != cpu:
                continue
            if name_contains.lower() in info.name.lower():
                return info
        return None

    def cooperative_matrix_shapes(self, device_index: int) -> tuple[CooperativeMatrixShape, ...]:
        """The subgroup-scope shapes VK_KHR_cooperative_matrix lists for a device (empty when it
        has none)."""
        if not self.physical_devices()[device_index].cooperative_matrix:
            return ()
        physical = self.physical_handles()[device_index]
        return cooperative_matrix_shapes(self._vk, self.handle, physical)

    def context(self, device_index: int = 0, **kwargs: Any) -> ComputeContext:
        return ComputeContext(self, device_index, **kwargs)
