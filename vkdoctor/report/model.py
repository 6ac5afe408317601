"""The result model: statuses, findings, probe results and the report.

Everything here is plain data (dataclasses) with a JSON form; renderers and the TUI read it, probes
produce it.  No rich/textual imports here: headless code must stay headless.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import field
from enum import Enum
from typing import Any

from vkdoctor.record import frozen, mutable
from vkdoctor.report import codec
from vkdoctor.report.records import DeviceRecord, DriverRecord, LayerRecord, LoaderRecord

# 2: typed component records (integer ids, named UUIDs, issues, excluded_by), the loader log
# stored once per report with probes referring to its entries, kernel runs as a section.
SCHEMA_VERSION = 2
READABLE_SCHEMA_VERSIONS = (1, 2)


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


@frozen
class Remedy:
    text: str
    commands: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "commands": list(self.commands)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Remedy:
        return cls(text=str(data.get("text", "")), commands=tuple(data.get("commands") or ()))


@frozen
class Finding:
    """One diagnosis: a stable kebab-case code, what we saw, why it matters, how to fix it."""

    code: str
    severity: Severity
    summary: str
    detail: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)
    remedy: Remedy | None = None
    id: str = ""  # unique in its report ("driver-enumeration.2"); set by the diagnosis
    causes: tuple[str, ...] = ()  # ids of the findings this one explains
    folded: int = 0  # how many same-code findings this one stands for (diagnosis/fold.py)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "causes": list(self.causes),
            **({"folded": self.folded} if self.folded else {}),
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
            id=str(data.get("id") or ""),
            causes=tuple(str(c) for c in data.get("causes") or () if isinstance(c, str)),
            folded=_count(data.get("folded")),
        )


@frozen
class LogEntry:
    """One parsed line of loader output (VK_LOADER_DEBUG on stderr, or a debug-utils message)."""

    level: str  # error | warn | info | debug | perf | other
    categories: tuple[str, ...]  # driver, layer, perf, validation
    message: str
    source: str = "stderr"  # stderr | debug-utils
    classification: str = ""  # e.g. "harmless:device-select-empty-symbol"

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What makes two lines the same line (the report stores each once)."""
        return (self.level, self.message, self.source, self.classification)

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


def _count(raw: Any) -> int:
    """A non-negative count from a report, 0 for anything else (reports come from anywhere)."""
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0 else 0


def status_from_findings(findings: Iterable[Finding]) -> Status:
    worst: Severity | None = None
    for finding in findings:
        if worst is None or finding.severity.rank > worst.rank:
            worst = finding.severity
    if worst is None:
        return Status.OK
    return Status(worst.value)


@mutable
class ProbeResult:
    id: str
    title: str
    status: Status
    blocked_by: str | None = None
    duration_s: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    loader_log: list[LogEntry] = field(default_factory=list)

    def to_dict(
        self, log_index: Mapping[tuple[str, str, str, str], int] | None = None
    ) -> dict[str, Any]:
        """The probe's JSON form.  In a report its loader-log lines are indices into the
        report's ``loader_log`` table (``log_index``), which stores each distinct line once;
        a probe on its own carries the lines themselves."""
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status.value,
            "blocked_by": self.blocked_by,
            "duration_s": round(self.duration_s, 4),
            "findings": [f.to_dict() for f in self.findings],
            "facts": self.facts,
            "loader_log": [
                log_index[e.key] if log_index is not None else e.to_dict() for e in self.loader_log
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], log_table: Sequence[LogEntry] = ()) -> ProbeResult:
        entries: list[LogEntry] = []
        for item in data.get("loader_log") or ():
            if isinstance(item, int) and not isinstance(item, bool):  # version 2: an index
                if 0 <= item < len(log_table):
                    entries.append(log_table[item])
            elif isinstance(item, Mapping):  # version 1: the line itself
                entries.append(LogEntry.from_dict(item))
        return cls(
            id=str(data["id"]),
            title=str(data.get("title", data["id"])),
            status=Status(data["status"]),
            blocked_by=data.get("blocked_by"),
            duration_s=float(data.get("duration_s") or 0.0),
            findings=[Finding.from_dict(f) for f in data.get("findings") or ()],
            facts=dict(data.get("facts") or {}),
            loader_log=entries,
        )


# ``blocked_by`` of the probes a stopped run never finished (engine/runner.py sets them).
BLOCKED_INTERRUPTED = "interrupted"
BLOCKED_DEADLINE = "deadline"
STOPPED_EARLY = frozenset({BLOCKED_INTERRUPTED, BLOCKED_DEADLINE})


@mutable
class Report:
    tool_version: str
    created: str
    environment: dict[str, Any] = field(default_factory=dict)
    probes: list[ProbeResult] = field(default_factory=list)
    loader: LoaderRecord | None = None
    drivers: list[DriverRecord] = field(default_factory=list)
    layers: list[LayerRecord] = field(default_factory=list)
    devices: list[DeviceRecord] = field(default_factory=list)
    # The loader's errors and warnings across all probes, each line once (what renderers show).
    loader_log: list[LogEntry] = field(default_factory=list)
    # The diagnosis (vkdoctor.diagnosis): finding ids, most important first, and one line.
    root_causes: list[str] = field(default_factory=list)
    verdict: str = ""
    # The schema version of the file this report was read from (written reports are current).
    read_from_schema: int = SCHEMA_VERSION

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

    def stopped_early(self) -> bool:
        """Whether a signal or the deadline stopped the run before every probe ran (probes
        skipped with ``blocked_by`` "interrupted" or "deadline")."""
        return any(p.blocked_by in STOPPED_EARLY for p in self.probes)

    def findings(self) -> list[tuple[ProbeResult, Finding]]:
        return [(p, f) for p in self.probes for f in p.findings]

    def finding(self, finding_id: str) -> tuple[ProbeResult, Finding] | None:
        return self.findings_by_id().get(finding_id)

    def findings_by_id(self) -> dict[str, tuple[ProbeResult, Finding]]:
        """Every finding with an id, by id (built on each call: the report is mutable)."""
        return {f.id: (p, f) for p, f in self.findings() if f.id}

    def caused(self) -> set[str]:
        """Ids of the findings some other finding explains (symptoms)."""
        return {c for _, f in self.findings() for c in f.causes}

    def log_table(self) -> list[LogEntry]:
        """Every distinct loader-log line of every probe, in first-seen order."""
        table: dict[tuple[str, str, str, str], LogEntry] = {}
        for probe in self.probes:
            for entry in probe.loader_log:
                table.setdefault(entry.key, entry)
        for entry in self.loader_log:
            table.setdefault(entry.key, entry)
        return list(table.values())

    def to_dict(self) -> dict[str, Any]:
        table = self.log_table()
        index = {entry.key: i for i, entry in enumerate(table)}
        shown = {entry.key for entry in self.loader_log}
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "vkdoctor", "version": self.tool_version},
            "created": self.created,
            "summary": self.summary(),
            "environment": self.environment,
            "probes": [p.to_dict(index) for p in self.probes],
            "loader_log": [{**e.to_dict(), "shown": e.key in shown} for e in table],
            "verdict": self.verdict,
            "root_causes": list(self.root_causes),
            "loader": codec.to_json(self.loader) if self.loader else None,
            "devices": [codec.to_json(d) for d in self.devices],
            "drivers": [codec.to_json(d) for d in self.drivers],
            "layers": [codec.to_json(layer) for layer in self.layers],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Report:
        """Build a report from its JSON form, version 1 or 2 (see reports/README.md)."""
        from vkdoctor.report.upgrade import upgrade

        version = data.get("schema_version")
        data = upgrade(data)
        tool = data.get("tool") or {}
        table = [
            LogEntry.from_dict(e) for e in data.get("loader_log") or () if isinstance(e, Mapping)
        ]
        shown = [
            entry
            for entry, raw in zip(table, data.get("loader_log") or (), strict=False)
            if isinstance(raw, Mapping) and raw.get("shown", True)
        ]
        return cls(
            tool_version=str(tool.get("version", "")),
            created=str(data.get("created", "")),
            environment=dict(data.get("environment") or {}),
            probes=[ProbeResult.from_dict(p, table) for p in data.get("probes") or ()],
            loader=codec.from_json(LoaderRecord, data["loader"]) if data.get("loader") else None,
            drivers=[codec.from_json(DriverRecord, d) for d in data.get("drivers") or ()],
            layers=[codec.from_json(LayerRecord, d) for d in data.get("layers") or ()],
            devices=[codec.from_json(DeviceRecord, d) for d in data.get("devices") or ()],
            loader_log=shown,
            verdict=str(data.get("verdict") or ""),
            root_causes=[str(i) for i in data.get("root_causes") or () if isinstance(i, str)],
            read_from_schema=version if isinstance(version, int) else SCHEMA_VERSION,
        )
