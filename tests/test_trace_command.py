"""`vkdoctor trace` as a command: arguments, bad input without tracebacks, the report contract."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys

import pytest
from reproducers.harness import codes, describe, finding, parse_args, probe, trace

from vkdoctor.report import codes as code_registry
from vkdoctor.report.model import Report, Severity
from vkdoctor.trace.analysis import CODES as ANALYSIS_CODES
from vkdoctor.trace.command import CODES as RUN_CODES
from vkdoctor.trace.command import _command, _output_mode, add_arguments


def test_arguments_after_double_dash_are_the_program():
    args = parse_args(["--out", "t.jsonl", "--", "./app", "--flag", "-x"])
    assert _command(args) == ["./app", "--flag", "-x"]
    assert str(args.out) == "t.jsonl"
    assert parse_args(["--pid", "12"]).pid == 12


def test_arguments_fit_under_a_subcommand():
    # the CLI's subparsers keep the subcommand in args.command: ours must not clobber it
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_arguments(sub.add_parser("trace"))
    args = parser.parse_args(["trace", "--timeout", "3", "--", "./app", "--", "-v"])
    assert args.command == "trace"
    assert _command(args) == ["./app", "--", "-v"]
    assert args.timeout == 3.0


def test_json_on_stdout_moves_program_output_to_stderr():
    args = parse_args(["--", "./app"])
    args.json = "-"
    assert _output_mode(args) == "stderr"
    args.json = "report.json"
    assert _output_mode(args) == "inherit"


def test_static_program_cannot_be_audited(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    source = tmp_path / "static.c"
    source.write_text("int main(void) { return 0; }\n")
    binary = tmp_path / "static"
    built = subprocess.run(
        ["gcc", "-static", "-o", str(binary), str(source)], capture_output=True, timeout=120
    )
    if built.returncode != 0:
        pytest.skip("no static libc to link against")
    report = trace([str(binary)])
    assert codes(report) == ["trace-audit-inactive"], describe(report)


def test_no_program():
    report = trace(None)
    assert codes(report) == ["trace-nothing-to-trace"]
    assert probe(report).status.value == "fail"


def test_program_and_pid_together():
    report = trace(["true"], "--pid", "1")
    assert codes(report) == ["trace-nothing-to-trace"]


def test_program_not_found():
    report = trace(["/nonexistent/vkdoctor-app"])
    found = finding(report, "program-not-found")
    assert "/nonexistent/vkdoctor-app" in found.summary
    assert probe(report).facts["program"]["exit"]["state"] == "not-started"
    assert codes(trace(["vkdoctor-no-such-program-in-path"])) == ["program-not-found"]


def test_program_not_executable(tmp_path):
    script = tmp_path / "app.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    assert codes(trace([str(script)])) == ["program-not-executable"]
    assert codes(trace([str(tmp_path)])) == ["program-not-executable"]


def test_program_with_bad_format(tmp_path):
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x7fELF\x02\x01\x01" + b"\x00" * 64)
    garbage.chmod(0o755)
    assert codes(trace([str(garbage)])) == ["program-launch-failed"]


def test_exit_status_is_reported():
    report = trace(["sh", "-c", "exit 3"])
    assert codes(report) == ["program-exit-nonzero"], describe(report)
    assert probe(report).facts["program"]["exit"] == {"state": "exited", "code": 3}
    assert finding(report, "program-exit-nonzero").severity is Severity.INFO


def test_signal_death_is_reported():
    report = trace(["sh", "-c", "kill -SEGV $$"])
    assert probe(report).facts["program"]["exit"]["signal"] == "SIGSEGV"
    crashed = finding(report, "program-crashed")
    assert "kill()" in crashed.summary  # not a fault: no bogus faulting address


def test_timeout_kills_and_reports():
    report = trace(["sleep", "30"], "--timeout", "0.3")
    assert codes(report) == ["program-timeout"], describe(report)
    assert probe(report).facts["program"]["exit"]["state"] == "timeout"
    assert probe(report).facts["program"]["duration_s"] < 10


def test_unwritable_trace_file():
    report = trace(["true"], "--out", "/proc/vkdoctor/nope/trace.jsonl")
    assert codes(report) == ["trace-setup-failed"]


def test_out_keeps_the_raw_trace(tmp_path):
    out = tmp_path / "sub" / "trace.jsonl"
    report = trace(["true"], "--out", str(out))
    assert probe(report).facts["trace_file"] == str(out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["ev"] == "trace_start" and lines[-1]["ev"] == "trace_end"
    assert any(line["ev"] == "hello" for line in lines)  # the audit module ran in `true`


def test_report_round_trips_through_json():
    report = trace(["sh", "-c", "exit 3"])
    data = json.loads(json.dumps(report.to_dict()))
    assert Report.from_dict(data).to_dict() == data
    assert data["probes"][0]["id"] == "trace"
    assert data["summary"]["status"] == "ok"


@pytest.mark.parametrize(
    "command", [["sh", "-c", "exit 3"], ["sh", "-c", "kill -SEGV $$"], ["/nonexistent"], None]
)
def test_report_matches_the_schema(command):
    from vkdoctor.report import schema

    data = json.loads(json.dumps(trace(command).to_dict()))
    assert schema.validate(data) == []
    assert schema.check_consistency(data) == []


def test_codes_are_declared_and_registered():
    assert "vkdoctor.trace.rules.codes" in code_registry.CODE_MODULES
    assert "vkdoctor.trace.command" in code_registry.CODE_MODULES
    assert not set(ANALYSIS_CODES) & set(RUN_CODES)
    for code, info in {**ANALYSIS_CODES, **RUN_CODES}.items():
        assert code == info.code
        assert info.title and info.explanation
    issue_codes = {
        "premature-unload",
        "call-after-unload",
        "loader-bypass",
        "device-command-via-gipa",
        "gipa-null-instance",
        "device-pointers-shared",
        "instance-destroyed-before-devices",
        "use-after-destroy",
        "vulkan-objects-leaked",
        "multiple-vulkan-loaders",
        "fork-after-vulkan-init",
    }
    assert issue_codes <= set(ANALYSIS_CODES)
    assert "trace-native-missing" in RUN_CODES


@pytest.mark.parametrize(
    "module",
    [
        "vkdoctor.trace.command",
        "vkdoctor.trace.analysis",
        "vkdoctor.trace.session",
        "vkdoctor.trace.native_paths",
    ],
)
def test_headless_modules_do_not_import_ui_libraries(module):
    code = (
        f"import sys, {module}; "
        "bad = [m for m in ('rich', 'textual') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ), timeout=60)
