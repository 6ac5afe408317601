"""Every GPU on the PCI bus matched to the Vulkan physical device that drives it, and, for a GPU
no device maps to, the likely reason.

Three ways to match, most exact first:
- the device's PCI address (VK_EXT_pci_bus_info) equals the GPU's sysfs slot;
- the device's deviceUUID equals the GPU's NVIDIA UUID (NVIDIA's Vulkan driver reports the UUID
  that /proc/driver/nvidia/gpus/<slot>/information and ``nvidia-smi -L`` print);
- for a device that reports neither, its vendor:device ids, one device per GPU of that model
  (exact in number, not in which GPU is which).

Pure: the environment scan's GPU and device-node facts, the device records and, where it was
run, ``nvidia-smi -L``'s list come in; matches and causes go out.  Headless.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from vkdoctor.record import frozen
from vkdoctor.report.records import DeviceRecord

# `nvidia-smi -L`: "GPU 0: NVIDIA H200 (UUID: GPU-5f3c...)"; MIG lines ("  MIG 1g.18gb Device
# 0: (UUID: MIG-...)") are instances of the GPU above them, not GPUs.
_SMI_LINE = re.compile(r"^GPU (\d+): (.*?) \(UUID: GPU-([0-9a-fA-F-]{36})\)\s*$")


@frozen
class SmiGpu:
    """One line of ``nvidia-smi -L``: the GPUs NVIDIA's kernel driver (NVML) sees."""

    index: int
    name: str
    uuid: str  # lower case, without the "GPU-" prefix: the form of a Vulkan deviceUUID


def parse_nvidia_smi_list(text: str) -> tuple[SmiGpu, ...]:
    gpus = []
    for line in text.splitlines():
        match = _SMI_LINE.match(line.strip())
        if match:
            gpus.append(SmiGpu(int(match.group(1)), match.group(2), match.group(3).lower()))
    return tuple(gpus)


@frozen
class BusGpu:
    """The fields of an environment-scan GPU fact that matching reads."""

    slot: str
    vendor_id: str  # four lower-case hex digits
    device_id: str
    vendor: str | None
    driver: str | None
    nvidia_uuid: str | None = None
    nvidia_minor: int | None = None

    @classmethod
    def from_fact(cls, fact: Mapping[str, Any]) -> BusGpu:
        def hex4(value: Any) -> str:
            return str(value or "").lower().removeprefix("0x")

        minor = fact.get("nvidia_minor")
        return cls(
            slot=str(fact.get("slot") or ""),
            vendor_id=hex4(fact.get("vendor_id")),
            device_id=hex4(fact.get("device_id")),
            vendor=fact.get("vendor") if isinstance(fact.get("vendor"), str) else None,
            driver=fact.get("driver") if isinstance(fact.get("driver"), str) else None,
            nvidia_uuid=str(fact["nvidia_uuid"]).lower() if fact.get("nvidia_uuid") else None,
            nvidia_minor=minor if isinstance(minor, int) else None,
        )

    @property
    def ids(self) -> str:
        return f"{self.vendor_id or '????'}:{self.device_id or '????'}"


@frozen
class GpuMatch:
    gpu: BusGpu
    device: int | None  # the Vulkan device index; None: no device maps to this GPU
    via: str | None  # pci-bus-info | uuid | ids


@frozen
class PciGpuFact:
    """One row of the device probe's ``pci_gpus`` fact: a GPU on the bus and the Vulkan device
    index that drives it (None: none does).  Written by the probe, read back from a report by
    the Prometheus metrics, so both sides share the keys."""

    slot: str
    ids: str
    device: int | None
    via: str | None

    @classmethod
    def of(cls, match: GpuMatch) -> PciGpuFact:
        return cls(match.gpu.slot, match.gpu.ids, match.device, match.via)

    @classmethod
    def from_fact(cls, fact: Mapping[str, Any]) -> PciGpuFact:
        device = fact.get("device")
        via = fact.get("via")
        return cls(
            slot=str(fact.get("slot") or ""),
            ids=str(fact.get("ids") or ""),
            # bool is an int in Python; a JSON true is no device index
            device=device if isinstance(device, int) and not isinstance(device, bool) else None,
            via=via if isinstance(via, str) else None,
        )

    def to_fact(self) -> dict[str, Any]:
        return {"slot": self.slot, "ids": self.ids, "device": self.device, "via": self.via}


def pci_gpus(facts: Mapping[str, Any]) -> tuple[PciGpuFact, ...]:
    """The ``pci_gpus`` rows of the device probe's facts (a report's JSON boundary)."""
    rows = facts.get("pci_gpus")
    if not isinstance(rows, list):
        return ()
    return tuple(PciGpuFact.from_fact(r) for r in rows if isinstance(r, Mapping))


def _norm_uuid(text: str | None) -> str | None:
    return text.lower().removeprefix("gpu-") if text else None


def match_gpus(gpus: Sequence[BusGpu], devices: Sequence[DeviceRecord]) -> list[GpuMatch]:
    """One GpuMatch per GPU, in bus order; each device is used at most once."""
    taken: set[int] = set()
    found: dict[str, GpuMatch] = {}
    for gpu in gpus:
        for device in devices:
            if device.index not in taken and device.pci_address == gpu.slot:
                found[gpu.slot] = GpuMatch(gpu, device.index, "pci-bus-info")
                taken.add(device.index)
                break
    for gpu in gpus:
        if gpu.slot in found or not gpu.nvidia_uuid:
            continue
        for device in devices:
            if device.index not in taken and _norm_uuid(device.device_uuid) == gpu.nvidia_uuid:
                found[gpu.slot] = GpuMatch(gpu, device.index, "uuid")
                taken.add(device.index)
                break
    for gpu in gpus:
        if gpu.slot in found:
            continue
        for device in devices:
            # A device that names its PCI address belongs to that address only.
            if device.index in taken or device.pci_address is not None:
                continue
            if f"{device.vendor_id:04x}:{device.device_id:04x}" == gpu.ids:
                found[gpu.slot] = GpuMatch(gpu, device.index, "ids")
                taken.add(device.index)
                break
    return [found.get(g.slot) or GpuMatch(g, None, None) for g in gpus]


@frozen
class Cause:
    """Why a GPU has no Vulkan device, as far as the machine shows."""

    key: str  # container-visible-devices | device-node | kernel-driver | driver-failed | ...
    text: str


def likely_causes(
    gpu: BusGpu,
    *,
    exposed_same_vendor: int,
    container: bool,
    visible_devices: str | None,
    device_nodes: Sequence[Mapping[str, Any]],
    smi: Sequence[SmiGpu] | None,
) -> list[Cause]:
    """Most specific first.  ``device_nodes`` are the environment scan's node facts; ``smi`` is
    ``nvidia-smi -L``'s list where it ran (None where not)."""
    causes: list[Cause] = []
    if gpu.driver is None:
        causes.append(Cause("kernel-driver", "no kernel driver is bound to it"))
    nvidia = gpu.vendor_id == "10de"
    if nvidia and container and visible_devices not in (None, "", "all"):
        causes.append(
            Cause(
                "container-visible-devices",
                f"this container was started with NVIDIA_VISIBLE_DEVICES={visible_devices}, "
                "which does not pass this GPU in (CUDA_VISIBLE_DEVICES does not hide GPUs from "
                "Vulkan)",
            )
        )
    if nvidia and gpu.nvidia_minor is not None:
        path = f"/dev/nvidia{gpu.nvidia_minor}"
        node = next((n for n in device_nodes if n.get("path") == path), None)
        if node is None or node.get("file_type") == "broken-link":
            causes.append(Cause("device-node", f"{path} does not exist here"))
        elif node.get("can_open_rw") is False:
            causes.append(
                Cause("device-node", f"{path} is mode {node.get('mode')}: this user cannot open it")
            )
    if nvidia and smi is not None and gpu.nvidia_uuid:
        if not any(s.uuid == gpu.nvidia_uuid for s in smi):
            causes.append(Cause("driver-failed", "nvidia-smi -L does not list it either"))
        else:
            causes.append(
                Cause("vulkan-only", "nvidia-smi -L lists it: the kernel driver works for it")
            )
    if exposed_same_vendor and gpu.driver is not None:
        causes.append(
            Cause(
                "driver-failed",
                f"the Vulkan driver exposes {exposed_same_vendor} other GPU(s) of this vendor, "
                "so it failed for this one (the kernel log says why)",
            )
        )
    return list({c.text: c for c in causes}.values())
