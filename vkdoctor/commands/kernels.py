"""``vkdoctor kernels``: the compute-kernel suite on one device or all, with live progress, a table
per device and a JSON report (``--json``) whose ``kernels`` probe a ``check`` report can embed.

    vkdoctor kernels [--device N[,N...]|all] [--kernels K[,K...]] [--size tiny|small|auto|large]
                     [--seed N] [--warmup N] [--repetitions N] [--timeout S] [--json PATH|-]

Exit codes as for ``check``: 0 every kernel verified (or not applicable), 1 a kernel failed,
produced wrong results, lost the device, crashed or hung, or there is no Vulkan; 2 usage error
(unknown kernel or device); 3 internal error.  The kernels run in a child process (see
``vkdoctor.kernels.run``); only rendering happens here.  Module import stays cheap: rich and the
suite are imported inside ``run``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vkdoctor import cli_options as options

EXIT_OK, EXIT_ISSUES, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def _count(minimum: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    return parse


def _devices(text: str) -> tuple[int, ...] | None:
    if text.strip().lower() == "all":
        return None
    try:
        indices = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a device index (0, 1, ...), a list (0,2) or 'all'"
        ) from None
    if not indices or any(i < 0 for i in indices):
        raise argparse.ArgumentTypeError(f"{text!r}: device indices are 0 or more")
    return tuple(dict.fromkeys(indices))


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "kernels",
        help="run the compute-kernel suite: verified results, timings, fraction of peak",
        description="Run real compute kernels (bandwidth, SAXPY, reduction, FMA, SGEMM, "
        "convolution) on Vulkan devices, verify every result against numpy on fresh random "
        "inputs, and time them with GPU timestamps.",
    )
    parser.add_argument(
        "--device",
        type=_devices,
        default=None,
        metavar="N|all",
        help="device index, comma-separated indices, or all (default)",
    )
    parser.add_argument(
        "--kernels",
        default=None,
        metavar="K[,K...]",
        help="run only these kernels (--list names them)",
    )
    parser.add_argument(
        "--size",
        choices=("tiny", "small", "auto", "large"),
        default="auto",
        help="problem sizes: auto picks by device type (large on discrete GPUs, small on CPU "
        "drivers); tiny is for tests",
    )
    parser.add_argument(
        "--seed",
        type=_count(0),
        default=None,
        metavar="N",
        help="seed of the random inputs (default: random, printed)",
    )
    parser.add_argument(
        "--warmup",
        type=_count(0),
        default=None,
        metavar="N",
        help="untimed dispatches before the timed ones (default: the preset's)",
    )
    parser.add_argument(
        "--repetitions",
        type=_count(1),
        default=None,
        metavar="N",
        help="timed dispatches per kernel (default: the preset's)",
    )
    options.add_timeout(parser, 120.0, "a kernel still running after this is a hang (default 120)")
    options.add_list(parser, "kernels", aliases=("--list-kernels",))
    options.add_result_options(parser)
    from vkdoctor.fleet.options import add_kernels_arguments

    add_kernels_arguments(parser)  # --prometheus
    return parser


def run(args: argparse.Namespace) -> int:
    from vkdoctor.kernels.suite import KERNELS

    if args.list:
        if args.json:
            listing = [{"name": name, "title": spec.title} for name, spec in KERNELS.items()]
            return options.write_json(listing, args.json, "kernels --list")
        for name, spec in KERNELS.items():
            print(f"{name:<10} {spec.title}")
        return EXIT_OK
    from vkdoctor.cli import _output_problem

    problem = _output_problem(args)
    if problem:
        print(f"vkdoctor kernels: {problem}", file=sys.stderr)
        return EXIT_USAGE
    kernels = None
    if args.kernels:
        kernels = tuple(dict.fromkeys(k.strip() for k in args.kernels.split(",") if k.strip()))
        unknown = [k for k in kernels if k not in KERNELS]
        if unknown or not kernels:
            print(
                f"vkdoctor kernels: unknown kernel {', '.join(unknown) or repr(args.kernels)}; "
                f"known: {', '.join(KERNELS)}",
                file=sys.stderr,
            )
            return EXIT_USAGE
    from vkdoctor.fleet.options import prometheus_problem

    problem = prometheus_problem(args)
    if problem:
        print(f"vkdoctor kernels: {problem}", file=sys.stderr)
        return EXIT_USAGE
    from vkdoctor.kernels.run import KernelRequest

    request = KernelRequest(
        devices=args.device,
        kernels=kernels,
        size=args.size,
        seed=args.seed,
        warmup=args.warmup,
        repetitions=args.repetitions,
        timeout_s=args.timeout,
        # Inside the child the fence gives up first, so a slow kernel reports kernel-timeout
        # with its VkResult before the child is killed as hung.
        fence_timeout_s=max(1.0, args.timeout * 0.75),
    )
    return _run(request, args)


def _run(request: Any, args: argparse.Namespace) -> int:
    import dataclasses

    from vkdoctor.engine.interrupt import interrupting_signal, stop_on_signals
    from vkdoctor.kernels.fanout import DeviceFanout
    from vkdoctor.kernels.run import KernelSession, kernel_report
    from vkdoctor.render.console import make_console
    from vkdoctor.report.io import is_stdout
    from vkdoctor.report.model import Severity

    outputs = (args.json, args.markdown, args.prometheus)
    to_stdout = any(d is not None and is_stdout(d) for d in outputs)
    console = make_console(stderr=to_stdout, color=options.color_mode(args))
    # Live progress is for a person watching a terminal; into a pipe or a file only the final
    # table goes (printing each row as it came and then the table showed every result twice).
    progress = _LiveProgress(console) if console.is_terminal and not args.quiet else None
    on_event = progress.on_event if progress else None
    # Several devices: one child per device, GPUs side by side, siblings compared at the end.
    several = request.devices is None or len(request.devices) > 1
    session = (DeviceFanout if several else KernelSession)(request, on_event=on_event)
    with stop_on_signals():
        if progress is not None:
            progress.start()
        try:
            result = session.run()
        finally:
            if progress is not None:
                progress.stop()
        interrupted = interrupting_signal()
    if interrupted is not None:
        result = dataclasses.replace(result, cancelled=True)
    findings = result.all_findings()
    worst = max((f.severity.rank for f in findings), default=-1)
    if args.quiet:  # the verdict only
        problems = sum(f.severity is not Severity.INFO for f in findings)
        console.print(
            f"vkdoctor kernels: {problems} problem{'s' if problems != 1 else ''} found"
            if problems
            else "vkdoctor kernels: every kernel that applies verified"
        )
    else:
        console.print(_render(result, args.verbose))
    if interrupted is not None:
        return _deliver_interrupted(result, args, interrupted)
    if result.missing_devices:
        present = ", ".join(f"{i} ({d.name})" for i, d in enumerate(result.devices))
        print(
            f"vkdoctor kernels: no device {', '.join(map(str, result.missing_devices))}; "
            f"present: {present or 'none'}",
            file=sys.stderr,
        )
    if args.json or args.markdown:
        code = _write_outputs(result, args, console, to_stdout)
        if code is not None:
            return code
    if args.prometheus:
        from vkdoctor.fleet.options import write_or_say
        from vkdoctor.fleet.prometheus import kernels_metrics

        metrics = kernels_metrics(kernel_report(result), result.wall_s)
        if not write_or_say(metrics, args.prometheus, "vkdoctor kernels"):
            return EXIT_USAGE
    if result.internal_errors:
        print(
            "vkdoctor kernels: internal error. This is a bug in vkdoctor, not in your Vulkan "
            f"setup; please report it with the text below.\n{result.internal_errors[0]}",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    if result.missing_devices:
        return EXIT_USAGE
    limit = Severity.WARN.rank if args.fail_on == "warn" else Severity.FAIL.rank
    return EXIT_ISSUES if worst >= limit else EXIT_OK


def _write_outputs(
    result: Any, args: argparse.Namespace, console: Any, to_stdout: bool
) -> int | None:
    """--json and --markdown of the kernel report, redacted as ``check`` redacts its outputs."""
    from vkdoctor.engine.env import Env
    from vkdoctor.kernels.run import kernel_report
    from vkdoctor.render.markdown import render_markdown
    from vkdoctor.report.io import write_report, write_text
    from vkdoctor.report.redact import redact_report, scrub_report
    from vkdoctor.system.environment import collect_environment

    environment = collect_environment(Env.current()).facts
    report = scrub_report(kernel_report(result, environment))
    redacted = redact_report(report) if args.redact is not False else report
    outputs = [
        (args.json, redacted if args.redact else report, write_report),
        (args.markdown, redacted, lambda r, path: write_text(render_markdown(r), path)),
    ]
    for destination, output, write in outputs:
        if not destination:
            continue
        try:
            write(output, destination)
        except OSError as exc:
            print(
                f"vkdoctor kernels: cannot write the report to {destination}: "
                f"{exc.strerror or exc}",
                file=sys.stderr,
            )
            return EXIT_USAGE
        if not to_stdout and not args.quiet:
            console.print(f"report: {destination}", style="dim")
    return None


def _write_json(result: Any, destination: str) -> bool:
    from vkdoctor.engine.env import Env
    from vkdoctor.kernels.run import kernel_report
    from vkdoctor.report.io import write_report
    from vkdoctor.system.environment import collect_environment

    environment = collect_environment(Env.current()).facts
    try:
        write_report(kernel_report(result, environment), destination)
    except OSError as exc:
        print(
            f"vkdoctor kernels: cannot write the report to {destination}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return False
    return True


def _deliver_interrupted(result: Any, args: argparse.Namespace, signum: Any) -> int:
    """What was measured before ``signum`` stopped the run goes to the --json/--markdown paths,
    or to the partial-report path when none was given (as ``check`` does); exit 128+signal."""
    from vkdoctor.report.io import partial_report_path

    if args.json or args.markdown:
        written = _write_outputs(result, args, None, True) is None
        where = " and ".join("stdout" if d == "-" else d for d in (args.json, args.markdown) if d)
    else:
        where = str(partial_report_path())
        written = _write_json(result, where)
    print(
        f"vkdoctor kernels: interrupted by {signum.name}; "
        + (
            f"the report with what was measured so far is in {where}"
            if written
            else "no report written"
        ),
        file=sys.stderr,
    )
    return 128 + int(signum)


class _LiveProgress:
    """A progress bar per device on the terminal, fed by the session's events."""

    def __init__(self, console: Any) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.tasks: dict[int, Any] = {}
        self.starting: Any = self.progress.add_task(
            "starting the kernel suite's process", total=None
        )

    def start(self) -> None:
        self.progress.start()

    def stop(self) -> None:
        self.progress.stop()

    def on_event(self, event: Any) -> None:
        from vkdoctor.kernels.run import (
            DevicesSeen,
            KernelFinished,
            KernelStarted,
            SuiteFinished,
            SuiteStarted,
        )

        progress, tasks = self.progress, self.tasks
        if isinstance(event, DevicesSeen) and self.starting is not None:
            progress.remove_task(self.starting)
            self.starting = None
        elif isinstance(event, SuiteStarted) and event.index not in tasks:
            label = f"device {event.index} {event.name[:28]}"
            tasks[event.index] = progress.add_task(label, total=len(event.kernels))
        elif isinstance(event, KernelStarted) and event.index in tasks:
            progress.update(tasks[event.index], description=f"device {event.index}: {event.kernel}")
        elif isinstance(event, KernelFinished) and event.index in tasks:
            progress.update(tasks[event.index], completed=event.position + 1)
        elif isinstance(event, SuiteFinished) and event.run.index in tasks:
            progress.update(tasks[event.run.index], description=f"device {event.run.index}: done")


def _render(result: Any, verbose: int = 0) -> Any:
    """Per device: what ran where (device, driver, sizes, peak), a table, then the findings."""
    from rich.console import Group
    from rich.text import Text

    from vkdoctor.render.console import finding_block
    from vkdoctor.render.kernels import kernel_run_parts
    from vkdoctor.report.model import ProbeResult, Severity, Status

    parts = kernel_run_parts(result)
    holder = ProbeResult("kernels", "Compute kernel suite", Status.OK)
    shown = [f for f in result.all_findings() if f.severity is not Severity.INFO]
    unsupported = [f for f in result.all_findings() if f.severity is Severity.INFO]
    for finding in sorted(shown, key=lambda f: -f.severity.rank):
        parts.append(Text(""))
        parts.append(finding_block(holder, finding, verbose))
    if unsupported:
        parts.append(Text(""))
        for finding in unsupported:
            parts.append(Text(f"not applicable: {finding.summary}", style="dim"))
    if not result.runs and not shown:
        parts.append(Text("no kernel ran", style="yellow"))
    return Group(*parts)
