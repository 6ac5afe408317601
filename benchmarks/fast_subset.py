"""Which tests to mark slow so that `pytest -m "not slow"` stays under a minute.

Reads the output of `pytest -m "not slow" --durations=0` (setup + call + teardown per test,
summed over a function's parameters, since tests/conftest.py marks whole functions) and prints
the functions to add to tests/slow_measured.py: the slowest first, until what is left of the
subset sums to at most --budget seconds (of the measured run; scale by CPU/wall for a quiet
machine, see benchmarks/RESULTS.md).

    nice .venv/bin/python -m pytest -q -m "not slow" --durations=0 > /tmp/d.txt
    python benchmarks/fast_subset.py /tmp/d.txt --budget 60
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_LINE = re.compile(r"\s*([\d.]+)s (?:call|setup|teardown)\s+tests/(\S+?)(?:\[.*\])?$")


def per_function(text: str) -> Counter[str]:
    """'file.py::function' -> seconds, over every parameter and phase."""
    seconds: Counter[str] = Counter()
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:  # tests/conftest.py keys by file name, wherever under tests/ it is
            seconds[match.group(2).rsplit("/", 1)[-1]] += float(match.group(1))
    return seconds


def choose(seconds: Counter[str], budget: float) -> list[tuple[str, float]]:
    left = sum(seconds.values())
    chosen: list[tuple[str, float]] = []
    for name, spent in seconds.most_common():
        if left <= budget:
            break
        chosen.append((name, spent))
        left -= spent
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("durations", type=Path, help="pytest --durations=0 output")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds left in the subset")
    args = parser.parse_args(argv)
    seconds = per_function(args.durations.read_text())
    chosen = choose(seconds, args.budget)
    total = sum(seconds.values())
    moved = sum(s for _, s in chosen)
    for name, spent in chosen:
        print(f'    "{name}": {spent:.1f},')
    print(
        f"# {len(chosen)} of {len(seconds)} functions, {moved:.0f} of {total:.0f} s; "
        f"{total - moved:.0f} s left",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
