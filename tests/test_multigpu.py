"""Several devices in one machine (issue 18), as far as one machine without a second GPU allows:
two lavapipe drivers (hard links of lavapipe's library under two file names, so the real loader
enumerates two devices), a fixture sysfs with GPUs no Vulkan driver here exposes, and the
sibling comparison on typed kernel results.  Expected device groups come from vulkaninfo."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import VkWorld, needs_lavapipe, probe
from tests.faultlib import lavapipe_library
from vkdoctor.engine.env import Env
from vkdoctor.engine.runner import Options, run_pipeline
from vkdoctor.kernels import siblings
from vkdoctor.kernels.peaks import Figure
from vkdoctor.kernels.run import DeviceRun, KernelRow
from vkdoctor.report.model import Severity
from vkdoctor.report.records import DeviceRecord
from vkdoctor.system import gpumatch

# --------------------------------------------------------------------------------------------
# Two lavapipe devices through the real loader


def _two_lavapipes(tmp_path: Path) -> str:
    """VK_DRIVER_FILES naming two manifests whose libraries are two names of lavapipe's."""
    library = lavapipe_library()
    manifests = []
    for name in ("a", "b"):
        target = tmp_path / f"libvulkan_lvp_{name}.so"
        try:
            os.link(library, target)
        except OSError:
            shutil.copy(library, target)  # another file system: a copy is distinct too
        manifest = tmp_path / f"lvp_{name}.json"
        body = {"library_path": str(target), "api_version": "1.3.0"}
        manifest.write_text(json.dumps({"file_format_version": "1.0.0", "ICD": body}))
        manifests.append(str(manifest))
    return os.pathsep.join(manifests)


def _vulkaninfo_groups(environ: dict[str, str]) -> list[tuple[int, int]]:
    """(physicalDevices count, subsetAllocation) of every group vulkaninfo prints."""
    if shutil.which("vulkaninfo") is None:
        pytest.skip("vulkaninfo (vulkan-tools) is not installed")
    text = subprocess.run(
        ["vulkaninfo"], env=environ, capture_output=True, text=True, timeout=60, check=False
    ).stdout
    section = text.split("Device Groups:", 1)[1]
    counts = re.findall(r"physicalDevices: count = (\d+)", section)
    subsets = re.findall(r"subsetAllocation = (\d+)", section)
    return [(int(c), int(s)) for c, s in zip(counts, subsets, strict=True)]


@needs_lavapipe
@pytest.mark.parametrize("drivers", [1, 2])
def test_device_groups_are_the_loaders(world: VkWorld, tmp_path: Path, drivers: int) -> None:
    if drivers == 2:
        world.environ["VK_DRIVER_FILES"] = _two_lavapipes(tmp_path)
    else:
        world.lavapipe()
    expected = _vulkaninfo_groups(world.environ)
    assert len(expected) == drivers  # the loader: each lavapipe device is a group of its own
    facts = probe(world.run(["instance"]), "instance").facts["device_groups"]
    assert facts["result"] == 0
    groups = facts["groups"]
    assert [(len(g["devices"]), int(g["subset_allocation"])) for g in groups] == expected
    # Every device is in exactly one group; a group of one has no peer memory to report.
    assert sorted(i for g in groups for i in g["devices"]) == list(range(drivers))
    assert all("peer_memory" not in g for g in groups)


@needs_lavapipe
def test_kernels_all_runs_each_device_and_compares_siblings(tmp_path: Path) -> None:
    """`vkdoctor kernels --device all` on two identical (lavapipe) devices: both run, and every
    kernel both verified is compared, with each device's figure as its row shows it.  CPU devices
    are one CPU measured twice, so their spread warns about nothing."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VK_")}
    environ["VK_DRIVER_FILES"] = _two_lavapipes(tmp_path)
    out = tmp_path / "k.json"
    done = subprocess.run(
        [sys.executable, "-m", "vkdoctor", "kernels", "--size", "tiny", "--json", str(out)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    facts = json.loads(out.read_text())["probes"][0]["facts"]
    runs = facts["runs"]
    assert [r["index"] for r in runs] == [0, 1]
    assert {r["device"]["name"] for r in runs} == {runs[0]["device"]["name"]}
    figures = {
        (r["index"], row["kernel"]): row["figure"]["value"]
        for r in runs
        for row in r["results"]
        if row["status"] == "ok" and row.get("figure")
    }
    both = sorted({k for _, k in figures if (0, k) in figures and (1, k) in figures})
    assert both  # copy, saxpy, ... verify on lavapipe
    compared = {c["kernel"]: c for c in facts["sibling_comparisons"]}
    assert sorted(compared) == both
    for kernel in both:
        values = compared[kernel]["values"]
        assert values == {
            "0": round(figures[(0, kernel)], 4),
            "1": round(figures[(1, kernel)], 4),
        }
    findings = json.loads(out.read_text())["probes"][0]["findings"]
    assert not [f for f in findings if f["code"] == "kernel-slower-than-siblings"]


# --------------------------------------------------------------------------------------------
# The comparison on typed results


def _run(index: int, values: dict[str, float], type_: str = "discrete-gpu") -> DeviceRun:
    device = DeviceRecord(
        index, "NVIDIA H200", type=type_, vendor_id=0x10DE, pci_address=f"0000:{index + 1:02x}:00.0"
    )
    rows = tuple(
        KernelRow(index, {"kernel": k, "status": "ok"}, Figure("bandwidth", v, None, None))
        for k, v in values.items()
    )
    return DeviceRun(index, device, preset="large", rows=rows)


def test_a_gpu_more_than_ten_percent_below_its_siblings_median_warns() -> None:
    runs = [
        _run(0, {"copy": 4000.0, "saxpy": 3000.0}),
        _run(1, {"copy": 3950.0, "saxpy": 3010.0}),
        _run(2, {"copy": 3500.0, "saxpy": 2990.0}),  # copy 11.9 % below 3975
        _run(3, {"copy": 4010.0, "saxpy": 2720.0}),  # saxpy 9.3 % below 3000: not yet
    ]
    comparisons = siblings.compare(runs)
    assert {c.kernel for c in comparisons} == {"copy", "saxpy"}
    findings = siblings.slower_findings(comparisons, runs)
    assert [f.summary for f in findings] == [
        "GPU 2 (NVIDIA H200 at 0000:03:00.0) copy: 3500.0 GB/s, 12 % below the median "
        "4000.0 GB/s of its 3 siblings"
    ]
    assert findings[0].severity is Severity.WARN
    assert findings[0].remedy is not None
    assert findings[0].remedy.commands[0] == (
        "nvidia-smi -q -d CLOCK,POWER,TEMPERATURE,PERFORMANCE -i 0000:03:00.0"
    )
    assert findings[0].evidence["siblings_median"] == 4000.0


def test_different_models_and_cpu_devices_are_not_compared_into_warnings() -> None:
    other = _run(1, {"copy": 100.0})
    other = DeviceRun(1, DeviceRecord(1, "AMD Radeon"), preset="large", rows=other.rows)
    assert siblings.compare([_run(0, {"copy": 4000.0}), other]) == ()
    cpus = [_run(0, {"copy": 10.0}, "cpu"), _run(1, {"copy": 2.0}, "cpu")]
    comparisons = siblings.compare(cpus)
    assert len(comparisons) == 1  # kept as evidence
    assert siblings.slower_findings(comparisons, cpus) == []


# --------------------------------------------------------------------------------------------
# PCI matching


def _bus(slot: str, device_id: str = "2335", uuid: str | None = None) -> gpumatch.BusGpu:
    return gpumatch.BusGpu(slot, "10de", device_id, "NVIDIA", "nvidia", nvidia_uuid=uuid)


UUID_A = "5f3c0a1e-0000-4000-8000-000000000001"
UUID_B = "5f3c0a1e-0000-4000-8000-000000000002"


def test_gpus_match_by_pci_address_then_uuid_then_ids() -> None:
    gpus = [
        _bus("0000:19:00.0"),
        _bus("0000:3b:00.0", uuid=UUID_B),
        _bus("0000:5d:00.0"),
        _bus("0000:81:00.0"),
    ]
    devices = [
        DeviceRecord(0, "H200", vendor_id=0x10DE, device_id=0x2335, pci_address="0000:19:00.0"),
        DeviceRecord(1, "H200", vendor_id=0x10DE, device_id=0x2335, device_uuid=UUID_B),
        DeviceRecord(2, "H200", vendor_id=0x10DE, device_id=0x2335),
    ]
    matches = gpumatch.match_gpus(gpus, devices)
    assert [(m.gpu.slot, m.device, m.via) for m in matches] == [
        ("0000:19:00.0", 0, "pci-bus-info"),
        ("0000:3b:00.0", 1, "uuid"),
        ("0000:5d:00.0", 2, "ids"),
        ("0000:81:00.0", None, None),
    ]


def test_nvidia_smi_list_is_parsed_without_mig_lines() -> None:
    # The first line is what `nvidia-smi -L` printed on the lent H200 (driver 580.159.04); the
    # MIG line has the layout NVIDIA documents for MIG instances under their GPU.
    text = (
        "GPU 0: NVIDIA H200 (UUID: GPU-96af4e23-f470-d103-a9b2-5136def51cdf)\n"
        "  MIG 1g.18gb     Device  0: (UUID: MIG-6a2b1f1e-0000-5000-8000-000000000000)\n"
        f"GPU 1: NVIDIA H200 (UUID: GPU-{UUID_B.upper()})\n"
    )
    assert gpumatch.parse_nvidia_smi_list(text) == (
        gpumatch.SmiGpu(0, "NVIDIA H200", "96af4e23-f470-d103-a9b2-5136def51cdf"),
        gpumatch.SmiGpu(1, "NVIDIA H200", UUID_B),
    )


def _fixture_root(tmp_path: Path) -> Path:
    """A root whose /usr, /etc, /lib... are this machine's (the loader and lavapipe are real)
    and whose /sys, /dev and /proc/driver/nvidia are the test's."""
    root = tmp_path / "root"
    root.mkdir()
    for name in os.listdir("/"):
        if name not in ("sys", "proc", "dev", "tmp", "work", "root", "home", "run"):
            (root / name).symlink_to("/" + name)
    (root / "dev").mkdir()
    proc = root / "proc"
    proc.mkdir()
    for name in os.listdir("/proc"):
        if name != "driver":
            (proc / name).symlink_to("/proc/" + name)
    return root


def _nvidia_gpu(root: Path, slot: str, minor: int, uuid: str) -> None:
    base = root / "sys/bus/pci/devices" / slot
    base.mkdir(parents=True)
    (base / "class").write_text("0x030200\n")
    (base / "vendor").write_text("0x10de\n")
    (base / "device").write_text("0x2335\n")
    (root / "sys/bus/pci/drivers/nvidia").mkdir(parents=True, exist_ok=True)
    (base / "driver").symlink_to("../../drivers/nvidia")
    info = root / "proc/driver/nvidia/gpus" / slot
    info.mkdir(parents=True)
    # The layout of the driver's per-GPU file (NVIDIA 5xx).
    (info / "information").write_text(
        "Model: \t\t NVIDIA H200\nIRQ:   \t\t 0\n"
        f"GPU UUID: \t GPU-{uuid}\nVideo BIOS: \t 96.00.a5.00.01\nBus Type: \t PCIe\n"
        f"DMA Size: \t 52 bits\nDMA Mask: \t 0xfffffffffffff\nBus Location: \t {slot}\n"
        f"Device Minor: \t {minor}\nGPU Excluded:\t No\n"
    )


@needs_lavapipe
def test_each_gpu_vulkan_does_not_see_is_a_fail_naming_it(world: VkWorld, tmp_path: Path) -> None:
    """Two NVIDIA GPUs on a fixture bus, only lavapipe installed: one gpu-not-exposed per GPU,
    each with its PCI address; the GPU whose /dev/nvidiaN is missing says so."""
    world.lavapipe()
    root = _fixture_root(tmp_path)
    _nvidia_gpu(root, "0000:19:00.0", 0, UUID_A)
    _nvidia_gpu(root, "0000:3b:00.0", 1, UUID_B)
    env = world.env()
    env = Env(**{**env.__dict__, "root": root, "procfs": root / "proc"})
    report = run_pipeline(env, Options(timeout_s=10.0), ["instance", "device"]).report
    device = probe(report, "device")
    assert device.facts["pci_gpus"] == [
        {"slot": "0000:19:00.0", "ids": "10de:2335", "device": None, "via": None},
        {"slot": "0000:3b:00.0", "ids": "10de:2335", "device": None, "via": None},
    ]
    found = [f for f in device.findings if f.code == "gpu-not-exposed"]
    assert [f.summary for f in found] == [
        f"NVIDIA GPU 10de:2335 at {slot} (kernel driver nvidia) has no Vulkan device: "
        f"/dev/nvidia{minor} does not exist here"
        for slot, minor in (("0000:19:00.0", 0), ("0000:3b:00.0", 1))
    ]
    assert all(f.severity is Severity.FAIL for f in found)
    assert found[1].remedy is not None
    assert found[1].remedy.commands[0] == "ls -l /dev/nvidia1"
    software = [f for f in device.findings if f.code == "software-device-only"]
    name = report.devices[0].name  # lavapipe's, as the loader enumerated it
    assert [f.summary for f in software] == [
        f"only software Vulkan ({name}) although 2 GPU(s) are on the PCI bus"
    ]


@needs_lavapipe
def test_a_gpu_a_container_was_not_given_names_nvidia_visible_devices(
    world: VkWorld, tmp_path: Path
) -> None:
    """In a Docker container started with NVIDIA_VISIBLE_DEVICES=0, the host's other GPU is on
    the (read-only, host-wide) sysfs bus but not in Vulkan: the variable is named first."""
    world.lavapipe()
    root = _fixture_root(tmp_path)
    (root / ".dockerenv").write_text("")
    _nvidia_gpu(root, "0000:3b:00.0", 1, UUID_B)
    env = world.env(NVIDIA_VISIBLE_DEVICES="0")
    env = Env(**{**env.__dict__, "root": root, "procfs": root / "proc"})
    report = run_pipeline(env, Options(timeout_s=10.0), ["instance", "device"]).report
    found = [f for f in probe(report, "device").findings if f.code == "gpu-not-exposed"]
    assert [f.summary for f in found] == [
        "NVIDIA GPU 10de:2335 at 0000:3b:00.0 (kernel driver nvidia) has no Vulkan device: this "
        "container was started with NVIDIA_VISIBLE_DEVICES=0, which does not pass this GPU in "
        "(CUDA_VISIBLE_DEVICES does not hide GPUs from Vulkan)"
    ]
    assert found[0].remedy is not None
    assert found[0].remedy.commands[0] == "docker run --gpus all <image>"
    assert found[0].evidence["likely_causes"][1] == "/dev/nvidia1 does not exist here"


# --------------------------------------------------------------------------------------------
# --require 'devices OP N' and the per-GPU Prometheus series


def _vkdoctor(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vkdoctor", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _vulkaninfo_devices(environ: dict[str, str]) -> list[dict[str, object]]:
    """Each GPUn of vulkaninfo: its deviceName, deviceType and its queue families' flags in
    vkdoctor's words (QUEUE_GRAPHICS -> graphics)."""
    if shutil.which("vulkaninfo") is None:
        pytest.skip("vulkaninfo (vulkan-tools) is not installed")
    text = subprocess.run(
        ["vulkaninfo"], env=environ, capture_output=True, text=True, timeout=60, check=False
    ).stdout
    devices = []
    for block in re.split(r"^GPU\d+:$", text, flags=re.MULTILINE)[1:]:
        name = re.search(r"^\s*deviceName\s*= (.+?)\s*$", block, re.MULTILINE)
        kind = re.search(r"^\s*deviceType\s*= (\S+)", block, re.MULTILINE)
        flags = re.findall(r"^\s*queueFlags\s*= (.+?)\s*$", block, re.MULTILINE)
        assert name and kind, block[:500]
        devices.append(
            {
                "name": name[1],
                "type": kind[1],
                "families": [
                    "+".join(f.strip().removeprefix("QUEUE_").lower() for f in row.split("|"))
                    for row in flags
                ],
            }
        )
    return devices


@needs_lavapipe
def test_devices_counts_what_the_loader_enumerates(tmp_path: Path) -> None:
    """Two lavapipe devices through the real loader: devices>=2 passes, devices>=3 fails with
    the count, and a count of the devices meeting type=cpu says how many met it."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("VK_", "VKDOCTOR_"))}
    environ.pop("GITHUB_ACTIONS", None)
    environ["VK_DRIVER_FILES"] = _two_lavapipes(tmp_path)
    real = _vulkaninfo_devices(environ)
    assert len(real) == 2 and {d["type"] for d in real} == {"PHYSICAL_DEVICE_TYPE_CPU"}
    stored = tmp_path / "r.json"
    done = _vkdoctor(
        environ, "check", "--no-color", "--json", str(stored), "--require", "devices>=2"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    names = "; ".join(f"device {i} {d['name']}" for i, d in enumerate(real))
    (step,) = [p for p in json.loads(stored.read_text())["probes"] if p["id"] == "requirements"]
    assert [(f["code"], f["summary"]) for f in step["findings"]] == [
        ("requirement-met", f"2 Vulkan devices found, as devices>=2 asks: {names}")
    ]
    done = _vkdoctor(environ, "check", "--no-color", "--require", "devices>=3")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "[FAIL] devices>=3 unmet: 2 Vulkan devices found" in done.stdout
    done = _vkdoctor(
        environ,
        "report",
        "show",
        str(stored),
        "--no-color",
        "--require=type=cpu",
        "--require=devices=1",
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "[FAIL] devices=1 unmet: 2 of 2 devices meet type=cpu" in done.stdout


@needs_lavapipe
def test_devices_lists_what_each_device_left_out_has(world: VkWorld, fault_driver) -> None:
    """lavapipe beside a driver that hides its compute queues (7 of 8 GPUs usable, in small):
    devices>=2 with queue=compute fails, naming the device without and its queue families."""
    world.lavapipe()
    fault_driver("no-compute")
    real = _vulkaninfo_devices(world.environ)
    without = [i for i, d in enumerate(real) if not any("compute" in f for f in d["families"])]
    assert len(real) == 2 and len(without) == 1
    (index,) = without
    families = "; ".join(real[index]["families"])  # type: ignore[arg-type]
    done = _vkdoctor(
        world.environ,
        "check",
        "--no-color",
        "--require",
        "queue=compute",
        "--require",
        "devices>=2",
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        f"[FAIL] devices>=2 unmet: 1 of 2 devices meets queue=compute: device {index} "
        f"{real[index]['name']} has queue families {families}"
    ) in done.stdout


def _metric_lines(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name + "{")]


@needs_lavapipe
def test_each_pci_gpu_is_a_series_zero_where_vulkan_does_not_drive_it(
    world: VkWorld, tmp_path: Path
) -> None:
    """The fixture bus's two NVIDIA GPUs, only lavapipe installed: one series per GPU, 0 and no
    device index; lavapipe has no VK_EXT_pci_bus_info, so its pci_address label is empty."""
    from vkdoctor.fleet.prometheus import check_metrics

    world.lavapipe()
    root = _fixture_root(tmp_path)
    _nvidia_gpu(root, "0000:19:00.0", 0, UUID_A)
    _nvidia_gpu(root, "0000:3b:00.0", 1, UUID_B)
    if shutil.which("vulkaninfo") is None:
        pytest.skip("vulkaninfo (vulkan-tools) is not installed")
    info = subprocess.run(
        ["vulkaninfo"], env=world.environ, capture_output=True, text=True, timeout=60, check=False
    ).stdout
    assert "VK_EXT_pci_bus_info" not in info  # the premise of the empty pci_address
    env = world.env()
    env = Env(**{**env.__dict__, "root": root, "procfs": root / "proc"})
    report = run_pipeline(env, Options(timeout_s=10.0), ["instance", "device"]).report
    text = check_metrics(report, 1.0, 0.0)
    assert _metric_lines(text, "vkdoctor_pci_gpu_vulkan_device") == [
        'vkdoctor_pci_gpu_vulkan_device{pci_address="0000:19:00.0",ids="10de:2335",'
        'device_index=""} 0',
        'vkdoctor_pci_gpu_vulkan_device{pci_address="0000:3b:00.0",ids="10de:2335",'
        'device_index=""} 0',
    ]
    (device,) = _metric_lines(text, "vkdoctor_device_info")
    assert device.endswith(',pci_address=""} 1')
    promtool = shutil.which("promtool")
    if promtool is not None:
        checked = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
    # Without the device probe nothing was matched: no series at all (not zeros).
    report = run_pipeline(env, Options(timeout_s=10.0), ["instance"]).report
    assert _metric_lines(check_metrics(report, 1.0, 0.0), "vkdoctor_pci_gpu_vulkan_device") == []


def test_the_h200_report_maps_its_gpu_to_device_0() -> None:
    """The lent H200's check report (a real run): its GPU at the address the driver reported
    through VK_EXT_pci_bus_info, driven by device 0, with that address on the device's info."""
    from vkdoctor.fleet.prometheus import check_metrics
    from vkdoctor.report.io import load_report

    path = Path(__file__).resolve().parent.parent / "reports" / "nvidia-gpu.json"
    raw = json.loads(path.read_text())
    (device,) = raw["devices"]
    address = device["pci_address"]
    assert re.fullmatch(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]", address)
    ids = f"{device['vendor_id']:04x}:{device['device_id']:04x}"
    text = check_metrics(load_report(str(path)), 1.0, 0.0)
    assert _metric_lines(text, "vkdoctor_pci_gpu_vulkan_device") == [
        f'vkdoctor_pci_gpu_vulkan_device{{pci_address="{address}",ids="{ids}",device_index="0"}} 1'
    ]
    (info,) = _metric_lines(text, "vkdoctor_device_info")
    assert info.endswith(f',pci_address="{address}"}} 1')
