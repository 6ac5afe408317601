"""The command line: ``vkdoctor check``, ``explain`` and the other subcommands.

Exit codes (DESIGN.md): 0 healthy (info findings only), 1 any warn or fail finding, timeout or
crash (``--fail-on fail`` ignores warnings), 2 usage error, 3 internal error of vkdoctor (the
message says where the report is), 128+signal when SIGINT/SIGTERM/SIGHUP stopped the run (the
partial report is written and named).
Heavy imports (rich, the probes) happen inside the subcommands so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import vkdoctor
from vkdoctor import argtypes
from vkdoctor import cli_options as options
from vkdoctor.engine.interrupt import interrupting_signal as _interrupting_signal
from vkdoctor.engine.interrupt import stop_on_signals as _stop_on_signals

if TYPE_CHECKING:  # imported where used: `--help` and `--version` stay instant
    from vkdoctor.engine.child import ChildPool
    from vkdoctor.engine.env import Env
    from vkdoctor.engine.plan import Options

EXIT_OK = 0
EXIT_ISSUES = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own exit code is already 2
        # One line: the mistake and where help is (the full usage buries the mistake).
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser (completion and the man page walk it); with ``command`` given, heavy
    subcommands other than it only get a stub (the trace machinery costs ~70 ms to import,
    which ``check`` and ``--version`` must not pay); "" stubs them all."""
    parser = _Parser(
        prog="vkdoctor",
        description="Diagnose Vulkan loader, driver, layer and device problems on Linux.",
        epilog="Exit codes: 0 no issue, 1 issues found, 2 usage error, 3 internal error.",
    )
    parser.add_argument("--version", action="version", version=f"vkdoctor {vkdoctor.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    check = commands.add_parser(
        "check",
        help="run the diagnostic pipeline",
        description="Run the probes in order (loader, drivers, layers, instance, devices, a "
        "compute dispatch), each native step in a child process, and print the verdict, what "
        "needs action and the command that fixes it.",
    )
    probes = check.add_argument(
        "probes", nargs="*", metavar="PROBE", help="run only these probes (and what they require)"
    )
    probes.complete_words = _probe_ids  # type: ignore[attr-defined]
    options.add_result_options(check)
    options.add_list(check, "probes and what each one runs", aliases=("--list-probes",))
    options.add_timeout(check, None, "time limit for one native step (default 5)")
    _add_deadline_option(check)
    check.add_argument(
        "--loader",
        metavar="PATH",
        type=argtypes.nonempty("--loader"),
        default="libvulkan.so.1",
        help="diagnose this loader library instead of the one applications get by default",
    )
    check.add_argument(
        "--no-bisect", action="store_true", help="do not isolate culprits by re-running"
    )

    options.add_check_requirements(check)  # --require, --device-select, --github
    from vkdoctor.fleet.options import add_check_arguments as add_fleet_arguments

    add_fleet_arguments(check)  # --prometheus, --npd, --npd-max-output

    explain = commands.add_parser(
        "explain",
        help="explain a finding code",
        description="What a finding code means, its usual causes and its remedy.",
    )
    code = explain.add_argument(
        "code", nargs="?", help="the finding code, e.g. driver-library-missing"
    )
    code.complete_words = _finding_codes  # type: ignore[attr-defined]
    options.add_list(explain, "finding codes")
    options.add_json(explain, "the explanation (or, with --list, every code)")

    trace = commands.add_parser(
        "trace",
        help="run a program and diagnose how it loads and unloads Vulkan",
        description="Run PROGRAM under vkdoctor's LD_AUDIT module and debug layer (or watch "
        "--pid) and report premature unloads, loader bypasses and destroy-order bugs.",
    )
    trace.set_defaults(trace_parser=trace)
    if command in (None, "trace"):
        from vkdoctor.trace.command import add_arguments

        add_arguments(trace)
        options.add_result_options(trace)

    from vkdoctor.commands import report as reportcmd

    reportcmd.add_parser(commands)

    # Both modules keep textual, rich and the suite out of their import: `check` never pays.
    from vkdoctor import completion, tui
    from vkdoctor.commands import kernels as kernelcmd

    kernelcmd.add_parser(commands)
    tui.add_parser(commands)
    completion.add_parser(commands)
    return parser


def _probe_ids() -> tuple[str, ...]:
    from vkdoctor.engine.plan import PIPELINE

    return PIPELINE


def _finding_codes() -> tuple[str, ...]:
    from vkdoctor.report.codes import all_codes

    return tuple(sorted(all_codes()))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Line buffering makes a failing stdout (> /dev/full) fail inside the command, where it
    # becomes one line, not at the interpreter's final flush ("Exception ignored", exit 120).
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    if not (argv[:1] == ["check"] and not _PRESTART_NEVER.intersection(argv)):
        return _run(argv)
    # The check's first children start now, before this module's remaining imports (the
    # parser's, the runner's: ~60-80 ms), which their Python start-up then overlaps.  A ChildPool
    # adopts them (engine/spawn.py); those a usage error or a probe subset leaves are ended here.
    from vkdoctor.engine import spawn

    spawn.prestart(spawn.children_for_check(len(os.sched_getaffinity(0))))
    try:
        return _run(argv)
    finally:
        spawn.discard_prestarted()


def _run(argv: list[str]) -> int:
    first = next((a for a in argv if not a.startswith("-")), None)
    # No command (--version, --help): every heavy subcommand gets its stub, as for another's.
    parser = build_parser(first or "")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        if args.command == "check":
            if args.npd:
                from vkdoctor.fleet import npd

                return npd.run(args, _check)
            return _check(args)
        if args.command == "explain":
            return _explain(args)
        if args.command == "trace":
            return _trace(args)
        if args.command == "report":
            from vkdoctor.commands import report as reportcmd

            return reportcmd.run(args)
        if args.command == "kernels":
            from vkdoctor.commands import kernels as kernelcmd

            return kernelcmd.run(args)
        if args.command == "tui":
            from vkdoctor import tui

            return tui.run(args)
        if args.command == "completion":
            from vkdoctor import completion

            return completion.run(args, build_parser())
    except KeyboardInterrupt:
        print("vkdoctor: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except OutputFailed as exc:
        return _output_failed(exc)
    except OSError as exc:
        if exc.errno in _OUTPUT_ERRNOS:  # a print() into a full or failing stdout
            return _output_failed(OutputFailed(exc))
        return _internal_error(traceback.format_exc(), None)
    except Exception:
        return _internal_error(traceback.format_exc(), None)
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


_OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG})
# `check` options that run no pipeline (or one of their own): no children are started ahead.
_PRESTART_NEVER = frozenset({"--list", "-h", "--help", "--npd"})


class OutputFailed(Exception):
    """Writing to the terminal or standard output failed (``> /dev/full``: ENOSPC, EIO)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error.strerror or str(error))
        self.error = error


def _print(console: Any, renderable: Any) -> None:
    try:
        console.print(renderable)
    except BrokenPipeError:
        raise  # a reader that went away (| head) is not an error
    except OSError as exc:
        raise OutputFailed(exc) from exc


def _output_failed(exc: OutputFailed) -> int:
    # Point the descriptor at /dev/null, or the interpreter's final flush fails again and
    # prints "Exception ignored" with exit code 120.
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    print(f"vkdoctor: cannot write the output: {exc}", file=sys.stderr)
    return EXIT_USAGE


def _internal_error(tb: str, partial: Any, written: str | None = None) -> int:
    """Report a vkdoctor bug; ``partial`` is saved so nothing found so far is lost, or the
    report was already ``written`` to that path."""
    from vkdoctor.report.io import partial_report_path, write_report

    where = f" The report, with everything else found, is in {written}." if written else ""
    if partial is not None:
        try:
            path = partial_report_path()
            write_report(partial, str(path))
            where = f" The partial report is in {path}."
        except Exception:  # the partial report is best effort while already failing
            where = " No partial report could be written."
    print(
        "vkdoctor: internal error. This is a bug in vkdoctor, not in your Vulkan setup; please "
        f"report it with the text below.{where}\n{tb}",
        file=sys.stderr,
    )
    return EXIT_INTERNAL


def probe_listing() -> list[dict[str, Any]]:
    """Each probe with what it declares (requires, uses, consults) and what ``check PROBE``
    therefore runs, derived from the ProbeSpecs (the runner's own resolve_selection)."""
    from vkdoctor.engine.plan import available_probes, resolve_selection

    return [
        {
            "id": spec.id,
            "title": spec.title,
            "requires": list(spec.requires),
            "uses": list(spec.uses),
            "consults": list(spec.consults),
            "runs": resolve_selection([spec.id]),
        }
        for spec in available_probes()
    ]


def _list_probes(args: argparse.Namespace) -> int:
    listing = probe_listing()
    if args.json:
        return options.write_json(listing, args.json, "check --list")
    what = {
        "requires": "requires (skipped unless it succeeds)",
        "uses": "uses (run first when present)",
        "consults": "consults (runs alongside)",
    }
    import shutil
    import textwrap

    width = max(40, shutil.get_terminal_size((80, 24)).columns)

    def say(text: str) -> None:
        lines = textwrap.wrap(
            text, width, initial_indent=" " * 4, subsequent_indent=" " * 6, break_on_hyphens=False
        )
        print("\n".join(lines))

    for probe in listing:
        print(f"{probe['id']:<20} {probe['title']}")
        for key, words in what.items():
            if probe[key]:
                say(f"{words}: {', '.join(probe[key])}")
        if len(probe["runs"]) > 1:
            runs = probe["runs"]
            say(f"`check {probe['id']}` runs {len(runs)} probes: {', '.join(runs)}")
    return EXIT_OK


def _check(args: argparse.Namespace, fleet: Any = None) -> int:
    """``fleet`` (a ``fleet.options.FleetRun``) receives the report the run ends with."""
    if args.list:
        return _list_probes(args)
    from vkdoctor.engine.env import Env
    from vkdoctor.engine.plan import PIPELINE, Options, resolve_selection, warm_pool

    unknown = [p for p in args.probes if p not in PIPELINE]
    if unknown:
        print(
            f"vkdoctor check: unknown probe {', '.join(unknown)}; known: {', '.join(PIPELINE)}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    resolve_selection(args.probes)
    run_options = Options(
        timeout_s=args.timeout or Options().timeout_s,
        bisect=not args.no_bisect,
        loader=args.loader,
        deadline_s=args.deadline,
    )
    env = Env.current()
    # Started before the rest of check's imports, which their Python start-up overlaps.
    pool = warm_pool(env, run_options, args.probes or None)
    try:
        return _check_with(args, fleet, env, run_options, pool)
    finally:
        pool.close()  # reaps what run_pipeline killed (after the output), or the unused pool


def _check_with(
    args: argparse.Namespace, fleet: Any, env: Env, run_options: Options, pool: ChildPool
) -> int:
    from vkdoctor.engine.runner import run_pipeline
    from vkdoctor.render import safe_text
    from vkdoctor.render.console import make_console, probe_line
    from vkdoctor.report.model import Report
    from vkdoctor.require import RequirementError
    from vkdoctor.require import cli as require

    try:
        requirements = require.requirements(args, require.environ())
    except RequirementError as exc:
        print(f"vkdoctor check: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from vkdoctor.fleet.options import FleetRun, prometheus_problem

    fleet = fleet or FleetRun.from_args(args)
    problem = _output_problem(args) or prometheus_problem(args)
    if problem:
        print(f"vkdoctor check: {problem}", file=sys.stderr)
        return EXIT_USAGE
    to_stdout = _to_stdout(args) or require.uses_stdout(args)
    console = make_console(stderr=to_stdout, color=options.color_mode(args))
    partial = Report(tool_version=vkdoctor.__version__, created="")
    status = console.status("starting", spinner="dots") if console.is_terminal else None
    if status is not None:
        status.start()

    def on_start(spec: Any) -> None:
        if status is not None:
            status.update(f"{spec.id}: {spec.title.lower()}…")

    def on_progress(spec: Any, text: str) -> None:
        if status is not None:
            status.update(f"{spec.id}: {safe_text.clean_line(text)}…")

    def on_result(result: Any) -> None:
        partial.probes.append(result)
        if not args.quiet:
            _print(console, probe_line(result))

    _survive_closed_stdout(console)
    with _stop_on_signals():
        try:
            run = run_pipeline(
                env, run_options, args.probes or None, on_start, on_result, pool, on_progress
            )
        except OutputFailed:
            if status is not None:
                status.stop()
            raise
        except Exception:
            if status is not None:
                status.stop()
            tb = traceback.format_exc()
            fleet.finish(partial, internal_error=True)
            return _internal_error(tb, partial)
        if status is not None:
            status.stop()
        interrupted = _interrupting_signal()
        if interrupted is not None:
            fleet.finish(run.report)
            return _deliver_interrupted(run.report, args, console, interrupted)
        step = require.finish(run.report, requirements, args)
        if step is not None and not args.quiet:
            _print(console, probe_line(step))
        code = _deliver(run.report, args, console)
        if code is None and not fleet.finish(run.report):
            code = EXIT_USAGE
    if code is not None:
        return code
    if require.github_enabled(args, require.environ()):
        require.emit_github(
            run.report, args, require.environ(), sys.stderr if to_stdout else sys.stdout
        )
    if run.internal_errors:
        written = args.json if args.json and args.json != "-" else None
        return _internal_error(run.internal_errors[0], None if written else run.report, written)
    return _exit_code(run.report, args.fail_on)


def _deliver(report: Any, args: argparse.Namespace, console: Any) -> int | None:
    """Print the findings and write the --json/--markdown outputs (shared by check and trace).
    Returns an exit code only when an output cannot be written."""
    from vkdoctor.render.console import findings_block, verdict_line
    from vkdoctor.render.markdown import render_markdown
    from vkdoctor.report.io import write_report, write_text
    from vkdoctor.report.redact import redact_report, scrub_report

    # Secrets are masked in every output; identity where asked (--redact), and in the Markdown
    # export unless --no-redact, since that one is meant for public trackers.
    report = scrub_report(report)
    redact_markdown = args.redact is not False
    wanted = args.redact or (redact_markdown and args.markdown)
    redacted = redact_report(report) if wanted else report
    shown = redacted if args.redact else report  # the console and the JSON
    if getattr(args, "quiet", False):
        _print(console, verdict_line(shown))
    else:
        _print(console, findings_block(shown, args.verbose))
    outputs = [
        (args.json, shown, functools.partial(write_report, scrubbed=True)),
        (
            args.markdown,
            redacted if redact_markdown else report,
            lambda r, path: write_text(render_markdown(r), path),
        ),
    ]
    for destination, output, write in outputs:
        if not destination:
            continue
        try:
            write(output, destination)
        except OSError as exc:
            reason = exc.strerror or exc
            print(f"vkdoctor: cannot write the report to {destination}: {reason}", file=sys.stderr)
            return EXIT_USAGE
    return None


def _exit_code(report: Any, fail_on: str = "warn") -> int:
    """1 for any warn or fail finding, timeout or crash; ``--fail-on fail`` ignores warnings."""
    from vkdoctor.report.model import Severity

    failing = any(p.status.is_failure for p in report.probes) or any(
        f.severity is Severity.FAIL for _, f in report.findings()
    )
    warning = any(f.severity is Severity.WARN for _, f in report.findings())
    return EXIT_ISSUES if failing or (fail_on == "warn" and warning) else EXIT_OK


def _trace(args: argparse.Namespace) -> int:
    from vkdoctor.engine.env import Env
    from vkdoctor.render.console import make_console, probe_line
    from vkdoctor.trace.command import build_report

    program = [a for a in args.program or () if a != "--"][:1]
    if not program and args.pid is None:
        return options.usage_error(
            "vkdoctor trace",
            "nothing to trace; usage: vkdoctor trace [OPTIONS] -- PROGRAM [ARGS...] "
            "or vkdoctor trace --pid PID",
        )
    if program and args.pid is not None:
        return options.usage_error(
            "vkdoctor trace", "give either a program (after --) or --pid, not both"
        )
    problem = _output_problem(args)
    if problem:
        print(f"vkdoctor trace: {problem}", file=sys.stderr)
        return EXIT_USAGE
    console = make_console(stderr=_to_stdout(args), color=options.color_mode(args))
    _survive_closed_stdout(console)
    with _stop_on_signals(interrupt_main=True):
        report = build_report(args, Env.current())
        for probe in report.probes if not args.quiet else ():
            _print(console, probe_line(probe))
        interrupted = _interrupting_signal()
        if interrupted is not None:
            return _deliver_interrupted(report, args, console, interrupted)
        code = _deliver(report, args, console)
    return code if code is not None else _exit_code(report, args.fail_on)


def _to_stdout(args: argparse.Namespace) -> bool:
    from vkdoctor.report.io import is_stdout

    outputs = (args.json, args.markdown, getattr(args, "prometheus", None))
    return any(d is not None and is_stdout(d) for d in outputs)


def _output_problem(args: argparse.Namespace) -> str | None:
    """Why the --json/--markdown destinations cannot be used, checked before any work."""
    from vkdoctor.report.io import OutputError, check_destination, same_output

    given = [(f"--{name}", d) for name, d in (("json", args.json), ("markdown", args.markdown))]
    given = [(option, d) for option, d in given if d is not None]
    for option, destination in given:
        try:
            check_destination(destination)
        except OutputError as exc:
            return f"{option}: {exc}"
    if len(given) == 2 and same_output(given[0][1], given[1][1]):
        if _to_stdout(args):
            return "--json and --markdown cannot both use stdout"
        return f"--json and --markdown both write to {given[0][1]}; give each its own path"
    return None


# -- signals, closed pipes and the deadline (DESIGN.md, robustness) --


def _deliver_interrupted(
    report: Any, args: argparse.Namespace, console: Any, signum: signal.Signals
) -> int:
    """Write what was found before ``signum`` stopped the run and name where it is.  With no
    --json/--markdown the JSON report goes to the partial-report path (a report nobody asked for
    is still better than losing a run that may have taken minutes)."""
    from vkdoctor.report.io import partial_report_path, write_report

    exit_code = 128 + int(signum)
    wanted = [d for d in (args.json, args.markdown) if d]
    with contextlib.suppress(BrokenPipeError):
        console.print(f"vkdoctor: interrupted by {signum.name}")
    code = _deliver(report, args, console)
    if code is not None:
        return code
    if wanted:
        where = ", ".join("stdout" if d == "-" else d for d in wanted)
    else:
        try:
            path = partial_report_path()
            write_report(report, str(path))
            where = str(path)
        except OSError as exc:
            print(
                f"vkdoctor: interrupted by {signum.name}; no report written: {exc}", file=sys.stderr
            )
            return exit_code
    print(
        f"vkdoctor: interrupted by {signum.name}; the report with what was found so far is in "
        f"{where}",
        file=sys.stderr,
    )
    return exit_code


def _survive_closed_stdout(console: Any) -> None:
    """``vkdoctor check | head -1``: when the reader goes away, stop printing but finish the run
    and exit with the usual code.  Rich's default exits 1 on the spot, which also stopped the
    runner's loop while probe threads waited for it."""

    def on_broken_pipe() -> None:
        console.quiet = True
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)

    console.on_broken_pipe = on_broken_pipe


def _add_deadline_option(parser: argparse.ArgumentParser) -> None:
    from vkdoctor.engine.interrupt import DEFAULT_DEADLINE_S

    options.add_deadline(
        parser,
        DEFAULT_DEADLINE_S,
        f"time limit for the whole run, bisection included (default {DEFAULT_DEADLINE_S:g}); "
        "what did not finish is reported as such",
    )


def _code_json(info: Any) -> dict[str, Any]:
    from vkdoctor.report.codes import aliases_of, all_codes

    return {
        "code": info.code,
        "severity": info.severity.value,
        "title": info.title,
        "explanation": info.explanation,
        "causes": list(info.causes),
        "remedy": info.remedy,
        "audience": info.audience,
        "aliases": aliases_of(info.code, all_codes()),
    }


def _explain(args: argparse.Namespace) -> int:
    from vkdoctor.report.codes import all_codes

    codes = all_codes()
    if args.json in codes and args.code is None:
        # The old spelling `explain --json CODE` (--json was a switch): explain CODE on stdout
        # rather than write a file named after the code.
        print(
            f"vkdoctor explain: note: --json takes a PATH now; this is `vkdoctor explain "
            f"{args.json} --json -`",
            file=sys.stderr,
        )
        args.code, args.json = args.json, "-"
    if args.list or not args.code:
        if args.json:
            return options.write_json(
                [_code_json(i) for _, i in sorted(codes.items())], args.json, "explain"
            )
        for code, info in sorted(codes.items()):
            title = f"alias of {info.alias_of}" if info.alias_of else info.title
            print(f"{code:<40} {info.severity.value:<5} {title}")
        return EXIT_OK
    info = codes.get(args.code)
    if info is not None and info.alias_of in codes:
        # An old code merged into another: say so, then explain the code findings carry now.
        if not args.json:
            print(
                f"{info.code} is an alias of {info.alias_of} (the two meant the same and were "
                f"merged; reports made before carry {info.code})\n"
            )
        info = codes[info.alias_of]
    if info is None:
        from vkdoctor.loader.search import suggest

        nearest = suggest(args.code, list(codes))
        hint = f"; did you mean {nearest}?" if nearest else "; `vkdoctor explain --list` lists them"
        print(f"vkdoctor explain: unknown finding code {args.code!r}{hint}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        return options.write_json(_code_json(info), args.json, "explain")
    print(f"{info.code} ({info.severity.value}): {info.title}\n")
    print(info.explanation)
    if info.causes:
        print("\nUsual causes:")
        for cause in info.causes:
            print(f"  - {cause}")
    if info.remedy:
        print(f"\nRemedy: {info.remedy}")
    return EXIT_OK
