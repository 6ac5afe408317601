"""The finding codes of the trace analysis (``vkdoctor explain CODE`` reads them)."""

from __future__ import annotations

from typing import Any

from vkdoctor.report.codes import CodeInfo, code_table, make_finding
from vkdoctor.report.model import Finding, Severity

CODES = code_table(
    [
        CodeInfo(
            "premature-unload",
            Severity.FAIL,
            "Vulkan library unloaded while still in use",
            "libvulkan, a driver or a layer was unmapped (dlclose) while a VkInstance or VkDevice "
            "created through it was still alive. Every function pointer and dispatch table that "
            "points into it now dangles; the next call through one of them jumps into unmapped "
            "memory.",
            (
                "a loader wrapper object (vk::DynamicLoader, a RuntimeLoader member) whose "
                "destructor calls dlclose before the instance is destroyed",
                "a plugin that dlopens libvulkan itself and dlcloses it on unload",
            ),
            "Keep the libvulkan handle open until after the last Vulkan call: make the loader "
            "object outlive the instance (static, or owned by the object that owns the "
            "instance), destroy devices and instances first, or dlopen it with RTLD_NODELETE.",
        ),
        CodeInfo(
            "call-after-unload",
            Severity.FAIL,
            "Call into an unloaded Vulkan library",
            "The program crashed with its instruction pointer (or the faulting address) inside "
            "the former mapping of a Vulkan library that had been unloaded: a function pointer "
            "obtained before the dlclose was called after it.",
            (
                "cached PFN_vk* pointers used after dlclose of libvulkan",
                "driver pointers from vkGetDeviceProcAddr used after vkDestroyInstance unloaded "
                "the driver",
            ),
            "Do not unload libvulkan (or destroy the instance, which unloads drivers and layers) "
            "while pointers obtained from it can still be called.",
        ),
        CodeInfo(
            "loader-bypass",
            Severity.FAIL,
            "Driver entry points used directly",
            "The program took Vulkan entry points straight from a driver library (dlsym on the "
            "ICD, or linked against it), bypassing the loader: layers never see those calls, "
            "the driver's objects are not the loader's, and it breaks as soon as another driver "
            "or layer is involved.",
            ("dlopen of libvulkan_*.so / an ICD library and dlsym of vk* from it",),
            "Load only libvulkan.so.1, take vkGetInstanceProcAddr from it, and fetch everything "
            "else with vkGetInstanceProcAddr / vkGetDeviceProcAddr (volk, "
            "vk::DispatchLoaderDynamic).",
        ),
        CodeInfo(
            "dlsym-entry-point",
            Severity.INFO,
            "Vulkan commands taken with dlsym from libvulkan",
            "Only vkGetInstanceProcAddr should be taken from libvulkan with dlsym. The loader "
            "exports trampolines for the core commands of its own version only: extension "
            "commands are missing, newer core commands are missing on older loaders, and a "
            "device command that is not enabled on the device crashes when called.",
            ("hand-rolled loading code", "bindings that dlsym every core command"),
            "Take vkGetInstanceProcAddr with dlsym and load everything else through it and "
            "vkGetDeviceProcAddr.",
        ),
        CodeInfo(
            "device-command-via-gipa",
            Severity.INFO,
            "Device commands fetched with vkGetInstanceProcAddr",
            "Device-level commands obtained with vkGetInstanceProcAddr are loader trampolines: "
            "every call looks up the device's dispatch table first. vkGetDeviceProcAddr returns "
            "the driver's (or the top layer's) function directly.",
            ("one instance-level dispatch table used for everything",),
            "After vkCreateDevice, load device commands with vkGetDeviceProcAddr(device, ...) "
            "(volkLoadDevice, VULKAN_HPP_DEFAULT_DISPATCHER.init(device)).",
        ),
        CodeInfo(
            "gipa-null-instance",
            Severity.WARN,
            "vkGetInstanceProcAddr(NULL, …) for a non-global command",
            "With a NULL instance only vkEnumerateInstanceVersion, "
            "vkEnumerateInstanceExtensionProperties, vkEnumerateInstanceLayerProperties, "
            "vkCreateInstance and vkGetInstanceProcAddr may be queried. Loaders since 1.2.19x "
            "return NULL for anything else; older ones returned a pointer, so the bug appears "
            "after an upgrade.",
            ("layers or loading code written against old loaders",),
            "Pass the VkInstance for every command that is not one of the five global ones.",
        ),
        CodeInfo(
            "device-pointers-shared",
            Severity.WARN,
            "Device function pointers likely used with another device",
            "Several devices were alive at once but vkGetDeviceProcAddr was only ever asked for "
            "some of them. Pointers from vkGetDeviceProcAddr belong to the device they were "
            "fetched for; calling them with another device works only while both devices sit on "
            "the same driver and layers.",
            ("a single global dispatch table initialised with the first device",),
            "Keep one dispatch table per VkDevice (volkLoadDeviceTable, "
            "vk::DispatchLoaderDynamic per device), or use instance-level pointers for code that "
            "serves several devices.",
        ),
        CodeInfo(
            "instance-destroyed-before-devices",
            Severity.FAIL,
            "vkDestroyInstance while its devices are alive",
            "The instance was destroyed while devices created from it still existed. "
            "vkDestroyInstance unloads the driver and layer libraries, so those devices can no "
            "longer be used or even destroyed safely.",
            (
                "teardown in the wrong order",
                "static or global objects destroyed in unspecified order at exit",
            ),
            "Destroy every device (after vkDeviceWaitIdle) before destroying its instance.",
        ),
        CodeInfo(
            "use-after-destroy",
            Severity.FAIL,
            "Vulkan handle used after it was destroyed",
            "A VkInstance or VkDevice was passed to Vulkan after it had been destroyed.",
            ("a handle kept in a wrapper after its destroy call", "double destroy"),
            "Reset stored handles to VK_NULL_HANDLE when destroying them; destroy each object "
            "exactly once.",
        ),
        CodeInfo(
            "unknown-handle",
            Severity.WARN,
            "Vulkan handle that was never created",
            "A handle was passed to vkGetInstanceProcAddr / vkGetDeviceProcAddr that no "
            "vkCreateInstance / vkCreateDevice ever returned in this process.",
            (
                "a handle truncated to 32 bits by ctypes (missing restype/argtypes)",
                "an instance passed where a device is expected, or the reverse",
            ),
            "Check the handle's origin; with ctypes declare restype=c_void_p for functions "
            "returning pointers and argtypes for every call.",
        ),
        CodeInfo(
            "vulkan-objects-leaked",
            Severity.INFO,
            "Instances or devices still alive at a normal exit",
            "The process exited normally without destroying every VkInstance / VkDevice. That is "
            "harmless at exit: the kernel and the driver release everything with the process. "
            "Many correct programs (wgpu, Python bindings) leave their instance to process "
            "teardown.",
            ("objects owned by globals or a garbage-collected runtime",),
            "Nothing is needed; to exit cleanly, destroy devices, then instances, before "
            "returning from main.",
        ),
        CodeInfo(
            "vulkan-objects-accumulated",
            Severity.WARN,
            "Instances or devices accumulate",
            "The process created many instances or devices and destroyed few of them: each one "
            "keeps driver memory, threads and file descriptors, so a long-running program "
            "grows until vkCreateInstance / vkCreateDevice fails.",
            ("an instance or device created per task, in a loop, and never destroyed",),
            "Create the instance and device once and reuse them, or destroy each one "
            "(vkDestroyDevice, then vkDestroyInstance) when its task is done.",
        ),
        CodeInfo(
            "multiple-vulkan-loaders",
            Severity.WARN,
            "Two different libvulkan copies in one process",
            "Two distinct libvulkan files were mapped at the same time. Each copy keeps its own "
            "instances, reads the environment with its own version's rules and loads its own "
            "drivers; objects from one must never reach the other.",
            (
                "a bundled libvulkan next to the system one",
                "a plugin or wheel carrying its own loader",
            ),
            "Remove the bundled copy so that every component uses the system libvulkan.so.1.",
        ),
        CodeInfo(
            "fork-after-vulkan-init",
            Severity.WARN,
            "fork() with Vulkan objects alive",
            "The process forked while instances or devices existed. Only the forking thread is "
            "copied: driver threads, locks and device file state are not valid in the child, "
            "which may hang or lose the device when it uses Vulkan.",
            ("Python multiprocessing with the default 'fork' start method",),
            "Create Vulkan objects after forking, exec in the child, or use multiprocessing's "
            "'spawn'/'forkserver' start method.",
        ),
        CodeInfo(
            "null-proc-addr-called",
            Severity.FAIL,
            "Call through a NULL function pointer",
            "The program jumped to address 0 after vkGetInstanceProcAddr / vkGetDeviceProcAddr "
            "had returned NULL: the pointer was called without being checked.",
            (
                "extension not enabled at vkCreateDevice",
                "core command above the API version",
                "instance-level command asked from vkGetDeviceProcAddr",
            ),
            "Check every returned pointer; enable the extension or raise the API version, or "
            "ask vkGetInstanceProcAddr for instance-level commands.",
        ),
        CodeInfo(
            "unsupported-command-called",
            Severity.FAIL,
            "Command called on a device that does not have it",
            "The program called a Vulkan command through a pointer taken from libvulkan by name "
            "(dlsym, or linking against it). That pointer is a loader trampoline: it jumps "
            "through the device's dispatch table, and the slot for this command is empty "
            "because the device does not support it (vkGetDeviceProcAddr answers NULL for "
            "it), so the call lands at address 0.",
            (
                "a core command of a newer Vulkan version than the instance's apiVersion",
                "an extension command whose extension or feature was not enabled",
            ),
            "Load device commands with vkGetDeviceProcAddr(device, ...) and check for NULL; "
            "raise VkApplicationInfo.apiVersion or enable the extension and its feature.",
        ),
        CodeInfo(
            "program-crashed",
            Severity.FAIL,
            "The traced program crashed",
            "The program died from a fatal signal.",
            (),
            "Run it under a debugger (gdb --args ...) at the address reported.",
        ),
        CodeInfo(
            "program-timeout",
            Severity.FAIL,
            "The traced program did not finish in time",
            "The program was still running when the --timeout expired and was killed.",
            ("a hang in vkCreateInstance or a driver", "a wait on a fence after fork()"),
            "Raise --timeout if the program is just slow; otherwise attach gdb to see where it "
            "waits.",
        ),
        CodeInfo(
            "program-exit-nonzero",
            Severity.INFO,
            "The traced program exited with a non-zero status",
            "The program ran to completion and reported failure through its exit status.",
            (),
            "",
        ),
    ]
)


def finding(code: str, summary: str, **kwargs: Any) -> Finding:
    """A finding of the trace analysis, built from this table."""
    return make_finding(CODES, code, summary, **kwargs)
