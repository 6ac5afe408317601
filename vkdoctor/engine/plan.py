"""What a run will do, decided before anything heavy is imported: the pipeline's probe ids, the
run's options and defaults, the selection a ``check PROBE`` runs, and the warm children.

The CLI builds its parser and starts the warm children from this module alone: importing the
runner (diagnosis, remedies, records; ~60 ms on a 2-core machine) happens while the children's
Python start-up runs, not before it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from vkdoctor.engine import child
from vkdoctor.engine.env import Env
from vkdoctor.engine.interrupt import DEFAULT_DEADLINE_S
from vkdoctor.engine.protocol import LOADER_VAR
from vkdoctor.engine.spawn import SPECULATE_FROM_CORES, WARM_CHILDREN
from vkdoctor.record import frozen

if TYPE_CHECKING:
    from vkdoctor.engine.runner import ProbeSpec

DEFAULT_TIMEOUT_S = 5.0
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


@frozen
class Options:
    timeout_s: float = DEFAULT_TIMEOUT_S
    loader_debug: str = DEFAULT_LOADER_DEBUG
    rerun_failed_with_debug_all: bool = True
    bisect: bool = True
    loader: str = "libvulkan.so.1"  # soname or path of the loader to diagnose
    warm_children: int = WARM_CHILDREN  # children started ahead of need (0: when needed)
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
    # The smoke dispatch is the longest step (numpy, an instance, the shader's compile); its child
    # needs nothing from the other steps, so it starts now, beside the runner's and the probes'
    # imports, and the dispatch probe's first request takes it (ChildPool.speculate).  One more
    # warm child keeps the enumeration steps from waiting for a start-up of their own.
    # Only with cores to spare: on 2 cores the dispatch child's CPU then competes with the
    # imports and the loader step on the critical path, and the third child loads the loader
    # again (benchmarks/RESULTS.md: 973 against 912 ms, CPU 1474 against 1265 ms).
    # The device probe's creation of every device with every extension is the long pole on a
    # GPU (~0.4 s on the H200, after the instance probe): it starts here too, counting the
    # devices and reading the registry itself.
    ahead = (
        [(probe, task, payload) for probe, task, payload in _speculated(options) if probe in order]
        if size > 0 and options.reuse_children and cores(options) >= SPECULATE_FROM_CORES
        else []
    )
    pool = child.ChildPool(
        child.child_environ(env.environ, {}), size=size, budget=budget + len(ahead)
    )
    for _, task, payload in ahead:
        pool.speculate(
            task,
            payload,
            child_overrides(options, options.loader_debug),
            first_attempt_sharing(options, native=True, requires=True),
            options.timeout_s,
        )
    return pool


def _speculated(options: Options) -> list[tuple[str, str, dict[str, Any]]]:
    """The probes whose first request warm_pool makes ahead: (probe, task, payload)."""
    return [
        ("dispatch", DISPATCH_TASK, early_dispatch_payload(options)),
        ("device", DEVICE_TASK, EARLY_DEVICE_PAYLOAD),
    ]


DISPATCH_TASK = "vkdoctor.tasks.dispatch:smoke"
DEVICE_TASK = "vkdoctor.tasks.vkprobe:devices"
# The device probe's request before the instance probe has listed the devices: every device,
# the registry's device commands read by the child, and the commands whose addresses are shown.
EARLY_DEVICE_PAYLOAD: dict[str, Any] = {
    "items": None,
    "names": None,
    "trampoline_names": ["vkCreateBuffer", "vkQueueSubmit", "vkCmdDispatch"],
}


def cores(options: Options) -> int:
    """Children that may run early at once (ProbeSpec.early): one per core."""
    return options.cores or len(os.sched_getaffinity(0))


def fence_timeout(options: Options) -> float:
    """The dispatch's fence wait: a hang is reported before the child's limit kills it."""
    return max(0.5, options.timeout_s * 0.6)


def early_dispatch_payload(options: Options) -> dict[str, Any]:
    """The dispatch child's request over every device the loader enumerates (``items`` None:
    the child counts them itself), before the instance probe has listed them."""
    return {"items": None, "fence_timeout_s": fence_timeout(options)}


def child_overrides(
    options: Options, loader_debug: str, extra: Mapping[str, str | None] | None = None
) -> dict[str, str | None]:
    """The variables a probe's child runs with."""
    overrides: dict[str, str | None] = {"VK_LOADER_DEBUG": loader_debug}
    # `--loader PATH`: the instance, device and dispatch children use it too, not the
    # libvulkan.so.1 the binding would open by name (vulkan/loader_choice.py); without it,
    # a value inherited from the user's environment is removed.
    chosen = options.loader != Options.loader
    overrides[LOADER_VAR] = options.loader if chosen else None
    overrides.update(extra or {})
    return overrides


def reruns_failures(options: Options, native: bool) -> bool:
    """Whether a failing first attempt of a (native) probe is re-run with VK_LOADER_DEBUG=all."""
    return native and options.rerun_failed_with_debug_all and options.loader_debug != "all"


def first_attempt_sharing(options: Options, native: bool, requires: bool) -> child.Sharing:
    """Whether a probe's first attempt may share children: only one that a failure re-runs in
    fresh children (so a failure is diagnosed alone); a first step with nothing before it
    offers its fresh child to later ones."""
    if not options.reuse_children:
        return child.Sharing.NONE
    if reruns_failures(options, native):
        return child.Sharing.SHARE
    return child.Sharing.NONE if requires else child.Sharing.OFFER
