"""The Vulkan compute boundary, on the real loader and Mesa's lavapipe (llvmpipe) device."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from vkdoctor.kernels.suite import load_spirv
from vkdoctor.loader import vkversion
from vkdoctor.vulkan import binding, compute, memory
from vkdoctor.vulkan.compute import (
    ComputeContext,
    ComputeError,
    DeviceLost,
    FenceTimeout,
    Instance,
    NoComputeQueue,
    UnsupportedFeature,
    VulkanError,
    grid_1d,
)


def test_loader_version_is_at_least_1_1() -> None:
    assert compute.loader_version() >= (1, 1, 0)


def test_llvmpipe_device_description(instance: Instance, cpu_index: int) -> None:
    info = instance.physical_devices()[cpu_index]
    assert info.type == "cpu" and info.is_cpu
    assert "llvmpipe" in info.name
    import vulkan

    assert info.driver_id == vulkan.VK_DRIVER_ID_MESA_LLVMPIPE
    # Identity as the check report records it (vulkaninfo prints the same UUIDs).
    assert info.pipeline_cache_uuid and info.device_uuid and info.driver_uuid
    assert info.vendor_id == 0x10005  # VK_VENDOR_ID_MESA
    assert info.driver_name == "llvmpipe" and "Mesa" in (info.driver_info or "")
    assert info.api_version.startswith("1.")
    assert info.limits.timestamp_period_ns > 0
    assert info.limits.max_workgroup_invocations >= 128
    assert info.subgroup is not None and info.subgroup.compute and info.subgroup.arithmetic
    assert "arithmetic" in info.subgroup.operations and "compute" in info.subgroup.stages
    assert info.compute_families()
    assert info.device_local_bytes > 0
    assert "VK_KHR_shader_float16_int8" in info.extensions
    assert json.loads(json.dumps(info.to_dict()))["name"] == info.name


def test_driver_version_decoding_is_vendor_specific() -> None:
    nvidia = (535 << 22) | (154 << 14) | (5 << 6)
    assert vkversion.driver_version_string(0x10DE, nvidia) == "535.154.5.0"
    assert vkversion.driver_version_string(0x1002, vkversion.make(2, 0, 279)) == "2.0.279"


def test_results_become_typed_errors_naming_the_vkresult() -> None:
    with pytest.raises(DeviceLost) as lost:
        binding.check(-4, "vkQueueSubmit")
    assert lost.value.result == "VK_ERROR_DEVICE_LOST" and "vkQueueSubmit" in str(lost.value)
    # A result the binding's own exception table lacks still gets its name.
    with pytest.raises(VulkanError) as frag:
        binding.check(-1000161000, "vkAllocateMemory")
    assert frag.value.result == "VK_ERROR_FRAGMENTATION"
    with pytest.raises(VulkanError) as unknown:
        binding.check(-12345, "vkFoo")
    assert unknown.value.result == "VkResult(-12345)"
    binding.check(0, "vkBar")


def test_grid_1d_respects_the_x_limit() -> None:
    assert grid_1d(10, (65535, 65535, 65535)) == (10, 1, 1)
    x, y, z = grid_1d(1 << 20, (65535, 65535, 65535))
    assert x <= 65535 and x * y >= 1 << 20 and z == 1
    with pytest.raises(UnsupportedFeature):
        grid_1d(1 << 40, (65535, 65535, 65535))


def test_buffer_round_trip_mapped(ctx: ComputeContext) -> None:
    data = np.arange(1000, dtype=np.uint32) * 7
    with ctx.upload(data) as buf:
        assert buf.host_visible  # lavapipe memory is device-local, host-visible and cached
        assert np.array_equal(buf.read(np.uint32), data)
        assert np.array_equal(buf.read(np.uint32, 10, offset=40), data[10:20])
        with pytest.raises(ValueError):
            buf.read(np.uint32, 2000)


def test_buffer_round_trip_through_staging_in_chunks(
    instance: Instance, cpu_index: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The path discrete GPUs take (device memory not mappable), in several staging chunks.
    monkeypatch.setattr(memory, "STAGING_CHUNK", 4096)
    data = np.random.default_rng(1).integers(0, 2**32, 10_000, dtype=np.uint32)
    with instance.context(cpu_index, staging=True) as staged:
        buf = staged.upload(data)
        assert not buf.host_visible
        assert np.array_equal(buf.read(np.uint32), data)
        assert np.array_equal(buf.read(np.uint32, 3000, offset=4 * 5000), data[5000:8000])
        staged.fill(buf, 0x01020304)
        assert (buf.read(np.uint32) == 0x01020304).all()


def test_buffer_limits(ctx: ComputeContext) -> None:
    with pytest.raises(UnsupportedFeature):
        ctx.buffer(ctx.info.limits.max_storage_buffer_range + 4)
    with pytest.raises(ValueError):
        ctx.buffer(6)


def test_pipeline_cache_key_includes_push_constants_and_specialization(
    ctx: ComputeContext,
) -> None:
    spirv = load_spirv("copy")
    p1 = ctx.pipeline(spirv, bindings=2, push_constant_size=4, specialization={0: 64})
    assert ctx.pipeline(spirv, bindings=2, push_constant_size=4, specialization={0: 64}) is p1
    p2 = ctx.pipeline(spirv, bindings=2, push_constant_size=4, specialization={0: 128})
    p3 = ctx.pipeline(spirv, bindings=2, push_constant_size=8, specialization={0: 64})
    assert len({id(p1), id(p2), id(p3)}) == 3


def test_not_spirv_is_refused_before_the_driver_sees_it(ctx: ComputeContext) -> None:
    with pytest.raises(ComputeError):
        ctx.pipeline(b"\x00" * 64, bindings=1)


def _copy_dispatch(ctx: ComputeContext, n: int, repeat: int) -> compute.DispatchTiming:
    src = np.arange(n, dtype=np.uint32)
    with ctx.upload(src) as a, ctx.buffer(4 * n) as b:
        pipe = ctx.pipeline(
            load_spirv("copy"), bindings=2, push_constant_size=4, specialization={0: 64}
        )
        groups = grid_1d(-(-n // 64), ctx.info.limits.max_workgroup_count)
        timing = ctx.dispatch(pipe, [a, b], groups, struct.pack("<I", n), repeat=repeat, warmup=1)
        assert np.array_equal(b.read(np.uint32), src)
    return timing


def test_dispatch_times_each_repetition_with_timestamps(ctx: ComputeContext) -> None:
    assert ctx.has_timestamps
    timing = _copy_dispatch(ctx, 5000, repeat=3)
    assert len(timing.gpu_ns) == 3 and all(t > 0 for t in timing.gpu_ns)
    assert timing.dispatches == 4 and timing.wall_s > 0


def test_dispatch_without_timestamps_reports_wall_time(
    ctx: ComputeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ctx, "timestamp_bits", 0)
    timing = _copy_dispatch(ctx, 5000, repeat=2)
    assert timing.gpu_ns == () and not timing.has_gpu_time and timing.wall_s > 0


def test_dispatch_checks_its_arguments(ctx: ComputeContext) -> None:
    pipe = ctx.pipeline(load_spirv("copy"), bindings=2, push_constant_size=4)
    with ctx.buffer(64) as a, ctx.buffer(64) as b:
        with pytest.raises(ValueError):
            ctx.dispatch(pipe, [a], (1, 1, 1), b"\0" * 4)
        with pytest.raises(ValueError):
            ctx.dispatch(pipe, [a, b], (1, 1, 1), b"\0" * 8)
        with pytest.raises(UnsupportedFeature):
            ctx.dispatch(pipe, [a, b], (1 << 31, 1, 1), b"\0" * 4)


def test_fence_timeout_is_typed_and_poisons_the_context_until_it_finishes(
    instance: Instance, cpu_index: int
) -> None:
    with instance.context(cpu_index, timeout_s=0.001) as slow:
        threads, iters = 16 * 256, 2000
        seed = np.zeros(threads * 32, dtype=np.float32)
        a, out = slow.upload(seed), slow.buffer(seed.nbytes)
        pipe = slow.pipeline(load_spirv("fma_fp32"), bindings=2, push_constant_size=20)
        push = struct.pack("<Iffff", iters, 1.0, 0.0, 1.0, 0.0)
        with pytest.raises(FenceTimeout) as hang:
            slow.dispatch(pipe, [a, out], (16, 1, 1), push)
        assert hang.value.result == "VK_TIMEOUT"
        with pytest.raises(FenceTimeout, match="unusable"):
            slow.buffer(64)
        # It was only slow: waiting longer finishes the work and makes the context usable.
        assert slow.wait_late(30.0)
        slow.buffer(64).destroy()


def test_no_compute_queue_is_typed(
    fault_build_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real driver without a compute family: the no-compute fault driver (lavapipe with the
    compute bit cleared by vkGetPhysicalDeviceQueueFamilyProperties), through the real loader."""
    import faultlib

    library = faultlib.build_driver(fault_build_dir, "no-compute")
    manifest = faultlib.write_driver_manifest(tmp_path, str(library), name="no_compute")
    monkeypatch.setenv("VK_DRIVER_FILES", str(manifest))
    monkeypatch.delenv("VK_ICD_FILENAMES", raising=False)
    with Instance() as inst:
        (info,) = inst.physical_devices()
        assert not info.compute_families()
        with pytest.raises(NoComputeQueue) as exc:
            ComputeContext(inst, info.index)
    assert "VK_QUEUE_COMPUTE_BIT" in str(exc.value) and exc.value.device == info.name


def test_float16_request_follows_the_feature(instance: Instance, cpu_index: int) -> None:
    with instance.context(cpu_index) as auto:
        assert auto.float16 == instance.physical_devices()[cpu_index].shader_float16
    with instance.context(cpu_index, enable_float16=False) as off:
        assert not off.float16


def test_instance_close_destroys_contexts_first(cpu_index: int) -> None:
    inst = Instance()
    ctx = inst.context(cpu_index)
    buf = ctx.buffer(64)
    inst.close()
    assert ctx.device is None and not buf.alive and inst.handle is None
    ctx.close()  # idempotent
    inst.close()
