"""Overhead of ``vkdoctor trace`` on a program that runs many small compute dispatches.

    python benchmarks/bench_trace.py [--dispatches 10000] [--repeat 21] [--pin CPU] [--json]

Builds tests/reproducers/dispatch_loop.c, then runs it alternately untraced and traced (LD_AUDIT
module + VK_LAYER_VKDOCTOR_trace, exactly as ``vkdoctor trace`` launches it), both through the
same launcher, and reports the median of the per-pair wall-time ratios traced/untraced, plus the
ratio of the children's CPU time (steadier than wall time on a shared machine).  The
end-to-end time of the whole ``vkdoctor trace`` report (launch + analysis) is shown for
reference.  Timings are measured here, never asserted in tests.  Runs on lavapipe only
(VK_DRIVER_FILES), like the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vkdoctor.engine.env import Env  # noqa: E402
from vkdoctor.trace.command import add_arguments, build_report  # noqa: E402
from vkdoctor.trace.launch import OUTPUT_DISCARD, run_program  # noqa: E402
from vkdoctor.trace.session import TraceOptions, trace_program  # noqa: E402

REPRO = ROOT / "tests" / "reproducers"
LVP_ICD = "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json"
# Real programs (the trace-programs extra): script in tests/programs/ and its environment.
REAL_PROGRAMS: dict[str, tuple[str, dict[str, str | None]]] = {
    "wgpu": ("wgpu_compute.py", {"WGPU_BACKEND_TYPE": "Vulkan"}),
    "taichi": ("taichi_compute.py", {"TI_LOG_LEVEL": "error"}),
    "vulkan": ("vulkan_binding_compute.py", {}),
    # ncnn dlopens the driver named in VK_DRIVER_FILES itself: run it on the loader
    "ncnn": ("ncnn_compute.py", {"VK_DRIVER_FILES": None}),
}


def build(directory: Path) -> Path:
    binary = directory / "dispatch_loop"
    subprocess.run(
        [
            "gcc",
            "-O2",
            f"-I{REPRO}",
            f"-I{ROOT / 'vkdoctor' / 'native'}",  # vkdoctor_vk.h, shared by the reproducers
            "-o",
            str(binary),
            str(REPRO / "dispatch_loop.c"),
            "-ldl",
        ],
        check=True,
    )
    return binary


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VK_", "LD_AUDIT"))}
    env["VK_DRIVER_FILES"] = LVP_ICD
    return env


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dispatches", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument(
        "--pin",
        type=int,
        metavar="CPU",
        help="run everything on this CPU (less scheduling noise on a shared machine)",
    )
    parser.add_argument(
        "--program",
        choices=("dispatch_loop", *REAL_PROGRAMS),
        default="dispatch_loop",
        help="what to trace: the C dispatch loop, or a real program from the trace-programs "
        "extra (tests/programs/)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if shutil.which("gcc") is None or not Path(LVP_ICD).exists():
        print("needs gcc and lavapipe", file=sys.stderr)
        return 2

    if args.pin is not None:
        os.sched_setaffinity(0, {args.pin})  # inherited by every child
    env = environment()
    with tempfile.TemporaryDirectory(prefix="vkdoctor-bench-") as tmp:
        if args.program in REAL_PROGRAMS:
            script, extra = REAL_PROGRAMS[args.program]
            argv = [sys.executable, str(ROOT / "tests" / "programs" / script)]
            for key, value in extra.items():
                if value is None:
                    env.pop(key, None)
                else:
                    env[key] = value
        else:
            binary = build(Path(tmp))
            argv = [str(binary), str(args.dispatches)]
        # warm the page cache and LLVM's first-use costs for both variants
        run_program(argv, env, output=OUTPUT_DISCARD)
        trace_program(argv, env, Path("/proc"), TraceOptions(output=OUTPUT_DISCARD))

        plain: list[float] = []
        traced: list[float] = []
        ratios: list[float] = []
        cpu_ratios: list[float] = []

        def untraced_run() -> tuple[float, float]:
            before = _children_cpu()
            outcome = run_program(argv, env, output=OUTPUT_DISCARD)
            if outcome.returncode != 0:
                raise SystemExit(f"untraced run failed: {outcome.status_dict()}")
            return outcome.duration_s, _children_cpu() - before

        def traced_run() -> tuple[float, float]:
            before = _children_cpu()
            run = trace_program(argv, env, Path("/proc"), TraceOptions(output=OUTPUT_DISCARD))
            if run.outcome is None or run.outcome.returncode != 0:
                raise SystemExit(f"traced run failed: {run.outcome}")
            if run.mode != "audit+layer":
                raise SystemExit(f"native parts missing: mode {run.mode}")
            return run.outcome.duration_s, _children_cpu() - before

        for i in range(args.repeat):
            # ABBA order: drift in machine load does not favour either side
            if i % 2 == 0:
                (a, a_cpu), (b, b_cpu) = untraced_run(), traced_run()
            else:
                (b, b_cpu), (a, a_cpu) = traced_run(), untraced_run()
            plain.append(a)
            traced.append(b)
            ratios.append(b / a)
            cpu_ratios.append(b_cpu / a_cpu if a_cpu else float("nan"))

        # end to end: the whole command, analysis included
        cli = argparse.ArgumentParser()
        add_arguments(cli)
        e2e: list[float] = []
        for _ in range(3):
            started = time.monotonic()
            report = build_report(
                cli.parse_args(["--program-output", "discard", "--", *argv]),
                Env.current().with_environ(
                    **{
                        **{k: None for k in os.environ if k.startswith("VK_")},
                        **{k: v for k, v in env.items() if k.startswith(("VK_", "WGPU_", "TI_"))},
                    }
                ),
            )
            e2e.append(time.monotonic() - started)
            bad = [f for f in report.probes[0].findings if f.severity.value in ("warn", "fail")]
            assert bad == [], bad

    result = {
        "program": args.program,
        "dispatches": args.dispatches,
        "repeat": args.repeat,
        "untraced_s_median": round(statistics.median(plain), 4),
        "traced_s_median": round(statistics.median(traced), 4),
        "ratio_median": round(statistics.median(ratios), 4),
        "ratios": [round(r, 4) for r in ratios],
        "cpu_ratio_median": round(statistics.median(cpu_ratios), 4),
        "end_to_end_s_median": round(statistics.median(e2e), 4),
        "pinned_cpu": args.pin,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.node()}",
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        what = f"{args.dispatches} dispatches" if args.program == "dispatch_loop" else args.program
        print(f"{what} x {args.repeat} pairs (lavapipe)")
        print(f"  untraced median  {result['untraced_s_median']:.3f} s")
        print(f"  traced median    {result['traced_s_median']:.3f} s")
        print(f"  ratio median     {result['ratio_median']:.3f}   per pair: {result['ratios']}")
        print(f"  child CPU time ratio median {result['cpu_ratio_median']:.3f}")
        print(
            f"  vkdoctor trace end to end (launch + analysis) median "
            f"{result['end_to_end_s_median']:.3f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
