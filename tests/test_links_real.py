"""Root-cause links (vkdoctor/diagnosis/links.py) that the mutation run found untested, each made
real on the loader and lavapipe; the real loader (vulkaninfo, VK_LOADER_DEBUG) is asked about the
same fixture.  See benchmarks/RESULTS.md, "Mutation testing"."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

LVP_MANIFEST = Path("/usr/share/vulkan/icd.d/lvp_icd.x86_64.json")
pytestmark = pytest.mark.skipif(
    not LVP_MANIFEST.exists() or shutil.which("vulkaninfo") is None,
    reason="needs Mesa's lavapipe and vulkaninfo installed system-wide (./bootstrap.sh)",
)


def _environ(tmp_path: Path, **changes: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VK_", "XDG_"))}
    home = tmp_path / "home"
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "c"))
    env.update(changes)
    return env


def _vulkaninfo(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["vulkaninfo", "--summary"],
        env={**env, "VK_LOADER_DEBUG": "all"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _check(env: dict[str, str], out: Path) -> tuple[int, dict]:
    done = subprocess.run(
        [sys.executable, "-m", "vkdoctor", "check", "--json", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(out.read_text())


def _manifest(path: Path, library: str) -> Path:
    body = {"library_path": library, "api_version": "1.3.0"}
    path.write_text(json.dumps({"file_format_version": "1.0.0", "ICD": body}))
    return path


def test_an_override_naming_two_unusable_manifests(tmp_path: Path) -> None:
    """VK_DRIVER_FILES lists two manifests, neither with a library: the variable is the cause,
    and the verdict counts what it selects instead of the installed drivers."""
    first = _manifest(tmp_path / "a.json", "/opt/gone/libvk_a.so")
    second = _manifest(tmp_path / "b.json", "/opt/gone/libvk_b.so")
    env = _environ(tmp_path, VK_DRIVER_FILES=f"{first}:{second}")
    loader = _vulkaninfo(env)
    assert loader.returncode != 0  # the real loader finds no driver either
    log = loader.stdout + loader.stderr
    for manifest in (first, second):  # ... and reads exactly these two manifests
        assert str(manifest) in log
    assert str(LVP_MANIFEST) not in log

    code, report = _check(env, tmp_path / "r.json")

    hidden = len(list(LVP_MANIFEST.parent.glob("*.json")))
    assert code == 1
    assert report["verdict"] == (
        "Vulkan is unusable: VK_DRIVER_FILES points at 2 manifests that give no usable driver, "
        f"and hides the {hidden} installed drivers — fix: unset VK_DRIVER_FILES"
    )
    # What the variable explains: the failures it leads to, never an informational finding.
    findings = {f["id"]: f for p in report["probes"] for f in p["findings"]}
    root = findings[report["root_causes"][0]]
    caused = [findings[i] for i in root["causes"]]
    assert {"driver-library-missing", "no-usable-driver"} <= {f["code"] for f in caused}
    assert [f["code"] for f in caused if f["severity"] == "info"] == []
    assert any(f["severity"] == "info" for f in findings.values())  # there were some to claim


def test_a_filter_that_leaves_a_working_driver_is_no_root_cause(tmp_path: Path) -> None:
    """VK_LOADER_DRIVERS_DISABLE takes out radv only: lavapipe still gives a device, so the
    variable is no root cause (the variable rule stays out) and the machine works.  The real
    loader's own warning about the filter is explained by the driver-filtered finding (info),
    not echoed as a problem."""
    env = _environ(tmp_path, VK_LOADER_DRIVERS_DISABLE="*radeon*")
    loader = _vulkaninfo(env)
    assert loader.returncode == 0 and "deviceName" in loader.stdout
    warning = (
        'Driver "radeon_icd.x86_64.json" ignored because it was disabled by env var '
        "'VK_LOADER_DRIVERS_DISABLE'"
    )
    assert warning in loader.stderr  # the real loader says it during vkCreateInstance

    code, report = _check(env, tmp_path / "r.json")

    assert code == 0
    assert report["verdict"].startswith("Vulkan works: loader ")
    assert report["root_causes"] == []
    findings = {f["id"]: f for p in report["probes"] for f in p["findings"]}
    assert [f["severity"] for f in findings.values() if f["code"] == "driver-filtered"] == ["info"]
    instance = next(p for p in report["probes"] if p["id"] == "instance")
    [seen] = [m for m in instance["facts"]["message_classes"] if m["message"] == warning]
    assert (seen["class"], seen["explained_by"]) == ("explained", "driver-filtered")
