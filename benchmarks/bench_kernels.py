#!/usr/bin/env python3
"""Run vkdoctor's smoke dispatch and kernel suite on every Vulkan device and print the figures.

    python benchmarks/bench_kernels.py                      all devices, sizes chosen per device
    python benchmarks/bench_kernels.py --device 0 --json out.json
    python benchmarks/bench_kernels.py --kernels sgemm --sgemm-n 8192 --sgemm-tiles 128,256,16,8,16
    python benchmarks/bench_kernels.py --kernels conv2d --conv-shape resnet50-conv3x

Sizes adapt to the device (CPU drivers: a few seconds; discrete GPUs: 1 GiB buffers, SGEMM
8192); every option below overrides one of them, which is how tile sizes are tuned per device.
GB/s counts bytes read + written; GFLOP/s counts an FMA as two operations.  Times are GPU
timestamps (median of the repetitions; spread = (max - min) / median).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

try:
    from vkdoctor.kernels import suite as kernels
    from vkdoctor.vulkan import compute
except ImportError:  # a plain source checkout: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from vkdoctor.kernels import suite as kernels
    from vkdoctor.vulkan import compute


def _size(result: kernels.KernelResult) -> str:
    s = result.sizes
    if "bytes" in s:
        return f"{s['bytes'] / 2**20:.0f} MiB"
    if "elements" in s:
        return f"{s['elements'] / 2**20:.1f} M elements"
    if "m" in s:
        return f"{s['m']}x{s['n']}x{s['k']}"
    if "cin" in s:
        return f"{s['batch']}x{s['height']}x{s['width']}x{s['cin']}->{s['cout']} {s['layer']}"
    if "width" in s:
        return f"{s['width']}x{s['height']} r{s['radius']}"
    if "invocations" in s:
        return f"{s['invocations']} inv x {s['chains']} x {s['step_pairs']}"
    return ""


def _row(r: kernels.KernelResult) -> str:
    t = r.timing
    median = f"{t.median_ns / 1e6:9.3f} ms" if t else " " * 12
    spread = f"{100 * t.spread:6.1f} %" if t else " " * 8
    gbs = f"{r.gb_per_s:9.1f}" if r.gb_per_s else " " * 9
    gfl = f"{r.gflop_per_s:10.1f}" if r.gflop_per_s else " " * 10
    if r.check is None:
        check = r.message
    elif r.check.method == "exact":
        check = "bit-exact" if r.check.passed else f"WRONG at {r.check.first_bad_index}"
    else:
        check = f"err {r.check.max_error:.1e} <= {r.check.tolerance:.1e}"
        if not r.check.passed:
            check = f"WRONG at {r.check.first_bad_index} ({check})"
    variant = r.params.get("variant", "")
    return (
        f"  {r.kernel:10s} {r.status.value:12s} {_size(r):28s}{median} {spread}"
        f"{gbs}{gfl}  {check} {variant}"
    )


def _header(info: compute.DeviceInfo, ctx: compute.ComputeContext) -> str:
    sub = info.subgroup
    subgroup = (
        f"subgroup {sub.size} ({'arithmetic' if sub.arithmetic else 'no arithmetic'})"
        if sub
        else "no subgroup info"
    )
    stamps = (
        f"timestamps {ctx.timestamp_bits} bits @ {info.limits.timestamp_period_ns:g} ns"
        if ctx.has_timestamps
        else "no timestamps (wall clock)"
    )
    return (
        f"== device {info.index}: {info.name} [{info.type}]\n"
        f"   driver {info.driver} ({info.driver_id}), Vulkan {info.api_version}, "
        f"{info.device_local_bytes / 2**30:.1f} GiB device-local\n"
        f"   {subgroup}, fp16 {'yes' if info.shader_float16 else 'no'}, {stamps}, "
        f"queue family {ctx.queue_family}"
    )


def _sizes(args: argparse.Namespace, info: compute.DeviceInfo) -> kernels.SuiteSizes:
    base = {
        "auto": kernels.SuiteSizes.for_device,
        "small": lambda _i: kernels.SuiteSizes.small(),
        "tiny": lambda _i: kernels.SuiteSizes.tiny(),
        "large": kernels.SuiteSizes.large,
    }[args.sizes](info)
    overrides: dict[str, Any] = {}
    for name in ("repetitions", "warmup", "sgemm_n", "fma_iters", "fma_workgroups"):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    if args.workgroup is not None:
        overrides["workgroup_size"] = args.workgroup
    if args.bandwidth_mib is not None:
        overrides["bandwidth_bytes"] = args.bandwidth_mib << 20
    if args.sgemm_tiles is not None:
        values = [int(v) for v in args.sgemm_tiles.split(",")]
        extra = dict(zip(("warp_rows", "group_m"), values[6:], strict=False))
        overrides["sgemm_tiles"] = kernels.SgemmTiles(*values[:6], **extra)
    if args.conv_shape is not None:
        overrides["conv"] = kernels.RESNET50[args.conv_shape]
        overrides["conv_tiles"] = kernels.CONV_TILES[args.conv_shape]
    if args.conv_tiles is not None:
        values = (int(v) for v in args.conv_tiles.split(","))
        overrides["conv_tiles"] = kernels.SgemmTiles(*values, buffers=2)
    if args.reduce_variant is not None:
        overrides["reduce_variant"] = args.reduce_variant
    if args.spin_up is not None:
        overrides["spin_up_s"] = args.spin_up
    return replace(base, **overrides)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", type=int, action="append", help="device index (repeatable)")
    parser.add_argument("--kernels", help=f"comma-separated subset of {','.join(kernels.KERNELS)}")
    parser.add_argument("--sizes", choices=("auto", "small", "large", "tiny"), default="auto")
    parser.add_argument("--repetitions", type=int)
    parser.add_argument("--warmup", type=int)
    parser.add_argument("--workgroup", type=int, help="workgroup size of the 1-D kernels")
    parser.add_argument("--bandwidth-mib", type=int)
    parser.add_argument("--sgemm-n", type=int)
    parser.add_argument("--sgemm-tiles", help="BM,BN,BK,TM,TN[,PAD[,WARP_ROWS[,GROUP_M]]]")
    parser.add_argument("--conv-shape", choices=sorted(kernels.RESNET50), help="conv2d layer")
    parser.add_argument("--conv-tiles", help="BM,BN,BK,TM,TN[,PAD] of conv2d")
    parser.add_argument("--fma-iters", type=int)
    parser.add_argument("--fma-workgroups", type=int)
    parser.add_argument("--reduce-variant", choices=("auto", "subgroup", "shared-memory"))
    parser.add_argument(
        "--spin-up",
        type=float,
        help="seconds of untimed dispatches before each kernel, so the GPU clocks are up "
        f"(default {kernels.SPIN_UP_S:g} on GPUs, 0 on CPU drivers)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="fence timeout, seconds")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--no-smoke", action="store_true")
    parser.add_argument("--json", type=Path, help="write all results here")
    args = parser.parse_args(argv)
    names = args.kernels.split(",") if args.kernels else None

    try:
        instance = compute.Instance()
    except compute.ComputeError as exc:
        print(f"no Vulkan instance: {exc}", file=sys.stderr)
        return 1
    report: list[dict[str, Any]] = []
    failed = False
    with instance:
        devices = instance.physical_devices()
        if not devices:
            print("no Vulkan devices", file=sys.stderr)
            return 1
        for info in devices:
            if args.device is not None and info.index not in args.device:
                continue
            entry: dict[str, Any] = {"device": info.to_dict()}
            try:
                ctx = instance.context(info.index, timeout_s=args.timeout)
            except compute.ComputeError as exc:
                print(f"== device {info.index}: {info.name}: cannot run compute: {exc}")
                entry["error"] = str(exc)
                report.append(entry)
                failed = True
                continue
            with ctx:
                print(_header(info, ctx), flush=True)
                if not args.no_smoke:
                    smoke = kernels.run_smoke(ctx, seed=args.seed)
                    gpu = f"{smoke.gpu_time_ns / 1e3:.1f} us GPU" if smoke.gpu_time_ns else ""
                    print(f"   smoke: {smoke.status.value}, {len(smoke.runs)} runs {gpu}")
                    for finding in smoke.findings():
                        print(f"   {finding.severity.value}: {finding.code}: {finding.summary}")
                    entry["smoke"] = smoke.to_dict()
                    failed |= not smoke.verified
                sizes = _sizes(args, info)
                print(
                    f"  {'kernel':10s} {'status':12s} {'size':28s}{'median':>12s} {'spread':>8s}"
                    f"{'GB/s':>9s}{'GFLOP/s':>10s}  check",
                    flush=True,
                )
                start = time.perf_counter()
                suite = kernels.run_suite(
                    ctx,
                    sizes,
                    kernels=names,
                    seed=args.seed,
                    on_result=lambda r: print(_row(r), flush=True),
                )
                print(f"   suite: {time.perf_counter() - start:.1f} s wall")
                for finding in suite.findings():
                    print(f"   {finding.severity.value}: {finding.code}: {finding.summary}")
                    failed |= finding.severity.value == "fail"
                entry["suite"] = suite.to_dict()
            report.append(entry)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
