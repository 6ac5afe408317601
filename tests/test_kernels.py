"""The smoke dispatch and the kernel suite on the real lavapipe device, verified against numpy."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from vkdoctor.kernels import peaks, smoke, spirv
from vkdoctor.kernels import suite as kernels
from vkdoctor.kernels.suite import (
    CODES,
    KERNELS,
    ConvShape,
    KernelStatus,
    SgemmTiles,
    SmokePush,
    SmokeStatus,
    SuiteSizes,
    check_bound,
    check_exact,
    run_kernel,
    run_smoke,
    run_suite,
    smoke_device,
)
from vkdoctor.report.model import Severity
from vkdoctor.vulkan.compute import ComputeContext, Instance, ShaderNotFound

TINY = SuiteSizes.tiny()


def _flip(target: str, index: int) -> kernels.Tamper:
    """A wrong expectation: one element of ``target`` changed."""

    def tamper(name: str, expected: np.ndarray) -> np.ndarray:
        if name != target:
            return expected
        wrong = expected.copy()
        flat = wrong.reshape(-1)
        flat[index] = flat[index] + 1 if flat.dtype.kind == "u" else flat[index] + 0.5
        return wrong

    return tamper


# -- smoke ------------------------------------------------------------------------------------


def test_smoke_is_bit_exact_for_both_push_constant_sets(ctx: ComputeContext) -> None:
    result = run_smoke(ctx, seed=7)
    assert result.status is SmokeStatus.OK and result.verified
    assert len(result.runs) == 2
    for run in result.runs:
        assert run.check.passed and run.check.method == "exact" and run.tail_intact
        assert run.check.checked == result.elements and not run.stale_push_constants
        assert run.gpu_time_ns is not None and run.gpu_time_ns > 0
    assert result.gpu_time_ns is not None and result.wall_s > 0
    assert result.findings() == []
    assert json.loads(json.dumps(result.to_dict()))["verified"] is True


def test_smoke_detects_a_wrong_expectation(ctx: ComputeContext) -> None:
    result = run_smoke(ctx, seed=7, tamper_expected=_flip("smoke/out_f", 123))
    assert result.status is SmokeStatus.WRONG_RESULT and not result.verified
    check = result.runs[0].check
    assert not check.passed and check.output == "out_f"
    assert check.first_bad_index == 123 and check.mismatches == 1
    assert check.expected != check.actual
    findings = result.findings()  # the tamper hits the expectation of both runs
    assert [f.code for f in findings] == ["dispatch-wrong-result"] * 2
    assert all(f.severity is Severity.FAIL and "index 123" in f.summary for f in findings)


def test_smoke_detects_stale_push_constants(
    ctx: ComputeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Emulate a driver/cache that keeps the first push constants: the second dispatch gets the
    # first run's bytes while the expectation uses the second run's values.
    first, second = kernels.SMOKE_PUSHES
    real_pack = SmokePush.pack
    monkeypatch.setattr(SmokePush, "pack", lambda self, n: real_pack(first, n))
    result = run_smoke(ctx, pushes=(first, second), seed=3)
    assert result.status is SmokeStatus.WRONG_RESULT
    assert result.runs[0].check.passed and result.runs[1].stale_push_constants
    assert [f.code for f in result.findings()] == ["dispatch-push-constants-stale"]


def test_smoke_through_staging_and_without_timestamps(
    instance: Instance, cpu_index: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    with instance.context(cpu_index, staging=True) as staged:
        monkeypatch.setattr(staged, "timestamp_bits", 0)
        result = run_smoke(staged, seed=1)
    assert result.verified and result.gpu_time_ns is None
    assert [f.code for f in result.findings()] == ["dispatch-no-timestamps"]


def test_smoke_device_turns_errors_into_results(
    instance: Instance, cpu_index: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert smoke_device(instance, cpu_index).verified

    def missing(name: str) -> bytes:
        raise ShaderNotFound(f"{name}.spv missing")

    monkeypatch.setattr(spirv, "load_spirv", missing)
    result = smoke_device(instance, cpu_index)
    assert result.status is SmokeStatus.SHADER_MISSING
    assert [f.code for f in result.findings()] == ["dispatch-shader-missing"]


def test_smoke_failure_statuses_map_to_findings() -> None:
    for status, code in [
        (SmokeStatus.TIMEOUT, "dispatch-hung"),  # dispatch-timeout merged
        (SmokeStatus.DEVICE_LOST, "dispatch-device-lost"),
        (SmokeStatus.NO_COMPUTE_QUEUE, "device-no-compute-queue"),  # merged
        (SmokeStatus.VULKAN_ERROR, "dispatch-vulkan-error"),
    ]:
        result = kernels.SmokeResult(device="gpu", driver="drv", status=status, message="m")
        (finding,) = result.findings()
        assert finding.code == code and finding.severity is Severity.FAIL


# -- checks -----------------------------------------------------------------------------------


def test_check_exact_compares_bits() -> None:
    assert check_exact(np.array([1.0, 0.0]), np.array([1.0, 0.0])).passed
    signed_zero = check_exact(np.array([1.0, -0.0]), np.array([1.0, 0.0]), "x")
    assert not signed_zero.passed and signed_zero.first_bad_index == 1
    nan = np.array([np.nan], dtype=np.float32)
    assert check_exact(nan, nan).passed
    assert not check_exact(np.arange(3), np.arange(4)).passed


def test_check_bound_fails_nan_and_reports_the_worst_error() -> None:
    expected = np.array([1.0, 2.0, 3.0])
    scale = np.ones(3)
    ok = check_bound(expected + 1e-9, expected, scale, 1e-8)
    assert ok.passed and ok.max_error is not None and ok.max_error < 1e-8
    bad = check_bound(np.array([1.0, np.nan, 3.0]), expected, scale, 1e-8)
    assert not bad.passed and bad.first_bad_index == 1 and bad.actual == "nan"
    assert json.dumps(bad.to_dict())


# -- the suite --------------------------------------------------------------------------------


def test_tiny_suite_verifies_every_kernel(ctx: ComputeContext) -> None:
    seen: list[str] = []
    suite = run_suite(ctx, TINY, seed=11, on_result=lambda r: seen.append(r.kernel))
    assert seen == list(KERNELS)
    # lavapipe (Mesa 22.3) lists no VK_KHR_cooperative_matrix: that kernel alone is unsupported.
    assert "VK_KHR_cooperative_matrix" not in ctx.info.extensions
    coop = suite.result("hgemm-coopmat")
    assert coop.status is KernelStatus.UNSUPPORTED and "VK_KHR_cooperative_matrix" in coop.message
    for r in suite.results:
        if r.kernel == "hgemm-coopmat":
            continue
        assert r.status is KernelStatus.OK, (r.kernel, r.message, r.check)
        assert r.check is not None and r.check.passed and r.check.checked > 0
        assert r.timing is not None and r.timing.source == "gpu-timestamps"
        assert len(r.timing.samples_ns) == TINY.repetitions and r.timing.median_ns > 0
        assert r.gb_per_s or r.gflop_per_s
        assert r.device == ctx.info.name and r.driver == ctx.info.driver
    assert suite.result("reduce").params["variant"] == "subgroup"
    assert suite.result("fma-fp16").params["precision"] == "fp16"
    assert [(f.code, f.severity.value) for f in suite.findings()] == [
        ("kernel-unsupported", "info")
    ]
    data = json.loads(json.dumps(suite.to_dict()))
    assert data["device"]["name"] == ctx.info.name and len(data["results"]) == len(KERNELS)
    assert data["results"][0]["gb_per_s"] > 0


@pytest.mark.parametrize(
    ("kernel", "target", "index"),
    [
        ("copy-grid", "copy_grid/dst", 777),
        ("saxpy", "saxpy/z", 4321),
        ("reduce", "reduce/sum", 0),
        ("fma-fp32", "fma_fp32/result", 99),
        ("sgemm", "sgemm/C", 128 * 5 + 17),
        ("conv2d", "conv2d/out", 300),
    ],
)
def test_a_wrong_expectation_is_detected(
    ctx: ComputeContext, kernel: str, target: str, index: int
) -> None:
    result = run_kernel(ctx, kernel, TINY, seed=5, tamper_expected=_flip(target, index))
    assert result.status is KernelStatus.WRONG_RESULT
    assert result.check is not None and result.check.first_bad_index == index
    finding = result.finding()
    assert finding is not None and finding.code == "kernel-wrong-result"
    assert finding.severity is Severity.FAIL


def test_shared_memory_reduction_fallback(ctx: ComputeContext) -> None:
    result = run_kernel(ctx, "reduce", replace(TINY, reduce_variant="shared-memory"), seed=2)
    assert result.status is KernelStatus.OK and result.params["variant"] == "shared-memory"


def test_sgemm_gpu_tiling_and_sampled_verification(ctx: ComputeContext) -> None:
    # The tiles, thread layout and workgroup order that discrete GPUs use, checked on
    # lavapipe, and the row/column sampling used for large matrices.
    gpu = SuiteSizes.large(ctx.info).sgemm_tiles
    assert (gpu.warp_rows, gpu.group_m) == (4, 8)
    sizes = replace(TINY, sgemm_n=256, sgemm_tiles=gpu, verify_limit=1000)
    result = run_kernel(ctx, "sgemm", sizes, seed=3)
    assert result.status is KernelStatus.OK, result.message
    assert result.params["verified"] == "2 rows + 2 columns"
    assert (result.params["warp_rows"], result.params["group_m"]) == (4, 8)
    assert result.flops == 2 * 256**3
    odd = replace(TINY, sgemm_n=128, sgemm_tiles=SgemmTiles(64, 128, 8, 4, 8))
    assert run_kernel(ctx, "sgemm", odd, seed=4).status is KernelStatus.OK


@pytest.mark.parametrize(("warp_rows", "group_m"), [(0, 0), (4, 0), (8, 2), (2, 1), (4, 5)])
def test_sgemm_thread_layouts_and_workgroup_orders(
    ctx: ComputeContext, warp_rows: int, group_m: int
) -> None:
    # 384 = 3 row tiles: GROUP_M 2 and 5 leave a short last group (or one short group), and
    # every output is verified, so a layout that computes a block twice and another never fails.
    tiles = SgemmTiles(128, 128, 16, 8, 8, warp_rows=warp_rows, group_m=group_m)
    result = run_kernel(ctx, "sgemm", replace(TINY, sgemm_n=384, sgemm_tiles=tiles), seed=8)
    assert result.status is KernelStatus.OK, result.message
    assert result.params["verified"] == "all"


@pytest.mark.parametrize("warp_rows", [3, 32])
def test_sgemm_refuses_a_layout_that_does_not_tile(ctx: ComputeContext, warp_rows: int) -> None:
    # 3 does not divide 32; 32 rows of blocks per 32 invocations exceed the 16 block rows.
    sizes = replace(TINY, sgemm_tiles=SgemmTiles(128, 128, 16, 8, 8, warp_rows=warp_rows))
    result = run_kernel(ctx, "sgemm", sizes)
    assert result.status is KernelStatus.UNSUPPORTED
    assert f"warp_rows {warp_rows} must divide 32 and 16 block rows" in result.message


def test_sgemm_refuses_tiles_that_do_not_fit(ctx: ComputeContext) -> None:
    sizes = replace(TINY, sgemm_tiles=SgemmTiles(128, 128, 16, 6, 8))
    result = run_kernel(ctx, "sgemm", sizes)
    assert result.status is KernelStatus.UNSUPPORTED
    finding = result.finding()
    assert finding is not None and finding.code == "kernel-unsupported"
    assert finding.severity is Severity.INFO


def test_conv2d_other_radius_and_sampled_pixels(ctx: ComputeContext) -> None:
    # A 5x5 filter bank, a pixel count that is no multiple of the row tile (the last tile loads
    # zeros and stores nothing) and the per-row-tile pixel sampling of large layers.
    shape = ConvShape(1, 9, 10, 8, 64, 2, "5x5")
    sizes = replace(TINY, conv=shape, verify_limit=100)
    result = run_kernel(ctx, "conv2d", sizes, seed=6)
    assert result.status is KernelStatus.OK, result.message
    assert result.params["verified"] == "2 pixels x 64 channels"
    assert result.flops == 2 * 90 * 64 * 25 * 8

    # A wrong expectation at one channel of a checked pixel is caught.
    def tamper(name: str, expected: np.ndarray) -> np.ndarray:
        bad = expected.copy()
        bad[1, 7] += 1.0
        return bad

    wrong = run_kernel(ctx, "conv2d", sizes, seed=6, tamper_expected=tamper)
    assert wrong.status is KernelStatus.WRONG_RESULT


def test_conv2d_refuses_channels_the_tiles_do_not_divide(ctx: ComputeContext) -> None:
    sizes = replace(TINY, conv=ConvShape(1, 4, 4, 12, 64, 1))  # cin 12 with bk 8
    result = run_kernel(ctx, "conv2d", sizes)
    assert result.status is KernelStatus.UNSUPPORTED and "cin" in result.message


def test_fp16_needs_the_feature_enabled(instance: Instance, cpu_index: int) -> None:
    with instance.context(cpu_index, enable_float16=False) as no_fp16:
        result = run_kernel(no_fp16, "fma-fp16", TINY)
    assert result.status is KernelStatus.UNSUPPORTED and "shaderFloat16" in result.message


def test_hang_becomes_timeout_and_skips_the_rest(instance: Instance, cpu_index: int) -> None:
    with instance.context(cpu_index, timeout_s=0.001) as slow:
        sizes = replace(TINY, fma_workgroups=16, fma_iters=2000)
        suite = run_suite(slow, sizes, kernels=["fma-fp32", "saxpy"])
        first, second = suite.results
        assert first.status is KernelStatus.TIMEOUT and first.error == "VK_TIMEOUT"
        assert second.status is KernelStatus.SKIPPED
        assert [f.code for f in suite.findings()] == ["kernel-hung"]  # kernel-timeout merged
        assert slow.wait_late(30.0)  # let lavapipe finish before the context goes


def test_sizes_follow_the_device(ctx: ComputeContext) -> None:
    assert SuiteSizes.for_device(ctx.info) == SuiteSizes.small()
    gpu = replace(ctx.info, type="discrete-gpu", device_local_bytes=80 << 30)
    gpu = replace(gpu, limits=replace(gpu.limits, max_storage_buffer_range=(1 << 32) - 1))
    large = SuiteSizes.for_device(gpu)
    assert large.bandwidth_bytes == 1 << 30 and large.sgemm_n == 8192
    assert large.sgemm_tiles.workgroup_size == 256
    steps = large.fma_iters * kernels._FMA_SHAPE["fma_fp32"][1]
    assert 16 + steps * 2.0**-8 < 2.0**14  # stays exactly representable
    # GPUs spin up before each timed kernel; CPU drivers have no clocks to raise.
    assert large.spin_up_s > 0 and SuiteSizes.small().spin_up_s == 0 == TINY.spin_up_s


def test_spin_up_runs_the_kernel_untimed_before_timing_it(
    ctx: ComputeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    repeats: list[int] = []
    real = ctx.dispatch

    def counting(*args: Any, **kwargs: Any) -> Any:
        repeats.append(kwargs.get("repeat", 1))
        return real(*args, **kwargs)

    monkeypatch.setattr(ctx, "dispatch", counting)
    result = run_kernel(ctx, "copy-vec4", replace(TINY, spin_up_s=0.05), seed=1)
    assert result.status is KernelStatus.OK
    # A probe, at least one batch, then the timed submit with only the timed repetitions.
    assert len(repeats) >= 3 and repeats[-1] == TINY.repetitions
    assert result.timing is not None and len(result.timing.samples_ns) == TINY.repetitions


def test_codes_are_declared_and_unique() -> None:
    assert all(code.startswith("kernel-") for code in CODES)
    assert all(code.startswith("dispatch-") for code in smoke.CODES)
    from vkdoctor.report import codes

    assert {"vkdoctor.kernels.smoke", "vkdoctor.kernels.suite"} <= set(codes.CODE_MODULES)


def test_spirv_loads_from_a_source_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    kernels.load_spirv.cache_clear()
    monkeypatch.setattr(spirv, "SHADER_PACKAGE", "vkdoctor_no_such_package")
    try:
        assert kernels.load_spirv("smoke")[:4] == b"\x03\x02\x23\x07"
        with pytest.raises(ShaderNotFound):
            kernels.load_spirv("no-such-shader")
    finally:
        kernels.load_spirv.cache_clear()


def test_headless_modules_import_no_tui_libraries() -> None:
    code = (
        "import sys, vkdoctor.vulkan.compute, vkdoctor.kernels.suite; "
        "print(any(m.split('.')[0] in ('rich', 'textual') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_more_workgroups_than_the_x_limit_use_a_2d_grid(ctx: ComputeContext) -> None:
    limit = ctx.info.limits.max_workgroup_count[0]
    # copy.comp moves COPY_WORDS 4-byte words per invocation.
    words = 4 * kernels.COPY_WORDS * (limit + 1)
    sizes = replace(TINY, workgroup_size=4, bandwidth_bytes=4 * words, repetitions=1)
    result = run_kernel(ctx, "copy", sizes, seed=8)
    assert result.status is KernelStatus.OK, result.message
    assert result.params["groups"][1] > 1


def test_every_datasheet_peak_matches_its_units_and_clock() -> None:
    # A printed FP32 figure that its own SM count, lanes and boost clock do not give (within
    # the datasheets' rounding) is a typo in the table, and every note names its document.
    for _, peak in peaks.KNOWN_PEAKS:
        sheet = peaks.DATASHEETS[peak.name]
        assert peak.fp32_gflops == pytest.approx(sheet.fp32_gflops, rel=0.01), peak.name
        assert peak.fp16_gflops == sheet.fp16_factor * peak.fp32_gflops
        assert sheet.document in peak.note and f"{sheet.boost_mhz} MHz" in peak.note


def test_discrete_gpu_tiles_are_correct_on_lavapipe(ctx: ComputeContext) -> None:
    # The tiles the large preset gives GPUs, run on lavapipe at small sizes: a tiling bug that
    # only those spec constants reach would otherwise show up only on the GPU.
    large = SuiteSizes.large(ctx.info)
    sizes = replace(TINY, sgemm_n=256, sgemm_tiles=large.sgemm_tiles)
    sgemm = run_kernel(ctx, "sgemm", sizes, seed=11)
    assert sgemm.status is KernelStatus.OK, sgemm.message
    assert (sgemm.params["bn"], sgemm.params["tn"], sgemm.params["warp_rows"]) == (128, 8, 4)
    layer = replace(large.conv, batch=1, height=9, width=14)  # conv2_x channels, 126 pixels
    conv = run_kernel(ctx, "conv2d", replace(TINY, conv=layer, conv_tiles=large.conv_tiles))
    assert conv.status is KernelStatus.OK, conv.message
    assert conv.sizes["cin"] == 64 and conv.params["bm"] == 128


def test_resnet_layers_fit_their_tiles() -> None:
    # Every named layer divides by its tiles (else the kernel reports itself unsupported).
    for name, shape in kernels.RESNET50.items():
        tiles = kernels.CONV_TILES[name]
        assert shape.cin % tiles.bk == 0 and shape.cout % tiles.bn == 0, name
        assert replace(tiles, buffers=2).shared_bytes <= 48 << 10, name
