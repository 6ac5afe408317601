"""Device-probe codes produced by fault drivers (tests/native/fault_driver.c) through `vkdoctor
check`, the path users take; fault_probe, a separate Vulkan client, confirms each driver's fault
without vkdoctor.  Headlines and first remedies exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import faultlib
import pytest
from conftest import VkWorld, finding, needs_lavapipe

from vkdoctor.report.model import Report

pytestmark = needs_lavapipe

KERNELS = (sys.executable, "-m", "vkdoctor", "kernels")
DEVICE_PROBES = ["loader-discovery", "driver-enumeration", "instance", "device"]


def _probe_client(
    fault_build_dir: Path, world: VkWorld, manifest: Path, *args: str
) -> faultlib.ChildRun:
    client = faultlib.build_probe(fault_build_dir)
    env = {**os.environ, **world.environ, "VK_DRIVER_FILES": str(manifest)}
    return faultlib.run_child([str(client), *args], env, timeout=60)


@pytest.mark.slow
def test_driver_refusing_its_extensions_at_vkcreatedevice(
    world: VkWorld, fault_driver, fault_build_dir: Path
) -> None:
    manifest, _lib = fault_driver("extensions-refused")
    # Without vkdoctor: the driver advertises VK_KHR_push_descriptor, refuses it at
    # vkCreateDevice (VK_ERROR_EXTENSION_NOT_PRESENT, -7), and creates a device without it.
    ext = faultlib.OLD_REVISION_EXTENSION
    refused = _probe_client(fault_build_dir, world, manifest, "--device-extension", ext)
    assert f"device-extension {ext} spec 2" in refused.stdout.splitlines(), refused.stdout
    assert "result create-device -7" in refused.stdout.splitlines(), refused.stdout
    plain = _probe_client(fault_build_dir, world, manifest)
    assert "result create-device 0" in plain.stdout.splitlines(), plain.stdout

    report = world.run(DEVICE_PROBES, VK_DRIVER_FILES=str(manifest))
    got = finding(report, "device-extensions-refused")
    device = got.summary.split(" refused ", 1)[0]
    assert device.startswith("device 0 (llvmpipe")
    count = got.summary.split(" refused all ", 1)[1].split(" ", 1)[0]
    assert int(count) > 1
    assert got.summary == (
        f"{device} refused all {count} extensions together (VK_ERROR_EXTENSION_NOT_PRESENT); "
        "checked core commands only"
    )
    assert got.remedy is not None
    assert got.remedy.text == "Nothing to do for most applications."
    # The retry without extensions succeeded: no device-creation failure is reported.
    assert "device-creation-failed" not in [f.code for _, f in report.findings()]


@pytest.mark.slow
def test_driver_at_an_older_extension_revision_lacks_its_later_command(
    world: VkWorld, fault_driver, fault_build_dir: Path
) -> None:
    manifest, _lib = fault_driver("old-revision")
    ext, command = faultlib.OLD_REVISION_EXTENSION, faultlib.OLD_REVISION_COMMAND
    # Without vkdoctor: revision 1 reported, the command NULL with the extension enabled.
    seen = _probe_client(
        fault_build_dir, world, manifest, "--device-extension", ext, "--proc", command
    )
    lines = seen.stdout.splitlines()
    assert f"device-extension {ext} spec 1" in lines, seen.stdout
    assert "result create-device 0" in lines, seen.stdout
    assert f"proc {command} null" in lines, seen.stdout

    report = world.run(DEVICE_PROBES, VK_DRIVER_FILES=str(manifest))
    got = finding(report, "gdpa-missing-older-revision")
    device = got.summary.split(": ", 1)[0]
    assert device.startswith("device 0 (llvmpipe")
    assert got.summary == (
        f"{device}: 1 command(s) of extensions at an older revision than the registry's "
        f"resolve to NULL: {command}"
    )
    assert got.remedy is not None
    assert got.remedy.text == "Check the extension's specVersion before using them."
    assert got.evidence["revisions"] == {ext: [1, 2]}
    # An older revision explains the NULL: it is not also reported as a missing command.
    assert "gdpa-missing" not in [f.code for _, f in report.findings()]


@pytest.mark.slow
def test_kernel_whose_pipeline_the_driver_cannot_create(
    world: VkWorld, fault_driver, tmp_path: Path
) -> None:
    """`vkdoctor kernels`, as users run it, on a driver whose vkCreateComputePipelines fails."""
    manifest, _lib = fault_driver("pipeline-fail")
    out = tmp_path / "k.json"
    done = subprocess.run(
        [*KERNELS, "--size", "small", "--kernels", "saxpy", "--json", str(out)],
        env={**world.environ, "VK_DRIVER_FILES": str(manifest)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 1, done.stderr
    report = Report.from_dict(json.loads(out.read_text()))
    got = finding(report, "kernel-failed")
    device = got.evidence["device"]
    assert device.startswith("llvmpipe")
    assert got.summary == (
        f"{device}: SAXPY: vkCreateComputePipelines returned VK_ERROR_OUT_OF_DEVICE_MEMORY"
    )
    assert got.remedy is not None
    assert got.remedy.text == (
        "Look at the failing call and VkResult in the evidence; update the driver."
    )


@pytest.mark.slow
def test_dispatch_that_writes_one_element_past_the_end(world: VkWorld, fault_driver) -> None:
    """The driver hands the shader n + 1 as its element count (vkCmdPushConstants), so the
    smoke dispatch really writes element n, the first sentinel word after the output."""
    manifest, _lib = fault_driver("bounds-off-by-one")
    report = world.run(VK_DRIVER_FILES=str(manifest))
    got = [f for _, f in report.findings() if f.code == "dispatch-out-of-bounds-write"]
    assert got, [f.code for _, f in report.findings()]
    device = got[0].evidence["device"]
    assert device.startswith("llvmpipe")
    assert got[0].summary == f"{device}: smoke run 1 wrote past element 4099"
    assert got[0].remedy is not None
    assert got[0].remedy.text == "Update the driver and report the bug with this report attached."
    # Only the tail changed: the n elements the shader owns are right.
    assert "dispatch-wrong-result" not in [f.code for _, f in report.findings()]
