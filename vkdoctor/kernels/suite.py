"""Real compute work on a device: the `dispatch` probe's smoke test and the kernel suite.

Every run uses fresh random inputs, is verified against numpy (bit-exact where the arithmetic
allows it, else against float64 with an error bound that holds for any legal evaluation order),
and is timed with GPU timestamps (warm-up, repetitions, median and spread).  Failures - a wrong
result, a Vulkan error, a lost device, a hang - come back as typed results that turn into
Findings; nothing here raises for a device misbehaving.

Headless: no rich/textual.  The TUI and CLI build on ``run_suite``/``run_smoke`` and on the
``to_dict()`` forms, which are JSON-able.
"""

from __future__ import annotations

import functools
import math
import statistics
import struct
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from vkdoctor.report.codes import CodeInfo, code_table, make_finding
from vkdoctor.report.model import Finding, Severity
from vkdoctor.vulkan.compute import (
    ComputeContext,
    ComputeError,
    DeviceInfo,
    DeviceLost,
    DispatchTiming,
    FenceTimeout,
    Instance,
    NoComputeQueue,
    ShaderNotFound,
    UnsupportedFeature,
    VulkanError,
    grid_1d,
    make_version,
)

_RUN03 = "See failure mode RUN-03 (GPU hang / device lost)."

CODES = code_table(
    [
        CodeInfo(
            "dispatch-wrong-result",
            Severity.FAIL,
            "The smoke compute shader produced wrong results",
            "vkdoctor's smoke shader does only exact 32-bit integer and float arithmetic, so "
            "its output must match numpy bit for bit on every conformant device.",
            causes=(
                "a driver or compiler bug",
                "specialization constants ignored (the smoke shader's default workgroup size "
                "is 1, so most elements stay unwritten)",
                "memory corruption or an unhealthy GPU",
            ),
            remedy="Update the driver; if it persists with vkdoctor's trivial shader, report it "
            "to the driver vendor with this report attached.",
        ),
        CodeInfo(
            "dispatch-push-constants-stale",
            Severity.FAIL,
            "A second dispatch reused the first dispatch's push constants",
            "The smoke shader ran twice with different push constants; the second result "
            "equals what the first push constants produce (RUN-04).",
            causes=(
                "a pipeline or layout cache keyed without the push-constant range",
                "push constants not re-recorded after a cache hit",
                "a driver bug in push-constant updates",
            ),
            remedy="Include push-constant size/layout and specialization data in pipeline cache "
            "keys and re-apply push constants on every dispatch; if vkdoctor itself shows this, "
            "the driver is at fault: update it.",
        ),
        CodeInfo(
            "dispatch-out-of-bounds-write",
            Severity.FAIL,
            "The smoke shader wrote past the end of its output",
            "Elements after the last one the shader may write were changed.",
            causes=("a driver bug in bounds handling", "a wrong workgroup size"),
            remedy="Update the driver and report the bug with this report attached.",
        ),
        CodeInfo(
            "dispatch-device-lost",
            Severity.FAIL,
            "The device was lost during the smoke dispatch (VK_ERROR_DEVICE_LOST)",
            "The GPU reset or faulted while running vkdoctor's trivial shader. " + _RUN03,
            causes=("GPU hang or reset", "driver bug", "hardware, power or thermal problems"),
            remedy="Check `dmesg` / `journalctl -k` for GPU reset, Xid or hang messages; update "
            "the driver; check power and thermals.",
        ),
        CodeInfo(
            "dispatch-timeout",
            Severity.FAIL,
            "The smoke dispatch did not finish in time",
            "vkWaitForFences timed out on a dispatch that takes microseconds. " + _RUN03,
            causes=("a hung GPU or driver", "a device saturated by other work"),
            remedy="Check `dmesg` / `journalctl -k` for GPU hang messages and what else is "
            "using the GPU (`nvidia-smi`, `radeontop`, `intel_gpu_top`); update the driver.",
        ),
        CodeInfo(
            "dispatch-no-compute-queue",
            Severity.FAIL,
            "The device has no compute queue",
            "No queue family of this device has VK_QUEUE_COMPUTE_BIT; it cannot run compute "
            "work (DEV-02).",
            causes=("a display-, video- or graphics-only device",),
            remedy="Use another device for compute.",
        ),
        CodeInfo(
            "dispatch-vulkan-error",
            Severity.FAIL,
            "A Vulkan call failed while preparing or running the smoke dispatch",
            "Creating the device, buffers or pipeline, or submitting the work, returned an "
            "error VkResult.",
            causes=("out of device or host memory", "a driver bug", "an incomplete driver"),
            remedy="Look at the failing call and VkResult in the evidence; update the driver.",
        ),
        CodeInfo(
            "dispatch-shader-missing",
            Severity.FAIL,
            "vkdoctor's SPIR-V modules are missing",
            "The package data holding the compiled shaders could not be read.",
            causes=("a broken installation",),
            remedy="Reinstall vkdoctor.",
        ),
        CodeInfo(
            "dispatch-no-timestamps",
            Severity.INFO,
            "The compute queue cannot write timestamps",
            "timestampValidBits is 0 for every compute queue family, so GPU times are "
            "unavailable; host wall-clock times are reported instead.",
        ),
        CodeInfo(
            "kernel-wrong-result",
            Severity.FAIL,
            "A benchmark kernel produced wrong results",
            "The kernel's output disagrees with numpy beyond the error bound of its arithmetic.",
            causes=("a driver or shader-compiler bug", "an unhealthy GPU (memory errors)"),
            remedy="Update the driver; if it persists, report it with this report attached.",
        ),
        CodeInfo(
            "kernel-failed",
            Severity.FAIL,
            "A benchmark kernel could not run",
            "A Vulkan call failed while building or running the kernel (pipeline creation "
            "counts as compiling the shader).",
            causes=("out of device memory", "a shader-compiler bug", "an incomplete driver"),
            remedy="Look at the failing call and VkResult in the evidence; update the driver.",
        ),
        CodeInfo(
            "kernel-timeout",
            Severity.FAIL,
            "A benchmark kernel did not finish in time",
            "vkWaitForFences timed out; the device may be hung. " + _RUN03,
            causes=("a hung GPU", "a device much slower than its type suggests"),
            remedy="Check `dmesg` / `journalctl -k` for GPU hang messages; update the driver.",
        ),
        CodeInfo(
            "kernel-device-lost",
            Severity.FAIL,
            "The device was lost while running a benchmark kernel",
            "VK_ERROR_DEVICE_LOST: the GPU reset or faulted. " + _RUN03,
            causes=("GPU hang or reset", "driver bug", "power or thermal problems"),
            remedy="Check `dmesg` / `journalctl -k` for GPU reset or Xid messages; update the "
            "driver; check power and thermals.",
        ),
        CodeInfo(
            "kernel-unsupported",
            Severity.INFO,
            "A benchmark kernel does not apply to this device",
            "The device lacks a feature or limit the kernel needs (for example shaderFloat16).",
        ),
    ]
)


# ---------------------------------------------------------------------------------------------
# SPIR-V modules (package data)

SHADER_PACKAGE = "vkdoctor.shaders"


@functools.cache
def load_spirv(name: str) -> bytes:
    """The committed SPIR-V module ``name`` (``smoke``, ``sgemm``...).

    Installed, it is package data of ``vkdoctor.shaders``; run from a plain source checkout
    (``PYTHONPATH=.``, as on a freshly provisioned GPU machine) it is read from ``shaders/``.
    """
    try:
        return resources.files(SHADER_PACKAGE).joinpath(f"{name}.spv").read_bytes()
    except (OSError, ModuleNotFoundError) as exc:
        checkout = Path(__file__).resolve().parents[2] / "shaders" / f"{name}.spv"
        try:
            return checkout.read_bytes()
        except OSError:
            raise ShaderNotFound(
                f"SPIR-V module {name}.spv not found in {SHADER_PACKAGE} ({exc}) or {checkout}"
            ) from exc


# ---------------------------------------------------------------------------------------------
# Verification


def _scalar(value: Any) -> int | float | str:
    """A JSON-safe Python scalar (non-finite floats become strings)."""
    item = value.item() if hasattr(value, "item") else value
    if isinstance(item, float) and not math.isfinite(item):
        return repr(item)
    return item


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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


# ---------------------------------------------------------------------------------------------
# The smoke dispatch


@dataclass(frozen=True)
class SmokePush:
    mul: int
    add: int
    scale: float  # a power of two, so the float path stays exact

    def pack(self, n: int) -> bytes:
        return struct.pack("<IIIf", n, self.mul & 0xFFFFFFFF, self.add & 0xFFFFFFFF, self.scale)

    def to_dict(self) -> dict[str, Any]:
        return {"mul": self.mul, "add": self.add, "scale": self.scale}


# Two runs whose every push-constant member differs (RUN-04).
SMOKE_PUSHES = (SmokePush(3, 0x1234, 0.5), SmokePush(0x9E3779B1, 0x7, 4.0))
_SENTINEL = 0xDEADBEEF
_TAIL = 61  # words after n that must stay untouched


def smoke_expected(a: np.ndarray, b: np.ndarray, push: SmokePush) -> tuple[np.ndarray, np.ndarray]:
    """What smoke.comp must produce, in numpy's wrapping uint32 and exact float32."""
    i = np.arange(a.size, dtype=np.uint32)
    out_u = (a * np.uint32(push.mul) + b) ^ (i + np.uint32(push.add))
    out_f = (a & np.uint32(0xFFFF)).astype(np.float32) * np.float32(push.scale) + (
        b & np.uint32(0xFF)
    ).astype(np.float32)
    return out_u, out_f


@dataclass(frozen=True)
class SmokeRun:
    push: SmokePush
    check: Check  # the first failing output, else the last one
    stale_push_constants: bool  # output equals what the previous run's push constants give
    tail_intact: bool
    gpu_time_ns: float | None
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "push_constants": self.push.to_dict(),
            "check": self.check.to_dict(),
            "stale_push_constants": self.stale_push_constants,
            "tail_intact": self.tail_intact,
            "gpu_time_ns": self.gpu_time_ns,
            "wall_s": self.wall_s,
        }


class SmokeStatus(str, Enum):
    OK = "ok"
    WRONG_RESULT = "wrong-result"
    TIMEOUT = "timeout"
    DEVICE_LOST = "device-lost"
    VULKAN_ERROR = "vulkan-error"
    NO_COMPUTE_QUEUE = "no-compute-queue"
    SHADER_MISSING = "shader-missing"


@dataclass(frozen=True)
class SmokeResult:
    device: str
    driver: str
    status: SmokeStatus
    runs: tuple[SmokeRun, ...] = ()
    elements: int = 0
    workgroup_size: int = 0
    queue_family: int | None = None
    timestamps: bool = False
    error: str | None = None  # the VkResult name, when a Vulkan call failed
    message: str = ""
    wall_s: float = 0.0

    @property
    def verified(self) -> bool:
        return self.status is SmokeStatus.OK

    @property
    def gpu_time_ns(self) -> float | None:
        times = [r.gpu_time_ns for r in self.runs if r.gpu_time_ns is not None]
        return sum(times) if times and len(times) == len(self.runs) else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "driver": self.driver,
            "status": self.status.value,
            "verified": self.verified,
            "elements": self.elements,
            "workgroup_size": self.workgroup_size,
            "queue_family": self.queue_family,
            "timestamps": self.timestamps,
            "gpu_time_ns": self.gpu_time_ns,
            "wall_s": self.wall_s,
            "error": self.error,
            "message": self.message,
            "runs": [r.to_dict() for r in self.runs],
        }

    def findings(self) -> list[Finding]:
        ev: dict[str, Any] = {"device": self.device, "driver": self.driver}
        out: list[Finding] = []
        if self.status is SmokeStatus.OK:
            pass
        elif self.status is SmokeStatus.WRONG_RESULT:
            for n, run in enumerate(self.runs, 1):
                run_ev = {**ev, "run": n, **run.to_dict()}
                if run.stale_push_constants:
                    out.append(
                        make_finding(
                            CODES,
                            "dispatch-push-constants-stale",
                            f"{self.device}: run {n} of the smoke shader used run {n - 1}'s "
                            "push constants",
                            evidence=run_ev,
                        )
                    )
                elif not run.check.passed:
                    c = run.check
                    out.append(
                        make_finding(
                            CODES,
                            "dispatch-wrong-result",
                            f"{self.device}: smoke run {n}: {c.mismatches} of {c.checked} "
                            f"{c.output} values wrong; first at index {c.first_bad_index} "
                            f"(expected {c.expected}, got {c.actual})",
                            evidence=run_ev,
                        )
                    )
                if not run.tail_intact:
                    out.append(
                        make_finding(
                            CODES,
                            "dispatch-out-of-bounds-write",
                            f"{self.device}: smoke run {n} wrote past element {self.elements}",
                            evidence=run_ev,
                        )
                    )
        else:
            code = {
                SmokeStatus.TIMEOUT: "dispatch-timeout",
                SmokeStatus.DEVICE_LOST: "dispatch-device-lost",
                SmokeStatus.VULKAN_ERROR: "dispatch-vulkan-error",
                SmokeStatus.NO_COMPUTE_QUEUE: "dispatch-no-compute-queue",
                SmokeStatus.SHADER_MISSING: "dispatch-shader-missing",
            }[self.status]
            out.append(
                make_finding(
                    CODES,
                    code,
                    f"{self.device}: {self.message}",
                    evidence={**ev, "error": self.error, "message": self.message},
                )
            )
        if self.runs and not self.timestamps:
            out.append(
                make_finding(
                    CODES,
                    "dispatch-no-timestamps",
                    f"{self.device}: no GPU timestamps on the compute queue; times are "
                    "host wall-clock",
                    evidence=ev,
                )
            )
        return out


def _error_status(exc: ComputeError) -> tuple[SmokeStatus, str | None]:
    if isinstance(exc, FenceTimeout):
        return SmokeStatus.TIMEOUT, exc.result
    if isinstance(exc, DeviceLost):
        return SmokeStatus.DEVICE_LOST, exc.result
    if isinstance(exc, NoComputeQueue):
        return SmokeStatus.NO_COMPUTE_QUEUE, None
    if isinstance(exc, ShaderNotFound):
        return SmokeStatus.SHADER_MISSING, None
    return SmokeStatus.VULKAN_ERROR, exc.result


def run_smoke(
    ctx: ComputeContext,
    *,
    elements: int = 4099,
    workgroup_size: int = 64,
    pushes: Sequence[SmokePush] = SMOKE_PUSHES,
    seed: int | None = None,
    timeout_s: float | None = None,
    tamper_expected: Tamper | None = None,
) -> SmokeResult:
    """Run smoke.comp once per push-constant set on the same pipeline and buffers; verify each.

    ``elements`` is deliberately not a multiple of the workgroup size (tail handling), and the
    words after it are checked to be untouched.
    """
    info = ctx.info
    base = {
        "device": info.name,
        "driver": info.driver,
        "elements": elements,
        "workgroup_size": workgroup_size,
        "queue_family": ctx.queue_family,
        "timestamps": ctx.has_timestamps,
    }
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    total = elements + _TAIL
    a = rng.integers(0, 2**32, total, dtype=np.uint32)
    b = rng.integers(0, 2**32, total, dtype=np.uint32)
    runs: list[SmokeRun] = []
    buffers = []
    try:
        spirv = load_spirv("smoke")
        buffers = [ctx.upload(a), ctx.upload(b), ctx.buffer(4 * total), ctx.buffer(4 * total)]
        pipe = ctx.pipeline(
            spirv,
            bindings=4,
            push_constant_size=16,
            specialization={0: workgroup_size},
            name="smoke",
        )
        groups = grid_1d(-(-elements // workgroup_size), info.limits.max_workgroup_count)
        previous: tuple[np.ndarray, np.ndarray] | None = None
        for push in pushes:
            # Fresh sentinels each run: a run that writes nothing cannot pass on old output.
            ctx.fill(buffers[2], _SENTINEL)
            ctx.fill(buffers[3], _SENTINEL)
            timing = ctx.dispatch(pipe, buffers, groups, push.pack(elements), timeout_s=timeout_s)
            got_u = buffers[2].read(np.uint32)
            got_f = buffers[3].read(np.float32)
            exp_u, exp_f = smoke_expected(a[:elements], b[:elements], push)
            check_u = check_exact(
                got_u[:elements], _expect(tamper_expected, "smoke/out_u", exp_u), "out_u"
            )
            check_f = check_exact(
                got_f[:elements], _expect(tamper_expected, "smoke/out_f", exp_f), "out_f"
            )
            stale = (
                previous is not None
                and not (check_u.passed and check_f.passed)
                and np.array_equal(got_u[:elements], previous[0])
                and np.array_equal(got_f[:elements].view(np.uint32), previous[1].view(np.uint32))
            )
            tail_ok = bool(
                (got_u[elements:] == _SENTINEL).all()
                and (got_f[elements:].view(np.uint32) == _SENTINEL).all()
            )
            runs.append(
                SmokeRun(
                    push=push,
                    check=check_u if not check_u.passed else check_f,
                    stale_push_constants=bool(stale),
                    tail_intact=tail_ok,
                    gpu_time_ns=timing.gpu_ns[0] if timing.has_gpu_time else None,
                    wall_s=timing.wall_s,
                )
            )
            previous = (exp_u, exp_f)
    except ComputeError as exc:
        status, result = _error_status(exc)
        return SmokeResult(
            status=status,
            runs=tuple(runs),
            error=result,
            message=str(exc),
            wall_s=time.perf_counter() - start,
            **base,
        )
    finally:
        for buf in buffers:
            buf.destroy()
    good = all(r.check.passed and r.tail_intact for r in runs)
    return SmokeResult(
        status=SmokeStatus.OK if good else SmokeStatus.WRONG_RESULT,
        runs=tuple(runs),
        wall_s=time.perf_counter() - start,
        **base,
    )


def smoke_device(
    instance: Instance, device_index: int, *, timeout_s: float = 5.0, **kwargs: Any
) -> SmokeResult:
    """Open a context on one device, run the smoke test and close it; errors become results."""
    info = instance.physical_devices()[device_index]
    try:
        ctx = ComputeContext(instance, device_index, enable_float16=False, timeout_s=timeout_s)
    except ComputeError as exc:
        status, result = _error_status(exc)
        return SmokeResult(
            device=info.name, driver=info.driver, status=status, error=result, message=str(exc)
        )
    with ctx:
        return run_smoke(ctx, **kwargs)


# ---------------------------------------------------------------------------------------------
# Suite configuration


@dataclass(frozen=True)
class SgemmTiles:
    """SGEMM tiling (specialization constants 1-5); the workgroup follows from them."""

    bm: int = 128
    bn: int = 128
    bk: int = 16
    tm: int = 8
    tn: int = 8
    pad: int = 4  # floats of padding per k-row of the transposed A tile (constant 6)
    buffers: int = 1  # shared-memory copies of the tiles: 1 for sgemm.comp, 2 for conv2d.comp

    @property
    def workgroup_size(self) -> int:
        return (self.bm // self.tm) * (self.bn // self.tn)

    @property
    def shared_bytes(self) -> int:
        return 4 * self.buffers * self.bk * ((self.bm + self.pad) + self.bn)

    def problem(self, info: DeviceInfo) -> str | None:
        """Why these tiles cannot run on ``info``, or None."""
        if self.tm % 4 or self.tn % 4 or self.bk % 4 or self.pad % 4:
            return "tm, tn, bk and pad must be multiples of 4"
        if self.bm % self.tm or self.bn % self.tn:
            return "bm and bn must be multiples of tm and tn"
        if self.workgroup_size > info.limits.max_workgroup_invocations:
            return f"workgroup of {self.workgroup_size} exceeds maxComputeWorkGroupInvocations"
        if self.shared_bytes > info.limits.max_compute_shared_memory:
            return f"{self.shared_bytes} bytes of shared memory exceed maxComputeSharedMemorySize"
        return None

    def specialization(self) -> dict[int, int]:
        return {
            0: self.workgroup_size,
            1: self.bm,
            2: self.bn,
            3: self.bk,
            4: self.tm,
            5: self.tn,
            6: self.pad,
        }

    def to_dict(self) -> dict[str, int]:
        return {
            "bm": self.bm,
            "bn": self.bn,
            "bk": self.bk,
            "tm": self.tm,
            "tn": self.tn,
            "pad": self.pad,
        }


@dataclass(frozen=True)
class ConvShape:
    """One convolution layer: NHWC input of ``batch`` images, a square ``2r+1`` filter, stride 1,
    zero padding ``r`` (output the size of the input)."""

    batch: int
    height: int
    width: int
    cin: int
    cout: int
    radius: int = 1
    name: str = ""

    @property
    def taps(self) -> int:
        return 2 * self.radius + 1

    @property
    def pixels(self) -> int:
        return self.batch * self.height * self.width

    @property
    def k(self) -> int:
        return self.taps * self.taps * self.cin

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "batch": self.batch,
            "height": self.height,
            "width": self.width,
            "cin": self.cin,
            "cout": self.cout,
            "kernel": self.taps,
        }


# Real layers: the 3x3 convolutions of ResNet-50's stages 2-4 (He et al. 2015, table 1) at
# training batch 128.  The suite times conv2_x by default; bench_kernels.py --conv-shape picks
# another.  The Vulkan kernel is NHWC; cuDNN is timed in both layouts.
RESNET50 = {
    "resnet50-conv2x": ConvShape(128, 56, 56, 64, 64, 1, "resnet50-conv2x"),
    "resnet50-conv3x": ConvShape(128, 28, 28, 128, 128, 1, "resnet50-conv3x"),
    "resnet50-conv4x": ConvShape(128, 14, 14, 256, 256, 1, "resnet50-conv4x"),
}
# Tiles measured best per layer on an NVIDIA H200 (driver 580).
CONV_TILES = {
    "resnet50-conv2x": SgemmTiles(128, 64, 8, 8, 8, 4, 2),
    "resnet50-conv3x": SgemmTiles(128, 128, 16, 8, 8, 4, 2),
    "resnet50-conv4x": SgemmTiles(128, 128, 16, 8, 8, 4, 2),
}


# Spin-up of GPUs before each timed kernel (SuiteSizes.spin_up_s).  NVIDIA's driver, for one,
# lowers the SM clock under light load (nvidia-smi: clocks event reason "GPU idle") and raises
# it again only under sustained load.  The suite's host-side phases (random inputs, 1 GiB
# staged transfers, verification) leave the GPU nearly idle for seconds, so on an H200 (driver
# 580) the SM clock had fallen from 1980 to 345 MHz by the second or third kernel and the copy
# kernels measured 1.7 TB/s instead of 4.3; a dozen 0.5 ms warm-up dispatches do not bring it
# back.  Measured there, back-to-back copy or FMA dispatches restore the full clock after
# 0.25-0.35 s; 0.5 s leaves a margin.  Fresh contexts hid all this: creating a device boosts
# the clock for about 3 s, which is why standalone measurements looked fine.
SPIN_UP_S = 0.5


@dataclass(frozen=True)
class SuiteSizes:
    """Problem sizes and repetition counts; ``for_device`` picks them from the device."""

    workgroup_size: int = 256
    bandwidth_bytes: int = 16 << 20  # per buffer; bytes moved are twice this
    grid_workgroups: int = 64  # for the grid-stride kernels
    saxpy_elements: int = 1 << 22
    reduce_elements: int = 1 << 22
    reduce_variant: str = "auto"  # auto | subgroup | shared-memory
    fma_workgroups: int = 16
    fma_iters: int = 32  # loop trips; each is 8 step pairs on 4 vec4 chains
    sgemm_n: int = 256  # M = N = K
    sgemm_tiles: SgemmTiles = field(default_factory=lambda: SgemmTiles(64, 64, 16, 4, 4))
    # Not multiples of the tile: the partial last row tile runs.  lavapipe: about 21 MFLOP.
    conv: ConvShape = field(default_factory=lambda: ConvShape(2, 13, 11, 16, 64, 1, "small"))
    conv_tiles: SgemmTiles = field(default_factory=lambda: SgemmTiles(64, 64, 16, 4, 4, 4, 2))
    warmup: int = 1
    repetitions: int = 3
    # Seconds of back-to-back dispatches of the kernel itself before it is timed (0: none).
    # GPUs drop their clocks within a second or two of light load and take far longer than a
    # few dispatches to raise them again; see _Job.spin_up.
    spin_up_s: float = 0.0
    verify_limit: int = 1 << 20  # above this many outputs, SGEMM/conv verify sampled rows

    @classmethod
    def small(cls) -> SuiteSizes:
        """CPU drivers (lavapipe): the whole suite in a few seconds."""
        return cls()

    @classmethod
    def tiny(cls) -> SuiteSizes:
        """For tests: every kernel in well under a second on lavapipe."""
        return cls(
            bandwidth_bytes=1 << 20,
            grid_workgroups=8,
            saxpy_elements=1 << 16,
            reduce_elements=(1 << 16) + 12,  # not a multiple of the grid: tail paths run
            fma_workgroups=2,
            fma_iters=8,
            sgemm_n=128,
            conv=ConvShape(1, 9, 7, 8, 64, 1, "tiny"),
            conv_tiles=SgemmTiles(64, 64, 8, 4, 4, 4, 2),
            warmup=1,
            repetitions=2,
        )

    @classmethod
    def large(cls, info: DeviceInfo) -> SuiteSizes:
        """Discrete GPUs: fill the chip and exceed every cache (1 GiB buffers, SGEMM 8192)."""
        budget = info.device_local_bytes or (8 << 30)
        big = budget >= (16 << 30)
        bw = min(1 << 30, _pow2_floor(info.limits.max_storage_buffer_range), budget // 8)
        if info.limits.max_memory_allocation_size:
            bw = min(bw, _pow2_floor(info.limits.max_memory_allocation_size))
        return cls(
            bandwidth_bytes=bw,
            grid_workgroups=4096,
            saxpy_elements=min(1 << 26, bw // 4),
            reduce_elements=bw // 4,
            # About 4 full waves of 256-invocation workgroups on a 132-SM chip: the partial
            # last wave costs a few percent at most.
            fma_workgroups=4096,
            fma_iters=4096,
            sgemm_n=8192 if big else 4096,
            # The fastest of a sweep on an NVIDIA H200 (driver 580), 8192^3: 128x256x16 with
            # 8x16 per invocation 43.0 TFLOP/s; 128x128x32 42.6; 128x128x16 37.9; 256x128x16
            # 40.3.  Other GPUs take the same tiles when their limits allow (problem()).
            sgemm_tiles=SgemmTiles(128, 256, 16, 8, 16),
            conv=RESNET50["resnet50-conv2x"],
            conv_tiles=CONV_TILES["resnet50-conv2x"],
            warmup=2,
            repetitions=10,
            spin_up_s=SPIN_UP_S,
        )

    @classmethod
    def for_device(cls, info: DeviceInfo) -> SuiteSizes:
        if info.is_cpu:
            return cls.small()
        if info.type == "discrete-gpu":
            return cls.large(info)
        # Integrated/virtual GPUs share system memory: a quarter of the discrete sizes.
        large = cls.large(info)
        return replace(
            large,
            bandwidth_bytes=large.bandwidth_bytes // 4,
            saxpy_elements=large.saxpy_elements // 4,
            reduce_elements=large.reduce_elements // 4,
            fma_workgroups=512,
            fma_iters=2048,
            sgemm_n=2048,
            conv=replace(large.conv, batch=32),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "workgroup_size": self.workgroup_size,
            "bandwidth_bytes": self.bandwidth_bytes,
            "grid_workgroups": self.grid_workgroups,
            "saxpy_elements": self.saxpy_elements,
            "reduce_elements": self.reduce_elements,
            "reduce_variant": self.reduce_variant,
            "fma_workgroups": self.fma_workgroups,
            "fma_iters": self.fma_iters,
            "sgemm_n": self.sgemm_n,
            "sgemm_tiles": self.sgemm_tiles.to_dict(),
            "conv": self.conv.to_dict(),
            "conv_tiles": self.conv_tiles.to_dict(),
            "warmup": self.warmup,
            "repetitions": self.repetitions,
            "spin_up_s": self.spin_up_s,
        }


def _pow2_floor(n: int) -> int:
    return 1 << (max(n, 1).bit_length() - 1)


# ---------------------------------------------------------------------------------------------
# Kernel results


class KernelStatus(str, Enum):
    OK = "ok"
    WRONG_RESULT = "wrong-result"
    UNSUPPORTED = "unsupported"
    FAILED = "failed"
    TIMEOUT = "timeout"
    DEVICE_LOST = "device-lost"
    SKIPPED = "skipped"  # an earlier kernel left the device unusable


@dataclass(frozen=True)
class KernelResult:
    kernel: str
    title: str
    status: KernelStatus
    device: str
    driver: str
    sizes: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    bytes_moved: int = 0  # bytes read + written by one dispatch
    flops: int = 0  # floating-point operations of one dispatch (an FMA counts 2)
    timing: Timing | None = None
    check: Check | None = None
    error: str | None = None  # VkResult name when a Vulkan call failed
    message: str = ""

    @property
    def gb_per_s(self) -> float | None:
        if not self.timing or not self.bytes_moved:
            return None
        return self.bytes_moved / self.timing.median_ns  # bytes/ns == GB/s

    @property
    def gflop_per_s(self) -> float | None:
        if not self.timing or not self.flops:
            return None
        return self.flops / self.timing.median_ns

    def to_dict(self) -> dict[str, Any]:
        return {
            "kernel": self.kernel,
            "title": self.title,
            "status": self.status.value,
            "device": self.device,
            "driver": self.driver,
            "sizes": dict(self.sizes),
            "params": dict(self.params),
            "bytes": self.bytes_moved,
            "flops": self.flops,
            "gb_per_s": self.gb_per_s,
            "gflop_per_s": self.gflop_per_s,
            "timing": self.timing.to_dict() if self.timing else None,
            "check": self.check.to_dict() if self.check else None,
            "error": self.error,
            "message": self.message,
        }

    def finding(self) -> Finding | None:
        ev = {"kernel": self.kernel, "device": self.device, "driver": self.driver}
        if self.status is KernelStatus.WRONG_RESULT and self.check is not None:
            c = self.check
            return make_finding(
                CODES,
                "kernel-wrong-result",
                f"{self.device}: {self.title}: {c.mismatches} of {c.checked} values wrong; "
                f"first at index {c.first_bad_index} (expected {c.expected}, got {c.actual})",
                evidence={**ev, "check": c.to_dict(), "sizes": dict(self.sizes)},
            )
        code = {
            KernelStatus.FAILED: "kernel-failed",
            KernelStatus.TIMEOUT: "kernel-timeout",
            KernelStatus.DEVICE_LOST: "kernel-device-lost",
            KernelStatus.UNSUPPORTED: "kernel-unsupported",
        }.get(self.status)
        if code is None:
            return None
        return make_finding(
            CODES,
            code,
            f"{self.device}: {self.title}: {self.message}",
            evidence={**ev, "error": self.error, "message": self.message},
        )


@dataclass(frozen=True)
class SuiteResult:
    device: DeviceInfo
    sizes: SuiteSizes
    results: tuple[KernelResult, ...]
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device.to_dict(),
            "sizes": self.sizes.to_dict(),
            "wall_s": self.wall_s,
            "results": [r.to_dict() for r in self.results],
        }

    def findings(self) -> list[Finding]:
        return [f for f in (r.finding() for r in self.results) if f is not None]

    def result(self, kernel: str) -> KernelResult:
        for r in self.results:
            if r.kernel == kernel:
                return r
        raise KeyError(kernel)


# ---------------------------------------------------------------------------------------------
# The kernels


@dataclass(frozen=True)
class _Outcome:
    """What a kernel body returns; the driver adds status, device and timing bookkeeping."""

    sizes: Mapping[str, Any]
    params: Mapping[str, Any]
    bytes_moved: int
    flops: int
    timing: DispatchTiming
    check: Check


class BufferPool:
    """Storage buffers reused by the kernels of one suite run, which saves allocating (and the
    driver clearing) gigabyte buffers again for every kernel.

    It does not change the bandwidth figures.  A drop of copy-vec4 from 4.27 to 1.67 TB/s on an
    NVIDIA H200 once a few 1 GiB buffers had been freed and reallocated was first blamed on
    the allocations; fresh, reused and dedicated allocations all measured the same, and the
    cause was the SM clock falling while the GPU idled between kernels (see SPIN_UP_S).
    """

    def __init__(self, ctx: ComputeContext) -> None:
        self.ctx = ctx
        self._free: dict[int, list[Any]] = {}

    def take(self, nbytes: int) -> Any:
        free = self._free.get(nbytes)
        while free:
            buf = free.pop()
            if buf.alive:
                return buf
        return self.ctx.buffer(nbytes)

    def give(self, buf: Any) -> None:
        if buf.alive and not self.ctx._work_may_be_running:
            self._free.setdefault(buf.nbytes, []).append(buf)
        else:
            buf.destroy()

    def close(self) -> None:
        for buffers in self._free.values():
            for buf in buffers:
                buf.destroy()
        self._free.clear()


@dataclass
class _Job:
    ctx: ComputeContext
    sizes: SuiteSizes
    rng: np.random.Generator
    tamper: Tamper | None
    pool: BufferPool | None = None
    buffers: list[Any] = field(default_factory=list)

    def _take(self, nbytes: int) -> Any:
        buf = self.pool.take(nbytes) if self.pool is not None else self.ctx.buffer(nbytes)
        self.buffers.append(buf)
        return buf

    def upload(self, array: np.ndarray) -> Any:
        buf = self._take(array.nbytes)
        buf.write(array)
        return buf

    def output(self, nbytes: int) -> Any:
        buf = self._take(nbytes)
        # A NaN/odd pattern, so an output the kernel never writes cannot match by luck.
        self.ctx.fill(buf, 0x7FC0DEAD)
        return buf

    def run(
        self,
        shader: str,
        buffers: Sequence[Any],
        groups: tuple[int, int, int],
        push: bytes,
        specialization: Mapping[int, int],
    ) -> DispatchTiming:
        pipe = self.ctx.pipeline(
            load_spirv(shader),
            bindings=len(buffers),
            push_constant_size=len(push),
            specialization=specialization,
            name=shader,
        )
        if self.sizes.spin_up_s > 0:
            self.spin_up(pipe, buffers, groups, push, self.sizes.spin_up_s)
        return self.ctx.dispatch(
            pipe,
            buffers,
            groups,
            push,
            warmup=self.sizes.warmup,
            repeat=self.sizes.repetitions,
        )

    def spin_up(
        self,
        pipe: Any,
        buffers: Sequence[Any],
        groups: tuple[int, int, int],
        push: bytes,
        seconds: float,
    ) -> None:
        """Keep the device busy with this very dispatch for ``seconds`` of wall time, so that
        the timed run finds the clocks the driver gives sustained load (see SPIN_UP_S).

        Submits of about 50 ms each, sized from one probe dispatch: one submit of the whole
        duration would be sized at the idle clock and end early once the clock rises, and
        short submits keep the fence timeout far away.  Every kernel writes only its outputs
        from unchanged inputs, so the extra runs do not change what is verified.
        """
        ctx = self.ctx
        start = time.perf_counter()
        probe = ctx.dispatch(pipe, buffers, groups, push)
        each_s = probe.gpu_ns[0] * 1e-9 if probe.has_gpu_time else probe.wall_s
        # At most 2000 dispatches per submit: recording each one costs the host microseconds.
        batch = min(max(int(0.05 / max(each_s, 1e-9)), 1), 2000)
        while time.perf_counter() - start < seconds:
            ctx.dispatch(pipe, buffers, groups, push, warmup=batch - 1)

    def expect(self, name: str, expected: np.ndarray) -> np.ndarray:
        return _expect(self.tamper, name, expected)

    def release(self) -> None:
        for buf in self.buffers:
            if self.pool is not None:
                self.pool.give(buf)
            else:
                buf.destroy()
        self.buffers.clear()


def _random_words(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.frombuffer(rng.bytes(4 * n), dtype=np.uint32)


def _bandwidth(job: _Job, shader: str, vec4: bool, grid: bool) -> _Outcome:
    sizes = job.sizes
    nbytes = sizes.bandwidth_bytes - sizes.bandwidth_bytes % 16
    words = nbytes // 4
    src_host = _random_words(job.rng, words)
    src = job.upload(src_host)
    dst = job.output(nbytes)
    count = words // 4 if vec4 else words
    wg = sizes.workgroup_size
    # copy.comp moves COPY_WORDS words per invocation (why: see the shader).
    per_invocation = 1 if vec4 else COPY_WORDS
    spec = {0: wg} if vec4 else {0: wg, 1: COPY_WORDS}
    limits = job.ctx.info.limits.max_workgroup_count
    groups = (
        (sizes.grid_workgroups, 1, 1)
        if grid
        else grid_1d(-(-count // (wg * per_invocation)), limits)
    )
    timing = job.run(shader, [src, dst], groups, struct.pack("<I", count), spec)
    got = dst.read(np.uint32, words)
    check = check_exact(got, job.expect(f"{shader}/dst", src_host), "dst")
    return _Outcome(
        sizes={"bytes": nbytes},
        params={
            "workgroup_size": wg,
            "groups": list(groups),
            "access": "uvec4" if vec4 else "uint",
            **({} if vec4 else {"words_per_invocation": COPY_WORDS}),
        },
        bytes_moved=2 * nbytes,
        flops=0,
        timing=timing,
        check=check,
    )


COPY_WORDS = 4  # specialization constant 1 of copy.comp


def _copy(job: _Job) -> _Outcome:
    return _bandwidth(job, "copy", vec4=False, grid=False)


def _copy_vec4(job: _Job) -> _Outcome:
    return _bandwidth(job, "copy_vec4", vec4=True, grid=False)


def _copy_grid(job: _Job) -> _Outcome:
    return _bandwidth(job, "copy_grid", vec4=True, grid=True)


_U = 2.0**-24  # unit roundoff of float32


def _saxpy(job: _Job) -> _Outcome:
    n = job.sizes.saxpy_elements - job.sizes.saxpy_elements % 4
    x = job.rng.standard_normal(n, dtype=np.float32)
    y = job.rng.standard_normal(n, dtype=np.float32)
    a = np.float32(job.rng.uniform(0.5, 2.0))
    bx, by = job.upload(x), job.upload(y)
    bz = job.output(4 * n)
    wg = job.sizes.workgroup_size
    groups = grid_1d(-(-(n // 4) // wg), job.ctx.info.limits.max_workgroup_count)
    timing = job.run("saxpy", [bx, by, bz], groups, struct.pack("<If", n // 4, a), {0: wg})
    got = bz.read(np.float32, n)
    ax = np.float64(a) * x.astype(np.float64)
    expected = ax + y
    # Fused: one rounding of |ax + y|; unfused: u|ax| + u|ax + y|.  2u(|ax| + |y|) covers both.
    check = check_bound(
        got, job.expect("saxpy/z", expected), np.abs(ax) + np.abs(y), 2 * _U * 1.0001, "z"
    )
    return _Outcome(
        sizes={"elements": n},
        params={"workgroup_size": wg, "a": float(a)},
        bytes_moved=12 * n,
        flops=2 * n,
        timing=timing,
        check=check,
    )


def _reduce(job: _Job) -> _Outcome:
    ctx = job.ctx
    info = ctx.info
    n = job.sizes.reduce_elements - job.sizes.reduce_elements % 4
    wg = job.sizes.workgroup_size
    effective = min(info.api_version_raw, ctx.instance.api_version)
    subgroup_ok = (
        info.subgroup is not None and info.subgroup.arithmetic and effective >= make_version(1, 1)
    )
    variant = job.sizes.reduce_variant
    if variant == "subgroup" and not subgroup_ok:
        raise UnsupportedFeature("no subgroup arithmetic in compute shaders on this device")
    use_subgroup = subgroup_ok if variant == "auto" else variant == "subgroup"
    if not use_subgroup and wg & (wg - 1):
        raise UnsupportedFeature("the shared-memory reduction needs a power-of-two workgroup")
    shader = "reduce_subgroup" if use_subgroup else "reduce_shared"
    src_host = _random_words(job.rng, n)
    src = job.upload(src_host)
    groups_x = job.sizes.grid_workgroups
    partial = job.output(4 * groups_x)
    timing = job.run(shader, [src, partial], (groups_x, 1, 1), struct.pack("<I", n // 4), {0: wg})
    partials = partial.read(np.uint32, groups_x)
    total = np.array([int(partials.sum(dtype=np.uint64)) & 0xFFFFFFFF], dtype=np.uint32)
    expected = np.array([int(src_host.sum(dtype=np.uint64)) & 0xFFFFFFFF], dtype=np.uint32)
    check = check_exact(total, job.expect("reduce/sum", expected), "sum")
    return _Outcome(
        sizes={"elements": n},
        params={
            "workgroup_size": wg,
            "groups": groups_x,
            "variant": "subgroup" if use_subgroup else "shared-memory",
            "subgroup_size": info.subgroup.size if info.subgroup else None,
        },
        bytes_moved=4 * n + 4 * groups_x,
        flops=0,  # integer adds: a bandwidth kernel, reported in GB/s only
        timing=timing,
        check=check,
    )


# (chains per invocation, step pairs per loop trip, lanes per chain) of each fma_*.comp: CHAINS,
# UNROLL and the vector width (vec4 for fp32, packed f16vec2 for fp16; fma_fp16.comp says why).
_FMA_SHAPE = {"fma_fp32": (4, 8, 4), "fma_fp16": (8, 8, 2)}


def _fma(job: _Job, fp16: bool) -> _Outcome:
    ctx = job.ctx
    if fp16 and not ctx.float16:
        why = (
            "the device does not support shaderFloat16"
            if not ctx.info.shader_float16
            else "the compute context was created without shaderFloat16"
        )
        raise UnsupportedFeature(why)
    shader = "fma_fp16" if fp16 else "fma_fp32"
    chains, unroll, width = _FMA_SHAPE[shader]
    wg = job.sizes.workgroup_size
    threads = job.sizes.fma_workgroups * wg
    iters = job.sizes.fma_iters
    steps = iters * unroll  # step pairs per chain
    lanes = threads * chains * width
    if fp16:
        # Integers below 256: 2x+1 < 2048 stays exact in binary16, and each pair restores x.
        a, b, c, d = 2.0, 1.0, 0.5, -0.5
        seed = job.rng.integers(0, 256, lanes).astype(np.float32)
        expected = seed.copy()
    else:
        # Seeds on a 2^-8 grid in [0, 16); each pair adds exactly 2^-8.
        a, b, c, d = 2.0, 2.0**-8, 0.5, 2.0**-9
        if 16 + steps * 2.0**-8 >= 2.0**14:
            raise UnsupportedFeature(f"fma_iters={iters} leaves the exactly representable range")
        seed = (job.rng.integers(0, 4096, lanes) * 2.0**-8).astype(np.float32)
        expected = (seed.astype(np.float64) + steps * 2.0**-8).astype(np.float32)
    bseed = job.upload(seed)
    bout = job.output(4 * lanes)
    timing = job.run(
        shader,
        [bseed, bout],
        (job.sizes.fma_workgroups, 1, 1),
        struct.pack("<Iffff", iters, a, b, c, d),
        {0: wg},
    )
    got = bout.read(np.float32, lanes)
    check = check_exact(got, job.expect(f"{shader}/result", expected), "result")
    return _Outcome(
        sizes={"invocations": threads, "chains": chains * width, "step_pairs": steps},
        params={
            "workgroup_size": wg,
            "precision": "fp16" if fp16 else "fp32",
            "vector": f"f16vec{width}" if fp16 else f"vec{width}",
        },
        bytes_moved=0,
        flops=threads * chains * width * steps * 2 * 2,
        timing=timing,
        check=check,
    )


def _fma32(job: _Job) -> _Outcome:
    return _fma(job, fp16=False)


def _fma16(job: _Job) -> _Outcome:
    return _fma(job, fp16=True)


def _stratified(rng: np.random.Generator, n: int, block: int) -> np.ndarray:
    """One random index inside every ``block``-sized block of range(n)."""
    starts = np.arange(0, n, block)
    return starts + rng.integers(0, np.minimum(block, n - starts))


def _sgemm(job: _Job) -> _Outcome:
    info = job.ctx.info
    tiles = job.sizes.sgemm_tiles
    problem = tiles.problem(info)
    if problem:
        raise UnsupportedFeature(f"SGEMM tiles {tiles.to_dict()}: {problem}")
    n = job.sizes.sgemm_n
    step = math.lcm(tiles.bm, tiles.bn, tiles.bk)
    if n % step:
        raise UnsupportedFeature(f"SGEMM size {n} is not a multiple of the tiles ({step})")
    A = job.rng.standard_normal((n, n), dtype=np.float32)
    B = job.rng.standard_normal((n, n), dtype=np.float32)
    ba, bb = job.upload(A), job.upload(B)
    bc = job.output(4 * n * n)
    groups = (n // tiles.bn, n // tiles.bm, 1)
    timing = job.run(
        "sgemm", [ba, bb, bc], groups, struct.pack("<III", n, n, n), tiles.specialization()
    )
    C = bc.read(np.float32, n * n).reshape(n, n)
    # Error bound relative to |A||B|: ~u per element in practice; 8*sqrt(K)*u is far above
    # rounding for any summation order yet far below one missing or wrong product.
    tol = max(8 * math.sqrt(n) * _U, 2.0**-20)
    A64, B64 = A.astype(np.float64), B.astype(np.float64)
    if n * n <= job.sizes.verify_limit:
        ref, scale, got = A64 @ B64, np.abs(A64) @ np.abs(B64), C
        verified = "all"
    else:
        # Whole rows from every row block and whole columns from every column block: every
        # workgroup tile contributes checked outputs.
        rows = _stratified(job.rng, n, tiles.bm)
        cols = _stratified(job.rng, n, tiles.bn)
        ref = np.concatenate([(A64[rows] @ B64).ravel(), (A64 @ B64[:, cols]).T.ravel()])
        scale = np.concatenate(
            [
                (np.abs(A64[rows]) @ np.abs(B64)).ravel(),
                (np.abs(A64) @ np.abs(B64[:, cols])).T.ravel(),
            ]
        )
        got = np.concatenate([C[rows].ravel(), C[:, cols].T.ravel()])
        verified = f"{rows.size} rows + {cols.size} columns"
    check = check_bound(got, job.expect("sgemm/C", ref), scale, tol, "C")
    return _Outcome(
        sizes={"m": n, "n": n, "k": n},
        params={**tiles.to_dict(), "workgroup_size": tiles.workgroup_size, "verified": verified},
        bytes_moved=3 * 4 * n * n,  # compulsory traffic: read A and B once, write C
        flops=2 * n * n * n,
        timing=timing,
        check=check,
    )


def _conv2d(job: _Job) -> _Outcome:
    sizes = job.sizes
    shape, tiles = sizes.conv, sizes.conv_tiles
    tiles = replace(tiles, buffers=2)  # conv2d.comp double-buffers its tiles
    problem = tiles.problem(job.ctx.info)
    if problem:
        raise UnsupportedFeature(f"conv2d tiles {tiles.to_dict()}: {problem}")
    if shape.cin % 4 or shape.cin % tiles.bk or shape.cout % tiles.bn:
        raise UnsupportedFeature(
            f"conv2d {shape.to_dict()}: needs cin a multiple of 4 and of bk ({tiles.bk}) and "
            f"cout a multiple of bn ({tiles.bn})"
        )
    n, h, w, ci, co, r = shape.batch, shape.height, shape.width, shape.cin, shape.cout, shape.radius
    taps, m = shape.taps, shape.pixels
    img = job.rng.standard_normal((n, h, w, ci), dtype=np.float32)
    wts = job.rng.standard_normal((taps, taps, ci, co), dtype=np.float32)
    bi, bw = job.upload(img), job.upload(wts)
    bo = job.output(4 * m * co)
    groups = (co // tiles.bn, -(-m // tiles.bm), 1)
    spec = {**tiles.specialization(), 6: r, 7: tiles.pad}  # conv2d.comp: R is 6, PAD 7
    timing = job.run("conv2d", [bi, bw, bo], groups, struct.pack("<5I", m, h, w, ci, co), spec)
    out = bo.read(np.float32, m * co).reshape(m, co)
    # Every output pixel when small; else one random pixel in every row tile of BM pixels (so
    # each workgroup row contributes), all output channels of each.
    rows = np.arange(m) if m * co <= sizes.verify_limit else _stratified(job.rng, m, tiles.bm)
    pad = np.zeros((n, h + 2 * r, w + 2 * r, ci), dtype=np.float64)
    pad[:, r : r + h, r : r + w] = img
    b_, rest = np.divmod(rows, h * w)
    y_, x_ = np.divmod(rest, w)
    # The im2col rows of the checked pixels, in the kernel's k order (ky, kx, ci).
    patches = np.stack(
        [pad[b_, y_ + dy, x_ + dx] for dy in range(taps) for dx in range(taps)], axis=1
    ).reshape(rows.size, -1)
    w64 = wts.reshape(-1, co).astype(np.float64)
    ref = patches @ w64
    scale = np.abs(patches) @ np.abs(w64)
    # Deterministic bound for a K-term dot product with any order and any fusion.
    terms = shape.k
    tol = terms * _U / (1 - terms * _U)
    check = check_bound(out[rows], job.expect("conv2d/out", ref), scale, tol, "out")
    return _Outcome(
        sizes={
            "batch": n,
            "height": h,
            "width": w,
            "cin": ci,
            "cout": co,
            "radius": r,
            "layer": shape.name,
        },
        params={
            **tiles.to_dict(),
            "workgroup_size": tiles.workgroup_size,
            "layout": "NHWC",
            "verified": "all" if rows.size == m else f"{rows.size} pixels x {co} channels",
        },
        bytes_moved=4 * (m * ci + taps * taps * ci * co + m * co),  # compulsory traffic
        flops=2 * m * co * terms,
        timing=timing,
        check=check,
    )


@dataclass(frozen=True)
class Kernel:
    name: str
    title: str
    body: Callable[[_Job], _Outcome]


KERNELS: Mapping[str, Kernel] = {
    k.name: k
    for k in (
        Kernel("copy", "Bandwidth: copy, 32-bit", _copy),
        Kernel("copy-vec4", "Bandwidth: copy, vec4", _copy_vec4),
        Kernel("copy-grid", "Bandwidth: copy, grid-stride vec4", _copy_grid),
        Kernel("saxpy", "SAXPY", _saxpy),
        Kernel("reduce", "Reduction (sum)", _reduce),
        Kernel("fma-fp32", "FP32 FMA throughput", _fma32),
        Kernel("fma-fp16", "FP16 FMA throughput", _fma16),
        Kernel("sgemm", "SGEMM (tiled)", _sgemm),
        Kernel("conv2d", "2-D convolution", _conv2d),
    )
}


def run_kernel(
    ctx: ComputeContext,
    kernel: str | Kernel,
    sizes: SuiteSizes | None = None,
    *,
    seed: int | None = None,
    tamper_expected: Tamper | None = None,
    pool: BufferPool | None = None,
) -> KernelResult:
    """Run one kernel on fresh random inputs; every device failure becomes the result's status.
    ``pool`` lends buffers across kernels (see BufferPool)."""
    spec = KERNELS[kernel] if isinstance(kernel, str) else kernel
    sizes = sizes or SuiteSizes.for_device(ctx.info)
    job = _Job(ctx, sizes, np.random.default_rng(seed), tamper_expected, pool)
    base = {
        "kernel": spec.name,
        "title": spec.title,
        "device": ctx.info.name,
        "driver": ctx.info.driver,
    }
    try:
        outcome = spec.body(job)
    except UnsupportedFeature as exc:
        return KernelResult(status=KernelStatus.UNSUPPORTED, message=str(exc), **base)
    except FenceTimeout as exc:
        return KernelResult(status=KernelStatus.TIMEOUT, error=exc.result, message=str(exc), **base)
    except DeviceLost as exc:
        return KernelResult(
            status=KernelStatus.DEVICE_LOST, error=exc.result, message=str(exc), **base
        )
    except (VulkanError, ComputeError) as exc:
        return KernelResult(status=KernelStatus.FAILED, error=exc.result, message=str(exc), **base)
    finally:
        job.release()
    return KernelResult(
        status=KernelStatus.OK if outcome.check.passed else KernelStatus.WRONG_RESULT,
        sizes=outcome.sizes,
        params=outcome.params,
        bytes_moved=outcome.bytes_moved,
        flops=outcome.flops,
        timing=Timing.from_dispatch(outcome.timing, sizes.warmup),
        check=outcome.check,
        **base,
    )


def run_suite(
    ctx: ComputeContext,
    sizes: SuiteSizes | None = None,
    *,
    kernels: Iterable[str] | None = None,
    seed: int | None = None,
    tamper_expected: Tamper | None = None,
    on_result: Callable[[KernelResult], None] | None = None,
) -> SuiteResult:
    """Run the kernels in order; after a hang or lost device the rest are marked skipped."""
    sizes = sizes or SuiteSizes.for_device(ctx.info)
    names = list(kernels) if kernels is not None else list(KERNELS)
    unknown = [n for n in names if n not in KERNELS]
    if unknown:
        raise KeyError(f"unknown kernels: {', '.join(unknown)}")
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    results: list[KernelResult] = []
    pool = BufferPool(ctx)
    try:
        _run_names(ctx, names, sizes, rng, tamper_expected, on_result, pool, results)
    finally:
        pool.close()
    return SuiteResult(ctx.info, sizes, tuple(results), time.perf_counter() - start)


def _run_names(
    ctx: ComputeContext,
    names: list[str],
    sizes: SuiteSizes,
    rng: np.random.Generator,
    tamper_expected: Tamper | None,
    on_result: Callable[[KernelResult], None] | None,
    pool: BufferPool,
    results: list[KernelResult],
) -> None:
    dead: KernelResult | None = None
    for name in names:
        if dead is not None:
            spec = KERNELS[name]
            result = KernelResult(
                kernel=name,
                title=spec.title,
                status=KernelStatus.SKIPPED,
                device=ctx.info.name,
                driver=ctx.info.driver,
                message=f"not run: {dead.kernel} left the device unusable ({dead.status.value})",
            )
        else:
            result = run_kernel(
                ctx,
                name,
                sizes,
                seed=int(rng.integers(2**63)),
                tamper_expected=tamper_expected,
                pool=pool,
            )
            if result.status in (KernelStatus.TIMEOUT, KernelStatus.DEVICE_LOST):
                dead = result
        results.append(result)
        if on_result is not None:
            on_result(result)
