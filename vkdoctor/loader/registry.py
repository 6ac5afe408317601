"""The Vulkan command registry behind the proc-address probes, and the spec's proc-address rules.

Where the table comes from
--------------------------
Every fact here (level, core version, providing extensions, aliases) is derived from the
``vulkan-object`` package, which parses the ``vk.xml`` it ships.  Nothing is hand-written except
the rule logic that the spec states in prose (the ``vkGet*ProcAddr`` behaviour tables).

Parsing vk.xml with ``vulkan_object.get_vulkan_object()`` takes well over a second, far too slow
for a ``vkdoctor check`` that must feel instant and that loads the table again in every probe
child.  So the table is derived once and cached as compact JSON in the user cache directory
(``$XDG_CACHE_HOME/vkdoctor`` or ``~/.cache/vkdoctor``); a warm load reads and decodes that file
in a few milliseconds.

Why a per-user cache and no table shipped as package data: a shipped table needs a build step
that imports vulkan-object at build time (it is not a build requirement, and editable installs
skip such steps), and it goes stale the moment pip upgrades vulkan-object independently of
vkdoctor, so it would need the very regeneration fallback the cache already is.  The cache pays
the parse once per user and vulkan-object version, and always describes the vk.xml actually
installed.

The cache key is the installed vulkan-object version, read from its ``.dist-info`` directory name
(``importlib.metadata`` alone costs ~40 ms to import and scan), plus the size and mtime of its
``vk.xml``, this module's ``TABLE_FORMAT`` and the vkdoctor version.  The vulkan-object version and a
short hash of the key are in the file name, so virtual environments share one cache directory
without thrashing; the full key is stored inside the file and compared on load.  A missing,
stale, truncated or otherwise corrupt file is regenerated; writes go to a temporary file in the
same directory and are renamed into place, so a concurrent reader sees either the old or the new
file, never half of one.  An unwritable cache directory (read-only home, no ``$HOME``, a
directory owned by another user when running under sudo) never fails a load: the table is
regenerated in memory and the reason is kept in ``CommandTable.cache_note``.

The rules
---------
``expected_global_commands``, ``gipa_null_verdict``, ``gipa_verdict`` and ``gdpa_verdict`` encode
the spec tables of ``vkGetInstanceProcAddr`` / ``vkGetDeviceProcAddr`` (Vulkan spec, "Command
Function Pointers") and what the loader is known to do beyond them (loader-facts.md section 11).
A ``Verdict`` says what a probe should expect for one name:

* ``NON_NULL`` -- the spec requires a pointer; NULL is a bug (FN-02, FN-03).
* ``NULL`` -- the spec requires NULL and no known loader deviates; a pointer is a spec violation
  worth a warning (a layer or driver leaking disabled functionality, FN-03, VulkanTools PR#1891).
* ``NULL_TOLERATED`` -- the spec requires NULL, but the loader or common drivers return a pointer
  by design; report as info at most.
* ``EITHER`` -- the spec allows both, or the registry cannot decide (an unknown name, a dependency
  on something the caller did not say).

Dependencies between extensions and versions (the ``depends`` expressions of vk.xml) are
evaluated in three-valued logic: anything the caller did not pass is *unknown*, and an unknown
result never turns into NON_NULL or NULL, only into EITHER.  That keeps the probe from reporting a
bug that is really a gap in what it knows.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import field
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from vkdoctor import __version__
from vkdoctor.loader import vkversion
from vkdoctor.record import frozen

# Bump when the derivation or the JSON layout changes, so that old caches are regenerated.
TABLE_FORMAT = 2

GIPA = "vkGetInstanceProcAddr"
GDPA = "vkGetDeviceProcAddr"

# vk.xml also has per-profile features (VK_BASE_VERSION_1_3, VK_GRAPHICS_VERSION_1_3, ...)
_VERSION_NAME = re.compile(r"^VK_(?:BASE_|COMPUTE_|GRAPHICS_)?VERSION_(\d+)_(\d+)$")
_TOKEN = re.compile(r"\s*(?:([A-Za-z0-9_:]+)|([(),+]))")

ApiVersion = tuple[int, int]


class RegistryError(RuntimeError):
    """The registry cannot be built at all (vulkan-object missing or broken)."""


class Level(str, Enum):
    """Which proc-address query can return the command, from its first parameter."""

    GLOBAL = "global"  # no dispatchable first parameter: vkCreateInstance, vkEnumerateInstance*
    INSTANCE = "instance"  # VkInstance or VkPhysicalDevice
    DEVICE = "device"  # VkDevice, VkQueue, VkCommandBuffer (or another device-child handle)


class ExtensionKind(str, Enum):
    INSTANCE = "instance"
    DEVICE = "device"


# vk.xml's platforms whose extensions a Linux build of a driver compiles in ("linux": none).
_LINUX_PLATFORMS = frozenset({"linux", "xlib", "xlib_xrandr", "xcb", "wayland", "directfb"})


class Expect(str, Enum):
    NON_NULL = "non-null"
    NULL = "null"
    NULL_TOLERATED = "null-tolerated"
    EITHER = "either"


@frozen(slots=True)
class Verdict:
    """What a proc-address query must return for one name, and why (kebab-case ``reason``).

    ``needs`` names what would make the command available (``VK_VERSION_1_3``, extension names), so
    that a probe can print "enable X" or "raise apiVersion to 1.3" without consulting the table.
    """

    expect: Expect
    reason: str
    needs: tuple[str, ...] = ()


@frozen(slots=True)
class Provider:
    """One extension that provides a command, with the extra condition of its ``<require>`` block.

    ``condition`` is a vk.xml ``depends`` expression (``+`` and, ``,`` or, parentheses) that must
    also hold, e.g. VK_KHR_swapchain provides vkAcquireNextImage2KHR only with ``VK_VERSION_1_1``.
    """

    extension: str
    kind: ExtensionKind
    condition: str | None = None


@frozen(slots=True)
class Extension:
    name: str
    kind: ExtensionKind
    depends: str | None  # vk.xml ``depends`` expression: what must be enabled with it
    promoted_to: str | None  # VK_VERSION_1_x or the extension that absorbed it
    platform: str | None  # e.g. "xlib", "win32"; None for platform-independent extensions
    provisional: bool
    commands: tuple[str, ...] = ()
    spec_version: int = 0  # the revision vk.xml describes; drivers may implement an older one


@frozen(slots=True)
class Command:
    name: str
    level: Level
    dispatch_type: str | None  # type of the dispatchable first parameter; None for globals
    version: ApiVersion | None  # core version that introduced it; None for extension commands
    providers: tuple[Provider, ...]  # extensions that provide it; empty for core commands
    alias: str | None  # the command this one is an alias of, e.g. KHR name -> core name
    protect: str | None  # preprocessor guard, e.g. VK_USE_PLATFORM_XLIB_KHR

    @property
    def physical_device(self) -> bool:
        """A physical-device-level command: instance level, first parameter VkPhysicalDevice."""
        return self.dispatch_type == "VkPhysicalDevice"

    @property
    def extensions(self) -> tuple[str, ...]:
        return tuple(p.extension for p in self.providers)

    @property
    def version_name(self) -> str | None:
        return None if self.version is None else _version_name(self.version)


@frozen
class CommandTable:
    """Every Vulkan command (api "vulkan", not vulkansc) of one vk.xml, with lookups and rules.

    ``origin`` is ``"cache"`` when read from the cache file and ``"generated"`` when derived from
    vulkan-object in this process; ``cache_note`` says why the cache was not used or not written.
    """

    version: str  # VK_HEADER_VERSION_COMPLETE of the vk.xml, e.g. "1.4.366"
    source_version: str  # the vulkan-object version it was derived from
    commands: Mapping[str, Command]
    extensions: Mapping[str, Extension]
    origin: str = "generated"
    cache_path: Path | None = None
    cache_note: str | None = None
    _aliases: Mapping[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        reverse: dict[str, list[str]] = {}
        for cmd in self.commands.values():
            if cmd.alias is not None:
                reverse.setdefault(cmd.alias, []).append(cmd.name)
        # frozen: the reverse index is derived once here, never assigned afterwards
        object.__setattr__(
            self, "_aliases", MappingProxyType({k: tuple(sorted(v)) for k, v in reverse.items()})
        )

    # ---- lookups -------------------------------------------------------------------------

    def __getitem__(self, name: str) -> Command:
        return self.commands[name]

    def __contains__(self, name: object) -> bool:
        return name in self.commands

    def __iter__(self) -> Iterator[Command]:
        return iter(self.commands.values())

    def __len__(self) -> int:
        return len(self.commands)

    def get(self, name: str) -> Command | None:
        return self.commands.get(name)

    def canonical(self, name: str) -> str:
        """The name a command aliases (vkTrimCommandPoolKHR -> vkTrimCommandPool), else itself."""
        cmd = self.commands.get(name)
        return cmd.alias if cmd is not None and cmd.alias is not None else name

    def aliases_of(self, name: str) -> tuple[str, ...]:
        """Names that alias ``name`` (vkTrimCommandPool -> ("vkTrimCommandPoolKHR",))."""
        return self._aliases.get(self.canonical(name), ())

    # ---- the rules ----------------------------------------------------------------------

    def expected_global_commands(self, loader_version: ApiVersion | None = None) -> list[Command]:
        """Commands ``vkGetInstanceProcAddr(NULL, name)`` must return non-NULL.

        The spec's four global commands plus vkGetInstanceProcAddr itself (allowed since 1.2).
        ``loader_version`` (from vkEnumerateInstanceVersion; None = a current loader) drops what an
        older loader cannot know: vkEnumerateInstanceVersion before 1.1 (a NULL there is how apps
        detect a 1.0 loader) and the self-query before 1.2.
        """
        return [
            cmd
            for cmd in self.commands.values()
            if self.gipa_null_verdict(cmd.name, loader_version).expect is Expect.NON_NULL
        ]

    def gipa_null_verdict(self, name: str, loader_version: ApiVersion | None = None) -> Verdict:
        """What ``vkGetInstanceProcAddr(NULL, name)`` must return.

        Everything but the globals and vkGetInstanceProcAddr must be NULL (unknown names too: the
        spec's "any other case").  The loader enforces this since PR#692 (2021), so a pointer for,
        say, vkCreateDevice comes from an old loader or a layer, and code relying on it crashes
        elsewhere (FN-03): a real violation, not tolerated.
        """
        cmd = self.commands.get(name)
        if name == GIPA:
            if loader_version is not None and _mm(loader_version) < (1, 2):
                return Verdict(Expect.EITHER, "gipa-self-query-before-1-2", ("VK_VERSION_1_2",))
            return Verdict(Expect.NON_NULL, "gipa-self-query")
        if cmd is not None and cmd.level is Level.GLOBAL:
            if (
                loader_version is not None
                and cmd.version is not None
                and cmd.version > _mm(loader_version)
            ):
                return Verdict(
                    Expect.EITHER, "global-above-loader-version", (_version_name(cmd.version),)
                )
            return Verdict(Expect.NON_NULL, "global-command")
        return Verdict(Expect.NULL, "not-global")

    def gipa_verdict(
        self,
        name: str,
        api_version: ApiVersion,
        enabled_instance_extensions: Iterable[str],
        available_device_extensions: Iterable[str] | None = None,
    ) -> Verdict:
        """What ``vkGetInstanceProcAddr(instance, name)`` must return for a valid instance.

        ``api_version``: the instance's version.  The spec table does not bound "core dispatchable
        command" by the app's apiVersion and the loader returns every core command it knows, so the
        strongest check passes the loader's version (vkEnumerateInstanceVersion, major.minor);
        passing the app's apiVersion gives a weaker but still correct check.
        ``available_device_extensions``: device extensions supported by any physical device (the
        spec's "available device extension"); None when unknown, making their commands EITHER.

        Treatment of spec-NULL cases:

        * global commands with an instance: spec NULL; loader 1.3.239 returns them while the app's
          apiVersion is below 1.3 and NULL from 1.3 on -> NULL_TOLERATED.
        * device-extension commands no device supports: spec NULL; the loader returns trampolines
          for every device extension it knows (Vulkan-Loader#306, by design) -> NULL_TOLERATED.
        * promoted aliases whose core command is available (vkGetPhysicalDeviceProperties2KHR at
          1.1 without the KHR extension): spec NULL, commonly returned -> NULL_TOLERATED.
        * commands of a not-enabled instance extension whose own dependencies are enabled: spec
          NULL; loader 1.3.239 gates some on the dependency instead (it returns the
          VK_KHR_get_surface_capabilities2 functions once VK_KHR_surface is enabled, wsi.c)
          -> NULL_TOLERATED.
        * other commands of a not-enabled instance extension: NULL (the loader checks enablement).
        * core commands above ``api_version``: EITHER (the loader may know newer versions).
        """
        if name == GIPA:
            return Verdict(Expect.NON_NULL, "gipa-self-query")
        cmd = self.commands.get(name)
        if cmd is None:
            return Verdict(Expect.EITHER, "unknown-command")
        api = _mm(api_version)
        if cmd.level is Level.GLOBAL:
            return Verdict(Expect.NULL_TOLERATED, "global-via-instance")
        if cmd.version is not None:
            if cmd.version <= api:
                return Verdict(Expect.NON_NULL, "core")
            return Verdict(Expect.EITHER, "core-above-version", (_version_name(cmd.version),))
        inst = frozenset(enabled_instance_extensions)
        dev = _opt_set(available_device_extensions)
        state = self._provided(cmd, api, inst, dev)
        if state is True:
            if self._off_platform(cmd):
                return Verdict(Expect.EITHER, "other-platform-or-provisional", cmd.extensions)
            return Verdict(Expect.NON_NULL, "extension-enabled")
        if state is None:
            return Verdict(Expect.EITHER, "depends-unknown", cmd.extensions)
        if cmd.alias is not None:
            target = self.gipa_verdict(cmd.alias, api, inst, dev)
            if target.expect is Expect.NON_NULL:
                return Verdict(Expect.NULL_TOLERATED, "alias-of-available-command", cmd.extensions)
        if all(p.kind is ExtensionKind.DEVICE for p in cmd.providers):
            return Verdict(Expect.NULL_TOLERATED, "loader-knows-device-extension", cmd.extensions)
        if self._dependency_enabled(cmd, api, inst, dev):
            return Verdict(Expect.NULL_TOLERATED, "loader-gates-on-dependency", cmd.extensions)
        return Verdict(Expect.NULL, "extension-not-enabled", cmd.extensions)

    def gdpa_verdict(
        self,
        name: str,
        api_version: ApiVersion,
        enabled_device_extensions: Iterable[str],
        enabled_instance_extensions: Iterable[str] | None = None,
        *,
        maintenance5: bool = False,
    ) -> Verdict:
        """What ``vkGetDeviceProcAddr(device, name)`` must return.

        ``api_version``: the device's effective version, min(VkApplicationInfo.apiVersion, the
        physical device's apiVersion), major.minor.  ``enabled_instance_extensions`` matters for
        device-level commands of instance extensions (VK_EXT_debug_utils labels); None = unknown.
        ``maintenance5``: the feature was enabled on the device.

        Treatment of spec-NULL cases (spec table + loader-facts section 11):

        * global, instance and physical-device commands: NULL, a real violation ("query it with
          vkGetInstanceProcAddr").  Loader 1.3.239 + lavapipe return NULL for all of them.
        * device-extension commands of a not-enabled extension: NULL, a real violation; layers must
          return NULL too (winevulkan relies on it, VulkanTools PR#1891).
        * core commands above ``api_version``: the spec allows either, unless maintenance5 is
          enabled, which makes NULL mandatory (loader PR#1268) -> EITHER / NULL.  Loader 1.3.239
          itself answers vkGetDeviceQueue2 at apiVersion 1.0 (it intercepts it).
        * promoted aliases whose core command is available (vkTrimCommandPoolKHR at 1.1 without
          VK_KHR_maintenance1, VVL#1252): spec NULL, commonly returned -> NULL_TOLERATED.
        * device-level commands of a not-enabled *instance* extension: spec NULL, but loader
          1.3.239 returns the VK_EXT_debug_utils label and object-name functions regardless
          (the dispatch-table passthrough, PR#1179 partly reverted) -> NULL_TOLERATED.
        """
        cmd = self.commands.get(name)
        if cmd is None:
            return Verdict(Expect.EITHER, "unknown-command")
        api = _mm(api_version)
        if cmd.level is Level.GLOBAL:
            return Verdict(Expect.NULL, "global-command")
        if cmd.level is Level.INSTANCE:
            reason = "physical-device-level" if cmd.physical_device else "instance-level"
            return Verdict(Expect.NULL, reason)
        if cmd.version is not None:
            if cmd.version <= api:
                return Verdict(Expect.NON_NULL, "core")
            needs = (_version_name(cmd.version),)
            if maintenance5:
                return Verdict(Expect.NULL, "core-above-version", needs)
            return Verdict(Expect.EITHER, "core-above-version", needs)
        dev = frozenset(enabled_device_extensions)
        inst = _opt_set(enabled_instance_extensions)
        state = self._provided(cmd, api, inst, dev)
        if state is True:
            if self._off_platform(cmd):
                return Verdict(Expect.EITHER, "other-platform-or-provisional", cmd.extensions)
            return Verdict(Expect.NON_NULL, "extension-enabled")
        if state is None:
            return Verdict(Expect.EITHER, "depends-unknown", cmd.extensions)
        if cmd.alias is not None:
            target = self.gdpa_verdict(cmd.alias, api, dev, inst, maintenance5=maintenance5)
            if target.expect is Expect.NON_NULL:
                return Verdict(Expect.NULL_TOLERATED, "alias-of-available-command", cmd.extensions)
        if any(p.kind is ExtensionKind.INSTANCE for p in cmd.providers):
            return Verdict(
                Expect.NULL_TOLERATED, "loader-instance-extension-passthrough", cmd.extensions
            )
        return Verdict(Expect.NULL, "extension-not-enabled", cmd.extensions)

    def instance_commands_for(
        self,
        api_version: ApiVersion,
        enabled_instance_extensions: Iterable[str],
        available_device_extensions: Iterable[str] | None = None,
    ) -> list[Command]:
        """Commands ``vkGetInstanceProcAddr(instance, name)`` must return non-NULL.

        Core commands of every level up to ``api_version`` (device-level ones included: the loader
        returns trampolines that dispatch on the handle), vkGetInstanceProcAddr, the commands of
        enabled instance extensions, and of available device extensions when those are given.
        """
        inst = frozenset(enabled_instance_extensions)
        dev = _opt_set(available_device_extensions)
        return [
            cmd
            for cmd in self.commands.values()
            if self.gipa_verdict(cmd.name, api_version, inst, dev).expect is Expect.NON_NULL
        ]

    def device_commands_for(
        self,
        api_version: ApiVersion,
        enabled_device_extensions: Iterable[str],
        enabled_instance_extensions: Iterable[str] | None = None,
    ) -> list[Command]:
        """Commands ``vkGetDeviceProcAddr(device, name)`` must return non-NULL.

        Device-level core commands up to ``api_version`` and the device-level commands of enabled
        extensions whose ``<require>`` conditions hold.  See ``gdpa_verdict`` for the arguments.
        """
        dev = frozenset(enabled_device_extensions)
        inst = _opt_set(enabled_instance_extensions)
        return [
            cmd
            for cmd in self.commands.values()
            if self.gdpa_verdict(cmd.name, api_version, dev, inst).expect is Expect.NON_NULL
        ]

    def _off_platform(self, cmd: Command) -> bool:
        """Every provider is a provisional extension or one of a platform other than Linux's.

        Their commands are compiled only into builds for that platform or with
        VK_ENABLE_BETA_EXTENSIONS, while drivers may list the extension anyway: Debian 13's and
        sid's lavapipe (Mesa 25.0, 26.2) advertise VK_AMDX_shader_enqueue and
        VK_ANDROID_external_memory_android_hardware_buffer and return NULL for their commands
        (tests/matrix), which is no fault a user on Linux can fix.
        """
        exts = [self.extensions.get(p.extension) for p in cmd.providers]
        return bool(exts) and all(
            e is not None and (e.provisional or (e.platform or "linux") not in _LINUX_PLATFORMS)
            for e in exts
        )

    def _provided(
        self,
        cmd: Command,
        api: ApiVersion,
        instance_exts: frozenset[str] | None,
        device_exts: frozenset[str] | None,
    ) -> bool | None:
        """Whether some provider of ``cmd`` is in effect: True, False or None (unknown).

        A provider is in effect when its extension is enabled (or, for GIPA, available), the
        condition of its ``<require>`` block holds, and the extension's own ``depends`` holds.
        An extension enabled without its dependencies breaks a valid-usage rule: what the
        implementation then returns is nobody's promise, so that case is unknown, not False.
        """
        leaf = self._leaf(api, instance_exts, device_exts)
        result: bool | None = False
        for provider in cmd.providers:
            state = leaf(provider.extension)
            if state is not False and provider.condition is not None:
                state = _and(state, evaluate_depends(provider.condition, leaf))
            if state is not False:
                depends = self.extensions[provider.extension].depends
                if depends is not None and evaluate_depends(depends, leaf) is not True:
                    state = None
            result = _or(result, state)
            if result is True:
                break
        return result

    def _dependency_enabled(
        self,
        cmd: Command,
        api: ApiVersion,
        instance_exts: frozenset[str] | None,
        device_exts: frozenset[str] | None,
    ) -> bool:
        """Whether an instance extension providing ``cmd`` has all its ``depends`` enabled."""
        leaf = self._leaf(api, instance_exts, device_exts)
        for provider in cmd.providers:
            depends = self.extensions[provider.extension].depends
            if (
                provider.kind is ExtensionKind.INSTANCE
                and depends is not None
                and evaluate_depends(depends, leaf) is True
            ):
                return True
        return False

    def _leaf(
        self,
        api: ApiVersion,
        instance_exts: frozenset[str] | None,
        device_exts: frozenset[str] | None,
    ) -> Callable[[str], bool | None]:
        def leaf(name: str) -> bool | None:
            version = _parse_version_name(name)
            if version is not None:
                return version <= api
            ext = self.extensions.get(name)
            if ext is None:
                return None  # a feature boolean or an extension this vk.xml lacks
            known = instance_exts if ext.kind is ExtensionKind.INSTANCE else device_exts
            return None if known is None else name in known

        return leaf


# ---- depends expressions ------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _parse_depends(expr: str) -> Any:
    """Parse a vk.xml ``depends`` expression into nested ("+"|",", lhs, rhs) tuples.

    ``+`` (and) and ``,`` (or) have equal precedence and associate left, as in vk.xml's own parser
    (vulkan_object.parse_dependency); parentheses group.
    """
    tokens: list[str] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            if expr[pos:].strip() == "":
                break
            raise ValueError(f"bad depends expression {expr!r} at {pos}")
        tokens.append(m.group(1) or m.group(2))
        pos = m.end()

    def atom(i: int) -> tuple[Any, int]:
        if i >= len(tokens):
            raise ValueError(f"truncated depends expression {expr!r}")
        if tokens[i] == "(":
            node, i = chain(i + 1)
            if i >= len(tokens) or tokens[i] != ")":
                raise ValueError(f"unbalanced depends expression {expr!r}")
            return node, i + 1
        if tokens[i] in "()+,":
            raise ValueError(f"unexpected {tokens[i]!r} in depends expression {expr!r}")
        return tokens[i], i + 1

    def chain(i: int) -> tuple[Any, int]:
        node, i = atom(i)
        while i < len(tokens) and tokens[i] in ("+", ","):
            rhs, j = atom(i + 1)
            node, i = (tokens[i], node, rhs), j
        return node, i

    node, end = chain(0)
    if end != len(tokens):
        raise ValueError(f"trailing tokens in depends expression {expr!r}")
    return node


def evaluate_depends(expr: str, leaf: Callable[[str], bool | None]) -> bool | None:
    """Evaluate a ``depends`` expression in Kleene logic; ``leaf(name)`` -> True/False/None.

    A result of None means "cannot tell from what is known", never "false".
    """

    def walk(node: Any) -> bool | None:
        if isinstance(node, str):
            return leaf(node)
        op, lhs, rhs = node
        return _and(walk(lhs), walk(rhs)) if op == "+" else _or(walk(lhs), walk(rhs))

    return walk(_parse_depends(expr))


def _and(a: bool | None, b: bool | None) -> bool | None:
    if a is False or b is False:
        return False
    if a is True and b is True:
        return True
    return None


def _or(a: bool | None, b: bool | None) -> bool | None:
    if a is True or b is True:
        return True
    if a is False and b is False:
        return False
    return None


def _opt_set(names: Iterable[str] | None) -> frozenset[str] | None:
    """None stays None: it means "not known", which is different from "none enabled"."""
    return None if names is None else frozenset(names)


def _mm(version: Iterable[int]) -> ApiVersion:
    major, minor = tuple(version)[:2]
    return (int(major), int(minor))


def api_version_from_packed(packed: int) -> ApiVersion:
    """(major, minor) of a VK_MAKE_API_VERSION value; 0 (an unset apiVersion) means 1.0."""
    if packed == 0:
        return (1, 0)
    return vkversion.decode(packed)[:2]


def _version_name(version: ApiVersion) -> str:
    return f"VK_VERSION_{version[0]}_{version[1]}"


@functools.lru_cache(maxsize=64)
def _parse_version_name(name: str | None) -> ApiVersion | None:
    m = _VERSION_NAME.match(name or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


# ---- derivation from vulkan-object ---------------------------------------------------------------


def _derive_payload(vk: Any, source_version: str) -> dict[str, Any]:
    """Reduce a ``vulkan_object.VulkanObject`` to the compact JSON payload (plain lists/strings)."""
    dispatchable = {name for name, handle in vk.handles.items() if handle.dispatchable}
    extensions: dict[str, list[Any]] = {}
    for ext in vk.extensions.values():
        kind = ExtensionKind.INSTANCE if ext.instance else ExtensionKind.DEVICE
        extensions[ext.name] = [
            kind.value,
            ext.depends,
            ext.promotedTo,
            ext.platform,
            bool(ext.provisional),
            int(ext.specVersionValue or 0),  # specVersion is the macro name
        ]
    commands: list[list[Any]] = []
    for cmd in sorted(vk.commands.values(), key=lambda c: c.name):
        first = cmd.params[0].type if cmd.params else None
        dispatch = first if first in dispatchable else None
        if dispatch is None:
            level = Level.GLOBAL
        elif cmd.device:
            level = Level.DEVICE
        else:
            level = Level.INSTANCE
        if cmd.extensions:
            version = None
        elif cmd.version is not None:
            version = cmd.version.name
        else:
            version = "VK_VERSION_1_0"  # vulkan_object leaves 1.0 as None
        providers = [[ext, cmd.definingRequirements.get(ext)] for ext in cmd.extensions]
        commands.append(
            [cmd.name, level.value, dispatch, version, providers, cmd.alias, cmd.protect]
        )
    return {
        "format": TABLE_FORMAT,
        "key": None,  # filled in by the caller that knows the cache key
        "source_version": source_version,
        "version": vk.headerVersionComplete,
        "extensions": extensions,
        "commands": commands,
    }


def _decode(
    payload: Mapping[str, Any],
) -> tuple[str, str, dict[str, Command], dict[str, Extension]]:
    """Build the value objects from a payload; a malformed part raises ValueError, KeyError...

    This is the warm path, so it avoids per-row Enum calls and regex matches (dict lookups
    instead): decoding dominates the load time.
    """
    if payload.get("format") != TABLE_FORMAT:
        raise ValueError(f"table format {payload.get('format')!r} is not {TABLE_FORMAT}")
    levels = {level.value: level for level in Level}
    kinds = {kind.value: kind for kind in ExtensionKind}
    versions: dict[str | None, ApiVersion | None] = {None: None}
    raw_exts = payload["extensions"]
    ext_kinds = {name: kinds[row[0]] for name, row in raw_exts.items()}
    providers_seen: dict[tuple[str, str | None], Provider] = {}
    commands: dict[str, Command] = {}
    ext_commands: dict[str, list[str]] = {}
    for name, level, dispatch, version, providers, alias, protect in payload["commands"]:
        if version not in versions:
            versions[version] = _parse_version_name(version)
            if versions[version] is None:
                raise ValueError(f"bad version {version!r} for {name}")
        provs = []
        for ext, cond in providers:
            key = (ext, cond)
            prov = providers_seen.get(key)
            if prov is None:
                prov = providers_seen[key] = Provider(ext, ext_kinds[ext], cond)
            provs.append(prov)
            ext_commands.setdefault(ext, []).append(name)
        parsed_version = versions[version]
        if parsed_version is None and not provs:
            raise ValueError(f"{name} has neither a core version nor an extension")
        commands[name] = Command(
            name, levels[level], dispatch, parsed_version, tuple(provs), alias, protect
        )
    extensions = {
        name: Extension(
            name,
            ext_kinds[name],
            row[1],
            row[2],
            row[3],
            bool(row[4]),
            tuple(ext_commands.get(name, ())),
            int(row[5]) if len(row) > 5 else 0,
        )
        for name, row in raw_exts.items()
    }
    for cmd in commands.values():
        if cmd.alias is not None and cmd.alias not in commands:
            raise ValueError(f"{cmd.name} aliases unknown {cmd.alias}")
    return str(payload["version"]), str(payload["source_version"]), commands, extensions


# ---- locating vulkan-object and the cache --------------------------------------------------------


@frozen(slots=True)
class _Source:
    version: str
    xml_size: int
    xml_mtime_ns: int

    @property
    def key(self) -> list[Any]:
        return [TABLE_FORMAT, __version__, self.version, self.xml_size, self.xml_mtime_ns]


def _locate_source() -> _Source:
    """Identify the installed vulkan-object without importing it (its imports alone are slow)."""
    import importlib.util

    spec = importlib.util.find_spec("vulkan_object")
    if spec is None or not spec.submodule_search_locations:
        raise RegistryError("vulkan-object is not installed (pip install vulkan-object)")
    pkg_dir = Path(next(iter(spec.submodule_search_locations)))
    try:
        st = (pkg_dir / "vk.xml").stat()
        size, mtime = st.st_size, st.st_mtime_ns
    except OSError:
        size, mtime = -1, -1  # unusual layout; the version alone keys the cache
    version = None
    with contextlib.suppress(OSError):
        for entry in os.listdir(pkg_dir.parent):
            # wheels install "vulkan_object-1.4.366.dist-info" next to the package
            if entry.startswith("vulkan_object-") and entry.endswith(".dist-info"):
                version = entry[len("vulkan_object-") : -len(".dist-info")]
                break
    if version is None:
        import importlib.metadata

        try:
            version = importlib.metadata.version("vulkan-object")
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
    return _Source(version, size, mtime)


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """``$XDG_CACHE_HOME/vkdoctor`` (absolute values only, per the XDG spec), else
    ``~/.cache/vkdoctor``; None when neither can be determined."""
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "vkdoctor"
    home = env.get("HOME")
    if not home and environ is None:
        try:
            home = str(Path.home())
        except (RuntimeError, KeyError):
            home = None
    if not home:
        return None
    return Path(home) / ".cache" / "vkdoctor"


def cache_file_name(source: _Source) -> str:
    """The version, and a short hash of the whole key: two environments with the same
    vulkan-object version installed at different times (another venv, a reinstall) differ in
    vk.xml's mtime, and with one file for both each run of one rebuilt the other's table
    (~1 s per run, measured with two venvs used in turn)."""
    import hashlib

    safe = re.sub(r"[^A-Za-z0-9._+-]", "_", source.version)
    digest = hashlib.sha256(repr(source.key).encode()).hexdigest()[:8]
    return f"commands-{safe}-{digest}-f{TABLE_FORMAT}.json"


def _read_cache(path: Path, source: _Source) -> CommandTable:
    with open(path, "rb") as f:
        payload = json.loads(f.read())
    if not isinstance(payload, dict) or payload.get("key") != source.key:
        raise ValueError("cache key does not match the installed vulkan-object")
    version, source_version, commands, extensions = _decode(payload)
    return CommandTable(
        version=version,
        source_version=source_version,
        commands=MappingProxyType(commands),
        extensions=MappingProxyType(extensions),
        origin="cache",
        cache_path=path,
    )


# The tables this process read, by cache file, its size and mtime, and the source's key: check's
# instance and device probes both need the table (6-13 ms a read and decode on a 2-core
# machine); a file rewritten since (another install's version, a corrupt one replaced) is read
# again.  Guarded by _LOADING, as every caller is.
_READ: dict[tuple[Path, int, int, tuple[Any, ...]], CommandTable] = {}


def _read_cache_once(path: Path, source: _Source) -> CommandTable:
    stat = path.stat()
    key = (path, stat.st_size, stat.st_mtime_ns, tuple(source.key))
    table = _READ.get(key)
    if table is None:
        table = _READ[key] = _read_cache(path, source)
    return table


def _write_cache(path: Path, payload: Mapping[str, Any]) -> None:
    """Atomically replace ``path`` (temp file beside it, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if hasattr(os, "geteuid") and path.parent.stat().st_uid != os.geteuid():
        # e.g. root under sudo with the invoking user's HOME: leave no root-owned files there
        raise PermissionError(f"{path.parent} belongs to another user")
    from vkdoctor.report.io import write_atomic

    write_atomic(path, json.dumps(payload, separators=(",", ":")))


def _generate(source: _Source) -> dict[str, Any]:
    try:
        import vulkan_object
    except ImportError as exc:  # pragma: no cover - the dependency is declared
        raise RegistryError(f"cannot import vulkan_object: {exc}") from exc
    vk = vulkan_object.get_vulkan_object()
    payload = _derive_payload(vk, source.version)
    payload["key"] = source.key
    return payload


# vulkan-object's parser keeps its state in module globals: two probe threads that built the
# table at once from a cold cache crashed it ("IndexError: pop from empty list"); one at a time
# also builds it once, not twice.
_LOADING = threading.Lock()


def load_commands(
    cache_dir: Path | None = None, *, environ: Mapping[str, str] | None = None
) -> CommandTable:
    """The command table: from the cache when it is valid, else derived and cached.

    ``cache_dir`` overrides the default (``default_cache_dir(environ)``).  Never fails because of
    the cache: a corrupt file is replaced, an unwritable directory leaves the table in memory.
    Raises ``RegistryError`` only when vulkan-object itself is unavailable.
    """
    with _LOADING:
        return _load_commands(cache_dir, environ)


def _load_commands(cache_dir: Path | None, environ: Mapping[str, str] | None) -> CommandTable:
    source = _locate_source()
    directory = cache_dir if cache_dir is not None else default_cache_dir(environ)
    path = None if directory is None else directory / cache_file_name(source)
    note: str | None = None
    if path is None:
        note = "no cache directory (neither XDG_CACHE_HOME nor HOME is set)"
    else:
        try:
            return _read_cache_once(path, source)
        except FileNotFoundError:
            note = "cache missing"
        except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            # JSONDecodeError/UnicodeDecodeError are ValueErrors; a wrong shape raises the others
            note = f"cache unusable ({type(exc).__name__}: {exc})"
    payload = _generate(source)
    if path is not None:
        try:
            _write_cache(path, payload)
            note = f"{note}; regenerated and cached"
        except OSError as exc:
            note = f"{note}; not cached ({type(exc).__name__}: {exc})"
            path = None
    version, source_version, commands, extensions = _decode(payload)
    return CommandTable(
        version=version,
        source_version=source_version,
        commands=MappingProxyType(commands),
        extensions=MappingProxyType(extensions),
        origin="generated",
        cache_path=path,
        cache_note=note,
    )


@functools.lru_cache(maxsize=1)
def default_table() -> CommandTable:
    """The table for this process, loaded once."""
    return load_commands()
