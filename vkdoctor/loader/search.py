"""What the Linux loader reads from the environment, and where it searches for manifests.

Encodes reference/loader-facts.md sections 1, 2, 3 and 6: the variables with the loader version
that introduced them, which ones ``secure_getenv`` drops under elevated privileges, the exact
manifest directory order, and the override/add precedence.  Pure functions over an ``Env``.
"""

from __future__ import annotations

import fnmatch
import re

from vkdoctor.engine.env import Env
from vkdoctor.loader.versions import variable_since
from vkdoctor.record import frozen
from vkdoctor.report.redact import record_value

Version = tuple[int, int, int]


@frozen
class LoaderVariable:
    name: str
    purpose: str
    # The first loader release that reads it (None: every release); looked up in
    # loader/versions.py, the one table of version-dependent behaviour.
    since: Version | None = None
    secure: bool = False  # read with secure_getenv: ignored under elevated privileges
    deprecated_by: str | None = None


KNOWN_VARIABLES: tuple[LoaderVariable, ...] = (
    LoaderVariable("VK_LOADER_DEBUG", "loader log filter"),
    LoaderVariable(
        "VK_DRIVER_FILES",
        "replaces the driver manifest search",
        variable_since("VK_DRIVER_FILES"),
        True,
    ),
    LoaderVariable(
        "VK_ICD_FILENAMES", "replaces the driver manifest search", None, True, "VK_DRIVER_FILES"
    ),
    LoaderVariable(
        "VK_ADD_DRIVER_FILES", "adds driver manifests", variable_since("VK_ADD_DRIVER_FILES"), True
    ),
    LoaderVariable("VK_LAYER_PATH", "replaces the explicit layer search", None, True),
    LoaderVariable(
        "VK_ADD_LAYER_PATH", "adds explicit layer paths", variable_since("VK_ADD_LAYER_PATH"), True
    ),
    LoaderVariable(
        "VK_IMPLICIT_LAYER_PATH",
        "replaces the implicit layer search",
        variable_since("VK_IMPLICIT_LAYER_PATH"),
        True,
    ),
    LoaderVariable(
        "VK_ADD_IMPLICIT_LAYER_PATH",
        "adds implicit layer paths",
        variable_since("VK_ADD_IMPLICIT_LAYER_PATH"),
        True,
    ),
    LoaderVariable("VK_INSTANCE_LAYERS", "enables layers (deprecated)", None, False),
    LoaderVariable(
        "VK_LOADER_LAYERS_ENABLE",
        "force-enables layers",
        variable_since("VK_LOADER_LAYERS_ENABLE"),
        True,
    ),
    LoaderVariable(
        "VK_LOADER_LAYERS_DISABLE",
        "force-disables layers",
        variable_since("VK_LOADER_LAYERS_DISABLE"),
        True,
    ),
    LoaderVariable(
        "VK_LOADER_LAYERS_ALLOW",
        "exempts layers from DISABLE",
        variable_since("VK_LOADER_LAYERS_ALLOW"),
        True,
    ),
    LoaderVariable(
        "VK_LOADER_DRIVERS_SELECT",
        "keeps only matching drivers",
        variable_since("VK_LOADER_DRIVERS_SELECT"),
        True,
    ),
    LoaderVariable(
        "VK_LOADER_DRIVERS_DISABLE",
        "removes matching drivers",
        variable_since("VK_LOADER_DRIVERS_DISABLE"),
        True,
    ),
    LoaderVariable("VK_LOADER_DEVICE_SELECT", "moves a device first"),
    LoaderVariable("VK_LOADER_DISABLE_SELECT", "disables the loader's device sort"),
    LoaderVariable("VK_LOADER_DISABLE_INST_EXT_FILTER", "stops instance extension filtering"),
    LoaderVariable(
        "VK_LOADER_DISABLE_DYNAMIC_LIBRARY_UNLOADING",
        "never dlclose libraries",
        variable_since("VK_LOADER_DISABLE_DYNAMIC_LIBRARY_UNLOADING"),
    ),
    LoaderVariable(
        "VK_LOADER_DEVICE_ID_FILTER",
        "filters devices by id",
        variable_since("VK_LOADER_DEVICE_ID_FILTER"),
        True,
    ),
    LoaderVariable(
        "VK_LOADER_VENDOR_ID_FILTER",
        "filters devices by vendor",
        variable_since("VK_LOADER_VENDOR_ID_FILTER"),
        True,
    ),
    LoaderVariable(
        "VK_LOADER_DRIVER_ID_FILTER",
        "filters drivers by id",
        variable_since("VK_LOADER_DRIVER_ID_FILTER"),
        True,
    ),
)
KNOWN_BY_NAME = {v.name: v for v in KNOWN_VARIABLES}

# The variables a report records: a strict allow-list, because a report is meant to be pasted
# into public tickets and the environment is where tokens and passwords live.  The loader's own
# variables, plus the ones that change what the loader, the dynamic linker and the common drivers
# do.  Unknown VK_* names are not recorded here; the variable-unknown finding names them.
RELATED_NAMES = frozenset(
    {
        "HOME",
        "XDG_CONFIG_HOME",
        "XDG_CONFIG_DIRS",
        "XDG_DATA_HOME",
        "XDG_DATA_DIRS",
        "XDG_SESSION_TYPE",
        "LD_LIBRARY_PATH",
        "LD_PRELOAD",
        "LD_BIND_NOW",
        "DISPLAY",
        "WAYLAND_DISPLAY",
        "NODEVICE_SELECT",
        "MESA_VK_DEVICE_SELECT",
        "MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE",
        "MESA_LOADER_DRIVER_OVERRIDE",
        "LIBGL_ALWAYS_SOFTWARE",
        "RADV_DEBUG",
        "RADV_PERFTEST",
        "ANV_DEBUG",
        "AMD_VULKAN_ICD",
        "DISABLE_LAYER_AMD_SWITCHABLE_GRAPHICS_1",
        "NVIDIA_VISIBLE_DEVICES",
        "NVIDIA_DRIVER_CAPABILITIES",
        "__NV_PRIME_RENDER_OFFLOAD",
        "__NV_PRIME_RENDER_OFFLOAD_PROVIDER",
        "__VK_LAYER_NV_optimus",
        "__GLX_VENDOR_LIBRARY_NAME",
        "DXVK_FILTER_DEVICE_NAME",
        "VKD3D_FILTER_DEVICE_NAME",
    }
)
RECORDED_NAMES = frozenset(KNOWN_BY_NAME) | RELATED_NAMES
# Prefixes of variables that belong to layers/tools, not to the loader (not typos).
_NOT_LOADER_PREFIXES = ("VK_LAYER_", "VK_KHRONOS_", "VK_APIDUMP_", "VK_ICD_")


def related_variables(env: Env) -> dict[str, str]:
    """The allow-listed variables that are set, with secret-looking values masked."""
    return {
        name: record_value(name, value)
        for name, value in sorted(env.environ.items())
        if name in RECORDED_NAMES
    }


def secure_get(env: Env, name: str) -> str | None:
    """The loader's secure_getenv: NULL under elevated privileges; an empty value counts as unset
    for the path variables (the loader checks ``value && *value``)."""
    if env.secure:
        return None
    return env.get_nonempty(name)


def parse_version(text: str) -> Version | None:
    match = re.match(r"^\s*(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def version_str(version: Version | None) -> str:
    return ".".join(map(str, version)) if version else "unknown"


def supported(variable: LoaderVariable, loader_version: Version | None) -> bool:
    return variable.since is None or loader_version is None or loader_version >= variable.since


def effective_get(env: Env, name: str, loader_version: Version | None) -> str | None:
    """The value the loader will actually use: secure-read, and only if this loader knows it."""
    variable = KNOWN_BY_NAME.get(name)
    if variable is not None and not supported(variable, loader_version):
        return None
    if variable is not None and variable.secure:
        return secure_get(env, name)
    return env.get_nonempty(name)


@frozen
class SearchEntry:
    path: str  # a directory (or, for overrides, possibly a file), as the machine sees it
    origin: str  # which rule put it here: XDG_CONFIG_HOME, /etc (SYSCONFDIR), VK_DRIVER_FILES...
    is_override: bool = False

    def to_dict(self) -> dict[str, object]:
        return {"path": self.path, "origin": self.origin, "override": self.is_override}


KIND_SUFFIX = {
    "driver": "vulkan/icd.d",
    "implicit-layer": "vulkan/implicit_layer.d",
    "explicit-layer": "vulkan/explicit_layer.d",
}
_REPLACE_VARS = {
    "driver": ("VK_DRIVER_FILES", "VK_ICD_FILENAMES"),
    "explicit-layer": ("VK_LAYER_PATH",),
    "implicit-layer": ("VK_IMPLICIT_LAYER_PATH",),
}
_ADD_VARS = {
    "driver": "VK_ADD_DRIVER_FILES",
    "explicit-layer": "VK_ADD_LAYER_PATH",
    "implicit-layer": "VK_ADD_IMPLICIT_LAYER_PATH",
}


def default_search(env: Env, kind: str, sysconfdir: str = "/etc") -> list[SearchEntry]:
    """The loader's built-in directory order (loader.c read_data_files_in_search_paths)."""
    suffix = KIND_SUFFIX[kind]
    home = secure_get(env, "HOME")
    entries: list[SearchEntry] = []

    def add(base: str, origin: str) -> None:
        entries.append(SearchEntry(f"{base.rstrip('/')}/{suffix}", origin))

    config_home = secure_get(env, "XDG_CONFIG_HOME")
    if config_home:
        add(config_home, "XDG_CONFIG_HOME")
    elif home:
        add(f"{home}/.config", "HOME/.config (XDG_CONFIG_HOME unset)")
    config_dirs = secure_get(env, "XDG_CONFIG_DIRS")
    for directory in (config_dirs or "/etc/xdg").split(":"):
        if directory:
            add(directory, "XDG_CONFIG_DIRS" if config_dirs else "/etc/xdg (XDG_CONFIG_DIRS unset)")
    add(sysconfdir, "SYSCONFDIR")
    if sysconfdir != "/etc":
        add("/etc", "EXTRASYSCONFDIR")
    data_home = secure_get(env, "XDG_DATA_HOME")
    if data_home:
        add(data_home, "XDG_DATA_HOME")
    elif home:
        add(f"{home}/.local/share", "HOME/.local/share (XDG_DATA_HOME unset)")
    data_dirs = secure_get(env, "XDG_DATA_DIRS")
    fallback = "/usr/local/share:/usr/share"
    for directory in (data_dirs or fallback).split(":"):
        if directory:
            add(directory, "XDG_DATA_DIRS" if data_dirs else f"{directory} (XDG_DATA_DIRS unset)")
    return entries


def search_entries(
    env: Env, kind: str, loader_version: Version | None, sysconfdir: str = "/etc"
) -> list[SearchEntry]:
    """Where the loader looks for manifests of ``kind``, overrides applied, in order."""
    for name in _REPLACE_VARS[kind]:
        value = effective_get(env, name, loader_version)
        if value:
            return [SearchEntry(p, name, True) for p in value.split(":") if p]
    entries: list[SearchEntry] = []
    add_value = effective_get(env, _ADD_VARS[kind], loader_version)
    if add_value:
        entries.extend(SearchEntry(p, _ADD_VARS[kind], True) for p in add_value.split(":") if p)
    entries.extend(default_search(env, kind, sysconfdir))
    return entries


def glob_match(pattern: str, name: str) -> bool:
    """The loader's filter globs: prefix*, *suffix, *sub*, or the whole string, case-insensitive."""
    return fnmatch.fnmatchcase(name.lower(), pattern.strip().lower())


def filter_list(value: str | None) -> list[str]:
    return [p.strip() for p in (value or "").split(",") if p.strip()]


def suggest(name: str, candidates: list[str]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(name, candidates, n=1, cutoff=0.75)
    return matches[0] if matches else None


def unknown_loader_variables(env: Env) -> list[tuple[str, str | None]]:
    """VK_* variables the loader does not read, with the nearest known name (typos like
    VK_ICD_FILES)."""
    known = list(KNOWN_BY_NAME)
    unknown = []
    for name in sorted(env.environ):
        if not name.startswith("VK_") or name in KNOWN_BY_NAME:
            continue
        nearest = suggest(name, known)
        if nearest or not name.startswith(_NOT_LOADER_PREFIXES):
            unknown.append((name, nearest))
    return unknown
