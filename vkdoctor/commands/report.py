"""``vkdoctor report``: work with stored reports (show, validate, diff, markdown, summarize).

Every subcommand reads reports through ``report_io``, so a truncated file, a file from a newer
vkdoctor or a file that is not a report ends in one clear line and exit code 2, never a
traceback.  ``show`` prints through the console renderer's ``render_report``, exactly what
``vkdoctor check`` printed for the same run.

Exit codes: show and markdown 0; validate 0 valid, 1 invalid or not a report (the reason is
printed); diff 0 identical, 1 different (as diff(1)); summarize 0 every report healthy, 1 a
machine with a problem or an unreadable file, 2 nothing readable; 2 when a report cannot be read
or the command line is wrong.  Flags are the shared ones of ``vkdoctor.cli_options``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from vkdoctor import cli_options as options

EXIT_OK = 0
EXIT_DIFFERENT = 1
EXIT_INVALID = 1
EXIT_UNREADABLE = 2


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add ``report`` and its subcommands to the CLI's subparsers."""
    report = commands.add_parser(
        "report",
        help="show, validate, diff or export stored reports",
        epilog="Exit codes: validate 1 when a report is invalid; diff 1 when the reports differ "
        "(as diff(1)); 2 when a report cannot be read; otherwise 0.",
    )
    sub = report.add_subparsers(
        dest="report_command", metavar="SUBCOMMAND", parser_class=type(report)
    )

    show = sub.add_parser("show", help="print a stored report as `vkdoctor check` printed it")
    show.add_argument("report", metavar="REPORT.json", help="the report ('-' for stdin)")
    options.add_verbosity(show)
    options.add_color(show)
    show.add_argument(
        "--redact",
        action="store_true",
        help="replace home, user, host and machine ids by placeholders",
    )
    options.add_require(show)  # gate a stored report: exit 1 unless a device meets them

    validate = sub.add_parser("validate", help="check reports against the report schema")
    validate.add_argument("reports", nargs="+", metavar="REPORT.json")
    options.add_json(validate, "each report's verdict (valid, problems)")

    diff = sub.add_parser("diff", help="what differs between two reports (working vs broken)")
    diff.add_argument("a", metavar="A.json", help="usually the working machine")
    diff.add_argument("b", metavar="B.json", help="usually the broken machine")
    options.add_json(diff, "the differences")
    options.add_color(diff)

    markdown = sub.add_parser("markdown", help="Markdown for a GitHub/GitLab issue")
    markdown.add_argument("report", metavar="REPORT.json", help="the report ('-' for stdin)")
    # -o/--output: the spelling before --markdown, documented in earlier READMEs.
    options.add_markdown(markdown, default="-", aliases=("-o", "--output"))
    options.add_redact(markdown, default=True)
    summarize = sub.add_parser(
        "summarize",
        help="many machines' reports: one line per failure signature (or per stack with --by)",
        epilog="Exit codes: 0 every report healthy; 1 a machine with a problem or an unreadable "
        "file (listed, not fatal); 2 no report could be read or the command line is wrong.",
    )
    summarize.add_argument(
        "paths", nargs="+", metavar="DIR|REPORT.json", help="reports, or directories of *.json"
    )
    summarize.add_argument(
        "--by",
        choices=("device", "driver", "loader"),
        default="signature",
        help="group the machines by their devices, drivers in use or loader version instead",
    )
    options.add_json(summarize, "the summary as JSON")
    options.add_markdown(summarize, what="the summary as Markdown", redacted=False)
    report.set_defaults(report_parser=report)
    return report


def run(args: argparse.Namespace) -> int:
    from vkdoctor.report.io import ReportError
    from vkdoctor.report.shape import ShapeError

    command = getattr(args, "report_command", None)
    if command is None:
        args.report_parser.print_help(sys.stderr)
        return EXIT_UNREADABLE
    handler = {
        "show": _show,
        "validate": _validate,
        "diff": _diff,
        "markdown": _markdown,
        "summarize": _summarize,
    }[command]
    try:
        return handler(args)
    except (ReportError, ShapeError) as exc:
        print(f"vkdoctor report {command}: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE


def _show(args: argparse.Namespace) -> int:
    from vkdoctor.render.console import make_console, render_report
    from vkdoctor.report.io import load_checked_report
    from vkdoctor.report.redact import redact_report
    from vkdoctor.require import RequirementError, apply, parse_all

    try:
        requirements = parse_all(args.require)
    except RequirementError as exc:
        print(f"vkdoctor report show: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    _, report = load_checked_report(args.report)
    met = apply(report, requirements).met if requirements else True
    if args.redact:
        report = redact_report(report)
    console = make_console(color=options.color_mode(args))
    render_report(console, report, args.verbose, quiet=args.quiet)
    return EXIT_OK if met else EXIT_DIFFERENT  # 1: the stored report fails the requirement


def _validate(args: argparse.Namespace) -> int:
    """0 every report valid; 1 one is not a report or not valid (the reason on stdout); 2 one
    cannot be judged at all (missing, not a regular file, unreadable, a newer schema)."""
    from vkdoctor.report.codes import all_codes
    from vkdoctor.report.io import NewerReportError, ReportError, load_report_dict
    from vkdoctor.report.schema import check_consistency, validate

    known = set(all_codes())
    worst = EXIT_OK
    results: list[dict[str, Any]] = []
    quiet = args.json == "-"  # stdout carries the JSON only
    say = (lambda *a, **k: None) if quiet else print
    for path in args.reports:
        reason = _unreadable(path)
        try:
            if reason is None:
                data = load_report_dict(path)
        except NewerReportError as exc:
            reason = _after_path(str(exc), path)
        except ReportError as exc:
            # Readable, but not a report: that is the answer validate exists to give.
            say(f"{path}: INVALID, {_after_path(str(exc), path)}")
            results.append({"path": path, "valid": False, "readable": True, "problems": [str(exc)]})
            worst = max(worst, EXIT_INVALID)
            continue
        if reason is not None:  # nothing to judge: missing, not a file, a newer schema
            print(f"{path}: {reason}", file=sys.stderr)
            results.append({"path": path, "valid": False, "readable": False, "problems": [reason]})
            worst = max(worst, EXIT_UNREADABLE)
            continue
        errors = validate(data)
        if not errors:
            errors = check_consistency(data)
        entry: dict[str, Any] = {
            "path": path,
            "valid": not errors,
            "readable": True,
            "schema_version": data["schema_version"],
            "problems": [str(e) for e in errors],
        }
        results.append(entry)
        if errors:
            say(
                f"{path}: INVALID, {len(errors)} problem{'s' if len(errors) != 1 else ''} "
                f"against report schema {data['schema_version']}:"
            )
            for error in errors:
                say(f"  {error}")
            worst = max(worst, EXIT_INVALID)
            continue
        summary = data["summary"]
        say(
            f"{path}: valid vkdoctor report (schema {data['schema_version']}, vkdoctor "
            f"{data['tool']['version']}, {data['created'] or 'partial'}, status "
            f"{summary['status']})"
        )
        unknown = sorted({f["code"] for p in data["probes"] for f in p["findings"]} - known)
        entry["unknown_codes"] = unknown
        if unknown:
            say(
                f"  note: finding codes this vkdoctor does not know (a newer version wrote "
                f"them?): {', '.join(unknown)}"
            )
    if args.json:
        code = options.write_json(results, args.json, "report validate")
        if code:
            return code
    return worst


def _unreadable(path: str) -> str | None:
    """Why ``path`` cannot be read at all (exit 2), before anything judges its content."""
    import stat

    if path == "-":
        return None
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "no such file"
    except (OSError, ValueError) as exc:
        return str(getattr(exc, "strerror", None) or exc)
    if not stat.S_ISREG(mode):
        from vkdoctor.report.io import describe_mode

        return f"{describe_mode(mode)}, not a regular file; not a report"
    if not os.access(path, os.R_OK):
        return "permission denied"
    return None


def _after_path(message: str, path: str) -> str:
    prefix = f"{path}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def _diff(args: argparse.Namespace) -> int:

    from vkdoctor.render.diff import diff_reports, render_lines, render_text
    from vkdoctor.report.io import load_checked_report, same_output
    from vkdoctor.report.redact import Identity, is_redacted, redact_dict
    from vkdoctor.report.shape import render_tolerant

    for given in (args.a, args.b):
        if args.json and args.json != "-" and given != "-" and same_output(given, args.json):
            print(
                f"vkdoctor report diff: --json {args.json} is one of the reports; writing there "
                "would destroy it",
                file=sys.stderr,
            )
            return EXIT_UNREADABLE
    a, _ = load_checked_report(args.a)
    b, _ = load_checked_report(args.b)
    # Placeholders only line up when both sides use them.
    if is_redacted(a) and not is_redacted(b):
        b = redact_dict(b, Identity())
    elif is_redacted(b) and not is_redacted(a):
        a = redact_dict(a, Identity())
    diff, left_out = render_tolerant(
        lambda x, y: _rendered_diff(diff_reports(x, y, args.a, args.b)), a, b
    )
    _note_left_out("diff", left_out)
    if args.json:
        code = options.write_json(diff.to_dict(), args.json, "report diff")
        if code:
            return code
        if args.json == "-":  # stdout carries the JSON only; a file leaves it the text
            return EXIT_OK if diff.identical else EXIT_DIFFERENT
    color = options.color_mode(args)
    if color == "always" or (sys.stdout.isatty() and color == "auto"):
        from rich.text import Text

        from vkdoctor.render.console import make_console

        styles = {
            "header": "bold",
            "section": "bold underline",
            "added": "green",
            "removed": "red",
            "changed": "yellow",
            "detail": "dim",
        }
        console = make_console(color=color)
        for kind, line in render_lines(diff):
            console.print(Text(line, style=styles[kind]), soft_wrap=True)
    else:
        from vkdoctor.render.safe_text import ascii_fallback

        # Plain text is written as is: rich would wrap long paths at 80 columns.
        sys.stdout.write(ascii_fallback(render_text(diff), sys.stdout.encoding or "utf-8"))
    return EXIT_OK if diff.identical else EXIT_DIFFERENT


def _rendered_diff(diff: Any) -> Any:
    from vkdoctor.render.diff import render_lines

    render_lines(diff)  # a shape the text rendering trips over must fail inside the retry
    diff.to_dict()
    return diff


def _note_left_out(command: str, left_out: list[str]) -> None:
    if left_out:
        print(
            f"vkdoctor report {command}: note: left out {', '.join(left_out)}, whose shape no "
            "vkdoctor writes (`vkdoctor report validate` checks the schema only)",
            file=sys.stderr,
        )


def _markdown(args: argparse.Namespace) -> int:
    from vkdoctor.render.markdown import render_markdown
    from vkdoctor.report.io import (
        OutputError,
        check_destination,
        load_checked_report,
        same_output,
        write_text,
    )
    from vkdoctor.report.model import Report
    from vkdoctor.report.redact import Identity, redact_dict, scrub_secrets
    from vkdoctor.report.shape import render_tolerant

    try:
        check_destination(args.markdown)
    except OutputError as exc:
        print(f"vkdoctor report markdown: --markdown: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    if args.report != "-" and same_output(args.report, args.markdown):
        print(
            f"vkdoctor report markdown: --markdown {args.markdown} is the report itself; "
            "writing there would destroy it",
            file=sys.stderr,
        )
        return EXIT_UNREADABLE
    data, _ = load_checked_report(args.report)
    data = scrub_secrets(data)
    if args.redact:
        data = redact_dict(data, Identity.of_machine())
    text, left_out = render_tolerant(lambda d: render_markdown(Report.from_dict(d)), data)
    _note_left_out("markdown", left_out)
    try:
        write_text(text, args.markdown)
    except OSError as exc:
        print(
            f"vkdoctor report markdown: cannot write {args.markdown}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return EXIT_UNREADABLE
    return EXIT_OK


def _summarize(args: argparse.Namespace) -> int:
    import json

    from vkdoctor.fleet.summarize import summarize
    from vkdoctor.render.safe_text import ascii_fallback
    from vkdoctor.render.summary import render_markdown, render_text
    from vkdoctor.report.codec import to_json
    from vkdoctor.report.io import (
        OutputError,
        check_destination,
        is_stdout,
        same_output,
        write_text,
    )

    outputs = [(o, d) for o, d in (("--json", args.json), ("--markdown", args.markdown)) if d]
    for option, destination in outputs:
        try:
            check_destination(destination)
        except OutputError as exc:
            print(f"vkdoctor report summarize: {option}: {exc}", file=sys.stderr)
            return EXIT_UNREADABLE
    if len(outputs) == 2 and same_output(args.json, args.markdown):
        print(
            "vkdoctor report summarize: --json and --markdown write to the same place; give "
            "each its own path",
            file=sys.stderr,
        )
        return EXIT_UNREADABLE
    summary = summarize(args.paths, args.by)
    text = render_text(summary)
    # The text goes where the data does not: with --json - it moves to stderr.
    stream = sys.stderr if any(is_stdout(d) for _, d in outputs) else sys.stdout
    stream.write(ascii_fallback(text, stream.encoding or "utf-8"))
    stream.flush()
    rendered = {
        "--json": lambda: json.dumps(to_json(summary), indent=2, sort_keys=True) + "\n",
        "--markdown": lambda: render_markdown(summary),
    }
    for option, destination in outputs:
        try:
            write_text(rendered[option](), destination)
        except OSError as exc:
            print(
                f"vkdoctor report summarize: cannot write {destination}: {exc.strerror or exc}",
                file=sys.stderr,
            )
            return EXIT_UNREADABLE
    if summary.reports == 0:
        print("vkdoctor report summarize: no report could be read", file=sys.stderr)
        return EXIT_UNREADABLE
    return EXIT_DIFFERENT if summary.with_problems or summary.unreadable else EXIT_OK
