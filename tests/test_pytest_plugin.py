"""The pytest plugin, run through pytester in a fresh pytest process (the plugin is found
through its pytest11 entry point, as after `pip install vkdoctor`), on this machine's real
loader and lavapipe and with fault drivers.  Expected names come from vulkaninfo."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
from conftest import VkWorld

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.skipif(shutil.which("vulkaninfo") is None, reason="needs vulkaninfo")

# Counts the plugin's checks: a conftest in the inner session wraps its subprocess.run.
COUNTING_CONFTEST = """
import json, os, subprocess
import vkdoctor.pytest_plugin as plugin

calls = []

class _Counting:
    def __getattr__(self, name):
        return getattr(subprocess, name)

    def run(self, command, **kw):
        calls.append(command)
        return subprocess.run(command, **kw)

plugin.subprocess = _Counting()

def pytest_sessionfinish(session):
    with open(os.environ["CHECKS_FILE"], "w") as out:
        json.dump(calls, out)
"""

TESTS = """
import pytest

@pytest.mark.vulkan("gpu")
def test_needs_gpu():
    pass

@pytest.mark.vulkan("api>=1.1", "dispatch")
def test_any_device(vulkan_device, vulkan_report):
    print("DEVICE", vulkan_device.index, vulkan_device.uuid, vulkan_device.name, "|",
          vulkan_device.type, vulkan_device.loader_path)
    assert vulkan_report.devices[vulkan_device.index].name == vulkan_device.name

def test_plain():
    pass
"""


@pytest.fixture(scope="module")
def truth() -> dict[str, str]:
    summary = subprocess.run(
        ["vulkaninfo", "--summary"], capture_output=True, text=True, timeout=60
    ).stdout
    return dict(re.findall(r"^\s+(\w+)\s+= (.*)$", summary.split("Devices:")[1], re.M))


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makeconftest(COUNTING_CONFTEST)
    monkeypatch.setenv("CHECKS_FILE", str(pytester.path / "checks.json"))
    for name in ("VKDOCTOR_REQUIRE", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)
    return pytester


def checks(pytester: pytest.Pytester) -> list[list[str]]:
    return json.loads((pytester.path / "checks.json").read_text())


def test_gpu_test_skips_with_the_reason_and_cpu_test_runs(
    inner: pytest.Pytester, truth: dict[str, str]
) -> None:
    inner.makepyfile(TESTS)
    report = inner.path / "artifact" / "vulkan.json"
    report.parent.mkdir()
    result = inner.runpytest_subprocess("-rs", "-s", f"--vulkan-report={report}")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(
        [f"SKIPPED [[]1[]] *no device meets gpu: device 0 {truth['deviceName']} has type cpu*"]
    )
    line = next(x for x in result.stdout.lines if "DEVICE " in x)
    uuid = truth["deviceUUID"].replace("-", "")
    assert f"DEVICE 0 {uuid} {truth['deviceName']} | cpu /" in line
    assert len(checks(inner)) == 1  # once per session, however many tests ask
    assert json.loads(report.read_text())["devices"][0]["name"] == truth["deviceName"]


def test_strict_turns_the_skip_into_a_failure(inner: pytest.Pytester) -> None:
    inner.makepyfile(TESTS)
    result = inner.runpytest_subprocess("--vulkan-strict")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*Vulkan requirement not met (--vulkan-strict): no device meets gpu*"]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_session_without_markers_runs_no_check(inner: pytest.Pytester) -> None:
    inner.makepyfile("def test_plain():\n    pass\n")
    inner.runpytest_subprocess().assert_outcomes(passed=1)
    assert checks(inner) == []


def test_global_requirement_applies_to_every_test(inner: pytest.Pytester) -> None:
    inner.makepyfile(TESTS)
    result = inner.runpytest_subprocess("--vulkan-require=gpu")
    result.assert_outcomes(skipped=3)
    (command,) = checks(inner)
    assert "--require=gpu" in command


def test_malformed_marker_fails_the_test_naming_the_expression(inner: pytest.Pytester) -> None:
    inner.makepyfile("import pytest\n@pytest.mark.vulkan('api>>1')\ndef test_bad():\n    pass\n")
    result = inner.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*bad requirement 'api>>1'*grammar:*"])
    assert checks(inner) == []  # refused before any check


def test_broken_vulkan_skips_with_the_verdict(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """The loader really finds no driver: the reason is vkdoctor's verdict and its fix."""
    monkeypatch.setenv("VK_DRIVER_FILES", str(tmp_path / "missing_icd.json"))
    inner.makepyfile(TESTS)
    result = inner.runpytest_subprocess("-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        ["SKIPPED *Vulkan is unusable: VK_DRIVER_FILES points at *fix: unset VK_DRIVER_FILES*"]
    )


def test_crashing_driver_cannot_take_the_session_down(
    inner: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    world: VkWorld,
    fault_driver,
) -> None:
    """Only a driver whose vkCreateInstance segfaults: the check's child dies, the tests skip."""
    fault_driver("create-instance-crash")
    for name, value in world.environ.items():
        monkeypatch.setenv(name, value)
    for name in [n for n in os.environ if n.startswith("VK_")]:
        monkeypatch.delenv(name)
    inner.makepyfile(TESTS)
    result = inner.runpytest_subprocess("-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["SKIPPED *Vulkan is unusable: *"])


def test_devices_marker_counts_the_devices_the_loader_sees(
    inner: pytest.Pytester, truth: dict[str, str]
) -> None:
    """vulkaninfo's device count: a marker asking for it runs, one asking for one more skips
    with the count."""
    summary = subprocess.run(
        ["vulkaninfo", "--summary"], capture_output=True, text=True, timeout=60
    ).stdout
    count = len(re.findall(r"^GPU\d+:$", summary, re.M))
    assert count >= 1
    noun = "device" if count == 1 else "devices"
    inner.makepyfile(
        "import pytest\n"
        f"@pytest.mark.vulkan('devices>={count}')\n"
        "def test_enough(vulkan_device):\n    pass\n"
        f"@pytest.mark.vulkan('devices>={count + 1}')\n"
        "def test_one_more():\n    pass\n"
    )
    result = inner.runpytest_subprocess("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [f"SKIPPED *devices>={count + 1} unmet: {count} Vulkan {noun} found*"]
    )
