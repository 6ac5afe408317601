"""Wall time and peak memory of `vkdoctor report summarize` over a generated fleet.

    python benchmarks/bench_summarize.py [--counts 1000 10000] [--by signature device ...]

The fleet is made from real reports: `vkdoctor check --json` runs on this machine healthy, with
`VK_DRIVER_FILES=/nonexistent.json` and with a driver manifest whose library is missing (in a
temporary home).  Each of N files is one of them (about 1 in 20 broken) under its own host name
and `created` time, plus a few truncated files.  Each summarize runs in a fresh process, timed
from outside; its peak RSS comes from the kernel (`wait4`'s `ru_maxrss` of that child).  Memory that stays
flat from 1 000 to 10 000 reports is what streaming means; CPU time (user + system of the
child) is printed too, since wall time on a shared machine measures the neighbours as well.  Nothing is asserted: it measures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _check(out: Path, **variables: str) -> dict[str, Any]:
    env = {k: v for k, v in ENV.items() if not k.startswith("VK_")}
    subprocess.run(
        [sys.executable, "-m", "vkdoctor", "check", "--json", str(out)],
        env={**env, **variables},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return json.loads(out.read_text())


def real_reports(work: Path) -> list[dict[str, Any]]:
    home = work / "home" / "alice"
    icd = home / ".local" / "share" / "vulkan" / "icd.d"
    icd.mkdir(parents=True)
    (icd / "vendor_icd.json").write_text(
        json.dumps(
            {
                "file_format_version": "1.0.0",
                "ICD": {"library_path": "/opt/vendor/libvk_vendor.so", "api_version": "1.3.0"},
            }
        )
    )
    return [
        _check(work / "healthy.json"),
        _check(work / "override.json", VK_DRIVER_FILES="/nonexistent.json"),
        _check(work / "missing.json", HOME=str(home)),
    ]


def generate(directory: Path, count: int, sources: list[dict[str, Any]]) -> None:
    # Each source serialised once with a marker for its time; the bench itself stays small, since
    # a forked child's peak RSS counts the parent's pages until it execs.
    marker = "@@CREATED@@"
    healthy_text, *broken_texts = (json.dumps({**s, "created": marker}) for s in sources)
    for index in range(count):
        # 1 in 20 broken, the broken kinds alternating.
        text = broken_texts[(index // 20) % len(broken_texts)] if index % 20 == 7 else healthy_text
        minute = index % (60 * 24 * 7)
        created = (
            f"2026-11-{1 + minute // 1440:02}T{minute // 60 % 24:02}:{minute % 60:02}:00+00:00"
        )
        rack = directory / f"rack{index // 500:03}"
        rack.mkdir(exist_ok=True)
        (rack / f"node{index:05}.json").write_text(text.replace(marker, created, 1))
    for index in range(3):
        (directory / f"truncated{index}.json").write_text(healthy_text[:1000])


def measure(directory: Path, by: str) -> tuple[float, float, float, int]:
    """Wall seconds, CPU seconds, peak RSS in MiB and exit code of one summarize process."""
    argv = [sys.executable, "-m", "vkdoctor", "report", "summarize", str(directory)]
    if by != "signature":
        argv += ["--by", by]
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    # wait4: this child's own resource usage (RUSAGE_CHILDREN would mix in the checks).
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, child.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--by", nargs="+", default=["signature"])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vkdoctor-bench-summarize-") as tmp:
        work = Path(tmp)
        sources = real_reports(work)
        sizes = ", ".join(f"{len(json.dumps(s)) // 1024} KiB" for s in sources)
        print(f"real reports: healthy, VK_DRIVER_FILES override, missing library ({sizes})")
        print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        for count in sorted(args.counts):
            directory = work / f"fleet-{count}"
            directory.mkdir()
            generate(directory, count, sources)
            for by in args.by:
                measure(directory, by)  # warm the page cache
                runs = [measure(directory, by) for _ in range(args.runs)]
                walls = [r[0] for r in runs]
                cpu = min(r[1] for r in runs)
                peak, code = max(r[2] for r in runs), runs[-1][3]
                print(
                    f"{count:>6} reports  --by {by:<9}  wall best {min(walls):6.2f} s  "
                    f"worst {max(walls):6.2f} s  CPU {cpu:6.2f} s  peak RSS {peak:6.1f} MiB  "
                    f"exit {code}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
