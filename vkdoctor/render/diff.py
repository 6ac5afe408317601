"""What differs between two reports: a working machine against a broken one, or before/after.

``diff_reports`` compares two report dicts section by section and returns plain data
(``ReportDiff``); ``render_text`` turns it into the console text and ``ReportDiff.to_dict`` into
``--json``.  Records are matched by identity, not position: drivers by manifest file name (the
full path only when a name occurs twice, so a driver that moved directory shows as changed),
layers by layer name, devices by device name, findings by code and summary.  Times (fields the
schema marks volatile) never count as differences.

Headless: no rich/textual imports, so the diff can run anywhere the reports can be read.
"""

from __future__ import annotations

import json
import posixpath
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import field
from typing import Any

from vkdoctor.record import frozen
from vkdoctor.render.safe_text import clean_line
from vkdoctor.report.model import Report
from vkdoctor.report.schema import without_volatile

_SEVERITY_RANK = {"fail": 2, "warn": 1, "info": 0}
_LOADER_FACTS = (
    "soname",
    "path",
    "real_path",
    "version",
    "secure_execution",
    "settings_files",
    "copies",
    "mapped_loaders",
    "instance_extensions",
    "available_layers",
    "dlerror",
)


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


@frozen
class Change:
    """One field that differs.  For lists, ``removed``/``added`` hold the elements that differ."""

    path: str
    a: Any
    b: Any
    removed: tuple[Any, ...] = ()
    added: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path, "a": self.a, "b": self.b}
        if self.removed or self.added:
            data.update(removed=list(self.removed), added=list(self.added))
        return data


@frozen
class ItemDiff:
    """A record (driver, layer, finding, ...) present in one report only, or changed."""

    key: str
    status: str  # added | removed | changed
    changes: tuple[Change, ...] = ()
    item: Any = None  # the record itself when added/removed
    label: str = ""  # one line saying what the record is

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"key": self.key, "status": self.status}
        if self.changes:
            data["changes"] = [c.to_dict() for c in self.changes]
        if self.item is not None:
            data["item"] = self.item
        if self.label:
            data["label"] = self.label
        return data


@frozen
class Section:
    name: str
    title: str
    items: tuple[ItemDiff, ...]

    def to_dict(self) -> list[dict[str, Any]]:
        return [i.to_dict() for i in self.items]


@frozen
class Side:
    """Which report is which, for the header."""

    label: str
    tool_version: str
    created: str
    status: str
    redacted: bool

    @classmethod
    def of(cls, label: str, data: Mapping[str, Any]) -> Side:
        environment = data.get("environment") or {}
        return cls(
            label=label,
            tool_version=str((data.get("tool") or {}).get("version", "")),
            created=str(data.get("created", "")),
            status=str((data.get("summary") or {}).get("status", "")),
            redacted=bool((environment.get("redaction") or {}).get("applied")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "tool_version": self.tool_version,
            "created": self.created,
            "status": self.status,
            "redacted": self.redacted,
        }


@frozen
class ReportDiff:
    a: Side
    b: Side
    sections: tuple[Section, ...] = field(default_factory=tuple)

    @property
    def identical(self) -> bool:
        return not any(s.items for s in self.sections)

    def section(self, name: str) -> Section:
        return next(s for s in self.sections if s.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
            "identical": self.identical,
            "sections": {s.name: s.to_dict() for s in self.sections},
        }


# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested objects become dotted paths; lists and scalars are leaves."""
    if isinstance(value, Mapping) and value:
        flat: dict[str, Any] = {}
        for key in sorted(value, key=str):
            flat.update(_flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def _compare_values(path: str, a: Any, b: Any) -> Change | None:
    if _canon(a) == _canon(b):
        return None
    if isinstance(a, list) and isinstance(b, list):
        count_a = Counter(_canon(x) for x in a)
        count_b = Counter(_canon(x) for x in b)
        removed = tuple(json.loads(x) for x in sorted((count_a - count_b).elements()))
        added = tuple(json.loads(x) for x in sorted((count_b - count_a).elements()))
        if not removed and not added:
            # Same elements, other order: still a difference (search order matters).
            return Change(path, a, b)
        return Change(path, a, b, removed, added)
    return Change(path, a, b)


def compare_records(a: Any, b: Any, skip: Iterable[str] = ()) -> tuple[Change, ...]:
    skipped = tuple(skip)
    flat_a, flat_b = _flatten(a), _flatten(b)
    changes = []
    for path in sorted(set(flat_a) | set(flat_b)):
        if any(path == s or path.startswith(s + ".") for s in skipped):
            continue
        change = _compare_values(path, flat_a.get(path), flat_b.get(path))
        if change is not None:
            changes.append(change)
    return tuple(changes)


def _keyed(records: Sequence[Any], key_of: Callable[[Mapping[str, Any]], str]) -> dict[str, Any]:
    """Records by key; repeated keys get #2, #3 so nothing is lost."""
    keyed: dict[str, Any] = {}
    for record in records:
        if not isinstance(record, Mapping):
            continue
        base = key_of(record)
        key, n = base, 1
        while key in keyed:
            n += 1
            key = f"{base} #{n}"
        keyed[key] = record
    return keyed


def _match(
    records_a: Sequence[Any],
    records_b: Sequence[Any],
    key_of: Callable[[Mapping[str, Any]], str],
    label_of: Callable[[Mapping[str, Any]], str],
    skip: Iterable[str] = (),
) -> tuple[ItemDiff, ...]:
    keyed_a, keyed_b = _keyed(records_a, key_of), _keyed(records_b, key_of)
    items: list[ItemDiff] = []
    for key in sorted(set(keyed_a) | set(keyed_b)):
        if key not in keyed_b:
            items.append(ItemDiff(key, "removed", item=keyed_a[key], label=label_of(keyed_a[key])))
        elif key not in keyed_a:
            items.append(ItemDiff(key, "added", item=keyed_b[key], label=label_of(keyed_b[key])))
        else:
            changes = compare_records(keyed_a[key], keyed_b[key], skip)
            if changes:
                items.append(ItemDiff(key, "changed", changes, label=label_of(keyed_b[key])))
    return tuple(items)


def _manifest_key(records: Sequence[Any]) -> Callable[[Mapping[str, Any]], str]:
    names = Counter(
        posixpath.basename(str(r.get("manifest", ""))) for r in records if isinstance(r, Mapping)
    )

    def key(record: Mapping[str, Any]) -> str:
        path = str(record.get("manifest", ""))
        base = posixpath.basename(path)
        return base if names[base] <= 1 else path

    return key


def _driver_label(record: Mapping[str, Any]) -> str:
    parts = [str(record.get("manifest", "?"))]
    # The key is the file name; the label says where it lives.
    if record.get("library_path"):
        parts.append(f"library {record['library_path']}")
    if record.get("api_version"):
        parts.append(f"API {record['api_version']}")
    if record.get("state"):
        parts.append(str(record["state"]))
    return ", ".join(parts)


def _layer_label(record: Mapping[str, Any]) -> str:
    parts = [str(record.get("name") or "?"), str(record.get("manifest", "?"))]
    if record.get("state"):
        parts.append(str(record["state"]))
    if "active" in record:
        parts.append("active" if record["active"] else "inactive")
    return ", ".join(parts)


def _device_name(record: Mapping[str, Any]) -> str:
    for key in ("name", "device_name", "deviceName"):
        if record.get(key):
            return str(record[key])
    properties = record.get("properties")
    if isinstance(properties, Mapping) and properties.get("deviceName"):
        return str(properties["deviceName"])
    return "device"


def _probe(data: Mapping[str, Any], probe_id: str) -> Mapping[str, Any]:
    for probe in data.get("probes") or ():
        if isinstance(probe, Mapping) and probe.get("id") == probe_id:
            return probe
    return {}


def _summary_items(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[ItemDiff, ...]:
    items = []
    status_a = (a.get("summary") or {}).get("status")
    status_b = (b.get("summary") or {}).get("status")
    if status_a != status_b:
        items.append(
            ItemDiff(
                "status", "changed", (Change("status", status_a, status_b),), label="overall status"
            )
        )
    probes_a = {p["id"]: p for p in a.get("probes") or () if isinstance(p, Mapping) and "id" in p}
    probes_b = {p["id"]: p for p in b.get("probes") or () if isinstance(p, Mapping) and "id" in p}
    order = list(probes_a) + [p for p in probes_b if p not in probes_a]
    for probe_id in order:
        pa, pb = probes_a.get(probe_id), probes_b.get(probe_id)
        if pa is None or pb is None:
            present = pb if pa is None else pa
            items.append(
                ItemDiff(
                    f"probe {probe_id}",
                    "added" if pa is None else "removed",
                    item={"status": present.get("status")},
                    label=f"probe {probe_id}: {present.get('status')}",
                )
            )
            continue
        changes = tuple(
            c
            for c in (_compare_values(k, pa.get(k), pb.get(k)) for k in ("status", "blocked_by"))
            if c is not None
        )
        if changes:
            items.append(
                ItemDiff(f"probe {probe_id}", "changed", changes, label=f"probe {probe_id}")
            )
    return tuple(items)


def _loader_items(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[ItemDiff, ...]:
    facts_a = _probe(a, "loader-discovery").get("facts") or {}
    facts_b = _probe(b, "loader-discovery").get("facts") or {}
    wanted_a = {k: facts_a.get(k) for k in _LOADER_FACTS if k in facts_a}
    wanted_b = {k: facts_b.get(k) for k in _LOADER_FACTS if k in facts_b}
    changes = compare_records(wanted_a, wanted_b)
    return (ItemDiff("loader", "changed", changes, label="libvulkan"),) if changes else ()


def _variable_items(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[ItemDiff, ...]:
    vars_a = (_probe(a, "loader-discovery").get("facts") or {}).get("variables") or {}
    vars_b = (_probe(b, "loader-discovery").get("facts") or {}).get("variables") or {}
    items = []
    for name in sorted(set(vars_a) | set(vars_b)):
        if name not in vars_b:
            items.append(
                ItemDiff(name, "removed", item=vars_a[name], label=f"{name}={vars_a[name]}")
            )
        elif name not in vars_a:
            items.append(ItemDiff(name, "added", item=vars_b[name], label=f"{name}={vars_b[name]}"))
        elif vars_a[name] != vars_b[name]:
            items.append(
                ItemDiff(name, "changed", (Change(name, vars_a[name], vars_b[name]),), label=name)
            )
    return tuple(items)


def _findings(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for probe in data.get("probes") or ():
        if not isinstance(probe, Mapping):
            continue
        for finding in probe.get("findings") or ():
            if isinstance(finding, Mapping):
                rows.append({**finding, "probe": probe.get("id")})
    return rows


def _finding_label(finding: Mapping[str, Any]) -> str:
    return (
        f"[{str(finding.get('severity', '?')).upper()}] {finding.get('code')} "
        f"({finding.get('probe')}): {finding.get('summary', '')}"
    )


def _finding_items(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[ItemDiff, ...]:
    def key(finding: Mapping[str, Any]) -> str:
        return f"{finding.get('code')}: {finding.get('summary', '')}"

    items = _match(_findings(a), _findings(b), key, _finding_label)
    # A finding whose summary changed shows as one gone and one new; severity comes first.
    appeared_or_gone = [i for i in items if i.status != "changed"]
    changed = [i for i in items if i.status == "changed"]
    ranked = sorted(
        appeared_or_gone,
        key=lambda i: (-_SEVERITY_RANK.get(str((i.item or {}).get("severity")), 0), i.key),
    )
    return tuple(ranked + changed)


def _log_items(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[ItemDiff, ...]:
    def lines(data: Mapping[str, Any]) -> set[str]:
        return {
            f"{e.get('level', '').upper()}: {e.get('message', '')}"
            for e in data.get("loader_log") or ()
            if isinstance(e, Mapping)
            and e.get("level") in ("error", "warn")
            and e.get("shown", True)
        }

    la, lb = lines(a), lines(b)
    return tuple(
        [ItemDiff(line, "removed", label=line) for line in sorted(la - lb)]
        + [ItemDiff(line, "added", label=line) for line in sorted(lb - la)]
    )


def _environment_items(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[ItemDiff, ...]:
    changes = compare_records(
        a.get("environment") or {}, b.get("environment") or {}, skip=("redaction",)
    )
    return tuple(ItemDiff(c.path, "changed", (c,), label=c.path) for c in changes)


def _kernel_rows(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One comparable row per device and kernel, from the report's kernel-run records."""
    from vkdoctor.kernels.run import KernelRun

    run = KernelRun.from_report(Report.from_dict(data))
    rows: list[dict[str, Any]] = []
    for device in run.runs if run else ():
        for row in device.rows:
            rows.append(
                {
                    "key": f"{device.name}: {row.kernel}",
                    "status": row.status,
                    "figure": f"{row.figure.value:.4g} {row.figure.unit}" if row.figure else None,
                    "of_peak": round(row.figure.fraction, 3)
                    if row.figure and row.figure.fraction is not None
                    else None,
                }
            )
    return rows


def _kernel_items(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[ItemDiff, ...]:
    def key(row: Mapping[str, Any]) -> str:
        return str(row["key"])

    return _match(_kernel_rows(a), _kernel_rows(b), key, key, skip=("key",))


def diff_reports(
    a: Mapping[str, Any], b: Mapping[str, Any], label_a: str = "A", label_b: str = "B"
) -> ReportDiff:
    """Compare two schema-valid report dicts; A is usually the working machine.  Both are read
    into the records first, so reports of different schema versions compare field by field."""
    side_a, side_b = Side.of(label_a, a), Side.of(label_b, b)
    a, b = Report.from_dict(a).to_dict(), Report.from_dict(b).to_dict()
    a, b = without_volatile(a), without_volatile(b)
    drivers_a, drivers_b = list(a.get("drivers") or ()), list(b.get("drivers") or ())
    layers_a, layers_b = list(a.get("layers") or ()), list(b.get("layers") or ())
    driver_key_a, driver_key_b = _manifest_key(drivers_a), _manifest_key(drivers_b)

    def driver_key(record: Mapping[str, Any]) -> str:
        # A name unique on both sides matches across directories; otherwise the full path.
        ka, kb = driver_key_a(record), driver_key_b(record)
        return ka if ka == kb else str(record.get("manifest", ""))

    def layer_key(record: Mapping[str, Any]) -> str:
        return str(record.get("name") or posixpath.basename(str(record.get("manifest", ""))))

    sections = (
        Section("summary", "Summary", _summary_items(a, b)),
        Section("loader", "Loader", _loader_items(a, b)),
        Section("drivers", "Drivers", _match(drivers_a, drivers_b, driver_key, _driver_label)),
        Section("layers", "Layers", _match(layers_a, layers_b, layer_key, _layer_label)),
        Section(
            "devices",
            "Devices",
            _match(
                list(a.get("devices") or ()),
                list(b.get("devices") or ()),
                _device_name,
                _device_name,
            ),
        ),
        Section("variables", "Environment variables", _variable_items(a, b)),
        Section("environment", "Environment", _environment_items(a, b)),
        Section("findings", "Findings", _finding_items(a, b)),
        Section("loader_log", "Loader errors and warnings", _log_items(a, b)),
        Section("kernels", "Compute kernels", _kernel_items(a, b)),
    )
    return ReportDiff(side_a, side_b, sections)


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------

_MARK = {"added": "+", "removed": "-", "changed": "~"}
_MAX_VALUE = 160


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else _canon(value)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 3] + "..."


def _change_line(change: Change) -> str:
    if change.removed or change.added:
        parts = [f"-{_value(x)}" for x in change.removed] + [f"+{_value(x)}" for x in change.added]
        return f"{change.path}: {' '.join(parts)}"
    return f"{change.path}: {_value(change.a)} → {_value(change.b)}"


def render_lines(diff: ReportDiff) -> list[tuple[str, str]]:
    """(kind, text) lines: kind is header, section, added, removed, changed or detail, so a
    console can colour them and tests can read them.  Every line is cleaned of control
    characters here, the diff's one exit to a terminal."""
    return [(kind, clean_line(text)) for kind, text in _lines(diff)]


def _lines(diff: ReportDiff) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    for mark, side in (("A", diff.a), ("B", diff.b)):
        extra = ", redacted" if side.redacted else ""
        lines.append(
            (
                "header",
                f"{mark}: {side.label} (vkdoctor {side.tool_version}, "
                f"{side.created or 'no time'}, {side.status}{extra})",
            )
        )
    if diff.identical:
        lines.append(("header", "No differences (times aside)."))
        return lines
    for section in diff.sections:
        if not section.items:
            continue
        lines.append(("section", ""))
        lines.append(("section", section.title))
        for item in section.items:
            mark = _MARK[item.status]
            if section.name in ("findings", "loader_log", "variables") and item.status != "changed":
                lines.append((item.status, f"  {mark} {item.label}"))
                continue
            if section.name in ("environment", "summary", "variables") and item.status == "changed":
                prefix = (
                    f"{item.key} " if section.name == "summary" and item.key != "status" else ""
                )
                for change in item.changes:
                    lines.append(("changed", f"  ~ {prefix}{_change_line(change)}"))
                continue
            title = item.key
            if item.status != "changed" and item.label and item.label != item.key:
                title = f"{item.key}: {item.label}"
            lines.append((item.status, f"  {mark} {title}"))
            for change in item.changes:
                lines.append(("detail", f"      {_change_line(change)}"))
    return lines


def render_text(diff: ReportDiff) -> str:
    return "\n".join(text for _, text in render_lines(diff)) + "\n"
