"""The command-line side of ``--require``, ``--device-select`` and ``--github``, kept here so
``vkdoctor/cli.py`` only adds the options and two calls."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from vkdoctor.report.model import Report
from vkdoctor.require import apply, best_device
from vkdoctor.require.grammar import Requirement, parse_all, split_list

ENV_VAR = "VKDOCTOR_REQUIRE"


def requirements(args: argparse.Namespace, environ: Mapping[str, str]) -> list[Requirement]:
    """The parsed requirements of a command line; raises RequirementError (a usage error)."""
    texts = split_list(environ.get(ENV_VAR)) + list(getattr(args, "require", None) or ())
    if getattr(args, "device_select", None):
        texts.append(args.device_select)
    return parse_all(texts)


def uses_stdout(args: argparse.Namespace) -> bool:
    return getattr(args, "device_select", None) is not None


def finish(report: Report, reqs: list[Requirement], args: argparse.Namespace) -> Any:
    """Add the requirements step (when asked) and print the selected device; returns the step's
    result for the console, or None."""
    if not reqs and not uses_stdout(args):
        return None
    _run_needed_kernels(report, reqs)
    evaluation = apply(report, reqs)
    if uses_stdout(args):
        device = best_device(evaluation)
        if device is not None:
            print(f"{device.index}\t{device.device_uuid or '-'}\t{device.name}", flush=True)
    return report.probes[-1]


def _run_needed_kernels(report: Report, reqs: list[Requirement]) -> None:
    """``kernels``, ``bandwidth`` and ``fp32`` are measured: run the kernels they need (in a
    child, as ``vkdoctor kernels`` does) on the devices the check found, into the report."""
    from vkdoctor.require.grammar import kernels_needed

    needed = kernels_needed(reqs)
    if needed is False or not report.devices:
        return
    from dataclasses import replace

    from vkdoctor.kernels.run import KernelRequest, KernelSession, merge_into_report

    request = replace(KernelRequest(), kernels=needed)
    merged = merge_into_report(report, KernelSession(request).run())
    report.probes[:] = merged.probes


# Workflow commands: data escapes %, CR, LF; properties also ':' and ','.
def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def github_enabled(args: argparse.Namespace, environ: Mapping[str, str]) -> bool:
    flag = getattr(args, "github", None)
    return bool(flag) or environ.get("GITHUB_ACTIONS") == "true"


def annotations(report: Report) -> list[str]:
    """One ``::error``/``::warning`` line per warn or fail finding, root causes first."""
    # Root causes only (every warning or failure that no other finding explains): symptoms
    # would repeat each cause several times in the workflow's annotation list.
    found = [pf for pf in (report.finding(i) for i in report.root_causes) if pf is not None]
    lines = []
    for probe, finding in found:
        level = "error" if finding.severity.value == "fail" else "warning"
        props = [f"title={_prop(f'vkdoctor {finding.code}')}"]
        where = next(
            (
                finding.evidence[k]
                for k in ("manifest", "driver_manifest", "path", "library")
                if isinstance(finding.evidence.get(k), str)
            ),
            None,
        )
        if where:
            props.insert(0, f"file={_prop(where)}")
        fix = finding.remedy.commands[0] if finding.remedy and finding.remedy.commands else ""
        message = f"[{probe.id}] {finding.summary}" + (f" — fix: {fix}" if fix else "")
        lines.append(f"::{level} {','.join(props)}::{_data(message)}")
    return lines


def emit_github(
    report: Report, args: argparse.Namespace, environ: Mapping[str, str], out: TextIO
) -> None:
    """Annotations on ``out`` and the Markdown report appended to $GITHUB_STEP_SUMMARY."""
    from vkdoctor.render.markdown import render_markdown
    from vkdoctor.report.redact import redact_report, scrub_report

    for line in annotations(report):
        print(line, file=out)
    out.flush()
    summary = environ.get("GITHUB_STEP_SUMMARY")
    if not summary:
        return
    shown = scrub_report(report)
    if getattr(args, "redact", None) is not False:  # public, like the Markdown export
        shown = redact_report(shown)
    try:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(render_markdown(shown) + "\n")
    except OSError as exc:
        print(f"vkdoctor: cannot append to GITHUB_STEP_SUMMARY {summary}: {exc}", file=sys.stderr)


def environ() -> Mapping[str, str]:
    return os.environ
