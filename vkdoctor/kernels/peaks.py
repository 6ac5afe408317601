"""Device peaks: what a kernel's figure is measured against.

A small table of vendor datasheet peaks keyed by Vulkan device-name patterns; a device not in it
is measured against the best figure of its own run ("measured peak"), which still shows how far
each kernel is from the best this device did.  Datasheet peaks are boost-clock figures: a
sustained Vulkan kernel reaching 70-90 % of them is healthy, a few percent is a problem.

Headless: no rich/textual.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# What each kernel's headline figure is and which peak it is compared with.  Kernels whose work
# is memory traffic report GB/s; arithmetic kernels report GFLOP/s.
BANDWIDTH = "bandwidth"
FP32 = "fp32"
FP16 = "fp16"
UNITS = {BANDWIDTH: "GB/s", FP32: "GFLOP/s", FP16: "GFLOP/s"}
KERNEL_METRIC: Mapping[str, str] = {
    "copy": BANDWIDTH,
    "copy-vec4": BANDWIDTH,
    "copy-grid": BANDWIDTH,
    "saxpy": BANDWIDTH,
    "reduce": BANDWIDTH,
    "fma-fp32": FP32,
    "sgemm": FP32,
    "conv2d": FP32,
    "fma-fp16": FP16,
}


@dataclass(frozen=True)
class Peak:
    """Peak rates of one device: GB/s for memory, GFLOP/s (an FMA counts 2) for arithmetic."""

    name: str
    source: str  # "datasheet" | "measured"
    bandwidth_gbs: float | None = None
    fp32_gflops: float | None = None
    fp16_gflops: float | None = None
    note: str = ""

    def of(self, metric: str) -> float | None:
        return {
            BANDWIDTH: self.bandwidth_gbs,
            FP32: self.fp32_gflops,
            FP16: self.fp16_gflops,
        }.get(metric)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "bandwidth_gbs": self.bandwidth_gbs,
            "fp32_gflops": self.fp32_gflops,
            "fp16_gflops": self.fp16_gflops,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Peak:
        def num(key: str) -> float | None:
            value = data.get(key)
            return float(value) if isinstance(value, (int, float)) else None

        return cls(
            name=str(data.get("name", "")),
            source=str(data.get("source", "measured")),
            bandwidth_gbs=num("bandwidth_gbs"),
            fp32_gflops=num("fp32_gflops"),
            fp16_gflops=num("fp16_gflops"),
            note=str(data.get("note", "")),
        )


def _datasheet(name: str, bandwidth: float, fp32_tflops: float, fp16_factor: int = 2) -> Peak:
    # FP16 is the non-tensor rate (the suite uses no tensor cores): Hopper runs packed half2
    # at twice its FP32 rate, the A100 at four times (78 TFLOP/s in its whitepaper).
    return Peak(
        name=name,
        source="datasheet",
        bandwidth_gbs=bandwidth,
        fp32_gflops=fp32_tflops * 1000,
        fp16_gflops=fp16_factor * fp32_tflops * 1000,
        note=f"vendor datasheet, boost clock; FP16 without tensor cores ({fp16_factor}x FP32)",
    )


# NVIDIA data-center datasheets (H100: nvidia.com/en-us/data-center/h100, H200: .../h200,
# A100: .../a100).  Vulkan reports the marketing name as deviceName, e.g. "NVIDIA H100 80GB
# HBM3" for the SXM5 board, "NVIDIA H100 PCIe", "NVIDIA H100 NVL", "NVIDIA H200".  First match
# wins, so the more specific patterns come first.
KNOWN_PEAKS: tuple[tuple[re.Pattern[str], Peak], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), peak)
    for pattern, peak in (
        (r"\bH100\b.*\bNVL\b", _datasheet("NVIDIA H100 NVL", 3900, 60.0)),
        (r"\bH100\b.*\bPCIe\b", _datasheet("NVIDIA H100 PCIe", 2000, 51.0)),
        (r"\bH100\b.*(\bSXM|HBM3)", _datasheet("NVIDIA H100 SXM5", 3350, 67.0)),
        (r"\bH200\b.*\bNVL\b", _datasheet("NVIDIA H200 NVL", 4800, 60.0)),
        (r"\bH200\b", _datasheet("NVIDIA H200 SXM", 4800, 67.0)),
        (r"\bA100\b.*80GB.*PCIe", _datasheet("NVIDIA A100 80GB PCIe", 1935, 19.5, 4)),
        (r"\bA100\b.*SXM4?-80GB", _datasheet("NVIDIA A100 SXM4 80GB", 2039, 19.5, 4)),
        (r"\bA100\b.*40GB", _datasheet("NVIDIA A100 40GB", 1555, 19.5, 4)),
    )
)


def known_peak(device_name: str) -> Peak | None:
    for pattern, peak in KNOWN_PEAKS:
        if pattern.search(device_name):
            return peak
    return None


def metric_of(kernel: str, result: Mapping[str, Any]) -> str:
    """The peak a kernel is compared with; unknown kernels go by what they report."""
    if kernel in KERNEL_METRIC:
        return KERNEL_METRIC[kernel]
    if result.get("gflop_per_s"):
        return FP16 if "fp16" in kernel else FP32
    return BANDWIDTH


def value_of(metric: str, result: Mapping[str, Any]) -> float | None:
    value = result.get("gb_per_s" if metric == BANDWIDTH else "gflop_per_s")
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def measured_peak(device_name: str, results: Iterable[Mapping[str, Any]]) -> Peak:
    """The best figure of each kind in this run: every kernel is then a fraction of the best."""
    best: dict[str, float] = {}
    for result in results:
        if result.get("status") != "ok":
            continue
        metric = metric_of(str(result.get("kernel", "")), result)
        value = value_of(metric, result)
        if value is not None and value > best.get(metric, 0.0):
            best[metric] = value
    return Peak(
        name=device_name,
        source="measured",
        bandwidth_gbs=best.get(BANDWIDTH),
        fp32_gflops=best.get(FP32),
        fp16_gflops=best.get(FP16),
        note="no datasheet peak known for this device: the best figure of this run is 100 %",
    )


@dataclass(frozen=True)
class Figure:
    """A kernel's headline number and its fraction of the device's peak."""

    metric: str  # bandwidth | fp32 | fp16
    value: float
    peak: float | None
    peak_source: str | None  # datasheet | measured

    @property
    def unit(self) -> str:
        return UNITS[self.metric]

    @property
    def fraction(self) -> float | None:
        return self.value / self.peak if self.peak else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "unit": self.unit,
            "value": self.value,
            "peak": self.peak,
            "peak_source": self.peak_source,
            "fraction": self.fraction,
        }


def figure(result: Mapping[str, Any], peak: Peak | None) -> Figure | None:
    """None for a kernel that produced no figure (failed, skipped, unsupported)."""
    if result.get("status") != "ok":
        return None
    metric = metric_of(str(result.get("kernel", "")), result)
    value = value_of(metric, result)
    if value is None:
        return None
    reference = peak.of(metric) if peak is not None else None
    return Figure(metric, value, reference, peak.source if reference else None)


def peak_for(device_name: str, results: Iterable[Mapping[str, Any]]) -> Peak:
    return known_peak(device_name) or measured_peak(device_name, results)
