"""Culprit isolation: re-run a failing native step with each active implicit layer disabled, and
with each driver alone (implicit layers off).

A layer whose disabling makes the step pass is a culprit; so is a driver that fails on its own
without any implicit layer.  Used by the instance and device probes (reference/failure-modes.md,
fact 3).

Bounded, because anyone can write manifests into $XDG_DATA_HOME (DESIGN.md, robustness): drivers
whose manifests name the same library are one candidate (60 copies of a manifest load one
library, and bisecting them 60 times proves nothing more), at most ``MAX_CANDIDATES`` drivers and
as many layers are tried, no more children run at once than this process may use cores, and
nothing new starts once the run's deadline has passed or a stop was requested.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from vkdoctor.engine import child
from vkdoctor.engine.child import ChildHandle, ChildOutcome
from vkdoctor.engine.runner import ProbeContext
from vkdoctor.report import shell
from vkdoctor.report.codes import CodeInfo, code_table, make_finding
from vkdoctor.report.model import Finding, Severity
from vkdoctor.report.records import LayerRecord

CODES = code_table(
    [
        CodeInfo(
            "culprit-layer",
            Severity.FAIL,
            "an implicit layer breaks this step",
            "The step succeeds with this implicit layer disabled and fails with it.",
            ("a layer bug (overlays, device_select, capture layers)",),
            "Set the layer's disable variable, or update or remove it.",
        ),
        CodeInfo(
            "culprit-driver",
            Severity.FAIL,
            "a driver breaks this step",
            "The step fails, crashes or hangs with this driver alone and no implicit layer.",
            ("a driver bug", "a driver that cannot reach its kernel module"),
            "Disable the driver (VK_LOADER_DRIVERS_DISABLE) or fix or remove it.",
        ),
        CodeInfo(
            "bisection-limited",
            Severity.INFO,
            "not every candidate was tried",
            "Culprit isolation tries a bounded number of drivers and layers, and stops at the "
            "run's deadline, so that thousands of manifests cannot exhaust the machine. The "
            "candidates not tried are listed.",
            ("very many driver or layer manifests", "a short --deadline"),
            "Remove the manifests you do not need, or raise --deadline.",
        ),
    ]
)

MAX_CANDIDATES = 16  # drivers (after grouping) and, separately, layers


def max_parallel_children() -> int:
    """Children bisection runs at once: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def active_implicit_layers(ctx: ProbeContext) -> list[LayerRecord]:
    layers = ctx.outcomes.get("layer-enumeration")
    rows = (layers.layers or []) if layers else []
    return [r for r in rows if r.implicit and r.active and r.disable_environment]


def usable_drivers(ctx: ProbeContext) -> list[str]:
    drivers = ctx.outcomes.get("driver-enumeration")
    rows = (drivers.drivers or []) if drivers else []
    return [r.manifest for r in rows if r.state == "usable" and not r.filtered]


def driver_groups(ctx: ProbeContext) -> dict[str, list[str]]:
    """Usable drivers grouped by the library they load: {first manifest: every manifest}."""
    drivers = ctx.outcomes.get("driver-enumeration")
    rows = (drivers.drivers or []) if drivers else []
    by_library: dict[str, list[str]] = {}
    for row in rows:
        if row.state == "usable" and not row.filtered:
            library = row.real_path or row.resolved or row.manifest
            by_library.setdefault(library, []).append(row.manifest)
    return {manifests[0]: manifests for manifests in by_library.values()}


def candidate_drivers(ctx: ProbeContext) -> list[str]:
    """One manifest per distinct driver library, in search order."""
    return list(driver_groups(ctx))


def _run_bounded(
    ctx: ProbeContext,
    task: str,
    payload: dict[str, Any],
    jobs: Sequence[Mapping[str, str | None]],
) -> list[ChildOutcome | None]:
    """Run one child per job, at most ``max_parallel_children()`` at a time; None for a job not
    started because the run is stopping or its deadline passed."""
    limit = max_parallel_children()
    outcomes: list[ChildOutcome | None] = [None] * len(jobs)
    running: list[tuple[int, ChildHandle]] = []
    for index, overrides in enumerate(jobs):
        while len(running) >= limit:
            done, handle = running.pop(0)
            outcomes[done] = handle.wait()
        if child.stop_reason() is not None or ctx.remaining_s() == 0.0:
            break
        running.append((index, ctx.start_child(task, payload, overrides)))
    for done, handle in running:
        outcomes[done] = handle.wait()
    return outcomes


def _disabled(rows: list[LayerRecord]) -> dict[str, str | None]:
    return {k: (v or "1") for r in rows for k, v in r.disable_environment.items()}


def _describe(outcome: ChildOutcome) -> str:
    return outcome.describe() if outcome.state != "ok" else "it fails"


def bisect(
    ctx: ProbeContext,
    stage: str,
    task: str,
    payload: dict[str, Any],
    failed: Callable[[ChildOutcome], bool],
    drivers: list[str] | None = None,
) -> list[Finding]:
    all_layers = active_implicit_layers(ctx)
    groups = driver_groups(ctx)
    all_drivers = list(groups) if drivers is None else list(dict.fromkeys(drivers))
    layers, drivers = all_layers[:MAX_CANDIDATES], all_drivers[:MAX_CANDIDATES]
    jobs: list[Mapping[str, str | None]] = [_disabled([r]) for r in layers]
    jobs += [
        {"VK_DRIVER_FILES": m, "VK_ICD_FILENAMES": None, **_disabled(all_layers)} for m in drivers
    ]
    outcomes = _run_bounded(ctx, task, payload, jobs)
    layer_runs = list(zip(layers, outcomes[: len(layers)], strict=True))
    driver_runs = list(zip(drivers, outcomes[len(layers) :], strict=True))
    untried = [r["manifest"] for r in all_layers[len(layers) :]]
    untried += [r["manifest"] for r, o in layer_runs if o is None]
    untried += all_drivers[len(drivers) :] + [m for m, o in driver_runs if o is None]
    findings: list[Finding] = []
    for row, layer_outcome in layer_runs:
        if layer_outcome is not None and not failed(layer_outcome):
            variable, value = next(iter(row.disable_environment.items()))
            findings.append(
                make_finding(
                    CODES,
                    "culprit-layer",
                    f"implicit layer {row.name} from {row.manifest} breaks {stage}; "
                    f"with {variable}={value or 1} it works",
                    evidence={
                        "layer": row.name,
                        "manifest": row.manifest,
                        "library": row.resolved,
                    },
                    commands=[
                        shell.export(variable, value or "1"),
                        shell.command(
                            "sudo",
                            "rm",
                            row.manifest,
                            comment="or update the package that owns it",
                        ),
                    ],
                )
            )
    for manifest, outcome in driver_runs:
        if outcome is not None and failed(outcome):
            same_library = groups.get(manifest, [manifest])[1:]
            findings.append(
                make_finding(
                    CODES,
                    "culprit-driver",
                    f"driver {manifest} alone breaks {stage}: {_describe(outcome)}",
                    evidence={
                        "manifest": manifest,
                        "state": outcome.state,
                        "signal": outcome.signal,
                        "last_step": outcome.last_crumb,
                        "same_library": same_library[:20],
                        "same_library_count": len(same_library),
                    },
                    commands=[
                        shell.export("VK_LOADER_DRIVERS_DISABLE", os.path.basename(manifest)),
                        shell.command(
                            "sudo", "rm", manifest, comment="if you do not need this driver"
                        ),
                    ],
                )
            )
    if untried:
        findings.append(
            make_finding(
                CODES,
                "bisection-limited",
                f"culprit isolation of {stage} did not try {len(untried)} of "
                f"{len(all_layers) + len(all_drivers)} candidates (at most {MAX_CANDIDATES} "
                "drivers and layers each, within the run's deadline)",
                evidence={"untried": untried[:20], "untried_count": len(untried)},
            )
        )
    return findings
