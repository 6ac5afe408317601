"""The command registry: table contents, the proc-address rules, the cache, and the real loader."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vkdoctor.loader import registry
from vkdoctor.loader.registry import (
    CommandTable,
    Expect,
    ExtensionKind,
    Level,
    RegistryError,
    evaluate_depends,
)

SPEC_GLOBALS = {
    "vkCreateInstance",
    "vkEnumerateInstanceVersion",
    "vkEnumerateInstanceExtensionProperties",
    "vkEnumerateInstanceLayerProperties",
}


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> CommandTable:
    return registry.load_commands(tmp_path_factory.mktemp("registry-cache"))


def names(commands: list[registry.Command]) -> set[str]:
    return {c.name for c in commands}


# ---- table contents ------------------------------------------------------------------------------


def test_known_core_commands(table: CommandTable) -> None:
    buf = table["vkCreateBuffer"]
    assert (buf.level, buf.version, buf.providers, buf.alias) == (Level.DEVICE, (1, 0), (), None)
    assert buf.dispatch_type == "VkDevice" and not buf.physical_device

    barrier = table["vkCmdPipelineBarrier2"]
    assert (barrier.level, barrier.version) == (Level.DEVICE, (1, 3))
    assert barrier.dispatch_type == "VkCommandBuffer"

    props2 = table["vkGetPhysicalDeviceProperties2"]
    assert (props2.level, props2.version, props2.physical_device) == (Level.INSTANCE, (1, 1), True)


def test_promoted_alias(table: CommandTable) -> None:
    khr = table["vkCmdPipelineBarrier2KHR"]
    assert khr.alias == "vkCmdPipelineBarrier2"
    assert khr.version is None and khr.extensions == ("VK_KHR_synchronization2",)
    assert khr.providers[0].kind is ExtensionKind.DEVICE
    assert "vkCmdPipelineBarrier2KHR" in table.aliases_of("vkCmdPipelineBarrier2")
    assert table.canonical("vkTrimCommandPoolKHR") == "vkTrimCommandPool"
    assert table.aliases_of("vkTrimCommandPoolKHR") == ("vkTrimCommandPoolKHR",)


def test_instance_extension_command(table: CommandTable) -> None:
    msgr = table["vkCreateDebugUtilsMessengerEXT"]
    assert (msgr.level, msgr.version, msgr.extensions) == (
        Level.INSTANCE,
        None,
        ("VK_EXT_debug_utils",),
    )
    ext = table.extensions["VK_EXT_debug_utils"]
    assert ext.kind is ExtensionKind.INSTANCE
    assert "vkCreateDebugUtilsMessengerEXT" in ext.commands
    # device-level commands of an instance extension exist and keep the device level
    assert table["vkCmdBeginDebugUtilsLabelEXT"].level is Level.DEVICE


def test_globals_are_derived_not_listed(table: CommandTable) -> None:
    # "global" comes from the first parameter not being a dispatchable handle; it must match the
    # spec's footnote list exactly
    assert {c.name for c in table if c.level is Level.GLOBAL} == SPEC_GLOBALS
    assert table["vkCreateInstance"].level is Level.GLOBAL
    assert table["vkGetInstanceProcAddr"].level is Level.INSTANCE
    assert table["vkGetDeviceProcAddr"].level is Level.DEVICE
    assert table["vkCreateDevice"].physical_device


def test_table_shape(table: CommandTable) -> None:
    assert len(table) > 600
    major, minor, patch = (int(x) for x in table.version.split("."))
    assert (major, minor) >= (1, 3) and patch > 200
    assert "vkGetFaultData" not in table  # Vulkan SC only
    for cmd in table:
        assert (cmd.version is None) != (not cmd.providers), cmd.name
        assert cmd.alias is None or cmd.alias in table, cmd.name
        if cmd.level is Level.DEVICE:
            assert cmd.dispatch_type not in (None, "VkInstance", "VkPhysicalDevice"), cmd.name
    versions = {c.version for c in table if c.version}
    assert {(1, 0), (1, 1), (1, 2), (1, 3)} <= versions


def test_conditional_provider(table: CommandTable) -> None:
    cmd = table["vkAcquireNextImage2KHR"]
    by_ext = {p.extension: p.condition for p in cmd.providers}
    assert by_ext == {
        "VK_KHR_swapchain": "VK_VERSION_1_1",
        "VK_KHR_device_group": "VK_KHR_swapchain",
    }


# ---- rules ---------------------------------------------------------------------------------------


def test_expected_globals(table: CommandTable) -> None:
    assert names(table.expected_global_commands()) == SPEC_GLOBALS | {"vkGetInstanceProcAddr"}
    old = names(table.expected_global_commands(loader_version=(1, 0)))
    assert "vkEnumerateInstanceVersion" not in old and "vkGetInstanceProcAddr" not in old


def test_gipa_null(table: CommandTable) -> None:
    def null(name: str) -> bool:
        return table.gipa_null_verdict(name).expect is Expect.NULL

    assert null("vkCreateDevice")
    assert null("vkEnumeratePhysicalDevices")
    assert null("vkCmdDraw")
    assert null("vkNoSuchCommand")
    assert not null("vkGetInstanceProcAddr")
    for name in SPEC_GLOBALS:
        assert not null(name)


def test_instance_commands_for(table: CommandTable) -> None:
    at11 = names(table.instance_commands_for((1, 1), set()))
    assert {"vkGetPhysicalDeviceProperties2", "vkTrimCommandPool", "vkCreateBuffer"} <= at11
    assert "vkGetInstanceProcAddr" in at11 and "vkGetDeviceProcAddr" in at11
    assert not at11 & SPEC_GLOBALS
    assert "vkCmdPipelineBarrier2" not in at11
    assert "vkCreateDebugUtilsMessengerEXT" not in at11

    with_utils = names(table.instance_commands_for((1, 1), {"VK_EXT_debug_utils"}))
    assert {"vkCreateDebugUtilsMessengerEXT", "vkCmdBeginDebugUtilsLabelEXT"} <= with_utils

    # device extensions count only when the caller knows they are available
    assert "vkCreateSwapchainKHR" not in with_utils
    avail = names(table.instance_commands_for((1, 3), {"VK_KHR_surface"}, {"VK_KHR_swapchain"}))
    assert "vkCreateSwapchainKHR" in avail


def test_gipa_verdicts(table: CommandTable) -> None:
    v = table.gipa_verdict
    assert v("vkCreateInstance", (1, 3), set()).expect is Expect.NULL_TOLERATED
    assert v("vkCmdPushDescriptorSet", (1, 3), set()).expect is Expect.EITHER
    assert v("vkCreateDebugUtilsMessengerEXT", (1, 3), set()).expect is Expect.NULL
    # a device extension nobody supports: the loader returns its trampoline anyway (#306)
    swap = v("vkCreateSwapchainKHR", (1, 3), {"VK_KHR_surface"}, set())
    assert swap.expect is Expect.NULL_TOLERATED
    # loader 1.3.239 returns get_surface_capabilities2 functions once VK_KHR_surface is enabled
    caps2 = v("vkGetPhysicalDeviceSurfaceCapabilities2KHR", (1, 3), {"VK_KHR_surface"})
    assert caps2.expect is Expect.NULL_TOLERATED
    assert v("vkGetPhysicalDeviceSurfaceCapabilities2KHR", (1, 3), set()).expect is Expect.NULL


def test_device_commands_for(table: CommandTable) -> None:
    at13 = names(table.device_commands_for((1, 3), set()))
    assert {"vkCreateBuffer", "vkCmdPipelineBarrier2", "vkGetDeviceProcAddr"} <= at13
    assert "vkCmdPipelineBarrier2KHR" not in at13  # alias needs its own extension
    assert "vkGetPhysicalDeviceProperties2" not in at13
    assert "vkCreateSwapchainKHR" not in at13
    assert all(table[n].level is Level.DEVICE for n in at13)

    at10 = names(table.device_commands_for((1, 0), set()))
    assert "vkTrimCommandPool" not in at10 and "vkCreateBuffer" in at10

    sync2 = names(table.device_commands_for((1, 1), {"VK_KHR_synchronization2"}, set()))
    assert "vkCmdPipelineBarrier2KHR" in sync2

    # VK_KHR_swapchain depends on the instance extension VK_KHR_surface: unknown until told
    swap_unknown = names(table.device_commands_for((1, 3), {"VK_KHR_swapchain"}))
    assert "vkCreateSwapchainKHR" not in swap_unknown
    swap = names(table.device_commands_for((1, 3), {"VK_KHR_swapchain"}, {"VK_KHR_surface"}))
    assert "vkCreateSwapchainKHR" in swap


def test_require_block_condition(table: CommandTable) -> None:
    # VK_KHR_swapchain provides vkAcquireNextImage2KHR only with Vulkan 1.1
    surface = {"VK_KHR_surface"}
    at10 = table.gdpa_verdict("vkAcquireNextImage2KHR", (1, 0), {"VK_KHR_swapchain"}, surface)
    at11 = table.gdpa_verdict("vkAcquireNextImage2KHR", (1, 1), {"VK_KHR_swapchain"}, surface)
    assert at10.expect is Expect.NULL and at11.expect is Expect.NON_NULL
    # ... or at 1.0 through VK_KHR_device_group, which needs VK_KHR_device_group_creation
    group = {"VK_KHR_swapchain", "VK_KHR_device_group"}
    both = table.gdpa_verdict("vkAcquireNextImage2KHR", (1, 0), group, surface)
    assert both.expect is Expect.EITHER  # enabled without its dependency: undefined, not NULL
    creation = surface | {"VK_KHR_device_group_creation"}
    both = table.gdpa_verdict("vkAcquireNextImage2KHR", (1, 0), group, creation)
    assert both.expect is Expect.NON_NULL


def test_gdpa_null_rules(table: CommandTable) -> None:
    def null(name: str, api: tuple[int, int], dev: set[str], maintenance5: bool = False) -> bool:
        verdict = table.gdpa_verdict(name, api, dev, set(), maintenance5=maintenance5)
        return verdict.expect in (Expect.NULL, Expect.NULL_TOLERATED)

    assert null("vkGetPhysicalDeviceProperties", (1, 3), set())
    assert null("vkCreateDevice", (1, 3), set())
    assert null("vkCreateInstance", (1, 3), set())
    assert null("vkGetInstanceProcAddr", (1, 3), set())
    assert null("vkCreateSwapchainKHR", (1, 3), set())
    assert not null("vkCreateBuffer", (1, 0), set())
    # above the version: the spec allows either, unless maintenance5 is enabled
    assert not null("vkCmdPipelineBarrier2", (1, 1), set())
    assert null("vkCmdPipelineBarrier2", (1, 1), set(), maintenance5=True)

    verdict = table.gdpa_verdict("vkGetPhysicalDeviceProperties", (1, 3), set())
    assert (verdict.expect, verdict.reason) == (Expect.NULL, "physical-device-level")
    missing = table.gdpa_verdict("vkCreateSwapchainKHR", (1, 3), set(), set())
    assert missing.expect is Expect.NULL and "VK_KHR_swapchain" in missing.needs
    above = table.gdpa_verdict("vkCmdPipelineBarrier2", (1, 1), set())
    assert above.needs == ("VK_VERSION_1_3",)


def test_gdpa_tolerated(table: CommandTable) -> None:
    trim = table.gdpa_verdict("vkTrimCommandPoolKHR", (1, 1), set(), set())
    assert trim.expect is Expect.NULL_TOLERATED
    # at 1.0 the core command is not there either: a pointer would be a plain violation
    assert table.gdpa_verdict("vkTrimCommandPoolKHR", (1, 0), set(), set()).expect is Expect.NULL
    label = table.gdpa_verdict("vkCmdBeginDebugUtilsLabelEXT", (1, 3), set(), set())
    assert label.expect is Expect.NULL_TOLERATED
    enabled = table.gdpa_verdict(
        "vkCmdBeginDebugUtilsLabelEXT", (1, 3), set(), {"VK_EXT_debug_utils"}
    )
    assert enabled.expect is Expect.NON_NULL


def test_unknown_name(table: CommandTable) -> None:
    assert table.gdpa_verdict("vkFrobnicate", (1, 3), set()).expect is Expect.EITHER
    assert table.gipa_verdict("vkFrobnicate", (1, 3), set()).expect is Expect.EITHER


def test_api_version_from_packed() -> None:
    assert registry.api_version_from_packed((1 << 22) | (3 << 12) | 239) == (1, 3)
    assert registry.api_version_from_packed(0) == (1, 0)


# ---- depends expressions -------------------------------------------------------------------------


def test_depends_precedence_is_left_to_right() -> None:
    truth = {"A": True, "B": False, "C": False}
    # vk.xml gives + and , equal precedence: "A,B+C" is (A or B) and C
    assert evaluate_depends("A,B+C", truth.get) is False
    assert evaluate_depends("A,(B+C)", truth.get) is True
    assert evaluate_depends("X+B", truth.get) is False  # unknown and false
    assert evaluate_depends("X,A", truth.get) is True  # unknown or true
    assert evaluate_depends("X+A", truth.get) is None
    for bad in ("A+", "(A", "A)", "A B", "+A", ""):
        with pytest.raises(ValueError):
            evaluate_depends(bad, truth.get)


def _all_depends_expressions() -> list[str]:
    from vulkan_object import get_vulkan_object

    vk = get_vulkan_object()
    exprs = {e.depends for e in vk.extensions.values() if e.depends}
    for cmd in vk.commands.values():
        exprs.update(c for c in cmd.definingRequirements.values() if c)
    return sorted(exprs)


def _drawn_leaves(data: st.DataObject) -> Callable[[str], bool]:
    """A leaf function whose truth values hypothesis draws once per name."""
    truth: dict[str, bool] = {}

    def leaf(name: str) -> bool:
        if name not in truth:
            truth[name] = data.draw(st.booleans(), label=name)
        return truth[name]

    return leaf


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_depends_agrees_with_vk_xml_parser(data: st.DataObject) -> None:
    from vulkan_object.parse_dependency import evaluateDependency

    for expr in _all_depends_expressions():
        leaf = _drawn_leaves(data)
        assert evaluate_depends(expr, leaf) is evaluateDependency(expr, leaf), expr


# ---- cache ---------------------------------------------------------------------------------------


def cache_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("commands-*.json"))


def test_one_process_decodes_a_cache_file_once_until_it_is_rewritten(tmp_path: Path) -> None:
    """check's instance and device probes both load the table: the second load is the first's
    table, unless the file changed since (then it is read again, not served stale)."""
    registry.load_commands(tmp_path)  # generated and cached
    read = registry.load_commands(tmp_path)
    assert read.origin == "cache"
    assert registry.load_commands(tmp_path) is read
    path = read.cache_path
    assert path is not None
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # rewritten
    again = registry.load_commands(tmp_path)
    assert again is not read and again.commands == read.commands
    path.write_text("{}")  # replaced by something unusable: regenerated, not the old table
    assert registry.load_commands(tmp_path).origin == "generated"


def test_second_load_hits_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = registry.load_commands(tmp_path)
    assert first.origin == "generated"
    assert [first.cache_path] == cache_files(tmp_path)

    def no_regeneration(source: object) -> dict[str, object]:
        raise AssertionError("regenerated although the cache is valid")

    monkeypatch.setattr(registry, "_generate", no_regeneration)
    second = registry.load_commands(tmp_path)
    assert second.origin == "cache"
    assert second.commands == first.commands
    assert second.extensions == first.extensions
    assert second.version == first.version
    assert not list(tmp_path.glob(".commands-*"))  # no temporary files left


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00\xff garbage",
        b'{"format": 1, "key": ',  # truncated write
        b"[1, 2, 3]",
        b'{"format": 999}',
    ],
    ids=["empty", "binary", "truncated", "wrong-type", "wrong-format"],
)
def test_corrupt_cache_regenerates(tmp_path: Path, content: bytes) -> None:
    path = registry.load_commands(tmp_path).cache_path
    assert path is not None
    path.write_bytes(content)
    table = registry.load_commands(tmp_path)
    assert table.origin == "generated" and "cache unusable" in (table.cache_note or "")
    assert registry.load_commands(tmp_path).origin == "cache"  # and it was rewritten


def test_mangled_rows_regenerate(tmp_path: Path) -> None:
    path = registry.load_commands(tmp_path).cache_path
    assert path is not None
    payload = json.loads(path.read_bytes())
    payload["commands"][0] = ["vkX", "sideways", None, None, [], None, None]
    path.write_text(json.dumps(payload))
    assert registry.load_commands(tmp_path).origin == "generated"


def test_stale_key_regenerates(tmp_path: Path) -> None:
    path = registry.load_commands(tmp_path).cache_path
    assert path is not None
    payload = json.loads(path.read_bytes())
    payload["key"][2] = "0.0.1"  # another vulkan-object version
    path.write_text(json.dumps(payload))
    table = registry.load_commands(tmp_path)
    assert table.origin == "generated"


def test_unwritable_cache_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    table = registry.load_commands(blocker / "vkdoctor")
    assert table.origin == "generated" and table.cache_path is None
    assert "not cached" in (table.cache_note or "")
    assert "vkCreateBuffer" in table


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand a directory to another user")
def test_foreign_cache_dir_is_not_written(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    os.chown(foreign, 65534, 65534)
    table = registry.load_commands(foreign)
    assert table.origin == "generated" and not cache_files(foreign)


def test_failed_rename_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    table = registry.load_commands(tmp_path)
    assert table.origin == "generated" and "not cached" in (table.cache_note or "")
    assert list(tmp_path.iterdir()) == []


def test_default_cache_dir() -> None:
    assert registry.default_cache_dir({"XDG_CACHE_HOME": "/x/cache", "HOME": "/h"}) == Path(
        "/x/cache/vkdoctor"
    )
    # relative XDG values are invalid per the XDG spec
    assert registry.default_cache_dir({"XDG_CACHE_HOME": "rel", "HOME": "/h"}) == Path(
        "/h/.cache/vkdoctor"
    )
    assert registry.default_cache_dir({}) is None


def test_no_cache_location_still_loads() -> None:
    table = registry.load_commands(environ={})
    assert table.origin == "generated" and table.cache_path is None
    assert "vkCreateInstance" in table


def test_missing_vulkan_object_is_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RegistryError):
        registry.load_commands(Path("/nonexistent"))


def test_warm_load_does_not_import_vulkan_object(tmp_path: Path) -> None:
    registry.load_commands(tmp_path)
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from vkdoctor.loader.registry import load_commands
        table = load_commands(Path({str(tmp_path)!r}))
        assert table.origin == "cache", table.cache_note
        assert "vulkan_object" not in sys.modules
        assert "pyparsing" not in sys.modules
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ---- the real loader -----------------------------------------------------------------------------

# Runs in a child: dlopen of drivers and any Vulkan call can crash the process (DESIGN.md).
_LOADER_PROBE = textwrap.dedent(
    """
    import json, sys
    import vulkan as vk

    ffi, lib = vk.ffi, vk.lib
    names = json.loads(sys.stdin.read())
    out = {"gipa_null": {}, "gipa": {}, "gdpa": {}}
    for name in names:
        out["gipa_null"][name] = lib.vkGetInstanceProcAddr(ffi.NULL, name.encode()) != ffi.NULL

    version = ffi.new("uint32_t*")
    lib.vkEnumerateInstanceVersion(version)
    out["loader_version"] = version[0]
    app = vk.VkApplicationInfo(
        sType=vk.VK_STRUCTURE_TYPE_APPLICATION_INFO, pApplicationName="vkdoctor-test",
        applicationVersion=1, pEngineName="vkdoctor", engineVersion=1,
        apiVersion=vk.VK_MAKE_VERSION(1, 3, 0),
    )
    inst = vk.vkCreateInstance(vk.VkInstanceCreateInfo(
        sType=vk.VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, pApplicationInfo=app,
        enabledLayerCount=0, ppEnabledLayerNames=None,
        enabledExtensionCount=0, ppEnabledExtensionNames=None,
    ), None)
    for name in names:
        out["gipa"][name] = lib.vkGetInstanceProcAddr(inst, name.encode()) != ffi.NULL
    pd = vk.vkEnumeratePhysicalDevices(inst)[0]
    out["device_version"] = vk.vkGetPhysicalDeviceProperties(pd).apiVersion
    out["device_extensions"] = [
        e.extensionName for e in vk.vkEnumerateDeviceExtensionProperties(pd, None)
    ]
    queue = vk.VkDeviceQueueCreateInfo(
        sType=vk.VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, queueFamilyIndex=0, queueCount=1,
        pQueuePriorities=[1.0],
    )
    dev = vk.vkCreateDevice(pd, vk.VkDeviceCreateInfo(
        sType=vk.VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, queueCreateInfoCount=1,
        pQueueCreateInfos=[queue], enabledLayerCount=0, ppEnabledLayerNames=None,
        enabledExtensionCount=0, ppEnabledExtensionNames=None, pEnabledFeatures=None,
    ), None)
    for name in names:
        out["gdpa"][name] = lib.vkGetDeviceProcAddr(dev, name.encode()) != ffi.NULL
    vk.vkDestroyDevice(dev, None)
    vk.vkDestroyInstance(inst, None)
    print(json.dumps(out))
    """
)


@dataclass(frozen=True)
class Observed:
    """What the real loader + lavapipe returned for every registry name."""

    loader_version: tuple[int, int]
    device_version: tuple[int, int]
    device_extensions: frozenset[str]
    gipa_null: Mapping[str, bool]
    gipa: Mapping[str, bool]
    gdpa: Mapping[str, bool]


@pytest.fixture(scope="module")
def real_loader(table: CommandTable) -> Observed:
    lvp = sorted(glob.glob("/usr/share/vulkan/icd.d/lvp_icd*.json"))
    if not lvp:
        pytest.skip("Mesa lavapipe is not installed")
    try:
        import vulkan  # noqa: F401  (dlopens libvulkan.so.1 at import)
    except OSError as exc:
        pytest.skip(f"no Vulkan loader: {exc}")
    env = dict(os.environ)
    # lavapipe alone: a deterministic device on any machine, and no GPU driver in the picture
    env.pop("VK_DRIVER_FILES", None)
    env["VK_ICD_FILENAMES"] = lvp[0]
    env.pop("VK_LOADER_DEBUG", None)
    done = subprocess.run(
        [sys.executable, "-c", _LOADER_PROBE],
        input=json.dumps(sorted(table.commands)),
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    raw = json.loads(done.stdout.splitlines()[-1])
    return Observed(
        loader_version=registry.api_version_from_packed(int(raw["loader_version"])),
        device_version=registry.api_version_from_packed(int(raw["device_version"])),
        device_extensions=frozenset(raw["device_extensions"]),
        gipa_null=raw["gipa_null"],
        gipa=raw["gipa"],
        gdpa=raw["gdpa"],
    )


def test_real_loader_gipa_null(table: CommandTable, real_loader: Observed) -> None:
    got = real_loader.gipa_null
    for cmd in table.expected_global_commands(real_loader.loader_version):
        assert got[cmd.name], f"vkGetInstanceProcAddr(NULL, {cmd.name}) is NULL"
    assert not got["vkCreateDevice"]
    leaked = sorted(
        n for n, ok in got.items() if ok and table.gipa_null_verdict(n).expect is Expect.NULL
    )
    assert leaked == []


def test_real_loader_gipa_instance(table: CommandTable, real_loader: Observed) -> None:
    # the instance was created with apiVersion 1.3 and no extensions
    got = real_loader.gipa
    missing, violations = [], []
    for name, ok in got.items():
        verdict = table.gipa_verdict(
            name, real_loader.loader_version, set(), real_loader.device_extensions
        )
        if verdict.expect is Expect.NON_NULL and not ok:
            missing.append(name)
        if verdict.expect is Expect.NULL and ok:
            violations.append(name)
    assert missing == [] and violations == []
    assert got["vkCmdPipelineBarrier2"] and got["vkGetPhysicalDeviceProperties2"]


def test_real_loader_gdpa(table: CommandTable, real_loader: Observed) -> None:
    got = real_loader.gdpa
    api = min((1, 3), real_loader.device_version)
    missing = [c.name for c in table.device_commands_for(api, set(), set()) if not got[c.name]]
    assert missing == []
    violations = [
        name
        for name, ok in got.items()
        if ok and table.gdpa_verdict(name, api, set(), set()).expect is Expect.NULL
    ]
    assert violations == []
    assert not got["vkGetPhysicalDeviceProperties"] and not got["vkCreateSwapchainKHR"]


def test_provisional_and_other_platform_commands_are_not_required(table: CommandTable) -> None:
    # Mesa 25's lavapipe (Debian 13) lists both extensions and returns NULL for their commands.
    for ext, name in [
        ("VK_AMDX_shader_enqueue", "vkCmdDispatchGraphAMDX"),
        (
            "VK_ANDROID_external_memory_android_hardware_buffer",
            "vkGetMemoryAndroidHardwareBufferANDROID",
        ),
    ]:
        verdict = table.gdpa_verdict(name, (1, 3), {ext}, set())
        assert verdict.expect is Expect.EITHER, verdict
    assert (
        table.gdpa_verdict(
            "vkCmdPushDescriptorSetKHR", (1, 3), {"VK_KHR_push_descriptor"}, set()
        ).expect
        is Expect.NON_NULL
    )


def test_two_threads_building_the_table_from_a_cold_cache_both_get_it(tmp_path: Path) -> None:
    """Probe threads load the table at once; vulkan-object's parser is not thread-safe (seen on
    a fresh machine: IndexError inside get_vulkan_object, exit 3)."""
    import threading

    tables: list[CommandTable] = []
    errors: list[BaseException] = []

    def load(directory: Path) -> None:
        try:
            tables.append(registry.load_commands(directory))
        except BaseException as exc:  # recorded, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(tmp_path / "cache",)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(tables) == 3 and len({t.version for t in tables}) == 1
    assert sum(t.origin == "generated" for t in tables) == 1  # built once, then read
