"""Child tasks of the instance and device probes, through the ``vulkan`` cffi binding.

Raw ``vulkan.ffi``/``vulkan.lib`` calls are used on purpose: the binding's Python wrappers raise
for core names in vkGetInstanceProcAddr and for positive VkResults (VK_INCOMPLETE), and some
return one-shot generators.  Every step leaves a breadcrumb first, so a crash inside a driver or
layer is reported with the call it happened in.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

from vkdoctor.engine.child_main import Emitter
from vkdoctor.loader import vkversion
from vkdoctor.tasks import dl
from vkdoctor.vulkan.binding import (
    DEVICE_TYPES,
    cstr,
    enumerate_array,
    pci_bus_info,
    queue_family_properties,
    uuid_hex,
)

PORTABILITY_BIT = 0x00000001  # VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR
SEVERITY = {0x1: "verbose", 0x10: "info", 0x100: "warning", 0x1000: "error"}


class Session:
    """One VkInstance created the way vkdoctor's probes need it: highest loader version,
    portability enumeration where offered, a debug-utils messenger chained into creation."""

    def __init__(self, emit: Emitter, layers: Sequence[str] = ()) -> None:
        emit.crumb("import the vulkan binding (dlopen libvulkan.so.1)")
        from vkdoctor.vulkan.loader_choice import import_vulkan

        vulkan = import_vulkan()

        self.vk = vulkan
        self.ffi, self.lib = vulkan.ffi, vulkan.lib
        self.emit = emit
        self.messages: list[dict[str, Any]] = []
        self.instance: Any = None
        ffi, lib = self.ffi, self.lib
        packed = ffi.new("uint32_t *", vkversion.make(1, 0))
        if lib.vkGetInstanceProcAddr(ffi.NULL, b"vkEnumerateInstanceVersion") != ffi.NULL:
            lib.vkEnumerateInstanceVersion(packed)
        self.api_version = packed[0] & ~0xFFF  # patch 0: ask for what the loader offers
        emit.crumb("vkEnumerateInstanceExtensionProperties(NULL)")
        _code, props, n = enumerate_array(
            ffi, lib.vkEnumerateInstanceExtensionProperties, "VkExtensionProperties", ffi.NULL
        )
        self.available = sorted(cstr(ffi, props[i].extensionName) for i in range(n))
        wanted = [
            "VK_EXT_debug_utils",
            "VK_KHR_portability_enumeration",
            "VK_KHR_get_physical_device_properties2",
        ]
        self.enabled = [e for e in wanted if e in self.available]
        self.layers = list(layers)
        self._keep: list[Any] = []
        self._callback = ffi.callback(
            "VkBool32(VkDebugUtilsMessageSeverityFlagBitsEXT, VkDebugUtilsMessageTypeFlagsEXT, "
            "const VkDebugUtilsMessengerCallbackDataEXT *, void *)",
            self._on_message,
        )

    def _on_message(self, severity: int, types: int, data: Any, _user: Any) -> int:
        try:
            message = cstr(self.ffi, data.pMessage) if data.pMessage else ""
            ident = self.ffi.string(data.pMessageIdName).decode() if data.pMessageIdName else ""
            self.messages.append(
                {
                    "severity": SEVERITY.get(severity, str(severity)),
                    "id": ident,
                    "message": message[:1000],
                }
            )
        except Exception:  # a callback must never raise into the loader
            pass
        return 0

    def create(self) -> int:
        ffi, lib, vk = self.ffi, self.lib, self.vk
        keep = self._keep
        name = ffi.new("char[]", b"vkdoctor")
        keep.append(name)
        app = ffi.new(
            "VkApplicationInfo *",
            {
                "sType": vk.VK_STRUCTURE_TYPE_APPLICATION_INFO,
                "pApplicationName": name,
                "pEngineName": name,
                "apiVersion": self.api_version,
            },
        )
        ext = [ffi.new("char[]", e.encode()) for e in self.enabled]
        lay = [ffi.new("char[]", n.encode()) for n in self.layers]
        keep += [app, ext, lay]
        ext_array = ffi.new("char *[]", ext) if ext else ffi.NULL
        lay_array = ffi.new("char *[]", lay) if lay else ffi.NULL
        keep += [ext_array, lay_array]
        messenger = ffi.NULL
        if "VK_EXT_debug_utils" in self.enabled:
            messenger = ffi.new(
                "VkDebugUtilsMessengerCreateInfoEXT *",
                {
                    "sType": vk.VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
                    "messageSeverity": 0x1 | 0x10 | 0x100 | 0x1000,
                    "messageType": 0x1 | 0x2 | 0x4,
                    "pfnUserCallback": self._callback,
                },
            )
            keep.append(messenger)
        info = ffi.new(
            "VkInstanceCreateInfo *",
            {
                "sType": vk.VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                "pNext": messenger,
                "flags": PORTABILITY_BIT if "VK_KHR_portability_enumeration" in self.enabled else 0,
                "pApplicationInfo": app,
                "enabledLayerCount": len(lay),
                "ppEnabledLayerNames": lay_array,
                "enabledExtensionCount": len(ext),
                "ppEnabledExtensionNames": ext_array,
            },
        )
        keep.append(info)
        handle = ffi.new("VkInstance *")
        self.emit.crumb(
            f"vkCreateInstance(api {vkversion.to_string(self.api_version)}, extensions {', '.join(self.enabled) or 'none'})"
        )
        code = lib.vkCreateInstance(info, ffi.NULL, handle)
        if code == 0:
            self.instance = handle[0]
        return code

    def physical_devices(self) -> tuple[int, list[Any]]:
        self.emit.crumb("vkEnumeratePhysicalDevices")
        code, handles, n = enumerate_array(
            self.ffi, self.lib.vkEnumeratePhysicalDevices, "VkPhysicalDevice", self.instance
        )
        return code, [handles[i] for i in range(n)]  # handle values, copied

    def describe(self, physical: Any) -> dict[str, Any]:
        ffi, lib, vk = self.ffi, self.lib, self.vk
        props = ffi.new("VkPhysicalDeviceProperties *")
        self.emit.crumb("vkGetPhysicalDeviceProperties")
        lib.vkGetPhysicalDeviceProperties(physical, props)
        p = props[0]
        row: dict[str, Any] = {
            "name": cstr(ffi, p.deviceName),
            "type": DEVICE_TYPES.get(p.deviceType, "other"),
            "api_version": vkversion.to_string(p.apiVersion),
            "driver_version_raw": p.driverVersion,
            "driver_version": vkversion.driver_version_string(p.vendorID, p.driverVersion),
            "vendor_id": p.vendorID,
            "device_id": p.deviceID,
            "pipeline_cache_uuid": uuid_hex(ffi, p.pipelineCacheUUID),
        }
        if vkversion.at_least(p.apiVersion, 1, 2) and vkversion.at_least(self.api_version, 1, 2):
            driver = ffi.new(
                "VkPhysicalDeviceDriverProperties *",
                {"sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES},
            )
            subgroup = ffi.new(  # core since 1.1; for --require subgroup>=N
                "VkPhysicalDeviceSubgroupProperties *",
                {
                    "sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES,
                    "pNext": driver,
                },
            )
            ids = ffi.new(
                "VkPhysicalDeviceIDProperties *",
                {"sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ID_PROPERTIES, "pNext": subgroup},
            )
            props2 = ffi.new(
                "VkPhysicalDeviceProperties2 *",
                {"sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, "pNext": ids},
            )
            self.emit.crumb("vkGetPhysicalDeviceProperties2")
            lib.vkGetPhysicalDeviceProperties2(physical, props2)
            c = driver.conformanceVersion
            row.update(
                driver_id=int(driver.driverID),
                driver_name=cstr(ffi, driver.driverName),
                driver_info=cstr(ffi, driver.driverInfo),
                conformance_version=f"{c.major}.{c.minor}.{c.subminor}.{c.patch}",
                device_uuid=uuid_hex(ffi, ids.deviceUUID),
                driver_uuid=uuid_hex(ffi, ids.driverUUID),
                subgroup={
                    "size": subgroup.subgroupSize,
                    "operations": _bits(SUBGROUP_OPERATIONS, subgroup.supportedOperations),
                    "stages": _bits(SHADER_STAGES, subgroup.supportedStages),
                },
                features=self.features(physical, min(p.apiVersion, self.api_version)),
            )
        # The PCI address ties the device to its GPU on the bus (the device probe compares);
        # a CPU device has none, so lavapipe's check skips the extension enumeration.
        if (
            row["type"] != "cpu"
            and vkversion.at_least(p.apiVersion, 1, 1)
            and vkversion.at_least(self.api_version, 1, 1)
            and "VK_EXT_pci_bus_info" in _device_extensions(self, physical)
        ):
            self.emit.crumb("vkGetPhysicalDeviceProperties2(VkPhysicalDevicePCIBusInfoProperties)")
            row["pci_address"] = pci_bus_info(vk, lib.vkGetPhysicalDeviceProperties2, physical)
        return row

    def features(self, physical: Any, api: int) -> list[str]:
        """``Struct.member`` for every core feature the device supports (--require feature=).
        The members come from the binding's struct definitions, generated from the registry;
        only the VkPhysicalDeviceVulkanNNFeatures structs the effective API version has are
        chained, since chaining unknown ones is invalid usage."""
        ffi, vk = self.ffi, self.vk
        chain: list[tuple[str, Any]] = []
        for minor in (1, 2, 3, 4):
            name = f"VkPhysicalDeviceVulkan1{minor}Features"
            stype = getattr(
                vk, f"VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_{minor}_FEATURES", None
            )
            # Vulkan11Features itself arrived with 1.2; each later one with its version.
            if stype is None or not vkversion.at_least(api, 1, max(2, minor)):
                continue
            previous = chain[-1][1] if chain else ffi.NULL
            chain.append((name, ffi.new(f"{name} *", {"sType": stype, "pNext": previous})))
        features2 = ffi.new(
            "VkPhysicalDeviceFeatures2 *",
            {
                "sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                "pNext": chain[-1][1] if chain else ffi.NULL,
            },
        )
        self.emit.crumb("vkGetPhysicalDeviceFeatures2")
        self.lib.vkGetPhysicalDeviceFeatures2(physical, features2)
        found: list[str] = []
        for name, struct in [("VkPhysicalDeviceFeatures", features2.features), *chain]:
            target = struct if name == "VkPhysicalDeviceFeatures" else struct[0]
            for member, _ in ffi.typeof(name).fields:
                if member not in ("sType", "pNext") and getattr(target, member):
                    found.append(f"{name}.{member}")
        return found

    def resolve(self, handle: Any, names: Sequence[str]) -> list[str]:
        """The names vkGetInstanceProcAddr(handle, name) answers non-NULL."""
        ffi, gipa = self.ffi, self.lib.vkGetInstanceProcAddr
        target = handle if handle is not None else ffi.NULL
        return [n for n in names if gipa(target, n.encode()) != ffi.NULL]

    def trampolines(self, names: Sequence[str], resolve: Any = None) -> dict[str, dict[str, str]]:
        """Exported symbol address vs what ``resolve`` (default vkGetInstanceProcAddr on this
        instance) returns, for a few commands: equal means the loader's trampoline."""
        ffi, lib = self.ffi, self.lib
        resolve = resolve or (lambda n: lib.vkGetInstanceProcAddr(self.instance, n))
        rows: dict[str, dict[str, str]] = {}
        for name in names:
            try:
                exported = int(ffi.cast("uintptr_t", ffi.addressof(lib, name)))
            except (AttributeError, ffi.error):
                continue
            returned = int(ffi.cast("uintptr_t", resolve(name.encode())))
            # library+offset, not raw addresses: reports stay identical from run to run.
            rows[name] = {
                "dlsym": dl.symbolize(exported),
                "returned": dl.symbolize(returned),
                "same": str(exported == returned).lower(),
            }
        return rows

    def destroy(self) -> None:
        if self.instance is not None:
            self.emit.crumb("vkDestroyInstance")
            self.lib.vkDestroyInstance(self.instance, self.ffi.NULL)
            self.instance = None


def _apply(environ: dict[str, str | None]) -> dict[str, str | None]:
    """Set variables for the loader (it reads them at each vkCreateInstance); returns the old
    values so the next batch item starts from the original environment."""
    import os

    previous = {key: os.environ.get(key) for key in environ}
    for key, value in environ.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    return previous


def instances(payload: dict[str, Any], emit: Emitter) -> None:
    """Batch items: each creates an instance (under the item's variables, e.g. one driver alone),
    optionally checks every proc address, and lists the physical devices."""
    for item in payload["items"]:
        key = item["key"]
        emit.begin(key)
        previous = _apply(item.get("environ") or {})
        try:
            _instance_item(item, emit)
        finally:
            _apply(previous)
        emit.end(key)


def _instance_item(item: dict[str, Any], emit: Emitter) -> None:
    session = Session(emit, item.get("layers", ()))
    code = session.create()
    emit.result(
        {
            "create": {
                "result": code,
                "api_version": vkversion.to_string(session.api_version),
                "enabled_extensions": session.enabled,
                "available_extensions": session.available,
            }
        }
    )
    if code != 0:
        emit.result({"messages": session.messages})
        return
    names = item.get("names")
    if names:
        emit.crumb("vkGetInstanceProcAddr(NULL, every command)")
        null_ok = session.resolve(None, names)
        emit.crumb("vkGetInstanceProcAddr(instance, every command)")
        instance_ok = session.resolve(session.instance, names)
        emit.result(
            {
                "proc": {
                    "gipa_null": null_ok,
                    "gipa_instance": instance_ok,
                    "trampolines": session.trampolines(item.get("trampoline_names", [])),
                }
            }
        )
    code, devices = session.physical_devices()
    rows = []
    if code >= 0:
        for index, physical in enumerate(devices):
            row = session.describe(physical)
            row["index"] = index
            rows.append(row)
    emit.result({"devices": {"result": code, "devices": rows}})
    if item.get("groups") and code >= 0 and vkversion.at_least(session.api_version, 1, 1):
        from vkdoctor.tasks.devicegroups import device_groups

        emit.result({"device_groups": device_groups(session, devices)})
    session.destroy()
    emit.result({"messages": session.messages})


# Fixed tables, not binding.flag_names over the binding's enums (as vulkan/device.py does): these
# words are the check report's vocabulary (--require, report diff), which must not change with
# the binding's version.
SUBGROUP_OPERATIONS = {
    0x1: "basic",
    0x2: "vote",
    0x4: "arithmetic",
    0x8: "ballot",
    0x10: "shuffle",
    0x20: "shuffle-relative",
    0x40: "clustered",
    0x80: "quad",
}
SHADER_STAGES = {
    0x1: "vertex",
    0x2: "tessellation-control",
    0x4: "tessellation-evaluation",
    0x8: "geometry",
    0x10: "fragment",
    0x20: "compute",
}


def _bits(names: dict[int, str], value: int) -> list[str]:
    return [name for bit, name in names.items() if value & bit]


QUEUE_FLAGS = {0x1: "graphics", 0x2: "compute", 0x4: "transfer", 0x8: "sparse", 0x10: "protected"}


def _queue_families(session: Session, physical: Any) -> list[dict[str, Any]]:
    ffi, lib = session.ffi, session.lib
    session.emit.crumb("vkGetPhysicalDeviceQueueFamilyProperties")
    props, count = queue_family_properties(ffi, lib, physical)
    return [
        {
            "index": i,
            "count": props[i].queueCount,
            "timestamp_valid_bits": props[i].timestampValidBits,
            "flags": [name for bit, name in QUEUE_FLAGS.items() if props[i].queueFlags & bit],
        }
        for i in range(count)
    ]


def _memory(session: Session, physical: Any) -> dict[str, Any]:
    ffi, lib = session.ffi, session.lib
    session.emit.crumb("vkGetPhysicalDeviceMemoryProperties")
    mem = ffi.new("VkPhysicalDeviceMemoryProperties *")
    lib.vkGetPhysicalDeviceMemoryProperties(physical, mem)
    heap_flags = {0x1: "device-local", 0x2: "multi-instance"}
    type_flags = {
        0x1: "device-local",
        0x2: "host-visible",
        0x4: "host-coherent",
        0x8: "host-cached",
        0x10: "lazily-allocated",
        0x20: "protected",
    }
    return {
        "heaps": [
            {
                "size": mem.memoryHeaps[i].size,
                "flags": [n for b, n in heap_flags.items() if mem.memoryHeaps[i].flags & b],
            }
            for i in range(mem.memoryHeapCount)
        ],
        "types": [
            {
                "heap": mem.memoryTypes[i].heapIndex,
                "flags": [n for b, n in type_flags.items() if mem.memoryTypes[i].propertyFlags & b],
            }
            for i in range(mem.memoryTypeCount)
        ],
    }


def _device_extensions(session: Session, physical: Any) -> dict[str, int]:
    """Supported device extensions with the revision (specVersion) the driver implements."""
    ffi, lib = session.ffi, session.lib
    session.emit.crumb("vkEnumerateDeviceExtensionProperties")
    _code, props, n = enumerate_array(
        ffi, lib.vkEnumerateDeviceExtensionProperties, "VkExtensionProperties", physical, ffi.NULL
    )
    return {cstr(ffi, props[i].extensionName): props[i].specVersion for i in range(n)}


def _create_device(
    session: Session, physical: Any, family: int, extensions: list[str]
) -> tuple[int, Any]:
    ffi, lib, vk = session.ffi, session.lib, session.vk
    priority = ffi.new("float *", 1.0)
    queue = ffi.new(
        "VkDeviceQueueCreateInfo *",
        {
            "sType": vk.VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
            "queueFamilyIndex": family,
            "queueCount": 1,
            "pQueuePriorities": priority,
        },
    )
    names = [ffi.new("char[]", e.encode()) for e in extensions]
    array = ffi.new("char *[]", names) if names else ffi.NULL
    info = ffi.new(
        "VkDeviceCreateInfo *",
        {
            "sType": vk.VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
            "queueCreateInfoCount": 1,
            "pQueueCreateInfos": queue,
            "enabledExtensionCount": len(names),
            "ppEnabledExtensionNames": array,
        },
    )
    handle = ffi.new("VkDevice *")
    session.emit.crumb(f"vkCreateDevice(queue family {family}, {len(extensions)} extensions)")
    code = lib.vkCreateDevice(physical, info, ffi.NULL, handle)
    return code, handle[0] if code == 0 else None


class _Background:
    """A call run on a daemon thread; ``result`` waits for it and re-raises what it raised."""

    def __init__(self, call: Callable[[], list[str]]) -> None:
        self._call = call
        self._value: list[str] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="vkdoctor-registry", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._call()
        except BaseException as exc:  # handed to the caller's thread
            self._error = exc

    def result(self) -> list[str]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _device_command_names() -> list[str]:
    """The registry's device-level commands, as the device probe lists them ([] without the
    registry: the probe then finds the count differs and runs the device itself)."""
    from vkdoctor.loader.registry import Level, RegistryError, load_commands

    try:
        table = load_commands(environ=os.environ)
    except RegistryError:
        return []
    return sorted(c.name for c in table if c.level is Level.DEVICE)


def devices(payload: dict[str, Any], emit: Emitter) -> None:
    """Per physical device (a batch item each): queues, memory, device creation with a compute
    queue and every supported extension, and every device command through vkGetDeviceProcAddr."""
    names = payload.get("names")
    reading = None
    if names is None:  # the probe's early start: the registry's device commands, read here
        # on a thread, while this one is inside the loader loading the drivers (C, no GIL):
        # ~20 ms off the H200's longest path.
        reading = _Background(_device_command_names)
    session = Session(emit)
    code = session.create()
    if code != 0:
        raise RuntimeError(f"vkCreateInstance returned {code} in the device probe")
    code, handles = session.physical_devices()
    if reading is not None:
        names = reading.result()
    ffi, lib = session.ffi, session.lib
    items = payload["items"]
    if items is None:  # every device this instance sees (the probe's early start)
        items = [{"key": str(index), "index": index} for index in range(len(handles))]
    for item in items:
        key, index = item["key"], item["index"]
        emit.begin(key)
        if index >= len(handles):
            emit.result({"missing": True})
            emit.end(key, ok=False)
            continue
        physical = handles[index]
        properties = ffi.new("VkPhysicalDeviceProperties *")
        lib.vkGetPhysicalDeviceProperties(physical, properties)
        row: dict[str, Any] = {
            # Which device, and against how many commands: an early start's result is adopted
            # only for the device the instance probe listed at this index, checked alike.
            "name": cstr(ffi, properties.deviceName),
            "names_checked": len(names),
            "queue_families": _queue_families(session, physical),
            "memory": _memory(session, physical),
        }
        supported = _device_extensions(session, physical)
        row["supported_extensions"] = supported
        compute = [f["index"] for f in row["queue_families"] if "compute" in f["flags"]]
        if not compute:
            row["no_compute"] = True
            emit.result(row)
            emit.end(key)
            continue
        enabled = sorted(supported)
        code, device = _create_device(session, physical, compute[0], enabled)
        if code < 0 and enabled:
            row["all_extensions_result"] = code  # some drivers refuse combinations: core only
            enabled = []
            code, device = _create_device(session, physical, compute[0], enabled)
        row.update(create_result=code, enabled_extensions=enabled, compute_family=compute[0])
        if device is not None:
            emit.crumb("vkGetDeviceProcAddr(device, every device command)")
            row["gdpa"] = [
                n for n in names if lib.vkGetDeviceProcAddr(device, n.encode()) != ffi.NULL
            ]
            row["gdpa_addresses"] = session.trampolines(
                payload.get("trampoline_names", []),
                lambda n: lib.vkGetDeviceProcAddr(device, n),  # noqa: B023 - used right away
            )
            emit.crumb("vkGetInstanceProcAddr(instance, every device command)")
            row["gipa"] = session.resolve(session.instance, names)
            emit.crumb("vkDestroyDevice")
            lib.vkDestroyDevice(device, ffi.NULL)
        emit.result(row)
        emit.end(key)
    session.destroy()
