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

from vkdoctor import argtypes

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
        help="run only these kernels (--list-kernels names them)",
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
    parser.add_argument(
        "--timeout",
        type=argtypes.seconds(*argtypes.TIMEOUT_RANGE),
        default=120.0,
        metavar="SECONDS",
        help="a kernel still running after this is a hang (default 120)",
    )
    parser.add_argument(
        "--json", metavar="PATH", help="write the JSON report to PATH ('-' for stdout)"
    )
    from vkdoctor.fleet.options import add_kernels_arguments

    add_kernels_arguments(parser)  # --prometheus
    parser.add_argument("--list-kernels", action="store_true", help="list the kernels and exit")
    parser.add_argument("--no-color", action="store_true", help="plain output")
    return parser


def run(args: argparse.Namespace) -> int:
    from vkdoctor.kernels.suite import KERNELS

    if args.list_kernels:
        for name, spec in KERNELS.items():
            print(f"{name:<10} {spec.title}")
        return EXIT_OK
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
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from vkdoctor.engine.env import Env
    from vkdoctor.kernels.run import (
        DevicesSeen,
        KernelFinished,
        KernelSession,
        KernelStarted,
        SuiteFinished,
        SuiteStarted,
        kernel_report,
    )
    from vkdoctor.render.console import make_console
    from vkdoctor.report.io import is_stdout, write_report
    from vkdoctor.system.environment import collect_environment

    to_stdout = any(d is not None and is_stdout(d) for d in (args.json, args.prometheus))
    console = make_console(stderr=to_stdout, force_plain=args.no_color)
    live = console.is_terminal
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    tasks: dict[int, Any] = {}
    starting = (
        progress.add_task("starting the kernel suite's process", total=None) if live else None
    )

    def on_event(event: Any) -> None:
        if isinstance(event, DevicesSeen):
            if starting is not None:
                progress.remove_task(starting)
        elif isinstance(event, SuiteStarted):
            label = f"device {event.index} {event.name[:28]}"
            if live and event.index not in tasks:
                tasks[event.index] = progress.add_task(label, total=len(event.kernels))
            elif not live:
                console.print(f"device {event.index}: {event.name} ({event.preset} sizes)")
        elif isinstance(event, KernelStarted) and event.index in tasks:
            progress.update(tasks[event.index], description=f"device {event.index}: {event.kernel}")
        elif isinstance(event, KernelFinished):
            if event.index in tasks:
                progress.update(tasks[event.index], completed=event.position + 1)
            else:
                console.print(f"  {_row_line(event.row)}")
        elif isinstance(event, SuiteFinished) and event.run.index in tasks:
            progress.update(tasks[event.run.index], description=f"device {event.run.index}: done")

    session = KernelSession(request, on_event=on_event)
    if live:
        progress.start()
    try:
        result = session.run()
    except KeyboardInterrupt:
        session.cancel()
        raise
    finally:
        if live:
            progress.stop()
    console.print(_render(result))
    if result.missing_devices:
        present = ", ".join(f"{i} ({d.name})" for i, d in enumerate(result.devices))
        print(
            f"vkdoctor kernels: no device {', '.join(map(str, result.missing_devices))}; "
            f"present: {present or 'none'}",
            file=sys.stderr,
        )
    if args.json:
        environment = collect_environment(Env.current()).facts
        report = kernel_report(result, environment)
        try:
            write_report(report, args.json)
        except OSError as exc:
            print(
                f"vkdoctor kernels: cannot write the report to {args.json}: {exc.strerror or exc}",
                file=sys.stderr,
            )
            return EXIT_USAGE
        if not to_stdout:
            console.print(f"JSON report: {args.json}", style="dim")
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
    from vkdoctor.report.model import Severity

    failing = any(f.severity is Severity.FAIL for f in result.all_findings())
    return EXIT_ISSUES if failing else EXIT_OK


def _row_line(row: Any) -> str:
    from vkdoctor.kernels import fmt as kernelfmt

    fig = kernelfmt.figure_text(row.figure)
    return (
        f"{row.kernel:<10} {row.status:<12} {kernelfmt.time_ns(row.timing.get('median_ns')):>10}"
        f"  {fig}"
    )


def _render(result: Any) -> Any:
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
        parts.append(finding_block(holder, finding))
    if unsupported:
        parts.append(Text(""))
        for finding in unsupported:
            parts.append(Text(f"not applicable: {finding.summary}", style="dim"))
    if not result.runs and not shown:
        parts.append(Text("no kernel ran", style="yellow"))
    return Group(*parts)
