"""The `dispatch` probe's smoke test: smoke.comp twice with different push constants, verified
bit for bit against numpy, with the words after the output checked untouched.

Headless: no rich/textual.
"""

from __future__ import annotations

import random
import struct
import time
from collections.abc import Sequence
from enum import Enum
from typing import Any

import numpy as np

from vkdoctor.kernels import spirv
from vkdoctor.kernels.verify import Check, Tamper, _expect, check_exact
from vkdoctor.record import frozen
from vkdoctor.report.codes import CodeInfo, code_table, make_finding
from vkdoctor.report.model import Finding, Severity
from vkdoctor.vulkan.compute import (
    ComputeContext,
    ComputeError,
    DeviceLost,
    DispatchTiming,
    FenceTimeout,
    Instance,
    NoComputeQueue,
    ShaderNotFound,
    grid_1d,
)

_RUN03 = "The kernel log usually says why (a GPU reset, a watchdog, an invalid access)."

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
            "equals what the first push constants produce.",
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
            "the smoke dispatch did not finish in time",
            "vkWaitForFences timed out on a dispatch that takes microseconds. " + _RUN03,
            causes=("a hung GPU or driver", "a device saturated by other work"),
            remedy="Check `dmesg` / `journalctl -k` for GPU hang messages and what else is "
            "using the GPU (`nvidia-smi`, `radeontop`, `intel_gpu_top`); update the driver.",
            alias_of="dispatch-hung",  # merged: they meant the same
        ),
        CodeInfo(
            "dispatch-no-compute-queue",
            Severity.FAIL,
            "the device has no compute queue",
            "No queue family of this device has VK_QUEUE_COMPUTE_BIT; it cannot run compute work.",
            causes=("a display-, video- or graphics-only device",),
            remedy="Use another device for compute.",
            alias_of="device-no-compute-queue",  # merged: they meant the same
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
    ]
)


@frozen
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


@frozen
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


@frozen
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


def _verify(
    push: SmokePush,
    elements: int,
    got: tuple[np.ndarray, np.ndarray],
    expected: tuple[np.ndarray, np.ndarray],
    previous: tuple[np.ndarray, np.ndarray] | None,
    timing: DispatchTiming,
    tamper_expected: Tamper | None,
) -> SmokeRun:
    """One push-constant set's run checked: both outputs, the untouched tail, and whether a
    wrong result is the previous set's (push constants not updated between submits)."""
    got_u, got_f = got
    exp_u, exp_f = expected
    check_u = check_exact(got_u[:elements], _expect(tamper_expected, "smoke/out_u", exp_u), "out_u")
    check_f = check_exact(got_f[:elements], _expect(tamper_expected, "smoke/out_f", exp_f), "out_f")
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
    return SmokeRun(
        push=push,
        check=check_u if not check_u.passed else check_f,
        stale_push_constants=bool(stale),
        tail_intact=tail_ok,
        gpu_time_ns=timing.gpu_ns[0] if timing.has_gpu_time else None,
        wall_s=timing.wall_s,
    )


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
    # Random words from the standard library: numpy.random's import alone cost ~25 ms of CPU on
    # the path of every check, and any uniformly random uint32 inputs serve the smoke check.
    total = elements + _TAIL
    words = random.Random(seed).randbytes(8 * total)
    a, b = np.frombuffer(words, dtype="<u4").astype(np.uint32).reshape(2, total)
    runs: list[SmokeRun] = []
    buffers = []
    try:
        module = spirv.load_spirv("smoke")
        buffers = [ctx.upload(a), ctx.upload(b), ctx.buffer(4 * total), ctx.buffer(4 * total)]
        pipe = ctx.pipeline(
            module,
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
            expected = smoke_expected(a[:elements], b[:elements], push)
            got = (buffers[2].read(np.uint32), buffers[3].read(np.float32))
            runs.append(_verify(push, elements, got, expected, previous, timing, tamper_expected))
            previous = expected
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
