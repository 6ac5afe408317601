"""Reading reports of earlier schema versions: each is rewritten into the current JSON form.

Version 1 (vkdoctor 0.1, reports attached to tickets before the typed records) differs in:
- vendor and device ids were hex strings without a prefix in check reports ("10005") and with one
  in kernels reports ("0x10005"); they are integers now;
- a device's ``driver_manifest`` was a list when the mapping was ambiguous; it is a string or
  null now, with the candidates in ``driver_manifest_candidates``;
- kernels reports called the pipeline-cache UUID ``uuid`` and gave ``driver_id`` as a
  ``VK_DRIVER_ID_*`` name;
- every probe stored its loader-log lines itself (the loader-log upgrade happens in
  ``ProbeResult.from_dict``, which accepts both forms).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# VkDriverId values (the Vulkan registry's enum) that version-1 kernels reports name.
DRIVER_IDS = {
    "VK_DRIVER_ID_AMD_PROPRIETARY": 1,
    "VK_DRIVER_ID_AMD_OPEN_SOURCE": 2,
    "VK_DRIVER_ID_MESA_RADV": 3,
    "VK_DRIVER_ID_NVIDIA_PROPRIETARY": 4,
    "VK_DRIVER_ID_INTEL_PROPRIETARY_WINDOWS": 5,
    "VK_DRIVER_ID_INTEL_OPEN_SOURCE_MESA": 6,
    "VK_DRIVER_ID_IMAGINATION_PROPRIETARY": 7,
    "VK_DRIVER_ID_QUALCOMM_PROPRIETARY": 8,
    "VK_DRIVER_ID_ARM_PROPRIETARY": 9,
    "VK_DRIVER_ID_GOOGLE_SWIFTSHADER": 10,
    "VK_DRIVER_ID_GGP_PROPRIETARY": 11,
    "VK_DRIVER_ID_BROADCOM_PROPRIETARY": 12,
    "VK_DRIVER_ID_MESA_LLVMPIPE": 13,
    "VK_DRIVER_ID_MOLTENVK": 14,
    "VK_DRIVER_ID_COREAVI_PROPRIETARY": 15,
    "VK_DRIVER_ID_JUICE_PROPRIETARY": 16,
    "VK_DRIVER_ID_VERISILICON_PROPRIETARY": 17,
    "VK_DRIVER_ID_MESA_TURNIP": 18,
    "VK_DRIVER_ID_MESA_V3DV": 19,
    "VK_DRIVER_ID_MESA_PANVK": 20,
    "VK_DRIVER_ID_SAMSUNG_PROPRIETARY": 21,
    "VK_DRIVER_ID_MESA_VENUS": 22,
    "VK_DRIVER_ID_MESA_DOZEN": 23,
    "VK_DRIVER_ID_MESA_NVK": 24,
    "VK_DRIVER_ID_IMAGINATION_OPEN_SOURCE_MESA": 25,
    "VK_DRIVER_ID_MESA_HONEYKRISP": 26,
}


def hex_id(value: Any) -> int | None:
    """A version-1 id ("10de", "0x10de") or a version-2 one (4318) as an integer."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.lower().removeprefix("0x"), 16)
        except ValueError:
            return None
    return None


def upgrade_device(device: Any) -> Any:
    """A version-1 device (check or kernels form) in the version-2 form."""
    if not isinstance(device, Mapping):
        return device
    out = dict(device)
    for key in ("vendor_id", "device_id"):
        if key in out:
            out[key] = hex_id(out[key])
    manifest = out.get("driver_manifest")
    if isinstance(manifest, list):
        out["driver_manifest"] = None
        out["driver_manifest_candidates"] = [m for m in manifest if isinstance(m, str)]
    if "uuid" in out and "pipeline_cache_uuid" not in out:
        out["pipeline_cache_uuid"] = out.pop("uuid")
    if isinstance(out.get("driver_id"), str):
        out["driver_id"] = DRIVER_IDS.get(out["driver_id"])
    return out


def _upgrade_kernel_facts(facts: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(facts)
    out["devices"] = [upgrade_device(d) for d in facts.get("devices") or ()]
    runs = []
    for run in facts.get("runs") or ():
        if isinstance(run, Mapping):
            run = {**run, "device": upgrade_device(run.get("device") or {})}
        runs.append(run)
    out["runs"] = runs
    return out


def upgrade(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """``data`` in the current schema's form (a copy when anything changed)."""
    if data.get("schema_version") != 1:
        return data
    out = dict(data)
    out["devices"] = [upgrade_device(d) for d in data.get("devices") or ()]
    probes = []
    for probe in data.get("probes") or ():
        if isinstance(probe, Mapping) and probe.get("id") == "kernels":
            probe = {**probe, "facts": _upgrade_kernel_facts(probe.get("facts") or {})}
        probes.append(probe)
    out["probes"] = probes
    return out
