"""Culprit isolation: re-run a failing native step with each active implicit layer disabled, and
with each driver alone (implicit layers off), all children at once.

A layer whose disabling makes the step pass is a culprit; so is a driver that fails on its own
without any implicit layer.  Used by the instance and device probes (reference/failure-modes.md,
fact 3).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from vkdoctor.engine.child import ChildOutcome
from vkdoctor.engine.runner import ProbeContext
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
    ]
)


def active_implicit_layers(ctx: ProbeContext) -> list[LayerRecord]:
    layers = ctx.outcomes.get("layer-enumeration")
    rows = (layers.layers or []) if layers else []
    return [r for r in rows if r.implicit and r.active and r.disable_environment]


def usable_drivers(ctx: ProbeContext) -> list[str]:
    drivers = ctx.outcomes.get("driver-enumeration")
    rows = (drivers.drivers or []) if drivers else []
    return [r.manifest for r in rows if r.state == "usable" and not r.filtered]


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
    layers = active_implicit_layers(ctx)
    drivers = usable_drivers(ctx) if drivers is None else drivers
    layer_runs = [(r, ctx.start_child(task, payload, _disabled([r]))) for r in layers]
    driver_runs = [
        (
            m,
            ctx.start_child(
                task, payload, {"VK_DRIVER_FILES": m, "VK_ICD_FILENAMES": None, **_disabled(layers)}
            ),
        )
        for m in drivers
    ]
    findings: list[Finding] = []
    for row, handle in layer_runs:
        if not failed(handle.wait()):
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
                        f"export {variable}={value or 1}",
                        f"sudo rm {row.manifest}  # or update the package that owns it",
                    ],
                )
            )
    for manifest, handle in driver_runs:
        outcome = handle.wait()
        if failed(outcome):
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
                    },
                    commands=[
                        f"export VK_LOADER_DRIVERS_DISABLE={os.path.basename(manifest)}",
                        f"sudo rm {manifest}  # if you do not need this driver",
                    ],
                )
            )
    return findings
