"""Layer enumeration (probes/layer_enumeration.py) against the real loader, for mutants the
mutation run found surviving (benchmarks/RESULTS.md, "Mutation testing"): which layers are on,
and how bad a broken one is, first asked of the real loader on the same fixture."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import faultlib
import pytest
from conftest import VkWorld, needs_lavapipe, probe

from vkdoctor.report.model import Severity

pytestmark = [
    needs_lavapipe,
    pytest.mark.skipif(shutil.which("vulkaninfo") is None, reason="needs vulkaninfo"),
]
NAME = "VK_LAYER_vkdoctor_ok"


def _loader(environ: dict[str, str], **changes: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["vulkaninfo", "--summary"],
        env={**environ, **changes, "VK_LOADER_DEBUG": "all"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _inserted(done: subprocess.CompletedProcess[str], name: str) -> bool:
    return f'Insert instance layer "{name}"' in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("changes", "active", "why"),
    [
        ({}, True, "implicit: on by default"),
        (
            {"VK_LOADER_LAYERS_DISABLE": "~implicit~"},
            False,
            "forced off by VK_LOADER_LAYERS_DISABLE",
        ),
        # Loader 1.3.239 does not know VK_LOADER_LAYERS_ALLOW (1.3.262): it stays off.
        (
            {"VK_LOADER_LAYERS_DISABLE": "~implicit~", "VK_LOADER_LAYERS_ALLOW": NAME},
            False,
            "forced off by VK_LOADER_LAYERS_DISABLE",
        ),
    ],
    ids=["default", "disabled", "allow-unknown-to-this-loader"],
)
def test_which_implicit_layers_are_on_is_the_loaders_answer(
    world: VkWorld, fault_build_dir: Path, changes: dict[str, str], active: bool, why: str
) -> None:
    world.lavapipe()
    world.layer(NAME, str(faultlib.build_layer(fault_build_dir, "ok")))
    done = _loader(world.environ, **changes)
    assert done.returncode == 0
    version = next(
        line.split()[-1] for line in done.stderr.splitlines() if "Vulkan Loader Version" in line
    )
    if version != "1.3.239" and "VK_LOADER_LAYERS_ALLOW" in changes:
        pytest.skip(f"loader {version}: the expectation is 1.3.239's (no VK_LOADER_LAYERS_ALLOW)")
    assert _inserted(done, NAME) is active  # the real loader's answer

    report = world.run(["loader-discovery", "layer-enumeration"], **changes)

    (layer,) = [rec for rec in report.layers if rec.name == NAME]
    assert (layer.active, layer.why) == (active, why)


@pytest.mark.parametrize("implicit", [True, False], ids=["implicit", "explicit"])
def test_a_broken_layer_nobody_loads_is_only_a_warning(
    world: VkWorld, fault_build_dir: Path, implicit: bool
) -> None:
    """A layer library crashing in its constructor: implicit, it breaks every program (the real
    loader crashes); explicit and not enabled, nothing loads it (the real loader works)."""
    world.lavapipe()
    library = faultlib.build_driver(fault_build_dir, "constructor-crash")
    world.layer("VK_LAYER_vkdoctor_crash", str(library), implicit=implicit)
    done = _loader(world.environ)
    assert (done.returncode == 0) is not implicit, done.returncode

    report = world.run(["loader-discovery", "layer-enumeration"], timeout_s=3.0)

    (found,) = [
        f for f in probe(report, "layer-enumeration").findings if f.code == "layer-load-crashed"
    ]
    note = " (not active now: it only breaks programs that enable it)"
    (layer,) = [rec for rec in report.layers if rec.name == "VK_LAYER_vkdoctor_crash"]
    assert "layer-load-crashed" in layer.issues
    assert [e.reason.value for e in layer.excluded_by][:1] == ["crashed"]
    assert layer.state == ("broken" if implicit else "usable")  # an unused one breaks nothing
    if implicit:
        assert found.severity is Severity.FAIL and not found.summary.endswith(note)
    else:
        assert found.severity is Severity.WARN and found.summary.endswith(note)
