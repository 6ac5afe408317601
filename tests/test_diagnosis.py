"""Root causes on the real machine: a variable that hides every driver is named as the cause, with
the exact fix, and the real loader confirms both the breakage and the fix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import faultlib
import pytest

from vkdoctor.diagnosis.remedies import Machine, fit_command

LVP_MANIFEST = Path("/usr/share/vulkan/icd.d/lvp_icd.x86_64.json")
needs_system_lavapipe = pytest.mark.skipif(
    not LVP_MANIFEST.exists() or shutil.which("vulkaninfo") is None,
    reason="needs Mesa's lavapipe and vulkaninfo installed system-wide (./bootstrap.sh)",
)


def _environ(**changes: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VK_", "XDG_DATA"))}
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _check(tmp_path: Path, **changes: str | None) -> tuple[int, dict]:
    out = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "vkdoctor", "check", "--json", str(out)],
        env=_environ(**changes),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, json.loads(out.read_text())


def _loader_works(**changes: str | None) -> bool:
    """The real loader's answer: does vulkaninfo see a device?"""
    done = subprocess.run(
        ["vulkaninfo", "--summary"],
        env=_environ(**changes),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode == 0 and "deviceName" in done.stdout


def _first_root(report: dict) -> dict:
    findings = {f["id"]: f for p in report["probes"] for f in p["findings"]}
    return findings[report["root_causes"][0]]


def _installed_drivers() -> int:
    return len(list(Path("/usr/share/vulkan/icd.d").glob("*.json")))


@needs_system_lavapipe
def test_healthy_machine_has_a_summary_verdict_and_no_warning(tmp_path: Path) -> None:
    code, report = _check(tmp_path)
    assert code == 0
    assert report["verdict"].startswith(f"Vulkan works: loader {report['loader']['version']}; ")
    assert "via lvp_icd.x86_64.json" in report["verdict"]
    assert report["verdict"].endswith("compute dispatch verified")
    severities = {f["severity"] for p in report["probes"] for f in p["findings"]}
    assert severities <= {"info"} and report["root_causes"] == []


@needs_system_lavapipe
def test_driver_files_pointing_at_a_broken_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "broken.json"
    manifest.write_text(
        json.dumps(
            {
                "file_format_version": "1.0.0",
                "ICD": {"library_path": "/opt/gone/libvk.so", "api_version": "1.3.0"},
            }
        )
    )
    assert not _loader_works(VK_DRIVER_FILES=str(manifest))
    code, report = _check(tmp_path, VK_DRIVER_FILES=str(manifest))
    assert code == 1
    n = _installed_drivers()
    assert report["verdict"] == (
        "Vulkan is unusable: VK_DRIVER_FILES points at a manifest whose library does not exist, "
        f"and hides the {n} installed drivers — fix: unset VK_DRIVER_FILES"
    )
    root = _first_root(report)
    assert root["code"] == "driver-search-overridden" and root["severity"] == "fail"
    assert root["remedy"]["commands"][0] == "unset VK_DRIVER_FILES"
    findings = {f["id"]: f for p in report["probes"] for f in p["findings"]}
    explained = {findings[i]["code"] for i in root["causes"]}
    assert {"driver-library-missing", "no-usable-driver", "driver-hidden-by-override"} <= explained
    # No remedy suggests installing what is installed, or sudo as root.
    commands = [c for f in findings.values() if f["remedy"] for c in f["remedy"]["commands"]]
    assert not any("apt-get install mesa-vulkan-drivers" in c for c in commands)
    if os.geteuid() == 0:
        assert not any(c.startswith("sudo ") for c in commands)
    assert _loader_works(VK_DRIVER_FILES=None)  # the fix, as the real loader sees it


@needs_system_lavapipe
@pytest.mark.parametrize(
    ("variable", "value"),
    [("VK_LOADER_DRIVERS_SELECT", "*nvidia*"), ("VK_LOADER_DRIVERS_DISABLE", "*")],
)
def test_driver_filter_that_leaves_nothing(tmp_path: Path, variable: str, value: str) -> None:
    assert not _loader_works(**{variable: value})
    code, report = _check(tmp_path, **{variable: value})
    assert code == 1
    n = _installed_drivers()
    assert report["verdict"] == (
        f"Vulkan is unusable: {variable} filters out all {n} installed drivers — fix: unset {variable}"
    )
    root = _first_root(report)
    assert root["code"] == "driver-filtered"
    assert root["remedy"]["commands"][0] == f"unset {variable}"
    assert _loader_works(**{variable: None})


@needs_system_lavapipe
def test_xdg_data_dirs_without_usr_share(tmp_path: Path) -> None:
    value = str(tmp_path / "share")
    assert not _loader_works(XDG_DATA_DIRS=value)
    code, report = _check(tmp_path, XDG_DATA_DIRS=value)
    assert code == 1
    fix = f"export XDG_DATA_DIRS={value}:/usr/local/share:/usr/share"
    n = _installed_drivers()
    assert report["verdict"] == (
        f"Vulkan is unusable: XDG_DATA_DIRS leaves out /usr/share, where the {n} installed "
        f"drivers are — fix: {fix}"
    )
    root = _first_root(report)
    assert root["code"] == "driver-outside-search-path"
    assert root["remedy"]["commands"][0] == fix
    assert _loader_works(XDG_DATA_DIRS=f"{value}:/usr/local/share:/usr/share")


# -- the remedy rules, on every command form the codes use


def _machine(root: bool, sudo: bool = True, owner: str | None = None) -> Machine:
    return Machine(
        is_root=root,
        has_program=lambda name: name != "sudo" or sudo,
        package_of=lambda _path: owner,
        is_installed=lambda package: package == "mesa-vulkan-drivers",
        can_ask_packages=True,
    )


def test_no_sudo_as_root_and_su_where_sudo_is_missing() -> None:
    assert fit_command("sudo apt-get install libvulkan1", _machine(True)) == (
        "apt-get install libvulkan1"
    )
    assert fit_command("sudo apt-get install libvulkan1", _machine(False)) == (
        "sudo apt-get install libvulkan1"
    )
    assert fit_command("sudo apt-get install libvulkan1", _machine(False, sudo=False)) == (
        "su -c 'apt-get install libvulkan1'"
    )


def test_installed_packages_are_not_suggested() -> None:
    assert fit_command("sudo apt-get install mesa-vulkan-drivers", _machine(True)) is None


def test_package_files_are_reinstalled_not_deleted() -> None:
    fitted = fit_command(
        "sudo rm /usr/share/vulkan/icd.d/x.json  # if it is stale",
        _machine(True, owner="mesa-vulkan-drivers"),
    )
    assert fitted == (
        "apt-get install --reinstall mesa-vulkan-drivers  # /usr/share/vulkan/icd.d/x.json "
        "belongs to mesa-vulkan-drivers"
    )
    # A file no package owns may go; the ownership question is answered, not asked.
    assert fit_command("dpkg -S /home/a/x.json  # which package", _machine(True)) is None
    assert fit_command("sudo rm /home/a/x.json  # if it is stale", _machine(True)) == (
        "rm /home/a/x.json  # if it is stale"
    )


@pytest.mark.skipif(not LVP_MANIFEST.exists(), reason="needs Mesa's lavapipe installed")
def test_real_dpkg_names_the_owner_of_a_mesa_manifest() -> None:
    from vkdoctor.engine.env import Env

    owner = subprocess.run(
        ["dpkg-query", "-S", str(LVP_MANIFEST)], capture_output=True, text=True, check=True
    ).stdout.split(":", 1)[0]
    fitted = fit_command(f"sudo rm {LVP_MANIFEST}", Machine.of(Env.current()))
    assert fitted is not None and fitted.split("  #")[0].endswith(
        f"apt-get install --reinstall {owner}"
    )


@needs_system_lavapipe
def test_driver_files_naming_a_fifo_is_the_root_of_the_loader_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "icd.json"
    os.mkfifo(fifo)
    out = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "vkdoctor", "check", "--timeout", "1", "--json", str(out)],
        env=_environ(VK_DRIVER_FILES=str(fifo)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    report = json.loads(out.read_text())
    n = _installed_drivers()
    assert report["verdict"] == (
        "Vulkan is unusable: VK_DRIVER_FILES points at a path that is not a regular file (a FIFO "
        f"or device hangs the loader), and hides the {n} installed drivers — fix: unset "
        "VK_DRIVER_FILES"
    )
    # The loader's own hang on the FIFO is folded under the variable, not a second root.
    findings = {f["id"]: f for p in report["probes"] for f in p["findings"]}
    root = findings[report["root_causes"][0]]
    explained = {findings[i]["code"] for i in root["causes"]}
    assert "manifest-not-regular-file" in explained
    assert not [i for i in report["root_causes"][1:] if findings[i]["severity"] == "fail"]


@needs_system_lavapipe
def test_a_run_stopped_before_anything_failed_does_not_say_vulkan_works(tmp_path: Path) -> None:
    """A FIFO manifest hangs the loader during loader discovery; SIGTERM from `timeout` arrives
    before any probe ends.  Nothing was checked, so the verdict must not be "Vulkan works"."""
    fifo = tmp_path / "icd.json"
    os.mkfifo(fifo)
    out = tmp_path / "report.json"
    done = subprocess.run(
        ["timeout", "2", sys.executable, "-m", "vkdoctor", "check", "-q", "--json", str(out)],
        env=_environ(VK_DRIVER_FILES=str(fifo)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 124  # timeout's code: vkdoctor ended by SIGTERM's default path
    report = json.loads(out.read_text())
    assert report["verdict"] == (
        "Not checked to the end: vkdoctor received SIGTERM while the loader-discovery probe was "
        "running"
    )
    assert report["verdict"] in done.stdout


CHECK = [sys.executable, "-m", "vkdoctor", "check"]


@needs_system_lavapipe
def test_a_partial_run_with_a_warning_speaks_of_the_steps_it_ran(tmp_path: Path) -> None:
    """An implicit layer whose library is missing: the real loader skips it and still finds a
    device, so a run of only the first steps must not call Vulkan unusable (no device probe
    ran), nor working (no instance was created): it names the steps it ran."""
    home = tmp_path / "home"
    faultlib.write_layer_manifest(
        faultlib.implicit_layer_dir(home),
        name="VK_LAYER_vkdoctor_gone",
        library_path=str(tmp_path / "missing" / "libgone.so"),
        implicit=True,
    )
    assert _loader_works(HOME=str(home))
    out = tmp_path / "partial.json"
    done = subprocess.run(
        [*CHECK, "loader-discovery", "layer-enumeration", "--json", str(out)],
        env=_environ(HOME=str(home)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(out.read_text())
    root = _first_root(report)
    assert done.returncode == 1 and root["code"] == "layer-library-missing"
    prefix = "Problems in the steps run (loader-discovery, layer-enumeration): "
    assert report["verdict"].startswith(prefix + root["summary"])

    code, whole = _check(tmp_path, HOME=str(home))
    assert code == 1 and whole["verdict"].startswith("Vulkan works, with problems: ")


def test_a_partial_healthy_run_does_not_say_vulkan_works(tmp_path: Path) -> None:
    out = tmp_path / "partial.json"
    done = subprocess.run(
        [*CHECK, "loader-discovery", "--json", str(out)],
        env=_environ(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(out.read_text())
    assert done.returncode == 0
    assert report["verdict"] == (
        f"No problems in the steps run (loader-discovery): loader {report['loader']['version']}"
    )
