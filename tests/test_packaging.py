"""The installed package holds every subpackage of the source tree (a wheel built from
pyproject.toml's explicit list would silently lack a new one)."""

from __future__ import annotations

from pathlib import Path

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
