"""A report as Prometheus metrics, for node_exporter's textfile collector.

The text exposition format (version 0.0.4) is written here directly rather than with
``prometheus-client``: the format is a handful of rules (HELP/TYPE lines, label escaping, float
spelling), and the client's registry-of-collectors model would be a new runtime dependency for one
function.  Its ``write_to_textfile`` also renames over whatever the path is (a FIFO or
``/dev/stdout`` given as the path would be replaced); ``vkdoctor.report.io.write_text`` writes a
regular file atomically (temp file in the same directory, then rename: the collector never reads
half a file) and a FIFO or character device by opening it.

Cardinality is bounded: label values are finding codes, probe ids, statuses, severities, device
identity (one series per device), GPUs on the PCI bus (one series each: address, ids, the
device index) and kernel names; the only free text is the culprit (a
manifest's file name or a variable's name, ``state.culprit``) and a device's name and driver,
each cut short and with control characters made visible (``render.safe_text``).

``check`` files and ``kernels`` files use disjoint metric names, so both can sit in the same
textfile directory (node_exporter fails the whole scrape when two files hold the same series).

Headless: no rich/textual.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence

from vkdoctor.fleet.state import NodeState, assess
from vkdoctor.kernels.peaks import BANDWIDTH
from vkdoctor.kernels.run import KernelRun
from vkdoctor.record import frozen
from vkdoctor.render.safe_text import clean_line
from vkdoctor.report.io import write_text
from vkdoctor.report.model import Report, Severity, Status
from vkdoctor.system.gpumatch import pci_gpus

MAX_LABEL = 128  # a device name or culprit longer than this is cut (no unbounded label values)
GIGA = 1e9  # the suite reports GB/s and GFLOP/s; Prometheus wants base units


@frozen
class Sample:
    labels: tuple[tuple[str, str], ...]
    value: float


@frozen
class Family:
    name: str
    help: str
    samples: tuple[Sample, ...]
    type: str = "gauge"


def escape_label(value: str) -> str:
    """A label value as the format spells it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def label_text(text: str | None) -> str:
    """Machine-written text (a device name, a manifest name) fit for a label value."""
    return clean_line(text or "")[:MAX_LABEL]


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def render(families: Iterable[Family]) -> str:
    """The exposition text; empty families are left out, a repeated series is kept once."""
    lines: list[str] = []
    for family in families:
        # Two devices with one UUID would repeat a series, which fails the whole scrape.
        unique: dict[tuple[tuple[str, str], ...], Sample] = {}
        for sample in family.samples:
            unique.setdefault(sample.labels, sample)
        samples = list(unique.values())
        if not samples:
            continue
        lines.append(f"# HELP {family.name} {escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.type}")
        for sample in samples:
            labels = ",".join(f'{k}="{escape_label(v)}"' for k, v in sample.labels)
            lines.append(
                f"{family.name}{{{labels}}} {format_value(sample.value)}"
                if labels
                else f"{family.name} {format_value(sample.value)}"
            )
    return "\n".join(lines) + "\n" if lines else ""


def _one(value: float, **labels: str) -> tuple[Sample, ...]:
    return (Sample(tuple(labels.items()), value),)


def _dispatch_verified(report: Report) -> Sequence[Sample]:
    """1 for each device the smoke dispatch verified, 0 for the others; nothing when the
    dispatch probe was not part of the run.  The dispatch probe keeps its per-device rows in
    its facts (no typed record yet); the ``--require dispatch`` check reads the same rows."""
    dispatch = next((p for p in report.probes if p.id == "dispatch"), None)
    if dispatch is None:
        return ()
    rows = dispatch.facts.get("devices") or [] if dispatch.status is not Status.SKIPPED else []
    verified = {
        r["index"]
        for r in rows
        if isinstance(r, dict) and r.get("verified") is True and isinstance(r.get("index"), int)
    }
    return tuple(
        Sample((("device_uuid", label_text(d.device_uuid)),), float(d.index in verified))
        for d in report.devices
    )


def _pci_gpu_devices(report: Report) -> tuple[Sample, ...]:
    """1 for each GPU on the PCI bus a Vulkan device drives (its index as a label), 0 with an
    empty index for one no device drives (``gpu-not-exposed``); nothing when the device probe
    did not run, since then nothing was matched."""
    device = next((p for p in report.probes if p.id == "device"), None)
    if device is None or device.status is Status.SKIPPED:
        return ()
    return tuple(
        Sample(
            (
                ("pci_address", label_text(gpu.slot)),
                ("ids", label_text(gpu.ids)),
                ("device_index", "" if gpu.device is None else str(gpu.device)),
            ),
            float(gpu.device is not None),
        )
        for gpu in pci_gpus(device.facts)
    )


def kernel_families(report: Report) -> list[Family]:
    """Each kernel's figure in base units and as a fraction of its device's peak."""
    run = KernelRun.from_report(report)
    bandwidth: list[Sample] = []
    flops: list[Sample] = []
    fraction: list[Sample] = []
    for device_run in run.runs if run is not None else ():
        uuid = label_text(device_run.device.device_uuid)
        for row in device_run.rows:
            figure = row.figure
            if figure is None:  # failed, skipped or not applicable: no figure to show
                continue
            labels = (("kernel", label_text(row.kernel)), ("device_uuid", uuid))
            target = bandwidth if figure.metric == BANDWIDTH else flops
            target.append(Sample(labels, figure.value * GIGA))
            if figure.fraction is not None:
                fraction.append(Sample(labels, figure.fraction))
    return [
        Family(
            "vkdoctor_kernel_bandwidth_bytes_per_second",
            "Memory bandwidth a verified kernel reached, in bytes per second.",
            tuple(bandwidth),
        ),
        Family(
            "vkdoctor_kernel_flops",
            "Floating-point operations per second a verified kernel reached (an FMA counts 2).",
            tuple(flops),
        ),
        Family(
            "vkdoctor_kernel_fraction_of_peak",
            "A kernel's figure as a fraction of its device's peak (the datasheet's, else the "
            "best figure of the same run).",
            tuple(fraction),
        ),
    ]


def _severity_counts(report: Report) -> tuple[Sample, ...]:
    counts = dict.fromkeys(Severity, 0)
    for _, finding in report.findings():
        counts[finding.severity] += 1
    return tuple(Sample((("severity", s.value),), float(n)) for s, n in counts.items())


def check_families(
    report: Report, state: NodeState, finished: float, duration_s: float | None
) -> list[Family]:
    probes = tuple(
        Sample((("probe", label_text(p.id)), ("status", status.value)), float(p.status is status))
        for p in report.probes
        for status in Status
    )
    devices = tuple(
        Sample(
            (
                ("index", str(d.index)),
                ("name", label_text(d.name)),
                ("device_uuid", label_text(d.device_uuid)),
                ("driver", label_text(d.driver)),
                ("api", label_text(d.api_version)),
                ("pci_address", label_text(d.pci_address)),
            ),
            1.0,
        )
        for d in report.devices
    )
    families = [
        Family(
            "vkdoctor_up",
            "1 when vkdoctor's last check found Vulkan healthy (no failure), 0 otherwise.",
            _one(float(state.up)),
        ),
        Family(
            "vkdoctor_verdict_info",
            "The root cause of the last check: its finding code (ok when none) and culprit.",
            _one(1.0, code=label_text(state.code), culprit=label_text(state.culprit)),
        ),
        Family(
            "vkdoctor_findings",
            "Findings of the last check by severity.",
            _severity_counts(report),
        ),
        Family(
            "vkdoctor_probe_status",
            "1 for each probe's status in the last check, 0 for the statuses it does not have.",
            probes,
        ),
        Family("vkdoctor_device_info", "A Vulkan physical device the loader exposes.", devices),
        Family(
            "vkdoctor_pci_gpu_vulkan_device",
            "1 for each GPU on the PCI bus that a Vulkan device drives (device_index), 0 for "
            "one the loader does not expose.",
            _pci_gpu_devices(report),
        ),
        Family(
            "vkdoctor_dispatch_verified",
            "1 when the smoke compute dispatch ran and was verified on the device, 0 otherwise.",
            tuple(_dispatch_verified(report)),
        ),
        *kernel_families(report),
        Family(
            "vkdoctor_last_run_timestamp_seconds",
            "When the last check finished, in seconds since the Unix epoch.",
            _one(finished),
        ),
    ]
    if duration_s is not None:
        families.append(
            Family(
                "vkdoctor_check_duration_seconds",
                "How long the last check took, in seconds.",
                _one(duration_s),
            )
        )
    return families


def kernels_only_families(
    report: Report, finished: float, duration_s: float | None
) -> list[Family]:
    """What ``vkdoctor kernels --prometheus`` writes: the figures, and its own run's time and
    findings under names of their own (a check file may sit next to it)."""
    families: list[Family] = [
        *kernel_families(report),
        Family(
            "vkdoctor_kernels_findings",
            "Findings of the last kernel-suite run by severity.",
            _severity_counts(report),
        ),
        Family(
            "vkdoctor_kernels_last_run_timestamp_seconds",
            "When the last kernel-suite run finished, in seconds since the Unix epoch.",
            _one(finished),
        ),
    ]
    if duration_s is not None:
        families.append(
            Family(
                "vkdoctor_kernels_duration_seconds",
                "How long the last kernel-suite run took, in seconds.",
                _one(duration_s),
            )
        )
    return families


def check_metrics(
    report: Report,
    duration_s: float | None = None,
    finished: float | None = None,
    internal_error: bool = False,
) -> str:
    """The metrics of a check report, also a partial one (interrupted, or cut short by an
    internal error: then vkdoctor_up is 0 and the code ``internal-error``)."""
    state = assess(report, internal_error=internal_error)
    when = time.time() if finished is None else finished
    return render(check_families(report, state, when, duration_s))


def kernels_metrics(
    report: Report, duration_s: float | None = None, finished: float | None = None
) -> str:
    when = time.time() if finished is None else finished
    return render(kernels_only_families(report, when, duration_s))


def write_metrics(text: str, destination: str) -> None:
    """Atomically for a regular file, by opening for a FIFO or device (``report.io``)."""
    write_text(text, destination)
