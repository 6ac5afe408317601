"""The instance probe's proc-addr codes and the loader's complaints, each through a real cause.

- A fault *loader* (tests/native/fault_loader.c: the real libvulkan.so.1 with vkGetInstanceProcAddr
  wrong for one command) on LD_LIBRARY_PATH, where every program, vkdoctor's children included,
  loads it: gipa-global-missing, gipa-null-leak, gipa-instance-missing.  A layer cannot cause
  these with loader 1.3.239: vkGetInstanceProcAddr(NULL, ...) never reaches a layer, and with an
  instance the loader returns its own trampoline for every command it knows (gpa_helper.c).
- A fault layer answering a command of an instance extension unknown to loader 1.3.239: the
  loader asks the layers about names it does not know and returns a trampoline when one answers
  (unknown_function_handling.c): gipa-instance-unexpected.
- Layer manifests loader 1.3.239 warns about: a 'layers' array in a 1.0.0 file (the loader still
  uses the layer; layer-loader-complaint), and a meta layer whose component targets an older
  Vulkan (the loader drops it while creating the instance; instance-loader-message).

What the loader does is confirmed on the same fixture with tests/programs/gipa_query.py, a plain
Vulkan program, and the loader's own VK_LOADER_DEBUG output, never with vkdoctor's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import faultlib
import pytest
from conftest import VkWorld, finding, needs_lavapipe, probe

from vkdoctor.report.model import Finding, Report

pytestmark = needs_lavapipe

QUERY = Path(__file__).resolve().parent / "programs" / "gipa_query.py"
# The instance probe and what it needs, in the order `vkdoctor check` runs them.
INSTANCE_PROBES = ("loader-discovery", "driver-enumeration", "layer-enumeration", "instance")


@dataclass(frozen=True)
class Answers:
    """What gipa_query printed: which names vkGetInstanceProcAddr resolves, with and without an
    instance, and the loader's stderr."""

    null: dict[str, bool]
    instance: dict[str, bool]
    loaders: list[str]
    stderr: str


def _query(world: VkWorld, names: list[str], **changes: str | None) -> Answers:
    environ = world.env(**changes).environ
    done = subprocess.run(
        [sys.executable, str(QUERY), *names],
        env=dict(environ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(done.stdout)
    return Answers(data["null"], data["instance"], data["loaders"], done.stderr)


def _lavapipe_only() -> dict[str, str]:
    return {"VK_DRIVER_FILES": str(faultlib.lavapipe_manifest())}


def _remedy(found: Finding) -> tuple[str, tuple[str, ...]]:
    assert found.remedy is not None
    return found.remedy.text, tuple(found.remedy.commands)


def _loader_line(stderr: str, needle: str) -> str:
    """The message of the loader's one warning line containing ``needle``, without its prefix
    ("WARNING:", or "WARNING | LAYER:" for a message of the layer category too)."""
    lines = [ln for ln in stderr.splitlines() if ln.startswith("WARNING") and needle in ln]
    assert len(lines) == 1, stderr
    return lines[0].split(":", 1)[1].strip()


# ---------------------------------------------------------------------------------------------
# Fault loaders


def _with_fault_loader(world: VkWorld, build_dir: Path, variant: str) -> tuple[Report, Path]:
    loader = faultlib.build_loader(build_dir, variant)
    report = world.run(INSTANCE_PROBES, LD_LIBRARY_PATH=str(loader.parent), **_lavapipe_only())
    return report, loader


def _confirm_fault_loader(world: VkWorld, loader: Path, command: str) -> tuple[Answers, Answers]:
    """gipa_query through the real loader, then through the fault loader: the same program."""
    real = _query(world, [command], **_lavapipe_only())
    fault = _query(world, [command], LD_LIBRARY_PATH=str(loader.parent), **_lavapipe_only())
    assert str(loader) in fault.loaders, fault.loaders  # the program did load the fault loader
    assert str(loader) not in real.loaders, real.loaders
    return real, fault


def _shadowing_is_the_root(report: Report, symptom: Finding, loader: Path) -> None:
    """The loader the program loads is the cause; unsetting LD_LIBRARY_PATH is the fix."""
    shadowed = finding(report, "loader-shadowed")
    assert shadowed.summary.startswith(f"applications load {loader} (version 1.3.239), ")
    assert _remedy(shadowed)[1] == ("unset LD_LIBRARY_PATH",)
    assert symptom.id in shadowed.causes
    assert report.root_causes[0] == shadowed.id


@pytest.mark.slow
def test_loader_returning_null_for_a_global_command(world: VkWorld, fault_build_dir: Path) -> None:
    command = faultlib.LOADER_VARIANTS["global-missing"]
    report, loader = _with_fault_loader(world, fault_build_dir, "global-missing")
    real, fault = _confirm_fault_loader(world, loader, command)
    assert real.null[command] and not fault.null[command]

    got = finding(report, "gipa-global-missing")
    assert got.summary == (
        f"vkGetInstanceProcAddr(NULL, ...) returns NULL for 1 command(s): {command}"
    )
    assert _remedy(got) == ("Reinstall or upgrade the loader.", ())
    _shadowing_is_the_root(report, got, loader)
    assert report.verdict.startswith(f"Vulkan is unusable: applications load {loader} ")


@pytest.mark.slow
def test_loader_answering_a_non_global_command_without_an_instance(
    world: VkWorld, fault_build_dir: Path
) -> None:
    command = faultlib.LOADER_VARIANTS["null-leak"]
    report, loader = _with_fault_loader(world, fault_build_dir, "null-leak")
    real, fault = _confirm_fault_loader(world, loader, command)
    assert not real.null[command] and fault.null[command]

    got = finding(report, "gipa-null-leak")
    assert got.summary == (
        f"vkGetInstanceProcAddr(NULL, ...) returns pointers for non-global 1 command(s): {command}"
    )
    assert _remedy(got) == ("Upgrade the loader; applications must pass an instance.", ())
    _shadowing_is_the_root(report, got, loader)


@pytest.mark.slow
def test_loader_returning_null_for_an_instance_command(
    world: VkWorld, fault_build_dir: Path
) -> None:
    command = faultlib.LOADER_VARIANTS["instance-missing"]
    report, loader = _with_fault_loader(world, fault_build_dir, "instance-missing")
    real, fault = _confirm_fault_loader(world, loader, command)
    assert real.instance[command] and not fault.instance[command]

    got = finding(report, "gipa-instance-missing")
    assert got.summary == (
        f"vkGetInstanceProcAddr(instance, ...) returns NULL for 1 command(s): {command}"
    )
    assert _remedy(got) == (
        "Upgrade the loader; disable layers one by one to find the one dropping it.",
        (),
    )
    _shadowing_is_the_root(report, got, loader)


@pytest.mark.slow
def test_check_loader_option_checks_that_loader_past_discovery(
    world: VkWorld, fault_build_dir: Path, tmp_path: Path
) -> None:
    """`vkdoctor check --loader PATH` diagnoses PATH in the instance probe too (it used to check
    the default libvulkan.so.1 there and call the broken loader healthy)."""
    command = faultlib.LOADER_VARIANTS["global-missing"]
    loader = faultlib.build_loader(fault_build_dir, "global-missing")
    out = tmp_path / "report.json"
    argv = [sys.executable, "-m", "vkdoctor", "check", "--loader", str(loader), "--json", str(out)]
    environ = world.env(**_lavapipe_only()).environ
    done = subprocess.run(argv, env=dict(environ), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    report = Report.from_dict(json.loads(out.read_text()))
    got = finding(report, "gipa-global-missing")
    assert got.summary == (
        f"vkGetInstanceProcAddr(NULL, ...) returns NULL for 1 command(s): {command}"
    )
    assert _remedy(got) == ("Reinstall or upgrade the loader.", ())
    # The user chose this loader: that it is not the system's is no finding of its own.
    assert "loader-shadowed" not in [f.code for _, f in report.findings()]
    assert report.loader is not None and report.loader.path == str(loader)


# ---------------------------------------------------------------------------------------------
# A fault layer


@pytest.mark.slow
def test_layer_resolving_a_command_of_an_extension_not_enabled(world: VkWorld, fault_layer) -> None:
    command = faultlib.GIPA_UNEXPECTED_COMMAND
    _manifest, _library, name = fault_layer("gipa-unexpected")
    report = world.run(INSTANCE_PROBES, **_lavapipe_only())

    # The real loader: with the layer it asks the layer about the name it does not know and
    # returns a trampoline; without the layer (its disable variable) the name stays NULL.
    with_layer = _query(world, [command], VK_LOADER_DEBUG="all", **_lavapipe_only())
    assert with_layer.instance[command]
    assert f"loader_phys_dev_ext_gpa: Layer {name} returned ptr " in with_layer.stderr
    without = _query(
        world, [command], **{faultlib.default_disable_variable(name): "1"}, **_lavapipe_only()
    )
    assert not without.instance[command]

    got = finding(report, "gipa-instance-unexpected")
    assert got.summary == (
        "vkGetInstanceProcAddr(instance, ...) returns pointers for unavailable 1 command(s): "
        f"{command}"
    )
    assert _remedy(got) == ("Applications must not rely on it.", ())
    assert got.evidence["enabled_extensions"] == sorted(
        probe(report, "instance").facts["enabled_extensions"]
    )
    assert "VK_SEC_ubm_surface" not in got.evidence["enabled_extensions"]


# ---------------------------------------------------------------------------------------------
# Manifests the loader warns about


def test_layer_manifest_with_a_layers_array_in_a_1_0_0_file(
    world: VkWorld, fault_build_dir: Path
) -> None:
    library = faultlib.build_layer(fault_build_dir, "ok")
    name = "VK_LAYER_vkfault_array_in_old_file"
    manifest = world.write(
        world.implicit_dir,
        "array_in_old_file.json",
        {
            # 'layers' arrived with file format 1.0.1; loader 1.3.239 warns and uses it anyway.
            "file_format_version": "1.0.0",
            "layers": [
                {
                    "name": name,
                    "type": "GLOBAL",
                    "library_path": str(library),
                    "api_version": "1.3.239",
                    "implementation_version": "1",
                    "description": "a layer in a 'layers' array of a 1.0.0 file",
                    "disable_environment": {"DISABLE_VKFAULT_ARRAY_IN_OLD_FILE": "1"},
                }
            ],
        },
    )
    loader = _query(world, [], VK_LOADER_DEBUG="warn,layer,info", **_lavapipe_only())
    line = _loader_line(loader.stderr, str(manifest))
    assert line.startswith("loader_add_layer_properties: 'layers' tag not supported until file ")
    assert f'Insert instance layer "{name}"' in loader.stderr  # a complaint, not a refusal

    report = world.run(INSTANCE_PROBES, **_lavapipe_only())
    got = finding(report, "layer-loader-complaint")
    assert got.summary == f"the loader reports a problem with {name}: {line}"
    assert _remedy(got) == (
        "The quoted loader line is the loader's reason. Turn the layer off (its disable "
        "variable, or VK_LOADER_LAYERS_DISABLE=<layer name>) and update or remove it.",
        (),
    )
    (layer,) = [r for r in report.layers if r.name == name]
    assert (layer.state, layer.active) == ("usable", True)  # vkdoctor's parser accepts it too
    # The same line during vkCreateInstance names the manifest: folded into this finding.
    assert "instance-loader-message" not in [f.code for _, f in report.findings()]


def test_meta_layer_whose_component_targets_an_older_vulkan(
    world: VkWorld, fault_build_dir: Path
) -> None:
    library = faultlib.build_layer(fault_build_dir, "ok")
    component = faultlib.layer_name("ok")
    world.layer(component, str(library), implicit=False, api_version="1.1.0")
    meta = {
        "name": "VK_LAYER_vkfault_meta",
        "type": "GLOBAL",
        "api_version": "1.3.239",
        "implementation_version": "1",
        "description": "a meta layer over an older layer",
        "component_layers": [component],  # a meta layer names components, not a library
        "disable_environment": {"DISABLE_VKFAULT_META": "1"},
    }
    world.write(world.implicit_dir, "meta.json", {"file_format_version": "1.1.2", "layer": meta})

    loader = _query(world, [], VK_LOADER_DEBUG="warn,layer,info", **_lavapipe_only())
    line = _loader_line(loader.stderr, "verify_meta_layer_component_layers")
    assert "component layer 0 has API version 1.1 that is lower" in line
    assert f'Insert instance layer "{component}"' not in loader.stderr  # the loader drops it

    report = world.run(INSTANCE_PROBES, **_lavapipe_only())
    got = finding(report, "instance-loader-message")
    assert got.summary == f"loader warning during vkCreateInstance: {line}"
    assert _remedy(got) == (
        "The message names the component; `vkdoctor check driver-enumeration "
        "layer-enumeration -v` checks every manifest and library it could mean.",
        (),
    )
