"""The result model: statuses, findings, probe results and the report.

Everything here is plain data (dataclasses) with a JSON form; renderers and the TUI read it, probes
produce it.  No rich/textual imports here: headless code must stay headless.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

SCHEMA_VERSION = 1


class Status(str, Enum):
    OK = "ok"
    INFO = "info"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"
    TIMEOUT = "timeout"
    CRASHED = "crashed"

    @property
    def is_failure(self) -> bool:
        """A failed step: it blocks the probes that require it and makes the exit code 1."""
        return self in (Status.FAIL, Status.TIMEOUT, Status.CRASHED)


class Severity(str, Enum):
    INFO = "info"
    WARN = "warn"
    FAIL = "fail"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARN: 1, Severity.FAIL: 2}


@dataclass(frozen=True)
class Remedy:
    text: str
    commands: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "commands": list(self.commands)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Remedy:
        return cls(text=str(data.get("text", "")), commands=tuple(data.get("commands") or ()))


@dataclass(frozen=True)
class Finding:
    """One diagnosis: a stable kebab-case code, what we saw, why it matters, how to fix it."""

    code: str
    severity: Severity
    summary: str
    detail: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)
    remedy: Remedy | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "summary": self.summary,
            "detail": self.detail,
            "evidence": dict(self.evidence),
            "remedy": self.remedy.to_dict() if self.remedy else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        remedy = data.get("remedy")
        return cls(
            code=str(data["code"]),
            severity=Severity(data["severity"]),
            summary=str(data.get("summary", "")),
            detail=str(data.get("detail", "")),
            evidence=dict(data.get("evidence") or {}),
            remedy=Remedy.from_dict(remedy) if remedy else None,
        )


@dataclass(frozen=True)
class LogEntry:
    """One parsed line of loader output (VK_LOADER_DEBUG on stderr, or a debug-utils message)."""

    level: str  # error | warn | info | debug | perf | other
    categories: tuple[str, ...]  # driver, layer, perf, validation
    message: str
    source: str = "stderr"  # stderr | debug-utils
    classification: str = ""  # e.g. "harmless:device-select-empty-symbol"

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "categories": list(self.categories),
            "message": self.message,
            "source": self.source,
            "classification": self.classification,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogEntry:
        return cls(
            level=str(data.get("level", "other")),
            categories=tuple(data.get("categories") or ()),
            message=str(data.get("message", "")),
            source=str(data.get("source", "stderr")),
            classification=str(data.get("classification", "")),
        )


def status_from_findings(findings: Iterable[Finding]) -> Status:
    worst: Severity | None = None
    for finding in findings:
        if worst is None or finding.severity.rank > worst.rank:
            worst = finding.severity
    if worst is None:
        return Status.OK
    return Status(worst.value)


@dataclass
class ProbeResult:
    id: str
    title: str
    status: Status
    blocked_by: str | None = None
    duration_s: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    loader_log: list[LogEntry] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status.value,
            "blocked_by": self.blocked_by,
            "duration_s": round(self.duration_s, 4),
            "findings": [f.to_dict() for f in self.findings],
            "facts": self.facts,
            "loader_log": [e.to_dict() for e in self.loader_log],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProbeResult:
        return cls(
            id=str(data["id"]),
            title=str(data.get("title", data["id"])),
            status=Status(data["status"]),
            blocked_by=data.get("blocked_by"),
            duration_s=float(data.get("duration_s") or 0.0),
            findings=[Finding.from_dict(f) for f in data.get("findings") or ()],
            facts=dict(data.get("facts") or {}),
            loader_log=[LogEntry.from_dict(e) for e in data.get("loader_log") or ()],
        )


@dataclass
class Report:
    tool_version: str
    created: str
    environment: dict[str, Any] = field(default_factory=dict)
    probes: list[ProbeResult] = field(default_factory=list)
    drivers: list[dict[str, Any]] = field(default_factory=list)
    layers: list[dict[str, Any]] = field(default_factory=list)
    devices: list[dict[str, Any]] = field(default_factory=list)
    loader_log: list[LogEntry] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        statuses = {s.value: 0 for s in Status}
        severities = {s.value: 0 for s in Severity}
        for probe in self.probes:
            statuses[probe.status.value] += 1
            for finding in probe.findings:
                severities[finding.severity.value] += 1
        if any(p.status.is_failure for p in self.probes):
            overall = "fail"
        elif any(p.status is Status.WARN for p in self.probes):
            overall = "warn"
        else:
            overall = "ok"
        return {"status": overall, "counts": {"probes": statuses, "findings": severities}}

    def findings(self) -> list[tuple[ProbeResult, Finding]]:
        return [(p, f) for p in self.probes for f in p.findings]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "vkdoctor", "version": self.tool_version},
            "created": self.created,
            "summary": self.summary(),
            "environment": self.environment,
            "probes": [p.to_dict() for p in self.probes],
            "loader_log": [e.to_dict() for e in self.loader_log],
            "devices": self.devices,
            "drivers": self.drivers,
            "layers": self.layers,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Report:
        tool = data.get("tool") or {}
        return cls(
            tool_version=str(tool.get("version", "")),
            created=str(data.get("created", "")),
            environment=dict(data.get("environment") or {}),
            probes=[ProbeResult.from_dict(p) for p in data.get("probes") or ()],
            drivers=list(data.get("drivers") or ()),
            layers=list(data.get("layers") or ()),
            devices=list(data.get("devices") or ()),
            loader_log=[LogEntry.from_dict(e) for e in data.get("loader_log") or ()],
        )
