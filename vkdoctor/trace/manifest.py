"""The manifest of VK_LAYER_VKDOCTOR_trace, generated at run time next to nothing installed.

The layer library lives inside the Python package, whose location is only known at run time, so
the manifest is written into a temporary directory and the loader is pointed at it.  Nothing is
installed: the layer is active only in a traced program's environment (implicit there where
the loader allows it, see layer_environment).
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vkdoctor.loader.versions import Behaviour, since

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


IMPLICIT_SUBDIR = Path("vulkan") / "implicit_layer.d"


def write_layer_manifest(directory: Path, library: Path) -> Path:
    """Write the manifest into ``directory`` (atomically) and return its path.

    A copy goes to ``directory/vulkan/implicit_layer.d``: that is where the loader looks when
    ``directory`` is on XDG_CONFIG_DIRS, which layer_environment uses to make the layer
    implicit.  Which copy the loader reads depends only on the variables set."""
    target = directory / MANIFEST_NAME
    for where in (directory, directory / IMPLICIT_SUBDIR):
        where.mkdir(parents=True, exist_ok=True)
        tmp = where / (MANIFEST_NAME + ".tmp")
        tmp.write_text(json.dumps(layer_manifest(library), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, where / MANIFEST_NAME)
    return target


def _prepend(value: str, existing: str | None, sep: str = ":") -> str:
    return value if not existing else f"{value}{sep}{existing}"


def _append(value: str, existing: str | None, sep: str = ":") -> str:
    if not existing:
        return value
    if value in existing.split(sep):
        return existing
    return f"{existing}{sep}{value}"


# Loaders from 1.3.296 take extra implicit layer directories in VK_ADD_IMPLICIT_LAYER_PATH.
ADD_IMPLICIT_SINCE = since(Behaviour.VK_ADD_IMPLICIT_LAYER_PATH)
_LOADER_FILE = re.compile(r"libvulkan\.so\.(\d+)\.(\d+)\.(\d+)$")


def loader_version(environ: Mapping[str, str]) -> tuple[int, int, int] | None:
    """The version of the libvulkan.so.1 a program started with ``environ`` loads, from the
    real file name the soname resolves to (libvulkan.so.1.3.239); None when unknown."""
    try:
        import dataclasses

        from vkdoctor.engine.env import Env
        from vkdoctor.loader.libraries import search_bare

        env = dataclasses.replace(Env.current(), environ=dict(environ))
        found = search_bare(env, "libvulkan.so.1").path
    except Exception:  # a guess only decides which enable variable to use
        return None
    match = _LOADER_FILE.search(os.path.realpath(found)) if found else None
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def layer_environment(
    base: Mapping[str, str],
    manifest_dir: Path,
    version: tuple[int, int, int] | None = None,
) -> dict[str, str]:
    """The variables that make the loader find and enable the layer, merged with ``base``.

    With a known loader version the layer is implicit, enabled by its enable_environment:
    then the program sees it even when it enables no layers, and the loader prints nothing
    about it (VK_INSTANCE_LAYERS and VK_LOADER_LAYERS_ENABLE both make it warn through the
    program's debug messenger).  From 1.3.296 its directory is added with
    VK_ADD_IMPLICIT_LAYER_PATH; before, through XDG_CONFIG_DIRS (kept with its default, so
    only our directory is added).  Otherwise the layer is explicit: found through
    VK_ADD_LAYER_PATH, or VK_LAYER_PATH when set (the loader then ignores the ADD variable).
    VK_LOADER_LAYERS_DISABLE (1.3.234 and later) drops implicit layers and those named in
    VK_INSTANCE_LAYERS alike; only VK_LOADER_LAYERS_ENABLE wins over it (measured on 1.3.239),
    so that is the switch then; with an unknown version VK_INSTANCE_LAYERS, which every loader
    knows.
    """
    changes = {ENABLE_ENV: "1"}
    if version is not None and not base.get("VK_LOADER_LAYERS_DISABLE"):
        if version >= ADD_IMPLICIT_SINCE:
            changes["VK_ADD_IMPLICIT_LAYER_PATH"] = _prepend(
                str(manifest_dir / IMPLICIT_SUBDIR), base.get("VK_ADD_IMPLICIT_LAYER_PATH")
            )
        else:
            changes["XDG_CONFIG_DIRS"] = _prepend(
                str(manifest_dir), base.get("XDG_CONFIG_DIRS") or "/etc/xdg"
            )
        return changes
    if base.get("VK_LAYER_PATH"):
        changes["VK_LAYER_PATH"] = _prepend(str(manifest_dir), base.get("VK_LAYER_PATH"))
    else:
        changes["VK_ADD_LAYER_PATH"] = _prepend(str(manifest_dir), base.get("VK_ADD_LAYER_PATH"))
    if base.get("VK_LOADER_LAYERS_DISABLE"):
        changes["VK_LOADER_LAYERS_ENABLE"] = _append(
            LAYER_NAME, base.get("VK_LOADER_LAYERS_ENABLE"), sep=","
        )
    else:
        changes["VK_INSTANCE_LAYERS"] = _append(LAYER_NAME, base.get("VK_INSTANCE_LAYERS"))
    return changes


def audit_environment(base: Mapping[str, str], audit_library: Path) -> dict[str, str]:
    return {"LD_AUDIT": _prepend(str(audit_library), base.get("LD_AUDIT"))}
