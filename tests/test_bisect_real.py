"""Bisection (vkdoctor/engine/bisect.py) of an explicit layer that VK_INSTANCE_LAYERS forces on,
in-process (the whole-CLI variant with VK_LOADER_LAYERS_ENABLE is a slow test of
test_root_cause_rules.py).  Written for mutants the mutation run found surviving
(benchmarks/RESULTS.md, "Mutation testing"); the real loader is asked first."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import faultlib
import pytest
from conftest import VkWorld, needs_lavapipe

pytestmark = [
    needs_lavapipe,
    pytest.mark.skipif(shutil.which("vulkaninfo") is None, reason="needs vulkaninfo"),
]
CRASH = "VK_LAYER_VKFAULT_crash"
OK = "VK_LAYER_vkdoctor_ok"


def _loader_works(environ: dict[str, str]) -> bool:
    done = subprocess.run(
        ["vulkaninfo", "--summary"], env=environ, capture_output=True, text=True, timeout=60
    )
    return done.returncode == 0 and "deviceName" in done.stdout


@pytest.mark.parametrize(
    ("enabled", "fix"),
    [
        (CRASH, "unset VK_INSTANCE_LAYERS"),
        (f"{OK}:{CRASH}", f"export VK_INSTANCE_LAYERS={OK}"),
    ],
    ids=["alone", "beside-a-good-layer"],
)
def test_an_explicit_layer_forced_on_by_vk_instance_layers_is_the_culprit(
    world: VkWorld, fault_build_dir: Path, enabled: str, fix: str
) -> None:
    world.lavapipe()
    crash = world.layer(
        CRASH, str(faultlib.build_layer(fault_build_dir, "create-instance-crash")), implicit=False
    )
    world.layer(OK, str(faultlib.build_layer(fault_build_dir, "ok")), implicit=False)
    # The real loader: broken with the variable, working with the fix applied.
    assert not _loader_works({**world.environ, "VK_INSTANCE_LAYERS": enabled})
    fixed = {k: v for k, v in world.environ.items()}
    if fix.startswith("export "):
        fixed["VK_INSTANCE_LAYERS"] = OK
    assert _loader_works(fixed)

    report = world.run(
        ["loader-discovery", "driver-enumeration", "layer-enumeration", "instance"],
        VK_INSTANCE_LAYERS=enabled,
    )

    culprits = [f for _, f in report.findings() if f.code == "culprit-layer"]
    assert len(culprits) == 1, [f.code for _, f in report.findings()]
    (culprit,) = culprits
    assert culprit.summary.startswith(
        f"explicit layer {CRASH} from {crash}, enabled by VK_INSTANCE_LAYERS, breaks instance "
        "creation; without it, it works"
    ), culprit.summary
    assert culprit.remedy is not None and culprit.remedy.commands[0] == fix
    assert not [f for _, f in report.findings() if f.code == "culprit-driver"]


def test_a_driver_crashing_in_vkcreateinstance_is_the_culprit_with_how_it_failed(
    world: VkWorld, fault_driver
) -> None:
    world.lavapipe()
    manifest, _ = fault_driver("create-instance-crash")
    alone = subprocess.run(
        ["vulkaninfo", "--summary"],
        env={**world.environ, "VK_DRIVER_FILES": str(manifest)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert alone.returncode == -11  # the real loader with this driver alone: SIGSEGV

    report = world.run(["loader-discovery", "driver-enumeration", "layer-enumeration", "instance"])

    (culprit,) = [f for _, f in report.findings() if f.code == "culprit-driver"]
    prefix = (
        f"driver {manifest} alone breaks instance creation: the child process died from SIGSEGV "
    )
    assert culprit.summary.startswith(prefix), culprit.summary
    assert "(vkCreateInstance(" in culprit.summary  # the step it died in
    assert culprit.evidence["signal"] == "SIGSEGV"
