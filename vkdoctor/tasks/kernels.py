"""Child task of ``vkdoctor kernels`` and the TUI's kernel view: the kernel suite on chosen devices.

Every kernel is a batch item (``begin``/``end``), so the parent restarts its hang timer per kernel
and knows which kernel a crash or hang happened in; every result is sent the moment it exists
(``emit.result``), so progress is live.  Messages are plain dicts with a ``type``:

    devices       after vkCreateInstance: every physical device (DeviceInfo.to_dict()), loader
    instance-error  no instance (no loader, no driver): nothing else follows
    suite-start   per device: the size preset, the sizes and the kernels about to run
    device-error  per device: no compute context (device creation failed, no compute queue...)
    kernel        per kernel: KernelResult.to_dict() and its finding
    suite-end     per device: wall time

Headless: no rich/textual; heavy imports happen inside the task, after the first crumb.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from vkdoctor.engine.child_main import Emitter

if TYPE_CHECKING:
    from vkdoctor.kernels.sizes import SuiteSizes
    from vkdoctor.vulkan.compute import ComputeContext, DeviceInfo, Instance

PRESETS = ("tiny", "small", "auto", "large")


def pick_sizes(preset: str, info: Any) -> Any:
    """The SuiteSizes of ``preset`` for a device (``auto``: by device type)."""
    from vkdoctor.kernels.suite import SuiteSizes

    if preset == "tiny":
        return SuiteSizes.tiny()
    if preset == "small":
        return SuiteSizes.small()
    if preset == "large":
        return SuiteSizes.large(info)
    return SuiteSizes.for_device(info)


def kernel_seed(base: int, device: int, kernel: str) -> int:
    """The input seed of one kernel on one device: independent of which other kernels run and
    of a resumed child, so ``--seed`` reproduces every input exactly."""
    import numpy as np

    from vkdoctor.kernels.suite import KERNELS

    position = list(KERNELS).index(kernel)
    hi, lo = np.random.SeedSequence([base, device, position]).generate_state(2, np.uint32)
    return (int(hi) << 31 | int(lo) >> 1) & (2**63 - 1)


def suite(payload: dict[str, Any], emit: Emitter) -> None:
    """payload: ``jobs`` [{device, kernels}] (or ``all_devices`` with ``kernels``), ``size``,
    ``seed`` (base), ``fence_timeout_s``, and optional ``warmup``/``repetitions`` overrides."""
    emit.crumb("import the compute boundary (vulkan binding, numpy)")
    import vkdoctor.kernels.suite  # noqa: F401 - imported under this crumb, used by the steps
    from vkdoctor.vulkan.compute import ComputeError, Instance, loader_version

    fence_timeout = float(payload.get("fence_timeout_s", 20.0))
    preset = str(payload.get("size", "auto"))
    emit.crumb("vkCreateInstance")
    try:
        instance = Instance()
        loader = ".".join(map(str, loader_version()))
    except ComputeError as exc:
        emit.result(
            {
                "type": "instance-error",
                "message": str(exc),
                "error": getattr(exc, "result", None),
                "exception": type(exc).__name__,
            }
        )
        return
    with instance:
        emit.crumb("vkEnumeratePhysicalDevices and device properties")
        infos = instance.physical_devices()
        emit.result(
            {"type": "devices", "loader_version": loader, "devices": [i.to_dict() for i in infos]}
        )
        jobs = list(payload.get("jobs") or ())
        if payload.get("all_devices"):
            jobs = [{"device": i, "kernels": payload.get("kernels")} for i in range(len(infos))]
        for job in jobs:
            index = int(job["device"])
            if 0 <= index < len(infos):  # the parent reports devices that do not exist
                _device_job(
                    instance, index, infos[index], job, payload, fence_timeout, preset, emit
                )


def _device_job(
    instance: Instance,
    index: int,
    info: DeviceInfo,
    job: dict[str, Any],
    payload: dict[str, Any],
    fence_timeout: float,
    preset: str,
    emit: Emitter,
) -> None:
    """One device's kernels in a context of their own, bracketed by suite-start and suite-end."""
    from vkdoctor.kernels.suite import KERNELS
    from vkdoctor.vulkan.compute import ComputeContext, ComputeError

    sizes = pick_sizes(preset, info)
    overrides = {k: int(payload[k]) for k in ("warmup", "repetitions") if payload.get(k)}
    if overrides:
        sizes = replace(sizes, **overrides)
    names = [n for n in job.get("kernels") or KERNELS if n in KERNELS]
    emit.result(
        {
            "type": "suite-start",
            "device": index,
            "preset": preset,
            "sizes": sizes.to_dict(),
            "kernels": names,
        }
    )
    started = time.perf_counter()
    emit.crumb(f"device {index} ({info.name}): vkCreateDevice with a compute queue")
    try:
        ctx = ComputeContext(instance, index, timeout_s=fence_timeout, cooperative_matrix=True)
    except ComputeError as exc:
        emit.result(
            {
                "type": "device-error",
                "device": index,
                "message": str(exc),
                "error": getattr(exc, "result", None),
                "exception": type(exc).__name__,
            }
        )
        return
    with ctx:
        _run_kernels(ctx, index, info, names, sizes, int(payload.get("seed") or 0), emit)
    emit.result({"type": "suite-end", "device": index, "wall_s": time.perf_counter() - started})


def _run_kernels(
    ctx: ComputeContext,
    index: int,
    info: DeviceInfo,
    names: list[str],
    sizes: SuiteSizes,
    base_seed: int,
    emit: Emitter,
) -> None:
    """Each kernel a batch item; after a hang or a lost device the rest are skipped, not run."""
    from vkdoctor.kernels.suite import KERNELS, KernelResult, KernelStatus, run_kernel

    dead: KernelResult | None = None
    for name in names:
        key = f"{index}/{name}"
        spec = KERNELS[name]
        emit.begin(key)
        seed = kernel_seed(base_seed, index, name)
        if dead is not None:
            result = KernelResult(
                kernel=name,
                title=spec.title,
                status=KernelStatus.SKIPPED,
                device=info.name,
                driver=info.driver,
                message=f"not run: {dead.kernel} left the device unusable ({dead.status.value})",
            )
        else:
            emit.crumb(
                f"device {index} ({info.name}): {spec.title}: upload, compile, "
                f"{sizes.warmup} warm-up + {sizes.repetitions} timed dispatches, verify"
            )
            result = run_kernel(ctx, name, sizes, seed=seed)
            if result.status in (KernelStatus.TIMEOUT, KernelStatus.DEVICE_LOST):
                dead = result
        finding = result.finding()
        emit.result(
            {
                "type": "kernel",
                "device": index,
                "seed": seed,
                "result": result.to_dict(),
                "finding": finding.to_dict() if finding else None,
            }
        )
        emit.end(key)
