"""Hostile input any user can create: many driver manifests in $XDG_DATA_HOME/vulkan/icd.d.

    python benchmarks/bench_hostile.py [--copies 60] [--missing 10000] [--deadline 120]

Two scenarios, each in a fresh temporary HOME (the machine's own manifests stay in the search
too, as they would for that user):

- ``copies``: N copies of lavapipe's manifest plus one malformed manifest (instance creation then
  fails and vkdoctor bisects);
- ``missing``: N manifests whose library does not exist.

For each it runs ``vkdoctor check --json`` as a subprocess and reports the wall time, the size of
the JSON report, the peak number of vkdoctor's live descendant processes and the peak summed RSS
of vkdoctor and its descendants (sampled every 20 ms with psutil), next to ``vulkaninfo
--summary`` in the same HOME.  Nothing here is asserted: it measures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

LAVAPIPE = Path("/usr/share/vulkan/icd.d/lvp_icd.x86_64.json")


def _home(root: Path, scenario: str, count: int) -> dict[str, str]:
    icd = root / ".local" / "share" / "vulkan" / "icd.d"
    icd.mkdir(parents=True)
    if scenario == "copies":
        body = LAVAPIPE.read_text()
        for index in range(count):
            (icd / f"copy_{index:05d}.json").write_text(body)
        (icd / "zz_malformed.json").write_text('{"file_format_version": "1.0.0", "ICD": {')
    else:
        for index in range(count):
            manifest = {
                "file_format_version": "1.0.0",
                "ICD": {
                    "library_path": f"/nonexistent/libvk_{index:05d}.so",
                    "api_version": "1.3.0",
                },
            }
            (icd / f"missing_{index:05d}.json").write_text(json.dumps(manifest))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VK_", "XDG_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(HOME=str(root), XDG_DATA_HOME=str(root / ".local" / "share"))
    # The user's own cache (the Vulkan registry cache is built once per vulkan-object version;
    # a fresh HOME would measure that build, 1-5 s, instead of the hostile manifests).
    env["XDG_CACHE_HOME"] = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return env


def _sample(pid: int, stop: threading.Event, peaks: dict[str, float]) -> None:
    try:
        root = psutil.Process(pid)
    except psutil.Error:
        return
    while not stop.is_set():
        try:
            kids = root.children(recursive=True)
            rss = root.memory_info().rss
        except psutil.Error:
            break
        for kid in kids:
            try:
                rss += kid.memory_info().rss
            except psutil.Error:
                continue
        peaks["children"] = max(peaks["children"], len(kids))
        peaks["rss"] = max(peaks["rss"], rss)
        time.sleep(0.02)


def measure(argv: list[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
    peaks = {"children": 0.0, "rss": 0.0}
    stop = threading.Event()
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sampler = threading.Thread(target=_sample, args=(proc.pid, stop, peaks), daemon=True)
    sampler.start()
    try:
        _, stderr = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
        timed_out = True
    wall = time.perf_counter() - start
    stop.set()
    sampler.join()
    return {
        "wall_s": round(wall, 2),
        "exit": proc.returncode,
        "timed_out": timed_out,
        "peak_children": int(peaks["children"]),
        "peak_rss_mb": round(peaks["rss"] / 2**20, 1),
        "stderr_tail": stderr.decode(errors="replace").strip().splitlines()[-1:],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=60)
    parser.add_argument("--missing", type=int, default=10000)
    parser.add_argument("--deadline", type=float, default=120.0)
    parser.add_argument("--timeout", type=float, default=900.0, help="kill a run after this")
    args = parser.parse_args()
    vulkaninfo = shutil.which("vulkaninfo")
    rows = []
    for scenario, count in (("copies", args.copies), ("missing", args.missing)):
        if count <= 0:
            continue
        with tempfile.TemporaryDirectory(prefix=f"vkdoctor-hostile-{scenario}-") as tmp:
            root = Path(tmp)
            env = _home(root, scenario, count)
            report = root / "report.json"
            argv = [sys.executable, "-m", "vkdoctor", "check", "--json", str(report)]
            argv += ["--deadline", str(args.deadline)]
            row = {"scenario": f"{scenario} x{count}", "vkdoctor": measure(argv, env, args.timeout)}
            row["report_mb"] = round(report.stat().st_size / 2**20, 2) if report.exists() else None
            if report.exists():
                data = json.loads(report.read_text())
                row["statuses"] = {p["id"]: p["status"] for p in data["probes"]}
            if vulkaninfo:
                row["vulkaninfo"] = measure([vulkaninfo, "--summary"], env, args.timeout)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
