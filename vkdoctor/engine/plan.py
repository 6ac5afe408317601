"""What a run will do, decided before anything heavy is imported: the pipeline's probe ids, the
run's options and defaults, the selection a ``check PROBE`` runs, and the warm children.

The CLI builds its parser and starts the warm children from this module alone: importing the
runner (diagnosis, remedies, records; ~60 ms on a 2-core machine) happens while the children's
Python start-up runs, not before it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vkdoctor.engine import child
from vkdoctor.engine.env import Env

if TYPE_CHECKING:
    from vkdoctor.engine.runner import ProbeSpec

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_DEADLINE_S = 120.0  # the whole run: even a hostile machine gets a report in two minutes
# Rich enough to explain discovery decisions, small enough to parse fast.
DEFAULT_LOADER_DEBUG = "error,warn,info,driver,layer"


PIPELINE: tuple[str, ...] = (
    "loader-discovery",
    "driver-enumeration",
    "layer-enumeration",
    "instance",
    "device",
    "dispatch",
)


@dataclass(frozen=True)
class Options:
    timeout_s: float = DEFAULT_TIMEOUT_S
    loader_debug: str = DEFAULT_LOADER_DEBUG
    rerun_failed_with_debug_all: bool = True
    bisect: bool = True
    loader: str = "libvulkan.so.1"  # soname or path of the loader to diagnose
    warm_children: int = 2  # children started ahead of need (0: start each when needed)
    # Children that may run early at once (ProbeSpec.early), one per core (None: this machine's).
    cores: int | None = None
    # A first attempt's tasks may share children (ChildPool): a healthy check then starts two
    # children, not one per step.  Off: every task in a child of its own.
    reuse_children: bool = True
    deadline_s: float | None = DEFAULT_DEADLINE_S  # the whole run; None: unbounded


def load_spec(probe_id: str) -> ProbeSpec:
    module = importlib.import_module("vkdoctor.probes." + probe_id.replace("-", "_"))
    spec: ProbeSpec = module.SPEC
    return spec


def available_probes() -> list[ProbeSpec]:
    specs = []
    for probe_id in PIPELINE:
        try:
            specs.append(load_spec(probe_id))
        except ImportError:
            continue
    return specs


def resolve_selection(selected: Iterable[str] | None) -> list[str]:
    """The selected probes plus everything they require, in pipeline order."""
    if not selected:
        return list(PIPELINE)
    wanted: set[str] = set()
    stack = list(selected)
    while stack:
        probe_id = stack.pop()
        if probe_id in wanted:
            continue
        if probe_id not in PIPELINE:
            raise KeyError(probe_id)
        wanted.add(probe_id)
        try:
            spec = load_spec(probe_id)
            stack.extend(spec.requires + spec.uses + spec.consults)
        except ImportError:
            pass
    return [p for p in PIPELINE if p in wanted]


def warm_pool(
    env: Env, options: Options | None = None, selected: Iterable[str] | None = None
) -> child.ChildPool:
    """The children a run of ``selected`` will start with; a caller that creates it before its
    own imports lets their Python start-up overlap them (``run_pipeline(pool=...)``)."""
    options = options or Options()
    order = resolve_selection(selected)
    # At most one warm child per probe to run; with kept children a healthy check needs only as
    # many as run at once (driver and layer enumeration, device and dispatch).  A warm child
    # started and killed unused costs Python's start-up, ~50 ms of CPU on a 2-core machine; a
    # failing run's re-runs and bisection start their own.
    size = options.warm_children
    budget = min(len(order), size) if options.reuse_children else len(order)
    return child.ChildPool(child.child_environ(env.environ, {}), size=size, budget=budget)
