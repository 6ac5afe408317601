"""A timeline of one `vkdoctor check`: every process's start, each child's breadcrumbs and items,
main's milestones, each line with the process's CPU time.  Measures; asserts nothing.

    rm -f /tmp/tl.log
    TLLOG=/tmp/tl.log TL_T0=$(date +%s.%N) PYTHONPATH=REPO/benchmarks/timeline \\
        python -m vkdoctor check >/dev/null
    sort -n /tmp/tl.log

Lines read ``  ms-since-T0  pid  M|C  cpu=ms  what``.  Python loads this ``sitecustomize`` at
start-up in main, and children import it themselves (engine/child_main.py's ``_sitecustomize``),
so it reaches every process of the run.  Main's milestones come from wrapping the functions in
``MILESTONES`` when their modules are imported; children log ``Emitter`` calls.  Children killed
at the end of a run log no exit.  benchmarks/RESULTS.md quotes timelines taken with it.
"""

from __future__ import annotations

import atexit
import functools
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import time
from types import ModuleType
from typing import Any

LOG = os.environ.get("TLLOG")
T0 = float(os.environ.get("TL_T0") or 0)
CHILD = "VKDOCTOR_CHILD_FD" in os.environ
MILESTONES = {
    "vkdoctor.engine.spawn": ["prestart", "spawn"],
    "vkdoctor.engine.child": ["start_child"],
    "vkdoctor.engine.plan": ["warm_pool"],
    "vkdoctor.cli": ["_check_with", "_deliver"],
    "vkdoctor.engine.runner": ["run_pipeline"],
    "vkdoctor.diagnosis.run": ["diagnose"],
}
CHILD_MAIN = "vkdoctor.engine.child_main"


def log(what: str) -> None:
    assert LOG is not None
    since = (time.time() - T0) * 1e3
    cpu = time.process_time() * 1e3
    with open(LOG, "a") as out:
        out.write(f"{since:8.1f} {os.getpid():>7} {'C' if CHILD else 'M'} cpu={cpu:5.0f} {what}\n")


def _wrap(module: ModuleType, name: str) -> None:
    function = getattr(module, name, None)
    if function is None:
        return

    @functools.wraps(function)
    def logged(*args: Any, **kwargs: Any) -> Any:
        log(f"> {module.__name__}.{name}")
        try:
            return function(*args, **kwargs)
        finally:
            log(f"< {module.__name__}.{name}")

    setattr(module, name, logged)


def _patch_emitter(module: ModuleType) -> None:
    emitter = module.Emitter
    for method in ("crumb", "begin", "end"):
        original = getattr(emitter, method)

        def logged(self: Any, text: str, *args: Any, _f: Any = original, _m: str = method) -> Any:
            log(f"{_m} {text}")
            return _f(self, text, *args)

        setattr(emitter, method, logged)


class _Hook(importlib.abc.MetaPathFinder):
    """Patches a watched module right after it is executed."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in MILESTONES and fullname != CHILD_MAIN:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            execute(module)
            if fullname == CHILD_MAIN:
                _patch_emitter(module)
            else:
                for name in MILESTONES[fullname]:
                    _wrap(module, name)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if LOG:
    log("start " + " ".join(sys.argv[:3]))
    atexit.register(log, "exit")
    sys.meta_path.insert(0, _Hook())
    for loaded in ("__main__", CHILD_MAIN):  # a child imports this after child_main
        module = sys.modules.get(loaded)
        if module is not None and hasattr(module, "Emitter"):
            _patch_emitter(module)
