"""The matrix suite: runs INSIDE a Debian release's chroot (tests/matrix/run.py puts it there),
under that release's loader, Mesa, Python and gcc.

Each scenario asks the real loader first (vulkaninfo, the release's own) whether Vulkan works,
then asserts the verdict and first remedy vkdoctor gives; what depends on the loader's version
is looked up in vkdoctor/loader/versions.py, the same table vkdoctor uses, never in an `if` here.
Outside a chroot (VKDOCTOR_MATRIX_RELEASE unset) everything here is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import faultlib
import pytest

from vkdoctor.loader.search import parse_version
from vkdoctor.loader.versions import Behaviour, has, reads_variable

RELEASE = os.environ.get("VKDOCTOR_MATRIX_RELEASE")
OUT = Path(os.environ.get("VKDOCTOR_MATRIX_OUT", "/tmp"))
pytestmark = [
    pytest.mark.matrix,
    pytest.mark.skipif(RELEASE is None, reason="runs inside a matrix chroot (tests/matrix/run.py)"),
]


def _dpkg_version(package: str) -> str:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True
    )
    return done.stdout.strip()


def _loader() -> tuple[int, int, int]:
    """The release's loader version, from its package (not from vkdoctor)."""
    version = parse_version(_dpkg_version("libvulkan1"))
    assert version is not None
    return version


def _installed_drivers() -> int:
    return len(list(Path("/usr/share/vulkan/icd.d").glob("*.json")))


def _environ(home: Path, **changes: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VK_", "XDG_"))}
    env["HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _check(tmp_path: Path, *extra: str, **changes: str | None) -> tuple[int, dict]:
    out = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "vkdoctor", "check", "--json", str(out), *extra],
        env=_environ(tmp_path / "home", **changes),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(out.read_text())


def _loader_works(tmp_path: Path, **changes: str | None) -> bool:
    """The real loader's answer: does the release's vulkaninfo see a device?"""
    done = subprocess.run(
        ["vulkaninfo"],
        env=_environ(tmp_path / "home", **changes),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode == 0 and "deviceName" in done.stdout


def _findings(report: dict) -> list[dict]:
    return [f for p in report["probes"] for f in p["findings"]]


def _first_root(report: dict) -> dict:
    by_id = {f["id"]: f for f in _findings(report)}
    return by_id[report["root_causes"][0]]


def _assert_healthy(code: int, report: dict) -> None:
    loader = ".".join(map(str, _loader()))
    bad = [(f["severity"], f["code"], f["summary"]) for f in _findings(report)]
    bad = [b for b in bad if b[0] != "info"]
    assert bad == [] and report["root_causes"] == []
    assert code == 0
    assert report["verdict"].startswith(f"Vulkan works: loader {loader}")
    assert report["verdict"].endswith("compute dispatch verified")


def _assert_ignored(code: int, report: dict, variable: str) -> None:
    """A variable this loader does not read: Vulkan works, and the one warning says so."""
    loader = ".".join(map(str, _loader()))
    bad = [f for f in _findings(report) if f["severity"] != "info"]
    assert [f["code"] for f in bad] == ["variable-unsupported"], bad
    assert (
        variable in bad[0]["summary"] and f"this loader ({loader}) ignores it" in bad[0]["summary"]
    )
    assert code == 1 and report["verdict"].startswith(f"Vulkan works, with problems: {variable}")


def test_healthy_check_verifies_the_dispatch(tmp_path: Path) -> None:
    assert _loader_works(tmp_path)
    out = OUT / f"matrix-{RELEASE}.json"
    code, report = _check(tmp_path, "--redact")
    shutil.copyfile(tmp_path / "report.json", out)
    # Its Markdown beside it, as for every example in reports/ (tests/test_markdown.py).
    subprocess.run(
        [
            sys.executable,
            "-m",
            "vkdoctor",
            "report",
            "markdown",
            str(out),
            "-o",
            str(out.with_suffix(".md")),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert report["loader"]["version"].startswith(".".join(map(str, _loader())))
    _assert_healthy(code, report)


def _stale_manifest(tmp_path: Path) -> Path:
    manifest = tmp_path / "stale.json"
    manifest.write_text(
        json.dumps(
            {
                "file_format_version": "1.0.0",
                "ICD": {"library_path": "/opt/gone/libvk.so", "api_version": "1.2.0"},
            }
        )
    )
    return manifest


@pytest.mark.parametrize("variable", ["VK_ICD_FILENAMES", "VK_DRIVER_FILES"])
def test_stale_driver_override(tmp_path: Path, variable: str) -> None:
    manifest = str(_stale_manifest(tmp_path))
    read = reads_variable(variable, _loader())
    # The table's claim, checked against the release's real loader.
    assert _loader_works(tmp_path, **{variable: manifest}) is not read
    code, report = _check(tmp_path, **{variable: manifest})
    if not read:
        _assert_ignored(code, report, variable)
        return
    assert code == 1
    assert report["verdict"] == (
        f"Vulkan is unusable: {variable} points at a manifest whose library does not exist, "
        f"and hides the {_installed_drivers()} installed drivers — fix: unset {variable}"
    )
    root = _first_root(report)
    assert root["code"] == "driver-search-overridden"
    assert root["remedy"]["commands"][0] == f"unset {variable}"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("VK_LOADER_DRIVERS_SELECT", "*nvidia*"), ("VK_LOADER_DRIVERS_DISABLE", "*")],
)
def test_driver_filter_that_leaves_nothing(tmp_path: Path, variable: str, value: str) -> None:
    read = reads_variable(variable, _loader())
    assert _loader_works(tmp_path, **{variable: value}) is not read
    code, report = _check(tmp_path, **{variable: value})
    if not read:
        _assert_ignored(code, report, variable)
        return
    assert code == 1
    assert report["verdict"] == (
        f"Vulkan is unusable: {variable} filters out all {_installed_drivers()} installed "
        f"drivers — fix: unset {variable}"
    )
    assert _first_root(report)["remedy"]["commands"][0] == f"unset {variable}"


def test_malformed_manifest(tmp_path: Path) -> None:
    """A driver manifest that is not JSON, in the user's data directory: before 1.3.268 every
    instance fails (VK_ERROR_OUT_OF_HOST_MEMORY); from it the loader skips the file."""
    data = tmp_path / "data"
    broken = data / "vulkan" / "icd.d" / "broken.json"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"file_format_version": "1.0.0", "ICD": {')
    skipped = has(Behaviour.MALFORMED_MANIFEST_SKIPPED, _loader())
    assert _loader_works(tmp_path, XDG_DATA_HOME=str(data)) is skipped
    code, report = _check(tmp_path, XDG_DATA_HOME=str(data))
    mentioned = [f for f in _findings(report) if str(broken) in f["summary"]]
    assert mentioned, "the malformed manifest is not named"
    if skipped:
        assert report["verdict"].startswith("Vulkan works")
        assert all(f["severity"] != "fail" for f in mentioned), mentioned
    else:
        assert code == 1 and report["verdict"].startswith("Vulkan is unusable")
        assert str(broken) in report["verdict"]


# -- fault drivers compiled with this release's gcc against its loader


@pytest.fixture(scope="module")
def fault_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults")


def _with_fault(tmp_path: Path, fault_dir: Path, variant: str) -> tuple[dict[str, str], Path]:
    """lavapipe plus one fault driver, found through the user's data directory."""
    icd = tmp_path / "data" / "vulkan" / "icd.d"
    icd.mkdir(parents=True)
    library = faultlib.build_driver(fault_dir, variant)
    manifest = faultlib.write_driver_manifest(
        icd, str(library), name=f"fault_{variant}", api_version="1.2.0"
    )
    return {"XDG_DATA_HOME": str(tmp_path / "data")}, manifest


def test_driver_crashing_in_negotiation(tmp_path: Path, fault_dir: Path) -> None:
    env, manifest = _with_fault(tmp_path, fault_dir, "negotiate-crash")
    code, report = _check(tmp_path, **env)
    assert code == 1
    crashed = next(f for f in _findings(report) if f["code"] == "driver-load-crashed")
    assert "SIGSEGV" in crashed["summary"]
    first = crashed["remedy"]["commands"][0]
    if reads_variable("VK_LOADER_DRIVERS_DISABLE", _loader()):
        assert f"VK_LOADER_DRIVERS_DISABLE={manifest.name}" in first
    else:
        # This loader ignores VK_LOADER_DRIVERS_DISABLE: a fix through it would change nothing.
        assert first.startswith(f"mv {manifest} {manifest}.disabled")


def test_implicit_layer_older_than_vkdoctors_api_request(tmp_path: Path, fault_dir: Path) -> None:
    """A working implicit layer for Vulkan 1.1: loaders from 1.3.228 warn because vkdoctor asks
    for the loader's own version, which is vkdoctor's doing, not a problem of the machine."""
    layers = tmp_path / "data" / "vulkan" / "implicit_layer.d"
    library = faultlib.build_layer(fault_dir, "ok")
    faultlib.write_layer_manifest(
        layers,
        name=faultlib.layer_name("ok"),
        library_path=str(library),
        implicit=True,
        api_version="1.1.0",
    )
    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    assert _loader_works(tmp_path, **env)
    code, report = _check(tmp_path, **env)
    _assert_healthy(code, report)
    assert "layer-old-api-version" in [f["code"] for f in _findings(report)]


def test_driver_with_a_missing_dependency(tmp_path: Path, fault_dir: Path) -> None:
    env, _ = _with_fault(tmp_path, fault_dir, "missing-dependency")
    assert _loader_works(tmp_path, **env)  # lavapipe still serves
    _, report = _check(tmp_path, **env)
    missing = next(f for f in _findings(report) if f["code"] == "driver-dependency-missing")
    assert faultlib.GONE_LIBRARY in missing["summary"]
    assert report["verdict"].startswith("Vulkan works")


def test_layer_forced_on_by_a_loader_settings_file(tmp_path: Path, fault_dir: Path) -> None:
    """vkconfig's vk_loader_settings.json forces a crashing explicit layer on (loaders from
    1.3.251; bookworm's 1.3.239 ignores the file, so it runs only in trixie and sid).
    VK_LOADER_LAYERS_DISABLE does not turn such a layer off: bisection runs without the file,
    names it, and moving it away is the fix; the real loader confirms both."""
    if not has(Behaviour.SETTINGS_FILE, _loader()):
        pytest.skip(f"loader {_dpkg_version('libvulkan1')} reads no vk_loader_settings.json")
    library = faultlib.build_layer(fault_dir, "create-instance-crash")
    name = faultlib.layer_name("create-instance-crash")
    manifest = faultlib.write_layer_manifest(
        tmp_path / "layers", name=name, library_path=str(library), implicit=False
    )
    settings = tmp_path / "home/.local/share/vulkan/loader_settings.d/vk_loader_settings.json"
    settings.parent.mkdir(parents=True)
    layers = [
        {"control": "on", "name": name, "path": str(manifest), "treat_as_implicit_manifest": False},
        {"control": "unordered_layer_location"},
    ]
    body = {"file_format_version": "1.0.0", "settings": {"layers": layers}}
    settings.write_text(json.dumps(body))
    assert not _loader_works(tmp_path)  # the release's own vulkaninfo crashes
    assert not _loader_works(tmp_path, VK_LOADER_LAYERS_DISABLE="~all~")  # no switch helps
    code, report = _check(tmp_path)
    first = _first_root(report)
    assert code == 1
    seen = [(f["code"], f["summary"]) for f in _findings(report) if f["severity"] != "info"]
    assert (first["code"], first["summary"]) == (
        "culprit-layer",
        f"layer {name}, forced on by the loader settings file {settings}, breaks instance "
        "creation; without the file it works",
    ), seen
    assert first["remedy"]["commands"][0] == (
        f"mv {settings} {settings}.disabled  # vkconfig wrote it; the loader reads only this name"
    )
    culprits = [f for f in _findings(report) if f["code"].startswith("culprit-")]
    assert culprits == [first]  # no driver blamed
    settings.rename(f"{settings}.disabled")  # the fix, applied
    assert _loader_works(tmp_path)
