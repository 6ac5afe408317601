"""A check run from vkdoctor's source tree, which has no ``vkdoctor.probes`` (pyproject.toml maps
the top-level probes/ into the package only when it is installed).  Before, every probe was
"skipped, not run" and the verdict said "Vulkan works", exit 0: a check that checked nothing
passed.  Now the first probe fails with the cause and a fix that is run here for real.

The runs use ``python -S`` so that this virtual environment's editable-install finder (which maps
``vkdoctor.probes`` to probes/ wherever ``vkdoctor`` came from) cannot hide the fault, with
tests/codecollect's sitecustomize imported by hand (``-S`` skips it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# `python -m vkdoctor` with -S: sitecustomize (the code collector) by hand, then the package.
RUN_AS_MODULE = "import sitecustomize, runpy; runpy.run_module('vkdoctor', run_name='__main__')"

pytestmark = pytest.mark.slow  # three whole checks


def _copy(source: Path, target: Path) -> None:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.so"))


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path]:
    """A source checkout (vkdoctor/, probes/, pyproject.toml, as cloned) and an installed copy
    (vkdoctor/ with probes/ and shaders/ inside, as pip lays it out)."""
    checkout, site = tmp_path / "checkout", tmp_path / "site"
    for name in ("vkdoctor", "probes", "shaders"):
        _copy(ROOT / name, checkout / name)
    shutil.copy(ROOT / "pyproject.toml", checkout / "pyproject.toml")
    _copy(ROOT / "vkdoctor", site / "vkdoctor")
    _copy(ROOT / "probes", site / "vkdoctor" / "probes")
    _copy(ROOT / "shaders", site / "vkdoctor" / "shaders")
    return checkout, site


def _env(pythonpath: list[Path]) -> dict[str, str]:
    """The suite's PYTHONPATH (the code collector), then ``pythonpath``, then this environment's
    packages (rich, vulkan, numpy: ``-S`` leaves site-packages out)."""
    collector = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    deps = sysconfig.get_paths()["purelib"]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*collector, *map(str, pythonpath), deps])}


def _check(cwd: Path, pythonpath: list[Path], report: Path) -> tuple[int, dict]:
    argv = [sys.executable, "-S", "-c", RUN_AS_MODULE, "check", "--json", str(report)]
    proc = subprocess.run(
        argv, cwd=cwd, env=_env(pythonpath), capture_output=True, text=True, timeout=120
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(report.read_text())


def _rerun(command: str, cwd: Path, pythonpath: list[Path]) -> subprocess.CompletedProcess[str]:
    """The remedy's command, through the shell, in the environment the failing run had."""
    return subprocess.run(
        ["sh", "-c", command],
        cwd=cwd,
        env=_env(pythonpath),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_check_from_the_source_tree_fails_and_says_to_run_the_installed_one(
    trees: tuple[Path, Path], tmp_path: Path
) -> None:
    checkout, site = trees
    code, report = _check(checkout, [site], tmp_path / "r.json")
    python = sys.executable
    assert code == 1
    assert report["summary"]["status"] == "fail"
    assert report["verdict"] == (
        "vkdoctor could not check Vulkan: probe loader-discovery is not available: vkdoctor "
        f"runs from its source tree {checkout} (it is the current directory), where the probes "
        f"are not inside the package — fix: cd / && {python} -m vkdoctor check"
    )
    statuses = [(p["id"], p["status"], p.get("blocked_by")) for p in report["probes"]]
    assert statuses[0] == ("loader-discovery", "fail", None)
    assert [(status, by) for _, status, by in statuses[1:]] == [("skipped", "loader-discovery")] * 5
    (finding,) = report["probes"][0]["findings"]
    assert finding["code"] == "probe-unavailable"
    assert finding["remedy"]["commands"] == [
        f"cd / && {python} -m vkdoctor check",
        f"{python} -m pip install -e {checkout}",
    ]
    # The fix, run: from / the installed copy is imported, and the check passes.
    fixed = _rerun(finding["remedy"]["commands"][0], checkout, [site])
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "Vulkan works: loader" in fixed.stdout


def test_a_source_tree_on_pythonpath_is_named_and_the_fix_drops_pythonpath(
    trees: tuple[Path, Path], tmp_path: Path
) -> None:
    checkout, site = trees
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code, report = _check(elsewhere, [checkout, site], tmp_path / "r.json")
    assert code == 1
    (finding,) = report["probes"][0]["findings"]
    assert finding["summary"] == (
        f"probe loader-discovery is not available: vkdoctor runs from its source tree {checkout} "
        "(PYTHONPATH names it), where the probes are not inside the package"
    )
    first = finding["remedy"]["commands"][0]
    assert first == f"env -u PYTHONPATH {sys.executable} -m vkdoctor check"
    # Without PYTHONPATH this environment's own vkdoctor runs (the editable install): it passes.
    fixed = _rerun(first, elsewhere, [checkout, site])
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr


def test_a_symbolic_link_loop_on_pythonpath_still_gives_the_finding(
    trees: tuple[Path, Path], tmp_path: Path
) -> None:
    """Resolving PYTHONPATH's entries runs while the finding is built: a link loop there
    (Path.resolve raises RuntimeError on one) must not turn the finding into a traceback."""
    checkout, site = trees
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    code, report = _check(checkout, [loop, site], tmp_path / "r.json")
    assert code == 1
    assert report["probes"][0]["findings"][0]["code"] == "probe-unavailable"
