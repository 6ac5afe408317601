"""Manifest reading (vkdoctor/loader/manifests.py) against the real loader on the same fixture:
a directory named by VK_DRIVER_FILES, /dev/null named by it, and a layer manifest without a
'layer' object.  Written for mutants the mutation run found surviving (benchmarks/RESULTS.md,
"Mutation testing"); each expectation is first checked in the real loader's VK_LOADER_DEBUG log."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import LAVAPIPE_MANIFEST, VkWorld, needs_lavapipe, probe

pytestmark = [
    needs_lavapipe,
    pytest.mark.skipif(shutil.which("vulkaninfo") is None, reason="needs vulkaninfo"),
]


def _loader_log(environ: dict[str, str]) -> tuple[int, list[str]]:
    done = subprocess.run(
        ["vulkaninfo", "--summary"],
        env={**environ, "VK_LOADER_DEBUG": "all"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, (done.stdout + done.stderr).splitlines()


def _found_files(lines: list[str], category: str) -> list[str]:
    """The first 'Found the following files:' list of the loader's log for ``category``."""
    start = next(
        i
        for i, line in enumerate(lines)
        if "Found the following files:" in line and line.startswith(f"{category}:")
    )
    files = []
    for line in lines[start + 1 :]:
        text = line.split(":", 1)[1].strip() if ":" in line else ""
        if not text.startswith("/"):
            break
        files.append(text)
    return files


def test_a_directory_in_vk_driver_files_is_searched(world: VkWorld, tmp_path) -> None:
    directory = tmp_path / "drivers"
    directory.mkdir()
    shutil.copy(LAVAPIPE_MANIFEST, directory / "mine.json")
    code, lines = _loader_log({**world.environ, "VK_DRIVER_FILES": str(directory)})
    assert code == 0 and any("deviceName" in line for line in lines)  # the loader uses it
    assert _found_files(lines, "DRIVER") == [str(directory / "mine.json")]

    report = world.run(["loader-discovery", "driver-enumeration"], VK_DRIVER_FILES=str(directory))

    assert [d.manifest for d in report.drivers if d.state != "hidden"] == [
        str(directory / "mine.json")
    ]
    assert [d.state for d in report.drivers if d.state != "hidden"] == ["usable"]


def test_dev_null_in_vk_driver_files_is_skipped_not_a_hang(world: VkWorld) -> None:
    code, lines = _loader_log({**world.environ, "VK_DRIVER_FILES": "/dev/null"})
    assert code != 0  # no driver, and no hang (the timeout above)
    assert not any("Found ICD manifest file /dev/null" in line for line in lines)

    report = world.run(["loader-discovery", "driver-enumeration"], VK_DRIVER_FILES="/dev/null")

    (record,) = [d for d in report.drivers if d.manifest == "/dev/null"]
    assert record.state == "skipped-by-loader"
    (found,) = [
        f
        for f in probe(report, "driver-enumeration").findings
        if f.code == "manifest-not-regular-file"
    ]
    assert found.summary == (
        "driver manifest: /dev/null is a character device, not a file: the loader cannot read a "
        "manifest from it. The loader skips it."
    )
    assert found.remedy is not None
    assert found.remedy.commands[0] == "ls -lL /dev/null  # a character device is never a manifest"


def test_layer_manifest_without_a_layer_object(world: VkWorld) -> None:
    world.lavapipe()
    path = world.write(world.implicit_dir, "nolayer.json", {"file_format_version": "1.1.2"})
    _, lines = _loader_log(world.environ)
    assert any(
        f"Can not find 'layer' object in manifest JSON file {path}" in line
        and "Skipping this file" in line
        for line in lines
    )

    report = world.run(["loader-discovery", "driver-enumeration", "layer-enumeration"])

    found = [
        f for f in probe(report, "layer-enumeration").findings if f.code == "manifest-missing-field"
    ]
    assert [f.summary for f in found] == [
        f"layer manifest: {path} has no 'layer' or 'layers' object. The loader skips it."
    ]
    (layer,) = [rec for rec in report.layers if rec.manifest == str(path)]
    assert layer.state == "skipped-by-loader"


@pytest.mark.parametrize("value", [1, "abc"])
def test_a_file_format_version_of_another_type_is_read_not_skipped(
    world: VkWorld, value: object
) -> None:
    """Only a missing file_format_version makes the loader skip a manifest; a number or a
    non-version string is printed as the version and the driver is used (this was reported as
    skipped, and the machine as unusable)."""
    import json

    body = json.loads(LAVAPIPE_MANIFEST.read_text())
    body["file_format_version"] = value
    path = world.write(world.icd_dir, "odd_version.json", body)
    code, lines = _loader_log(world.environ)
    assert code == 0 and any("deviceName" in line for line in lines)
    assert any(f"Found ICD manifest file {path}, version" in line for line in lines)

    report = world.run(["loader-discovery", "driver-enumeration"])

    (record,) = [d for d in report.drivers if d.manifest == str(path)]
    assert record.state == "usable"
    (found,) = [
        f for f in probe(report, "driver-enumeration").findings if f.code == "manifest-bad-field"
    ]
    assert "skips" not in found.summary and "reads the manifest anyway" in found.summary


@pytest.mark.parametrize("portability", [True, False])
def test_is_portability_driver_is_read(world: VkWorld, portability: bool) -> None:
    import json

    body = json.loads(LAVAPIPE_MANIFEST.read_text())
    body["ICD"]["is_portability_driver"] = portability
    path = world.write(world.icd_dir, "port.json", body)
    code, lines = _loader_log(world.environ)
    assert code == 0  # vulkaninfo sets the portability-enumeration bit: the driver is used
    enumerating = "Portability enumeration bit was set, enumerating portability drivers."
    assert any(enumerating in line for line in lines)

    report = world.run(["loader-discovery", "driver-enumeration"])

    found = [
        f.summary
        for f in probe(report, "driver-enumeration").findings
        if f.code == "driver-portability"
    ]
    assert found == ([f"{path} is a portability driver"] if portability else [])
