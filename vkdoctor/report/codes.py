"""Finding codes: what each one means, its usual causes and its remedy.

Every module that emits findings declares its codes in a module-level ``CODES`` table built with
``code_table``; ``all_codes()`` gathers them for ``vkdoctor explain`` and for the test that checks
every emitted code is documented.  Codes are kebab-case and never renamed once released.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from vkdoctor.record import frozen
from vkdoctor.report.model import Finding, Remedy, Severity

AUDIENCES = ("user", "developer")
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
    "vkdoctor.kernels.siblings",
    "vkdoctor.require",
)


@frozen
class CodeInfo:
    code: str
    severity: Severity
    title: str
    explanation: str
    causes: tuple[str, ...] = ()
    remedy: str = ""
    # Who acts on it: "user" (whoever runs vkdoctor) or "developer" (only someone writing a
    # Vulkan program cares, e.g. driver leniency in vkGetDeviceProcAddr); the console groups
    # developer-only info findings into one line below -vv.
    audience: str = "user"
    # A code merged into another (they meant the same): the entry stays, so that `vkdoctor
    # explain OLD` works and reports carrying OLD still render; new findings get ``alias_of``.
    alias_of: str = ""


def code_table(entries: Iterable[CodeInfo]) -> dict[str, CodeInfo]:
    table: dict[str, CodeInfo] = {}
    for entry in entries:
        if not _KEBAB.match(entry.code):
            raise ValueError(f"finding code {entry.code!r} is not kebab-case")
        if entry.code in table:
            raise ValueError(f"finding code {entry.code!r} declared twice")
        if entry.audience not in AUDIENCES:
            raise ValueError(f"finding code {entry.code!r}: unknown audience {entry.audience!r}")
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
    """Build a finding whose code must be declared in ``table`` (a typo fails loudly in tests).
    A code merged into another is built as that other code (``CodeInfo.alias_of``)."""
    info = table[code]
    if info.alias_of:
        code = info.alias_of
        info = table.get(code) or code_info(code) or info
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


def code_info(code: str) -> CodeInfo | None:
    """The declaration of ``code``: modules already imported are searched first, so a
    renderer in a ``check`` run imports nothing new; unknown codes (a newer vkdoctor's) give
    None."""
    loaded = [name for name in CODE_MODULES if name in sys.modules]
    for name in loaded + [name for name in CODE_MODULES if name not in sys.modules]:
        try:
            table = importlib.import_module(name).CODES
        except ImportError:  # an optional part missing from this installation
            continue
        if code in table:
            return table[code]
    return None


def aliases_of(code: str, codes: Mapping[str, CodeInfo]) -> list[str]:
    """The old codes merged into ``code``."""
    return sorted(c for c, info in codes.items() if info.alias_of == code)
