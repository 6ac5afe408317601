"""``vkdoctor check --npd``: node-problem-detector's custom-plugin protocol.

NPD runs the plugin, reads at most 4 KiB of its stdout, trims it, cuts it to
``max_output_length`` bytes (default 80) and uses it as the condition's message; the exit status
says what it means: 0 OK, 1 a problem (the condition becomes True), anything else unknown
(kubernetes/node-problem-detector, pkg/custompluginmonitor/plugin/plugin.go and
types/config.go).  So the plugin prints exactly one line, the verdict, cut to that length on a
character boundary, and nothing else: the check's own output goes to /dev/null while it runs,
and its stderr is kept back and shown only when vkdoctor failed internally (NPD logs a
plugin's stderr; a traceback there is what a bug report needs).

Exit status: 0 when the node is up (warnings allowed), 1 when vkdoctor found a failure, 2 when
it could not decide (an internal error, a signal, the deadline before any failure, a usage
error).

Headless: no rich/textual.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import unicodedata
from collections.abc import Callable, Iterator

from vkdoctor.fleet.options import DEFAULT_NPD_MAX_OUTPUT, FleetRun
from vkdoctor.fleet.state import assess

OK, PROBLEM, UNKNOWN = 0, 1, 2
DEFAULT_MAX_OUTPUT = DEFAULT_NPD_MAX_OUTPUT  # NPD's default max_output_length
_EXIT_INTERNAL = 3  # the check's own exit code for a bug in vkdoctor
_MAX_STDERR = 4096  # what NPD itself keeps of a plugin's stderr


def one_line(text: str, max_bytes: int = DEFAULT_MAX_OUTPUT) -> str:
    """``text`` on one line without control or format characters, at most ``max_bytes`` bytes
    of UTF-8 (NPD cuts bytes, which could split a character), ``...`` marking a cut."""
    kept = "".join(
        " " if ch in "\n\r\t" else ch
        for ch in text
        if ch in "\n\r\t" or unicodedata.category(ch) not in ("Cc", "Cf", "Cs")
    )
    line = " ".join(kept.split())
    if len(line.encode("utf-8")) <= max_bytes:
        return line
    budget = max(0, max_bytes - 3)
    cut = line.encode("utf-8")[:budget].decode("utf-8", "ignore").rstrip()
    return cut + "..." if max_bytes >= 3 else cut[:max_bytes]


def status_and_message(fleet: FleetRun, code: int, stderr_text: str) -> tuple[int, str]:
    """The plugin's exit status and message for a check that exited with ``code``."""
    if code >= 128:
        try:
            name = signal.Signals(code - 128).name
        except ValueError:
            name = f"signal {code - 128}"
        return UNKNOWN, f"vkdoctor could not decide: interrupted by {name}"
    if code == _EXIT_INTERNAL or fleet.internal_error:
        return UNKNOWN, "vkdoctor could not decide: internal error in vkdoctor"
    if fleet.report is None:
        first = next((s.strip() for s in stderr_text.splitlines() if s.strip()), "")
        return UNKNOWN, f"vkdoctor could not run: {first or f'exit status {code}'}"
    state = assess(fleet.report)
    verdict = state.verdict or state.code
    if state.up:
        return OK, verdict
    if not state.decided:
        return UNKNOWN, f"vkdoctor could not decide: {verdict}"
    return PROBLEM, verdict


@contextlib.contextmanager
def _quiet(stderr_file: int) -> Iterator[int]:
    """Descriptors 1 and 2 point at /dev/null and ``stderr_file`` while the body runs (children
    inherit them too); yields a duplicate of the real stdout."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(stderr_file, 2)
        yield saved_out
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        for fd in (devnull, saved_out, saved_err):
            os.close(fd)


def run(args: argparse.Namespace, check: Callable[[argparse.Namespace, FleetRun], int]) -> int:
    """Run ``check`` silenced and speak the protocol: one line on stdout, the exit status."""
    fleet = FleetRun.from_args(args)
    with tempfile.TemporaryFile() as held:
        with _quiet(held.fileno()):
            try:
                code = check(args, fleet)
            except KeyboardInterrupt:
                code = 128 + int(signal.SIGINT)
            except Exception:  # anything check itself did not turn into an exit code
                code = _EXIT_INTERNAL
        held.seek(0)
        stderr_text = held.read(_MAX_STDERR).decode("utf-8", "replace")
    status, message = status_and_message(fleet, code, stderr_text)
    max_bytes = getattr(args, "npd_max_output", DEFAULT_MAX_OUTPUT)
    sys.stdout.write(one_line(message, max_bytes) + "\n")
    sys.stdout.flush()
    if code == _EXIT_INTERNAL and stderr_text:
        sys.stderr.write(stderr_text)  # the traceback a bug report needs; NPD logs it
    return status
