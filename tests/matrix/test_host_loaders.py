"""Real loaders of other Debian releases, taken from the matrix chroots, on this host: a loader
built for a newer glibc on LD_LIBRARY_PATH, and an older loader chosen with --loader.
Skipped where the chroots are not cached (python3 tests/matrix/build.py builds them)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vkdoctor.loader.search import parse_version

CACHE = Path(os.environ.get("VKDOCTOR_MATRIX_CACHE", "/var/cache/vkdoctor-matrix"))
LIB = "usr/lib/x86_64-linux-gnu/libvulkan.so.1"


def _loader_from(release: str, tmp_path: Path) -> Path:
    source = CACHE / release / LIB
    if not source.exists():
        pytest.skip(f"no cached {release} chroot ({CACHE}); python3 tests/matrix/build.py")
    target = tmp_path / release / "libvulkan.so.1"
    target.parent.mkdir(parents=True)
    shutil.copyfile(source, target)
    return target


def _check(tmp_path: Path, *args: str, **env: str) -> tuple[int, dict]:
    out = tmp_path / "report.json"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VK_")}
    environ.pop("LD_LIBRARY_PATH", None)
    environ.update(env)
    done = subprocess.run(
        [sys.executable, "-m", "vkdoctor", "check", "--json", str(out), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(out.read_text())


def _findings(report: dict) -> list[dict]:
    return [f for p in report["probes"] for f in p["findings"]]


def test_loader_for_a_newer_glibc_on_ld_library_path(tmp_path: Path) -> None:
    loader = _loader_from("sid", tmp_path)
    # The dynamic linker's own answer, not vkdoctor's.
    probe = subprocess.run(
        [sys.executable, "-c", f"import ctypes; ctypes.CDLL({str(loader)!r})"],
        capture_output=True,
        text=True,
    )
    if probe.returncode == 0:
        pytest.skip("this system's glibc is new enough for sid's loader")
    assert "GLIBC_" in probe.stderr and "not found" in probe.stderr
    code, report = _check(tmp_path, LD_LIBRARY_PATH=f"{loader.parent}:/opt/elsewhere")
    assert code == 1
    root = next(f for f in _findings(report) if f["id"] == report["root_causes"][0])
    assert root["code"] == "loader-needs-newer-libc"
    assert root["remedy"]["commands"][0] == "export LD_LIBRARY_PATH=/opt/elsewhere"
    assert str(loader) in report["verdict"] and "needs glibc 2." in report["verdict"]
    assert not any("reinstall" in c for f in _findings(report) for c in f["remedy"]["commands"])


def test_loader_given_with_loader_option_is_not_called_shadowing(tmp_path: Path) -> None:
    loader = _loader_from("bullseye", tmp_path)
    code, report = _check(tmp_path, "--loader", str(loader))
    assert code == 0
    assert parse_version(report["loader"]["version"]) == (1, 2, 162)
    assert "loader-shadowed" not in [f["code"] for f in _findings(report)]
    assert report["verdict"].startswith("Vulkan works: loader 1.2.162")
    # Without --loader, the same file ahead on LD_LIBRARY_PATH is what applications get: shadowing.
    _, shadowed = _check(tmp_path, LD_LIBRARY_PATH=str(loader.parent))
    assert "loader-shadowed" in [f["code"] for f in _findings(shadowed)]
