"""Culprit isolation: re-run a failing native step with each active implicit layer disabled, and
with each driver alone (implicit layers off).

A layer whose disabling makes the step pass is a culprit; so is a driver that fails on its own
without any implicit layer.  Used by the instance and device probes (reference/failure-modes.md,
fact 3).

Bounded, because anyone can write manifests into $XDG_DATA_HOME (DESIGN.md, robustness): drivers
whose manifests name the same library are one candidate (60 copies of a manifest load one
library, and bisecting them 60 times proves nothing more), at most ``MAX_CANDIDATES`` drivers and
as many layers are tried, no more children run at once than this process may use cores, and
nothing new starts once the run's deadline has passed or a stop was requested.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from vkdoctor.engine import child
from vkdoctor.engine.child import ChildHandle, ChildOutcome
from vkdoctor.engine.runner import ProbeContext
from vkdoctor.loader.libcheck import disable_commands
from vkdoctor.loader.search import filter_list, glob_match, parse_version
from vkdoctor.loader.versions import Behaviour, has, reads_variable
from vkdoctor.record import frozen
from vkdoctor.report import shell
from vkdoctor.report.codes import CodeInfo, code_table, make_finding
from vkdoctor.report.model import Finding, Severity
from vkdoctor.report.records import LayerRecord

CODES = code_table(
    [
        CodeInfo(
            "culprit-layer",
            Severity.FAIL,
            "a layer breaks this step",
            "The step succeeds without this layer (an implicit layer disabled with its own "
            "variable, an explicit one taken out of the variable that forces it on) and fails "
            "with it.",
            ("a layer bug (overlays, device_select, capture layers)",),
            "Run without the layer: its disable variable (implicit), or the variable that forces "
            "it on without it (explicit); or update or remove it.",
        ),
        CodeInfo(
            "culprit-driver",
            Severity.FAIL,
            "a driver breaks this step",
            "The step fails, crashes or hangs with this driver alone and no implicit layer.",
            ("a driver bug", "a driver that cannot reach its kernel module"),
            "Disable the driver (VK_LOADER_DRIVERS_DISABLE) or fix or remove it.",
        ),
        CodeInfo(
            "no-single-driver-culprit",
            Severity.INFO,
            "every driver alone fails the same way: the cause is not a driver",
            "Culprit isolation ran the step with each driver alone (every layer off) and each "
            "failed. A driver cannot be the cause when all of them fail; what every instance "
            "shares is: a malformed manifest the loader chokes on, a variable, or the loader.",
            ("a malformed layer or driver manifest (loaders before 1.3.268 fail every instance)",),
            "Fix the malformed manifest or variable named by the other findings; no driver needs "
            "to be disabled.",
        ),
        CodeInfo(
            "bisection-limited",
            Severity.INFO,
            "not every candidate was tried",
            "Culprit isolation tries a bounded number of drivers and layers, and stops at the "
            "run's deadline, so that thousands of manifests cannot exhaust the machine. The "
            "candidates not tried are listed.",
            ("very many driver or layer manifests", "a short --deadline"),
            "Remove the manifests you do not need, or raise --deadline.",
        ),
    ]
)

MAX_CANDIDATES = 16  # drivers (after grouping) and, separately, layers


def max_parallel_children() -> int:
    """Children bisection runs at once: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def active_implicit_layers(ctx: ProbeContext) -> list[LayerRecord]:
    layers = ctx.outcomes.get("layer-enumeration")
    rows = (layers.layers or []) if layers else []
    return [r for r in rows if r.implicit and r.active and r.disable_environment]


# Variables that turn explicit layers on in every process started with them.
LAYER_ENABLE_VARIABLES = ("VK_LOADER_LAYERS_ENABLE", "VK_INSTANCE_LAYERS")


def forced_explicit_layers(ctx: ProbeContext) -> list[LayerRecord]:
    """Explicit layers a variable turns on (VK_LOADER_LAYERS_ENABLE, VK_INSTANCE_LAYERS)."""
    layers = ctx.outcomes.get("layer-enumeration")
    rows = (layers.layers or []) if layers else []
    return [r for r in rows if not r.implicit and r.active and r.name]


def _without_layer(ctx: ProbeContext, row: LayerRecord) -> dict[str, str | None]:
    """The enabling variables with ``row`` taken out (unset when nothing is left): what the
    user would do to run without this one layer."""
    name = row.name or ""
    environ = ctx.env.environ
    changes: dict[str, str | None] = {}
    globs = filter_list(environ.get("VK_LOADER_LAYERS_ENABLE"))
    if any(glob_match(g, name) for g in globs):
        rest = [g for g in globs if not glob_match(g, name)]
        changes["VK_LOADER_LAYERS_ENABLE"] = ",".join(rest) or None
    names = [n for n in (environ.get("VK_INSTANCE_LAYERS") or "").split(":") if n]
    if name in names:
        changes["VK_INSTANCE_LAYERS"] = ":".join(n for n in names if n != name) or None
    return changes


def usable_drivers(ctx: ProbeContext) -> list[str]:
    drivers = ctx.outcomes.get("driver-enumeration")
    rows = (drivers.drivers or []) if drivers else []
    return [r.manifest for r in rows if r.state == "usable" and not r.filtered]


def driver_groups(ctx: ProbeContext) -> dict[str, list[str]]:
    """Usable drivers grouped by the library they load: {first manifest: every manifest}."""
    drivers = ctx.outcomes.get("driver-enumeration")
    rows = (drivers.drivers or []) if drivers else []
    by_library: dict[str, list[str]] = {}
    for row in rows:
        if row.state == "usable" and not row.filtered:
            library = row.real_path or row.resolved or row.manifest
            by_library.setdefault(library, []).append(row.manifest)
    return {manifests[0]: manifests for manifests in by_library.values()}


def candidate_drivers(ctx: ProbeContext) -> list[str]:
    """One manifest per distinct driver library, in search order."""
    return list(driver_groups(ctx))


# Time the candidates get beyond one --timeout: every candidate runs under one deadline, so a
# hanging component costs one timeout here however many candidates queue behind it.
DEADLINE_GRACE_S = 1.0
MIN_JOB_S = 0.5  # a candidate with less time left than this is not started (listed untried)
# A candidate still running after this long is most likely waiting (a hang sleeps in the
# kernel; a healthy candidate takes ~0.2 s): it stops holding a core, so the quick candidates
# queued behind two hangs on a 2-core machine need not wait out their timeout.  At most twice
# the cores' children run at once all the same.
WAITING_AFTER_S = 0.75


def _run_bounded(
    ctx: ProbeContext,
    task: str,
    payload: dict[str, Any],
    jobs: Sequence[Mapping[str, str | None]],
    stop: threading.Event | None = None,
) -> list[ChildOutcome | None]:
    """Run one child per job, at most ``max_parallel_children()`` at a time, all under one
    deadline (one child timeout plus ``DEADLINE_GRACE_S`` from the start).  None for a job not
    started (the run is stopping, ``stop`` is set, or too little time is left), cancelled, or
    cut short by the shared deadline (a hang then is the deadline's, not the candidate's).

    A child running longer than ``WAITING_AFTER_S`` no longer counts against the core bound
    (it waits), up to twice that many children in all."""
    limit = max_parallel_children()
    full = ctx.child_timeout()
    until = time.monotonic() + full + DEADLINE_GRACE_S
    outcomes: list[ChildOutcome | None] = [None] * len(jobs)
    waiting = list(range(len(jobs)))
    running: dict[int, tuple[ChildHandle, float, float]] = {}  # handle, limit, start
    finished: queue.Queue[tuple[int, ChildOutcome]] = queue.Queue()

    def stopping() -> bool:
        return (
            child.stop_reason() is not None
            or (stop is not None and stop.is_set())
            or ctx.remaining_s() == 0.0
        )

    def start(index: int, timeout: float) -> None:
        handle = child.start_child(
            task,
            payload,
            environ=ctx.env.environ,
            timeout=timeout,
            overrides=ctx.child_overrides(jobs[index]),
            pool=ctx.pool,
        )
        running[index] = (handle, timeout, time.monotonic())
        threading.Thread(
            target=lambda: finished.put((index, handle.wait())), name="bisect-wait", daemon=True
        ).start()

    while waiting or running:
        if stopping():
            waiting.clear()
            for handle, _, _ in running.values():
                handle.cancel()
        while waiting and len(running) < 2 * limit and _working(running) < limit:
            left = min(full, until - time.monotonic())
            if left < min(MIN_JOB_S, full):
                waiting.clear()  # the shared deadline: the rest are listed untried
                break
            start(waiting.pop(0), left)
        if not running:
            break
        try:
            index, outcome = finished.get(timeout=0.1)
        except queue.Empty:
            continue
        _, timeout, _ = running.pop(index)
        cut = outcome.state == "timeout" and timeout < full
        if outcome.state != "cancelled" and not cut:
            outcomes[index] = outcome
    return outcomes


@frozen
class SettingsCandidate:
    """A loader settings file (vkconfig's vk_loader_settings.json, loaders from 1.3.251) that
    forces layers on.  VK_LOADER_LAYERS_DISABLE does not turn those off, and loader 1.4.309
    reads $HOME/.local/share/vulkan/loader_settings.d whatever XDG_DATA_HOME says (both measured
    in trixie): the only run without the file is one whose HOME, or the XDG variable that led
    the loader to it, points at a copy of that directory's ``vulkan`` folder without
    ``loader_settings.d`` (links to everything else)."""

    path: str  # the settings file
    layers: tuple[str, ...]  # the layers it forces on ("control": "on")
    base: str  # the directory whose vulkan/ folder is copied ("" when none needs to be)
    variable: str  # XDG_DATA_HOME or XDG_CONFIG_HOME, pointed at the copy ("" when none)
    moves_home: bool  # the file is under $HOME/.local/share: HOME moves to an empty folder
    config_home: str  # XDG_CONFIG_HOME to keep when HOME moves ("" when it is set already)


_SETTINGS_SUFFIX = "/vulkan/loader_settings.d/vk_loader_settings.json"


def settings_candidates(ctx: ProbeContext) -> list[SettingsCandidate]:
    """The settings file in effect, when it forces layers on and lies in a user directory this
    process can steer away from (a system-wide one, in /etc, cannot be: it is not a candidate)."""
    facts = ctx.facts("loader-discovery")
    version = parse_version(facts.get("version") or "")
    files = facts.get("settings_files") or []
    if not files or not has(Behaviour.SETTINGS_FILE, version):
        return []
    path = str(files[0])
    try:
        body = json.loads(ctx.env.path(path).read_text(errors="replace")[:1_000_000])
        entries = (body.get("settings") or {}).get("layers") or []
        layers = tuple(
            str(e["name"])
            for e in entries
            if isinstance(e, dict) and e.get("control") == "on" and e.get("name")
        )
    except (OSError, ValueError, AttributeError, TypeError):
        return []
    if not layers:
        return []
    environ = ctx.env.environ
    home = (environ.get("HOME") or "").rstrip("/")
    data_home = (environ.get("XDG_DATA_HOME") or "").rstrip("/")
    config_home = (environ.get("XDG_CONFIG_HOME") or "").rstrip("/")
    keep_config = "" if config_home else (home and f"{home}/.config")
    if home and path == f"{home}/.local/share{_SETTINGS_SUFFIX}":
        base = f"{home}/.local/share"
        # XDG_DATA_HOME unset means this folder too: it is copied, so its manifests stay found.
        copied = not data_home or data_home == base
        return [
            SettingsCandidate(
                path,
                layers,
                base if copied else "",
                "XDG_DATA_HOME" if copied else "",
                True,
                keep_config,
            )
        ]
    for variable, value in (("XDG_DATA_HOME", data_home), ("XDG_CONFIG_HOME", config_home)):
        if value and path == value + _SETTINGS_SUFFIX:
            return [SettingsCandidate(path, layers, value, variable, False, "")]
    return []


@contextlib.contextmanager
def _without_settings(candidates: list[SettingsCandidate]) -> Iterator[list[dict[str, str]]]:
    """One job per candidate (see SettingsCandidate); the copies are removed afterwards."""
    made: list[str] = []
    jobs: list[dict[str, str]] = []
    try:
        for candidate in candidates:
            mirror = tempfile.mkdtemp(prefix="vkdoctor-no-settings-")
            made.append(mirror)
            job: dict[str, str] = {}
            if candidate.variable:
                vulkan = os.path.join(candidate.base, "vulkan")
                copy = os.path.join(mirror, "data", "vulkan")
                os.makedirs(copy)
                with contextlib.suppress(OSError):
                    for name in os.listdir(vulkan):
                        if name != "loader_settings.d":
                            os.symlink(os.path.join(vulkan, name), os.path.join(copy, name))
                job[candidate.variable] = os.path.join(mirror, "data")
            if candidate.moves_home:
                os.mkdir(os.path.join(mirror, "home"))
                job["HOME"] = os.path.join(mirror, "home")
                if candidate.config_home:
                    job["XDG_CONFIG_HOME"] = candidate.config_home
            jobs.append(job)
        yield jobs
    finally:
        for mirror in made:
            shutil.rmtree(mirror, ignore_errors=True)


def _working(running: Mapping[int, tuple[ChildHandle, float, float]]) -> int:
    """The running children that still count against the core bound (see WAITING_AFTER_S)."""
    now = time.monotonic()
    return sum(1 for _, _, started in running.values() if now - started < WAITING_AFTER_S)


def _disabled(rows: list[LayerRecord]) -> dict[str, str | None]:
    return {k: (v or "1") for r in rows for k, v in r.disable_environment.items()}


def _layer_job(ctx: ProbeContext, row: LayerRecord) -> dict[str, str | None]:
    return _disabled([row]) if row.implicit else _without_layer(ctx, row)


def _no_layers(implicit: list[LayerRecord]) -> dict[str, str | None]:
    """Every implicit layer off and no explicit layer forced on: a driver alone."""
    return {**_disabled(implicit), **dict.fromkeys(LAYER_ENABLE_VARIABLES)}


def _layer_fix(row: LayerRecord, job: Mapping[str, str | None]) -> list[str]:
    """The commands that run without ``row``: its disable variable (implicit) or the enabling
    variables without it (explicit)."""
    if row.implicit:
        variable, value = next(iter(row.disable_environment.items()))
        return [
            shell.export(variable, value or "1"),
            shell.command("sudo", "rm", row.manifest, comment="or update the package that owns it"),
        ]
    return [
        shell.unset(variable) if value is None else shell.export(variable, value)
        for variable, value in job.items()
    ]


def _isolating(
    stage: str, layers: list[LayerRecord], settings: list[SettingsCandidate], drivers: list[str]
) -> str:
    """The status line while culprits are isolated: what is tried, in a few words."""
    parts = [f"{len(layers)} layer{'s' if len(layers) != 1 else ''} off"] if layers else []
    if settings:
        parts.append(f"{len(settings)} settings file{'s' if len(settings) != 1 else ''} off")
    if drivers:
        parts.append(f"{len(drivers)} driver{'s' if len(drivers) != 1 else ''} alone")
    return f"isolating the culprit of {stage}: " + ", ".join(parts or ["nothing to try"])


def _describe(outcome: ChildOutcome) -> str:
    return outcome.describe() if outcome.state != "ok" else "it fails"


def bisect(
    ctx: ProbeContext,
    stage: str,
    task: str,
    payload: dict[str, Any],
    failed: Callable[[ChildOutcome], bool],
    drivers: list[str] | None = None,
    stop: threading.Event | None = None,
) -> list[Finding]:
    settings = settings_candidates(ctx)
    with _without_settings(settings) as settings_jobs:
        return _bisect(ctx, stage, task, payload, failed, drivers, stop, settings, settings_jobs)


def _bisect(
    ctx: ProbeContext,
    stage: str,
    task: str,
    payload: dict[str, Any],
    failed: Callable[[ChildOutcome], bool],
    drivers: list[str] | None,
    stop: threading.Event | None,
    settings: list[SettingsCandidate],
    settings_jobs: list[dict[str, str]],
) -> list[Finding]:
    all_implicit = active_implicit_layers(ctx)
    all_layers = all_implicit + forced_explicit_layers(ctx)
    groups = driver_groups(ctx)
    all_drivers = list(groups) if drivers is None else list(dict.fromkeys(drivers))
    layers, drivers = all_layers[:MAX_CANDIDATES], all_drivers[:MAX_CANDIDATES]
    layer_jobs = [_layer_job(ctx, r) for r in layers]
    jobs: list[Mapping[str, str | None]] = [*layer_jobs, *settings_jobs]
    # "This driver alone" through the override this loader reads: loaders before 1.3.207 ignore
    # VK_DRIVER_FILES and would search everything (Debian 11's 1.2.162, tests/matrix).
    loader_version = parse_version(ctx.facts("loader-discovery").get("version") or "")
    if reads_variable("VK_DRIVER_FILES", loader_version):
        alone = {"VK_ICD_FILENAMES": None}, "VK_DRIVER_FILES"
    else:
        alone = {"VK_DRIVER_FILES": None}, "VK_ICD_FILENAMES"
    # A driver alone: no layer at all, a settings file's forced ones included.
    no_settings = {k: v for job in settings_jobs for k, v in job.items()}
    jobs += [{alone[1]: m, **alone[0], **_no_layers(all_implicit), **no_settings} for m in drivers]
    ctx.say(_isolating(stage, layers, settings, drivers))
    outcomes = _run_bounded(ctx, task, payload, jobs, stop)
    layer_runs = list(zip(layers, layer_jobs, outcomes[: len(layers)], strict=True))
    after_layers = len(layers) + len(settings)
    settings_runs = list(zip(settings, outcomes[len(layers) : after_layers], strict=True))
    driver_runs = list(zip(drivers, outcomes[after_layers:], strict=True))
    untried = [r.manifest for r in all_layers[len(layers) :]]
    untried += [r.manifest for r, _, o in layer_runs if o is None]
    untried += all_drivers[len(drivers) :] + [m for m, o in driver_runs if o is None]
    untried += [c.path for c, o in settings_runs if o is None]
    findings: list[Finding] = []
    for candidate, settings_outcome in settings_runs:
        if settings_outcome is not None and not failed(settings_outcome):
            findings.append(
                make_finding(
                    CODES,
                    "culprit-layer",
                    f"layer {', '.join(candidate.layers)}, forced on by the loader settings file "
                    f"{candidate.path}, breaks {stage}; without the file it works",
                    evidence={
                        "layers": list(candidate.layers),
                        "settings_file": candidate.path,
                        "implicit": False,
                    },
                    commands=[
                        shell.command(
                            "mv",
                            candidate.path,
                            f"{candidate.path}.disabled",
                            comment="vkconfig wrote it; the loader reads only this name",
                        )
                    ],
                )
            )
    for row, job, layer_outcome in layer_runs:
        if layer_outcome is not None and not failed(layer_outcome):
            if row.implicit:
                variable, value = next(iter(row.disable_environment.items()))
                which = f"implicit layer {row.name} from {row.manifest}"
                without = f"with {variable}={value or 1} it works"
            else:
                which = f"explicit layer {row.name} from {row.manifest}, {row.why},"
                without = "without it, it works"
            findings.append(
                make_finding(
                    CODES,
                    "culprit-layer",
                    f"{which} breaks {stage}; {without}",
                    evidence={
                        "layer": row.name,
                        "manifest": row.manifest,
                        "library": row.resolved,
                        "implicit": row.implicit,
                    },
                    commands=_layer_fix(row, job),
                )
            )
    failing = [(m, o) for m, o in driver_runs if o is not None and failed(o)]
    if len(failing) >= 2 and len(failing) == len(driver_runs):
        # All of them: not a driver's fault (a malformed manifest, a variable, the loader).
        findings.append(
            make_finding(
                CODES,
                "no-single-driver-culprit",
                f"each of the {len(failing)} drivers alone fails {stage} the same way, with every "
                "layer off: the cause is not a driver",
                evidence={"drivers": [m for m, _ in failing][:20], "drivers_count": len(failing)},
            )
        )
        failing = []
    for manifest, outcome in failing:
        same_library = groups.get(manifest, [manifest])[1:]
        findings.append(
            make_finding(
                CODES,
                "culprit-driver",
                f"driver {manifest} alone breaks {stage}: {_describe(outcome)}",
                evidence={
                    "manifest": manifest,
                    "state": outcome.state,
                    "signal": outcome.signal,
                    "last_step": outcome.last_crumb,
                    "same_library": same_library[:20],
                    "same_library_count": len(same_library),
                },
                commands=[
                    *disable_commands("driver", manifest, None, loader_version)[:1],
                    shell.command("sudo", "rm", manifest, comment="if you do not need this driver"),
                ],
            )
        )
    if untried:
        findings.append(
            make_finding(
                CODES,
                "bisection-limited",
                f"culprit isolation of {stage} did not try {len(untried)} of "
                f"{len(all_layers) + len(settings) + len(all_drivers)} candidates (at most "
                f"{MAX_CANDIDATES} "
                "drivers and layers each, within the run's deadline)",
                evidence={"untried": untried[:20], "untried_count": len(untried)},
            )
        )
    return findings


class Ahead:
    """Culprit isolation started before the step is known to fail again: the debug re-run of a
    step whose first attempt hung or crashed starts it alongside its own child, so the re-run's
    main child and the candidates wait out one timeout together instead of one after another.

    ``findings()`` waits for it (an exception in it is raised there, so the runner reports it as
    an internal error); ``cancel()`` stops it when the re-run passes after all."""

    def __init__(
        self,
        ctx: ProbeContext,
        stage: str,
        task: str,
        payload: dict[str, Any],
        failed: Callable[[ChildOutcome], bool],
    ) -> None:
        self._stop = threading.Event()
        self._findings: list[Finding] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(ctx, stage, task, payload, failed), name="bisect", daemon=True
        )
        self._thread.start()

    def _run(
        self,
        ctx: ProbeContext,
        stage: str,
        task: str,
        payload: dict[str, Any],
        failed: Callable[[ChildOutcome], bool],
    ) -> None:
        try:
            self._findings = bisect(ctx, stage, task, payload, failed, stop=self._stop)
        except BaseException as exc:  # raised again in findings(), on the probe's thread
            self._error = exc

    def findings(self) -> list[Finding]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._findings

    def cancel(self) -> None:
        self._stop.set()
        self._thread.join()
