"""Running the kernel suite from the parent: one child process, live events, a typed result.

``vkdoctor kernels`` and the TUI's kernel view both use ``KernelSession``: it starts the child
task ``vkdoctor.tasks.kernels:suite`` (kernel runs touch drivers, so never in this process),
turns the child's streamed messages into immutable events while it runs, and builds a
``KernelRun`` at the end.  A kernel that crashes or hangs its child becomes a finding on that
kernel and the suite resumes in a fresh child after it (after a hang, the hung device's
remaining kernels are skipped: it may not recover).  ``KernelRun.to_probe()`` embeds the whole
run in a report as the probe ``kernels``; ``merge_into_report`` adds it to an existing report.

Headless: no rich/textual.
"""

from __future__ import annotations

import os
import platform
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import field, replace
from datetime import datetime, timezone
from typing import Any

import vkdoctor
from vkdoctor.engine import child
from vkdoctor.kernels.peaks import Figure, Peak, figure, known_peak, measured_peak
from vkdoctor.kernels.siblings import Comparison
from vkdoctor.record import frozen, mutable
from vkdoctor.report import codec
from vkdoctor.report.codes import CodeInfo, code_table, make_finding
from vkdoctor.report.model import (
    Finding,
    ProbeResult,
    Report,
    Severity,
    Status,
    status_from_findings,
)
from vkdoctor.report.records import DeviceRecord
from vkdoctor.report.upgrade import upgrade_device

TASK = "vkdoctor.tasks.kernels:suite"
PROBE_ID = "kernels"
PROBE_TITLE = "Compute kernel suite"
SIZE_PRESETS = ("tiny", "small", "auto", "large")
_STDERR_TAIL = 4000

CODES = code_table(
    [
        CodeInfo(
            "kernels-no-vulkan",
            Severity.FAIL,
            "No Vulkan instance, so no kernel could run",
            "The kernel suite's process could not load libvulkan or vkCreateInstance failed.",
            causes=("no Vulkan loader installed", "no usable driver (Found no drivers!)"),
            remedy="Run `vkdoctor check`: it names the broken step and its fix.",
        ),
        CodeInfo(
            "kernels-no-device",
            Severity.FAIL,
            "Vulkan has no physical device to run kernels on",
            "vkCreateInstance succeeded but vkEnumeratePhysicalDevices returned no device.",
            causes=("drivers that load but expose no device", "a device filter (VK_LOADER_*)"),
            remedy="Run `vkdoctor check`: the instance and device probes say why.",
        ),
        CodeInfo(
            "kernel-device-unusable",
            Severity.FAIL,
            "No compute context on this device, so its kernels did not run",
            "Creating a logical device with a compute queue (and its command pool, fence and "
            "query pool) failed.",
            causes=("no compute queue", "out of device memory", "a driver bug"),
            remedy="Run `vkdoctor check device dispatch` for the failing call; update the driver.",
        ),
        CodeInfo(
            "kernel-crashed",
            Severity.FAIL,
            "A benchmark kernel crashed the process running it",
            "The child process running the kernel died from a signal while the shader was "
            "compiled, run or verified.  vkdoctor itself was not affected; the suite went on "
            "in a fresh process.",
            causes=("a shader-compiler or driver bug", "a GPU fault"),
            remedy="Update the driver; check the kernel log (`journalctl -k`, `dmesg`) for GPU "
            "faults; report it to the driver vendor with this report attached.",
        ),
        CodeInfo(
            "kernel-hung",
            Severity.FAIL,
            "A benchmark kernel hung the process running it",
            "The kernel did not finish within the time limit: the fence wait timed out "
            "(VK_TIMEOUT), or the driver did not return at all and the process was killed.  The "
            "device's remaining kernels were skipped.  (kernel-timeout, the fence-timeout case, "
            "is merged into this code.)",
            causes=("a hung GPU or driver", "a shader compiler stuck on a kernel"),
            remedy="Check `journalctl -k` / `dmesg` for GPU hang or reset messages and what else "
            "uses the GPU (`nvidia-smi`); update the driver; retry with `--size small`.",
        ),
        CodeInfo(
            "kernels-internal-error",
            Severity.FAIL,
            "vkdoctor's kernel suite failed (a bug in vkdoctor)",
            "The kernel suite's own code raised an exception; the traceback is in the evidence.",
            causes=("a bug in vkdoctor",),
            remedy="Please report it with the traceback from the finding's evidence.",
        ),
    ]
)


@frozen
class KernelRequest:
    devices: tuple[int, ...] | None = None  # None: every device
    kernels: tuple[str, ...] | None = None  # None: the whole suite
    size: str = "auto"  # tiny | small | auto | large
    seed: int | None = None  # None: a random seed, recorded in the run
    warmup: int | None = None  # override the preset's
    repetitions: int | None = None
    timeout_s: float = 120.0  # per kernel: the child is killed after this (a hang)
    fence_timeout_s: float = 30.0  # inside the child: vkWaitForFences gives up (kernel-timeout)

    def to_dict(self) -> dict[str, Any]:
        return {
            "devices": list(self.devices) if self.devices is not None else "all",
            "kernels": list(self.kernels) if self.kernels is not None else "all",
            "size": self.size,
            "seed": self.seed,
            "warmup": self.warmup,
            "repetitions": self.repetitions,
            "timeout_s": self.timeout_s,
            "fence_timeout_s": self.fence_timeout_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KernelRequest:
        devices = data.get("devices")
        kernels = data.get("kernels")
        return cls(
            devices=tuple(int(d) for d in devices) if isinstance(devices, list) else None,
            kernels=tuple(str(k) for k in kernels) if isinstance(kernels, list) else None,
            size=str(data.get("size", "auto")),
            seed=data.get("seed") if isinstance(data.get("seed"), int) else None,
            warmup=data.get("warmup") if isinstance(data.get("warmup"), int) else None,
            repetitions=data.get("repetitions")
            if isinstance(data.get("repetitions"), int)
            else None,
            timeout_s=float(data.get("timeout_s") or 120.0),
            fence_timeout_s=float(data.get("fence_timeout_s") or 30.0),
        )


# ---------------------------------------------------------------------------------------------
# Results


@frozen
class KernelRow:
    """One kernel on one device: the child's KernelResult dict, its figure and finding."""

    device: int
    result: Mapping[str, Any]
    figure: Figure | None = None
    finding: Finding | None = None
    seed: int | None = None

    @property
    def kernel(self) -> str:
        return str(self.result.get("kernel", ""))

    @property
    def title(self) -> str:
        return str(self.result.get("title", self.kernel))

    @property
    def status(self) -> str:
        return str(self.result.get("status", "failed"))

    @property
    def timing(self) -> Mapping[str, Any]:
        return self.result.get("timing") or {}

    def to_dict(self) -> dict[str, Any]:
        return {
            **dict(self.result),
            "seed": self.seed,
            "figure": self.figure.to_dict() if self.figure else None,
            "finding": self.finding.to_dict() if self.finding else None,
        }

    @classmethod
    def from_dict(cls, device: int, data: Mapping[str, Any]) -> KernelRow:
        result = {k: v for k, v in data.items() if k not in ("seed", "figure", "finding")}
        fig = data.get("figure")
        finding = data.get("finding")
        return cls(
            device=device,
            result=result,
            figure=Figure(
                str(fig["metric"]), float(fig["value"]), fig.get("peak"), fig.get("peak_source")
            )
            if isinstance(fig, Mapping) and fig.get("metric")
            else None,
            finding=Finding.from_dict(finding) if isinstance(finding, Mapping) else None,
            seed=data.get("seed") if isinstance(data.get("seed"), int) else None,
        )


@frozen
class DeviceRun:
    """The suite on one device."""

    index: int
    device: DeviceRecord  # a bare record (index and placeholder name) if never described
    preset: str = ""
    sizes: Mapping[str, Any] = field(default_factory=dict)
    kernels: tuple[str, ...] = ()  # planned, in order
    rows: tuple[KernelRow, ...] = ()
    peak: Peak | None = None
    wall_s: float = 0.0
    findings: tuple[Finding, ...] = ()  # device-level: no compute context, a crash outside kernels

    @property
    def name(self) -> str:
        return self.device.name

    @property
    def driver(self) -> str:
        return self.device.driver

    def all_findings(self) -> list[Finding]:
        return [*self.findings, *(r.finding for r in self.rows if r.finding is not None)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "device": codec.to_json(self.device),
            "preset": self.preset,
            "sizes": dict(self.sizes),
            "kernels": list(self.kernels),
            "wall_s": round(self.wall_s, 4),
            "peak": self.peak.to_dict() if self.peak else None,
            "results": [r.to_dict() for r in self.rows],
            "findings": [f.to_dict() for f in self.findings],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeviceRun:
        index = int(data.get("index", 0))
        peak = data.get("peak")
        return cls(
            index=index,
            device=device_record(index, data.get("device")),
            preset=str(data.get("preset", "")),
            sizes=dict(data.get("sizes") or {}),
            kernels=tuple(str(k) for k in data.get("kernels") or ()),
            rows=tuple(KernelRow.from_dict(index, r) for r in data.get("results") or ()),
            peak=Peak.from_dict(peak) if isinstance(peak, Mapping) else None,
            wall_s=float(data.get("wall_s") or 0.0),
            findings=tuple(Finding.from_dict(f) for f in data.get("findings") or ()),
        )


@frozen
class KernelRun:
    request: KernelRequest
    seed: int
    loader_version: str | None = None
    devices: tuple[DeviceRecord, ...] = ()  # every device the instance saw
    runs: tuple[DeviceRun, ...] = ()
    findings: tuple[Finding, ...] = ()  # run-level: no Vulkan, no device, internal errors
    missing_devices: tuple[int, ...] = ()  # requested indices that do not exist
    internal_errors: tuple[str, ...] = ()
    cancelled: bool = False
    wall_s: float = 0.0
    created: str = ""
    # Devices of one model compared kernel by kernel (kernels/siblings.py); the warnings they
    # give are in ``findings``.
    comparisons: tuple[Comparison, ...] = ()

    def all_findings(self) -> list[Finding]:
        out = list(self.findings)
        for run in self.runs:
            out += run.all_findings()
        return out

    def run_for(self, index: int) -> DeviceRun | None:
        return next((r for r in self.runs if r.index == index), None)

    def status(self) -> Status:
        rows = [row for run in self.runs for row in run.rows]
        if any(r.status == "crashed" for r in rows):
            return Status.CRASHED
        if any(r.status == "hung" for r in rows):
            return Status.TIMEOUT
        return status_from_findings(self.all_findings())

    def to_facts(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "request": self.request.to_dict(),
            "seed": self.seed,
            "loader_version": self.loader_version,
            "host": host_facts(),
            "devices": [codec.to_json(d) for d in self.devices],
            "runs": [r.to_dict() for r in self.runs],
            "missing_devices": list(self.missing_devices),
            "cancelled": self.cancelled,
            "wall_s": round(self.wall_s, 4),
            "sibling_comparisons": [c.to_dict() for c in self.comparisons],
        }

    def to_probe(self) -> ProbeResult:
        return ProbeResult(
            PROBE_ID,
            PROBE_TITLE,
            self.status(),
            duration_s=self.wall_s,
            findings=self.all_findings(),
            facts=self.to_facts(),
        )

    @classmethod
    def from_facts(cls, facts: Mapping[str, Any], findings: Sequence[Finding] = ()) -> KernelRun:
        """Rebuild a run from a report's ``kernels`` probe (run-level findings are those not
        attached to a device run)."""
        runs = tuple(DeviceRun.from_dict(r) for r in facts.get("runs") or ())
        attached = {id(f) for r in runs for f in r.all_findings()}
        device_codes = {(f.code, f.summary) for r in runs for f in r.all_findings()}
        loose = tuple(
            f for f in findings if id(f) not in attached and (f.code, f.summary) not in device_codes
        )
        return cls(
            request=KernelRequest.from_dict(facts.get("request") or {}),
            seed=int(facts.get("seed") or 0),
            loader_version=facts.get("loader_version"),
            devices=tuple(device_record(i, d) for i, d in enumerate(facts.get("devices") or ())),
            runs=runs,
            findings=loose,
            missing_devices=tuple(int(i) for i in facts.get("missing_devices") or ()),
            cancelled=bool(facts.get("cancelled")),
            wall_s=float(facts.get("wall_s") or 0.0),
            created=str(facts.get("created", "")),
            comparisons=tuple(
                Comparison.from_dict(c)
                for c in facts.get("sibling_comparisons") or ()
                if isinstance(c, Mapping)
            ),
        )

    @classmethod
    def from_report(cls, report: Report) -> KernelRun | None:
        probe = next((p for p in report.probes if p.id == PROBE_ID), None)
        if probe is None:
            return None
        return cls.from_facts(probe.facts, probe.findings)


def device_record(index: int, data: Any) -> DeviceRecord:
    """A device as the kernel child (or a stored report, any version) described it; a bare
    record named after its index when it was never described."""
    record = codec.from_json(
        DeviceRecord, upgrade_device(data) if isinstance(data, Mapping) else {}
    )
    if not record.name:
        return replace(record, index=index, name=f"device {index}")
    return record


def host_facts() -> dict[str, Any]:
    """The host side of a benchmark note: CPU, cores, Python, numpy."""
    cpu = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.partition(":")[2].strip()
                    break
    except OSError:
        pass
    try:
        import numpy

        numpy_version: str | None = numpy.__version__
    except ImportError:  # the child would fail anyway; the note says so
        numpy_version = None
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": numpy_version,
        "vkdoctor": vkdoctor.__version__,
    }


def finalize(run: DeviceRun) -> DeviceRun:
    """Attach the device's peak and every row's figure (a measured peak needs all rows)."""
    results = [r.result for r in run.rows]
    peak = known_peak(run.name) or measured_peak(run.name, results)
    rows = tuple(replace(r, figure=figure(r.result, peak)) for r in run.rows)
    return replace(run, rows=rows, peak=peak)


def merge_into_report(report: Report, run: KernelRun) -> Report:
    """A copy of ``report`` whose ``kernels`` probe holds ``run``'s device runs, replacing
    earlier runs on the same devices and keeping the others."""
    merged = Report.from_dict(report.to_dict())
    previous = KernelRun.from_report(merged)
    if previous is not None:
        fresh = {r.index for r in run.runs}
        kept = tuple(r for r in previous.runs if r.index not in fresh)
        runs = tuple(sorted(kept + run.runs, key=lambda r: r.index))
        run = replace(run, runs=runs, devices=run.devices or previous.devices)
    probe = run.to_probe()
    for i, existing in enumerate(merged.probes):
        if existing.id == PROBE_ID:
            merged.probes[i] = probe
            break
    else:
        merged.probes.append(probe)
    return merged


def kernel_report(run: KernelRun, environment: Mapping[str, Any] | None = None) -> Report:
    """A report of its own (``vkdoctor kernels --json``): loadable by ``vkdoctor tui`` and
    ``report show``, and its ``kernels`` probe embeddable in a ``check`` report."""
    return Report(
        tool_version=vkdoctor.__version__,
        created=run.created,
        environment=dict(environment or {}),
        probes=[run.to_probe()],
    )


# ---------------------------------------------------------------------------------------------
# Events (immutable; posted to the UI as they happen)


@frozen
class DevicesSeen:
    devices: tuple[DeviceRecord, ...]
    loader_version: str


@frozen
class SuiteStarted:
    index: int
    name: str
    preset: str
    sizes: Mapping[str, Any]
    kernels: tuple[str, ...]


@frozen
class KernelStarted:
    index: int
    kernel: str
    position: int  # 0-based among the device's kernels
    total: int


@frozen
class KernelFinished:
    index: int
    row: KernelRow
    position: int
    total: int


@frozen
class SuiteFinished:
    run: DeviceRun


KernelEvent = DevicesSeen | SuiteStarted | KernelStarted | KernelFinished | SuiteFinished


# ---------------------------------------------------------------------------------------------
# The session


@mutable
class _Device:
    """A device run being assembled."""

    index: int
    info: DeviceRecord
    preset: str = ""
    sizes: Mapping[str, Any] = field(default_factory=dict)
    kernels: tuple[str, ...] = ()
    rows: list[KernelRow] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    wall_s: float | None = None

    def freeze(self) -> DeviceRun:
        return finalize(
            DeviceRun(
                index=self.index,
                device=self.info,
                preset=self.preset,
                sizes=self.sizes,
                kernels=self.kernels,
                rows=tuple(self.rows),
                wall_s=self.wall_s if self.wall_s is not None else time.monotonic() - self.started,
                findings=tuple(self.findings),
            )
        )

    def remaining(self) -> list[str]:
        done = {r.kernel for r in self.rows}
        return [k for k in self.kernels if k not in done]


class KernelSession:
    """One run of the suite.  ``run()`` blocks (call it from a worker thread); ``on_event`` is
    called from the child's reader thread as things happen; ``cancel()`` may come from any
    thread and kills the child."""

    def __init__(
        self,
        request: KernelRequest,
        environ: Mapping[str, str] | None = None,
        on_event: Callable[[KernelEvent], None] | None = None,
        task: str = TASK,
    ) -> None:
        from vkdoctor.kernels.suite import KERNELS

        self.request = request
        self.task = task  # tests run a wrapper task that crashes or hangs on purpose
        self.environ = dict(os.environ if environ is None else environ)
        self.on_event = on_event
        self.seed = request.seed if request.seed is not None else secrets.randbits(31)
        self.kernels = tuple(request.kernels) if request.kernels is not None else tuple(KERNELS)
        unknown = [k for k in self.kernels if k not in KERNELS]
        if unknown:
            raise ValueError(f"unknown kernels: {', '.join(unknown)}; known: {', '.join(KERNELS)}")
        if request.size not in SIZE_PRESETS:
            raise ValueError(f"unknown size {request.size!r}; known: {', '.join(SIZE_PRESETS)}")
        self._lock = threading.Lock()
        self._handle: child.ChildHandle | None = None
        self._cancelled = False
        self._devices: tuple[DeviceRecord, ...] | None = None
        self._loader: str | None = None
        self._state: dict[int, _Device] = {}
        self._done: list[DeviceRun] = []
        self._findings: list[Finding] = []
        self._internal: list[str] = []
        self._current: tuple[int, str] | None = None  # (device, kernel) between begin and end
        self._suite: int | None = None  # the device whose suite-start came last

    # -- control

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            handle = self._handle
        if handle is not None:
            handle.cancel()

    def _emit(self, event: KernelEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    # -- the child's messages (on the reader thread)

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("kind")
        if kind == "begin":
            device, _, kernel = str(message.get("item", "")).partition("/")
            self._current = (int(device), kernel)
            state = self._state.get(int(device))
            if state is not None:
                self._emit(
                    KernelStarted(
                        int(device),
                        kernel,
                        len(state.rows),
                        len(state.kernels) or len(self.kernels),
                    )
                )
        elif kind == "end":
            self._current = None
        elif kind == "result" and isinstance(message.get("data"), dict):
            self._on_result(message["data"])

    def _on_result(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "devices":
            self._devices = tuple(
                device_record(i, d) for i, d in enumerate(data.get("devices") or ())
            )
            self._loader = data.get("loader_version")
            self._emit(DevicesSeen(self._devices, str(self._loader or "")))
        elif kind == "instance-error":
            self._findings.append(
                make_finding(
                    CODES,
                    "kernels-no-vulkan",
                    f"no Vulkan instance for the kernel suite: {data.get('message')}",
                    evidence={k: data.get(k) for k in ("message", "error", "exception")},
                    commands=("vkdoctor check",),
                )
            )
        elif kind == "suite-start":
            index = int(data["device"])
            state = self._state.get(index) or _Device(index, self._info(index))
            state.preset = str(data.get("preset", ""))
            state.sizes = dict(data.get("sizes") or {})
            if not state.kernels:
                state.kernels = tuple(data.get("kernels") or ())
            self._state[index] = state
            self._suite = index
            self._emit(
                SuiteStarted(index, self._name(index), state.preset, state.sizes, state.kernels)
            )
        elif kind == "device-error":
            index = int(data["device"])
            state = self._state.setdefault(index, _Device(index, self._info(index)))
            state.findings.append(
                make_finding(
                    CODES,
                    "kernel-device-unusable",
                    f"device {index} ({self._name(index)}): {data.get('message')}",
                    evidence={"device": self._name(index), "index": index}
                    | {k: data.get(k) for k in ("message", "error", "exception")},
                    commands=("vkdoctor check device dispatch",),
                )
            )
            self._finish(index)
        elif kind == "kernel":
            index = int(data["device"])
            state = self._state.setdefault(index, _Device(index, self._info(index)))
            finding = data.get("finding")
            result = dict(data.get("result") or {})
            row = KernelRow(
                device=index,
                result=result,
                # Datasheet peaks are known up front; a measured one waits for the whole suite.
                figure=figure(result, known_peak(self._name(index))),
                finding=Finding.from_dict(finding) if finding else None,
                seed=data.get("seed"),
            )
            state.rows.append(row)
            self._emit(KernelFinished(index, row, len(state.rows) - 1, len(state.kernels)))
        elif kind == "suite-end":
            index = int(data["device"])
            state = self._state.get(index)
            if state is not None:
                # A resumed device adds the time of each child that worked on it.
                state.wall_s = (state.wall_s or 0.0) + float(data.get("wall_s") or 0.0)
                self._finish(index)

    def _info(self, index: int) -> DeviceRecord:
        devices = self._devices or ()
        return devices[index] if 0 <= index < len(devices) else device_record(index, None)

    def _name(self, index: int) -> str:
        return self._info(index).name

    def _finish(self, index: int) -> None:
        state = self._state.pop(index, None)
        if state is None:
            return
        run = state.freeze()
        self._done.append(run)
        if self._suite == index:
            self._suite = None
        self._emit(SuiteFinished(run))

    # -- the run

    def _payload(self, jobs: list[dict[str, Any]] | None) -> dict[str, Any]:
        request = self.request
        if jobs is None:
            devices = request.devices
            jobs = [{"device": d, "kernels": list(self.kernels)} for d in devices or ()]
        return {
            "jobs": jobs,
            "all_devices": request.devices is None and not jobs,
            "kernels": list(self.kernels),
            "size": request.size,
            "seed": self.seed,
            "fence_timeout_s": request.fence_timeout_s,
            "warmup": request.warmup,
            "repetitions": request.repetitions,
        }

    def run(self) -> KernelRun:
        started = time.monotonic()
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        jobs: list[dict[str, Any]] | None = None  # None: as requested (all devices: the child)
        while True:
            with self._lock:
                if self._cancelled:
                    break
                self._handle = child.start_child(
                    self.task,
                    self._payload(jobs),
                    environ=self.environ,
                    timeout=self.request.timeout_s,
                    on_message=self._on_message,
                )
            outcome = self._handle.wait()
            with self._lock:
                self._handle = None
            jobs = self._after(outcome)
            if not jobs:
                break
        # Whatever was still open (a cancel, a child that died between devices) ends here.
        for index in sorted(self._state):
            self._finish(index)
        missing = ()
        if self._devices is not None and self.request.devices is not None:
            missing = tuple(d for d in self.request.devices if not 0 <= d < len(self._devices))
        if self._devices == () and not self._findings:
            self._findings.append(
                make_finding(
                    CODES,
                    "kernels-no-device",
                    "Vulkan sees no physical device: no kernel could run",
                    commands=("vkdoctor check",),
                )
            )
        return KernelRun(
            request=self.request,
            seed=self.seed,
            loader_version=self._loader,
            devices=self._devices or (),
            runs=tuple(sorted(self._done, key=lambda r: r.index)),
            findings=tuple(self._findings),
            missing_devices=missing,
            internal_errors=tuple(self._internal),
            cancelled=self._cancelled,
            wall_s=time.monotonic() - started,
            created=created,
        )

    def _after(self, outcome: child.ChildOutcome) -> list[dict[str, Any]]:
        """Account for how the child ended; the jobs still to run in a fresh child."""
        if outcome.state in ("ok", "cancelled"):
            return []
        if outcome.state in ("error", "spawn-failed"):
            text = outcome.error or outcome.describe()
            self._internal.append(text)
            self._findings.append(
                make_finding(
                    CODES,
                    "kernels-internal-error",
                    "the kernel suite's process failed (a bug in vkdoctor)"
                    + (f" during: {outcome.last_crumb}" if outcome.last_crumb else ""),
                    evidence={"traceback": text, "state": outcome.state},
                )
            )
            return []
        # crashed or timeout: blame the kernel (or the device step) it happened in.
        code = "kernel-crashed" if outcome.state == "crashed" else "kernel-hung"
        status = "crashed" if outcome.state == "crashed" else "hung"
        evidence = {
            "signal": outcome.signal,
            "last_step": outcome.last_crumb,
            "wait_channels": list(outcome.wchan),
            "stderr_tail": outcome.stderr[-_STDERR_TAIL:],
        }
        current, self._current = self._current, None
        if current is not None and current[0] in self._state:
            index, kernel = current
            state = self._state[index]
            from vkdoctor.kernels.suite import KERNELS

            title = KERNELS[kernel].title if kernel in KERNELS else kernel
            finding = make_finding(
                CODES,
                code,
                f"{self._name(index)}: {title}: {outcome.describe()}",
                evidence={"kernel": kernel, "device": self._name(index), "index": index} | evidence,
            )
            result = {
                "kernel": kernel,
                "title": title,
                "status": status,
                "device": self._name(index),
                "driver": self._info(index).driver if self._info(index).driver_name else "",
                "message": outcome.describe(),
            }
            state.rows.append(KernelRow(index, result, None, finding))
            self._emit(
                KernelFinished(index, state.rows[-1], len(state.rows) - 1, len(state.kernels))
            )
            if status == "hung":
                # A hung GPU rarely recovers for the next kernel: do not pile up hangs.
                for name in state.remaining():
                    skipped = {
                        **result,
                        "kernel": name,
                        "title": KERNELS[name].title if name in KERNELS else name,
                        "status": "skipped",
                        "message": f"not run: {kernel} hung the device",
                    }
                    state.rows.append(KernelRow(index, skipped))
        elif self._suite is not None and self._suite in self._state:
            index = self._suite
            self._state[index].findings.append(
                make_finding(
                    CODES,
                    code,
                    f"{self._name(index)}: {outcome.describe()}",
                    evidence={"device": self._name(index), "index": index} | evidence,
                )
            )
        else:
            self._findings.append(
                make_finding(
                    CODES,
                    code,
                    f"the kernel suite's process: {outcome.describe()}",
                    evidence=evidence,
                )
            )
            return []  # died before any device: a fresh child would die the same way
        return self._remaining_jobs()

    def _remaining_jobs(self) -> list[dict[str, Any]]:
        """Unfinished device runs go on; devices not yet started follow."""
        jobs: list[dict[str, Any]] = []
        for index in sorted(self._state):
            state = self._state[index]
            rest = state.remaining()
            if rest and not state.findings:
                jobs.append({"device": index, "kernels": rest})
            else:
                self._finish(index)
        started = {r.index for r in self._done} | set(self._state)
        planned = (
            list(self.request.devices)
            if self.request.devices is not None
            else list(range(len(self._devices or ())))
        )
        for index in planned:
            if index not in started and 0 <= index < len(self._devices or ()):
                jobs.append({"device": index, "kernels": list(self.kernels)})
        return jobs
