"""``vkdoctor report summarize``: many machines' reports folded into failure signatures.

A fleet's question is "which of my nodes are broken, why, and what fixes them"; the answer is one
line per *signature*: the root cause's finding code and its culprit (the variable, manifest or
library the finding names), normalised so that the same fault on two machines is one line (the
report's home, user and host become ``~``/``<user>``/``<host>``, dotted version numbers become
``<version>``).  ``--by device|driver|loader`` groups the same machines by their stack instead.

Streaming: reports are read one at a time and folded into per-group counters; memory grows with
the number of groups and host labels, never with the reports' size.  Only the parts of a report
the summary needs become typed records: ``Report.from_dict`` over a copy without the probes'
facts and loader log, the environment, the sections the grouping does not use and the record
fields it does not read (a device's extension list alone cost more than the rest of a load).
The driver and layer records are read in full only when a root cause's culprit must be looked up
there.  10 000 reports take a few seconds (benchmarks/bench_summarize.py).

Hosts: a report does not record its host name, so a report's host label is its file name without
``.json`` (the Slurm sweep writes ``<node>.json``).  Machines are counted by label: the same node's
reports from several runs (``day1/n1.json``, ``day2/n1.json``) are one machine, seen first and
last at the reports' ``created`` times.

Headless: no rich or textual here; ``render/summary.py`` turns a ``Summary`` into text and
Markdown, ``codec.to_json`` into JSON.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import field
from datetime import datetime, timezone
from typing import Any

from vkdoctor.diagnosis.order import ranked
from vkdoctor.record import frozen, mutable
from vkdoctor.report.io import ReportError, load_report_dict
from vkdoctor.report.model import Finding, Report
from vkdoctor.report.records import DriverRecord, LayerRecord
from vkdoctor.report.redact import Identity, Redactor

GROUPINGS = ("signature", "device", "driver", "loader")

# Top-level parts every grouping reads, and the component sections each one adds.
_ALWAYS = ("schema_version", "tool", "created", "verdict", "root_causes")
_SECTIONS: Mapping[str, tuple[str, ...]] = {
    "signature": (),
    "device": ("devices",),
    "driver": ("drivers", "devices"),
    "loader": ("loader",),
}

# The record fields each section's grouping reads; the others keep their defaults (the codec's
# generic reading of a device's hundreds of extension names was most of a load's time).
_FIELDS: Mapping[str, tuple[str, ...]] = {
    "devices": (
        "index",
        "name",
        "type",
        "driver_name",
        "driver_info",
        "driver_version",
        "driver_manifest",
    ),
    "drivers": ("manifest", "state", "excluded_by"),
    "loader": ("soname", "version"),
}

# Evidence keys that name what a finding blames, most specific first.
_CULPRIT_KEYS = ("variable", "manifest", "layer", "library", "soname", "driver", "probe")

# 1.3.239, 535.104.05, 22.3.6: one machine's version is another's, the fault is the same.
_VERSION = re.compile(r"\d+(?:\.\d+)+")
VERSION_PLACEHOLDER = "<version>"


@frozen
class Signature:
    """What makes two machines' failures the same failure."""

    code: str
    culprit: str = ""

    @property
    def label(self) -> str:
        return f"{self.code} ({self.culprit})" if self.culprit else self.code


@frozen
class Sighting:
    """What one report contributes to the summary."""

    host: str
    seen: datetime | None
    signature: Signature | None  # None: the machine is healthy
    headline: str = ""  # the root cause's summary, identity redacted
    fix: str = ""  # its first remedy command (or the remedy's text), identity redacted
    stack: str = ""  # the --by group this machine falls in


@frozen
class Group:
    """One line of the summary: a failure signature, or a stack with --by."""

    key: str
    machines: int
    reports: int
    hosts: tuple[str, ...]
    first_seen: str  # ISO 8601 in UTC, "" when no report said when it was made
    last_seen: str
    code: str = ""
    culprit: str = ""
    headline: str = ""
    fix: str = ""
    healthy: int = 0  # --by: machines of this stack with a healthy report
    problems: tuple[tuple[str, int], ...] = ()  # --by: signature label, machines


@frozen
class Unreadable:
    path: str
    reason: str


@frozen
class Summary:
    by: str
    reports: int  # reports read
    machines: int  # distinct host labels among them
    healthy: int  # machines with a healthy report
    with_problems: int  # machines with a report that has a problem
    groups: tuple[Group, ...]
    unreadable: tuple[Unreadable, ...] = ()


@mutable
class _Tally:
    """A group while reports are still arriving (mutable on purpose: it is the accumulator)."""

    hosts: set[str] = field(default_factory=set)
    reports: int = 0
    first: datetime | None = None
    last: datetime | None = None
    signature: Signature | None = None
    headline: str = ""
    fix: str = ""
    healthy: set[str] = field(default_factory=set)
    problems: dict[str, set[str]] = field(default_factory=dict)

    def add(self, sighting: Sighting) -> None:
        self.reports += 1
        self.hosts.add(sighting.host)
        seen = sighting.seen
        if seen is not None:
            if self.first is None or seen < self.first:
                self.first = seen
                if sighting.signature is not None:  # the earliest report's words describe it
                    self.headline, self.fix = sighting.headline, sighting.fix
            if self.last is None or seen > self.last:
                self.last = seen
        if not self.headline and sighting.signature is not None:
            self.headline, self.fix = sighting.headline, sighting.fix
        if sighting.signature is None:
            self.healthy.add(sighting.host)
        else:
            self.problems.setdefault(sighting.signature.label, set()).add(sighting.host)


def _iso(moment: datetime | None) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds") if moment else ""


def _parse_time(created: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(created)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def normalise(text: str, redactor: Redactor) -> str:
    """``text`` as it reads on any machine: identity replaced, dotted versions too."""
    return _VERSION.sub(VERSION_PLACEHOLDER, redactor.text(text))


def _culprit(
    finding: Finding, components: Callable[[], Iterable[DriverRecord | LayerRecord]]
) -> str:
    for key in _CULPRIT_KEYS:
        value = finding.evidence.get(key)
        if isinstance(value, str) and value:
            return value
    # A finding about a component is listed in that record's issues.
    for record in components():
        if finding.code in record.issues:
            return record.manifest
    return ""


def _fix(finding: Finding) -> str:
    if finding.remedy is None:
        return ""
    if finding.remedy.commands:
        return finding.remedy.commands[0].split("  #")[0]  # the command, not its comment
    return finding.remedy.text


def _stack(report: Report, by: str) -> str:
    if by == "loader":
        if report.loader is None:
            return "no loader found"
        return f"loader {report.loader.version or 'of unknown version'}"
    if by == "device":
        names = [f"{d.name} ({d.type})" for d in report.devices]
        return "; ".join(names) if names else "no device"
    if by == "driver":
        parts = []
        for driver in report.drivers:
            if not driver.in_use:
                continue
            devices = sorted(
                {d.driver for d in report.devices if d.driver_manifest == driver.manifest}
            )
            name = os.path.basename(driver.manifest)
            parts.append(f"{name} ({', '.join(devices)})" if devices else name)
        return "; ".join(sorted(parts)) if parts else "no usable driver"
    return ""


def sighting(
    report: Report,
    host: str,
    by: str = "signature",
    identity: Identity | None = None,
    components: Callable[[], Iterable[DriverRecord | LayerRecord]] | None = None,
    mtime: float | None = None,
) -> Sighting:
    """What ``report`` (from ``host``) contributes; ``identity`` is what the report reveals about
    its machine (``Identity.of_report`` of its dict), ``components`` its driver and layer records
    when the culprit must be looked up there (default: the report's own)."""
    seen = _parse_time(report.created)
    if seen is None and mtime is not None:  # a partial report has no "created"
        seen = datetime.fromtimestamp(mtime, timezone.utc)
    stack = _stack(report, by)
    shown = ranked(report, include_info=False)
    failed = [p for p in report.probes if p.status.is_failure]
    if not shown and not failed:
        return Sighting(host, seen, None, stack=stack)
    redactor = Redactor((identity or Identity()).merge(Identity.build((), (), (host,), ())))
    if not shown:  # a step failed without a finding (an interrupted run): name the step
        probe = failed[0]
        signature = Signature(f"probe-{probe.status.value}", probe.id)
        return Sighting(host, seen, signature, f"{probe.title}: {probe.status.value}", "", stack)
    finding = shown[0].finding
    records = components or (lambda: [*report.drivers, *report.layers])
    culprit = normalise(_culprit(finding, records), redactor)
    signature = Signature(finding.code, culprit)
    return Sighting(
        host,
        seen,
        signature,
        redactor.text(finding.summary),
        redactor.text(_fix(finding)),
        stack,
    )


def _slim_probe(probe: Any) -> Any:
    # Facts and loader-log lines are evidence for people; the summary reads neither.
    if isinstance(probe, Mapping):
        return {**probe, "facts": {}, "loader_log": []}
    return probe


def _slim_record(record: Any, fields: tuple[str, ...]) -> Any:
    if isinstance(record, Mapping):
        return {key: record[key] for key in fields if key in record}
    return record


def _slim_section(value: Any, fields: tuple[str, ...]) -> Any:
    if isinstance(value, list):
        return [_slim_record(r, fields) for r in value]
    return _slim_record(value, fields)


def read_sighting(path: str, host: str, by: str = "signature") -> Sighting:
    """Read one report file and fold it into a Sighting; ``ReportError`` when it is unusable."""
    data = load_report_dict(path)

    def components() -> list[DriverRecord | LayerRecord]:
        full = Report.from_dict({"schema_version": data["schema_version"], **_parts(data)})
        return [*full.drivers, *full.layers]

    # A report from another machine may have any shape: every way it can be wrong is one line.
    try:
        slim: dict[str, Any] = {key: data.get(key) for key in _ALWAYS}
        for section in _SECTIONS[by]:
            slim[section] = _slim_section(data.get(section), _FIELDS[section])
        slim["probes"] = [_slim_probe(p) for p in data.get("probes") or ()]
        report = Report.from_dict(slim)
        mtime = os.stat(path).st_mtime if path != "-" and not report.created else None
        return sighting(report, host, by, Identity.of_report(data), components, mtime)
    except (KeyError, ValueError, TypeError, AttributeError, OSError) as exc:
        raise ReportError(f"{path}: a vkdoctor report with invalid content ({exc!r})") from None


def _parts(data: Mapping[str, Any]) -> dict[str, Any]:
    return {"drivers": data.get("drivers"), "layers": data.get("layers")}


def host_label(path: str) -> str:
    name = os.path.basename(path)
    return name[: -len(".json")] if name.endswith(".json") and len(name) > 5 else name


def report_paths(arguments: Sequence[str]) -> Iterator[str]:
    """Every report a command line names: files as given, directories searched for ``*.json``
    (sorted, hidden files and the atomic writer's temp files left out, links to directories not
    followed)."""
    for argument in arguments:
        if argument != "-" and os.path.isdir(argument):
            for directory, subdirs, files in os.walk(argument):
                subdirs.sort()
                for name in sorted(files):
                    if name.endswith(".json") and not name.startswith("."):
                        yield os.path.join(directory, name)
        else:
            yield argument


class Summarizer:
    """Folds reports into groups, one report at a time."""

    def __init__(self, by: str = "signature") -> None:
        if by not in GROUPINGS:
            raise ValueError(f"unknown grouping {by!r}; one of {', '.join(GROUPINGS)}")
        self.by = by
        self._tallies: dict[Any, _Tally] = {}
        self._unreadable: list[Unreadable] = []
        self._hosts: set[str] = set()
        self._healthy: set[str] = set()
        self._sick: set[str] = set()
        self._reports = 0

    def add_file(self, path: str) -> None:
        try:
            found = read_sighting(path, host_label(path), self.by)
        except ReportError as exc:
            reason = str(exc)
            reason = reason[len(path) + 2 :] if reason.startswith(f"{path}: ") else reason
            self._unreadable.append(Unreadable(path, reason))
            return
        self.add(found)

    def add(self, found: Sighting) -> None:
        self._reports += 1
        self._hosts.add(found.host)
        (self._healthy if found.signature is None else self._sick).add(found.host)
        if self.by == "signature":
            if found.signature is None:
                return
            key: Any = found.signature
        else:
            key = found.stack
        tally = self._tallies.setdefault(key, _Tally(signature=found.signature))
        tally.add(found)

    def result(self) -> Summary:
        groups = [self._group(key, tally) for key, tally in self._tallies.items()]
        groups.sort(key=lambda g: (-g.machines, g.key))
        return Summary(
            by=self.by,
            reports=self._reports,
            machines=len(self._hosts),
            healthy=len(self._healthy),
            with_problems=len(self._sick),
            groups=tuple(groups),
            unreadable=tuple(self._unreadable),
        )

    def _group(self, key: Any, tally: _Tally) -> Group:
        common = {
            "machines": len(tally.hosts),
            "reports": tally.reports,
            "hosts": tuple(sorted(tally.hosts)),
            "first_seen": _iso(tally.first),
            "last_seen": _iso(tally.last),
        }
        if isinstance(key, Signature):
            return Group(
                key=key.label,
                code=key.code,
                culprit=key.culprit,
                headline=tally.headline,
                fix=tally.fix,
                **common,
            )
        problems = sorted(((label, len(h)) for label, h in tally.problems.items()), key=_by_count)
        return Group(key=key, healthy=len(tally.healthy), problems=tuple(problems), **common)


def _by_count(item: tuple[str, int]) -> tuple[int, str]:
    return (-item[1], item[0])


def summarize(arguments: Sequence[str], by: str = "signature") -> Summary:
    summarizer = Summarizer(by)
    for path in report_paths(arguments):
        summarizer.add_file(path)
    return summarizer.result()
