"""A pytest plugin: CPU seconds (this process and its waited-for children) per test, written in
the format of ``--durations=0`` so that benchmarks/fast_subset.py can read it.  CPU, not wall
time, because the test machines are shared: a loaded machine inflates wall times unevenly.

    VKDOCTOR_CPU_DURATIONS=/tmp/cpu.txt PYTHONPATH=benchmarks python -m pytest -p cpu_durations -m "not slow"
    python benchmarks/fast_subset.py /tmp/cpu.txt --budget 45
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator

import pytest

_OUT = os.environ.get("VKDOCTOR_CPU_DURATIONS", "")


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    started = _cpu()
    yield
    if _OUT:
        with open(_OUT, "a") as out:
            out.write(f"{_cpu() - started:.3f}s call     {item.nodeid}\n")
