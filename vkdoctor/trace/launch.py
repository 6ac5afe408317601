"""Starting the traced program and waiting for it, without ever raising for bad input.

The program runs in our process group (so Ctrl-C at the terminal reaches it, as it would without
vkdoctor) with its stdin inherited; its exit status is reported as data: an exit code, the signal
that killed it, a timeout, or why it could not start at all.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

import psutil

from vkdoctor.record import frozen

# What the program's stdout/stderr become.
OUTPUT_INHERIT = "inherit"
OUTPUT_STDERR = "stderr"  # program stdout goes to our stderr: keeps a JSON report on stdout clean
OUTPUT_DISCARD = "discard"
OUTPUT_CAPTURE = "capture"  # tests: the tail of both streams is kept in the outcome
OUTPUT_MODES = (OUTPUT_INHERIT, OUTPUT_STDERR, OUTPUT_DISCARD, OUTPUT_CAPTURE)

_CAPTURE_LIMIT = 64 * 1024
_INTERRUPT_GRACE_S = 5.0
_FORWARD_AFTER_S = 0.3  # a program that got the terminal's SIGINT has usually exited by then


@frozen
class ProgramOutcome:
    argv: tuple[str, ...]
    started: bool
    resolved: str | None = None  # the executable actually run
    pid: int | None = None
    returncode: int | None = None  # as subprocess reports it: negative for a signal
    timed_out: bool = False
    interrupted: bool = False
    duration_s: float = 0.0
    error_code: str | None = None  # program-not-found | program-not-executable | ...
    error: str | None = None
    stdout: str = ""
    stderr: str = ""

    @property
    def signal_number(self) -> int | None:
        if self.returncode is not None and self.returncode < 0:
            return -self.returncode
        return None

    @property
    def signal_name(self) -> str | None:
        return signal_name(self.signal_number) if self.signal_number else None

    @property
    def exited_normally(self) -> bool:
        """Ran to completion and exited (any code): its exit handlers and destructors ran."""
        return (
            self.started
            and self.returncode is not None
            and self.returncode >= 0
            and not self.timed_out
        )

    def status_dict(self) -> dict[str, Any]:
        status: dict[str, Any]
        if not self.started:
            status = {"state": "not-started", "error": self.error}
        elif self.timed_out:
            status = {"state": "timeout", "killed_with": self.signal_name}
        elif self.signal_number:
            status = {"state": "signal", "signal": self.signal_name, "signum": self.signal_number}
        elif self.returncode is not None:
            status = {"state": "exited", "code": self.returncode}
        else:
            status = {"state": "unknown"}
        if self.interrupted:
            status["interrupted"] = True
        return status


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def resolve_program(argv0: str, environ: Mapping[str, str]) -> tuple[str | None, str | None, str]:
    """Find the executable like execvp would: (path, error code, message)."""
    if not argv0:
        return None, "program-not-found", "no program was given"
    if "/" in argv0:
        if not os.path.exists(argv0):
            return None, "program-not-found", f"{argv0}: no such file"
        if os.path.isdir(argv0):
            return None, "program-not-executable", f"{argv0} is a directory"
        if not os.access(argv0, os.X_OK):
            return None, "program-not-executable", f"{argv0} is not executable (chmod +x?)"
        return argv0, None, ""
    found = shutil.which(argv0, path=environ.get("PATH", os.defpath))
    if found is None:
        return None, "program-not-found", f"{argv0}: not found in PATH"
    return found, None, ""


def _kill_tree(pid: int) -> None:
    try:
        parent = psutil.Process(pid)
        victims = [*parent.children(recursive=True), parent]
    except psutil.Error:
        return
    for proc in victims:
        with contextlib.suppress(psutil.Error):
            proc.kill()


def _tail(stream: IO[bytes] | None) -> str:
    if stream is None:
        return ""
    try:
        stream.seek(0, os.SEEK_END)
        size = stream.tell()
        stream.seek(max(0, size - _CAPTURE_LIMIT))
        return stream.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def run_program(
    argv: Sequence[str],
    environ: Mapping[str, str],
    *,
    timeout: float | None = None,
    output: str = OUTPUT_INHERIT,
    tick: Callable[[int], bool] | None = None,
    tick_interval: float = 0.02,
    on_start: Callable[[int], None] | None = None,
) -> ProgramOutcome:
    """Run ``argv`` to completion.

    ``tick(pid)`` is called every ``tick_interval`` seconds while it runs (the maps poller);
    ``on_start(pid)`` right after the process exists (for the first snapshot).
    """
    argv = tuple(argv)
    resolved, code, message = resolve_program(argv[0] if argv else "", environ)
    if resolved is None:
        return ProgramOutcome(argv, False, error_code=code, error=message)

    with contextlib.ExitStack() as stack:
        stdout: Any = None
        stderr: Any = None
        if output == OUTPUT_STDERR:
            stdout = 2
        elif output == OUTPUT_DISCARD:
            stdout = stderr = subprocess.DEVNULL
        elif output == OUTPUT_CAPTURE:
            stdout = stack.enter_context(tempfile.TemporaryFile())
            stderr = stack.enter_context(tempfile.TemporaryFile())
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                [resolved, *argv[1:]],
                executable=resolved,
                env=dict(environ),
                stdout=stdout,
                stderr=stderr,
                close_fds=True,
            )
        except PermissionError as exc:
            return ProgramOutcome(
                argv,
                False,
                resolved,
                error_code="program-not-executable",
                error=f"{resolved}: {exc.strerror or exc}",
            )
        except OSError as exc:
            return ProgramOutcome(
                argv,
                False,
                resolved,
                error_code="program-launch-failed",
                error=f"{resolved}: {exc.strerror or exc}",
            )
        if on_start is not None:
            on_start(proc.pid)
        timed_out, interrupted = _wait(proc, timeout, started, tick, tick_interval)
        duration = time.monotonic() - started
        captured = output == OUTPUT_CAPTURE
        out_text = _tail(stdout) if captured else ""
        err_text = _tail(stderr) if captured else ""
    return ProgramOutcome(
        argv,
        True,
        resolved,
        proc.pid,
        proc.returncode,
        timed_out=timed_out,
        interrupted=interrupted,
        duration_s=duration,
        stdout=out_text,
        stderr=err_text,
    )


def _wait(
    proc: subprocess.Popen[bytes],
    timeout: float | None,
    started: float,
    tick: Callable[[int], bool] | None,
    tick_interval: float,
) -> tuple[bool, bool]:
    """Wait for the program, ticking the poller; returns (timed out, interrupted)."""
    deadline = None if timeout is None else started + timeout
    while True:
        try:
            wait_for = tick_interval if tick is not None else None
            if deadline is not None:
                left = max(0.0, deadline - time.monotonic())
                wait_for = left if wait_for is None else min(wait_for, left)
            proc.wait(timeout=wait_for)
            return False, False
        except subprocess.TimeoutExpired:
            if deadline is not None and time.monotonic() >= deadline:
                _kill_tree(proc.pid)
                proc.wait()
                return True, False
            if tick is not None:
                tick(proc.pid)
        except KeyboardInterrupt:
            _stop_program(proc)
            return False, True


def _stop_program(proc: subprocess.Popen[bytes]) -> None:
    """vkdoctor was interrupted.  From a terminal, the program got the same SIGINT (same process
    group); from ``kill`` or timeout(1) only vkdoctor did: pass SIGINT on after a moment, then
    kill the tree if it still runs.  The program never outlives the trace."""
    try:
        proc.wait(timeout=_FORWARD_AFTER_S)
        return
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(OSError):
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=_INTERRUPT_GRACE_S)
    except subprocess.TimeoutExpired:
        _kill_tree(proc.pid)
        proc.wait()
