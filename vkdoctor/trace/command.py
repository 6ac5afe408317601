"""``vkdoctor trace``: arguments and the report, for the CLI to wire in and render like ``check``.

    vkdoctor trace [--out trace.jsonl] [--timeout S] -- ./app args…
    vkdoctor trace --pid PID [--duration S]

The report has one probe, ``trace``: its findings are the diagnoses, its facts the timeline
summary (libraries, instances, devices, the program's exit status, what was invisible).
"""

from __future__ import annotations

import argparse
import datetime
import glob
import re
import shlex
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vkdoctor import __version__, argtypes
from vkdoctor.engine.env import Env
from vkdoctor.report.codes import CodeInfo, code_table, make_finding
from vkdoctor.report.model import Finding, ProbeResult, Report, Severity, status_from_findings
from vkdoctor.trace.analysis import (
    TraceContext,
    analyze,
    driver_paths_from_manifests,
)
from vkdoctor.trace.launch import (
    OUTPUT_CAPTURE,
    OUTPUT_DISCARD,
    OUTPUT_INHERIT,
    OUTPUT_MODES,
    OUTPUT_STDERR,
)
from vkdoctor.trace.native_paths import NativeLibrary
from vkdoctor.trace.poll import POLL_BLIND_SPOTS
from vkdoctor.trace.session import (
    DEFAULT_MAX_BYTES,
    DEFAULT_POLL_INTERVAL,
    TraceOptions,
    TraceRun,
    trace_pid,
    trace_program,
)

# Signals an interrupted trace's program dies from because vkdoctor (or the terminal) stopped
# it: SIGINT from Ctrl-C or passed on by vkdoctor, SIGKILL when it ignored that.
_INTERRUPT_SIGNALS = frozenset({"SIGINT", "SIGTERM", "SIGHUP", "SIGKILL"})

# Findings about the run itself (bad input, what could not be traced); the diagnoses of the
# program's behaviour are declared with the analysis.
CODES = code_table(
    [
        CodeInfo(
            "program-not-found",
            Severity.FAIL,
            "Program not found",
            "The program to trace does not exist or is not in PATH.",
            (),
            "Check the path, or give it as ./program.",
        ),
        CodeInfo(
            "program-not-executable",
            Severity.FAIL,
            "Program not executable",
            "The program exists but cannot be executed (no execute permission, or a directory).",
            (),
            "chmod +x the program, or run it through its interpreter.",
        ),
        CodeInfo(
            "program-launch-failed",
            Severity.FAIL,
            "Program could not be started",
            "exec() of the program failed.",
            ("not a valid executable for this machine", "missing interpreter in the #! line"),
            "Check that the program runs on its own.",
        ),
        CodeInfo(
            "trace-nothing-to-trace",
            Severity.FAIL,
            "Nothing to trace",
            "vkdoctor trace needs a program to run (after --) or --pid of a running process.",
            (),
            "vkdoctor trace -- ./app args…   or   vkdoctor trace --pid PID",
        ),
        CodeInfo(
            "trace-setup-failed",
            Severity.FAIL,
            "The trace could not be set up",
            "The trace file could not be created.",
            (),
            "Choose a writable --out path.",
        ),
        CodeInfo(
            "process-not-found",
            Severity.FAIL,
            "No such process",
            "The process given with --pid does not exist.",
            (),
            "Check the pid (pgrep -a app).",
        ),
        CodeInfo(
            "process-not-accessible",
            Severity.FAIL,
            "Process not accessible",
            "/proc/PID/maps of the process cannot be read: it belongs to another user or "
            "ptrace access is restricted.",
            (),
            "Run vkdoctor as the same user as the process, or as root.",
        ),
        CodeInfo(
            "trace-interrupted",
            Severity.INFO,
            "The trace was interrupted",
            "vkdoctor was interrupted (Ctrl-C, SIGTERM, SIGHUP) while the program ran; the "
            "program got SIGINT too and its death from it is not a crash. The report holds "
            "what happened until then.",
            (),
            "Let the program finish, or trace a shorter run of it.",
        ),
        CodeInfo(
            "trace-native-missing",
            Severity.WARN,
            "Native tracing parts missing",
            "The LD_AUDIT module and/or the trace layer are not available, so vkdoctor falls back "
            "to polling /proc/PID/maps and some problems cannot be seen.",
            ("vkdoctor was installed without a C compiler",),
            "Reinstall vkdoctor with gcc available (pip install --force-reinstall vkdoctor).",
        ),
        CodeInfo(
            "trace-attach-limited",
            Severity.INFO,
            "Attached to a running process: libraries only",
            "A running process cannot be given LD_AUDIT or a layer; only its mapped libraries "
            "are observed, by polling.",
            (),
            "Start the program under vkdoctor trace -- ./app for the full picture.",
        ),
        CodeInfo(
            "trace-audit-inactive",
            Severity.WARN,
            "LD_AUDIT was ignored by the program",
            "The audit module was set but recorded nothing from the program: it is statically "
            "linked, runs with elevated privileges (setuid/setgid/capabilities ignore LD_AUDIT), "
            "or clears its environment.",
            (),
            "Trace a dynamically linked, unprivileged build of the program.",
        ),
        CodeInfo(
            "trace-layer-inactive",
            Severity.WARN,
            "The trace layer was not loaded",
            "The program used Vulkan but VK_LAYER_VKDOCTOR_trace never loaded, so instance and "
            "device lifetimes are invisible (destroy order, leaks, unload with live objects).",
            (
                "a loader too old for VK_ADD_LAYER_PATH",
                "the program clears its environment",
                "elevated privileges (the loader ignores layer paths)",
            ),
            "Run an unprivileged program with a loader of 1.3.207 or later.",
        ),
        CodeInfo(
            "trace-truncated",
            Severity.WARN,
            "Trace cut at its size bound",
            "The event file reached its size bound; later events were dropped and the analysis "
            "only covers the beginning of the run.",
            (),
            "Raise --max-bytes.",
        ),
    ]
)

PROBE_ID = "trace"

# What each missing native part hides.
AUDIT_BLIND_SPOTS = POLL_BLIND_SPOTS
LAYER_BLIND_SPOTS = (
    "VkInstance / VkDevice lifetimes: destroy order, leaks at exit, use after destroy, "
    "unload while objects are alive, fork with live objects",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        metavar="FILE",
        type=Path,
        help="keep the raw event trace (JSON lines) in FILE",
    )
    parser.add_argument(
        "--pid",
        type=argtypes.pid,
        metavar="PID",
        help="watch a running process instead (libraries only, by polling /proc/PID/maps)",
    )
    # The whole traced run: --deadline as everywhere (--timeout, its old name, is hidden).
    for name, text in (
        ("--deadline", "kill the program after S seconds (reported as a timeout)"),
        ("--timeout", argparse.SUPPRESS),
    ):
        parser.add_argument(
            name,
            dest="timeout",
            type=argtypes.seconds(*argtypes.DURATION_RANGE),
            metavar="S",
            help=text,
        )
    parser.add_argument(
        "--duration",
        type=argtypes.seconds(*argtypes.DURATION_RANGE),
        metavar="S",
        help="with --pid: stop watching after S seconds (default: until it exits or Ctrl-C)",
    )
    parser.add_argument(
        "--max-bytes",
        type=int,
        default=DEFAULT_MAX_BYTES,
        metavar="N",
        help="size bound of the event trace (default: %(default)s)",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=DEFAULT_POLL_INTERVAL,
        metavar="S",
        help="seconds between /proc/PID/maps polls in fallback mode (default: %(default)s)",
    )
    parser.add_argument(
        "--no-native",
        action="store_true",
        help="do not use the LD_AUDIT module and the layer (what an install without a C "
        "compiler sees)",
    )
    parser.add_argument(
        "--program-output",
        choices=("auto", *OUTPUT_MODES),
        default="auto",
        help="where the program's stdout/stderr go; auto sends its stdout to stderr when the "
        "report itself is printed as JSON or Markdown",
    )
    # dest "program", not "command": the CLI's subparsers already use args.command.
    parser.add_argument(
        "program",
        nargs=argparse.REMAINDER,
        metavar="-- PROGRAM [ARGS...]",
        help="the program to run and trace",
    )


def _command(args: argparse.Namespace) -> list[str]:
    command = list(getattr(args, "program", None) or [])
    if command and command[0] == "--":
        command = command[1:]
    return command


def _output_mode(args: argparse.Namespace) -> str:
    mode = getattr(args, "program_output", "auto") or "auto"
    if mode != "auto":
        return mode
    # A report printed on stdout ("--json -") must stay parseable.
    if getattr(args, "json", None) in ("-", True) or getattr(args, "markdown", None) in ("-", True):
        return OUTPUT_STDERR
    if str(getattr(args, "format", "") or "") in ("json", "markdown", "md"):
        return OUTPUT_STDERR
    if getattr(args, "quiet", False):
        return OUTPUT_DISCARD
    return OUTPUT_INHERIT


def _options(args: argparse.Namespace) -> TraceOptions:
    max_bytes = getattr(args, "max_bytes", DEFAULT_MAX_BYTES) or DEFAULT_MAX_BYTES
    interval = getattr(args, "poll_interval", DEFAULT_POLL_INTERVAL) or DEFAULT_POLL_INTERVAL
    timeout = getattr(args, "timeout", None)
    duration = getattr(args, "duration", None)
    return TraceOptions(
        out=getattr(args, "out", None),
        max_bytes=max(4096, int(max_bytes)),
        timeout=timeout if timeout and timeout > 0 else None,
        poll_interval=max(0.001, float(interval)),
        use_native=not getattr(args, "no_native", False),
        output=_output_mode(args),
        duration=duration if duration and duration > 0 else None,
    )


def _icd_manifests(env: Env) -> list[str]:
    """Driver manifests the loader would read (default dirs and the override variables)."""
    files: list[str] = []
    override = env.get_nonempty("VK_DRIVER_FILES") or env.get_nonempty("VK_ICD_FILENAMES")
    entries = override.split(":") if override else []
    if not override:
        dirs = [env.get_nonempty("XDG_CONFIG_HOME") or f"{env.home() or '/root'}/.config"]
        dirs += (env.get_nonempty("XDG_CONFIG_DIRS") or "/etc/xdg").split(":")
        dirs += [
            "/etc",
            env.get_nonempty("XDG_DATA_HOME") or f"{env.home() or '/root'}/.local/share",
        ]
        dirs += (env.get_nonempty("XDG_DATA_DIRS") or "/usr/local/share:/usr/share").split(":")
        entries = [f"{d}/vulkan/icd.d" for d in dirs if d]
    for entry in entries:
        actual = env.path(entry)
        if actual.is_dir():
            files.extend(sorted(glob.glob(str(actual / "*.json"))))
        elif actual.is_file():
            files.append(str(actual))
    return files


def _native_finding(run: TraceRun) -> Finding | None:
    missing: list[NativeLibrary] = [lib for lib in (run.audit, run.layer) if not lib.available]
    if not missing:
        return None
    invisible: list[str] = []
    if not run.audit.available:
        invisible.extend(AUDIT_BLIND_SPOTS)
    if not run.layer.available:
        invisible.extend(LAYER_BLIND_SPOTS)
    parts = " and ".join(
        "the LD_AUDIT module" if lib is run.audit else "the trace layer" for lib in missing
    )
    fallback = "polling /proc/PID/maps" if not run.audit.available else "the audit module alone"
    return make_finding(
        CODES,
        "trace-native-missing",
        f"{parts} {'is' if len(missing) == 1 else 'are'} not available; traced with {fallback}. "
        f"Not visible: {'; '.join(invisible)}",
        evidence={
            "missing": [lib.to_dict() for lib in missing],
            "invisible": invisible,
            "mode": run.mode,
        },
    )


def _vulkan_used(run: TraceRun) -> bool:
    for event in run.trace:
        if event.ev == "bind" and str(event.get("sym", "")).startswith(
            ("vkCreateInstance", "vk_icd")
        ):
            return True
        if event.ev == "gipa" and event.get("name") == "vkCreateInstance":
            return True
    return False


def _setup_findings(run: TraceRun) -> list[Finding]:
    findings: list[Finding] = []
    outcome = run.outcome
    if run.attached is not None:
        findings.append(
            make_finding(
                CODES,
                "trace-attach-limited",
                f"attached to running process {run.attached.pid}: only its mapped libraries "
                f"were watched ({run.attached.polls} polls). Not visible: "
                f"{'; '.join(POLL_BLIND_SPOTS)}; {LAYER_BLIND_SPOTS[0]}",
                evidence={"invisible": [*POLL_BLIND_SPOTS, *LAYER_BLIND_SPOTS]},
            )
        )
        return findings
    native = _native_finding(run)
    if native is not None:
        findings.append(native)
    if outcome is None or not outcome.started:
        return findings
    pids_with_audit = {e.pid for e in run.trace if e.src == "audit"}
    if run.audit.available and outcome.pid not in pids_with_audit:
        findings.append(
            make_finding(
                CODES,
                "trace-audit-inactive",
                f"the LD_AUDIT module recorded nothing from {Path(outcome.argv[0]).name} "
                f"(pid {outcome.pid}): library lifetimes, bindings and crash addresses are "
                "invisible",
                evidence={"pid": outcome.pid, "audit": str(run.audit.path)},
            )
        )
    layer_events = any(e.src == "layer" for e in run.trace)
    if run.layer.available and not layer_events and _vulkan_used(run):
        findings.append(
            make_finding(
                CODES,
                "trace-layer-inactive",
                "the program used Vulkan but VK_LAYER_VKDOCTOR_trace was never loaded: "
                + LAYER_BLIND_SPOTS[0]
                + " are invisible",
                evidence={"layer": str(run.layer.path)},
            )
        )
    return findings


def _error_findings(run: TraceRun) -> list[Finding]:
    if run.setup_error:
        return [make_finding(CODES, "trace-setup-failed", run.setup_error)]
    if run.attached is not None and run.attached.error:
        code = (
            "process-not-found" if run.attached.error == "not-found" else "process-not-accessible"
        )
        return [
            make_finding(
                CODES,
                code,
                f"process {run.attached.pid}: "
                + (
                    "no such process"
                    if code == "process-not-found"
                    else f"/proc/{run.attached.pid}/maps cannot be read"
                ),
                evidence={"pid": run.attached.pid},
            )
        ]
    outcome = run.outcome
    if outcome is not None and not outcome.started:
        code = outcome.error_code or "program-launch-failed"
        return [
            make_finding(
                CODES,
                code,
                outcome.error or "the program could not be started",
                evidence={"argv": list(outcome.argv)},
            )
        ]
    return []


def _title(args_command: list[str], pid: int | None) -> str:
    if pid is not None:
        return f"Trace of process {pid}"
    if args_command:
        return "Trace of " + " ".join(args_command)[:120]
    return "Trace"


def build_report(args: argparse.Namespace, env: Env) -> Report:
    started = time.monotonic()
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    command = _command(args)
    pid = getattr(args, "pid", None)
    options = _options(args)
    findings: list[Finding] = []
    facts: dict[str, Any] = {}

    if pid is None and not command:
        findings.append(
            make_finding(
                CODES,
                "trace-nothing-to-trace",
                "no program given: vkdoctor trace -- ./app args…, or --pid PID",
            )
        )
        run = None
    elif pid is not None and command:
        findings.append(
            make_finding(
                CODES,
                "trace-nothing-to-trace",
                "give either a program (after --) or --pid, not both",
            )
        )
        run = None
    elif pid is not None:
        run = trace_pid(pid, env.procfs, options)
    else:
        run = trace_program(command, env.environ, env.procfs, options)

    if run is not None:
        errors = _error_findings(run)
        findings.extend(errors)
        if not errors:
            ctx = TraceContext(
                mode=run.mode,
                main_pid=run.main_pid,
                outcome=run.outcome,
                audit_expected=run.audit.available,
                layer_expected=run.layer.available,
                driver_paths=driver_paths_from_manifests(_icd_manifests(env)),
                own_layer=str(run.layer.path) if run.layer.path else None,
                attached=run.attached is not None,
            )
            analysis = analyze(run.trace, ctx)
            findings.extend(_setup_findings(run))
            findings.extend(analysis.findings)
            facts.update(analysis.facts)
            if run.trace.truncated:
                findings.append(
                    make_finding(
                        CODES,
                        "trace-truncated",
                        f"the event trace reached its bound of {options.max_bytes} bytes; later "
                        "events were dropped",
                        evidence={"max_bytes": options.max_bytes},
                    )
                )
        facts = {**_run_facts(run, options), **facts}

    if run is not None and run.outcome is not None and run.outcome.interrupted:
        findings = _interrupted_findings(findings, run.outcome.signal_name)
    findings.sort(key=lambda f: -f.severity.rank)
    probe = ProbeResult(
        id=PROBE_ID,
        title=_title(command, pid),
        status=status_from_findings(findings),
        duration_s=time.monotonic() - started,
        findings=findings,
        facts=facts,
    )
    report = Report(
        tool_version=__version__,
        created=created,
        environment=recorded_environment(env.environ),
        probes=[probe],
    )
    if getattr(args, "redact", None) and command:
        report = _without_argv_secrets(report, command)
    from vkdoctor.diagnosis.remedies import Machine
    from vkdoctor.diagnosis.run import diagnose_trace

    return diagnose_trace(report, Machine.of(env))


def _interrupted_findings(findings: list[Finding], signal_name: str | None) -> list[Finding]:
    """An interrupted program's death from SIGINT/SIGKILL is ours, not a crash."""
    kept = [
        f
        for f in findings
        if not (
            f.code == "program-crashed"
            and str((f.evidence or {}).get("signal") or signal_name) in _INTERRUPT_SIGNALS
        )
    ]
    kept.append(
        make_finding(
            CODES,
            "trace-interrupted",
            "vkdoctor was interrupted while the program ran"
            + (f"; the program ended with {signal_name}" if signal_name else ""),
            evidence={"signal": signal_name},
        )
    )
    return kept


# -- what a trace report may keep of the command line and the environment --

_TRACE_PREFIXES = ("VK_", "LD_", "VKDOCTOR_")
# Short options whose attached value is a password by convention (mysql -pSECRET, sshpass -p).
_SHORT_PASSWORD_OPTIONS = ("-p",)


def recorded_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """The allow-listed variables with their (scrubbed) values, and only the names of the other
    Vulkan, linker and vkdoctor variables: their values can be anything, tokens included."""
    from vkdoctor.loader.search import RECORDED_NAMES
    from vkdoctor.report.redact import record_value

    kept = {
        name: record_value(name, value)
        for name, value in sorted(environ.items())
        if name in RECORDED_NAMES and name.startswith(_TRACE_PREFIXES)
    }
    others = sorted(n for n in environ if n.startswith(_TRACE_PREFIXES) and n not in kept)
    return {"vulkan_environment": kept, "other_variables": others}


def redact_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` with the values of credential-like options replaced: ``--password X``,
    ``--token=X``, ``-pX``, ``PASSWORD=X``.  The program and other arguments stay."""
    from vkdoctor.report.redact import REDACTED, looks_secret_name

    out: list[str] = []
    hide_next = False
    for index, arg in enumerate(argv):
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        if index == 0:
            out.append(arg)
            continue
        name, equals, _value = arg.partition("=")
        option = re.fullmatch(r"--?([A-Za-z][\w.-]*)", name)
        if equals and looks_secret_name(name.lstrip("-")):
            out.append(f"{name}={REDACTED}")
        elif option and not equals and arg.startswith("--") and looks_secret_name(option[1]):
            out.append(arg)
            hide_next = True  # --password X
        elif any(arg.startswith(o) and len(arg) > len(o) for o in _SHORT_PASSWORD_OPTIONS):
            out.append(arg[:2] + REDACTED)
        else:
            out.append(arg)
    return out


def _without_argv_secrets(report: Report, argv: Sequence[str]) -> Report:
    """Replace the hidden argument values wherever the report quotes the command line: argv
    lists, the title, evidence and commands (a crash's ``gdb --args ...``)."""
    redacted = redact_argv(argv)
    if redacted == list(argv):
        return report
    original_line, redacted_line = " ".join(argv), " ".join(redacted)
    tokens = [
        (re.compile(rf"(?<!\S){re.escape(a)}(?!\S)"), b)
        for a, b in zip(argv, redacted, strict=True)
        if a != b and a
    ]

    def text(value: str) -> str:
        # Commands quote argv word by word (shell.command): replace that form first.
        value = value.replace(shlex.join(argv), shlex.join(redacted))
        value = value.replace(original_line, redacted_line)
        for pattern, replacement in tokens:
            value = pattern.sub(lambda _m, r=replacement: r, value)
        return value

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return text(node)
        if isinstance(node, list):
            if node == list(argv):
                return list(redacted)
            return [walk(item) for item in node]
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        return node

    return Report.from_dict(walk(report.to_dict()))


def _run_facts(run: TraceRun, options: TraceOptions) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "mode": run.mode,
        "native": {"audit": run.audit.to_dict(), "layer": run.layer.to_dict()},
        "trace_file": str(run.trace_file) if run.trace_file else None,
        "max_bytes": options.max_bytes,
        "truncated": run.trace.truncated,
        "malformed_lines": run.trace.malformed,
    }
    if run.outcome is not None:
        outcome = run.outcome
        facts["program"] = {
            "argv": list(outcome.argv),
            "executable": outcome.resolved,
            "pid": outcome.pid,
            "exit": outcome.status_dict(),
            "duration_s": round(outcome.duration_s, 3),
        }
        if options.output == OUTPUT_CAPTURE:
            # --program-output capture: the tail of each stream, bounded by the launcher.
            facts["program"]["output"] = {"stdout": outcome.stdout, "stderr": outcome.stderr}
    if run.attached is not None:
        attached = run.attached
        facts["program"] = {
            "pid": attached.pid,
            "executable": attached.exe,
            "argv": list(attached.cmdline),
            "exit": {"state": "exited" if attached.exited else "running"},
            "watched_s": round(attached.duration_s, 3),
            "polls": attached.polls,
        }
    if run.notes:
        facts["notes"] = list(run.notes)
    return facts
