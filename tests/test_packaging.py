"""The installed package holds every subpackage of the source tree (a wheel built from
pyproject.toml's explicit list would silently lack a new one), and ``pip install .`` and
``pip install -e .`` build it from a fresh copy of the tree without one warning about our
metadata (setuptools printed ~110 lines of them before the first line of vkdoctor)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parent.parent


def test_every_subpackage_is_listed_in_pyproject() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "vkdoctor").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    mapped = {f"vkdoctor.{name}" for name in ("probes", "shaders")}
    assert on_disk - listed == set()
    assert mapped <= listed and set(config["package-dir"]) == mapped


# Lines of pip's own (the machine's index configuration) and of setuptools about pip's build
# environment, not about our metadata.
_NOT_OURS = ("WARNING: Location 'file:", "byte-compiling is disabled")


def _warnings(output: str) -> list[str]:
    return [
        line
        for line in output.splitlines()
        if "warn" in line.lower() and not any(text in line for text in _NOT_OURS)
    ]


def _copy_tree(target: Path) -> Path:
    """The tracked source tree (no build/, no egg-info, no venv): what a fresh clone builds."""
    files = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in files:
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the tracked files cannot be listed")
    return _copy_tree(tmp_path_factory.mktemp("src"))


def test_wheel_builds_without_warnings_and_holds_the_man_page(source: Path, tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(tmp_path), "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert _warnings(done.stdout + done.stderr) == []
    (wheel,) = tmp_path.glob("vkdoctor-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "vkdoctor-0.1.0.data/data/share/man/man1/vkdoctor.1" in names
    assert "vkdoctor/native/libvkdoctor_audit.so" in names


def test_editable_install_has_no_warnings(source: Path, tmp_path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "-v", "-e", "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert _warnings(done.stdout + done.stderr) == []
    # setuptools' editable wheels leave data_files out: there the page is man/vkdoctor.1.
