"""A driver whose vkCreateInstance hangs: what one `vkdoctor check` costs, against --timeout.

    python benchmarks/bench_hang.py [--timeout 5 2] [--runs 3] [--variant create-instance-hang]
                                    [--python PYTHON] [--tree DIR]

The fault driver (tests/faultlib.py, compiled here) is installed in a fresh $XDG_DATA_HOME next
to the machine's own drivers; each run is `vkdoctor check --timeout T --json` in a subprocess.
The registry cache is shared by the runs and warmed first, as on a machine where vkdoctor ran
before.  ``--python``/``--tree`` run another checkout's vkdoctor (the figures before a change).
Prints per run the wall time, wall / --timeout, the instance probe's duration, the verdict's
first root cause and its first command.  Nothing here is asserted: it measures (issue 10: a
hanging component should cost about 2x --timeout).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _environ(root: Path, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VK_", "XDG_"))}
    env.update(HOME=str(root), XDG_DATA_HOME=str(root / "data"), XDG_CACHE_HOME=str(cache))
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, nargs="+", default=[5.0, 2.0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--variant", default="create-instance-hang")
    parser.add_argument("--python", default=sys.executable, help="the vkdoctor interpreter")
    parser.add_argument("--tree", type=Path, default=REPO, help="the checkout to run from")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "tests"))
    import faultlib

    work = Path(tempfile.mkdtemp(prefix="bench-hang-"))
    library = faultlib.build_driver(work / "build", args.variant)
    cache = work / "cache"
    warm = work / "warm"
    warm.mkdir()
    subprocess.run(
        [args.python, "-m", "vkdoctor", "check", "instance", "--json", str(warm / "r.json")],
        env=_environ(warm, cache),
        cwd=args.tree,
        capture_output=True,
        timeout=300,
    )
    for timeout in args.timeout:
        walls = []
        for run in range(args.runs):
            root = work / f"t{timeout:g}-{run}"
            icd = root / "data" / "vulkan" / "icd.d"
            faultlib.write_driver_manifest(icd, str(library), name="hang")
            report_path = root / "r.json"
            started = time.monotonic()
            done = subprocess.run(
                [
                    args.python,
                    "-m",
                    "vkdoctor",
                    "check",
                    "--timeout",
                    f"{timeout:g}",
                    "--json",
                    str(report_path),
                ],
                env=_environ(root, cache),
                cwd=args.tree,
                capture_output=True,
                text=True,
                timeout=600,
            )
            wall = time.monotonic() - started
            walls.append(wall)
            report = json.loads(report_path.read_text())
            instance = next(p for p in report["probes"] if p["id"] == "instance")
            by_id = {f["id"]: f for p in report["probes"] for f in p["findings"]}
            first = by_id.get((report.get("root_causes") or [""])[0]) or {}
            command = ((first.get("remedy") or {}).get("commands") or [""])[0]
            print(
                f"--timeout {timeout:g} run {run}: exit {done.returncode}, wall {wall:.1f} s "
                f"({wall / timeout:.2f}x), instance {instance['duration_s']:.1f} s, "
                f"root {first.get('code')}: {command}"
            )
        median = statistics.median(walls)
        print(f"--timeout {timeout:g}: median {median:.1f} s = {median / timeout:.2f}x --timeout")
    return 0


if __name__ == "__main__":
    sys.exit(main())
