"""``vkdoctor tui``: the interactive view (Textual).

    vkdoctor tui                 run the diagnosis live, then explore it
    vkdoctor tui REPORT.json     open a saved report; nothing runs until you ask (r, k)
    vkdoctor tui TRACE.jsonl     open a ``vkdoctor trace`` file (or --trace FILE next to a report)

This module only parses arguments and loads files: textual is imported when the TUI starts, so
``vkdoctor check`` (which builds the same parser) never imports it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vkdoctor import argtypes

EXIT_OK, EXIT_USAGE = 0, 2
KERNEL_SIZES = ("tiny", "small", "auto", "large")


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "tui",
        help="interactive view: live pipeline, findings, devices with kernel runs, traces",
        description="Explore a diagnosis interactively: run it live (no FILE) or open a saved "
        "report or trace. Works over SSH in an 80x24 terminal; press ? for the keys.",
    )
    parser.add_argument(
        "file",
        nargs="?",
        metavar="REPORT.json|TRACE",
        help="a report written by `vkdoctor check --json` / `vkdoctor kernels --json`, or a "
        "`vkdoctor trace` file (events or report); nothing is run",
    )
    parser.add_argument("--trace", metavar="FILE", help="open this trace file in the trace view")
    parser.add_argument(
        "--kernel-size",
        choices=KERNEL_SIZES,
        default="auto",
        help="problem sizes of kernel runs started from the TUI (default auto)",
    )
    parser.add_argument(
        "--timeout",
        type=argtypes.seconds(*argtypes.TIMEOUT_RANGE),
        default=None,
        metavar="SECONDS",
        help="time limit for each native step of a live run (default 5)",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        import textual  # noqa: F401
    except ImportError:
        print(
            "vkdoctor tui needs the textual package: pip install 'vkdoctor[tui]'",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return run_tui(
        args.file, trace_path=args.trace, kernel_size=args.kernel_size, timeout_s=args.timeout
    )


def run_tui(
    path: str | None = None,
    *,
    trace_path: str | None = None,
    backend: Any = None,
    kernel_size: str = "auto",
    timeout_s: float | None = None,
) -> int:
    """Start the TUI.  ``path`` is a report or trace to open instead of running; ``backend``
    replaces the real runner (tests inject one)."""
    from dataclasses import replace

    from vkdoctor.kernels.run import KernelRequest
    from vkdoctor.tui.backend import LiveBackend
    from vkdoctor.tui.documents import DocumentError, open_document, open_trace

    report = trace = None
    source = None
    try:
        if path is not None:
            report, trace = open_document(path)
            source = path
        if trace_path is not None:
            trace = open_trace(trace_path)
    except DocumentError as exc:
        print(f"vkdoctor tui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from vkdoctor.tui.app import VkDoctorApp

    app = VkDoctorApp(
        backend=backend or LiveBackend(timeout_s=timeout_s),
        report=report,
        source=source,
        trace=trace,
        kernel_request=replace(KernelRequest(), size=kernel_size),
        autorun=path is None,
    )
    from vkdoctor.engine.interrupt import stop_on_signals

    # SIGINT/SIGTERM/SIGHUP (a closed SSH session, `timeout`): children die at once, the app
    # ends, and what it has is written like check's partial report; exit 128+signal.
    with stop_on_signals(on_stop=app.stop_for_signal):
        app.run()
    if app.interrupted is not None:
        return _write_interrupted(app)
    return app.return_code or EXIT_OK


def _write_interrupted(app: Any) -> int:
    from vkdoctor.report.io import partial_report_path, write_report

    signum = app.interrupted
    report = app.report_so_far()
    if report is None:
        print(f"vkdoctor tui: interrupted by {signum.name}; nothing to write", file=sys.stderr)
        return 128 + int(signum)
    try:
        path = partial_report_path()
        write_report(report, str(path))
        where = f"the report with what was found so far is in {path}"
    except OSError as exc:
        where = f"no report written: {exc.strerror or exc}"
    print(f"vkdoctor tui: interrupted by {signum.name}; {where}", file=sys.stderr)
    return 128 + int(signum)
