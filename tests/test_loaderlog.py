from vkdoctor.loader import log as loaderlog

OLD = """INFO:             Vulkan Loader Version 1.3.239
DRIVER:           Searching for driver manifest files
DRIVER:              In following locations:
DRIVER:                 /etc/vulkan/icd.d
DRIVER:                 /usr/share/vulkan/icd.d
DRIVER:              Found the following files:
DRIVER:                 /usr/share/vulkan/icd.d/lvp_icd.x86_64.json
DEBUG | DRIVER:   Searching for ICD drivers named /usr/lib/x86_64-linux-gnu/libvulkan_lvp.so
WARNING:          vkEnumerateInstanceLayerProperties: Unable to resolve symbol "" in implicit layer library "libVkLayer_MESA_device_select.so"
error: XDG_RUNTIME_DIR is invalid or not set in the environment.
"""
NEW = """[Vulkan Loader] ERROR | DRIVER: vkCreateInstance: Found no drivers!
[Vulkan Loader] WARNING | LAYER:  Implicit layer "VK_LAYER_MESA_device_select" forced disabled because name matches filter of env var 'VK_LOADER_LAYERS_DISABLE'.
ERROR: [Loader Message] Code 0 : loader_scanned_icd_add: Could not get 'vkCreateInstance' via 'vk_icdGetInstanceProcAddr' for ICD libGLX_nvidia.so.0
"""


def test_old_format_levels_and_categories() -> None:
    entries = loaderlog.parse(OLD)
    assert entries[0].level == "info" and entries[0].message == "Vulkan Loader Version 1.3.239"
    assert entries[1].categories == ("driver",) and entries[1].level == "info"
    searching = entries[7]
    assert searching.level == "debug" and searching.categories == ("driver",)
    assert searching.message.endswith("libvulkan_lvp.so")


def test_new_format_and_vulkaninfo_reprint() -> None:
    error, warning, reprint = loaderlog.parse(NEW)
    assert (error.level, error.categories, error.message) == (
        "error",
        ("driver",),
        "vkCreateInstance: Found no drivers!",
    )
    assert warning.level == "warn" and warning.categories == ("layer",)
    assert reprint.level == "error" and "Could not get 'vkCreateInstance'" in reprint.message


def test_harmless_lines_are_classified_not_problems() -> None:
    entries = loaderlog.parse(OLD)
    device_select = next(e for e in entries if "Unable to resolve symbol" in e.message)
    assert device_select.level == "warn"
    assert device_select.classification == "harmless:device-select-empty-symbol"
    wayland = entries[-1]
    assert wayland.level == "other" and wayland.classification == "harmless:wayland-xdg-runtime-dir"
    assert loaderlog.problems(entries) == []
    assert next(e.message for e in loaderlog.problems(loaderlog.parse(NEW))).startswith(
        "vkCreateInstance"
    )


def test_discovery_view_reads_locations_and_files() -> None:
    view = loaderlog.discovery(loaderlog.parse(OLD), "driver")
    assert view.locations == ("/etc/vulkan/icd.d", "/usr/share/vulkan/icd.d")
    assert view.files == ("/usr/share/vulkan/icd.d/lvp_icd.x86_64.json",)
