"""Time loading the command registry: cold (derive from vulkan-object) against warm (cache file).

Every run is a fresh interpreter, the way ``vkdoctor check`` and its probe children meet it:
``vulkan_object.get_vulkan_object()`` memoises in-process, so repeating a cold load inside one
process would measure the memo, not the parse.  The child times ``load_commands`` itself
(interpreter start-up excluded) and, separately, the import of ``vkdoctor.loader.registry``.

    .venv/bin/python benchmarks/bench_registry.py [--cold-runs 5] [--warm-runs 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = """
import json, sys, time
t0 = time.perf_counter()
from pathlib import Path
from vkdoctor.loader.registry import load_commands
t1 = time.perf_counter()
table = load_commands(Path(sys.argv[1]))
t2 = time.perf_counter()
rules = table.device_commands_for((1, 3), set(), set())
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "rule_s": t3 - t2,
                  "origin": table.origin, "commands": len(table), "version": table.version,
                  "required": len(rules)}))
"""


def run_child(cache_dir: Path) -> dict[str, float | str | int]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(cache_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    result: dict[str, float | str | int] = json.loads(done.stdout.splitlines()[-1])
    return result


def ms(values: list[float]) -> str:
    med = statistics.median(values) * 1e3
    return f"median {med:8.2f} ms   (min {min(values) * 1e3:8.2f}, max {max(values) * 1e3:8.2f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--warm-runs", type=int, default=20)
    args = parser.parse_args(argv)

    cold: list[dict[str, float | str | int]] = []
    warm: list[dict[str, float | str | int]] = []
    for _ in range(args.cold_runs):
        with tempfile.TemporaryDirectory(prefix="vkdoctor-bench-") as empty:
            cold.append(run_child(Path(empty)))
    with tempfile.TemporaryDirectory(prefix="vkdoctor-bench-") as cache:
        run_child(Path(cache))  # populate
        for _ in range(args.warm_runs):
            warm.append(run_child(Path(cache)))

    assert all(r["origin"] == "generated" for r in cold), "a cold run hit a cache"
    assert all(r["origin"] == "cache" for r in warm), "a warm run missed the cache"
    first = warm[0]
    print(
        f"vk.xml {first['version']}: {first['commands']} commands; python {sys.version.split()[0]}"
    )
    print(f"cold load_commands (parse vk.xml, write cache), {len(cold)} runs:")
    print("   ", ms([float(r["load_s"]) for r in cold]))
    print(f"warm load_commands (read cache),                 {len(warm)} runs:")
    print("   ", ms([float(r["load_s"]) for r in warm]))
    print("import vkdoctor.loader.registry (dataclass set-up, editable-install finder):")
    print("   ", ms([float(r["import_s"]) for r in warm]))
    print(f"device_commands_for((1, 3)) -> {first['required']} commands:")
    print("   ", ms([float(r["rule_s"]) for r in warm]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
