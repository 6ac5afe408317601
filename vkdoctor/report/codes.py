"""Finding codes: what each one means, its usual causes and its remedy.

Every module that emits findings declares its codes in a module-level ``CODES`` table built with
``code_table``; ``all_codes()`` gathers them for ``vkdoctor explain`` and for the test that checks
every emitted code is documented.  Codes are kebab-case and never renamed once released.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vkdoctor.report.model import Finding, Remedy, Severity

_KEBAB = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")

# Modules that declare a CODES table; explain and the catalogue test read exactly these.
CODE_MODULES: tuple[str, ...] = (
    "vkdoctor.engine.runner",
    "vkdoctor.loader.manifests",
    "vkdoctor.system.environment",
    "vkdoctor.loader.libcheck",
    "vkdoctor.probes.loader_discovery",
    "vkdoctor.probes.driver_enumeration",
    "vkdoctor.probes.layer_enumeration",
    "vkdoctor.probes.instance",
    "vkdoctor.engine.bisect",
    "vkdoctor.probes.device",
    "vkdoctor.kernels.smoke",
    "vkdoctor.kernels.suite",
    "vkdoctor.probes.dispatch",
    "vkdoctor.trace.rules.codes",
    "vkdoctor.trace.command",
    "vkdoctor.kernels.run",
    "vkdoctor.require",
)


@dataclass(frozen=True)
class CodeInfo:
    code: str
    severity: Severity
    title: str
    explanation: str
    causes: tuple[str, ...] = ()
    remedy: str = ""


def code_table(entries: Iterable[CodeInfo]) -> dict[str, CodeInfo]:
    table: dict[str, CodeInfo] = {}
    for entry in entries:
        if not _KEBAB.match(entry.code):
            raise ValueError(f"finding code {entry.code!r} is not kebab-case")
        if entry.code in table:
            raise ValueError(f"finding code {entry.code!r} declared twice")
        table[entry.code] = entry
    return table


def make_finding(
    table: Mapping[str, CodeInfo],
    code: str,
    summary: str,
    *,
    detail: str = "",
    evidence: Mapping[str, Any] | None = None,
    remedy: str | None = None,
    commands: Iterable[str] = (),
    severity: Severity | None = None,
) -> Finding:
    """Build a finding whose code must be declared in ``table`` (a typo fails loudly in tests)."""
    info = table[code]
    text = remedy if remedy is not None else info.remedy
    commands = tuple(commands)
    return Finding(
        code=code,
        severity=severity or info.severity,
        summary=summary,
        detail=detail or info.explanation,
        evidence=dict(evidence or {}),
        remedy=Remedy(text=text, commands=commands) if (text or commands) else None,
    )


def all_codes() -> dict[str, CodeInfo]:
    merged: dict[str, CodeInfo] = {}
    for name in CODE_MODULES:
        module = importlib.import_module(name)
        for code, info in module.CODES.items():
            if code in merged:
                raise ValueError(f"finding code {code!r} declared in two modules")
            merged[code] = info
    return merged
