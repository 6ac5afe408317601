"""Markdown for GitHub and GitLab issues: short on top, everything else folded away.

Layout: a title with the overall status, one line of context, a table of probes, the failing and
warning findings with their remedies and commands, then ``<details>`` sections (informational
findings, drivers, layers, devices, environment, loader log excerpt).  The text must survive being
pasted: every piece of report text is escaped (a redaction placeholder such as ``<user>`` would
otherwise vanish as an HTML tag), table cells never contain a raw ``|`` or newline, and code fences
are longer than any backtick run inside them.  A typical export is a few kilobytes, far below
GitHub's 65,536-character limit for an issue body.

Pure string building: no rich, so the same function serves ``check --markdown`` and
``report markdown``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from vkdoctor.diagnosis.order import ranked
from vkdoctor.render.safe_text import clean, clean_report
from vkdoctor.render.styles import SEVERITY_LOOK, STATUS_LOOK, headline
from vkdoctor.report.model import (
    Finding,
    ProbeResult,
    Report,
    Severity,
    Status,
)
from vkdoctor.report.records import DriverRecord, Exclusion, LayerRecord

if TYPE_CHECKING:
    from vkdoctor.kernels.run import KernelRun

STATUS_ICON = {status: look.emoji for status, look in STATUS_LOOK.items()}
SEVERITY_ICON = {severity: look.emoji for severity, look in SEVERITY_LOOK.items()}
# Enough of the loader log to show the story, little enough to paste.
MAX_LOG_LINES = 40
MAX_DETAIL_CHARS = 600

# "|" is left to table cells (``_cell``), where it is the only character that matters.  An
# underscore inside a word never starts emphasis in GFM, so VK_LAYER_MESA_device_select stays
# readable in the raw text.
_ESCAPE = re.compile(r"([\\`*\[\]#~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")


def escape(text: str) -> str:
    """Report text as inert Markdown: no HTML, no emphasis, no links, no control characters."""
    text = clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _ESCAPE.sub(r"\\\1", text)


def code(text: str) -> str:
    """An inline code span that holds any text (backticks included)."""
    text = " ".join(str(text).split())
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def fenced(text: str, language: str = "") -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text.rstrip()}\n{fence}"


def _cell(text: str) -> str:
    # GFM splits cells on "|" even inside code spans; only a backslash-escaped pipe survives.
    return " ".join(text.split()).replace("|", "\\|")


def table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str = "") -> list[str]:
    lines = ["| " + " | ".join(header) + " |"]
    lines.append(
        "| "
        + " | ".join(
            ("---:" if a == "r" else "---")
            for a in (align or "l" * len(header)).ljust(len(header), "l")
        )
        + " |"
    )
    for row in rows:
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return lines


def details(summary: str, body: Sequence[str]) -> list[str]:
    # The blank lines after <summary> and before </details> make GitHub render the Markdown inside.
    return ["<details>", f"<summary>{summary}</summary>", "", *body, "", "</details>", ""]


def _counts(findings: Iterable[Finding]) -> str:
    tally = {s: 0 for s in Severity}
    for finding in findings:
        tally[finding.severity] += 1
    return ", ".join(f"{n} {s.value}" for s, n in reversed(tally.items()) if n)


def _probe_rows(report: Report) -> list[list[str]]:
    rows = []
    for probe in report.probes:
        status = f"{STATUS_ICON[probe.status]} {probe.status.value}"
        if probe.status is Status.SKIPPED:
            note = f"blocked by {code(probe.blocked_by)}" if probe.blocked_by else "not run"
            rows.append([code(probe.id), status, "", note])
        else:
            rows.append(
                [code(probe.id), status, f"{probe.duration_s:.2f} s", _counts(probe.findings)]
            )
    return rows


def _finding_lines(probe: ProbeResult, finding: Finding) -> list[str]:
    lines = [
        f"#### {SEVERITY_ICON[finding.severity]} {code(finding.code)} · {escape(probe.id)}",
        "",
        escape(finding.summary),
        "",
    ]
    if finding.detail:
        detail = finding.detail
        if len(detail) > MAX_DETAIL_CHARS:
            detail = detail[: MAX_DETAIL_CHARS - 1] + "…"
        lines += [f"> {escape(line)}" if line else ">" for line in detail.splitlines()] + [""]
    if finding.remedy and finding.remedy.text:
        lines += [f"**Fix:** {escape(finding.remedy.text)}", ""]
    if finding.remedy and finding.remedy.commands:
        lines += [fenced("\n".join(finding.remedy.commands), "sh"), ""]
    return lines


def _context_line(report: Report, redacted: bool) -> str:
    environment = report.environment
    os_name = (environment.get("os") or {}).get("pretty_name") or (environment.get("os") or {}).get(
        "name"
    )
    kernel = (environment.get("kernel") or {}).get("release")
    loader = _loader_facts(report)
    parts = [f"vkdoctor {report.tool_version}"]
    if report.created:
        parts.append(report.created)
    if os_name:
        parts.append(str(os_name))
    if kernel:
        parts.append(f"kernel {kernel}")
    if environment.get("architecture"):
        parts.append(str(environment["architecture"]))
    if loader.get("version"):
        parts.append(f"loader {loader['version']}")
    kinds = (environment.get("sandbox") or {}).get("kinds") or []
    if kinds:
        parts.append("in " + ", ".join(map(str, kinds)))
    if redacted:
        parts.append("redacted")
    return escape(" · ".join(parts))


def _loader_facts(report: Report) -> Mapping[str, Any]:
    probe = next((p for p in report.probes if p.id == "loader-discovery"), None)
    return probe.facts if probe else {}


def _text(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _state(state: str, issues: tuple[str, ...], excluded: tuple[Exclusion, ...]) -> str:
    text = escape(state) + (f" ({', '.join(code(i) for i in issues)})" if issues else "")
    if excluded:
        text += "; " + escape("; ".join(e.detail for e in excluded))
    return text


def _arch(record: DriverRecord | LayerRecord) -> str:
    bits = f"{record.elf_class}-bit" if record.elf_class else ""
    return " ".join(x for x in (record.machine or "", bits) if x)


def _driver_section(report: Report) -> list[str]:
    if not report.drivers:
        return details("Drivers (none found)", ["No driver manifest was found."])
    rows = [
        [
            code(d.manifest),
            code(d.library_path) if d.library_path else "",
            escape(_text(d.api_version)),
            escape(_arch(d)),
            escape(_text(d.interface_version)),
            _state(d.state, d.issues, d.excluded_by),
        ]
        for d in report.drivers
    ]
    body = table(["Manifest", "Library", "API", "Arch", "Interface", "State"], rows)
    return details(f"Drivers ({len(report.drivers)})", body)


def _layer_section(report: Report) -> list[str]:
    if not report.layers:
        return details("Layers (none found)", ["No layer manifest was found."])
    rows = [
        [
            code(layer.name or "?"),
            "implicit" if layer.implicit else "explicit",
            "yes" if layer.active else "no",
            code(layer.manifest),
            code(layer.library_path) if layer.library_path else "",
            _state(layer.state, layer.issues, ()),
        ]
        for layer in report.layers
    ]
    body = table(["Layer", "Kind", "Active", "Manifest", "Library", "State"], rows)
    return details(f"Layers ({len(report.layers)})", body)


def _device_section(report: Report) -> list[str]:
    if not report.devices:
        ran = any(
            p.id in ("instance", "device") and p.status is not Status.SKIPPED for p in report.probes
        )
        note = (
            "No physical device was found."
            if ran
            else ("No devices recorded: the instance and device probes did not run.")
        )
        return details("Devices (none)", [note])
    rows = [
        [
            escape(device.name or "?"),
            escape(device.type),
            escape(device.api_version),
            escape(device.driver if device.driver_name else ""),
            code(device.driver_manifest) if device.driver_manifest else "",
        ]
        for device in report.devices
    ]
    body = table(["Device", "Type", "API", "Driver", "Manifest"], rows)
    return details(f"Devices ({len(report.devices)})", body)


def _environment_section(report: Report, redacted: bool) -> list[str]:
    env = report.environment
    lines: list[str] = []

    def item(label: str, value: Any) -> None:
        if value not in (None, "", [], {}):
            lines.append(f"- **{label}:** {value}")

    os_info = env.get("os") or {}
    item("OS", escape(_text(os_info.get("pretty_name") or os_info.get("name"))))
    item("Kernel", escape(_text((env.get("kernel") or {}).get("release"))))
    python = env.get("python") or {}
    arch = _text(env.get("architecture"))
    if python.get("version"):
        arch += f", Python {python['version']} ({python.get('pointer_bits', '?')}-bit)"
    item("Architecture", escape(arch))
    identity = env.get("identity") or {}
    if identity:
        groups = ",".join(str(g) for g in identity.get("groups") or ()) or "none"
        who = f"uid {identity.get('uid')}, euid {identity.get('euid')}, groups {groups}"
        if identity.get("secure"):
            who += ", elevated (AT_SECURE)"
        item("Identity", escape(who))
    sandbox = env.get("sandbox") or {}
    item("Sandbox", escape(", ".join(map(str, sandbox.get("kinds") or ())) or "none detected"))
    gpus = env.get("gpus") or []
    item("GPUs on the PCI bus", escape("; ".join(_gpu(g) for g in gpus) or "none"))
    nvidia = env.get("nvidia") or {}
    if nvidia.get("kernel_module_version"):
        flavour = " (open)" if nvidia.get("kernel_module_open") else ""
        item("NVIDIA kernel module", escape(f"{nvidia['kernel_module_version']}{flavour}"))
    nodes = env.get("device_nodes") or []
    item(
        "Device nodes",
        escape(", ".join(str(n.get("path")) for n in nodes if isinstance(n, Mapping))),
    )
    loader = _loader_facts(report)
    if loader.get("real_path") or loader.get("version"):
        item(
            "Loader",
            f"{code(_text(loader.get('real_path') or loader.get('path')))} "
            f"{escape(_text(loader.get('version')))}",
        )
    copies = [c.get("path") for c in loader.get("copies") or () if isinstance(c, Mapping)]
    if len(copies) > 1:
        item("libvulkan copies", ", ".join(code(_text(c)) for c in copies))
    variables = loader.get("variables") or {}
    body = list(lines)
    if variables:
        body += ["", "Variables (allow-listed; secrets are never recorded):", ""]
        body.append(fenced("\n".join(f"{k}={v}" for k, v in sorted(variables.items())), "sh"))
    else:
        body += ["", "No Vulkan-related variable is set."]
    if env.get("collection_errors"):
        body += ["", "Collection errors:", ""]
        body += [f"- {escape(str(e))}" for e in env["collection_errors"]]
    if redacted:
        body += [
            "",
            "Home directory, user, host name and machine ids are replaced by "
            "placeholders (`~`, `<user>`, `<host>`, `<machine-id>`).",
        ]
    return details("Environment", body)


def _gpu(gpu: Mapping[str, Any]) -> str:
    ids = f"{gpu.get('vendor_id') or '????'}:{gpu.get('device_id') or '????'}"
    vendor = gpu.get("vendor") or "unknown vendor"
    driver = gpu.get("driver") or "no driver"
    return f"{vendor} {ids} at {gpu.get('slot', '?')} ({driver})"


def _log_section(report: Report) -> list[str]:
    entries = report.loader_log
    if not entries:
        return details("Loader log (empty)", ["The loader printed nothing."])
    important = [e for e in entries if e.level in ("error", "warn")]
    shown = important[:MAX_LOG_LINES]
    if shown:
        text = "\n".join(
            f"{e.level.upper():<5} {e.message}"
            + (f"  [{e.classification}]" if e.classification else "")
            for e in shown
        )
        note = f"{len(important)} of {len(entries)} lines are errors or warnings"
        if len(important) > len(shown):
            note += f", first {len(shown)} shown"
        return details(f"Loader log excerpt ({note})", [fenced(text, "text")])
    return details(
        f"Loader log excerpt (no errors or warnings in {len(entries)} lines)",
        ["The full log is in the JSON report (`loader_log`)."],
    )


def _kernels_section(report: Report) -> list[str]:
    """Compute-kernel runs (``vkdoctor kernels``, the TUI), when the report holds any."""
    from vkdoctor.kernels.run import KernelRun

    run = KernelRun.from_report(report)
    if run is None or not run.runs:
        return []
    return [kernels_markdown(run), ""]


def kernels_markdown(run: KernelRun) -> str:
    """The kernel runs as a Markdown section: what a benchmark note needs."""
    from vkdoctor.kernels import fmt as kernelfmt

    lines = [
        "### Compute kernels",
        "",
        f"seed {run.seed} · loader {escape(str(run.loader_version or 'unknown'))} · "
        "vkdoctor kernel suite",
        "",
    ]
    for device in run.runs:
        # Device and kernel names come from the driver or the report file: escaped like all.
        title = escape(kernelfmt.device_line(device.device))
        lines.append(f"**Device {escape(str(device.index))}: {title}**")
        lines.append("")
        reps = kernelfmt.repetitions(device.sizes, kernelfmt.timing_source(device.rows))
        lines.append(escape(f"sizes: {device.preset}" + (f", {reps}" if reps else "")))
        lines.append(escape(kernelfmt.peak_text(device.peak)))
        lines.append("")
        lines.append("| Kernel | Size | Status | Median | Spread | Figure | Of peak |")
        lines.append("|---|--:|---|--:|--:|--:|--:|")
        for row in device.rows:
            cells = (
                str(row.kernel),
                kernelfmt.problem_size(row.result),
                str(row.status),
                kernelfmt.time_ns(row.timing.get("median_ns")),
                kernelfmt.spread(row.timing),
                kernelfmt.figure_text(row.figure),
                kernelfmt.of_peak(row.figure),
            )
            lines.append("| " + " | ".join(_cell(escape(c)) for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def render_markdown(report: Report) -> str:
    """The report as Markdown for an issue; render a redacted report for a public tracker."""
    report = clean_report(report)
    redacted = bool((report.environment.get("redaction") or {}).get("applied"))
    status = report.summary()["status"]
    stopped = report.stopped_early()
    emoji = STATUS_LOOK[Status.WARN if stopped and status == "ok" else Status(status)].emoji
    words = headline(status, stopped)
    lines = [f"## vkdoctor: {emoji} {words}", "", _context_line(report, redacted), ""]
    lines += table(["Probe", "Status", "Time", "Findings"], _probe_rows(report), "llrl")
    lines.append("")
    if report.verdict:
        lines[2:2] = [f"**{escape(report.verdict)}**", ""]
    problems = ranked(report, include_info=False)
    shown = {s.finding.id for s in problems} | {f.id for s in problems for f in s.symptoms}
    info = [(p, f) for p, f in report.findings() if f.id not in shown or not f.id]
    info = [(p, f) for p, f in info if f.severity is Severity.INFO]
    if problems:
        lines += ["### Findings", ""]
        for item in problems:
            lines += _finding_lines(item.probe, item.finding)
            if item.symptoms:
                lines += ["Because of this:", ""]
                lines += [f"- {code(s.code)}: {escape(s.summary)}" for s in item.symptoms]
                lines.append("")
    else:
        lines += ["No failing or warning findings.", ""]
    if info:
        body = [f"- {code(f.code)} ({escape(p.id)}): {escape(f.summary)}" for p, f in info]
        lines += details(f"Informational findings ({len(info)})", body)
    ran = {p.id for p in report.probes}
    if "driver-enumeration" in ran:
        lines += _driver_section(report)
    if "layer-enumeration" in ran:
        lines += _layer_section(report)
    if ran & {"instance", "device"} or report.devices:
        lines += _device_section(report)
    lines += _environment_section(report, redacted)
    lines += _log_section(report)
    lines += _kernels_section(report)
    lines.append(
        f"<sub>vkdoctor {escape(report.tool_version)} · schema {report.read_from_schema} · "
        "`vkdoctor report show` renders the JSON report</sub>"
    )
    return "\n".join(lines) + "\n"
