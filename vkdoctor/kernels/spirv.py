"""The committed SPIR-V modules, read from package data (or a source checkout)."""

from __future__ import annotations

import functools
import importlib
from pathlib import Path

from vkdoctor.vulkan.compute import ShaderNotFound

SHADER_PACKAGE = "vkdoctor.shaders"


@functools.cache
def load_spirv(name: str) -> bytes:
    """The committed SPIR-V module ``name`` (``smoke``, ``sgemm``...).

    Installed, it is package data of ``vkdoctor.shaders``; run from a plain source checkout
    (``PYTHONPATH=.``, as on a freshly provisioned GPU machine) it is read from ``shaders/``.
    """
    try:
        # The package's directory, not importlib.resources: its import is ~10 ms of the smoke
        # dispatch's child, on the path of every check; vkdoctor is never installed zipped.
        directory = next(iter(importlib.import_module(SHADER_PACKAGE).__path__))
        return (Path(directory) / f"{name}.spv").read_bytes()
    except (OSError, ModuleNotFoundError) as exc:
        checkout = Path(__file__).resolve().parents[2] / "shaders" / f"{name}.spv"
        try:
            return checkout.read_bytes()
        except OSError:
            raise ShaderNotFound(
                f"SPIR-V module {name}.spv not found in {SHADER_PACKAGE} ({exc}) or {checkout}"
            ) from exc
