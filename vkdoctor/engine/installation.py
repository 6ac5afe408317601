"""Why a probe module cannot be imported, in words a user can act on.

The probes live in the source tree's top-level ``probes/`` and become ``vkdoctor.probes`` only when
the package is installed (pyproject.toml's package-dir).  So ``python3 -m vkdoctor`` run from a
source checkout, or with the checkout on PYTHONPATH, imports the checkout's ``vkdoctor/`` in place
of the installed package and finds no probe at all: the commonest way to get here, and one a
generic "reinstall" would not fix.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import shlex
import sys
from pathlib import Path

import vkdoctor
from vkdoctor.record import frozen


@frozen
class Unavailable:
    """What to say of a probe whose module is missing."""

    summary: str
    detail: str
    remedy: str
    commands: tuple[str, ...]


def source_tree(package_dirs: list[str]) -> Path | None:
    """The checkout whose bare ``vkdoctor/`` is imported, if one is: a directory holding
    ``pyproject.toml`` and ``probes/`` beside the package."""
    for package in package_dirs:
        resolved = _resolved(package)
        root = resolved.parent if resolved is not None else None
        if root is not None and (root / "pyproject.toml").is_file() and (root / "probes").is_dir():
            return root
    return None


def _resolved(entry: str) -> Path | None:
    """``entry`` resolved, or None where it cannot be (a symbolic-link loop on sys.path):
    this runs while a finding is being built, which must not end in a traceback."""
    try:
        return Path(entry).resolve()
    except (OSError, RuntimeError):
        return None


def unavailable(probe_id: str, error: ImportError) -> Unavailable:
    """The finding's words for ``probe_id``, whose import raised ``error``."""
    tree = source_tree(list(vkdoctor.__path__))
    if tree is None:
        return Unavailable(
            f"probe {probe_id} is not available: {error}",
            "The probe's module could not be imported: this installation of vkdoctor lacks it.",
            "Reinstall vkdoctor the way it was installed.",
            (),
        )
    python = shlex.quote(sys.executable)
    on_pythonpath = any(
        _resolved(entry) == tree
        for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep)
        if entry
    )
    if on_pythonpath:
        way, rerun = "PYTHONPATH names it", f"env -u PYTHONPATH {python} -m vkdoctor check"
    else:
        way, rerun = "it is the current directory", f"cd / && {python} -m vkdoctor check"
    commands = [rerun] if _installed_elsewhere(tree) else []
    if importlib.util.find_spec("pip") is not None:
        commands.append(f"{python} -m pip install -e {shlex.quote(str(tree))}")
    return Unavailable(
        f"probe {probe_id} is not available: vkdoctor runs from its source tree {tree} "
        f"({way}), where the probes are not inside the package",
        "Python imported the checkout's vkdoctor/ rather than an installed vkdoctor. The "
        "probes are packaged from the checkout's probes/ directory only when it is installed, "
        f"so this run could check nothing ({error}).",
        "Run the installed vkdoctor from elsewhere, or install the checkout itself (editable).",
        tuple(commands),
    )


def _installed_elsewhere(tree: Path) -> bool:
    """Whether a vkdoctor with its probes is importable from sys.path without the checkout."""
    others = [p for p in sys.path if p and _resolved(p) not in (tree, None)]
    spec = importlib.machinery.PathFinder.find_spec("vkdoctor", others)
    locations = spec.submodule_search_locations if spec else None
    return any((Path(location) / "probes").is_dir() for location in locations or ())
