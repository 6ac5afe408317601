"""Requirements evaluated against a report's typed records, device by device.

The requirement is met when at least one device satisfies every expression; the finding says,
for each device, what it has where it falls short, so a CI log explains the skip or failure.
A ``devices OP N`` expression is about the set instead: with one, the requirement is met when
the number of devices satisfying every other expression compares so with N.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import field

from vkdoctor.record import frozen
from vkdoctor.report.model import Report
from vkdoctor.report.records import DeviceRecord
from vkdoctor.require.grammar import COUNTED, VENDORS, Requirement, parse_version

# Device scoring as runtimes pick a default device: discrete first, the CPU last.
TYPE_RANK = {"discrete-gpu": 0, "integrated-gpu": 1, "virtual-gpu": 2, "other": 3, "cpu": 4}


@frozen
class Check:
    requirement: Requirement
    ok: bool
    have: str  # what the device has, in words: "type cpu", "API 1.3.230"


@frozen
class DeviceVerdict:
    device: DeviceRecord
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def shortfall(self) -> str:
        return ", ".join(c.have for c in self.checks if not c.ok)


@frozen
class Evaluation:
    requirements: tuple[Requirement, ...]
    devices: tuple[DeviceVerdict, ...] = ()
    # The devices meeting every per-device requirement (all devices when there are none).
    matching: tuple[DeviceRecord, ...] = field(default=())

    @property
    def per_device(self) -> tuple[Requirement, ...]:
        return tuple(r for r in self.requirements if r.key not in COUNTED)

    @property
    def counts(self) -> tuple[Requirement, ...]:
        """The ``devices OP N`` requirements."""
        return tuple(r for r in self.requirements if r.key in COUNTED)

    @property
    def unmet_counts(self) -> tuple[Requirement, ...]:
        have = len(self.matching)
        return tuple(r for r in self.counts if not _compare(have, r.op, r.value))  # type: ignore[arg-type]

    @property
    def met(self) -> bool:
        if self.counts:
            return not self.unmet_counts
        return bool(self.matching) or not self.requirements

    @property
    def wanted(self) -> str:
        return ", ".join(str(r) for r in self.requirements)

    def summary(self) -> str:
        """``no device meets gpu: device 0 llvmpipe (...) has type cpu`` or what met it."""
        if self.counts:
            return self._count_summary()
        if self.met:
            names = "; ".join(f"device {d.index} {d.name}" for d in self.matching)
            return f"{names} meets {self.wanted}" if self.requirements else "nothing required"
        if not self.devices:
            return f"no device meets {self.wanted}: no Vulkan device was found"
        return f"no device meets {self.wanted}: {self._shortfalls()}"

    def _shortfalls(self) -> str:
        return "; ".join(
            f"device {v.device.index} {v.device.name} has {v.shortfall}"
            for v in self.devices
            if not v.ok
        )

    def _count_summary(self) -> str:
        """``devices>=8 unmet: 7 of 8 devices meet gpu: device 3 ... has ...``: how many
        devices met the rest, then what each of the others has where it falls short."""
        counted = len(self.matching)
        rest = ", ".join(str(r) for r in self.per_device)
        if not self.devices:
            found = "no Vulkan device was found"
        elif rest:
            verb = "meets" if counted == 1 else "meet"
            found = f"{counted} of {len(self.devices)} devices {verb} {rest}"
        else:
            found = f"{counted} Vulkan device{'' if counted == 1 else 's'} found"
        if self.met:
            asked = ", ".join(str(r) for r in self.counts)
            names = "; ".join(f"device {d.index} {d.name}" for d in self.matching)
            return f"{found}, as {asked} asks" + (f": {names}" if names else "")
        unmet = ", ".join(str(r) for r in self.unmet_counts)
        shortfalls = self._shortfalls()
        return f"{unmet} unmet: {found}" + (f": {shortfalls}" if shortfalls else "")


def device_local_bytes(device: DeviceRecord) -> int | None:
    """The largest DEVICE_LOCAL heap (the record's own figure when the probe stored one)."""
    if device.device_local_bytes is not None:
        return device.device_local_bytes
    if device.memory is None:
        return None
    sizes = [h.size for h in device.memory.heaps if "device-local" in h.flags]
    return max(sizes) if sizes else 0


def _gib(size: int | None) -> str:
    return "unknown" if size is None else f"{size / 2**30:.1f} GiB"


def _compare(have: tuple[int, ...] | int, op: str, want: tuple[int, ...] | int) -> bool:
    if isinstance(have, tuple) and isinstance(want, tuple):
        width = max(len(have), len(want))  # 1.3 means 1.3.0 when compared with 1.3.230
        have = have + (0,) * (width - len(have))
        want = want + (0,) * (width - len(want))
    return {
        "<": have < want,  # type: ignore[operator]
        "<=": have <= want,  # type: ignore[operator]
        "=": have == want,
        ">": have > want,  # type: ignore[operator]
        ">=": have >= want,  # type: ignore[operator]
    }[op]


class _Context:
    """What the checks read from the report besides the device itself."""

    def __init__(self, report: Report) -> None:
        self.loader_version = report.loader.version if report.loader else None
        dispatch = next((p for p in report.probes if p.id == "dispatch"), None)
        self.dispatch_ran = dispatch is not None and dispatch.status.value not in ("skipped",)
        self.dispatch_status = dispatch.status.value if dispatch else "not run"
        rows = (dispatch.facts.get("devices") if dispatch else None) or []
        self.verified = {
            int(r["index"])
            for r in rows
            if isinstance(r, dict) and r.get("verified") and isinstance(r.get("index"), int)
        }
        from vkdoctor.kernels.run import KernelRun

        self.kernel_run = KernelRun.from_report(report)
        instance = next((p for p in report.probes if p.id == "instance"), None)
        facts = instance.facts if instance else {}
        self.instance_extensions = set(facts.get("available_extensions") or ())


def _check(req: Requirement, device: DeviceRecord, ctx: _Context) -> Check:
    key, op, want = req.key, req.op, req.value
    if key == "api":
        have = parse_version(device.api_version or "")
        ok = have is not None and _compare(have, op, want)  # type: ignore[arg-type]
        return Check(req, ok, f"API {device.api_version or 'unknown'}")
    if key == "loader":
        have = parse_version(ctx.loader_version or "")
        ok = have is not None and _compare(have, op, want)  # type: ignore[arg-type]
        return Check(req, ok, f"loader {ctx.loader_version or 'version unknown'}")
    if key == "type":
        return Check(req, device.type in want, f"type {device.type}")  # type: ignore[operator]
    if key == "gpu":
        ok = device.type in ("discrete-gpu", "integrated-gpu", "virtual-gpu")
        return Check(req, ok, f"type {device.type} (not a GPU)" if not ok else "a GPU")
    if key in ("name", "driver"):
        text = device.name if key == "name" else device.driver
        if isinstance(want, re.Pattern):
            ok = want.search(text) is not None
        else:
            ok = text == want or (key == "driver" and device.driver_name == want)
        return Check(req, ok, f"{key} {text!r}")
    if key == "vendor":
        names = {v: k for k, v in VENDORS.items()}
        label = names.get(device.vendor_id, "")
        return Check(
            req,
            device.vendor_id == want,
            f"vendor 0x{device.vendor_id:x}" + (f" ({label})" if label else ""),
        )
    if key == "memory":
        size = device_local_bytes(device)
        ok = size is not None and _compare(size, op, want)  # type: ignore[arg-type]
        return Check(req, ok, f"largest device-local heap {_gib(size)}")
    if key == "queue":
        families = device.queue_families
        flags = {f for family in families for f in family.flags}
        if flags & {"graphics", "compute"}:
            flags.add("transfer")  # graphics and compute queues support transfers (spec 5.1)
        ok = any(q in flags for q in want)  # type: ignore[union-attr]
        shown = "; ".join("+".join(f.flags) or "none" for f in families) or "no queue families"
        return Check(req, ok, f"queue families {shown}")
    if key == "subgroup":
        size = device.subgroup.size if device.subgroup else None
        ok = size is not None and _compare(size, op, want)  # type: ignore[arg-type]
        return Check(req, ok, f"subgroup size {size if size is not None else 'unknown'}")
    if key == "dispatch":
        ok = device.index in ctx.verified
        why = "verified" if ok else f"no verified dispatch (dispatch probe {ctx.dispatch_status})"
        return Check(req, ok, f"smoke dispatch {why}" if ok else why)
    if key == "extension":
        ok = want in device.extensions or want in ctx.instance_extensions
        if ok:
            return Check(req, ok, f"extension {want}")
        if not device.extensions and device.extensions_supported:  # a report from before 0.2
            return Check(req, ok, f"extension names not recorded (cannot tell {want})")
        return Check(req, ok, f"no {want} among {len(device.extensions)} extensions")
    if key == "feature":
        name = str(want)
        ok = any(f == name or f.endswith(f".{name}") for f in device.features)
        if ok:
            return Check(req, ok, f"feature {name}")
        if not device.features:
            return Check(req, ok, f"no core features recorded (cannot tell {name})")
        return Check(req, ok, f"no {name} among {len(device.features)} supported features")
    if key in ("kernels", "bandwidth", "fp32"):
        return _kernel_check(req, device, ctx)
    raise AssertionError(f"requirement key {key!r} parsed but not evaluated")


_RATE_UNITS = {"bandwidth": "GB/s", "fp32": "GFLOP/s"}


def _kernel_check(req: Requirement, device: DeviceRecord, ctx: _Context) -> Check:
    """From the kernel run in the report: every kernel passed, or the best measured rate."""
    from vkdoctor.report.model import Severity

    run = ctx.kernel_run.run_for(device.index) if ctx.kernel_run else None
    if run is None or not run.rows:
        return Check(req, False, "no kernel run on it")
    if req.key == "kernels":
        failed = [r.kernel for r in run.rows if r.status not in ("ok", "unsupported")]
        failed += [f.code for f in run.findings if f.severity is Severity.FAIL]
        ok = not failed
        return Check(req, ok, "every kernel passed" if ok else "failing: " + ", ".join(failed))
    rates = [r.figure.value for r in run.rows if r.figure and r.figure.metric == req.key]
    best = max(rates, default=None)
    unit = _RATE_UNITS[req.key]
    ok = best is not None and _compare(best, req.op, req.value)  # type: ignore[arg-type]
    return Check(
        req, ok, f"{req.key} {best:.4g} {unit}" if best is not None else f"no {req.key} figure"
    )


def evaluate(report: Report, requirements: Sequence[Requirement]) -> Evaluation:
    ctx = _Context(report)
    # ``devices OP N`` is checked over the set (Evaluation.met), not on each device.
    each = [r for r in requirements if r.key not in COUNTED]
    verdicts = tuple(
        DeviceVerdict(d, tuple(_check(r, d, ctx) for r in each)) for d in report.devices
    )
    matching = tuple(v.device for v in verdicts if v.ok)
    return Evaluation(tuple(requirements), verdicts, matching)


def best_device(evaluation: Evaluation) -> DeviceRecord | None:
    """The device a runtime would pick among those meeting the requirements: discrete over
    integrated over virtual over CPU, then the most device-local memory, then the lowest index."""
    if not evaluation.matching:
        return None
    return min(
        evaluation.matching,
        key=lambda d: (TYPE_RANK.get(d.type, 3), -(device_local_bytes(d) or 0), d.index),
    )
