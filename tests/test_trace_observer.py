"""No observer effect: under trace the program sees the same instance layers and prints the
same output as without it; --program-output capture keeps that output in the report."""

from __future__ import annotations

import os
import subprocess

import pytest
from reproducers.harness import (
    LVP_ICD,
    describe,
    missing_prerequisite,
    probe,
    python_command,
    trace,
)

pytestmark = pytest.mark.skipif(
    missing_prerequisite() is not None, reason=missing_prerequisite() or ""
)


def untraced(command: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VK_", "LD_AUDIT"))}
    env["VK_DRIVER_FILES"] = str(LVP_ICD)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_trace_layer_is_hidden_from_the_program():
    command = python_command("py_list_layers.py")
    plain = untraced(command)
    assert plain.returncode == 0, plain.stderr
    assert "VK_LAYER_VKDOCTOR_trace" not in plain.stdout
    report = trace(command)
    program = probe(report).facts["program"]
    assert program["exit"] == {"state": "exited", "code": 0}, describe(report)
    # The manifest is on the loader's layer path (without the filter both lists would end with
    # the trace layer); both ways of asking hide it, and the output is the untraced one.
    assert program["output"]["stdout"] == plain.stdout
    assert program["output"]["stdout"].count("dlsym:") == 1
    assert probe(report).facts["event_counts"].get("bind", 0) > 0


def test_vulkaninfo_lists_the_same_layers():
    if subprocess.run(["sh", "-c", "command -v vulkaninfo"], capture_output=True).returncode:
        pytest.skip("vulkaninfo is not installed")
    plain = untraced(["vulkaninfo", "--summary"])
    report = trace(["vulkaninfo", "--summary"])
    out = probe(report).facts["program"]["output"]["stdout"]

    def layers(text: str) -> list[str]:
        return [line.split()[0] for line in text.splitlines() if line.startswith("VK_LAYER_")]

    assert layers(out) == layers(plain.stdout) and layers(out), describe(report)
    assert "VK_LAYER_VKDOCTOR_trace" not in out
    # and the loader says nothing about it (VK_INSTANCE_LAYERS would make it warn)
    err = probe(report).facts["program"]["output"]["stderr"]
    assert "Loader Message" not in err and "Loader Message" not in plain.stderr, err[-2000:]
    # the layer did trace it: vulkaninfo's instance is in the report
    assert probe(report).facts["instances"], describe(report)


def test_layer_loads_when_implicit_layers_are_disabled(tmp_path):
    # VK_LOADER_LAYERS_DISABLE=~all~ would drop an implicit trace layer: it is explicit then
    from reproducers.harness import build, lavapipe_env

    report = trace([str(build() / "correct")], env=lavapipe_env(VK_LOADER_LAYERS_DISABLE="~all~"))
    assert probe(report).facts["instances"], describe(report)
    assert probe(report).facts["program"]["exit"] == {"state": "exited", "code": 0}
