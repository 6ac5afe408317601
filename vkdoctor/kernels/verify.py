"""Comparing device output with numpy (bit patterns or an error bound) and the timing record.

Headless: no rich/textual.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import Any

import numpy as np

from vkdoctor.record import frozen
from vkdoctor.vulkan.compute import DispatchTiming


def _scalar(value: Any) -> int | float | str:
    """A JSON-safe Python scalar (non-finite floats become strings)."""
    item = value.item() if hasattr(value, "item") else value
    if isinstance(item, float) and not math.isfinite(item):
        return repr(item)
    return item


@frozen
class Check:
    """The comparison of one output with its expectation."""

    passed: bool
    method: str  # "exact" (bit patterns) or "bound" (scaled error against float64)
    checked: int
    mismatches: int
    first_bad_index: int | None = None
    expected: int | float | str | None = None
    actual: int | float | str | None = None
    max_error: float | None = None  # largest |actual - expected| / scale ("bound" only)
    tolerance: float | None = None
    output: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "method": self.method,
            "output": self.output,
            "checked": self.checked,
            "mismatches": self.mismatches,
            "first_bad_index": self.first_bad_index,
            "expected": self.expected,
            "actual": self.actual,
            "max_error": self.max_error,
            "tolerance": self.tolerance,
        }


def check_exact(actual: np.ndarray, expected: np.ndarray, output: str = "") -> Check:
    """Compare bit patterns, so -0.0 vs 0.0 and NaN payloads count as differences."""
    a = np.ascontiguousarray(actual).reshape(-1)
    e = np.ascontiguousarray(expected).reshape(-1)
    if a.shape != e.shape or a.dtype.itemsize != e.dtype.itemsize:
        return Check(False, "exact", e.size, max(a.size, e.size), 0, output=output)
    bits = np.dtype(f"u{a.dtype.itemsize}")
    ab, eb = a.view(bits), e.view(bits)
    if np.array_equal(ab, eb):
        return Check(True, "exact", e.size, 0, output=output)
    bad = np.flatnonzero(ab != eb)
    i = int(bad[0])
    return Check(
        False, "exact", e.size, int(bad.size), i, _scalar(e[i]), _scalar(a[i]), output=output
    )


def check_bound(
    actual: np.ndarray,
    expected: np.ndarray,
    scale: np.ndarray,
    tolerance: float,
    output: str = "",
) -> Check:
    """Pass where |actual - expected| <= tolerance * scale for every element.

    ``expected`` is a float64 reference and ``scale`` the magnitude the rounding error is
    proportional to (e.g. |A||B| for a matrix product), so the bound is the same for any
    summation order or FMA contraction the compiler may choose.  NaN fails.
    """
    a = np.asarray(actual, dtype=np.float64).reshape(-1)
    e = np.asarray(expected, dtype=np.float64).reshape(-1)
    s = np.asarray(scale, dtype=np.float64).reshape(-1)
    if a.shape != e.shape:
        return Check(False, "bound", e.size, max(a.size, e.size), 0, output=output)
    with np.errstate(invalid="ignore", over="ignore"):
        rel = np.abs(a - e) / np.maximum(s, np.finfo(np.float64).tiny)
        ok = rel <= tolerance
    worst = float(np.max(rel)) if rel.size and not np.isnan(rel).any() else float("inf")
    if ok.all():
        return Check(True, "bound", e.size, 0, max_error=worst, tolerance=tolerance, output=output)
    bad = np.flatnonzero(~ok)
    i = int(bad[0])
    return Check(
        False,
        "bound",
        e.size,
        int(bad.size),
        i,
        _scalar(e[i]),
        _scalar(a[i]),
        max_error=worst,
        tolerance=tolerance,
        output=output,
    )


# A hook that may alter an expected array before comparison; the self-tests use it to prove a
# wrong expectation is caught on real device output.  Arguments: output name, expected array.
Tamper = Callable[[str, np.ndarray], np.ndarray]


def _expect(tamper: Tamper | None, name: str, expected: np.ndarray) -> np.ndarray:
    return expected if tamper is None else tamper(name, expected)


# ---------------------------------------------------------------------------------------------
# Timing


@frozen
class Timing:
    """Per-repetition times of one kernel; ``source`` says whether the GPU or the host timed."""

    samples_ns: tuple[float, ...]
    source: str  # "gpu-timestamps" | "host-wall-clock"
    warmup: int = 0

    @property
    def median_ns(self) -> float:
        return float(statistics.median(self.samples_ns))

    @property
    def min_ns(self) -> float:
        return float(min(self.samples_ns))

    @property
    def max_ns(self) -> float:
        return float(max(self.samples_ns))

    @property
    def spread(self) -> float:
        """(max - min) / median: 0.02 means the repetitions agree within 2 %."""
        median = self.median_ns
        return (self.max_ns - self.min_ns) / median if median > 0 else 0.0

    @classmethod
    def from_dispatch(cls, timing: DispatchTiming, warmup: int) -> Timing:
        if timing.has_gpu_time:
            return cls(timing.gpu_ns, "gpu-timestamps", warmup)
        # Without timestamps only the whole submit is timed; spread it over the dispatches.
        return cls((timing.wall_s * 1e9 / timing.dispatches,), "host-wall-clock", warmup)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "median_ns": self.median_ns,
            "min_ns": self.min_ns,
            "max_ns": self.max_ns,
            "spread": round(self.spread, 4),
            "repetitions": len(self.samples_ns),
            "warmup": self.warmup,
            "samples_ns": list(self.samples_ns),
        }
