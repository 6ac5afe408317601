"""`vkdoctor check --require` / `--device-select` / `--github` and `report show --require` on
this machine's real loader and lavapipe.  Expected values come from vulkaninfo, not vkdoctor."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("vulkaninfo") is None, reason="needs vulkaninfo")


def vkdoctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "VKDOCTOR_"))}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "vkdoctor", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=environ,
    )


@pytest.fixture(scope="module")
def truth() -> dict[str, str]:
    """vulkaninfo's summary of the first device: name, type, API version, UUID, extensions."""
    summary = subprocess.run(
        ["vulkaninfo", "--summary"], capture_output=True, text=True, timeout=60
    ).stdout
    fields = dict(re.findall(r"^\s+(\w+)\s+= (.*)$", summary.split("Devices:")[1], re.M))
    full = subprocess.run(["vulkaninfo"], capture_output=True, text=True, timeout=60).stdout
    block = full.split("\nDevice Extensions: count =")[1]  # not "Layer-Device Extensions"
    fields["extensions"] = " ".join(re.findall(r"^\t(VK_\w+)\s+: extension revision", block, re.M))
    supported = []
    for struct in CORE_FEATURE_STRUCTS:
        section = re.search(rf"^{struct}:\n[-=]+\n((?:\t.*\n)+)", full, re.M)
        assert section, struct
        pairs = re.findall(r"^\t(\w+)\s+= (\w+)", section.group(1), re.M)
        supported += [f"{struct}.{name}" for name, value in pairs if value == "true"]
    fields["features"] = " ".join(supported)
    return fields


CORE_FEATURE_STRUCTS = (
    "VkPhysicalDeviceFeatures",
    "VkPhysicalDeviceVulkan11Features",
    "VkPhysicalDeviceVulkan12Features",
    "VkPhysicalDeviceVulkan13Features",
)


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("require") / "report.json"
    done = vkdoctor("check", "--no-color", "--json", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    return path


def test_gpu_on_lavapipe_fails_naming_the_device_and_what_it_lacks(
    truth: dict[str, str], tmp_path: Path
) -> None:
    assert truth["deviceType"] == "PHYSICAL_DEVICE_TYPE_CPU"  # the premise of this test
    summary = tmp_path / "summary.md"
    done = vkdoctor(
        "check",
        "--no-color",
        "--require",
        "gpu",
        env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    line = f"no device meets gpu: device 0 {truth['deviceName']} has type cpu (not a GPU)"
    assert f"[FAIL] {line}" in done.stdout
    # GitHub Actions: one annotation for the root cause, and the Markdown in the step summary.
    annotations = [a for a in done.stdout.splitlines() if a.startswith("::")]
    assert annotations == [
        f"::error title=vkdoctor requirement-unmet::[requirements] {line}".replace("%", "%25")
    ]
    text = summary.read_text()
    assert text.startswith("## vkdoctor") and "requirement-unmet" in text


def test_dispatch_on_lavapipe_passes_and_prints_no_annotations() -> None:
    done = vkdoctor("check", "--no-color", "--require", "dispatch")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "✔ requirements" in done.stdout or "ℹ requirements" in done.stdout
    assert "::" not in done.stdout


@pytest.mark.parametrize("bad", ["bogus", "api>=x", "memory>=lots", "devices>=x"])
def test_malformed_requirement_is_a_usage_error_before_any_probe(bad: str) -> None:
    done = vkdoctor("check", "--require", bad)
    assert done.returncode == 2
    assert done.stdout == ""  # no probe ran
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"vkdoctor check: bad requirement {bad!r}") and "grammar:" in line


def test_bad_environment_requirement_is_a_usage_error() -> None:
    done = vkdoctor("check", env={"VKDOCTOR_REQUIRE": "gpu;;nonsense"})
    assert done.returncode == 2 and "'nonsense'" in done.stderr


def test_device_select_prints_index_uuid_and_name(truth: dict[str, str]) -> None:
    done = vkdoctor(
        "check", "--device-select", "type=cpu", env={"VKDOCTOR_REQUIRE": "dispatch; api>=1.3"}
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"0\t{truth['deviceUUID'].replace('-', '')}\t{truth['deviceName']}\n"
    none = vkdoctor("check", "--device-select", "gpu")
    assert none.returncode == 1 and none.stdout == ""


@pytest.mark.parametrize(
    ("expressions", "code"),
    [
        (["api>=9"], 1),
        (["type=cpu", "queue=compute", "vendor=mesa", "name~=llvmpipe"], 0),
        (["memory>=1TiB"], 1),
        (["extension=VK_NV_no_such_extension"], 1),
    ],
)
def test_report_show_gates_a_stored_report(
    stored: Path, truth: dict[str, str], expressions: list[str], code: int
) -> None:
    args = [f"--require={e}" for e in expressions]
    done = vkdoctor("report", "show", str(stored), "--no-color", *args)
    assert done.returncode == code, done.stdout + done.stderr
    if expressions == ["api>=9"]:
        assert f"has API {truth['apiVersion']}" in done.stdout


def test_extensions_match_vulkaninfo(stored: Path, truth: dict[str, str]) -> None:
    listed = truth["extensions"].split()
    assert len(listed) > 10
    for name in (listed[0], listed[-1]):
        done = vkdoctor("report", "show", str(stored), f"--require=extension={name}")
        assert done.returncode == 0, done.stdout
    recorded = json.loads(stored.read_text())["devices"][0]["extensions"]
    assert recorded == sorted(listed)


def test_stored_report_and_malformed_requirement(stored: Path) -> None:
    done = vkdoctor("report", "show", str(stored), "--require", "api=>1")
    assert done.returncode == 2 and "bad requirement 'api=>1'" in done.stderr


def test_features_match_vulkaninfo(stored: Path, truth: dict[str, str]) -> None:
    """Every core feature vulkaninfo reports true, and no other, is recorded and matches."""
    supported = truth["features"].split()
    recorded = json.loads(stored.read_text())["devices"][0]["features"]
    assert sorted(recorded) == sorted(supported) and len(supported) > 20
    qualified = supported[-1]
    bare = supported[0].split(".")[1]
    for expression, code in [
        (f"feature={qualified}", 0),
        (f"feature={bare}", 0),
        ("feature=VkPhysicalDeviceVulkan12Features.noSuchFeature", 1),
    ]:
        done = vkdoctor("report", "show", str(stored), "--no-color", f"--require={expression}")
        assert done.returncode == code, done.stdout


def _kernel_rows(report: dict) -> dict[str, dict]:
    (probe,) = [p for p in report["probes"] if p["id"] == "kernels"]
    (run,) = probe["facts"]["runs"]
    return {row["kernel"]: row for row in run["results"]}


def test_measured_requirements_run_the_kernels_they_need(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    done = vkdoctor(
        "check", "--no-color", "--json", str(out), "--require", "fp32>=20TFLOP/s"
    )  # far beyond a CPU
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(out.read_text())
    rows = _kernel_rows(report)
    assert set(rows) == {"fma-fp32"}  # only what the requirement needs ran
    measured = rows["fma-fp32"]["figure"]["value"]
    assert rows["fma-fp32"]["status"] == "ok" and measured < 20_000
    assert f"has fp32 {measured:.4g} GFLOP/s" in done.stdout
    # A bar the CPU clears, on the bandwidth it measures.
    again = tmp_path / "again.json"
    done = vkdoctor("check", "--json", str(again), "--require", "bandwidth>=1MB/s")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _kernel_rows(json.loads(again.read_text()))["copy-vec4"]["status"] == "ok"


def test_kernels_requirement_runs_the_suite_and_passes_on_lavapipe(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    done = vkdoctor("check", "--json", str(out), "--require", "kernels")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = _kernel_rows(json.loads(out.read_text()))
    from vkdoctor.kernels.suite import KERNELS

    assert set(rows) == set(KERNELS)
    assert all(row["status"] in ("ok", "unsupported") for row in rows.values())


def test_rate_expressions_are_checked_for_their_unit() -> None:
    done = vkdoctor("check", "--require", "bandwidth>=2TFLOP/s")
    assert done.returncode == 2 and "not a rate like 2TB/s" in done.stderr
