"""The command-line side of the fleet outputs: ``--prometheus`` and ``--npd``.

``add_check_arguments``/``add_kernels_arguments`` register the options; a ``FleetRun`` is made
when a check starts and is handed every report the check ends with (finished, interrupted, or
cut short by an internal error), so the metrics are written in each case.  Importing this module
is cheap: ``check --help`` must stay instant.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import field
from typing import TYPE_CHECKING

from vkdoctor.record import mutable

if TYPE_CHECKING:
    from vkdoctor.report.model import Report

DEFAULT_NPD_MAX_OUTPUT = 80  # node-problem-detector's default max_output_length


def _byte_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 3 <= value <= 4096:
        raise argparse.ArgumentTypeError("must be 3 to 4096 (NPD reads at most 4 KiB)")
    return value


def _add_prometheus(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--prometheus",
        metavar="PATH",
        help=f"write {what} as Prometheus metrics to PATH (atomically; for node_exporter's "
        "textfile collector, e.g. /var/lib/prometheus/node-exporter/vkdoctor.prom)",
    )


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    _add_prometheus(parser, "the verdict, probes, devices and dispatch")
    parser.add_argument(
        "--npd",
        action="store_true",
        help="node-problem-detector plugin mode: one line (the verdict) on stdout, exit 0 "
        "healthy, 1 problem, 2 unknown",
    )
    parser.add_argument(
        "--npd-max-output",
        type=_byte_count,
        default=DEFAULT_NPD_MAX_OUTPUT,
        metavar="BYTES",
        help="cut the --npd line to this many bytes: NPD's max_output_length (default 80)",
    )


def add_kernels_arguments(parser: argparse.ArgumentParser) -> None:
    _add_prometheus(parser, "each kernel's figure and fraction of peak")


def prometheus_problem(args: argparse.Namespace) -> str | None:
    """Why ``--prometheus`` cannot be used, checked before any work."""
    from vkdoctor.report.io import OutputError, check_destination, is_stdout, same_output

    destination = getattr(args, "prometheus", None)
    others = [d for d in (getattr(args, "json", None), getattr(args, "markdown", None)) if d]
    if getattr(args, "npd", False) and any(is_stdout(d) for d in [*others, destination] if d):
        return "--npd prints one line on stdout; give the other outputs file paths"
    if destination is None:
        return None
    try:
        check_destination(destination)
    except OutputError as exc:
        return f"--prometheus: {exc}"
    for other in others:
        if same_output(destination, other):
            return f"--prometheus and another output both write to {destination}"
    return None


@mutable
class FleetRun:
    """One check's fleet outputs; ``report`` is the last report the check ended with."""

    prometheus: str | None = None
    started: float = field(default_factory=time.monotonic)
    report: Report | None = None
    internal_error: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> FleetRun:
        return cls(prometheus=getattr(args, "prometheus", None))

    def finish(self, report: Report, internal_error: bool = False) -> bool:
        """Record the report and write the metrics; False (after one line on stderr) when
        they cannot be written."""
        self.report, self.internal_error = report, internal_error
        if not self.prometheus:
            return True
        from vkdoctor.fleet.prometheus import check_metrics

        text = check_metrics(report, time.monotonic() - self.started, internal_error=internal_error)
        return write_or_say(text, self.prometheus, "vkdoctor")


def write_or_say(text: str, destination: str, prog: str) -> bool:
    from vkdoctor.fleet.prometheus import write_metrics

    try:
        write_metrics(text, destination)
    except OSError as exc:
        reason = exc.strerror or exc
        print(f"{prog}: cannot write the metrics to {destination}: {reason}", file=sys.stderr)
        return False
    return True
