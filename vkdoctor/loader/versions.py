"""What each Vulkan loader release does differently: the one table of version-dependent behaviour.

Every rule of vkdoctor that depends on the loader's version looks its answer up here (the search
variables in loader/search.py, the malformed-manifest consequence in loader/manifests.py and
loader/vkresult.py, the layer manifest of ``vkdoctor trace``), and so do the tests of the Debian
release matrix (tests/matrix/), which assert each release's verdict from the same table.

Each entry names the first loader tag whose sources have the behaviour, found by searching the
KhronosGroup/Vulkan-Loader tags (``git grep NAME vX -- loader/`` over every v1.2/v1.3/v1.4 tag)
and the commit that introduced it.  ``spans`` are half-open ranges [first, until): a behaviour
that was reverted and re-landed has two.
"""

from __future__ import annotations

import enum

from vkdoctor.record import frozen

Version = tuple[int, int, int]


class Behaviour(enum.Enum):
    # The loader's own variables, by the release that first reads them.
    VK_DRIVER_FILES = "VK_DRIVER_FILES"
    VK_ADD_DRIVER_FILES = "VK_ADD_DRIVER_FILES"
    VK_ADD_LAYER_PATH = "VK_ADD_LAYER_PATH"
    VK_LOADER_LAYERS_ENABLE = "VK_LOADER_LAYERS_ENABLE"
    VK_LOADER_LAYERS_DISABLE = "VK_LOADER_LAYERS_DISABLE"
    VK_LOADER_DRIVERS_SELECT = "VK_LOADER_DRIVERS_SELECT"
    VK_LOADER_DRIVERS_DISABLE = "VK_LOADER_DRIVERS_DISABLE"
    VK_LOADER_DISABLE_DYNAMIC_LIBRARY_UNLOADING = "VK_LOADER_DISABLE_DYNAMIC_LIBRARY_UNLOADING"
    VK_LOADER_LAYERS_ALLOW = "VK_LOADER_LAYERS_ALLOW"
    VK_IMPLICIT_LAYER_PATH = "VK_IMPLICIT_LAYER_PATH"
    VK_ADD_IMPLICIT_LAYER_PATH = "VK_ADD_IMPLICIT_LAYER_PATH"
    VK_LOADER_DEVICE_ID_FILTER = "VK_LOADER_DEVICE_ID_FILTER"
    VK_LOADER_VENDOR_ID_FILTER = "VK_LOADER_VENDOR_ID_FILTER"
    VK_LOADER_DRIVER_ID_FILTER = "VK_LOADER_DRIVER_ID_FILTER"
    # Behaviour that is not a variable.
    DRIVER_INTERFACE_5_POLICY = "a Vulkan 1.1+ driver below loader interface 5 is warned about"
    SETTINGS_FILE = "vk_loader_settings.json"
    MALFORMED_MANIFEST_SKIPPED = "a manifest that is not JSON is skipped"
    ZERO_DEVICE_DRIVERS_UNLOADED = "drivers with no physical device are unloaded"


@frozen
class Entry:
    behaviour: Behaviour
    spans: tuple[tuple[Version, Version | None], ...]
    evidence: str  # the Vulkan-Loader commit (or tag) the span comes from
    before: str = ""  # what a loader outside every span does instead, where that matters


TABLE: tuple[Entry, ...] = (
    Entry(
        Behaviour.DRIVER_INTERFACE_5_POLICY,
        (((1, 2, 203), None),),
        "the Policy #LDP_DRIVER_7 warning in loader_scanned_icd_add (first in v1.2.203)",
    ),
    Entry(Behaviour.VK_DRIVER_FILES, (((1, 3, 207), None),), "97bd8ea Add additive env vars"),
    Entry(Behaviour.VK_ADD_DRIVER_FILES, (((1, 3, 207), None),), "97bd8ea"),
    Entry(Behaviour.VK_ADD_LAYER_PATH, (((1, 3, 207), None),), "97bd8ea"),
    Entry(Behaviour.VK_LOADER_LAYERS_ENABLE, (((1, 3, 234), None),), "c2a9793 enable/disable"),
    Entry(Behaviour.VK_LOADER_LAYERS_DISABLE, (((1, 3, 234), None),), "c2a9793"),
    Entry(Behaviour.VK_LOADER_DRIVERS_SELECT, (((1, 3, 234), None),), "c2a9793"),
    Entry(Behaviour.VK_LOADER_DRIVERS_DISABLE, (((1, 3, 234), None),), "c2a9793"),
    Entry(Behaviour.SETTINGS_FILE, (((1, 3, 251), None),), "64d6d36 Add loader settings file"),
    Entry(
        Behaviour.VK_LOADER_DISABLE_DYNAMIC_LIBRARY_UNLOADING,
        (((1, 3, 260), None),),
        "b8ca0f2 Make disabling dynamic library unloading a runtime option",
    ),
    Entry(Behaviour.VK_LOADER_LAYERS_ALLOW, (((1, 3, 262), None),), "4ebc282"),
    Entry(
        Behaviour.MALFORMED_MANIFEST_SKIPPED,
        (((1, 3, 268), None),),
        "ebde1f9 Distinguish OOM from json parsing errors",
        before="vkCreateInstance fails with VK_ERROR_OUT_OF_HOST_MEMORY for every program",
    ),
    Entry(
        Behaviour.ZERO_DEVICE_DRIVERS_UNLOADED,
        # Landed in 1.3.273 (a8710bb), reverted in 1.3.274 (a79e2d6), back from 1.3.284.
        (((1, 3, 273), (1, 3, 274)), ((1, 3, 284), None)),
        "a8710bb Unload drivers which report 0 physical devices",
    ),
    Entry(Behaviour.VK_IMPLICIT_LAYER_PATH, (((1, 3, 296), None),), "98d3cf4"),
    Entry(Behaviour.VK_ADD_IMPLICIT_LAYER_PATH, (((1, 3, 296), None),), "98d3cf4"),
    Entry(Behaviour.VK_LOADER_DEVICE_ID_FILTER, (((1, 4, 326), None),), "42efdea"),
    Entry(Behaviour.VK_LOADER_VENDOR_ID_FILTER, (((1, 4, 326), None),), "42efdea"),
    Entry(Behaviour.VK_LOADER_DRIVER_ID_FILTER, (((1, 4, 326), None),), "42efdea"),
)
_BY_BEHAVIOUR = {entry.behaviour: entry for entry in TABLE}


def entry(behaviour: Behaviour) -> Entry:
    return _BY_BEHAVIOUR[behaviour]


def has(behaviour: Behaviour, loader: Version | None) -> bool:
    """Whether a loader of this version behaves so; an unknown version counts as a current one
    (the newest behaviour), the assumption every check made before versions were looked up."""
    spans = _BY_BEHAVIOUR[behaviour].spans
    if loader is None:
        return spans[-1][1] is None
    return any(first <= loader and (until is None or loader < until) for first, until in spans)


def since(behaviour: Behaviour) -> Version:
    """The first release with the behaviour (for messages: "loaders before X")."""
    return _BY_BEHAVIOUR[behaviour].spans[0][0]


def variable_since(name: str) -> Version | None:
    """The first release that reads the loader variable ``name``; None for one every release
    reads (VK_ICD_FILENAMES, VK_LAYER_PATH, VK_INSTANCE_LAYERS, VK_LOADER_DEBUG...)."""
    try:
        behaviour = Behaviour(name)
    except ValueError:
        return None
    return since(behaviour)


def reads_variable(name: str, loader: Version | None) -> bool:
    try:
        behaviour = Behaviour(name)
    except ValueError:
        return True
    return has(behaviour, loader)
