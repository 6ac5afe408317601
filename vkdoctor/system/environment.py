"""The ``environment`` section of the report: OS, kernel, sandbox, GPUs, device nodes, NVIDIA.

Everything here is read through the injected Env (files via ``env.path``, procfs via
``env.procfs``, variables via ``env.get``), so tests describe a whole machine as a fixture tree.
It runs on every ``vkdoctor check`` before any probe: it must be fast (a few ms, no subprocess, no
heavy import) and must never raise.  Unreadable files, missing sysfs, broken links and garbage
contents all end up as ``None`` ("unknown") in the facts.

The findings raised here are the ones that only the environment can explain (CTR-01, CTR-03,
CTR-05, DRV-03 in the failure-mode reference): the GPU is there but this process cannot reach it.
"""

from __future__ import annotations

import os
import re
import stat
import struct
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import field
from pathlib import Path
from typing import Any, TypeVar

from vkdoctor.engine.env import Env
from vkdoctor.record import frozen
from vkdoctor.report import shell
from vkdoctor.report.codes import CodeInfo, code_table, make_finding
from vkdoctor.report.model import Finding, Severity
from vkdoctor.system import distro

CODES: dict[str, CodeInfo] = code_table(
    [
        CodeInfo(
            code="nvidia-container-no-graphics",
            severity=Severity.WARN,
            title="NVIDIA container without the graphics driver capability",
            explanation=(
                "The NVIDIA Container Toolkit mounts driver pieces per capability; only "
                "'graphics' (or 'all') brings in nvidia_icd.json and libGLX_nvidia.so.0. Without "
                "it CUDA and nvidia-smi work but Vulkan sees no NVIDIA driver: 'Found no "
                "drivers!' or only llvmpipe."
            ),
            causes=(
                "NVIDIA_DRIVER_CAPABILITIES unset: the toolkit default is utility (and compute "
                "in newer toolkits), never graphics",
                "An image that sets NVIDIA_DRIVER_CAPABILITIES=compute,utility (CUDA and many "
                "ML images)",
                "A CDI spec generated without the Vulkan ICD manifest",
            ),
            remedy=(
                "Start the container with NVIDIA_DRIVER_CAPABILITIES=graphics,compute,utility "
                "(or all) and the NVIDIA runtime or CDI (--gpus all), and make sure "
                "nvidia_icd.json is present (toolkit 1.12 or newer mounts it)."
            ),
        ),
        CodeInfo(
            code="gpu-node-inaccessible",
            severity=Severity.WARN,
            title="GPU device node exists but this user cannot open it",
            explanation=(
                "Vulkan drivers open /dev/dri/renderD* (Mesa) or /dev/nvidiactl, /dev/nvidia<N> "
                "(NVIDIA) read-write. Without access RADV/ANV fail with 'Permission denied' and "
                "the loader silently falls back to llvmpipe, or finds no GPU at all."
            ),
            causes=(
                "The user is not in the node's group (usually 'render' or 'video')",
                "A service or container user whose group IDs differ from the host's",
                "A sandbox (seccomp, landlock) or a restrictive NVreg_DeviceFileMode",
            ),
            remedy=(
                "Add the user to the node's group and log in again, or pass the device and "
                "its group into the container (--device, --group-add)."
            ),
        ),
        CodeInfo(
            code="gpu-without-render-node",
            severity=Severity.WARN,
            title="GPU has a DRM driver but no render node in this environment",
            explanation=(
                "The kernel drives this GPU and created a render node for it, but the node is "
                "missing from /dev/dri here. Mesa's Vulkan drivers need the render node, so "
                "only llvmpipe (CPU) remains. Typical of containers started without --device "
                "/dev/dri."
            ),
            causes=(
                "A container or sandbox without /dev/dri passed in",
                "A minimal /dev (no udev) in a chroot or build environment",
            ),
            remedy="Pass /dev/dri into the container (--device /dev/dri) or let udev create it.",
        ),
        CodeInfo(
            code="gpu-no-kernel-driver",
            severity=Severity.WARN,
            title="Display device on the PCI bus with no kernel driver bound",
            explanation=(
                "A GPU is present but no kernel driver has claimed it, so no user-space Vulkan "
                "driver can use it; vkEnumeratePhysicalDevices reports only software devices "
                "or fails with VK_ERROR_INITIALIZATION_FAILED."
            ),
            causes=(
                "The kernel module is not installed or failed to load (firmware, secure boot, "
                "blacklist)",
                "The GPU is bound to vfio-pci or pci-stub for passthrough to a virtual machine",
            ),
            remedy="Load the GPU's kernel module and check the kernel log for why it did not bind.",
        ),
        CodeInfo(
            code="nvidia-no-device-nodes",
            severity=Severity.WARN,
            title="NVIDIA GPU expected but /dev/nvidiactl or /dev/nvidia<N> is missing",
            explanation=(
                "The NVIDIA user-space driver talks to the kernel through /dev/nvidiactl and "
                "/dev/nvidia<N>. Without them the NVIDIA Vulkan driver cannot start: the loader "
                "skips it or 'Could not get vkCreateInstance via vk_icdGetInstanceProcAddr'."
            ),
            causes=(
                "A container started without the NVIDIA runtime, --gpus or the CDI devices",
                "On the host: nodes not created yet (nvidia-modprobe not installed or not run)",
            ),
            remedy=(
                "Start the container with --gpus all (or the CDI device nvidia.com/gpu=all); "
                "on the host, create the nodes with nvidia-modprobe."
            ),
        ),
        CodeInfo(
            code="wsl-detected-info",
            severity=Severity.INFO,
            title="Running under WSL",
            explanation=(
                "WSL exposes the GPU through /dev/dxg and Direct3D 12, not DRM. Hardware "
                "Vulkan needs Mesa's Dozen driver (dzn), which Debian and Ubuntu Mesa builds do "
                "not ship; without it only llvmpipe is available."
            ),
            causes=("Windows Subsystem for Linux",),
            remedy=(
                "Hardware Vulkan requires Mesa's Dozen driver (dzn): install a Mesa build with "
                "dzn or copy dzn_icd.x86_64.json to ~/.local/share/vulkan/icd.d. dzn is not "
                "conformant and has no presentation support."
            ),
        ),
    ]
)


@frozen
class EnvironmentScan:
    """The environment facts (JSON-ready, deterministic order) and the findings they support."""

    facts: dict[str, Any]
    findings: tuple[Finding, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"facts": self.facts, "findings": [f.to_dict() for f in self.findings]}


# --------------------------------------------------------------------------------------------
# Small, failure-proof readers
# --------------------------------------------------------------------------------------------

# sysfs attributes and procfs lines are tiny; the caps guard against a planted huge file.
_SMALL = 4096
_TABLE = 1024 * 1024
# A hostile or broken sysfs could list anything; real machines have a few hundred PCI functions.
_MAX_PCI_DEVICES = 4096
_MAX_DEV_ENTRIES = 8192

_T = TypeVar("_T")


def _read(path: Path | str, limit: int = _SMALL) -> str | None:
    return distro.read_small_text(path, limit)


def _read_line(path: Path | str) -> str | None:
    text = _read(path)
    if text is None:
        return None
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    return line or None


def _exists(path: Path) -> bool:
    # lexists: a dangling /.dockerenv link still says "Docker made this".
    try:
        return os.path.lexists(path)
    except (OSError, ValueError):
        return False


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def _listdir(path: Path, limit: int) -> list[str]:
    try:
        with os.scandir(path) as it:
            names: list[str] = []
            for entry in it:
                names.append(entry.name)
                if len(names) >= limit:
                    break
            return names
    except (OSError, ValueError):
        return []


def _natural_key(text: str) -> tuple[Any, ...]:
    # renderD129 after renderD128, card10 after card2.
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


class _Names:
    """uid/gid -> name from the environment's own /etc/passwd and /etc/group, read once."""

    def __init__(self, env: Env) -> None:
        self._env = env
        self._users: dict[int, str] | None = None
        self._groups: dict[int, str] | None = None

    def _table(self, logical: str) -> dict[int, str]:
        table: dict[int, str] = {}
        text = _read(self._env.path(logical), _TABLE) or ""
        for line in text.splitlines():
            parts = line.split(":")
            if len(parts) >= 3 and parts[0] and parts[2].isdigit():
                table.setdefault(int(parts[2]), parts[0])
        return table

    def user(self, uid: int) -> str | None:
        if self._users is None:
            self._users = self._table("/etc/passwd")
        return self._users.get(uid)

    def group(self, gid: int) -> str | None:
        if self._groups is None:
            self._groups = self._table("/etc/group")
        return self._groups.get(gid)


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


def _kernel(env: Env) -> dict[str, Any]:
    release = _read_line(env.procfs / "sys/kernel/osrelease")
    return {"release": release[:256] if release else None}


def _python() -> dict[str, Any]:
    info = sys.version_info
    return {
        "implementation": sys.implementation.name,
        "version": f"{info.major}.{info.minor}.{info.micro}",
        "executable": sys.executable or None,
        "pointer_bits": 64 if sys.maxsize > 2**32 else 32,
    }


def _identity(env: Env, names: _Names) -> dict[str, Any]:
    return {
        "uid": env.uid,
        "euid": env.euid,
        "gid": env.gid,
        "egid": env.egid,
        "groups": sorted(set(env.groups)),
        "user": names.user(env.euid),
        "secure": env.secure,
    }


# Tokens of a container runtime in PID 1's cgroup path (cgroup v1, or v2 without a private
# cgroup namespace), and the kind they mean.
_CGROUP_MARKERS: tuple[tuple[str, str], ...] = (
    ("kubepods", "kubernetes"),
    ("docker", "docker"),
    ("libpod", "podman"),
    ("containerd", "containerd"),
    ("lxc", "lxc"),
)
# Kinds that are containers in the NVIDIA-toolkit sense (an image with its own /dev and /usr).
CONTAINER_KINDS = frozenset({"docker", "podman", "kubernetes", "containerd", "lxc"})

# NVIDIA_VISIBLE_DEVICES values under which the toolkit injects no GPU at all.
_NVIDIA_NO_GPU_VALUES = frozenset({"", "void", "none"})


def _ini_value(text: str, key: str) -> str | None:
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == key:
            return value.strip() or None
    return None


@frozen
class SandboxEvidence:
    kind: str
    source: str
    value: str | None = None

    def to_fact(self) -> dict[str, Any]:
        return {"kind": self.kind, "source": self.source, "value": self.value}


@frozen
class Sandbox:
    """The containers and sandboxes this process runs in, with what gave each away."""

    container: bool = False
    kinds: tuple[str, ...] = ()
    evidence: tuple[SandboxEvidence, ...] = ()

    @property
    def run_prefix(self) -> str:
        return "podman run" if "podman" in self.kinds else "docker run"

    def to_fact(self) -> dict[str, Any]:
        return {
            "container": self.container,
            "kinds": list(self.kinds),
            "evidence": [e.to_fact() for e in self.evidence],
        }


def _sandbox(env: Env, kernel_release: str | None) -> Sandbox:
    evidence: list[SandboxEvidence] = []

    def add(kind: str, source: str, value: str | None = None) -> None:
        evidence.append(SandboxEvidence(kind, source, value))

    if _exists(env.path("/.dockerenv")):
        add("docker", "/.dockerenv")
    if _exists(env.path("/run/.containerenv")):
        text = _read(env.path("/run/.containerenv"), _SMALL) or ""
        engine = distro.parse_os_release(text).get("engine")
        add("podman", "/run/.containerenv", engine or None)
    if env.get_nonempty("KUBERNETES_SERVICE_HOST"):
        add("kubernetes", "KUBERNETES_SERVICE_HOST", env.get("KUBERNETES_SERVICE_HOST"))
    cgroup = _read(env.procfs / "1/cgroup", 64 * 1024)
    if cgroup:
        seen: set[str] = set()
        for line in cgroup.splitlines():
            path = line.split(":", 2)[-1].lower()
            for token, kind in _CGROUP_MARKERS:
                if token in path and kind not in seen:
                    seen.add(kind)
                    add(kind, "/proc/1/cgroup", line.strip()[:200])
    if _exists(env.path("/.flatpak-info")):
        info = _read(env.path("/.flatpak-info"), 64 * 1024) or ""
        add("flatpak", "/.flatpak-info", _ini_value(info, "runtime"))
    if env.get_nonempty("FLATPAK_ID"):
        add("flatpak", "FLATPAK_ID", env.get("FLATPAK_ID"))
    for var in ("SNAP_NAME", "SNAP"):
        if env.get_nonempty(var):
            add("snap", var, env.get(var))
    if kernel_release and re.search(r"microsoft|wsl", kernel_release, re.IGNORECASE):
        add("wsl", "/proc/sys/kernel/osrelease", kernel_release)
    if _exists(env.path("/dev/dxg")):
        add("wsl", "/dev/dxg")
    pv_vars = sorted(k for k in env.environ if k.startswith("PRESSURE_VESSEL_"))
    if pv_vars:
        add("pressure-vessel", "environment", ",".join(pv_vars))
    if _exists(env.path("/usr/lib/pressure-vessel")):
        add("pressure-vessel", "/usr/lib/pressure-vessel")

    kinds = sorted({e.kind for e in evidence})
    return Sandbox(
        container=any(k in CONTAINER_KINDS for k in kinds),
        kinds=tuple(kinds),
        evidence=tuple(evidence),
    )


PCI_VENDORS: dict[str, str] = {
    "10de": "NVIDIA",
    "1002": "AMD",
    "1022": "AMD",
    "8086": "Intel",
    "1af4": "Red Hat (virtio)",
    "1234": "QEMU (Bochs)",
    "15ad": "VMware",
    "1b36": "Red Hat (QEMU)",
    "1414": "Microsoft",
    "80ee": "VirtualBox",
    "5143": "Qualcomm",
    "13b5": "ARM",
    "1a03": "ASPEED",
    "102b": "Matrox",
    "1013": "Cirrus Logic",
    "19e5": "Huawei",
    "1ed5": "Moore Threads",
    "1d17": "Zhaoxin",
}
# Emulated or paravirtual adapters: no driver bound there rarely matters for Vulkan.
_VIRTUAL_VENDORS = frozenset({"1af4", "1234", "15ad", "1b36", "1414", "80ee"})

# Kernel DRM drivers that register a render node for every GPU they bind (DRIVER_RENDER), so a
# missing /dev/dri/renderD* for them is the environment's doing.  NVIDIA's own driver is left out:
# its Vulkan driver uses /dev/nvidia*, checked separately.
RENDER_NODE_DRIVERS = frozenset({"amdgpu", "radeon", "i915", "xe", "nouveau", "vmwgfx"})
# Drivers that claim a device to keep everyone else off it (VM passthrough).
_PLACEHOLDER_DRIVERS = frozenset({"vfio-pci", "pci-stub"})
# Module to suggest when a vendor's GPU has no driver bound.
_VENDOR_MODULE: dict[str, str] = {"1002": "amdgpu", "8086": "i915", "10de": "nvidia"}

_CLASS_KINDS: dict[int, str] = {0x00: "vga", 0x01: "xga", 0x02: "3d", 0x80: "display"}
_HEX_ID = re.compile(r"^(?:0x)?([0-9a-fA-F]{1,4})$")
_DRM_NAME = re.compile(r"^(?:card|renderD)\d+$")


def _pci_id(text: str | None) -> str | None:
    if not text:
        return None
    match = _HEX_ID.match(text.strip())
    return match.group(1).lower().rjust(4, "0") if match else None


def _pci_class(text: str | None) -> int | None:
    if not text:
        return None
    try:
        value = int(text.strip(), 16)
    except ValueError:
        return None
    return value if 0 <= value <= 0xFFFFFF else None


def _driver_name(device_dir: Path) -> str | None:
    # The bound driver is the basename of the link target; readlink works on dangling links too.
    try:
        target = os.readlink(device_dir / "driver")
    except (OSError, ValueError):
        return None
    name = os.path.basename(target.rstrip("/"))
    return name or None


@frozen
class PciGpu:
    """A display-class PCI device as sysfs describes it."""

    slot: str
    pci_class: str  # "0x030000"
    kind: str
    vendor_id: str | None  # four lower-case hex digits
    device_id: str | None
    vendor: str | None
    virtual: bool
    driver: str | None
    boot_vga: bool | None
    drm_nodes: tuple[str, ...] | None  # None: sysfs has no drm/ directory for it
    # From /proc/driver/nvidia/gpus/<slot>/information, where NVIDIA's kernel driver runs it:
    # the UUID its Vulkan driver reports as deviceUUID, and N of its /dev/nvidiaN.
    nvidia_uuid: str | None = None
    nvidia_minor: int | None = None

    @property
    def label(self) -> str:
        vendor = self.vendor or "unknown vendor"
        return f"{vendor} GPU {self.vendor_id or '????'}:{self.device_id or '????'} at {self.slot}"

    def to_fact(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "class": self.pci_class,
            "kind": self.kind,
            "vendor_id": self.vendor_id,
            "device_id": self.device_id,
            "vendor": self.vendor,
            "virtual": self.virtual,
            "driver": self.driver,
            "boot_vga": self.boot_vga,
            "drm_nodes": list(self.drm_nodes) if self.drm_nodes is not None else None,
            "nvidia_uuid": self.nvidia_uuid,
            "nvidia_minor": self.nvidia_minor,
        }


_NVIDIA_UUID = re.compile(r"^GPU UUID:\s*GPU-([0-9a-fA-F-]{36})\s*$", re.M)
_NVIDIA_MINOR = re.compile(r"^Device Minor:\s*(\d+)\s*$", re.M)


def _nvidia_gpu(env: Env, slot: str) -> tuple[str | None, int | None]:
    """UUID and device minor of an NVIDIA GPU from the kernel driver's per-GPU file (absent
    without the driver; the UUID reads as ``??`` for users other than root on some versions)."""
    text = _read(env.procfs / "driver/nvidia/gpus" / slot / "information")
    if not text:
        return None, None
    uuid = _NVIDIA_UUID.search(text)
    minor = _NVIDIA_MINOR.search(text)
    return (uuid.group(1).lower() if uuid else None), (int(minor.group(1)) if minor else None)


def _gpus(env: Env) -> list[PciGpu]:
    root = env.path("/sys/bus/pci/devices")
    gpus: list[PciGpu] = []
    for slot in sorted(_listdir(root, _MAX_PCI_DEVICES)):
        device_dir = root / slot
        pci_class = _pci_class(_read_line(device_dir / "class"))
        if pci_class is None or pci_class >> 16 != 0x03:
            continue
        vendor_id = _pci_id(_read_line(device_dir / "vendor"))
        boot_vga = _read_line(device_dir / "boot_vga")
        drm_nodes = sorted(
            (n for n in _listdir(device_dir / "drm", 64) if _DRM_NAME.match(n)), key=_natural_key
        )
        nvidia_uuid, nvidia_minor = _nvidia_gpu(env, slot) if vendor_id == "10de" else (None, None)
        gpus.append(
            PciGpu(
                slot=slot,
                pci_class=f"0x{pci_class:06x}",
                kind=_CLASS_KINDS.get((pci_class >> 8) & 0xFF, "display"),
                vendor_id=vendor_id,
                device_id=_pci_id(_read_line(device_dir / "device")),
                vendor=PCI_VENDORS.get(vendor_id or ""),
                virtual=vendor_id in _VIRTUAL_VENDORS,
                driver=_driver_name(device_dir),
                boot_vga={"1": True, "0": False}.get(boot_vga or ""),
                # None: sysfs has no drm/ directory for it (no DRM driver, or unknown).
                drm_nodes=tuple(drm_nodes) if _is_dir(device_dir / "drm") else None,
                nvidia_uuid=nvidia_uuid,
                nvidia_minor=nvidia_minor,
            )
        )
    return gpus


# POSIX ACL xattr layout (linux/posix_acl_xattr.h): u32 version 2, then (u16 tag, u16 perm,
# u32 id) entries, little-endian.
_ACL_XATTR = "system.posix_acl_access"
_ACL_VERSION = 2
ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_OTHER = 1, 2, 4, 8, 0x10, 0x20
_RW = 0o6  # read + write, in one class's permission bits


def parse_posix_acl(data: bytes) -> tuple[tuple[int, int, int], ...] | None:
    """Entries (tag, perm, id) of a ``system.posix_acl_access`` value; None if malformed."""
    if len(data) < 4 or (len(data) - 4) % 8:
        return None
    (version,) = struct.unpack_from("<I", data, 0)
    if version != _ACL_VERSION:
        return None
    entries = tuple(struct.iter_unpack("<HHI", data[4:]))
    if not entries:
        return None
    return entries


def _read_acl(path: Path) -> tuple[tuple[int, int, int], ...] | None:
    # systemd-logind grants the seat user access to render nodes through an ACL ("uaccess"), so
    # the mode bits alone would call a desktop user's own GPU inaccessible.
    getxattr = getattr(os, "getxattr", None)
    if getxattr is None:
        return None
    try:
        return parse_posix_acl(getxattr(path, _ACL_XATTR))
    except (OSError, ValueError):
        return None


def acl_allows(
    entries: Iterable[tuple[int, int, int]],
    owner: int,
    group: int,
    euid: int,
    groups: frozenset[int],
    want: int = _RW,
) -> bool:
    """The kernel's posix_acl_permission() for one identity (root handled by the caller)."""
    entries = tuple(entries)
    mask = next((perm for tag, perm, _ in entries if tag == ACL_MASK), None)

    def masked(perm: int) -> int:
        return perm if mask is None else perm & mask

    for tag, perm, _ in entries:
        if tag == ACL_USER_OBJ and owner == euid:
            return perm & want == want
    for tag, perm, ident in entries:
        if tag == ACL_USER and ident == euid:
            return masked(perm) & want == want
    matched_group = False
    for tag, perm, ident in entries:
        if (tag == ACL_GROUP_OBJ and group in groups) or (tag == ACL_GROUP and ident in groups):
            matched_group = True
            if masked(perm) & want == want:
                return True
    if matched_group:
        return False
    other = next((perm for tag, perm, _ in entries if tag == ACL_OTHER), 0)
    return other & want == want


def node_access(
    mode: int,
    owner: int,
    group: int,
    env: Env,
    acl: Iterable[tuple[int, int, int]] | None = None,
) -> tuple[bool, str]:
    """Whether ``env``'s identity may open a node read-write, and which rule decided it.

    Mirrors the kernel's DAC check: root bypasses it, otherwise exactly one class applies (owner,
    else group, else other) or the ACL when there is one.  Device cgroups and LSMs can still
    refuse an open this allows; only trying to open would tell, and the environment scan must
    not touch GPUs.
    """
    if env.euid == 0:
        return True, "root"
    groups = frozenset((env.egid, *env.groups))
    if acl is not None:
        return acl_allows(acl, owner, group, env.euid, groups), "acl"
    if owner == env.euid:
        return (mode >> 6) & _RW == _RW, "owner"
    if group in groups:
        return (mode >> 3) & _RW == _RW, "group"
    return mode & _RW == _RW, "other"


def _node_type(name: str, in_dri: bool) -> str:
    if in_dri:
        if name.startswith("renderD"):
            return "render"
        if name.startswith("card"):
            return "card"
        return "dri-other"
    if name == "nvidiactl":
        return "nvidia-control"
    if re.fullmatch(r"nvidia\d+", name):
        return "nvidia-gpu"
    if name in ("nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset"):
        return name
    return "nvidia-other"


def _file_type(mode: int) -> str:
    if stat.S_ISCHR(mode):
        return "char"
    if stat.S_ISREG(mode):
        return "regular"
    return "other"


@frozen
class DeviceNode:
    """A /dev/dri or /dev/nvidia* entry, and whether this process may open it read-write."""

    path: str
    type: str  # render, card, nvidia-control, nvidia-gpu, ...
    file_type: str  # char, regular, other, broken-link, unknown
    mode: str | None = None
    uid: int | None = None
    gid: int | None = None
    group: str | None = None
    major: int | None = None
    minor: int | None = None
    can_open_rw: bool | None = None
    access_via: str | None = None
    pci_slot: str | None = None

    def to_fact(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "type": self.type,
            "file_type": self.file_type,
            "mode": self.mode,
            "uid": self.uid,
            "gid": self.gid,
            "group": self.group,
            "major": self.major,
            "minor": self.minor,
            "can_open_rw": self.can_open_rw,
            "access_via": self.access_via,
            "pci_slot": self.pci_slot,
        }


def _node(
    env: Env, names: _Names, logical: str, in_dri: bool, slot_of: Mapping[str, str]
) -> DeviceNode | None:
    name = logical.rsplit("/", 1)[-1]
    path = env.path(logical)
    kind = _node_type(name, in_dri)
    slot = slot_of.get(name) if in_dri else None
    try:
        st = os.stat(path)
    except FileNotFoundError:
        # Listed but stat fails: a dangling symlink.
        return DeviceNode(
            logical,
            kind,
            "broken-link",
            can_open_rw=False,
            access_via="missing-target",
            pci_slot=slot,
        )
    except (OSError, ValueError):
        return DeviceNode(logical, kind, "unknown", pci_slot=slot)
    if stat.S_ISDIR(st.st_mode):
        return None  # /dev/dri/by-path, /dev/nvidia-caps
    is_char = stat.S_ISCHR(st.st_mode)
    allowed, via = node_access(st.st_mode, st.st_uid, st.st_gid, env, _read_acl(path))
    return DeviceNode(
        logical,
        kind,
        file_type=_file_type(st.st_mode),
        mode=f"{stat.S_IMODE(st.st_mode):04o}",
        uid=st.st_uid,
        gid=st.st_gid,
        group=names.group(st.st_gid),
        major=os.major(st.st_rdev) if is_char else None,
        minor=os.minor(st.st_rdev) if is_char else None,
        can_open_rw=allowed,
        access_via=via,
        pci_slot=slot,
    )


def _device_nodes(env: Env, names: _Names, gpus: list[PciGpu]) -> list[DeviceNode]:
    slot_of = {node: gpu.slot for gpu in gpus for node in gpu.drm_nodes or ()}
    logicals: list[tuple[str, bool]] = [
        (f"/dev/dri/{n}", True) for n in _listdir(env.path("/dev/dri"), 256)
    ]
    logicals += [
        (f"/dev/{n}", False)
        for n in _listdir(env.path("/dev"), _MAX_DEV_ENTRIES)
        if n.startswith("nvidia")
    ]
    nodes = []
    for logical, in_dri in sorted(logicals, key=lambda item: _natural_key(item[0])):
        record = _node(env, names, logical, in_dri, slot_of)
        if record is not None:
            nodes.append(record)
    return nodes


_NVIDIA_VERSION = re.compile(r"Kernel Module(?:\s+for\s+\S+)?\s+(\d+(?:\.\d+)+)")


@frozen
class NvidiaModule:
    """The NVIDIA kernel module's version (None without one) and the toolkit's variables."""

    kernel_module_version: str | None = None
    kernel_module_open: bool | None = None
    version_source: str | None = None
    container_env: Mapping[str, str] = field(default_factory=dict)

    def to_fact(self) -> dict[str, Any]:
        return {
            "kernel_module_version": self.kernel_module_version,
            "kernel_module_open": self.kernel_module_open,
            "version_source": self.version_source,
            "container_env": dict(self.container_env),
        }


def _nvidia(env: Env) -> NvidiaModule:
    module_version: str | None = None
    open_module: bool | None = None
    source: str | None = None
    text = _read(env.procfs / "driver/nvidia/version")
    if text:
        match = _NVIDIA_VERSION.search(text)
        if match:
            module_version = match.group(1)
            open_module = "Open Kernel Module" in text
            source = "/proc/driver/nvidia/version"
    if module_version is None:
        # /sys/module/nvidia/version carries only the number (no open/proprietary flavour).
        line = _read_line(env.path("/sys/module/nvidia/version"))
        if line and re.fullmatch(r"\d+(?:\.\d+)+", line):
            module_version = line
            source = "/sys/module/nvidia/version"
    container_env = {
        key: value
        for key, value in sorted(env.environ.items())
        if key in ("NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES")
        or key.startswith(("NVIDIA_REQUIRE_", "NVIDIA_DISABLE_REQUIRE"))
    }
    return NvidiaModule(module_version, open_module, source, container_env)


# --------------------------------------------------------------------------------------------
# Findings
# --------------------------------------------------------------------------------------------


def _nvidia_visible(env: Env) -> str | None:
    value = env.get("NVIDIA_VISIBLE_DEVICES")
    if value is None or value.strip().lower() in _NVIDIA_NO_GPU_VALUES:
        return None
    return value.strip()


def _check_nvidia_capabilities(env: Env, sandbox: Sandbox) -> list[Finding]:
    visible = _nvidia_visible(env)
    if not sandbox.container or visible is None:
        return []
    raw = env.get("NVIDIA_DRIVER_CAPABILITIES")
    caps = {c.strip().lower() for c in (raw or "").split(",") if c.strip()}
    # Unset or empty means the toolkit default, which never includes graphics.
    effective = caps or {"utility"}
    if "graphics" in effective or "all" in effective:
        return []
    shown = raw if raw else "unset (toolkit default: utility)"
    commands = [
        f"{sandbox.run_prefix} --gpus all "
        "-e NVIDIA_DRIVER_CAPABILITIES=graphics,compute,utility <image>",
        "sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml",
    ]
    return [
        make_finding(
            CODES,
            "nvidia-container-no-graphics",
            f"NVIDIA container without the graphics capability (NVIDIA_DRIVER_CAPABILITIES "
            f"{shown}): the NVIDIA Vulkan driver is not mounted",
            evidence={
                "NVIDIA_VISIBLE_DEVICES": visible,
                "NVIDIA_DRIVER_CAPABILITIES": raw,
                "effective_capabilities": sorted(effective),
                "container": list(sandbox.kinds),
            },
            remedy=(
                "This looks like an NVIDIA container without Vulkan support: set "
                "NVIDIA_DRIVER_CAPABILITIES=graphics,compute,utility (or all) when starting it, "
                "use the nvidia runtime or CDI with --gpus all, and make sure nvidia_icd.json is "
                "present (toolkit 1.12 or newer mounts it). Run these on the host."
            ),
            commands=commands,
        )
    ]


# Nodes a Vulkan driver opens.  Card nodes serve display only; nvidia-uvm(-tools) serve CUDA and
# profiling, so their modes say nothing about Vulkan.
_VULKAN_NODE_TYPES = frozenset({"render", "nvidia-control", "nvidia-gpu", "nvidia-modeset"})


def _check_node_access(
    env: Env, names: _Names, sandbox: Sandbox, nodes: list[DeviceNode]
) -> list[Finding]:
    blocked = [n for n in nodes if n.type in _VULKAN_NODE_TYPES and n.can_open_rw is False]
    if not blocked:
        return []
    user = names.user(env.euid) or env.get_nonempty("USER")
    who = f"uid {env.euid}" + (f" ({user})" if user else "")
    described = []
    for n in blocked:
        if n.file_type == "broken-link":
            described.append(f"{n.path} (dangling link)")
        else:
            group = n.group or f"gid {n.gid}"
            described.append(f"{n.path} (mode {n.mode}, group {group})")
    commands: list[str] = []
    if sandbox.container:
        gids = sorted({n.gid for n in blocked if n.gid is not None})
        group_adds = "".join(f" --group-add {gid}" for gid in gids)
        devices = " --device /dev/dri" if any(n.type == "render" for n in blocked) else ""
        commands.append(f"{sandbox.run_prefix}{devices}{group_adds} <image>")
    else:
        # Adding a user to group root would be a security change, never a fix to suggest.
        group_names = sorted({n.group for n in blocked if n.group and n.gid != 0})
        target = user or "$USER"
        commands += [shell.command("sudo", "usermod", "-aG", g, target) for g in group_names]
    commands.append(shell.command("ls", "-l", *(n.path for n in blocked)))
    summary = (
        f"{blocked[0].path} is not readable and writable by {who}"
        if len(blocked) == 1
        else f"{len(blocked)} GPU device nodes are not readable and writable by {who}"
    )
    remedy = (
        f"The GPU device node(s) {', '.join(described)} cannot be opened read-write by {who}. "
        + (
            "Pass the devices into the container and add their group IDs (--group-add); group "
            "IDs inside the container may differ from the host's."
            if sandbox.container
            else "Add the user to the node's group, then log out and in again (or reboot)."
        )
    )
    return [
        make_finding(
            CODES,
            "gpu-node-inaccessible",
            summary,
            evidence={
                "nodes": [
                    {
                        "path": n.path,
                        "type": n.type,
                        "mode": n.mode,
                        "uid": n.uid,
                        "gid": n.gid,
                        "group": n.group,
                    }
                    for n in blocked
                ],
                "identity": {"euid": env.euid, "egid": env.egid, "groups": sorted(env.groups)},
            },
            remedy=remedy,
            commands=commands,
        )
    ]


def _check_render_nodes(
    sandbox: Sandbox, gpus: list[PciGpu], nodes: list[DeviceNode]
) -> list[Finding]:
    present = {n.path.rsplit("/", 1)[-1] for n in nodes if n.path.startswith("/dev/dri/")}
    any_render = any(p.startswith("renderD") for p in present)
    findings = []
    for gpu in gpus:
        if gpu.driver not in RENDER_NODE_DRIVERS:
            continue
        if gpu.drm_nodes is not None:
            expected = [n for n in gpu.drm_nodes if n.startswith("renderD")]
            missing = [n for n in expected if n not in present]
        else:
            # No sysfs mapping: the best available test is "no render node at all".
            expected, missing = [], ([] if any_render else ["renderD*"])
        if not missing:
            continue
        if sandbox.container:
            commands = [f"{sandbox.run_prefix} --device /dev/dri <image>"]
            remedy = (
                f"The {gpu.label} is driven by {gpu.driver} but "
                f"{', '.join('/dev/dri/' + m for m in missing)} is not in this container: "
                "pass it in with --device /dev/dri (and --group-add for its group)."
            )
        else:
            commands = ["sudo udevadm trigger --subsystem-match=drm --action=add", "ls -l /dev/dri"]
            remedy = (
                f"The {gpu.label} is driven by {gpu.driver} but "
                f"{', '.join('/dev/dri/' + m for m in missing)} does not exist here: let udev "
                "create the DRM nodes (or bind-mount /dev/dri into this chroot)."
            )
        findings.append(
            make_finding(
                CODES,
                "gpu-without-render-node",
                f"{gpu.label} ({gpu.driver}) has no render node in /dev/dri",
                evidence={
                    "gpu": gpu.slot,
                    "driver": gpu.driver,
                    "sysfs_render_nodes": expected,
                    "missing": ["/dev/dri/" + m for m in missing],
                    "container": list(sandbox.kinds),
                },
                remedy=remedy,
                commands=commands,
            )
        )
    return findings


def _check_unbound(gpus: list[PciGpu]) -> list[Finding]:
    findings = []
    for gpu in gpus:
        driver = gpu.driver
        if driver is not None and driver not in _PLACEHOLDER_DRIVERS:
            continue
        label = gpu.label
        lspci = shell.command("lspci", "-nnk", "-s", gpu.slot)
        if driver in _PLACEHOLDER_DRIVERS:
            findings.append(
                make_finding(
                    CODES,
                    "gpu-no-kernel-driver",
                    f"{label} is bound to {driver} (reserved for VM passthrough), not to a GPU "
                    "driver",
                    evidence={"gpu": gpu.slot, "driver": driver},
                    remedy=(
                        f"{label} is claimed by {driver}, so this system cannot use it for "
                        "Vulkan. If that is not intended, remove its ID from the vfio-pci/"
                        "pci-stub options (kernel command line or /etc/modprobe.d) and reboot."
                    ),
                    commands=[lspci],
                    severity=Severity.INFO,
                )
            )
            continue
        module = _VENDOR_MODULE.get(gpu.vendor_id or "")
        commands = [lspci]
        if module:
            commands.append(shell.command("sudo", "modprobe", module))
        commands.append("sudo dmesg | grep -iE 'drm|" + (module or "gpu") + "'")
        alternative = " (or nouveau)" if module == "nvidia" else ""
        findings.append(
            make_finding(
                CODES,
                "gpu-no-kernel-driver",
                f"{label} has no kernel driver bound",
                evidence={"gpu": gpu.slot, "vendor_id": gpu.vendor_id, "driver": None},
                remedy=(
                    f"No kernel driver is bound to the {label}, so no Vulkan driver can use it. "
                    + (
                        f"Load {module}{alternative} and check the kernel log for why it did not "
                        "bind (missing firmware, Secure Boot, a blacklist)."
                        if module
                        else "Load its kernel module and check the kernel log."
                    )
                ),
                commands=commands,
                # An emulated adapter without a driver costs nothing Vulkan could use.
                severity=Severity.INFO if gpu.virtual else None,
            )
        )
    return findings


def _check_nvidia_nodes(
    env: Env,
    sandbox: Sandbox,
    gpus: list[PciGpu],
    nodes: list[DeviceNode],
    nvidia: NvidiaModule,
) -> list[Finding]:
    bound = [g for g in gpus if g.vendor_id == "10de" and g.driver == "nvidia"]
    visible = _nvidia_visible(env) if sandbox.container else None
    if not bound and visible is None:
        return []
    types = {n.type for n in nodes if n.file_type != "broken-link"}
    missing = [
        label
        for label, present in (
            ("/dev/nvidiactl", "nvidia-control" in types),
            ("/dev/nvidia<N>", "nvidia-gpu" in types),
        )
        if not present
    ]
    if not missing:
        return []
    hardware = bool(bound) or nvidia.kernel_module_version is not None
    if sandbox.container:
        run = sandbox.run_prefix
        commands = (
            ["podman run --device nvidia.com/gpu=all <image>"]
            if run == "podman run"
            else ["docker run --gpus all <image>"]
        )
        commands.append("sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml")
        remedy = (
            f"This container has no {' or '.join(missing)}, so the NVIDIA Vulkan driver cannot "
            "start. Start it with the NVIDIA runtime (--gpus all) or the CDI device "
            "nvidia.com/gpu=all; run these on the host."
        )
        # Without an NVIDIA GPU or module anywhere, the variable is probably just inherited from
        # a CUDA base image on a machine with no NVIDIA GPU.
        severity = None if hardware else Severity.INFO
    else:
        commands = ["sudo nvidia-modprobe -c 0 -u", "nvidia-smi"]
        remedy = (
            f"{' and '.join(missing)} do not exist yet. The NVIDIA driver creates them on first "
            "use through nvidia-modprobe (setuid); if it is not installed, create them by hand "
            "or run nvidia-smi once as root."
        )
        severity = Severity.INFO
    what = bound[0].label if bound else f"NVIDIA_VISIBLE_DEVICES={visible}"
    return [
        make_finding(
            CODES,
            "nvidia-no-device-nodes",
            f"{what} but {' and '.join(missing)} missing",
            evidence={
                "nvidia_gpus": [g.slot for g in bound],
                "NVIDIA_VISIBLE_DEVICES": visible,
                "kernel_module_version": nvidia.kernel_module_version,
                "missing": missing,
                "present": sorted(n.path for n in nodes if n.type.startswith("nvidia")),
            },
            remedy=remedy,
            commands=commands,
            severity=severity,
        )
    ]


def _check_wsl(sandbox: Sandbox) -> list[Finding]:
    evidence = [e.to_fact() for e in sandbox.evidence if e.kind == "wsl"]
    if not evidence:
        return []
    return [
        make_finding(
            CODES,
            "wsl-detected-info",
            "WSL detected: hardware Vulkan needs Mesa's Dozen driver (dzn); otherwise only "
            "llvmpipe is available",
            evidence={"evidence": evidence},
            remedy=(
                "WSL2 detected: hardware Vulkan requires Mesa's Dozen driver (dzn); Debian and "
                "Ubuntu Mesa builds ship only llvmpipe. Install a Mesa build with dzn (e.g. a "
                "PPA) or copy dzn_icd.x86_64.json to ~/.local/share/vulkan/icd.d. dzn is not "
                "conformant and has no presentation support."
            ),
            commands=["ls /usr/share/vulkan/icd.d/ ~/.local/share/vulkan/icd.d/"],
        )
    ]


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def _guard(errors: list[str], section: str, fn: Callable[[], _T], default: _T) -> _T:
    # A bug in one section must not cost the report: record it and carry on with "unknown".
    try:
        return fn()
    except Exception as exc:
        errors.append(f"{section}: {type(exc).__name__}: {exc}")
        return default


def collect_environment(env: Env) -> EnvironmentScan:
    """Gather the environment facts and the findings they support; never raises."""
    errors: list[str] = []
    names = _Names(env)
    os_info = _guard(errors, "os", lambda: distro.os_release(env), {})
    kernel = _guard(errors, "kernel", lambda: _kernel(env), {"release": None})
    identity = _guard(errors, "identity", lambda: _identity(env, names), {})
    sandbox = _guard(errors, "sandbox", lambda: _sandbox(env, kernel["release"]), Sandbox())
    gpus = _guard(errors, "gpus", lambda: _gpus(env), [])
    nodes = _guard(errors, "device_nodes", lambda: _device_nodes(env, names, gpus), [])
    nvidia = _guard(errors, "nvidia", lambda: _nvidia(env), NvidiaModule())

    checks: tuple[tuple[str, Callable[[], list[Finding]]], ...] = (
        ("nvidia-container-no-graphics", lambda: _check_nvidia_capabilities(env, sandbox)),
        ("gpu-node-inaccessible", lambda: _check_node_access(env, names, sandbox, nodes)),
        ("gpu-without-render-node", lambda: _check_render_nodes(sandbox, gpus, nodes)),
        ("gpu-no-kernel-driver", lambda: _check_unbound(gpus)),
        (
            "nvidia-no-device-nodes",
            lambda: _check_nvidia_nodes(env, sandbox, gpus, nodes, nvidia),
        ),
        ("wsl-detected-info", lambda: _check_wsl(sandbox)),
    )
    findings: list[Finding] = []
    for code, check in checks:
        findings.extend(_guard(errors, code, check, []))

    facts: dict[str, Any] = {
        "os": os_info,
        "kernel": kernel,
        "architecture": env.machine,
        "python": _python(),
        "identity": identity,
        "sandbox": sandbox.to_fact(),
        "gpus": [g.to_fact() for g in gpus],
        "device_nodes": [n.to_fact() for n in nodes],
        "nvidia": nvidia.to_fact(),
    }
    if errors:
        facts["collection_errors"] = errors
    return EnvironmentScan(facts=facts, findings=tuple(findings))
