"""Real Vulkan programs from PyPI wheels (the ``trace-programs`` extra) trace clean: the same
exit code and output as untraced, and no warn or fail finding.

    pip install -e '.[test,trace-programs]'
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from reproducers.harness import LVP_ICD, describe, missing_prerequisite, probe, trace

PROGRAMS = Path(__file__).resolve().parent / "programs"

pytestmark = [
    pytest.mark.programs,
    pytest.mark.skipif(missing_prerequisite() is not None, reason=missing_prerequisite() or ""),
]

# program script -> (importable module it needs, environment changes; None removes)
CASES: dict[str, tuple[str, dict[str, str | None]]] = {
    "wgpu_compute.py": ("wgpu", {"WGPU_BACKEND_TYPE": "Vulkan"}),
    "vulkan_binding_compute.py": ("vulkan", {}),
    "taichi_compute.py": ("taichi", {"TI_LOG_LEVEL": "error"}),
    # ncnn reads VK_DRIVER_FILES itself and then dlopens the named driver, bypassing the loader
    # (test_ncnn_with_vk_driver_files_bypasses_the_loader); run it as users do, on the loader.
    "ncnn_compute.py": ("ncnn", {"VK_DRIVER_FILES": None}),
}


def _env(extra: dict[str, str | None]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VK_", "LD_AUDIT"))}
    env["VK_DRIVER_FILES"] = str(LVP_ICD)
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@pytest.mark.parametrize("script", sorted(CASES))
def test_real_program_traces_clean(script):
    module, extra = CASES[script]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[trace-programs]')")
    command = [sys.executable, str(PROGRAMS / script)]
    plain = subprocess.run(command, env=_env(extra), capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0 and "verified: True" in plain.stdout, plain.stderr[-2000:]

    from reproducers.harness import lavapipe_env

    report = trace(command, env=lavapipe_env().with_environ(**extra))
    program = probe(report).facts["program"]
    assert program["exit"] == {"state": "exited", "code": 0}, describe(report)
    assert program["output"]["stdout"] == plain.stdout
    found = probe(report).findings
    bad = [f for f in found if f.severity.value in ("warn", "fail")]
    assert bad == [], describe(report)
    # device-command-via-gipa must not fire for instance-extension commands (debug utils),
    # which the spec has fetched with vkGetInstanceProcAddr
    for f in found:
        assert not any(c.endswith("DebugUtilsLabelEXT") for c in f.evidence.get("commands", []))
    # it was really traced: its instance and device went through the layer
    assert probe(report).facts["instances"] and probe(report).facts["devices"], describe(report)


def test_ncnn_with_vk_driver_files_bypasses_the_loader():
    if importlib.util.find_spec("ncnn") is None:
        pytest.skip("ncnn is not installed (pip install -e '.[trace-programs]')")
    from reproducers.harness import lavapipe_env

    report = trace([sys.executable, str(PROGRAMS / "ncnn_compute.py")], env=lavapipe_env())
    assert probe(report).facts["program"]["exit"] == {"state": "exited", "code": 0}
    bypass = [f for f in probe(report).findings if f.code == "loader-bypass"]
    assert bypass, describe(report)
    assert bypass[0].evidence["driver"].endswith("libvulkan_lvp.so")
    assert "vk_icdGetInstanceProcAddr" in bypass[0].evidence["commands"]
