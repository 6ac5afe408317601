"""One tracing session: prepare the trace file and the environment, run or watch the program,
read the events back.

Modes (what could be injected decides what can be seen):
  ``audit+layer``  both native parts: full picture
  ``audit``        no layer library: library lifetimes and proc-address queries, no object lifetimes
  ``layer+poll``   no audit module: object lifetimes from the layer, libraries from /proc polling
  ``poll``         neither: libraries from /proc polling only
  ``attach``       ``--pid``: a process we did not start; /proc polling only
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import field
from pathlib import Path
from typing import Any

from vkdoctor import __version__
from vkdoctor.record import frozen, mutable
from vkdoctor.trace.events import ParsedTrace, append_event, read_trace
from vkdoctor.trace.launch import OUTPUT_INHERIT, ProgramOutcome, run_program
from vkdoctor.trace.manifest import (
    MAX_BYTES_ENV,
    TRACE_FILE_ENV,
    audit_environment,
    layer_environment,
    loader_version,
    write_layer_manifest,
)
from vkdoctor.trace.native_paths import NativeLibrary, audit_library, layer_library
from vkdoctor.trace.poll import AttachOutcome, MapsPoller, attach

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_POLL_INTERVAL = 0.02


@frozen
class TraceOptions:
    out: Path | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    timeout: float | None = None
    poll_interval: float = DEFAULT_POLL_INTERVAL
    use_native: bool = True  # False: behave as if the native parts were not built
    output: str = OUTPUT_INHERIT
    duration: float | None = None  # --pid: how long to watch


@mutable
class TraceRun:
    mode: str
    trace: ParsedTrace
    audit: NativeLibrary
    layer: NativeLibrary
    trace_file: Path | None  # kept only when --out was given
    outcome: ProgramOutcome | None = None
    attached: AttachOutcome | None = None
    setup_error: str | None = None  # e.g. the --out file cannot be written
    notes: list[str] = field(default_factory=list)

    @property
    def main_pid(self) -> int | None:
        if self.outcome is not None:
            return self.outcome.pid
        if self.attached is not None:
            return self.attached.pid
        return None


def _disabled(name: str) -> NativeLibrary:
    return NativeLibrary(name, None, "disabled with --no-native")


def _open_trace_file(options: TraceOptions) -> tuple[Path, Path | None, str | None]:
    """(path to write, temp dir to remove, error)."""
    if options.out is not None:
        path = options.out.expanduser().absolute()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _create_private(path)
        except OSError as exc:
            return path, None, f"cannot write the trace file {path}: {exc.strerror or exc}"
        return path, None, None
    tmpdir = Path(tempfile.mkdtemp(prefix="vkdoctor-trace-"))
    path = tmpdir / "trace.jsonl"
    _create_private(path)
    return path, tmpdir, None


def _create_private(path: Path) -> None:
    """Create or truncate the raw trace, readable by its owner only: it keeps every argument
    and variable value verbatim.  Truncate, because the native writers append and a stale trace
    would be analysed too.  A FIFO or device named by --out is written, never re-moded."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid() and info.st_mode & 0o077:
            os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    finally:
        os.close(fd)


def _cleanup(tmpdir: Path | None) -> None:
    if tmpdir is not None:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _emitter(path: Path, max_bytes: int):
    """Appends poller/tracer lines under the same size bound as the native writers."""
    full = False

    def emit(event: Mapping[str, Any]) -> None:
        nonlocal full
        if full:
            return
        try:
            size = path.stat().st_size if path.exists() else 0
            if size > max_bytes:
                full = True
                append_event(path, {"ev": "truncated", "src": "poll"})
                return
            append_event(path, event)
        except OSError:
            full = True

    return emit


def trace_program(
    argv: Sequence[str], base_environ: Mapping[str, str], procfs: Path, options: TraceOptions
) -> TraceRun:
    audit = audit_library(base_environ) if options.use_native else _disabled("audit")
    layer = layer_library(base_environ) if options.use_native else _disabled("layer")
    trace_path, tmpdir, error = _open_trace_file(options)
    if error is not None:
        return TraceRun("none", ParsedTrace(()), audit, layer, None, setup_error=error)
    manifest_dir = None
    try:
        environ = dict(base_environ)
        environ[TRACE_FILE_ENV] = str(trace_path)
        environ[MAX_BYTES_ENV] = str(options.max_bytes)
        if layer.path is not None:
            manifest_dir = Path(tempfile.mkdtemp(prefix="vkdoctor-layer-"))
            write_layer_manifest(manifest_dir, layer.path)
            environ.update(
                layer_environment(base_environ, manifest_dir, loader_version(base_environ))
            )
        if audit.path is not None:
            environ.update(audit_environment(base_environ, audit.path))
        if audit.path is not None:
            mode = "audit+layer" if layer.path is not None else "audit"
        else:
            mode = "layer+poll" if layer.path is not None else "poll"

        emit = _emitter(trace_path, options.max_bytes)
        emit(
            {
                "ev": "trace_start",
                "src": "vkdoctor",
                "version": __version__,
                "argv": list(argv),
                "mode": mode,
                "t": time.monotonic_ns(),
            }
        )
        poller: MapsPoller | None = None  # /proc maps polling, only without the audit module

        def on_start(pid: int) -> None:
            nonlocal poller
            if audit.path is None:
                poller = MapsPoller(pid, procfs, emit)
                poller.poll(initial=True)

        def tick(pid: int) -> bool:
            return poller.poll() if poller is not None else True

        outcome = run_program(
            argv,
            environ,
            timeout=options.timeout,
            output=options.output,
            tick=tick if audit.path is None else None,
            tick_interval=options.poll_interval,
            on_start=on_start,
        )
        if poller is not None:
            poller.finish(exited=True)  # run_program returns once the program has ended
        emit(
            {
                "ev": "trace_end",
                "src": "vkdoctor",
                "pid": outcome.pid,
                "t": time.monotonic_ns(),
                "status": outcome.status_dict(),
            }
        )
        trace = read_trace(trace_path)
        notes = []
        if audit.path is None and poller is not None:
            notes.append(f"{poller.polls} polls of /proc/{outcome.pid}/maps")
        return TraceRun(
            mode,
            trace,
            audit,
            layer,
            trace_path if options.out is not None else None,
            outcome=outcome,
            notes=notes,
        )
    finally:
        if manifest_dir is not None:
            _cleanup(manifest_dir)
        _cleanup(tmpdir)


def trace_pid(pid: int, procfs: Path, options: TraceOptions) -> TraceRun:
    none = NativeLibrary("audit", None, "a running process cannot be given LD_AUDIT")
    no_layer = NativeLibrary("layer", None, "a running process cannot be given a layer")
    trace_path, tmpdir, error = _open_trace_file(options)
    if error is not None:
        return TraceRun("attach", ParsedTrace(()), none, no_layer, None, setup_error=error)
    try:
        emit = _emitter(trace_path, options.max_bytes)
        emit(
            {
                "ev": "trace_start",
                "src": "vkdoctor",
                "version": __version__,
                "attach": pid,
                "mode": "attach",
                "t": time.monotonic_ns(),
            }
        )
        attached = attach(
            pid, procfs, emit, duration=options.duration, interval=options.poll_interval
        )
        emit(
            {
                "ev": "trace_end",
                "src": "vkdoctor",
                "pid": pid,
                "t": time.monotonic_ns(),
                "status": {"state": "exited" if attached.exited else "running"},
            }
        )
        trace = read_trace(trace_path)
        return TraceRun(
            "attach",
            trace,
            none,
            no_layer,
            trace_path if options.out is not None else None,
            attached=attached,
        )
    finally:
        _cleanup(tmpdir)
