"""Driver enumeration (probes/driver_enumeration.py) against the real loader, for mutants the
mutation run found surviving (benchmarks/RESULTS.md, "Mutation testing"): each expectation is
first checked in the real loader's VK_LOADER_DEBUG log on the same fixture."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import VkWorld, needs_lavapipe, probe

pytestmark = [
    needs_lavapipe,
    pytest.mark.skipif(
        shutil.which("vulkaninfo") is None or shutil.which("timeout") is None,
        reason="needs vulkaninfo and timeout(1)",
    ),
]


def test_a_manifest_naming_the_loader_is_found_without_creating_an_instance(
    world: VkWorld,
) -> None:
    """The real loader takes libvulkan.so.1 for a driver (and recurses into itself: vulkaninfo
    hangs); vkdoctor names it from the manifest and the library alone, next to a usable
    lavapipe, without the instance probe (the slow test of test_root_cause_rules does that)."""
    manifest = world.driver("loader.json", "libvulkan.so.1", api_version="1.3.0")
    done = subprocess.run(
        ["timeout", "5", "vulkaninfo", "--summary"],
        env={**world.environ, "VK_DRIVER_FILES": str(manifest), "VK_LOADER_DEBUG": "all"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    log = done.stdout + done.stderr
    assert f"Found ICD manifest file {manifest}" in log
    assert "for ICD libvulkan.so.1" in log  # the loader took the loader for a driver
    assert done.returncode == 124  # and hung

    world.lavapipe()
    report = world.run(["loader-discovery", "driver-enumeration"])

    found = [
        f for f in probe(report, "driver-enumeration").findings if f.code == "driver-is-the-loader"
    ]
    assert len(found) == 1 and found[0].summary.startswith(
        f"{manifest} names libvulkan.so.1, the Vulkan loader itself, "
    )
    assert found[0].remedy is not None and found[0].remedy.commands[0] == (
        f"rm {manifest}  # it is no driver"
    )
    states = {d.manifest: d.state for d in report.drivers}
    assert states[str(world.icd_dir / "lvp_icd.x86_64.json")] == "usable"
    assert states[str(manifest)] != "usable"


def test_an_excluded_driver_names_the_loaders_dlopen_error_and_the_usable_one_nothing(
    world: VkWorld, fault_driver
) -> None:
    """A driver library whose DT_NEEDED dependency is gone: the reason vkdoctor gives for
    leaving it out is the dlopen error the real loader logs; lavapipe beside it has none."""
    world.lavapipe()
    manifest, _ = fault_driver("missing-dependency")
    done = subprocess.run(
        ["vulkaninfo", "--summary"],
        env={**world.environ, "VK_LOADER_DEBUG": "all"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = (done.stdout + done.stderr).splitlines()
    at = next(i for i, line in enumerate(lines) if f"Found ICD manifest file {manifest}" in line)
    error = next(line for line in lines[at + 1 : at + 4] if line.startswith("ERROR:"))
    assert "libvkdoctor_gone.so.1" in error, error
    loader_says = error.split(":", 1)[1].strip()

    report = world.run(["loader-discovery", "driver-enumeration"])

    records = {d.manifest: d for d in report.drivers}
    broken = records[str(manifest)]
    assert [(e.reason.value, e.detail) for e in broken.excluded_by] == [
        ("load-failed", loader_says)
    ]
    assert records[str(world.icd_dir / "lvp_icd.x86_64.json")].excluded_by == ()
