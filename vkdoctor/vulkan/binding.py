"""The ``vulkan`` PyPI binding, imported lazily, and the small cffi idioms every caller needs.

Callers use the binding's raw cffi objects (``vulkan.ffi`` and ``vulkan.lib``) rather than its
Python wrappers, because the wrappers raise bare classes without the VkResult (and a
``KeyError`` for results they do not know), turn VK_INCOMPLETE/VK_TIMEOUT into exceptions, hand
back one-shot generators from enumerations and refuse core names in ``vkGetInstanceProcAddr``.

``import vulkan`` dlopens libvulkan and raises OSError when it is missing, which must become a
finding, not an import error of vkdoctor; so nothing here imports it at module level, and this
module imports nothing heavy (the probes' children import it too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vkdoctor.vulkan.errors import DeviceLost, LoaderUnavailable, VulkanError

if TYPE_CHECKING:
    from vkdoctor.vulkan.loader_choice import Binding

VK_SUCCESS = 0
VK_TIMEOUT = 2
VK_INCOMPLETE = 5
VK_ERROR_DEVICE_LOST = -4

DEVICE_TYPES = {
    0: "other",
    1: "integrated-gpu",
    2: "discrete-gpu",
    3: "virtual-gpu",
    4: "cpu",
}


def load_vulkan() -> Binding:
    """Import the binding (dlopens libvulkan.so.1); failures become ``LoaderUnavailable``."""
    from vkdoctor.vulkan.loader_choice import import_vulkan

    try:
        vulkan = import_vulkan()
    except OSError as exc:
        raise LoaderUnavailable(f"libvulkan could not be loaded: {exc}") from exc
    except ImportError as exc:
        raise LoaderUnavailable(f"the 'vulkan' Python binding is unusable: {exc}") from exc
    return vulkan


def result_name(code: int) -> str:
    vk = load_vulkan()
    name = vk.ffi.typeof("VkResult").elements.get(code)
    return name or f"VkResult({code})"


def check(code: int, call: str) -> None:
    """Raise the typed error for a failed VkResult (``DeviceLost`` for VK_ERROR_DEVICE_LOST)."""
    if code == VK_SUCCESS:
        return
    name = result_name(code)
    if code == VK_ERROR_DEVICE_LOST:
        raise DeviceLost(name, call, code)
    raise VulkanError(name, call, code)


def flag_names(vk: Binding, enum: str, flags: int, prefix: str, suffix: str) -> tuple[str, ...]:
    """The single-bit members of ``enum`` set in ``flags``, as kebab-case words."""
    names = []
    for bit, name in sorted(vk.ffi.typeof(enum).elements.items()):
        if bit and bit & (bit - 1) == 0 and flags & bit and name.endswith(suffix):
            names.append(name.removeprefix(prefix).removesuffix(suffix).lower().replace("_", "-"))
    return tuple(names)


def cstr(ffi: Any, chars: Any) -> str:
    """A fixed-size ``char[]`` member as text (drivers' strings are not always UTF-8)."""
    return ffi.string(chars).decode("utf-8", "replace")


def uuid_hex(ffi: Any, uuid: Any) -> str:
    """A VK_UUID_SIZE member as 32 hex digits."""
    return bytes(ffi.buffer(uuid, 16)).hex()


def pci_address(domain: int, bus: int, device: int, function: int) -> str:
    """A PCI function in the form sysfs and lspci -D use (``0000:65:00.0``)."""
    return f"{domain:04x}:{bus:02x}:{device:02x}.{function:x}"


def pci_bus_info(vk: Binding, props2_getter: Any, physical: Any) -> str | None:
    """The device's PCI address through VK_EXT_pci_bus_info; the caller checks the extension."""
    ffi = vk.ffi
    pci = ffi.new(
        "VkPhysicalDevicePCIBusInfoPropertiesEXT *",
        {"sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PCI_BUS_INFO_PROPERTIES_EXT},
    )
    props2 = ffi.new(
        "VkPhysicalDeviceProperties2 *",
        {"sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, "pNext": pci},
    )
    props2_getter(physical, props2)
    return pci_address(pci.pciDomain, pci.pciBus, pci.pciDevice, pci.pciFunction)


def enumerate_array(ffi: Any, fn: Any, ctype: str, *args: Any) -> tuple[int, Any, int]:
    """The two-call enumeration idiom: (VkResult, owning cdata array or None, valid count).

    Retried while the list grows between the two calls (VK_INCOMPLETE).  Callers read the items
    while they hold the array: an element taken out of a cffi array of structs does not keep the
    array alive.  A failed call returns its VkResult with no array; callers decide whether that
    raises (``enumerate_checked``) or becomes evidence (the probes' children).
    """
    count = ffi.new("uint32_t *")
    while True:
        code = fn(*args, count, ffi.NULL)
        if code < 0:
            return code, None, 0
        items = ffi.new(f"{ctype}[]", max(count[0], 1))
        code = fn(*args, count, items)
        if code != VK_INCOMPLETE:
            return (code, items, count[0]) if code >= 0 else (code, None, 0)


def enumerate_checked(ffi: Any, call: str, fn: Any, ctype: str, *args: Any) -> tuple[Any, int]:
    """``enumerate_array`` that raises the typed error for a failed VkResult."""
    code, items, count = enumerate_array(ffi, fn, ctype, *args)
    check(code, call)
    return items, count


def queue_family_properties(ffi: Any, lib: Any, physical: Any) -> tuple[Any, int]:
    """vkGetPhysicalDeviceQueueFamilyProperties' two calls (it returns no VkResult)."""
    count = ffi.new("uint32_t *")
    lib.vkGetPhysicalDeviceQueueFamilyProperties(physical, count, ffi.NULL)
    props = ffi.new("VkQueueFamilyProperties[]", max(count[0], 1))
    lib.vkGetPhysicalDeviceQueueFamilyProperties(physical, count, props)
    return props, count[0]


def string_array(ffi: Any, strings: Sequence[str], keep: list[Any]) -> Any:
    """A ``char *[]`` of ``strings`` (NULL when empty); ``keep`` holds the owned strings."""
    if not strings:
        return ffi.NULL
    owned = [ffi.new("char[]", s.encode()) for s in strings]
    keep.extend(owned)
    return ffi.new("char *[]", owned)


def link(head: Any, chain: Sequence[Any]) -> None:
    """Link ``chain`` (owning struct pointers) behind ``head`` through pNext."""
    prev = head
    for item in chain:
        prev.pNext = item
        prev = item
