"""Caches that keep `vkdoctor check` fast must not defeat each other.

Two virtual environments with the same vulkan-object version installed at different times used
one registry cache file, keyed inside by vk.xml's mtime: each run of one rebuilt the table for
the other (~1 s a run, in the main process, on the critical path).  Here: two real copies of the
installed vulkan-object package, one touched later, each loading through its own import path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import vulkan_object

PACKAGE = Path(vulkan_object.__file__).parent

_LOAD = (
    "import sys; from pathlib import Path; from vkdoctor.loader import registry; "
    "t = registry.load_commands(Path(sys.argv[1])); print(t.origin, t.cache_path.name)"
)


def _site(tmp: Path, name: str, mtime: int) -> Path:
    site = tmp / name
    shutil.copytree(PACKAGE, site / PACKAGE.name)
    for info in PACKAGE.parent.glob("vulkan_object-*.dist-info"):
        shutil.copytree(info, site / info.name)
    os.utime(site / PACKAGE.name / "vk.xml", ns=(mtime, mtime))
    return site


def _load(site: Path, cache: Path) -> tuple[str, str]:
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run(
        [sys.executable, "-c", _LOAD, str(cache)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    return out[0], out[1]


def test_two_installs_of_one_version_do_not_thrash_the_registry_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _site(tmp_path, "venv-a", 1_700_000_000_000_000_000)
    second = _site(tmp_path, "venv-b", 1_700_000_100_000_000_000)
    assert _load(first, cache)[0] == "generated"
    assert _load(second, cache)[0] == "generated"
    # Used in turn, each finds its own table: nothing is rebuilt.
    origin_a, name_a = _load(first, cache)
    origin_b, name_b = _load(second, cache)
    assert (origin_a, origin_b) == ("cache", "cache")
    assert name_a != name_b
