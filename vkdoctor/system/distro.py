"""Which Linux distribution this is, and the exact command that installs a Vulkan component on it.

vkdoctor tells users what to type, so every remedy that says "install X" asks this module for the
command in the user's own package manager.  The distribution comes from os-release(5); the family is
picked from ``ID`` first and then from each ``ID_LIKE`` entry, so derivatives (Mint, Pop!_OS,
Rocky, Manjaro, Tumbleweed, postmarketOS, ...) inherit their parent's packages.  An unknown
distribution gets a sentence naming the Debian package instead of a guessed command.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from typing import Any

from vkdoctor.engine.env import Env
from vkdoctor.record import frozen

# os-release(5): /etc/os-release wins, /usr/lib/os-release is the vendor fallback.
OS_RELEASE_PATHS: tuple[str, ...] = ("/etc/os-release", "/usr/lib/os-release")

# os-release files are a few hundred bytes; the cap only protects against a device or a huge file
# planted at that path.
_MAX_OS_RELEASE_BYTES = 64 * 1024

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Inside double quotes the shell (and os-release(5)) treats a backslash as an escape only before
# these characters; elsewhere it stays literal.
_DQ_ESCAPABLE = frozenset('"\\$`')

COMPONENTS: tuple[str, ...] = (
    "loader",
    "loader-32bit",
    "mesa-vulkan",
    "mesa-vulkan-32bit",
    "vulkan-tools",
    "validation-layers",
    "shader-compiler",
)

# What each component is, in words, for the unknown-distribution sentence.
_DESCRIPTIONS: dict[str, str] = {
    "loader": "the Vulkan loader",
    "loader-32bit": "the 32-bit Vulkan loader",
    "mesa-vulkan": "Mesa's Vulkan drivers",
    "mesa-vulkan-32bit": "Mesa's 32-bit Vulkan drivers",
    "vulkan-tools": "the Vulkan tools (vulkaninfo, vkcube)",
    "validation-layers": "the Khronos validation layers",
    "shader-compiler": "the GLSL to SPIR-V compiler (glslangValidator)",
}

# ID / ID_LIKE values that name a family.  Derivatives need no entry when their ID_LIKE names one.
_FAMILY_OF_ID: dict[str, str] = {
    "debian": "debian",
    "ubuntu": "debian",
    "fedora": "fedora",
    "rhel": "fedora",
    "centos": "fedora",
    "arch": "arch",
    "opensuse": "suse",
    "suse": "suse",
    "sles": "suse",
    "opensuse-leap": "suse",
    "opensuse-tumbleweed": "suse",
    "alpine": "alpine",
}

FAMILIES: tuple[str, ...] = ("debian", "fedora", "arch", "suse", "alpine")

# Real package names per family.  A family missing from a component has no such package (Alpine
# has no multilib); the 32-bit entries are the x86_64 multilib names.
_PACKAGES: dict[str, dict[str, tuple[str, ...]]] = {
    "loader": {
        "debian": ("libvulkan1",),
        "fedora": ("vulkan-loader",),
        "arch": ("vulkan-icd-loader",),
        "suse": ("libvulkan1",),
        "alpine": ("vulkan-loader",),
    },
    "loader-32bit": {
        "debian": ("libvulkan1:i386",),
        "fedora": ("vulkan-loader.i686",),
        "arch": ("lib32-vulkan-icd-loader",),
        "suse": ("libvulkan1-32bit",),
    },
    "mesa-vulkan": {
        "debian": ("mesa-vulkan-drivers",),
        "fedora": ("mesa-vulkan-drivers",),
        "arch": ("vulkan-radeon", "vulkan-intel", "vulkan-swrast"),
        "suse": ("libvulkan_radeon", "libvulkan_intel", "libvulkan_lvp"),
        "alpine": ("mesa-vulkan-ati", "mesa-vulkan-intel", "mesa-vulkan-swrast"),
    },
    "mesa-vulkan-32bit": {
        "debian": ("mesa-vulkan-drivers:i386",),
        "fedora": ("mesa-vulkan-drivers.i686",),
        "arch": ("lib32-vulkan-radeon", "lib32-vulkan-intel", "lib32-vulkan-swrast"),
        "suse": ("libvulkan_radeon-32bit", "libvulkan_intel-32bit"),
    },
    "vulkan-tools": {
        "debian": ("vulkan-tools",),
        "fedora": ("vulkan-tools",),
        "arch": ("vulkan-tools",),
        "suse": ("vulkan-tools",),
        "alpine": ("vulkan-tools",),
    },
    "validation-layers": {
        "debian": ("vulkan-validationlayers",),
        "fedora": ("vulkan-validation-layers",),
        "arch": ("vulkan-validation-layers",),
        "suse": ("vulkan-validationlayers",),
        "alpine": ("vulkan-validation-layers",),
    },
    "shader-compiler": {
        "debian": ("glslang-tools",),
        "fedora": ("glslang",),
        "arch": ("glslang",),
        # openSUSE ships glslangValidator in the -devel package.
        "suse": ("glslang-devel",),
        "alpine": ("glslang",),
    },
}

_INSTALL: dict[str, str] = {
    "debian": "sudo apt-get install {pkgs}",
    "fedora": "sudo dnf install {pkgs}",
    "arch": "sudo pacman -S {pkgs}",
    "suse": "sudo zypper install {pkgs}",
    "alpine": "sudo apk add {pkgs}",
}

# pacman -S reinstalls an installed package; the others need an explicit verb or flag.
_REINSTALL: dict[str, str] = {
    "debian": "sudo apt-get install --reinstall {pkgs}",
    "fedora": "sudo dnf reinstall {pkgs}",
    "arch": "sudo pacman -S {pkgs}",
    "suse": "sudo zypper install --force {pkgs}",
    "alpine": "sudo apk fix --reinstall {pkgs}",
}

# An i386 package cannot be installed until dpkg knows the architecture; both steps are idempotent.
_DEBIAN_I386_PREFIX = "sudo dpkg --add-architecture i386 && sudo apt-get update && "

_NOTES: dict[tuple[str, str], str] = {
    ("arch", "loader-32bit"): "lib32 packages need the [multilib] repository in /etc/pacman.conf.",
    ("arch", "mesa-vulkan-32bit"): "lib32 packages need the [multilib] repository in "
    "/etc/pacman.conf.",
    ("arch", "mesa-vulkan"): "Install only the drivers for your GPU: vulkan-radeon (AMD), "
    "vulkan-intel (Intel), vulkan-swrast (CPU).",
    ("alpine", "mesa-vulkan"): "Install only the drivers for your GPU: mesa-vulkan-ati (AMD), "
    "mesa-vulkan-intel (Intel), mesa-vulkan-swrast (CPU).",
    ("suse", "mesa-vulkan"): "Install only the drivers for your GPU: libvulkan_radeon (AMD), "
    "libvulkan_intel (Intel), libvulkan_lvp (CPU).",
}


@frozen
class InstallAdvice:
    """What to type to install (or reinstall) one component on one distribution."""

    component: str
    family: str | None  # None: the distribution is unknown, ``command`` is a sentence
    packages: tuple[str, ...]  # empty when the family has no such package
    command: str
    note: str = ""

    @property
    def is_command(self) -> bool:
        """Whether ``command`` can be typed as is (otherwise it is advice in words)."""
        return self.family is not None and bool(self.packages)


def _unescape_double_quoted(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body) and body[i + 1] in _DQ_ESCAPABLE:
            out.append(body[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _parse_value(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return _unescape_double_quoted(raw[1:-1])
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1]
    # Unquoted values may only contain safe characters per os-release(5); a stray backslash escape
    # is the one shell rule worth honouring.
    return re.sub(r"\\(.)", r"\1", raw)


def parse_os_release(text: str) -> dict[str, str]:
    """Parse os-release(5) text into raw ``KEY: value`` pairs; never raises.

    Lines that are not ``KEY=value`` assignments are skipped, as systemd's parser does; a later
    assignment of the same key wins, as it would in a shell.
    """
    result: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        key = key.strip()
        if not _KEY.match(key):
            continue
        result[key] = _parse_value(raw)
    return result


def read_small_text(path: str | os.PathLike[str], limit: int) -> str | None:
    """Read a regular file of at most ``limit`` bytes; None for anything else or on any error.

    O_NONBLOCK keeps a FIFO planted at the path from hanging the doctor.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except (OSError, ValueError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data.decode("utf-8", errors="replace")


def os_release(env: Env) -> dict[str, Any]:
    """The distribution as os-release(5) describes it, read through ``env``.

    Always returns the keys ``id``, ``id_like`` (a list), ``version_id``, ``version_codename``,
    ``pretty_name``, ``name`` and ``source`` (the file read, or None when neither exists).  A file
    without ``ID`` gets the spec's default ``linux``; no file at all leaves ``id`` None (unknown).
    """
    for logical in OS_RELEASE_PATHS:
        text = read_small_text(env.path(logical), _MAX_OS_RELEASE_BYTES)
        if text is None:
            continue
        fields = parse_os_release(text)
        return {
            "id": fields.get("ID", "").strip().lower() or "linux",
            "id_like": [part.lower() for part in fields.get("ID_LIKE", "").split()],
            "version_id": fields.get("VERSION_ID") or None,
            "version_codename": fields.get("VERSION_CODENAME") or None,
            "pretty_name": fields.get("PRETTY_NAME") or None,
            "name": fields.get("NAME") or None,
            "source": logical,
        }
    return {
        "id": None,
        "id_like": [],
        "version_id": None,
        "version_codename": None,
        "pretty_name": None,
        "name": None,
        "source": None,
    }


def _as_os_release(source: Env | Mapping[str, Any]) -> Mapping[str, Any]:
    return os_release(source) if isinstance(source, Env) else source


def family(source: Env | Mapping[str, Any]) -> str | None:
    """The package family (one of FAMILIES) from ID, then ID_LIKE in order; None if unknown."""
    info = _as_os_release(source)
    candidates: list[str] = []
    ident = info.get("id")
    if isinstance(ident, str):
        candidates.append(ident)
    like = info.get("id_like") or ()
    if isinstance(like, str):
        like = like.split()
    candidates.extend(str(x) for x in like)
    for candidate in candidates:
        fam = _FAMILY_OF_ID.get(candidate.strip().lower())
        if fam is not None:
            return fam
    return None


def _machine(source: Env | Mapping[str, Any], machine: str | None) -> str:
    if machine:
        return machine
    if isinstance(source, Env):
        return source.machine
    return "x86_64"


def _packages(component: str, fam: str, machine: str) -> tuple[str, ...]:
    if component.endswith("-32bit") and machine != "x86_64":
        # Multilib names are for x86_64 hosts.  Debian's aarch64 pairs with armhf; the other
        # families ship no 32-bit userland for non-x86 hosts.
        if fam == "debian" and machine == "aarch64":
            return tuple(p.replace(":i386", ":armhf") for p in _PACKAGES[component]["debian"])
        return ()
    return _PACKAGES[component].get(fam, ())


def _advice(
    component: str, source: Env | Mapping[str, Any], machine: str | None, templates: dict[str, str]
) -> InstallAdvice:
    if component not in _PACKAGES:
        raise ValueError(f"unknown component {component!r}; expected one of {COMPONENTS}")
    fam = family(source)
    what = _DESCRIPTIONS[component]
    if fam is None:
        debian = " ".join(_PACKAGES[component]["debian"])
        return InstallAdvice(
            component=component,
            family=None,
            packages=(),
            command=(
                f"Install {what} with your distribution's package manager "
                f"(the Debian/Ubuntu package is {debian})."
            ),
        )
    arch = _machine(source, machine)
    packages = _packages(component, fam, arch)
    if not packages:
        return InstallAdvice(
            component=component,
            family=fam,
            packages=(),
            command=f"This distribution ships no package for {what} on {arch}.",
        )
    command = templates[fam].format(pkgs=" ".join(packages))
    if templates is _INSTALL and fam == "debian" and any(":" in p for p in packages):
        foreign = packages[0].split(":", 1)[1]
        command = _DEBIAN_I386_PREFIX.replace("i386", foreign) + command
    return InstallAdvice(
        component=component,
        family=fam,
        packages=packages,
        command=command,
        note=_NOTES.get((fam, component), ""),
    )


def install_advice(
    component: str, source: Env | Mapping[str, Any], *, machine: str | None = None
) -> InstallAdvice:
    """Packages, command and caveat for installing ``component`` (see COMPONENTS).

    ``source`` is an Env (its os-release and machine are read) or an ``os_release()`` dict (then
    the machine is ``machine`` or x86_64).  Raises ValueError only for an unknown component name,
    which is a bug in the caller.
    """
    return _advice(component, source, machine, _INSTALL)


def reinstall_advice(
    component: str, source: Env | Mapping[str, Any], *, machine: str | None = None
) -> InstallAdvice:
    """Like ``install_advice`` but forcing a reinstall (a truncated or overwritten library)."""
    return _advice(component, source, machine, _REINSTALL)


def install_command(
    component: str, source: Env | Mapping[str, Any], *, machine: str | None = None
) -> str:
    """The exact command that installs ``component``, e.g. ``sudo apt-get install libvulkan1``."""
    return install_advice(component, source, machine=machine).command


def reinstall_command(
    component: str, source: Env | Mapping[str, Any], *, machine: str | None = None
) -> str:
    """The exact command that reinstalls ``component``."""
    return reinstall_advice(component, source, machine=machine).command
