"""Plain-text forms of kernel results, shared by ``vkdoctor kernels`` and the TUI so both say
the same thing the same way.  Headless: no rich/textual."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from vkdoctor.kernels.peaks import BANDWIDTH, FP16, FP16_MATRIX, FP32, Figure, Peak
from vkdoctor.report.records import DeviceRecord


def _sig(value: float, digits: int = 3) -> str:
    """``digits`` significant digits without exponent notation: 0.0312, 7.41, 361."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def time_ns(ns: float | None) -> str:
    if ns is None:
        return "-"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{_sig(ns / scale)} {unit}"
    return f"{_sig(ns)} ns"


def rate(value: float | None, metric: str) -> str:
    """GB/s or GFLOP/s, switching to TB/s / TFLOP/s from 1000 up."""
    if value is None:
        return "-"
    if metric == BANDWIDTH:
        return f"{_sig(value / 1000)} TB/s" if value >= 1000 else f"{_sig(value)} GB/s"
    return f"{_sig(value / 1000)} TFLOP/s" if value >= 1000 else f"{_sig(value)} GFLOP/s"


def figure_text(fig: Figure | None) -> str:
    return rate(fig.value, fig.metric) if fig is not None else "-"


def fraction(value: float | None) -> str:
    if value is None:
        return "-"
    percent = 100 * value
    if percent < 0.1:
        return "<0.1%"
    return f"{percent:.0f}%" if percent >= 10 else f"{percent:.1f}%"


def of_peak(fig: Figure | None) -> str:
    """The "of peak" cell: ``-`` without a figure (the kernel failed or was skipped), ``n/a``
    with a figure but no datasheet peak to compare it with."""
    if fig is None:
        return "-"
    return fraction(fig.fraction) if fig.fraction is not None else "n/a"


def spread(timing: Mapping[str, Any] | None) -> str:
    """(max - min) / median of the timed repetitions: 2% means they agree within 2 %."""
    if not timing or timing.get("spread") is None:
        return "-"
    percent = 100 * float(timing["spread"])
    return f"{percent:.0f}%" if percent >= 10 else f"{percent:.1f}%"


def _scaled(n: int, units: tuple[tuple[str, int], ...], sep: str) -> str:
    for suffix, scale in units:
        if n >= scale:
            value = str(n // scale) if n % scale == 0 else _sig(n / scale)
            return f"{value}{sep}{suffix}"
    return str(n)


def _count(n: int) -> str:
    return _scaled(n, (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)), "")


def _bytes(n: int) -> str:
    return _scaled(n, (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)), " ")


def problem_size(result: Mapping[str, Any]) -> str:
    """A kernel's problem size in a few characters: ``16 MiB``, ``256³``, ``512×512 r2``."""
    sizes = result.get("sizes") or {}
    if "bytes" in sizes:
        return _bytes(int(sizes["bytes"]))
    if {"m", "n", "k"} <= sizes.keys():
        m, n, k = (int(sizes[x]) for x in "mnk")
        return f"{m}³" if m == n == k else f"{m}×{n}×{k}"
    if "cin" in sizes:  # a convolution layer: batch x H x W x cin -> cout
        return (
            f"{sizes.get('batch', 1)}×{sizes['height']}×{sizes['width']}×{sizes['cin']}"
            f"→{sizes['cout']}"
        )
    if {"width", "height"} <= sizes.keys():
        return f"{sizes['width']}×{sizes['height']} r{sizes.get('radius', 0)}"
    if "invocations" in sizes:
        return f"{_count(int(sizes['invocations']))} thr"
    if "elements" in sizes:
        return _count(int(sizes["elements"]))
    return "-"


def peak_text(peak: Peak | None) -> str:
    if peak is None:
        return "no peak known"
    parts = [
        label + rate(value, metric)
        for label, metric, value in (
            ("", BANDWIDTH, peak.bandwidth_gbs),
            ("FP32 ", FP32, peak.fp32_gflops),
            ("FP16 ", FP16, peak.fp16_gflops),
            ("FP16 tensor ", FP16_MATRIX, peak.fp16_matrix_gflops),
        )
        if value
    ]
    head = (
        f"datasheet peak of the {peak.name}"
        if peak.source == "datasheet"
        else "measured peak (best of this run)"
    )
    return f"{head}: {' · '.join(parts) or 'none'}"


def repetitions(sizes: Mapping[str, Any], source: str | None = None) -> str:
    """``1 warm-up + 3 timed (GPU timestamps)``."""
    warmup, reps = sizes.get("warmup"), sizes.get("repetitions")
    if warmup is None or reps is None:
        return ""
    how = {"gpu-timestamps": " (GPU timestamps)", "host-wall-clock": " (host clock)"}
    return f"{warmup} warm-up + {reps} timed" + how.get(source or "", "")


def timing_source(rows: Any) -> str | None:
    """How a device run was timed: the first timed kernel says."""
    for row in rows:
        source = (row.result.get("timing") or {}).get("source")
        if source:
            return str(source)
    return None


def device_line(device: DeviceRecord) -> str:
    """``llvmpipe (LLVM 15.0.6, 256 bits) · cpu · Vulkan 1.3.230 · llvmpipe Mesa 22.3.6``."""
    parts = [device.name or "unknown device"]
    if device.type:
        parts.append(device.type)
    if device.api_version:
        parts.append(f"Vulkan {device.api_version}")
    if device.driver_name or device.driver_version:
        parts.append(device.driver)
    return " · ".join(parts)
