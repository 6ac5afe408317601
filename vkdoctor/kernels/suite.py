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

import math
import struct
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import field, replace
from enum import Enum
from typing import Any

import numpy as np

from vkdoctor.kernels.pool import BufferPool, _Job
from vkdoctor.kernels.sizes import (  # noqa: F401
    CONV_TILES,
    RESNET50,
    SPIN_UP_S,
    ConvShape,
    SgemmTiles,
    SuiteSizes,
)
from vkdoctor.kernels.smoke import (  # noqa: F401
    SMOKE_PUSHES,
    SmokePush,
    SmokeResult,
    SmokeRun,
    SmokeStatus,
    run_smoke,
    smoke_device,
    smoke_expected,
)
from vkdoctor.kernels.spirv import SHADER_PACKAGE, load_spirv  # noqa: F401
from vkdoctor.kernels.verify import (  # noqa: F401
    Check,
    Tamper,
    Timing,
    _expect,
    check_bound,
    check_exact,
)
from vkdoctor.loader import vkversion

# The pieces live in their own modules; this one keeps the kernels and the suite driver and
# re-exports the rest, so `vkdoctor.kernels.suite` stays the one import for callers.
from vkdoctor.record import frozen
from vkdoctor.report.codes import CodeInfo, code_table, make_finding
from vkdoctor.report.model import Finding, Severity
from vkdoctor.vulkan.compute import (
    ComputeContext,
    ComputeError,
    DeviceInfo,
    DeviceLost,
    DispatchTiming,
    FenceTimeout,
    UnsupportedFeature,
    VulkanError,
    grid_1d,
)

# ---------------------------------------------------------------------------------------------
# Kernel results


_RUN03 = "The kernel log usually says why (a GPU reset, a watchdog, an invalid access)."

CODES = code_table(
    [
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
            "a benchmark kernel did not finish in time",
            "vkWaitForFences timed out; the device may be hung. " + _RUN03,
            causes=("a hung GPU", "a device much slower than its type suggests"),
            remedy="Check `dmesg` / `journalctl -k` for GPU hang messages; update the driver.",
            alias_of="kernel-hung",  # merged: they meant the same
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


class KernelStatus(str, Enum):
    OK = "ok"
    WRONG_RESULT = "wrong-result"
    UNSUPPORTED = "unsupported"
    FAILED = "failed"
    TIMEOUT = "timeout"
    DEVICE_LOST = "device-lost"
    SKIPPED = "skipped"  # an earlier kernel left the device unusable


@frozen
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


@frozen
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


@frozen
class _Outcome:
    """What a kernel body returns; the driver adds status, device and timing bookkeeping."""

    sizes: Mapping[str, Any]
    params: Mapping[str, Any]
    bytes_moved: int
    flops: int
    timing: DispatchTiming
    check: Check


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
        info.subgroup is not None
        and info.subgroup.arithmetic
        and vkversion.at_least(effective, 1, 1)
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
        "sgemm", [ba, bb, bc], groups, struct.pack("<III", n, n, n), tiles.sgemm_specialization()
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


COOPMAT_TILE = 128  # hgemm_coopmat.comp's workgroup tile (BM = BN)
COOPMAT_BK = 32  # its k step per shared-memory tile (specialization constant 0)
COOPMAT_SHAPE = (16, 16, 16, "f16", "f16", "f32", "f32")  # M, N, K, A, B, C, result


def _hgemm_coopmat(job: _Job) -> _Outcome:
    """HGEMM on VK_KHR_cooperative_matrix: FP16 in, FP32 accumulate (the tensor cores)."""
    ctx = job.ctx
    if not ctx.cooperative_matrix:
        raise UnsupportedFeature(
            "the device lacks VK_KHR_cooperative_matrix (with vulkanMemoryModel and shaderFloat16)"
            if not ctx.info.cooperative_matrix
            else "the compute context was created without cooperative matrices"
        )
    shapes = {
        (s.m, s.n, s.k, s.a, s.b, s.c, s.result)
        for s in ctx.instance.cooperative_matrix_shapes(ctx.info.index)
    }
    if COOPMAT_SHAPE not in shapes:
        raise UnsupportedFeature("the device lists no 16x16x16 f16 x f16 -> f32 subgroup shape")
    if ctx.info.subgroup is None or ctx.info.subgroup.size != 32:
        raise UnsupportedFeature("hgemm_coopmat.comp assumes 32-wide subgroups")
    n = job.sizes.sgemm_n - job.sizes.sgemm_n % COOPMAT_TILE
    if n == 0:
        raise UnsupportedFeature(f"problem size below one {COOPMAT_TILE}-wide tile")
    A = job.rng.standard_normal((n, n)).astype(np.float16)
    B = job.rng.standard_normal((n, n)).astype(np.float16)
    ba, bb = job.upload(A), job.upload(B)
    bc = job.output(4 * n * n)
    groups = (n // COOPMAT_TILE, n // COOPMAT_TILE, 1)
    push = struct.pack("<III", n, n, n)
    timing = job.run("hgemm_coopmat", [ba, bb, bc], groups, push, {0: COOPMAT_BK})
    C = bc.read(np.float32, n * n).reshape(n, n)
    # FP16 products are exact in FP32; the bound is the FP32 accumulation's, as for SGEMM.
    tol = max(8 * math.sqrt(n) * _U, 2.0**-20)
    A64, B64 = A.astype(np.float64), B.astype(np.float64)
    rows = _stratified(job.rng, n, COOPMAT_TILE)
    cols = _stratified(job.rng, n, COOPMAT_TILE)
    ref = np.concatenate([(A64[rows] @ B64).ravel(), (A64 @ B64[:, cols]).T.ravel()])
    scale = np.concatenate(
        [
            (np.abs(A64[rows]) @ np.abs(B64)).ravel(),
            (np.abs(A64) @ np.abs(B64[:, cols])).T.ravel(),
        ]
    )
    got = np.concatenate([C[rows].ravel(), C[:, cols].T.ravel()])
    check = check_bound(got, job.expect("hgemm-coopmat/C", ref), scale, tol, "C")
    return _Outcome(
        sizes={"m": n, "n": n, "k": n},
        params={
            "tile": f"{COOPMAT_TILE}x{COOPMAT_TILE}x{COOPMAT_BK}",
            "matrix": "16x16x16 f16*f16+f32",
            "verified": f"{rows.size} rows + {cols.size} columns",
        },
        bytes_moved=2 * 2 * n * n + 4 * n * n,  # read A and B (f16) once, write C (f32)
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


@frozen
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
        Kernel("hgemm-coopmat", "HGEMM (cooperative matrix)", _hgemm_coopmat),
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
