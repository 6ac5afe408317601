"""The environment scan against fixture machines built in tmp_path, plus one real-machine smoke.

Fixture device nodes are real character devices made with mknod in tmp_path (never in /dev), with
the kernel's DRM and NVIDIA numbers, when the suite runs as root (it does in CI); only a non-root
run falls back to regular files, which the scan's access rules treat alike.  Ownership is
whatever the test process gets, so identities are chosen relative to the files' real owner.
"""

from __future__ import annotations

import json
import os
import stat
import struct
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vkdoctor.engine.env import Env
from vkdoctor.report.codes import CodeInfo
from vkdoctor.report.model import Finding, Severity
from vkdoctor.system import environment
from vkdoctor.system.environment import (
    ACL_GROUP,
    ACL_GROUP_OBJ,
    ACL_MASK,
    ACL_OTHER,
    ACL_USER,
    ACL_USER_OBJ,
    CODES,
    EnvironmentScan,
    acl_allows,
    collect_environment,
    node_access,
    parse_posix_acl,
)

SLOT = "0000:03:00.0"
RENDER_GID = 105


def _device_number(name: str) -> int:
    """The kernel's numbers for a node name: DRM is major 226 (cardN = N, renderDN = N), the
    NVIDIA driver 195 (nvidiaN = N, nvidiactl 255, nvidia-modeset 254)."""
    if name.startswith("renderD"):
        return os.makedev(226, int(name.removeprefix("renderD")))
    if name.startswith("card"):
        return os.makedev(226, int(name.removeprefix("card")))
    nvidia = {"nvidiactl": 255, "nvidia-modeset": 254}
    if name in nvidia:
        return os.makedev(195, nvidia[name])
    if name.removeprefix("nvidia").isdigit():
        return os.makedev(195, int(name.removeprefix("nvidia")))
    return os.makedev(240, 0)  # a dynamic major, as nvidia-uvm gets


class Machine:
    """A fake machine under a root directory: files, PCI devices, device nodes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "proc").mkdir(parents=True, exist_ok=True)

    def p(self, logical: str) -> Path:
        return self.root / logical.lstrip("/")

    def write(self, logical: str, content: str | bytes = "", mode: int | None = None) -> Path:
        path = self.p(logical)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        if mode is not None:
            os.chmod(path, mode)
        return path

    def proc(self, rel: str, content: str | bytes) -> Path:
        return self.write("/proc/" + rel, content)

    def gpu(
        self,
        slot: str = SLOT,
        vendor: str = "0x1002",
        device: str = "0x73bf",
        pci_class: str = "0x030000",
        driver: str | None = "amdgpu",
        boot_vga: str | None = "1",
        drm: Iterable[str] | None = ("card0", "renderD128"),
    ) -> Path:
        base = f"/sys/bus/pci/devices/{slot}"
        self.write(f"{base}/class", pci_class + "\n")
        self.write(f"{base}/vendor", vendor + "\n")
        self.write(f"{base}/device", device + "\n")
        if boot_vga is not None:
            self.write(f"{base}/boot_vga", boot_vga + "\n")
        if driver is not None:
            target = self.p(f"/sys/bus/pci/drivers/{driver}")
            target.mkdir(parents=True, exist_ok=True)
            # Relative, as in real sysfs: ../../../bus/pci/drivers/<name>
            self.p(base + "/driver").symlink_to(f"../../drivers/{driver}")
        if drm is not None:
            self.p(base + "/drm").mkdir(parents=True, exist_ok=True)
            for name in drm:
                self.p(f"{base}/drm/{name}").mkdir()
        return self.p(base)

    def node(self, logical: str, mode: int = 0o660, gid: int | None = None) -> Path:
        path = self.p(logical)
        if os.geteuid() == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.mknod(path, stat.S_IFCHR | mode, _device_number(path.name))
            os.chmod(path, mode)  # mknod's mode passes through the umask
        else:
            self.write(logical, "", mode)
        if gid is None and os.geteuid() == 0:
            # As root every file would belong to group 0, which the scan rightly never suggests
            # joining; give nodes a realistic group like udev does.
            gid = RENDER_GID
        if gid is not None and os.stat(path).st_gid != gid:
            try:
                os.chown(path, -1, gid)
            except OSError:
                pytest.skip(f"cannot give a fixture node group {gid} as uid {os.geteuid()}")
        return path

    def groups_file(self, **groups: int) -> None:
        self.write("/etc/group", "".join(f"{n}:x:{g}:\n" for n, g in groups.items()))

    def passwd(self, **users: int) -> None:
        self.write(
            "/etc/passwd", "".join(f"{n}:x:{u}:{u}::/home/{n}:/bin/sh\n" for n, u in users.items())
        )

    def env(
        self,
        environ: dict[str, str] | None = None,
        *,
        euid: int = 1000,
        egid: int = 1000,
        groups: tuple[int, ...] = (),
    ) -> Env:
        return Env(
            environ=environ or {},
            root=self.root,
            procfs=self.root / "proc",
            uid=euid,
            euid=euid,
            gid=egid,
            egid=egid,
            groups=groups,
            machine="x86_64",
        )


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    m = Machine(tmp_path)
    m.write("/etc/os-release", 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12"\n')
    m.proc("sys/kernel/osrelease", "6.1.0-18-amd64\n")
    m.proc("1/cgroup", "0::/init.scope\n")
    return m


def _owner(path: Path) -> tuple[int, int]:
    st_ = os.stat(path)
    return st_.st_uid, st_.st_gid


def _healthy(machine: Machine) -> Env:
    """An AMD GPU with its render node, the user in the node's group."""
    machine.gpu()
    render = machine.node("/dev/dri/renderD128", 0o660)
    machine.node("/dev/dri/card0", 0o660)
    machine.p("/dev/dri/by-path").mkdir()
    uid, gid = _owner(render)
    machine.groups_file(render=gid)
    machine.passwd(alice=uid + 1)
    return machine.env(euid=uid + 1, egid=gid + 1, groups=(gid,))


def _codes(scan: EnvironmentScan) -> list[str]:
    return [f.code for f in scan.findings]


def _only(scan: EnvironmentScan, code: str) -> Finding:
    matching = [f for f in scan.findings if f.code == code]
    assert len(matching) == 1, _codes(scan)
    return matching[0]


# --- healthy machine ---------------------------------------------------------------------------


def test_healthy_machine_has_no_findings_and_full_facts(machine: Machine) -> None:
    env = _healthy(machine)
    scan = collect_environment(env)
    assert scan.findings == ()
    facts = scan.facts
    assert list(facts) == [
        "os",
        "kernel",
        "architecture",
        "python",
        "identity",
        "sandbox",
        "gpus",
        "device_nodes",
        "nvidia",
    ]
    assert facts["os"]["id"] == "debian" and facts["os"]["version_id"] == "12"
    assert facts["kernel"] == {"release": "6.1.0-18-amd64"}
    assert facts["architecture"] == "x86_64"
    assert facts["identity"]["user"] == "alice"
    assert facts["sandbox"] == {"container": False, "kinds": [], "evidence": []}
    assert facts["gpus"] == [
        {
            "slot": SLOT,
            "class": "0x030000",
            "kind": "vga",
            "vendor_id": "1002",
            "device_id": "73bf",
            "vendor": "AMD",
            "virtual": False,
            "driver": "amdgpu",
            "boot_vga": True,
            "drm_nodes": ["card0", "renderD128"],
            "nvidia_uuid": None,
            "nvidia_minor": None,
        }
    ]
    nodes = {n["path"]: n for n in facts["device_nodes"]}
    assert list(nodes) == ["/dev/dri/card0", "/dev/dri/renderD128"]  # by-path dir skipped
    render = nodes["/dev/dri/renderD128"]
    assert render["type"] == "render"
    assert render["mode"] == "0660"
    assert render["group"] == "render"
    assert render["can_open_rw"] is True and render["access_via"] == "group"
    assert render["pci_slot"] == SLOT
    if os.geteuid() == 0:
        assert render["file_type"] == "char"
        assert (render["major"], render["minor"]) == (226, 128)
    assert facts["nvidia"] == {
        "kernel_module_version": None,
        "kernel_module_open": None,
        "version_source": None,
        "container_env": {},
    }


def test_facts_are_json_and_deterministic(machine: Machine) -> None:
    env = _healthy(machine)
    machine.gpu(
        slot="0000:00:02.0",
        vendor="0x8086",
        device="0x46a6",
        driver="i915",
        drm=["card1", "renderD129"],
    )
    machine.node("/dev/dri/renderD129")
    machine.node("/dev/dri/card1")
    first = json.dumps(collect_environment(env).to_dict(), sort_keys=False)
    second = json.dumps(collect_environment(env).to_dict(), sort_keys=False)
    assert first == second
    facts = json.loads(first)["facts"]
    assert [g["slot"] for g in facts["gpus"]] == ["0000:00:02.0", SLOT]
    assert [n["path"] for n in facts["device_nodes"]] == [
        "/dev/dri/card0",
        "/dev/dri/card1",
        "/dev/dri/renderD128",
        "/dev/dri/renderD129",
    ]


def test_non_display_pci_devices_are_ignored(machine: Machine) -> None:
    machine.gpu(slot="0000:00:1f.3", pci_class="0x040300", driver="snd_hda_intel", drm=None)
    machine.gpu(
        slot="0000:00:03.0", pci_class="0x038000", vendor="0x10de", driver="nvidia", drm=None
    )
    gpus = collect_environment(machine.env()).facts["gpus"]
    assert [(g["slot"], g["kind"]) for g in gpus] == [("0000:00:03.0", "display")]


# --- access rules --------------------------------------------------------------------------------


def _ident(euid: int, egid: int, groups: tuple[int, ...] = ()) -> Env:
    return Env(environ={}, euid=euid, uid=euid, egid=egid, gid=egid, groups=groups)


@pytest.mark.parametrize(
    ("mode", "env", "expected"),
    [
        (0o600, _ident(10, 99), (True, "owner")),
        (0o060, _ident(10, 20), (False, "owner")),  # owner class wins even if group could
        (0o060, _ident(11, 20), (True, "group")),
        (0o060, _ident(11, 99, (5, 20)), (True, "group")),
        (0o040, _ident(11, 20), (False, "group")),
        (0o606, _ident(11, 20), (False, "group")),  # in the group: "other" bits do not apply
        (0o666, _ident(11, 21), (True, "other")),
        (0o664, _ident(11, 21), (False, "other")),
        (0o000, _ident(0, 0), (True, "root")),
    ],
)
def test_node_access_mode_bits(mode: int, env: Env, expected: tuple[bool, str]) -> None:
    assert node_access(mode, 10, 20, env) == expected


def _acl_bytes(*entries: tuple[int, int, int]) -> bytes:
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)


_NOID = 0xFFFFFFFF
_UACCESS_ACL = (
    (ACL_USER_OBJ, 6, _NOID),
    (ACL_USER, 6, 1000),
    (ACL_GROUP_OBJ, 6, _NOID),
    (ACL_MASK, 6, _NOID),
    (ACL_OTHER, 0, _NOID),
)


def test_parse_posix_acl() -> None:
    assert parse_posix_acl(_acl_bytes(*_UACCESS_ACL)) == _UACCESS_ACL
    assert parse_posix_acl(b"") is None
    assert parse_posix_acl(b"\x02\x00\x00\x00\x01") is None  # truncated entry
    assert parse_posix_acl(struct.pack("<I", 1) + b"\x00" * 8) is None  # wrong version
    assert parse_posix_acl(struct.pack("<I", 2)) is None  # no entries


def test_acl_rules() -> None:
    # logind's uaccess entry lets the seat user in although mode is 0660 root:render.
    assert acl_allows(_UACCESS_ACL, 0, 105, 1000, frozenset({1000}))
    assert not acl_allows(_UACCESS_ACL, 0, 105, 1001, frozenset({1001}))
    assert acl_allows(_UACCESS_ACL, 0, 105, 1001, frozenset({105}))
    masked = (*_UACCESS_ACL[:3], (ACL_MASK, 4, _NOID), _UACCESS_ACL[4])
    assert not acl_allows(masked, 0, 105, 1000, frozenset({1000}))  # mask removes write
    named_group = (
        (ACL_USER_OBJ, 6, _NOID),
        (ACL_GROUP_OBJ, 0, _NOID),
        (ACL_GROUP, 6, 44),
        (ACL_MASK, 6, _NOID),
        (ACL_OTHER, 6, _NOID),
    )
    assert acl_allows(named_group, 0, 105, 1000, frozenset({44}))
    # Matching a group entry that denies excludes the "other" entry.
    assert not acl_allows(named_group, 0, 105, 1000, frozenset({105}))
    assert acl_allows(named_group, 0, 105, 1000, frozenset({7}))
    env = _ident(1000, 1000)
    assert node_access(0o660, 0, 105, env, _UACCESS_ACL) == (True, "acl")


def test_real_acl_xattr_is_honoured(machine: Machine) -> None:
    render = machine.node("/dev/dri/renderD128", 0o660)
    uid, gid = _owner(render)
    stranger = uid + 7
    acl = (
        (ACL_USER_OBJ, 6, _NOID),
        (ACL_USER, 6, stranger),
        (ACL_GROUP_OBJ, 6, _NOID),
        (ACL_MASK, 6, _NOID),
        (ACL_OTHER, 0, _NOID),
    )
    try:
        os.setxattr(render, "system.posix_acl_access", _acl_bytes(*acl))
    except OSError as exc:
        pytest.skip(f"filesystem without POSIX ACLs: {exc}")
    env = machine.env(euid=stranger, egid=gid + 3)
    node = collect_environment(env).facts["device_nodes"][0]
    assert (node["can_open_rw"], node["access_via"]) == (True, "acl")
    other = collect_environment(machine.env(euid=stranger + 1, egid=gid + 3))
    assert "gpu-node-inaccessible" in _codes(other)


# --- gpu-node-inaccessible -----------------------------------------------------------------------


def test_render_node_not_in_group(machine: Machine) -> None:
    _healthy(machine)
    uid, gid = _owner(machine.p("/dev/dri/renderD128"))
    env = machine.env(euid=uid + 1, egid=gid + 1, groups=())
    finding = _only(collect_environment(env), "gpu-node-inaccessible")
    assert finding.severity is Severity.WARN
    assert finding.summary == (
        f"/dev/dri/renderD128 is not readable and writable by uid {uid + 1} (alice)"
    )
    assert finding.remedy is not None
    assert finding.remedy.commands == (
        "sudo usermod -aG render alice",
        "ls -l /dev/dri/renderD128",
    )
    assert finding.evidence["nodes"] == [
        {
            "path": "/dev/dri/renderD128",
            "type": "render",
            "mode": "0660",
            "uid": uid,
            "gid": gid,
            "group": "render",
        }
    ]


def test_render_node_in_container_suggests_group_add(machine: Machine) -> None:
    _healthy(machine)
    machine.write("/.dockerenv")
    uid, gid = _owner(machine.p("/dev/dri/renderD128"))
    finding = _only(
        collect_environment(machine.env(euid=uid + 1, egid=gid + 1)), "gpu-node-inaccessible"
    )
    assert finding.remedy is not None
    assert finding.remedy.commands[0] == f"docker run --device /dev/dri --group-add {gid} <image>"


def test_card_node_alone_does_not_matter(machine: Machine) -> None:
    _healthy(machine)
    os.chmod(machine.p("/dev/dri/card0"), 0o600)
    uid, gid = _owner(machine.p("/dev/dri/card0"))
    scan = collect_environment(machine.env(euid=uid + 1, egid=gid + 1, groups=(gid,)))
    card = scan.facts["device_nodes"][0]
    assert card["path"] == "/dev/dri/card0" and card["can_open_rw"] is False
    assert scan.findings == ()


def test_root_group_is_never_suggested(machine: Machine) -> None:
    render = machine.node("/dev/dri/renderD128", 0o600, gid=0)
    uid, gid = _owner(render)
    machine.groups_file(root=0)
    finding = _only(
        collect_environment(machine.env(euid=uid + 1, egid=gid + 1)), "gpu-node-inaccessible"
    )
    assert finding.remedy is not None
    assert not any("usermod -aG root" in c for c in finding.remedy.commands)


def test_nvidia_nodes_inaccessible_are_grouped(machine: Machine) -> None:
    for name in ("nvidiactl", "nvidia0", "nvidia-modeset", "nvidia-uvm-tools"):
        machine.node(f"/dev/{name}", 0o600)
    machine.p("/dev/nvidia-caps").mkdir()
    uid, gid = _owner(machine.p("/dev/nvidia0"))
    scan = collect_environment(machine.env(euid=uid + 1, egid=gid + 1))
    finding = _only(scan, "gpu-node-inaccessible")
    paths = [n["path"] for n in finding.evidence["nodes"]]
    assert paths == ["/dev/nvidia0", "/dev/nvidia-modeset", "/dev/nvidiactl"]  # uvm-tools: CUDA
    assert finding.summary.startswith("3 GPU device nodes are not readable and writable")
    types = {n["path"]: n["type"] for n in scan.facts["device_nodes"]}
    assert types == {
        "/dev/nvidia-modeset": "nvidia-modeset",
        "/dev/nvidia-uvm-tools": "nvidia-uvm-tools",
        "/dev/nvidia0": "nvidia-gpu",
        "/dev/nvidiactl": "nvidia-control",
    }


def test_dangling_render_node_link(machine: Machine) -> None:
    machine.p("/dev/dri").mkdir(parents=True)
    machine.p("/dev/dri/renderD128").symlink_to("/nonexistent/renderD128")
    scan = collect_environment(machine.env(euid=0, egid=0))
    node = scan.facts["device_nodes"][0]
    assert node["file_type"] == "broken-link" and node["can_open_rw"] is False
    assert "dangling link" in _only(scan, "gpu-node-inaccessible").remedy.text  # type: ignore[union-attr]


def test_root_can_open_everything(machine: Machine) -> None:
    machine.node("/dev/dri/renderD128", 0o000)
    scan = collect_environment(machine.env(euid=0, egid=0))
    assert scan.facts["device_nodes"][0]["access_via"] == "root"
    assert scan.findings == ()


# --- gpu-without-render-node ---------------------------------------------------------------------


def test_container_without_dev_dri(machine: Machine) -> None:
    machine.gpu()
    machine.write("/.dockerenv")
    finding = _only(collect_environment(machine.env()), "gpu-without-render-node")
    assert finding.severity is Severity.WARN
    assert finding.summary == f"AMD GPU 1002:73bf at {SLOT} (amdgpu) has no render node in /dev/dri"
    assert finding.evidence["missing"] == ["/dev/dri/renderD128"]
    assert finding.remedy is not None
    assert finding.remedy.commands == ("docker run --device /dev/dri <image>",)


def test_podman_container_without_dev_dri(machine: Machine) -> None:
    machine.gpu()
    machine.write("/run/.containerenv", 'engine="podman-4.3.1"\n')
    finding = _only(collect_environment(machine.env()), "gpu-without-render-node")
    assert finding.remedy is not None
    assert finding.remedy.commands == ("podman run --device /dev/dri <image>",)


def test_host_without_dev_dri_suggests_udev(machine: Machine) -> None:
    machine.gpu(vendor="0x8086", driver="i915")
    finding = _only(collect_environment(machine.env()), "gpu-without-render-node")
    assert finding.remedy is not None
    assert finding.remedy.commands[0] == "sudo udevadm trigger --subsystem-match=drm --action=add"


def test_render_node_for_another_gpu_does_not_hide_the_missing_one(machine: Machine) -> None:
    machine.gpu()
    machine.gpu(slot="0000:00:02.0", vendor="0x8086", driver="i915", drm=["card1", "renderD129"])
    machine.node("/dev/dri/renderD129", 0o666)
    scan = collect_environment(machine.env())
    finding = _only(scan, "gpu-without-render-node")
    assert finding.evidence["gpu"] == SLOT


def test_without_sysfs_drm_any_render_node_counts(machine: Machine) -> None:
    machine.gpu(drm=None)
    assert "gpu-without-render-node" in _codes(collect_environment(machine.env()))
    machine.node("/dev/dri/renderD128", 0o666)
    assert "gpu-without-render-node" not in _codes(collect_environment(machine.env()))


@pytest.mark.parametrize("driver", ["nvidia", "bochs-drm", "vfio-pci"])
def test_drivers_without_render_nodes_are_not_flagged(machine: Machine, driver: str) -> None:
    machine.gpu(vendor="0x10de", driver=driver, drm=[])
    assert "gpu-without-render-node" not in _codes(collect_environment(machine.env()))


# --- gpu-no-kernel-driver ------------------------------------------------------------------------


def test_unbound_amd_gpu(machine: Machine) -> None:
    machine.gpu(driver=None, drm=None)
    finding = _only(collect_environment(machine.env()), "gpu-no-kernel-driver")
    assert finding.severity is Severity.WARN
    assert finding.summary == f"AMD GPU 1002:73bf at {SLOT} has no kernel driver bound"
    assert finding.remedy is not None
    assert finding.remedy.commands == (
        f"lspci -nnk -s {SLOT}",
        "sudo modprobe amdgpu",
        "sudo dmesg | grep -iE 'drm|amdgpu'",
    )


def test_unbound_virtual_adapter_is_info(machine: Machine) -> None:
    machine.gpu(vendor="0x1234", device="0x1111", driver=None, drm=None)
    finding = _only(collect_environment(machine.env()), "gpu-no-kernel-driver")
    assert finding.severity is Severity.INFO


def test_vfio_bound_gpu_is_info(machine: Machine) -> None:
    machine.gpu(vendor="0x10de", driver="vfio-pci", drm=None)
    finding = _only(collect_environment(machine.env()), "gpu-no-kernel-driver")
    assert finding.severity is Severity.INFO
    assert "vfio-pci" in finding.summary


def test_driver_as_dangling_link_still_names_the_driver(machine: Machine) -> None:
    base = machine.gpu(driver=None, drm=None)
    (base / "driver").symlink_to("../../drivers/amdgpu")  # target dir absent
    scan = collect_environment(machine.env())
    assert scan.facts["gpus"][0]["driver"] == "amdgpu"
    assert "gpu-no-kernel-driver" not in _codes(scan)


# --- nvidia-no-device-nodes ----------------------------------------------------------------------


def _nvidia_gpu(machine: Machine, driver: str = "nvidia") -> None:
    machine.gpu(vendor="0x10de", device="0x2684", driver=driver, drm=["card0"])


def test_nvidia_gpu_in_container_without_nodes(machine: Machine) -> None:
    _nvidia_gpu(machine)
    machine.write("/.dockerenv")
    env = machine.env({"NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "all"})
    finding = _only(collect_environment(env), "nvidia-no-device-nodes")
    assert finding.severity is Severity.WARN
    assert finding.evidence["missing"] == ["/dev/nvidiactl", "/dev/nvidia<N>"]
    assert finding.remedy is not None
    assert finding.remedy.commands[0] == "docker run --gpus all <image>"


def test_nvidia_gpu_on_host_without_nodes_is_info(machine: Machine) -> None:
    _nvidia_gpu(machine)
    machine.node("/dev/nvidiactl", 0o666)
    finding = _only(collect_environment(machine.env()), "nvidia-no-device-nodes")
    assert finding.severity is Severity.INFO
    assert finding.evidence["missing"] == ["/dev/nvidia<N>"]
    assert finding.remedy is not None
    assert finding.remedy.commands == ("sudo nvidia-modprobe -c 0 -u", "nvidia-smi")


def test_nvidia_nodes_present(machine: Machine) -> None:
    _nvidia_gpu(machine)
    machine.node("/dev/nvidiactl", 0o666)
    machine.node("/dev/nvidia0", 0o666)
    assert collect_environment(machine.env()).findings == ()


def test_nouveau_needs_no_nvidia_nodes(machine: Machine) -> None:
    _nvidia_gpu(machine, driver="nouveau")
    machine.node("/dev/dri/renderD128", 0o666)
    assert collect_environment(machine.env()).findings == ()


def test_visible_devices_without_hardware_is_info(machine: Machine) -> None:
    machine.write("/.dockerenv")
    env = machine.env({"NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "all"})
    finding = _only(collect_environment(env), "nvidia-no-device-nodes")
    assert finding.severity is Severity.INFO
    assert finding.summary.startswith("NVIDIA_VISIBLE_DEVICES=all but")


def test_visible_devices_with_module_is_warn(machine: Machine) -> None:
    machine.write("/.dockerenv")
    machine.proc(
        "driver/nvidia/version", "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.90.07  Fri\n"
    )
    env = machine.env({"NVIDIA_VISIBLE_DEVICES": "0", "NVIDIA_DRIVER_CAPABILITIES": "all"})
    assert _only(collect_environment(env), "nvidia-no-device-nodes").severity is Severity.WARN


@pytest.mark.parametrize("value", ["void", "none", "", " VOID "])
def test_visible_devices_meaning_no_gpu(machine: Machine, value: str) -> None:
    machine.write("/.dockerenv")
    scan = collect_environment(machine.env({"NVIDIA_VISIBLE_DEVICES": value}))
    assert scan.findings == ()


def test_visible_devices_outside_container_is_ignored(machine: Machine) -> None:
    scan = collect_environment(machine.env({"NVIDIA_VISIBLE_DEVICES": "all"}))
    assert scan.findings == ()


# --- nvidia-container-no-graphics ----------------------------------------------------------------


def _nvidia_container(machine: Machine) -> None:
    _nvidia_gpu(machine)
    machine.write("/.dockerenv")
    machine.node("/dev/nvidiactl", 0o666)
    machine.node("/dev/nvidia0", 0o666)


@pytest.mark.parametrize(
    ("caps", "fires"),
    [
        (None, True),
        ("", True),
        ("compute,utility", True),
        ("utility", True),
        ("graphics,compute,utility", False),
        ("all", False),
        (" Compute , GRAPHICS ", False),
    ],
)
def test_driver_capabilities(machine: Machine, caps: str | None, fires: bool) -> None:
    _nvidia_container(machine)
    environ = {"NVIDIA_VISIBLE_DEVICES": "all"}
    if caps is not None:
        environ["NVIDIA_DRIVER_CAPABILITIES"] = caps
    scan = collect_environment(machine.env(environ))
    assert ("nvidia-container-no-graphics" in _codes(scan)) is fires
    assert ("nvidia-no-device-nodes" in _codes(scan)) is False


def test_driver_capabilities_finding_content(machine: Machine) -> None:
    _nvidia_container(machine)
    env = machine.env(
        {"NVIDIA_VISIBLE_DEVICES": "GPU-1234", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"}
    )
    finding = _only(collect_environment(env), "nvidia-container-no-graphics")
    assert finding.severity is Severity.WARN
    assert finding.evidence["effective_capabilities"] == ["compute", "utility"]
    assert finding.remedy is not None
    assert finding.remedy.commands == (
        "docker run --gpus all -e NVIDIA_DRIVER_CAPABILITIES=graphics,compute,utility <image>",
        "sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml",
    )
    unset = _only(
        collect_environment(machine.env({"NVIDIA_VISIBLE_DEVICES": "all"})),
        "nvidia-container-no-graphics",
    )
    assert "unset (toolkit default: utility)" in unset.summary


def test_driver_capabilities_ignored_outside_container(machine: Machine) -> None:
    _nvidia_gpu(machine)
    machine.node("/dev/nvidiactl", 0o666)
    machine.node("/dev/nvidia0", 0o666)
    scan = collect_environment(machine.env({"NVIDIA_VISIBLE_DEVICES": "all"}))
    assert scan.findings == ()


# --- sandbox detection ---------------------------------------------------------------------------


def _sandbox(machine: Machine, environ: dict[str, str] | None = None) -> dict[str, object]:
    return collect_environment(machine.env(environ)).facts["sandbox"]


def test_docker_detection(machine: Machine) -> None:
    machine.write("/.dockerenv")
    assert _sandbox(machine) == {
        "container": True,
        "kinds": ["docker"],
        "evidence": [{"kind": "docker", "source": "/.dockerenv", "value": None}],
    }


def test_podman_detection_reads_engine(machine: Machine) -> None:
    machine.write("/run/.containerenv", 'engine="podman-4.3.1"\nname="box"\nrootless=1\n')
    sandbox = _sandbox(machine)
    assert sandbox["kinds"] == ["podman"] and sandbox["container"] is True
    assert sandbox["evidence"][0]["value"] == "podman-4.3.1"  # type: ignore[index]


def test_kubernetes_detection(machine: Machine) -> None:
    machine.proc("1/cgroup", "12:memory:/kubepods/burstable/pod1234/abcd\n")
    sandbox = _sandbox(machine, {"KUBERNETES_SERVICE_HOST": "10.0.0.1"})
    assert sandbox["kinds"] == ["kubernetes"]
    sources = [e["source"] for e in sandbox["evidence"]]  # type: ignore[union-attr]
    assert sources == ["KUBERNETES_SERVICE_HOST", "/proc/1/cgroup"]


@pytest.mark.parametrize(
    ("cgroup", "kinds"),
    [
        ("12:devices:/docker/0123abcd\n0::/\n", ["docker"]),
        ("0::/system.slice/containerd.service\n", ["containerd"]),
        ("1:name=systemd:/machine.slice/libpod-0123.scope\n", ["podman"]),
        ("0::/lxc.payload.box\n", ["lxc"]),
        ("0::/\n", []),
        ("0::/init.scope\n", []),
        ("\x00\xffgarbage without colons docker\n", ["docker"]),
    ],
)
def test_cgroup_markers(machine: Machine, cgroup: str, kinds: list[str]) -> None:
    machine.proc("1/cgroup", cgroup)
    sandbox = _sandbox(machine)
    assert sandbox["kinds"] == kinds
    assert sandbox["container"] is bool(kinds)


def test_flatpak_is_a_sandbox_not_a_container(machine: Machine) -> None:
    machine.write(
        "/.flatpak-info",
        "[Application]\nname=org.example.App\nruntime=runtime/org.freedesktop.Platform/x86_64/23.08\n",
    )
    sandbox = _sandbox(machine, {"FLATPAK_ID": "org.example.App"})
    assert sandbox["container"] is False
    assert sandbox["kinds"] == ["flatpak"]
    assert [e["value"] for e in sandbox["evidence"]] == [  # type: ignore[union-attr]
        "runtime/org.freedesktop.Platform/x86_64/23.08",
        "org.example.App",
    ]


def test_snap_detection(machine: Machine) -> None:
    sandbox = _sandbox(machine, {"SNAP": "/snap/steam/123", "SNAP_NAME": "steam"})
    assert sandbox["kinds"] == ["snap"] and sandbox["container"] is False
    assert len(sandbox["evidence"]) == 2  # type: ignore[arg-type]


def test_pressure_vessel_detection(machine: Machine) -> None:
    assert _sandbox(machine, {"PRESSURE_VESSEL_RUNTIME": "scout"})["kinds"] == ["pressure-vessel"]
    machine.p("/usr/lib/pressure-vessel/overrides").mkdir(parents=True)
    sandbox = _sandbox(machine)
    assert sandbox["kinds"] == ["pressure-vessel"]
    assert sandbox["evidence"][0]["source"] == "/usr/lib/pressure-vessel"  # type: ignore[index]


@pytest.mark.parametrize("release", ["5.15.153.1-microsoft-standard-WSL2", "4.4.0-19041-Microsoft"])
def test_wsl_from_kernel_release(machine: Machine, release: str) -> None:
    machine.proc("sys/kernel/osrelease", release + "\n")
    scan = collect_environment(machine.env())
    assert scan.facts["sandbox"]["kinds"] == ["wsl"]
    assert scan.facts["sandbox"]["container"] is False
    finding = _only(scan, "wsl-detected-info")
    assert finding.severity is Severity.INFO
    assert finding.remedy is not None and "dzn" in finding.remedy.text


def test_wsl_from_dxg(machine: Machine) -> None:
    machine.node("/dev/dxg", 0o666)
    finding = _only(collect_environment(machine.env()), "wsl-detected-info")
    assert finding.evidence["evidence"] == [{"kind": "wsl", "source": "/dev/dxg", "value": None}]


def test_no_wsl_finding_on_plain_linux(machine: Machine) -> None:
    assert "wsl-detected-info" not in _codes(collect_environment(machine.env()))


# --- NVIDIA facts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "version", "is_open"),
    [
        (
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.90.07  "
            "Fri May 31 09:35:42 UTC 2024\n"
            "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n",
            "550.90.07",
            False,
        ),
        (
            "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  560.35.03  Release Build\n",
            "560.35.03",
            True,
        ),
        ("\x00\x01 nonsense", None, None),
    ],
)
def test_nvidia_module_version(
    machine: Machine, text: str, version: str | None, is_open: bool | None
) -> None:
    machine.proc("driver/nvidia/version", text)
    nvidia = collect_environment(machine.env()).facts["nvidia"]
    assert nvidia["kernel_module_version"] == version
    assert nvidia["kernel_module_open"] is is_open


def test_nvidia_module_version_from_sysfs(machine: Machine) -> None:
    machine.write("/sys/module/nvidia/version", "535.183.01\n")
    nvidia = collect_environment(machine.env()).facts["nvidia"]
    assert nvidia["kernel_module_version"] == "535.183.01"
    assert nvidia["version_source"] == "/sys/module/nvidia/version"


def test_nvidia_container_env_facts(machine: Machine) -> None:
    environ = {
        "NVIDIA_REQUIRE_CUDA": "cuda>=12.2",
        "NVIDIA_VISIBLE_DEVICES": "all",
        "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
        "NVIDIA_PRODUCT_NAME": "CUDA",
        "PATH": "/usr/bin",
    }
    nvidia = collect_environment(machine.env(environ)).facts["nvidia"]
    assert list(nvidia["container_env"].items()) == [
        ("NVIDIA_DRIVER_CAPABILITIES", "compute,utility"),
        ("NVIDIA_REQUIRE_CUDA", "cuda>=12.2"),
        ("NVIDIA_VISIBLE_DEVICES", "all"),
    ]


# --- odd input -----------------------------------------------------------------------------------


def test_empty_root_means_unknown_everywhere(tmp_path: Path) -> None:
    env = Env(environ={}, root=tmp_path, procfs=tmp_path / "proc", euid=1000, egid=1000)
    scan = collect_environment(env)
    assert scan.findings == ()
    assert "collection_errors" not in scan.facts
    assert scan.facts["os"]["id"] is None
    assert scan.facts["kernel"] == {"release": None}
    assert scan.facts["gpus"] == [] and scan.facts["device_nodes"] == []


def test_garbage_sysfs_and_procfs(machine: Machine) -> None:
    base = f"/sys/bus/pci/devices/{SLOT}"
    machine.write(f"{base}/class", b"\x03\x00\x00 not hex")  # unreadable class: not a GPU
    other = "/sys/bus/pci/devices/0000:04:00.0"
    machine.write(f"{other}/class", "0x030200\n")
    machine.write(f"{other}/vendor", "zzzz\n")
    machine.p(f"{other}/device").mkdir(parents=True)  # a directory where a file should be
    machine.write(f"{other}/boot_vga", "maybe\n")
    machine.write(f"{other}/driver", "not a link\n")  # a regular file, not a symlink
    machine.write(f"{other}/drm", "not a dir")
    machine.proc("sys/kernel/osrelease", b"\xff\xfe\x00")
    machine.p("/proc/1/cgroup").unlink()
    os.mkfifo(machine.p("/proc/1/cgroup"))  # must not block
    machine.write("/dev/dri", "a file instead of a directory")
    machine.write("/etc/group", b"\x00:::\nrender:x:notanumber:\n::\n")
    scan = collect_environment(machine.env())
    assert "collection_errors" not in scan.facts
    assert scan.facts["gpus"] == [
        {
            "slot": "0000:04:00.0",
            "class": "0x030200",
            "kind": "3d",
            "vendor_id": None,
            "device_id": None,
            "vendor": None,
            "virtual": False,
            "driver": None,
            "boot_vga": None,
            "drm_nodes": None,
            "nvidia_uuid": None,
            "nvidia_minor": None,
        }
    ]
    assert scan.facts["kernel"]["release"] == "\ufffd\ufffd\x00"
    assert scan.facts["sandbox"]["kinds"] == []
    assert scan.facts["device_nodes"] == []
    finding = _only(scan, "gpu-no-kernel-driver")
    assert (
        finding.summary == "unknown vendor GPU ????:???? at 0000:04:00.0 has no kernel driver bound"
    )
    json.dumps(scan.to_dict())


def test_out_of_range_class_is_ignored(machine: Machine) -> None:
    machine.gpu(pci_class="0x1030000", drm=None)
    assert collect_environment(machine.env()).facts["gpus"] == []


def test_section_crash_is_recorded_not_raised(
    machine: Machine, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine.gpu(driver=None, drm=None)

    def boom(env: Env) -> list[dict[str, object]]:
        raise RuntimeError("sysfs exploded")

    monkeypatch.setattr(environment, "_gpus", boom)
    scan = collect_environment(machine.env())
    assert scan.facts["collection_errors"] == ["gpus: RuntimeError: sysfs exploded"]
    assert scan.facts["gpus"] == []
    assert scan.facts["os"]["id"] == "debian"  # other sections unaffected


_GARBAGE = st.binary(max_size=48)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cls=_GARBAGE, vendor=_GARBAGE, boot_vga=_GARBAGE, release=_GARBAGE, cgroup=_GARBAGE, nv=_GARBAGE
)
def test_arbitrary_file_contents_never_break_the_scan(
    cls: bytes, vendor: bytes, boot_vga: bytes, release: bytes, cgroup: bytes, nv: bytes
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        m = Machine(Path(tmp))
        base = f"/sys/bus/pci/devices/{SLOT}"
        m.write(f"{base}/class", cls)
        m.write(f"{base}/vendor", vendor)
        m.write(f"{base}/boot_vga", boot_vga)
        m.proc("sys/kernel/osrelease", release)
        m.proc("1/cgroup", cgroup)
        m.proc("driver/nvidia/version", nv)
        scan = collect_environment(m.env({"NVIDIA_VISIBLE_DEVICES": "all"}))
        assert "collection_errors" not in scan.facts
        json.dumps(scan.to_dict())
        assert all(f.code in CODES for f in scan.findings)


# --- the code table and the real machine ---------------------------------------------------


def test_codes_table_is_complete() -> None:
    assert set(CODES) == {
        "nvidia-container-no-graphics",
        "gpu-node-inaccessible",
        "gpu-without-render-node",
        "gpu-no-kernel-driver",
        "nvidia-no-device-nodes",
        "wsl-detected-info",
    }
    for info in CODES.values():
        assert isinstance(info, CodeInfo)
        assert info.title and info.explanation and info.causes and info.remedy


def test_every_finding_has_remedy_and_commands(machine: Machine) -> None:
    # One fixture that trips every code at once.
    machine.write("/.dockerenv")
    machine.gpu()  # no /dev/dri -> gpu-without-render-node
    machine.gpu(slot="0000:05:00.0", vendor="0x8086", driver=None, drm=None)
    machine.gpu(slot="0000:06:00.0", vendor="0x10de", driver="nvidia", drm=["card2"])
    machine.node("/dev/nvidia-modeset", 0o600)
    machine.proc("sys/kernel/osrelease", "5.15.0-microsoft-standard-WSL2\n")
    uid, gid = _owner(machine.p("/dev/nvidia-modeset"))
    env = machine.env({"NVIDIA_VISIBLE_DEVICES": "all"}, euid=uid + 1, egid=gid + 1)
    scan = collect_environment(env)
    assert sorted(_codes(scan)) == sorted(CODES)
    for finding in scan.findings:
        assert finding.remedy is not None and finding.remedy.text
        assert finding.remedy.commands, finding.code
        assert finding.summary and finding.detail
    json.dumps(scan.to_dict())


def test_real_machine_smoke() -> None:
    env = Env.current()
    scan = collect_environment(env)
    assert isinstance(scan, EnvironmentScan)
    facts = json.loads(json.dumps(scan.facts))
    assert set(facts) >= {
        "os",
        "kernel",
        "architecture",
        "python",
        "identity",
        "sandbox",
        "gpus",
        "device_nodes",
        "nvidia",
    }
    assert "collection_errors" not in facts
    assert facts["architecture"] == os.uname().machine
    assert facts["python"]["pointer_bits"] in (32, 64)
    assert isinstance(facts["sandbox"]["container"], bool)
    for gpu in facts["gpus"]:
        assert gpu["class"].startswith("0x03")
    for node in facts["device_nodes"]:
        assert node["path"].startswith("/dev/")
    assert all(f.code in CODES for f in scan.findings)


# /proc/driver/nvidia/gpus/<slot>/information as NVIDIA 580.159.04 wrote it on the lent H200.
H200_INFORMATION = (
    "Model: \t\t NVIDIA H200\nIRQ:   \t\t 41\n"
    "GPU UUID: \t GPU-96af4e23-f470-d103-a9b2-5136def51cdf\nVideo BIOS: \t 96.00.a5.00.1a\n"
    "Bus Type: \t PCIe\nDMA Size: \t 52 bits\nDMA Mask: \t 0xfffffffffffff\n"
    "Bus Location: \t 0000:00:06.0\nDevice Minor: \t 0\nGPU Firmware: \t 580.159.04\n"
    "GPU Excluded:\t No\n"
)


def test_nvidia_gpu_uuid_and_minor_from_the_drivers_proc_file(machine: Machine) -> None:
    """The UUID (what NVIDIA's Vulkan driver reports as deviceUUID) and /dev/nvidiaN's N tie a
    bus GPU to its Vulkan device and its device node (issue 18)."""
    machine.gpu(slot="0000:00:06.0", vendor="0x10de", device="0x2335", driver="nvidia", drm=None)
    machine.gpu(slot="0000:00:07.0", vendor="0x10de", device="0x2335", driver="nvidia", drm=None)
    machine.proc("driver/nvidia/gpus/0000:00:06.0/information", H200_INFORMATION)
    gpus = collect_environment(machine.env()).facts["gpus"]
    assert [(g["slot"], g["nvidia_uuid"], g["nvidia_minor"]) for g in gpus] == [
        ("0000:00:06.0", "96af4e23-f470-d103-a9b2-5136def51cdf", 0),
        ("0000:00:07.0", None, None),  # no per-GPU file: the driver did not take it
    ]
