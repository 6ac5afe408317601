"""The manifest of VK_LAYER_VKDOCTOR_trace, generated at run time next to nothing installed.

The layer library lives inside the Python package, whose location is only known at run time, so
the manifest is written into a temporary directory and the loader is pointed at it.  It is an
explicit layer: enabling it is the tracer's decision, never a side effect of installing vkdoctor.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

LAYER_NAME = "VK_LAYER_VKDOCTOR_trace"
MANIFEST_NAME = "VkLayer_vkdoctor_trace.json"
# The loader honours these two only for implicit layers; the library itself also treats
# VKDOCTOR_TRACE_DISABLE as "stay in the chain, record nothing", so both work either way.
ENABLE_ENV = "VKDOCTOR_TRACE_ENABLE"
DISABLE_ENV = "VKDOCTOR_TRACE_DISABLE"
TRACE_FILE_ENV = "VKDOCTOR_TRACE_FILE"
MAX_BYTES_ENV = "VKDOCTOR_TRACE_MAX_BYTES"


def layer_manifest(library: Path) -> dict[str, Any]:
    return {
        # 1.2.1 for library_arch: a 32-bit program's loader skips the 64-bit layer quietly
        # instead of failing to dlopen it (loaders before 1.3.219 ignore the field).
        "file_format_version": "1.2.1",
        "layer": {
            "name": LAYER_NAME,
            "type": "GLOBAL",
            "library_path": str(library),
            "library_arch": str(struct.calcsize("P") * 8),
            # Above any version an application asks for, so no loader warns about it.
            "api_version": "1.4.0",
            "implementation_version": "1",
            # Short: vulkaninfo sizes its layer table by the longest description.
            "description": "vkdoctor trace",
            "functions": {
                "vkNegotiateLoaderLayerInterfaceVersion": "vkNegotiateLoaderLayerInterfaceVersion"
            },
            "enable_environment": {ENABLE_ENV: "1"},
            "disable_environment": {DISABLE_ENV: "1"},
        },
    }


def write_layer_manifest(directory: Path, library: Path) -> Path:
    """Write the manifest into ``directory`` (atomically) and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / MANIFEST_NAME
    tmp = directory / (MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(layer_manifest(library), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target


def _prepend(value: str, existing: str | None, sep: str = ":") -> str:
    return value if not existing else f"{value}{sep}{existing}"


def _append(value: str, existing: str | None, sep: str = ":") -> str:
    if not existing:
        return value
    if value in existing.split(sep):
        return existing
    return f"{existing}{sep}{value}"


def layer_environment(base: Mapping[str, str], manifest_dir: Path) -> dict[str, str]:
    """The variables that make the loader find and enable the layer, merged with ``base``.

    VK_ADD_LAYER_PATH keeps the default search dirs (so the program's own explicit layers are
    still found); when VK_LAYER_PATH is set the loader ignores the ADD variable, so we prepend
    to VK_LAYER_PATH instead.  VK_INSTANCE_LAYERS works on every loader version, and wins over
    VK_LOADER_LAYERS_DISABLE.
    """
    changes = {ENABLE_ENV: "1"}
    if base.get("VK_LAYER_PATH"):
        changes["VK_LAYER_PATH"] = _prepend(str(manifest_dir), base.get("VK_LAYER_PATH"))
    else:
        changes["VK_ADD_LAYER_PATH"] = _prepend(str(manifest_dir), base.get("VK_ADD_LAYER_PATH"))
    changes["VK_INSTANCE_LAYERS"] = _append(LAYER_NAME, base.get("VK_INSTANCE_LAYERS"))
    return changes


def audit_environment(base: Mapping[str, str], audit_library: Path) -> dict[str, str]:
    return {"LD_AUDIT": _prepend(str(audit_library), base.get("LD_AUDIT"))}
