"""The Slurm health check's drain reason, made from a stored report's verdict.

``examples/slurm/vkdoctor-healthcheck.sh`` (a ``HealthCheckProgram``) runs ``vkdoctor check
--json REPORT`` and, when the check fails, drains the node with::

    python3 -m vkdoctor.fleet.slurm reason REPORT

as the reason.  The shell script never parses JSON: this module reads the report through the
typed records and prints one line that is safe to pass as one ``reason=`` argument:

- ``vkdoctor: `` + the verdict, so the wrapper knows a drain is its own (it only ever resumes a
  node whose reason starts with that prefix);
- control characters made visible (``safe_text.clean_line``): the verdict quotes file names and
  variable values from the machine, and ``sinfo``/``scontrol show node`` print the reason raw;
- double quotes turned into single ones: scontrol strips one leading and one trailing ``"``
  from a reason (src/scontrol/update_node.c), which would eat a verdict's closing quote;
- at most 255 bytes of UTF-8, cut at a character boundary and marked with ``…``: slurmctld keeps
  longer reasons, but the accounting database stores a node event's reason in a MySQL
  ``TINYTEXT`` column (src/plugins/accounting_storage/mysql/accounting_storage_mysql.c), 255
  bytes, so a longer one is cut there (or refused in strict SQL mode).

Exit codes: 0 the reason was printed; 2 the report cannot be read or the command line is wrong.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from vkdoctor.diagnosis.order import ranked
from vkdoctor.render.safe_text import clean_line
from vkdoctor.report.io import ReportError, load_report
from vkdoctor.report.model import Report

PREFIX = "vkdoctor: "
MAX_REASON_BYTES = 255  # the accounting database's TINYTEXT reason column
_CUT = "…"


def _cut(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    room = limit - len(_CUT.encode("utf-8"))
    # errors="ignore" drops a multi-byte character the cut went through.
    return encoded[:room].decode("utf-8", "ignore").rstrip() + _CUT


def drain_reason(verdict: str, limit: int = MAX_REASON_BYTES) -> str:
    """``vkdoctor: <verdict>`` as one safe line of at most ``limit`` bytes."""
    text = " ".join(clean_line(verdict).split()).replace('"', "'")
    return _cut(PREFIX + (text or "check failed"), limit)


def report_verdict(report: Report) -> str:
    """The report's verdict; a report without one (schema 1) gives its worst finding."""
    if report.verdict:
        return report.verdict
    shown = ranked(report, include_info=False)
    return shown[0].finding.summary if shown else "check failed"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != "reason":
        print("usage: python -m vkdoctor.fleet.slurm reason REPORT.json", file=sys.stderr)
        return 2
    try:
        report = load_report(args[1])
    except ReportError as exc:
        print(f"vkdoctor.fleet.slurm: {exc}", file=sys.stderr)
        return 2
    # Bytes: slurmd starts the health check with an empty environment (no locale).
    sys.stdout.buffer.write((drain_reason(report_verdict(report)) + "\n").encode("utf-8"))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
