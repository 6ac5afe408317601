"""Device peaks: what a kernel's figure is measured against.

A small table of vendor datasheet peaks keyed by Vulkan device-name patterns.  A device not in it
gets the best figure of its own run ("measured peak"), shown for scale; a fraction of that is not a
fraction of any peak (the best kernel of each kind would read "100 %" on every CPU driver), so a
figure has a fraction only against a datasheet peak and renderers say "n/a" otherwise.  Datasheet peaks are boost-clock figures: a
sustained Vulkan kernel reaching 70-90 % of them is healthy, a few percent is a problem.

Headless: no rich/textual.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from vkdoctor.record import frozen

# What each kernel's headline figure is and which peak it is compared with.  Kernels whose work
# is memory traffic report GB/s; arithmetic kernels report GFLOP/s.
BANDWIDTH = "bandwidth"
FP32 = "fp32"
FP16 = "fp16"
FP16_MATRIX = "fp16-matrix"  # dense FP16 on matrix units (tensor cores), FP32 accumulate
UNITS = {BANDWIDTH: "GB/s", FP32: "GFLOP/s", FP16: "GFLOP/s", FP16_MATRIX: "GFLOP/s"}
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
    "hgemm-coopmat": FP16_MATRIX,
}


@frozen
class Peak:
    """Peak rates of one device: GB/s for memory, GFLOP/s (an FMA counts 2) for arithmetic."""

    name: str
    source: str  # "datasheet" | "measured"
    bandwidth_gbs: float | None = None
    fp32_gflops: float | None = None
    fp16_gflops: float | None = None
    note: str = ""
    fp16_matrix_gflops: float | None = None  # dense FP16 on tensor cores, FP32 accumulate

    def of(self, metric: str) -> float | None:
        return {
            BANDWIDTH: self.bandwidth_gbs,
            FP32: self.fp32_gflops,
            FP16: self.fp16_gflops,
            FP16_MATRIX: self.fp16_matrix_gflops,
        }.get(metric)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "bandwidth_gbs": self.bandwidth_gbs,
            "fp32_gflops": self.fp32_gflops,
            "fp16_gflops": self.fp16_gflops,
            "fp16_matrix_gflops": self.fp16_matrix_gflops,
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
            fp16_matrix_gflops=num("fp16_matrix_gflops"),
        )


@frozen
class Datasheet:
    """Where a table entry comes from: the vendor document and the arithmetic behind its FP32
    figure (units x 2 operations per FMA x boost clock), so every peak can be checked."""

    document: str
    sms: int  # streaming multiprocessors
    fp32_lanes_per_sm: int
    boost_mhz: int
    bandwidth_gbs: float
    fp16_factor: int  # non-tensor FP16 rate / FP32 rate, from the architecture whitepaper
    fp16_source: str
    # Dense FP16 tensor-core rate with FP32 accumulation: the datasheet's "FP16 Tensor Core"
    # figure, which is printed with sparsity, halved.
    tensor_fp16_tflops: float = 0.0

    @property
    def fp32_gflops(self) -> float:
        return self.sms * self.fp32_lanes_per_sm * 2 * self.boost_mhz / 1000


# FP16 is the non-tensor rate (the suite uses no tensor cores).  The H100 whitepaper gives packed
# half2 twice the FP32 rate (133.8 TFLOP/s for the SXM5 part); on an H200 neither vkdoctor's
# f16vec2 kernel nor a CUDA __hfma2 twin exceeded the FP32 rate (64.7 TFLOP/s,
# benchmarks/RESULTS.md), so read an H100/H200 fp16 fraction near 50 % as "at the FP32 rate".
_HOPPER_FP16 = "H100 whitepaper (non-tensor FP16 = 2x FP32)"
_AMPERE_FP16 = "A100 whitepaper (non-tensor FP16 = 4x FP32, 78 TFLOP/s)"


def _datasheet(name: str, fp32_tflops: float, sheet: Datasheet) -> Peak:
    # The published FP32 figure is kept as printed; the note shows the arithmetic it rounds.
    note = (
        f"{sheet.document}: {sheet.bandwidth_gbs / 1000:g} TB/s, FP32 {fp32_tflops:g} TFLOP/s "
        f"= {sheet.sms} SMs x {sheet.fp32_lanes_per_sm} FP32 lanes x 2 x {sheet.boost_mhz} MHz "
        f"boost ({sheet.fp32_gflops / 1000:.1f}); FP16 {sheet.fp16_factor}x FP32 per "
        f"{sheet.fp16_source}"
    )
    return Peak(
        name=name,
        source="datasheet",
        bandwidth_gbs=sheet.bandwidth_gbs,
        fp32_gflops=fp32_tflops * 1000,
        fp16_gflops=sheet.fp16_factor * fp32_tflops * 1000,
        note=note + f"; FP16 tensor {sheet.tensor_fp16_tflops:g} TFLOP/s dense",
        fp16_matrix_gflops=sheet.tensor_fp16_tflops * 1000 or None,
    )


def _hopper(document: str, sms: int, mhz: int, bandwidth: float, tensor: float) -> Datasheet:
    return Datasheet(document, sms, 128, mhz, bandwidth, 2, _HOPPER_FP16, tensor)


def _ampere(document: str, bandwidth: float) -> Datasheet:
    return Datasheet(document, 108, 64, 1410, bandwidth, 4, _AMPERE_FP16, 312.0)


# NVIDIA data-center datasheets (H100: nvidia.com/en-us/data-center/h100, H200: .../h200,
# A100: .../a100); SM counts and boost clocks from the H100 and A100 whitepapers and the
# product briefs (H100 PCIe: 114 SMs at 1755 MHz; NVL parts: 1785 MHz).  Vulkan reports the
# marketing name as deviceName, e.g. "NVIDIA H100 80GB HBM3" for the SXM5 board, "NVIDIA H100
# PCIe", "NVIDIA H100 NVL", "NVIDIA H200".  First match wins, so the more specific patterns come
# first.  A device matching none gets no datasheet peak: its figures are shown against the best
# of its own run (measured_peak), and a metric nobody measured stays "n/a".
_TABLE: tuple[tuple[str, str, float, Datasheet], ...] = (
    (
        r"\bH100\b.*\bNVL\b",
        "NVIDIA H100 NVL",
        60.0,
        _hopper("H100 NVL datasheet", 132, 1785, 3900, 835.5),
    ),
    (
        r"\bH100\b.*\bPCIe\b",
        "NVIDIA H100 PCIe",
        51.0,
        _hopper("H100 PCIe datasheet", 114, 1755, 2000, 756.5),
    ),
    (
        r"\bH100\b.*(\bSXM|HBM3)",
        "NVIDIA H100 SXM5",
        67.0,
        _hopper("H100 SXM datasheet", 132, 1980, 3350, 989.5),
    ),
    (
        r"\bH200\b.*\bNVL\b",
        "NVIDIA H200 NVL",
        60.0,
        _hopper("H200 NVL datasheet", 132, 1785, 4800, 835.5),
    ),
    (r"\bH200\b", "NVIDIA H200 SXM", 67.0, _hopper("H200 SXM datasheet", 132, 1980, 4800, 989.5)),
    (
        r"\bA100\b.*80GB.*PCIe",
        "NVIDIA A100 80GB PCIe",
        19.5,
        _ampere("A100 80GB PCIe datasheet", 1935),
    ),
    (
        r"\bA100\b.*SXM4?-80GB",
        "NVIDIA A100 SXM4 80GB",
        19.5,
        _ampere("A100 80GB SXM datasheet", 2039),
    ),
    (r"\bA100\b.*40GB", "NVIDIA A100 40GB", 19.5, _ampere("A100 40GB datasheet", 1555)),
)
KNOWN_PEAKS: tuple[tuple[re.Pattern[str], Peak], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), _datasheet(name, tflops, sheet))
    for pattern, name, tflops, sheet in _TABLE
)
DATASHEETS: Mapping[str, Datasheet] = {name: sheet for _, name, _, sheet in _TABLE}


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
        note="no datasheet peak known for this device: fractions of peak are n/a",
        fp16_matrix_gflops=best.get(FP16_MATRIX),
    )


@frozen
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
        """Of the datasheet peak only: the best figure of the same run is no independent peak."""
        if not self.peak or self.peak_source != "datasheet":
            return None
        return self.value / self.peak

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
