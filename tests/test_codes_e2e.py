"""Finding codes no other test produced, each through a real cause: a compiled fault driver or
layer, a real manifest, a real library, real variables; the headline and first remedy exactly.

tests/test_codes_produced.py checks, at the end of a whole-suite run, that every code of
``all_codes()`` was built by some test; these tests close the gaps it listed.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import faultlib
import pytest
from conftest import VkWorld, finding, needs_lavapipe

from vkdoctor.report.model import Report

pytestmark = needs_lavapipe

KERNELS = (sys.executable, "-m", "vkdoctor", "kernels")
SYSTEM_LOADER = Path("/usr/lib/x86_64-linux-gnu/libvulkan.so.1")


def _only(world: VkWorld, manifest: Path) -> dict[str, str]:
    return {"VK_DRIVER_FILES": str(manifest)}


def _first_command(found) -> str | None:
    return found.remedy.commands[0] if found.remedy and found.remedy.commands else None


@pytest.mark.slow
def test_dispatch_crash_in_vkcmddispatch(world: VkWorld, fault_driver) -> None:
    manifest, _lib = fault_driver("dispatch-crash")
    report = world.run(**_only(world, manifest))
    got = finding(report, "dispatch-crashed")
    device = finding(report, "dispatch-crashed").evidence["device"]
    assert device.startswith("llvmpipe")  # lavapipe behind the fault driver
    assert got.summary == (
        f"device 0 ({device}, driver {manifest}): SIGSEGV during: device 0: create the device, "
        "upload, compile the smoke shader, dispatch"
    )
    assert got.remedy is not None
    assert got.remedy.text == "Update the driver; check the kernel log (dmesg)."
    assert got.evidence["signal"] == "SIGSEGV"
    # The only device computes nothing: that is unusable, not "works, with problems".
    assert report.verdict.startswith(f"Vulkan is unusable: device 0 ({device}, driver {manifest})")


@pytest.mark.slow
def test_dispatch_hang_in_vkqueuesubmit(world: VkWorld, fault_driver) -> None:
    manifest, _lib = fault_driver("dispatch-hang")
    report = world.run(timeout_s=2.0, **_only(world, manifest))
    got = finding(report, "dispatch-hung")
    device = got.evidence["device"]
    assert got.summary == (
        f"device 0 ({device}, driver {manifest}): no result (timeout) during: device 0: create "
        "the device, upload, compile the smoke shader, dispatch"
    )
    assert got.remedy is not None
    assert got.remedy.text == "Check the kernel log (dmesg) for GPU resets."
    assert "dispatch-crashed" not in [f.code for _, f in report.findings()]


def test_driver_library_that_is_not_elf(world: VkWorld, tmp_path: Path) -> None:
    library = tmp_path / "libnotelf.so"
    library.write_text("this is a text file, not a shared library\n")
    manifest = world.driver("notelf.json", str(library))
    report = world.run(["loader-discovery", "driver-enumeration"], **_only(world, manifest))
    got = finding(report, "driver-library-not-elf")
    assert got.summary.startswith(f"{library} (from {manifest}) is not a shared library: ")
    # No package owns a file in a temporary folder: the dpkg question is answered and dropped.
    assert _first_command(got) is None or "dpkg" not in _first_command(got)


def _unresolved_library(tmp_path: Path) -> Path:
    source = tmp_path / "unresolved.c"
    source.write_text(
        "void vkfault_not_defined_anywhere(void);\nvoid f(void) { vkfault_not_defined_anywhere(); }\n"
    )
    library = tmp_path / "libunresolved.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", str(library), str(source)], check=True, timeout=60
    )
    return library


def test_driver_with_unresolved_symbols_loads_only_lazily(world: VkWorld, tmp_path: Path) -> None:
    library = _unresolved_library(tmp_path)
    manifest = world.driver("unresolved.json", str(library))
    report = world.run(["loader-discovery", "driver-enumeration"], **_only(world, manifest))
    got = finding(report, "driver-unresolved-symbols")
    assert got.summary == (
        f"{library} loads only lazily: {library}: undefined symbol: vkfault_not_defined_anywhere"
    )


def test_portability_driver(world: VkWorld) -> None:
    manifest = world.lavapipe("portable.json")
    body = manifest.read_text().replace('"ICD": {', '"ICD": {"is_portability_driver": true, ', 1)
    manifest.write_text(body)
    report = world.run(["loader-discovery", "driver-enumeration"], **_only(world, manifest))
    got = finding(report, "driver-portability")
    assert got.summary == f"{manifest} is a portability driver"


def _layer_env(manifest_dir: Path) -> dict[str, str]:
    return {"VK_LAYER_PATH": str(manifest_dir)}


def test_layer_name_without_vk_layer_prefix(world: VkWorld, fault_build_dir: Path) -> None:
    library = faultlib.build_layer(fault_build_dir, "ok")
    manifest = world.layer("MyOddLayer", str(library))
    report = world.run(["loader-discovery", "driver-enumeration", "layer-enumeration"])
    got = finding(report, "layer-name-nonconforming")
    assert got.summary == (
        f"layer manifest: {manifest}: layer name 'MyOddLayer' does not start with VK_LAYER_."
    )


def test_device_layer_is_skipped(world: VkWorld, fault_build_dir: Path) -> None:
    library = faultlib.build_layer(fault_build_dir, "ok")
    manifest = world.layer("VK_LAYER_old_device", str(library), type="DEVICE")
    report = world.run(["loader-discovery", "driver-enumeration", "layer-enumeration"])
    got = finding(report, "layer-device-type")
    assert got.summary == (
        f"layer manifest: {manifest}: layer VK_LAYER_old_device is a DEVICE layer; the loader "
        "skips those. The loader skips it."
    )


def test_two_manifests_declare_one_layer_name(world: VkWorld, fault_build_dir: Path) -> None:
    library = faultlib.build_layer(fault_build_dir, "ok")
    first = world.layer("VK_LAYER_twice", str(library))
    second = world.write(world.implicit_dir, "zz_twice.json", first.read_text())
    report = world.run(["loader-discovery", "driver-enumeration", "layer-enumeration"])
    got = finding(report, "layer-duplicate-name")
    assert got.summary == (
        f"VK_LAYER_twice is declared by {first} and {second}; the loader uses the first"
    )


def test_implicit_layer_targets_an_older_vulkan(world: VkWorld, fault_build_dir: Path) -> None:
    library = faultlib.build_layer(fault_build_dir, "ok")
    world.layer("VK_LAYER_old_api", str(library), api_version="1.1.0")
    report = world.run(["loader-discovery", "driver-enumeration", "layer-enumeration"])
    got = finding(report, "layer-old-api-version")
    assert got.summary == (
        "implicit layer VK_LAYER_old_api targets Vulkan 1.1.0, older than the loader's 1.3"
    )


@pytest.mark.parametrize(
    ("variant", "code"),
    [
        ("missing-dependency", "layer-dependency-missing"),
        ("wrong-arch", "layer-library-other-abi"),
        ("constructor-crash", "layer-load-crashed"),
    ],
)
def test_layer_library_faults(
    world: VkWorld, fault_build_dir: Path, variant: str, code: str
) -> None:
    """A layer manifest naming one of the broken driver libraries: the same library faults are
    told for layers."""
    library = faultlib.build_driver(fault_build_dir, variant)
    manifest = world.layer("VK_LAYER_broken_lib", str(library))
    report = world.run(["loader-discovery", "driver-enumeration", "layer-enumeration"])
    got = finding(report, code)
    assert str(library) in got.summary
    if code == "layer-load-crashed":
        assert got.summary.startswith(f"{library} (from {manifest}) crashed with SIGSEGV during: ")
        assert _first_command(got) == (
            "export DISABLE_VK_LAYER_BROKEN_LIB=1"  # the manifest's disable_environment
        )


def test_layer_library_that_is_not_elf(world: VkWorld, tmp_path: Path) -> None:
    library = tmp_path / "libnotelf layer.so"
    library.write_text("not ELF\n")
    manifest = world.layer("VK_LAYER_not_elf", str(library))
    report = world.run(["loader-discovery", "driver-enumeration", "layer-enumeration"])
    got = finding(report, "layer-library-not-elf")
    assert got.summary.startswith(f"{library} (from {manifest}) is not a shared library: ")


def test_layer_with_unresolved_symbols(world: VkWorld, tmp_path: Path) -> None:
    library = _unresolved_library(tmp_path)
    world.layer("VK_LAYER_unresolved", str(library))
    report = world.run(["loader-discovery", "driver-enumeration", "layer-enumeration"])
    got = finding(report, "layer-unresolved-symbols")
    assert got.summary == (
        f"{library} loads only lazily: {library}: undefined symbol: vkfault_not_defined_anywhere"
    )


def test_directory_named_as_a_driver_manifest(world: VkWorld, tmp_path: Path) -> None:
    directory = tmp_path / "driver.json"
    directory.mkdir()
    report = world.run(["loader-discovery", "driver-enumeration"], VK_DRIVER_FILES=str(directory))
    codes = [f.code for _, f in report.findings()]
    assert "manifest-not-regular-file" in codes, codes  # manifest-not-a-file merged


@pytest.mark.skipif(not SYSTEM_LOADER.exists(), reason="libvulkan1 is not installed")
def test_loader_copy_on_ld_library_path_shadows_the_system_one(
    world: VkWorld, tmp_path: Path
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
        shutil.copy(SYSTEM_LOADER.resolve(), folder / "libvulkan.so.1")
    ld_path = f"{first}:{second}"
    report = world.run(["loader-discovery"], LD_LIBRARY_PATH=ld_path)
    shadowed = finding(report, "loader-shadowed")
    assert shadowed.summary.startswith(f"applications load {first}/libvulkan.so.1 (version ")
    assert shadowed.summary.endswith(
        f"not the system loader {SYSTEM_LOADER.resolve()}: LD_LIBRARY_PATH contains {first}"
    )
    assert _first_command(shadowed) == "unset LD_LIBRARY_PATH"
    others = finding(report, "loader-other-copies")
    assert f"{second}/libvulkan.so.1" in others.summary
    assert shlex.split(_first_command(shadowed) or "") == ["unset", "LD_LIBRARY_PATH"]


def test_device_creation_fails_with_a_vkresult(world: VkWorld, fault_driver) -> None:
    manifest, _lib = fault_driver("create-device-fail")
    report = world.run(
        ["loader-discovery", "driver-enumeration", "instance", "device"], **_only(world, manifest)
    )
    got = finding(report, "device-creation-failed")
    device = got.summary.split(": ", 1)[0]
    assert device.startswith("device 0 (llvmpipe")
    assert got.summary == f"{device}: vkCreateDevice returned VK_ERROR_INITIALIZATION_FAILED"


def test_nvidia_like_driver_without_vkcreateinstance(
    world: VkWorld, fault_build_dir: Path, tmp_path: Path
) -> None:
    """The README's NVIDIA case: the driver answers NULL for vkCreateInstance (it does so when
    its device nodes are missing).  A real library named like NVIDIA's, a real loader refusing
    it; the first remedy looks at the NVIDIA kernel driver."""
    built = faultlib.build_driver(fault_build_dir, "gipa-no-create-instance")
    library = tmp_path / "libGLX_nvidia.so.0"
    shutil.copy(built, library)
    manifest = faultlib.write_driver_manifest(world.icd_dir, str(library), name="nvidia_icd")
    report = world.run(
        ["loader-discovery", "driver-enumeration", "instance"], **_only(world, manifest)
    )
    got = finding(report, "driver-gipa-incomplete")
    assert got.summary == (
        f"{library} (from {manifest}) returns NULL for vkCreateInstance from "
        "vk_icdGetInstanceProcAddr"
    )
    assert got.remedy is not None
    assert got.remedy.commands == ("cat /proc/driver/nvidia/version", "ls -l /dev/nvidia*")
    # The real loader agrees that no driver is left.
    failed = finding(report, "instance-creation-failed")
    assert "Found no drivers!" in failed.summary


def test_kernels_on_a_device_that_cannot_be_created(
    world: VkWorld, fault_driver, tmp_path: Path
) -> None:
    manifest, _lib = fault_driver("create-device-fail")
    out = tmp_path / "k.json"
    done = subprocess.run(
        [*KERNELS, "--size", "tiny", "--kernels", "saxpy", "--json", str(out)],
        env={**world.environ, "VK_DRIVER_FILES": str(manifest)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    report = Report.from_dict(json.loads(out.read_text()))
    got = finding(report, "kernel-device-unusable")
    assert got.summary.endswith("): vkCreateDevice returned VK_ERROR_INITIALIZATION_FAILED")
    assert _first_command(got) == "vkdoctor check device dispatch"


@pytest.mark.slow
def test_layer_whose_constructor_never_returns(world: VkWorld, tmp_path: Path) -> None:
    source = tmp_path / "hang.c"
    source.write_text(
        "#include <unistd.h>\n"
        "__attribute__((constructor)) static void stuck(void) { for (;;) pause(); }\n"
    )
    library = tmp_path / "libhang_ctor.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    manifest = world.layer("VK_LAYER_stuck", str(library))
    report = world.run(
        ["loader-discovery", "driver-enumeration", "layer-enumeration"], timeout_s=1.5
    )
    got = finding(report, "layer-load-hung")
    assert got.summary.startswith(f"{library} (from {manifest}) did not return within ")
    assert got.summary.endswith(f"s from: dlopen({library}, RTLD_NOW): running its constructors")
    assert _first_command(got) == "export DISABLE_VK_LAYER_STUCK=1"


def test_other_architecture_loader_copy_on_ld_library_path(
    world: VkWorld, fault_build_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "lib32"
    folder.mkdir()
    shutil.copy(faultlib.build_driver(fault_build_dir, "wrong-arch"), folder / "libvulkan.so.1")
    report = world.run(["loader-discovery"], LD_LIBRARY_PATH=str(folder))
    got = finding(report, "loader-wrong-arch-copy")
    assert f"{folder}/libvulkan.so.1" in got.summary


@pytest.mark.slow
@pytest.mark.parametrize(
    ("variant", "code", "headline"),
    [
        (
            "dispatch-lost",
            "dispatch-device-lost",
            "vkQueueSubmit (vkCmdFillBuffer) returned VK_ERROR_DEVICE_LOST",
        ),
        (
            "submit-oom",
            "dispatch-vulkan-error",
            "vkQueueSubmit (vkCmdFillBuffer) returned VK_ERROR_OUT_OF_DEVICE_MEMORY",
        ),
        (
            "submit-dropped",
            "dispatch-hung",  # dispatch-timeout is merged into it
            "vkWaitForFences (vkCmdFillBuffer) timed out after 1.8 s (VK_TIMEOUT)",
        ),
    ],
)
def test_smoke_dispatch_failures_from_a_real_driver(
    world: VkWorld, fault_driver, variant: str, code: str, headline: str
) -> None:
    """The smoke statuses DEVICE_LOST, VULKAN_ERROR and TIMEOUT from real vkQueueSubmit results
    (the fault driver answers for lavapipe), not set on hand-built results."""
    manifest, _lib = fault_driver(variant)
    report = world.run(timeout_s=3.0, **_only(world, manifest))
    got = finding(report, code)
    device = got.summary.split(": ", 1)[0]
    assert device.startswith("llvmpipe")
    assert got.summary.startswith(f"{device}: {headline}")
    assert got.evidence["driver_manifest"] == str(manifest)


def test_kernels_on_a_device_that_is_lost(world: VkWorld, fault_driver, tmp_path: Path) -> None:
    manifest, _lib = fault_driver("dispatch-lost")
    out = tmp_path / "k.json"
    subprocess.run(
        [*KERNELS, "--size", "tiny", "--kernels", "saxpy", "--json", str(out)],
        env={**world.environ, "VK_DRIVER_FILES": str(manifest)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = Report.from_dict(json.loads(out.read_text()))
    got = finding(report, "kernel-device-lost")
    assert "VK_ERROR_DEVICE_LOST" in got.summary, got.summary


@pytest.mark.slow
def test_layer_exclusions_name_the_real_failure(
    world: VkWorld, fault_build_dir: Path, tmp_path: Path
) -> None:
    """Why the loader will not use each layer (loader/exclusions.py), from real libraries: one
    crashing in its constructor, one hanging there, and a DEVICE layer the loader skips."""
    from vkdoctor.report.records import ExclusionReason

    crash = faultlib.build_driver(fault_build_dir, "constructor-crash")
    world.layer("VK_LAYER_crash_ctor", str(crash))
    source = tmp_path / "hang.c"
    source.write_text(
        "#include <unistd.h>\n"
        "__attribute__((constructor)) static void stuck(void) { for (;;) pause(); }\n"
    )
    hang = tmp_path / "libhang_ctor.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(hang), str(source)], check=True)
    world.layer("VK_LAYER_hang_ctor", str(hang))
    ok = faultlib.build_layer(fault_build_dir, "ok")
    world.layer("VK_LAYER_device_kind", str(ok), type="DEVICE")
    # A relative library_path: the detail names the file the loader would open.
    shutil.copy(
        faultlib.build_driver(fault_build_dir, "wrong-arch"), world.implicit_dir / "lib32.so"
    )
    world.layer("VK_LAYER_other_abi", "./lib32.so")
    report = world.run(
        ["loader-discovery", "driver-enumeration", "layer-enumeration"], timeout_s=1.5
    )
    reasons = {
        layer.name: [(e.reason, e.detail) for e in layer.excluded_by] for layer in report.layers
    }
    (crashed,) = reasons["VK_LAYER_crash_ctor"]
    assert crashed[0] is ExclusionReason.CRASHED
    assert crashed[1] == f"crashed (SIGSEGV) in dlopen({crash}, RTLD_NOW): running its constructors"
    (hung,) = reasons["VK_LAYER_hang_ctor"]
    assert hung == (
        ExclusionReason.HUNG,
        f"hung in dlopen({hang}, RTLD_NOW): running its constructors",
    )
    ((reason, detail),) = reasons["VK_LAYER_other_abi"]
    assert reason is ExclusionReason.WRONG_ARCHITECTURE
    assert detail.startswith(f"{world.implicit_dir / 'lib32.so'} is built for ")
    assert reasons["VK_LAYER_device_kind"] == [
        (ExclusionReason.SKIPPED_BY_LOADER, "the loader rejects this manifest")
    ]
