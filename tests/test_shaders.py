"""The committed SPIR-V matches the GLSL sources, and ships as package data."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vkdoctor.kernels.suite import KERNELS, load_spirv

SHADERS = Path(__file__).resolve().parent.parent / "shaders"
BUILD = SHADERS / "build.py"
_spec = importlib.util.spec_from_file_location("shader_build", BUILD)
assert _spec and _spec.loader
build_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_script)
needs_glslang = pytest.mark.skipif(
    shutil.which("glslangValidator") is None, reason="glslangValidator not installed"
)


def _build(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BUILD), *args], capture_output=True, text=True, timeout=120
    )


@needs_glslang
def test_committed_spirv_matches_the_sources() -> None:
    proc = _build("--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_glslang
def test_check_catches_an_edited_source(tmp_path: Path) -> None:
    work = tmp_path / "shaders"
    shutil.copytree(SHADERS, work, ignore=shutil.ignore_patterns("__pycache__"))
    source = work / "copy.comp"
    source.write_text(source.read_text() + "\n// edited\n")
    proc = _build("--check", "--dir", str(work))
    assert proc.returncode == 1 and "copy.comp changed" in proc.stderr


@needs_glslang
def test_rebuild_is_reproducible(tmp_path: Path) -> None:
    work = tmp_path / "shaders"
    shutil.copytree(SHADERS, work, ignore=shutil.ignore_patterns("__pycache__"))
    tool = shutil.which("glslangValidator") or ""
    major = build_script.glslang_major(build_script.glslang_version(tool))
    newer = {p.stem for p in work.glob("*.comp") if build_script.min_glslang(p) > major}
    for spv in work.glob("*.spv"):
        if spv.stem not in newer:  # modules this compiler cannot build are kept, by hash
            spv.unlink()
    assert _build("--dir", str(work)).returncode == 0
    for spv in SHADERS.glob("*.spv"):
        assert (work / spv.name).read_bytes() == spv.read_bytes(), spv.name
    assert json.loads((work / "manifest.json").read_text()) == json.loads(
        (SHADERS / "manifest.json").read_text()
    )


def test_every_source_has_spirv_in_the_manifest() -> None:
    manifest = json.loads((SHADERS / "manifest.json").read_text())
    names = {p.stem for p in SHADERS.glob("*.comp")}
    assert names == set(manifest["shaders"]) == {p.stem for p in SHADERS.glob("*.spv")}
    assert {"smoke", "sgemm", "conv2d", "reduce_subgroup", "reduce_shared"} <= names
    assert manifest["shaders"]["reduce_subgroup"]["target_env"] == "vulkan1.1"
    assert manifest["shaders"]["smoke"]["target_env"] == "vulkan1.0"


def test_spirv_is_package_data() -> None:
    for path in SHADERS.glob("*.spv"):
        data = load_spirv(path.stem)
        assert data == path.read_bytes() and data[:4] == b"\x03\x02\x23\x07"
    assert len(KERNELS) == 10  # hgemm-coopmat joined the nine


@needs_glslang
def test_a_source_needing_a_newer_glslang_is_not_silently_kept_when_edited(tmp_path: Path) -> None:
    work = tmp_path / "shaders"
    shutil.copytree(SHADERS, work, ignore=shutil.ignore_patterns("__pycache__"))
    tool = shutil.which("glslangValidator") or ""
    major = build_script.glslang_major(build_script.glslang_version(tool))
    newer = [p for p in work.glob("*.comp") if build_script.min_glslang(p) > major]
    if not newer:
        pytest.skip("this glslangValidator builds every shader")
    newer[0].write_text(newer[0].read_text() + "\n// edited\n")
    proc = _build("--dir", str(work))
    assert proc.returncode == 2 and "pass --glslang-new" in proc.stderr
    proc = _build("--check", "--dir", str(work))
    assert proc.returncode == 1 and f"{newer[0].name} changed" in proc.stderr
