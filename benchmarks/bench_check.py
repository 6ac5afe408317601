"""Time `vkdoctor check` against `vulkaninfo --summary`, interleaved in the same run.

    python benchmarks/bench_check.py [--runs 11] [--probes loader-discovery driver-enumeration ...]
        [--baseline OTHER/.venv/bin/python] [--variant VAR=VALUE]

Prints each command's median and spread of wall time and the ratio of the medians.  Runs are
interleaved so machine noise hits both sides alike.  Nothing here is asserted: it measures.

Measure an installation as users get it (`./bootstrap.sh check` installs `pip install .`):
an editable install's import finder costs every process, main and children, tens of
milliseconds here.  Run it from outside the source tree, with that installation's Python:

    python3 -m venv /tmp/u && /tmp/u/bin/pip install . && cd /tmp && \
        /tmp/u/bin/python REPO/benchmarks/bench_check.py --baseline /tmp/other/bin/python
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

# Measure vkdoctor as an installed package runs: with its bytecode cached (pip compiles it at
# install time; a PYTHONDONTWRITEBYTECODE in the shell would make every run recompile it).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _time(argv: list[str], extra: dict[str, str] | None = None) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system, the whole process tree) and the peak RSS in MiB
    of the largest process of the run (vkdoctor or one of its children: wait4's rusage covers
    the reaped descendants).  CPU time is the figure to compare on a loaded machine."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**ENV, **(extra or {})},
    )
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0  # reaped above
    cpu = usage.ru_utime + usage.ru_stime
    return time.perf_counter() - start, cpu, usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--probes", nargs="*", default=[], help="probes to run (default: all)")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="VAR=VALUE",
        help="also time vkdoctor check with this variable set (interleaved A/B)",
    )
    parser.add_argument(
        "--baseline",
        metavar="PYTHON",
        help="also time `PYTHON -m vkdoctor check` (another checkout's venv: before/after)",
    )
    args = parser.parse_args()
    vkdoctor = [sys.executable, "-m", "vkdoctor", "check", *args.probes]
    vulkaninfo = shutil.which("vulkaninfo")
    label = "vkdoctor check" + (" " + " ".join(args.probes) if args.probes else "")
    commands: dict[str, tuple[list[str], dict[str, str]]] = {label: (vkdoctor, {})}
    for variant in args.variant:
        name, _, value = variant.partition("=")
        commands[f"{label} {name}={value}"] = (vkdoctor, {name: value})
    if args.baseline:
        commands[f"baseline {args.baseline}"] = (
            [args.baseline, "-m", "vkdoctor", "check", *args.probes],
            {},
        )
    if vulkaninfo:
        commands["vulkaninfo --summary"] = ([vulkaninfo, "--summary"], {})
    for argv, extra in commands.values():  # warm caches (registry, page cache) before measuring
        _time(argv, extra)
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, (argv, extra) in commands.items():
            samples[name].append(_time(argv, extra))
    medians = {}
    for name, values in samples.items():
        walls = [w for w, _, _ in values]
        cpu = statistics.median(c for _, c, _ in values)
        medians[name] = statistics.median(walls)
        print(
            f"{name:<45} median {medians[name] * 1000:7.1f} ms   "
            f"min {min(walls) * 1000:7.1f}   max {max(walls) * 1000:7.1f}   runs {len(walls)}   "
            f"CPU {cpu * 1000:6.0f} ms   peak RSS {max(r for _, _, r in values):.0f} MiB"
        )
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if vulkaninfo:
        theirs = medians["vulkaninfo --summary"]
        for name, ours in medians.items():
            if name != "vulkaninfo --summary":
                print(f"ratio {name} / vulkaninfo: {ours / theirs:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
