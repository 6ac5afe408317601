"""Time `vkdoctor check` against `vulkaninfo --summary`, interleaved in the same run.

    python benchmarks/bench_check.py [--runs 11] [--probes loader-discovery driver-enumeration ...]

Prints each command's median and spread of wall time and the ratio of the medians.  Runs are
interleaved so machine noise hits both sides alike.  Nothing here is asserted: it measures.
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


def _time(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=ENV)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--probes", nargs="*", default=[], help="probes to run (default: all)")
    args = parser.parse_args()
    vkdoctor = [sys.executable, "-m", "vkdoctor", "check", *args.probes]
    vulkaninfo = shutil.which("vulkaninfo")
    commands = {"vkdoctor check" + (" " + " ".join(args.probes) if args.probes else ""): vkdoctor}
    if vulkaninfo:
        commands["vulkaninfo --summary"] = [vulkaninfo, "--summary"]
    for argv in commands.values():  # warm caches (registry, page cache) before measuring
        _time(argv)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, argv in commands.items():
            samples[name].append(_time(argv))
    medians = {}
    for name, values in samples.items():
        medians[name] = statistics.median(values)
        print(
            f"{name:<45} median {medians[name] * 1000:7.1f} ms   "
            f"min {min(values) * 1000:7.1f}   max {max(values) * 1000:7.1f}   runs {len(values)}"
        )
    if len(medians) == 2:
        ours, theirs = medians.values()
        print(f"ratio vkdoctor/vulkaninfo: {ours / theirs:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
