"""loader-discovery, driver-enumeration and layer-enumeration on the real loader and lavapipe,
in isolated worlds (tests/conftest.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import VkWorld, codes, finding, needs_lavapipe, probe

from vkdoctor.report.model import Severity, Status
from vkdoctor.report.records import ExclusionReason

DISCOVERY = ["loader-discovery", "driver-enumeration", "layer-enumeration"]
LVP_LIBRARY = "/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so"


@needs_lavapipe
def test_healthy_lavapipe_world(world: VkWorld) -> None:
    world.lavapipe()
    report = world.run(DISCOVERY)
    loader = probe(report, "loader-discovery")
    assert loader.status in (Status.OK, Status.INFO), codes(loader)
    assert loader.facts["version"].startswith("1.")
    assert Path(loader.facts["real_path"]).name.startswith("libvulkan.so.1")
    drivers = probe(report, "driver-enumeration")
    # The world's XDG_DATA_DIRS hides this machine's own drivers; with lavapipe working that is
    # a fact (info), not a problem.
    assert drivers.status in (Status.OK, Status.INFO), codes(drivers)
    assert set(codes(drivers)) <= {"driver-outside-search-path"}
    (row,) = [d for d in report.drivers if d.state != "hidden"]
    assert row.state == "usable" and row.resolved == LVP_LIBRARY
    assert row.exports["vk_icdNegotiateLoaderICDInterfaceVersion"] is True
    assert row.interface_version >= 5 and row.gipa_create_instance is True
    assert row.excluded_by == () and row.in_use
    assert drivers.facts["usable"] == [str(world.icd_dir / "lvp_icd.x86_64.json")]


def _dpkg_installed(package: str) -> bool:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${db:Status-Abbrev}", package], capture_output=True, text=True
    )
    return done.returncode == 0 and done.stdout.startswith("ii")


def test_no_driver_at_all(world: VkWorld) -> None:
    report = world.run(DISCOVERY)
    drivers = probe(report, "driver-enumeration")
    assert drivers.status is Status.FAIL
    found = finding(drivers, "no-driver-manifests")
    assert str(world.icd_dir) in found.summary
    # Mesa is installed on this machine, hidden by the world's XDG_DATA_DIRS: installing it again
    # is no fix, the variable is.
    commands = found.remedy.commands if found.remedy else ()
    if _dpkg_installed("mesa-vulkan-drivers"):
        assert not any("apt-get install mesa-vulkan-drivers" in c for c in commands)
        outside = finding(drivers, "driver-outside-search-path")
        # ... and the diagnosis names it as the cause of "no driver manifests".
        assert outside.severity is Severity.FAIL and found.id in outside.causes
        assert report.root_causes[0] == outside.id
    else:
        assert any("mesa-vulkan-drivers" in c for c in commands)


def test_missing_library_names_manifest_and_path(world: VkWorld) -> None:
    manifest = world.driver("gone.json", "/opt/nowhere/libvulkan_gone.so")
    report = world.run(DISCOVERY)
    found = finding(report, "driver-library-missing")
    assert found.severity is Severity.FAIL
    assert str(manifest) in found.summary and "/opt/nowhere/libvulkan_gone.so" in found.summary
    assert "no-usable-driver" in codes(report)


@needs_lavapipe
def test_broken_manifest_next_to_good_driver(world: VkWorld) -> None:
    world.lavapipe()
    world.write(
        world.icd_dir,
        "broken.json",
        '{"file_format_version": "1.0.0", "ICD": {"library_path": "x",}}',
    )
    report = world.run(DISCOVERY)
    found = finding(report, "manifest-invalid-json")
    assert "broken.json:1:" in found.summary  # line and column of the syntax error
    assert "OUT_OF_HOST_MEMORY" in found.detail
    assert "no-usable-driver" not in codes(report)


def test_missing_fields_and_bad_version(world: VkWorld) -> None:
    world.write(
        world.icd_dir, "nofmt.json", {"ICD": {"library_path": LVP_LIBRARY, "api_version": "1.3.0"}}
    )
    world.write(
        world.icd_dir,
        "noapi.json",
        {"file_format_version": "1.0.0", "ICD": {"library_path": LVP_LIBRARY}},
    )
    world.write(
        world.icd_dir,
        "future.json",
        {"file_format_version": "9.9.9", "ICD": {"library_path": "", "api_version": 3}},
    )
    report = world.run(DISCOVERY)
    summaries = [f.summary for _, f in report.findings() if f.code.startswith("manifest-")]
    assert any("nofmt.json has no 'file_format_version'" in s for s in summaries)
    assert any("noapi.json: ICD has no 'api_version'" in s for s in summaries)
    assert any("future.json" in s and "unknown" in s for s in summaries)
    assert any("future.json" in s and "library_path" in s for s in summaries)


@needs_lavapipe
def test_bare_and_relative_library_paths(world: VkWorld) -> None:
    world.driver("bare.json", "libvulkan_lvp.so")
    world.driver("relative.json", "./libvulkan_lvp.so")
    report = world.run(DISCOVERY)
    rows = {Path(r.manifest).name: r for r in report.drivers}
    assert rows["bare.json"].library_path_kind == "bare"
    assert rows["bare.json"].state == "usable"
    assert rows["bare.json"].resolved.endswith("/libvulkan_lvp.so")
    assert rows["relative.json"].library_path_kind == "relative"
    assert rows["relative.json"].resolved == str(world.icd_dir / "libvulkan_lvp.so")
    missing = finding(report, "driver-library-missing")
    assert "relative paths are resolved against the manifest's directory" in missing.summary


@needs_lavapipe
def test_duplicate_manifests_for_one_library(world: VkWorld) -> None:
    world.lavapipe("a.json")
    world.lavapipe("b.json")
    found = finding(world.run(DISCOVERY), "driver-duplicate")
    assert "a.json" in found.summary and "b.json" in found.summary


@needs_lavapipe
def test_override_variable_hides_installed_drivers(world: VkWorld, tmp_path: Path) -> None:
    world.lavapipe()
    report = world.run(DISCOVERY, VK_DRIVER_FILES=str(tmp_path / "nvidia_icd.json"))
    assert "driver-search-overridden" in codes(report)
    hidden = finding(report, "driver-hidden-by-override")
    assert "lvp_icd.x86_64.json" in hidden.summary
    # The hidden manifest has a record saying what keeps it out of a process started now.
    (lvp,) = [r for r in report.drivers if r.manifest.endswith("lvp_icd.x86_64.json")]
    (why,) = lvp.excluded_by
    assert why.reason is ExclusionReason.HIDDEN_BY_OVERRIDE and why.variable == "VK_DRIVER_FILES"
    assert finding(report, "manifest-missing").severity is Severity.FAIL
    assert probe(report, "driver-enumeration").status is Status.FAIL


@needs_lavapipe
def test_select_filter_matching_nothing(world: VkWorld) -> None:
    world.lavapipe()
    report = world.run(DISCOVERY, VK_LOADER_DRIVERS_SELECT="*nvidia*")
    assert (
        "not selected by VK_LOADER_DRIVERS_SELECT=*nvidia*"
        in finding(report, "driver-filtered").summary
    )
    assert "no-usable-driver" in codes(report)
    (lvp,) = [d for d in report.drivers if d.state != "hidden"]
    (why,) = lvp.excluded_by
    assert (why.reason, why.variable, why.pattern) == (
        ExclusionReason.FILTERED,
        "VK_LOADER_DRIVERS_SELECT",
        "*nvidia*",
    )
    assert not lvp.in_use


def test_variable_typo_is_named(world: VkWorld) -> None:
    report = world.run(["loader-discovery"], VK_ICD_FILES="/x.json")
    found = finding(report, "variable-unknown")
    assert "VK_ICD_FILES" in found.summary and "VK_ICD_FILENAMES" in found.summary


def test_variable_newer_than_loader(world: VkWorld) -> None:
    report = world.run(["loader-discovery"], VK_LOADER_LAYERS_ALLOW="*")
    loader_version = probe(report, "loader-discovery").facts["version"]
    if tuple(map(int, loader_version.split("."))) >= (1, 3, 262):
        pytest.skip("this loader knows VK_LOADER_LAYERS_ALLOW")
    assert "1.3.262" in finding(report, "variable-unsupported").summary


def test_absent_loader_is_a_failure_with_install_command(world: VkWorld, tmp_path: Path) -> None:
    from vkdoctor.engine.runner import Options, run_pipeline

    report = run_pipeline(
        world.env(), Options(loader=str(tmp_path / "libvulkan.so.1")), DISCOVERY
    ).report
    loader = probe(report, "loader-discovery")
    assert loader.status is Status.FAIL
    found = finding(loader, "loader-missing")
    assert "cannot open shared object file" in found.summary
    # libvulkan1 is installed here (the path given does not exist): installing it is no remedy.
    commands = found.remedy.commands if found.remedy else ()
    if _dpkg_installed("libvulkan1"):
        assert not any("apt-get install libvulkan1" in c for c in commands)
    else:
        assert commands == ("sudo apt-get install libvulkan1",)
    assert probe(report, "driver-enumeration").blocked_by == "loader-discovery"


def test_truncated_loader_is_unloadable(world: VkWorld, tmp_path: Path) -> None:
    from vkdoctor.engine.runner import Options, run_pipeline

    broken = tmp_path / "libvulkan.so.1"
    broken.write_bytes(b"\x7fELF\x02")
    report = run_pipeline(world.env(), Options(loader=str(broken)), ["loader-discovery"]).report
    found = finding(report, "loader-unloadable")
    assert "too short" in found.summary or "invalid ELF header" in found.summary


@needs_lavapipe
def test_implicit_layer_states_and_problems(world: VkWorld) -> None:
    world.lavapipe()
    world.layer("VK_LAYER_test_gone", "/opt/nowhere/libgone.so")
    world.layer("VK_LAYER_test_off", "/opt/nowhere/liboff.so")
    world.write(
        world.implicit_dir,
        "nodisable.json",
        {
            "file_format_version": "1.0.0",
            "layer": {
                "name": "VK_LAYER_test_nodisable",
                "type": "GLOBAL",
                "library_path": "libx.so",
                "api_version": "1.3.0",
                "implementation_version": "1",
                "description": "d",
            },
        },
    )
    report = world.run(DISCOVERY, DISABLE_VK_LAYER_TEST_OFF="1")
    layers = probe(report, "layer-enumeration")
    rows = {r.name: r for r in report.layers}
    assert rows["VK_LAYER_test_gone"].active is True
    assert rows["VK_LAYER_test_off"].active is False
    assert rows["VK_LAYER_test_off"].why == "disabled by DISABLE_VK_LAYER_TEST_OFF"
    missing = [f for f in layers.findings if f.code == "layer-library-missing"]
    by_layer = {("gone" in f.summary): f.severity for f in missing}
    assert by_layer == {
        True: Severity.FAIL,
        False: Severity.WARN,
    }  # only the active one breaks apps
    assert "layer-missing-disable-environment" in codes(layers)


@needs_lavapipe
def test_requested_layer_typo(world: VkWorld) -> None:
    world.lavapipe()
    world.layer("VK_LAYER_test_real", shutil.which("true") or "/bin/true", implicit=False)
    report = world.run(DISCOVERY, VK_INSTANCE_LAYERS="VK_LAYER_test_rael")
    found = finding(report, "layer-requested-missing")
    assert "did you mean VK_LAYER_test_real" in found.summary
    assert found.remedy is not None
    assert found.remedy.commands[0] == "export VK_INSTANCE_LAYERS=VK_LAYER_test_real"
    fixed = world.run(DISCOVERY, VK_INSTANCE_LAYERS="VK_LAYER_test_real")
    assert "layer-requested-missing" not in codes(fixed)


@needs_lavapipe
def test_requested_layer_that_nothing_resembles_is_taken_out_of_the_list(world: VkWorld) -> None:
    world.lavapipe()
    world.layer("VK_LAYER_test_real", shutil.which("true") or "/bin/true", implicit=False)
    report = world.run(DISCOVERY, VK_INSTANCE_LAYERS="VK_LAYER_test_real:XYZZY")
    found = finding(report, "layer-requested-missing")
    assert found.remedy is not None
    assert found.remedy.commands[0] == "export VK_INSTANCE_LAYERS=VK_LAYER_test_real"
    alone = finding(world.run(DISCOVERY, VK_INSTANCE_LAYERS="XYZZY"), "layer-requested-missing")
    assert alone.remedy is not None and alone.remedy.commands[0] == "unset VK_INSTANCE_LAYERS"


def test_meta_layer_missing_component(world: VkWorld) -> None:
    world.write(
        world.explicit_dir,
        "meta.json",
        {
            "file_format_version": "1.1.2",
            "layer": {
                "name": "VK_LAYER_test_meta",
                "type": "GLOBAL",
                "api_version": "1.3.0",
                "implementation_version": "1",
                "description": "meta",
                "component_layers": ["VK_LAYER_test_absent"],
            },
        },
    )
    found = finding(world.run(DISCOVERY), "layer-meta-incomplete")
    assert "VK_LAYER_test_absent" in found.summary


def test_debian_device_select_warning_is_classified(world: VkWorld) -> None:
    system = Path("/usr/share/vulkan/implicit_layer.d/VkLayer_MESA_device_select.json")
    if not system.exists():
        pytest.skip("Mesa's device-select layer is not installed")
    world.implicit_dir.mkdir(parents=True)
    shutil.copy(system, world.implicit_dir)
    report = world.run(DISCOVERY)
    harmless = [f for _, f in report.findings() if f.code == "layer-known-harmless-warning"]
    assert harmless and harmless[0].severity is Severity.INFO
    assert probe(report, "layer-enumeration").status in (Status.OK, Status.INFO)


@needs_lavapipe
def test_vulkaninfo_agrees_on_the_loader_version(world: VkWorld) -> None:
    world.lavapipe()
    vulkaninfo = shutil.which("vulkaninfo")
    if not vulkaninfo:
        pytest.skip("vulkaninfo not installed")
    out = subprocess.run(
        [vulkaninfo, "--summary"], capture_output=True, text=True, env=world.env().environ
    )
    version = probe(world.run(["loader-discovery"]), "loader-discovery").facts["version"]
    assert f"Vulkan Instance Version: {version}" in out.stdout


@needs_lavapipe
def test_override_naming_the_installed_manifest_through_a_symlink_hides_nothing(
    world: VkWorld, tmp_path: Path
) -> None:
    installed = world.lavapipe()
    link = tmp_path / "elsewhere.json"
    link.symlink_to(installed)
    report = world.run(DISCOVERY, VK_DRIVER_FILES=str(link))
    assert "driver-search-overridden" in codes(report)
    assert "driver-hidden-by-override" not in codes(report)


def test_elevated_privileges_drop_the_override_variables(world: VkWorld, tmp_path: Path) -> None:
    from dataclasses import replace

    from vkdoctor.engine.runner import Options, run_pipeline
    from vkdoctor.loader.search import search_entries

    env = replace(world.env(VK_DRIVER_FILES=str(tmp_path / "x.json")), secure=True)
    # The loader's secure_getenv drops VK_DRIVER_FILES, XDG_* and HOME: system directories only.
    searched = [e.path for e in search_entries(env, "driver", (1, 3, 239))]
    assert searched == [
        "/etc/xdg/vulkan/icd.d",
        "/etc/vulkan/icd.d",
        "/usr/local/share/vulkan/icd.d",
        "/usr/share/vulkan/icd.d",
    ]
    report = run_pipeline(env, Options(), ["loader-discovery"]).report
    found = finding(report, "elevated-privileges")
    assert "VK_DRIVER_FILES" in found.evidence["ignored_variables"]


def test_settings_file_is_reported_with_its_effect(world: VkWorld) -> None:
    settings = world.write(
        world.root / "config" / "vulkan" / "loader_settings.d",
        "vk_loader_settings.json",
        {"file_format_version": "1.0.0", "settings": {"stderr_log": ["all"]}},
    )
    report = world.run(["loader-discovery"])
    found = finding(report, "settings-file")
    assert str(settings) in found.summary
    version = tuple(map(int, probe(report, "loader-discovery").facts["version"].split(".")))
    assert found.evidence["in_effect"] is (version >= (1, 3, 251))


@needs_lavapipe
def test_layers_disable_filter_and_enable_environment(world: VkWorld) -> None:
    world.lavapipe()
    world.layer("VK_LAYER_test_filtered", "/opt/nowhere/a.so")
    world.layer(
        "VK_LAYER_test_optin", "/opt/nowhere/b.so", enable_environment={"ENABLE_TEST_OPTIN": "1"}
    )
    rows = {r.name: r for r in world.run(DISCOVERY, VK_LOADER_LAYERS_DISABLE="*filtered*").layers}
    assert rows["VK_LAYER_test_filtered"].why == "forced off by VK_LOADER_LAYERS_DISABLE"
    assert rows["VK_LAYER_test_optin"].why == "off until ENABLE_TEST_OPTIN=1"
    rows = {r.name: r for r in world.run(DISCOVERY, ENABLE_TEST_OPTIN="1").layers}
    assert rows["VK_LAYER_test_optin"].active is True


def test_unreadable_manifest_and_library_for_an_ordinary_user(
    world: VkWorld, tmp_path: Path
) -> None:
    from dataclasses import replace

    from vkdoctor.engine.runner import Options, run_pipeline

    library = tmp_path / "libprivate.so"
    library.write_bytes(b"\x7fELF" + bytes(60))
    library.chmod(0o600)
    world.driver("private_lib.json", str(library))
    world.driver("secret.json", str(library)).chmod(0o600)
    env = replace(world.env(), uid=1000, euid=1000, gid=1000, egid=1000, groups=(1000,))
    report = run_pipeline(env, Options(), ["driver-enumeration"]).report
    assert (
        "secret.json is not readable by uid 1000" in finding(report, "manifest-unreadable").summary
    )
    assert "not readable by uid 1000" in finding(report, "driver-library-unreadable").summary


def test_copies_bundled_in_python_packages_are_found_one_or_two_levels_down(tmp_path: Path) -> None:
    """The same files glob's ``*/libvulkan.so*`` and ``*/*/libvulkan.so*`` find (the walk that
    replaced them is a scandir), through a linked package directory too, and none deeper."""
    import glob

    from vkdoctor.probes.loader_discovery import _bundled_copies

    site = tmp_path / "site-packages"
    for relative in (
        "wgpu/libvulkan.so.1",
        "taichi/_lib/libvulkan.so.1.3.250",
        "pkg/a/b/libvulkan.so.1",  # three levels: not a bundled copy
        "other/libvulkan_lvp.so",  # a driver, not the loader
        "libvulkan.so.1",  # site-packages itself holds no package's copy
    ):
        (site / relative).parent.mkdir(parents=True, exist_ok=True)
        (site / relative).write_bytes(b"")
    (site / "linked").symlink_to(site / "taichi")
    expected = sorted(glob.glob(f"{site}/*/libvulkan.so*") + glob.glob(f"{site}/*/*/libvulkan.so*"))
    assert _bundled_copies(str(site)) == expected
    assert expected == [
        f"{site}/linked/_lib/libvulkan.so.1.3.250",
        f"{site}/taichi/_lib/libvulkan.so.1.3.250",
        f"{site}/wgpu/libvulkan.so.1",
    ]
