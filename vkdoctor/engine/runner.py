"""The probe runner: pipeline order, requirements, child-process plumbing, and the report.

Probes are modules in ``vkdoctor.probes`` exposing ``SPEC: ProbeSpec``.  A probe whose requirement
failed is ``skipped`` with ``blocked_by``.  A native probe that fails is re-run once with
``VK_LOADER_DEBUG=all`` so the report carries the loader's full story.  A bug in vkdoctor itself
becomes an ``internal-error`` finding (with the traceback as evidence) and the run goes on, so the
rest of the report is never lost; the CLI then exits with the internal-error code.

The run is bounded (DESIGN.md, robustness): ``Options.deadline_s`` limits the whole pipeline, and
a stop request (the CLI's SIGINT/SIGTERM/SIGHUP handlers call ``child.request_stop``) ends it
early.  Either way every child is killed, the probes that had not finished are marked (a timeout
with ``run-deadline-exceeded``, or skipped with ``blocked_by`` "interrupted" / "deadline") and the
report holds everything found before.  Probes run on daemon threads, so a probe stuck in Python
code cannot hold the process after the report is out.
"""

from __future__ import annotations

import contextlib
import functools
import math
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import field
from datetime import datetime, timezone
from typing import Any

import vkdoctor
from vkdoctor.diagnosis.remedies import Machine
from vkdoctor.diagnosis.run import diagnose
from vkdoctor.engine import child
from vkdoctor.engine.env import Env
from vkdoctor.engine.installation import unavailable
from vkdoctor.engine.plan import (
    Options,
    child_overrides,
    cores,
    first_attempt_sharing,
    load_spec,
    reruns_failures,
    resolve_selection,
    warm_pool,
)
from vkdoctor.loader import log as loaderlog
from vkdoctor.record import frozen, mutable
from vkdoctor.report.codes import CodeInfo, code_table, make_finding
from vkdoctor.report.model import (
    BLOCKED_DEADLINE,
    BLOCKED_INTERRUPTED,
    Finding,
    LogEntry,
    ProbeResult,
    Report,
    Severity,
    Status,
    status_from_findings,
)
from vkdoctor.report.records import DeviceRecord, DriverRecord, LayerRecord, LoaderRecord

MAX_PARALLEL_PROBES = 3
MAX_STORED_LOG = 1000  # distinct loader-log entries a probe stores (and the report, merged)
# blocked_by of probes the run never finished (they are not probe ids: nothing blocks on them).
CODES = code_table(
    [
        CodeInfo(
            "internal-error",
            Severity.FAIL,
            "vkdoctor itself failed",
            "A bug in vkdoctor stopped this probe. The other probes still ran and the report "
            "holds everything found before the failure.",
            ("a bug in vkdoctor",),
            "Please report it with the traceback from the finding's evidence.",
        ),
        CodeInfo(
            "run-interrupted",
            Severity.INFO,
            "the run was interrupted before this probe finished",
            "vkdoctor received SIGINT, SIGTERM or SIGHUP while this probe ran; its children were "
            "killed and its partial results dropped. The probes that finished before are in the "
            "report.",
            ("Ctrl-C", "timeout(1) or a CI job limit", "a closed terminal"),
            "Run vkdoctor check again and let it finish, or give a longer CI limit.",
        ),
        CodeInfo(
            "run-deadline-exceeded",
            Severity.FAIL,
            "the run's deadline passed before this probe finished",
            "The whole run is bounded by --deadline; this probe was still running when it "
            "passed, so its children were killed. Something on this machine makes the probe "
            "very slow (thousands of manifests, a driver that hangs on every call).",
            ("very many manifests or layers", "drivers that hang", "an overloaded machine"),
            "Look at the probes that finished for the cause, or raise --deadline.",
        ),
        CodeInfo(
            "probe-unavailable",
            Severity.FAIL,
            "probe not available in this installation",
            "The probe's module could not be imported, so its step was not checked (and "
            "neither were the steps that need it). A failure: a check that checked nothing "
            "must not pass.",
            ("vkdoctor run from its source tree", "a partial installation"),
            "Run an installed vkdoctor, or reinstall it.",
        ),
    ]
)


@mutable
class ProbeOutcome:
    """What a probe's ``run`` returns; the runner turns it into a ProbeResult."""

    findings: list[Finding] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    loader_log: list[LogEntry] = field(default_factory=list)
    status: Status | None = None  # only to force timeout/crashed; otherwise from findings
    # The component records this probe establishes (each section is set by one probe).
    loader: LoaderRecord | None = None
    drivers: list[DriverRecord] | None = None
    layers: list[LayerRecord] | None = None
    devices: list[DeviceRecord] | None = None
    environment: dict[str, Any] | None = None  # the report's environment facts (one probe sets it)


@frozen
class ProbeSpec:
    id: str
    title: str
    run: Callable[[ProbeContext], ProbeOutcome]
    requires: tuple[str, ...] = ()  # must have succeeded, else this probe is skipped
    uses: tuple[str, ...] = ()  # run first when selected (their facts help) but never block
    consults: tuple[str, ...] = ()  # selected too, but run alongside; read via ctx.wait_for()
    native: bool = False  # runs children: re-run with VK_LOADER_DEBUG=all on failure
    # A child whose work needs nothing from ``requires`` may start as soon as ``early_after``
    # are done (the dispatch child before the instance probe ends): ``early(ctx)`` starts it,
    # the first attempt's ``run`` finds it as ``ctx.early``, and it is killed unused when a
    # requirement fails.  A re-run never gets one.
    early: Callable[[ProbeContext], child.ChildHandle] | None = None
    early_after: tuple[str, ...] = ()


@mutable
class ProbeContext:
    env: Env
    options: Options
    results: Mapping[str, ProbeResult]
    outcomes: Mapping[str, ProbeOutcome]
    loader_debug: str
    pool: child.ChildPool | None = None
    finished: Mapping[str, threading.Event] = field(default_factory=dict)
    deadline_at: float | None = None  # time.monotonic() at which the whole run ends
    # Culprit isolation (bisection) runs in this attempt.  Off in a first attempt that a
    # failure re-runs with VK_LOADER_DEBUG=all anyway: isolating twice doubled the cost of a
    # hanging driver (7x --timeout for one check).
    isolate: bool = True
    # Whether children are shared with other probes' tasks (ChildPool's kept children): SHARE
    # only in a first attempt that a failure re-runs in fresh children, so that a failure is
    # diagnosed alone; OFFER for a first step, whose child no earlier task has touched.
    sharing: child.Sharing = child.Sharing.NONE
    early: child.ChildHandle | None = None  # ProbeSpec.early's child, for the first attempt
    progress: Callable[[str], None] | None = None  # what the step is doing now, for a status line

    def say(self, text: str) -> None:
        """Tell the user what this probe is doing now (the CLI's status line); never fails."""
        if self.progress is not None:
            with contextlib.suppress(Exception):
                self.progress(text)

    # How the first attempt ended, in the debug re-run (None in a first attempt).  A probe whose
    # first attempt hung may start isolating at once, alongside the re-run's own children,
    # instead of after waiting out the same hang again (issue 10: about 2x --timeout).
    first_attempt: Status | None = None

    def remaining_s(self) -> float | None:
        """Seconds left before the run's deadline (None: unbounded)."""
        if self.deadline_at is None:
            return None
        return max(0.0, self.deadline_at - time.monotonic())

    def child_timeout(self, timeout_s: float | None = None) -> float:
        """A child's time limit: the step's own, never past the run's deadline (a little more,
        so that the runner's deadline, not the child's, names what happened)."""
        limit = timeout_s or self.options.timeout_s
        remaining = self.remaining_s()
        return limit if remaining is None else max(0.05, min(limit, remaining + 1.0))

    def wait_for(self, probe_id: str) -> ProbeResult | None:
        """The result of a probe running alongside this one (a ``consults`` entry), once done;
        None when it is not part of this run."""
        event = self.finished.get(probe_id)
        if event is None:
            return None
        event.wait()
        return self.results.get(probe_id)

    def facts(self, probe_id: str) -> dict[str, Any]:
        result = self.results.get(probe_id)
        return result.facts if result else {}

    def child_overrides(
        self, extra: Mapping[str, str | None] | None = None
    ) -> dict[str, str | None]:
        return child_overrides(self.options, self.loader_debug, extra)

    def _child_options(
        self, overrides: Mapping[str, str | None] | None, timeout_s: float | None = None
    ) -> dict[str, Any]:
        """Where and how this probe's children run: its environment, time limit, variables,
        pool and sharing (the same for a single child and a batch)."""
        return {
            "environ": self.env.environ,
            "timeout": self.child_timeout(timeout_s),
            "overrides": self.child_overrides(overrides),
            "pool": self.pool,
            "sharing": self.sharing,
        }

    def run_child(
        self,
        task: str,
        payload: Mapping[str, Any],
        overrides: Mapping[str, str | None] | None = None,
        timeout_s: float | None = None,
    ) -> child.ChildOutcome:
        return self.start_child(task, payload, overrides, timeout_s).wait()

    def start_child(
        self,
        task: str,
        payload: Mapping[str, Any],
        overrides: Mapping[str, str | None] | None = None,
        timeout_s: float | None = None,
    ) -> child.ChildHandle:
        return child.start_child(task, payload, **self._child_options(overrides, timeout_s))

    def run_batch(
        self,
        task: str,
        items: Sequence[Mapping[str, Any]],
        key: str,
        overrides: Mapping[str, str | None] | None = None,
        payload: Mapping[str, Any] | None = None,
        needs_first: bool = False,
    ) -> tuple[list[child.ItemOutcome], list[child.ChildOutcome]]:
        return child.run_batch(
            task,
            items,
            key=key,
            payload=payload,
            needs_first=needs_first,
            **self._child_options(overrides),
        )

    def run_batch_adopting(
        self,
        task: str,
        items: Sequence[Mapping[str, Any]],
        key: str,
        payload: Mapping[str, Any] | None = None,
        same: Callable[[child.ItemOutcome, Mapping[str, Any]], bool] = lambda *_: True,
    ) -> tuple[list[child.ItemOutcome], list[child.ChildOutcome]]:
        """``run_batch``, taking what the early child (``ProbeSpec.early``, started over every
        device before the items were known) found for an item when ``same(outcome, item)``
        says it saw that very item (the same device at the same index); the rest run here."""
        if not items:
            if self.early is not None:
                self.early.cancel()  # nothing to adopt (the instance saw no device after all)
            return [], []
        keys = [str(item[key]) for item in items]
        wanted = dict(zip(keys, items, strict=True))
        adopted: dict[str, child.ItemOutcome] = {}
        children: list[child.ChildOutcome] = []
        if self.early is not None:
            early = self.early.wait()
            children.append(early)
            for outcome in child.items_from(early, keys)[0]:
                if outcome.key in wanted and same(outcome, wanted[outcome.key]):
                    adopted[outcome.key] = outcome
        rest = [item for k, item in wanted.items() if k not in adopted]
        if rest:
            more, batch = self.run_batch(task, rest, key, payload=payload)
            adopted.update((outcome.key, outcome) for outcome in more)
            children += batch
        return [adopted[k] for k in keys], children


@mutable
class RunResult:
    report: Report
    internal_errors: list[str]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _status_of(outcome: ProbeOutcome) -> Status:
    if outcome.status is not None:
        return outcome.status
    return status_from_findings(outcome.findings)


def _blocks(requirement: ProbeResult | None) -> bool:
    return requirement is not None and (
        requirement.status.is_failure or requirement.status is Status.SKIPPED
    )


def _run_one(spec: ProbeSpec, ctx: ProbeContext) -> tuple[ProbeOutcome, str | None]:
    try:
        return spec.run(ctx), None
    except Exception:
        tb = traceback.format_exc()
        finding = make_finding(
            CODES,
            "internal-error",
            f"vkdoctor failed while running the {spec.id} probe (a bug in vkdoctor)",
            evidence={"traceback": tb},
        )
        return ProbeOutcome(findings=[finding]), tb


def _merge_logs(results: Iterable[ProbeResult]) -> list[LogEntry]:
    entries = (e for r in results for e in r.loader_log if e.level != "other")
    return loaderlog.bounded(entries, MAX_STORED_LOG)[0]


def run_pipeline(
    env: Env,
    options: Options | None = None,
    selected: Iterable[str] | None = None,
    on_start: Callable[[ProbeSpec], None] | None = None,
    on_result: Callable[[ProbeResult], None] | None = None,
    pool: child.ChildPool | None = None,
    on_progress: Callable[[ProbeSpec, str], None] | None = None,
) -> RunResult:
    """Run the probes; ``pool`` (from ``warm_pool`` with the same arguments) has its children
    killed at the end and the caller's ``pool.close()`` reaps them, so their teardown overlaps
    the diagnosis and the output; the pool made here without it is closed here."""
    options = options or Options()
    order = resolve_selection(selected)
    report = Report(tool_version=vkdoctor.__version__, created=_now())
    results: dict[str, ProbeResult] = {}
    outcomes: dict[str, ProbeOutcome] = {}
    internal: list[str] = []
    if (child.stop_reason() or "").startswith(BLOCKED_DEADLINE):
        child.clear_stop()  # an earlier run's deadline (TUI); a signal's stop stays
    deadline_at = (
        time.monotonic() + options.deadline_s
        if options.deadline_s is not None and math.isfinite(options.deadline_s)
        else None
    )
    owned = pool is None
    pool = pool or warm_pool(env, options, order)
    try:
        _run_probes(
            env,
            options,
            order,
            report,
            results,
            outcomes,
            internal,
            pool,
            on_start,
            on_result,
            deadline_at,
            on_progress,
        )
    finally:
        if owned:
            pool.close()
        else:
            pool.stop()
    report.loader_log = _merge_logs(report.probes)
    diagnose(report, Machine.of(env))
    return RunResult(report, internal)


def _reruns(spec: ProbeSpec, options: Options) -> bool:
    return reruns_failures(options, spec.native)


def _first_context(
    spec: ProbeSpec,
    env: Env,
    options: Options,
    results: Mapping[str, ProbeResult],
    outcomes: Mapping[str, ProbeOutcome],
    pool: child.ChildPool,
    finished: Mapping[str, threading.Event],
    deadline_at: float | None,
) -> ProbeContext:
    reruns = _reruns(spec, options)
    return ProbeContext(
        env,
        options,
        results,
        outcomes,
        options.loader_debug,
        pool,
        finished,
        deadline_at,
        isolate=not reruns,
        sharing=first_attempt_sharing(options, spec.native, bool(spec.requires)),
    )


def _execute(
    spec: ProbeSpec,
    env: Env,
    options: Options,
    results: Mapping[str, ProbeResult],
    outcomes: Mapping[str, ProbeOutcome],
    pool: child.ChildPool,
    finished: Mapping[str, threading.Event],
    deadline_at: float | None = None,
    early: child.ChildHandle | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[ProbeResult, ProbeOutcome, str | None]:
    started = time.monotonic()
    reruns = _reruns(spec, options)
    ctx = _first_context(spec, env, options, results, outcomes, pool, finished, deadline_at)
    ctx.early, ctx.progress = early, progress
    outcome, tb = _run_one(spec, ctx)
    status = _status_of(outcome)
    if reruns and tb is None and status.is_failure and child.stop_reason() is None:
        first_status = status
        ctx = ProbeContext(
            env,
            options,
            results,
            outcomes,
            "all",
            pool,
            finished,
            deadline_at,
            first_attempt=first_status,
            progress=progress,
        )
        outcome, tb = _run_one(spec, ctx)
        status = _status_of(outcome)
        outcome.facts["rerun"] = {
            "reason": f"first attempt ended {first_status.value}",
            "loader_debug": "all",
        }
    stored, log_counts = loaderlog.bounded(outcome.loader_log, MAX_STORED_LOG)
    if log_counts["stored"] < log_counts["lines"]:
        outcome.facts["loader_log_stored"] = log_counts  # repeated and left-out lines counted
    result = ProbeResult(
        spec.id,
        spec.title,
        status,
        duration_s=round(time.monotonic() - started, 4),  # as the report stores it
        findings=outcome.findings,
        facts=outcome.facts,
        loader_log=stored,
    )
    return result, outcome, tb


def _unfinished(spec: ProbeSpec, reason: str, was_running: bool) -> ProbeResult:
    """The result of a probe the run stopped: ``reason`` is "deadline" or a signal name."""
    if reason == BLOCKED_DEADLINE:
        if not was_running:
            return ProbeResult(spec.id, spec.title, Status.SKIPPED, blocked_by=BLOCKED_DEADLINE)
        finding = make_finding(
            CODES,
            "run-deadline-exceeded",
            f"the run's deadline passed before the {spec.id} probe finished",
            evidence={"probe": spec.id},
        )
        return ProbeResult(spec.id, spec.title, Status.TIMEOUT, findings=[finding])
    findings = []
    if was_running:
        findings.append(
            make_finding(
                CODES,
                "run-interrupted",
                f"vkdoctor received {reason} while the {spec.id} probe was running",
                evidence={"probe": spec.id, "signal": reason},
            )
        )
    return ProbeResult(
        spec.id, spec.title, Status.SKIPPED, blocked_by=BLOCKED_INTERRUPTED, findings=findings
    )


_Done = tuple[str, "tuple[ProbeResult, ProbeOutcome, str | None] | None", "BaseException | None"]


def _run_probes(
    env: Env,
    options: Options,
    order: list[str],
    report: Report,
    results: dict[str, ProbeResult],
    outcomes: dict[str, ProbeOutcome],
    internal: list[str],
    pool: child.ChildPool,
    on_start: Callable[[ProbeSpec], None] | None,
    on_result: Callable[[ProbeResult], None] | None,
    deadline_at: float | None = None,
    on_progress: Callable[[ProbeSpec, str], None] | None = None,
) -> None:
    """Run probes as soon as what they require and use is done (driver and layer enumeration
    overlap), while results are recorded and reported in pipeline order.

    The loop never blocks for long: it wakes up for a finished probe, a stop request or the
    deadline.  If it fails itself (an output callback raising), every child is killed and every
    event set first, so no probe thread is left waiting for a result that never comes."""
    pending = list(order)
    done_events = {p: threading.Event() for p in order}
    specs: dict[str, ProbeSpec] = {}
    unavailable_by_error: dict[str, str] = {}  # an import error -> the first probe it hit

    def spec_of(probe_id: str) -> ProbeSpec | None:
        """Imported when first looked at: the first probe's child starts before the other probe
        modules are imported (~40 ms here).  None: unavailable, its result recorded."""
        if probe_id not in specs:
            try:
                specs[probe_id] = load_spec(probe_id)
            except ImportError as exc:
                # A failure, not a skip: a check whose steps could not run must not pass.  The
                # same import error in a later probe (every probe, from a source tree) blocks it
                # behind the first instead of repeating the finding.
                first = unavailable_by_error.setdefault(str(exc), probe_id)
                if first != probe_id:
                    results[probe_id] = ProbeResult(
                        probe_id, probe_id, Status.SKIPPED, blocked_by=first
                    )
                else:
                    why = unavailable(probe_id, exc)
                    finding = make_finding(
                        CODES,
                        "probe-unavailable",
                        why.summary,
                        detail=why.detail,
                        remedy=why.remedy,
                        commands=why.commands,
                    )
                    results[probe_id] = ProbeResult(
                        probe_id, probe_id, Status.FAIL, findings=[finding]
                    )
                pending.remove(probe_id)
                done_events[probe_id].set()
                return None
        return specs[probe_id]

    running: set[str] = set()
    finished_queue: queue.Queue[_Done] = queue.Queue()
    emitted = 0

    def flush() -> None:
        nonlocal emitted
        while emitted < len(order) and order[emitted] in results:
            result = results[order[emitted]]
            report.probes.append(result)
            if on_result:
                on_result(result)
            emitted += 1

    early: dict[str, child.ChildHandle] = {}

    def start_early(spec: ProbeSpec) -> None:
        assert spec.early is not None
        ctx = _first_context(spec, env, options, results, outcomes, pool, done_events, deadline_at)
        early[spec.id] = spec.early(ctx)

    def work(spec: ProbeSpec) -> None:
        try:
            done = _execute(
                spec,
                env,
                options,
                results,
                outcomes,
                pool,
                done_events,
                deadline_at,
                early.pop(spec.id, None),
                None if on_progress is None else functools.partial(on_progress, spec),
            )
            finished_queue.put((spec.id, done, None))
        except BaseException as exc:  # _execute catches probe bugs; this is the runner's own
            finished_queue.put((spec.id, None, exc))

    def stop(reason: str) -> None:
        child.request_stop(reason)
        # At least one probe carries the finding, so a run the deadline cut short never exits 0.
        cut = set(running) or set(pending[:1])
        for probe_id in list(running) + [p for p in list(pending) if spec_of(p) is not None]:
            results[probe_id] = _unfinished(specs[probe_id], reason, probe_id in cut)
        running.clear()
        pending.clear()
        for event in done_events.values():
            event.set()  # a probe consulting a stopped one must not wait for it

    try:
        while pending or running:
            reason = child.stop_reason()
            if reason is None and deadline_at is not None and time.monotonic() >= deadline_at:
                reason = BLOCKED_DEADLINE
            if reason is not None:
                stop(reason)
                break
            for probe_id in list(pending):
                if len(running) >= MAX_PARALLEL_PROBES:
                    break
                spec = spec_of(probe_id)
                if spec is None:
                    continue
                if any(d in order and d not in results for d in spec.requires + spec.uses):
                    continue
                pending.remove(probe_id)
                blocker = next((r for r in spec.requires if _blocks(results.get(r))), None)
                if blocker is not None:
                    results[probe_id] = ProbeResult(
                        spec.id, spec.title, Status.SKIPPED, blocked_by=blocker
                    )
                    if probe_id in early:
                        early.pop(probe_id).cancel()  # its child's work is not wanted now
                    done_events[probe_id].set()
                    continue
                if on_start:
                    on_start(spec)
                running.add(probe_id)
                threading.Thread(
                    target=work, args=(spec,), name=f"probe-{probe_id}", daemon=True
                ).start()
            # Early children last probe first: the later a probe, the longer it would wait.
            for probe_id in reversed(pending):
                spec = specs.get(probe_id)
                if spec is None:
                    continue
                if (
                    spec.early is not None
                    and probe_id not in early
                    and len(running) + len(early) < cores(options)
                    and all(d in results and not _blocks(results[d]) for d in spec.early_after)
                ):
                    start_early(spec)
            flush()
            if not running:
                continue
            wake = 0.25 if deadline_at is None else min(0.25, deadline_at - time.monotonic())
            try:
                probe_id, done, error = finished_queue.get(timeout=max(0.0, wake))
            except queue.Empty:
                continue
            if probe_id not in running or child.stop_reason() is not None:
                # Stopped meanwhile: its children were killed under it, so its result is not
                # to be trusted; the next turn marks it unfinished.
                continue
            running.discard(probe_id)
            if error is not None:
                raise error
            assert done is not None
            result, outcome, tb = done
            if tb is not None:
                internal.append(tb)
            outcomes[probe_id] = outcome
            if outcome.loader is not None:
                report.loader = outcome.loader
            report.drivers += outcome.drivers or []
            report.layers += outcome.layers or []
            report.devices += outcome.devices or []
            if outcome.environment is not None:
                report.environment = outcome.environment
            results[probe_id] = result
            done_events[probe_id].set()
    except BaseException:
        # The loop itself failed (an output callback, KeyboardInterrupt): nothing may be left
        # waiting or running behind it.
        child.kill_all()
        for event in done_events.values():
            event.set()
        raise
    finally:
        for handle in early.values():
            handle.cancel()  # started early for a probe that never ran (a stop, the deadline)
    flush()
