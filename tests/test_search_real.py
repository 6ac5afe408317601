"""The manifest search (vkdoctor/loader/search.py) against the real loader: where vkdoctor says
the loader looks is where VK_LOADER_DEBUG says it looks, on the same environment, including the
HOME fallbacks of unset XDG variables.  Written for mutants the mutation run found surviving
(benchmarks/RESULTS.md, "Mutation testing")."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import VkWorld, codes, needs_lavapipe, probe

pytestmark = [
    needs_lavapipe,
    pytest.mark.skipif(shutil.which("vulkaninfo") is None, reason="needs vulkaninfo"),
]


def _loader_locations(environ: dict[str, str], category: str) -> list[str]:
    """The directories the real loader lists under 'In following locations:' for drivers."""
    done = subprocess.run(
        ["vulkaninfo", "--summary"],
        env={**environ, "VK_LOADER_DEBUG": "all"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = (done.stdout + done.stderr).splitlines()
    start = next(
        i
        for i, line in enumerate(lines)
        if line.startswith(f"{category}:") and "Searching for driver manifest files" in line
    )
    header = next(i for i in range(start, len(lines)) if "In following locations:" in lines[i])
    found: list[str] = []
    for line in lines[header + 1 :]:
        text = line.split(":", 1)[1].strip() if ":" in line else ""
        if not text.startswith("/"):
            break
        found.append(text)
    return found


@pytest.mark.parametrize("unset", [("XDG_CONFIG_HOME", "XDG_DATA_HOME"), ()])
def test_driver_search_order_is_the_loaders(world: VkWorld, unset: tuple[str, ...]) -> None:
    """With XDG_CONFIG_HOME and XDG_DATA_HOME unset the loader falls back to $HOME/.config and
    $HOME/.local/share; with them set it uses them.  vkdoctor predicts the same list."""
    world.lavapipe()
    environ = {k: v for k, v in world.environ.items() if k not in unset}
    expected = _loader_locations(environ, "DRIVER")
    home = world.environ["HOME"]
    if unset:
        assert f"{home}/.config/vulkan/icd.d" in expected  # the fallback this test is about
        assert f"{home}/.local/share/vulkan/icd.d" in expected

    report = world.run(["loader-discovery", "driver-enumeration"], **dict.fromkeys(unset))

    search = probe(report, "driver-enumeration").facts["search"]
    assert [entry["path"] for entry in search] == expected


def test_vk_variables_of_layers_are_not_loader_typos(world: VkWorld) -> None:
    """A layer's own setting (VK_LAYER_*, VK_KHRONOS_*) is no typo of a loader variable; a VK_
    name that is neither the loader's nor a layer prefix's is named, even without a near miss."""
    report = world.run(
        ["loader-discovery"],
        VK_KHRONOS_PROFILES_SIMULATE_CAPABILITIES="SIMULATE_API_VERSION_BIT",
        VK_WIDGET_COLOUR="blue",
    )
    found = [f for f in probe(report, "loader-discovery").findings if f.code == "variable-unknown"]
    assert [f.summary for f in found] == [
        "VK_WIDGET_COLOUR is set but the Vulkan loader does not read it"
    ], codes(report)
