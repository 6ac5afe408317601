"""The command line as a user runs it: exit codes, stdout purity, plain output, probe selection."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import pytest
from conftest import VkWorld, needs_lavapipe


def vkdoctor(world: VkWorld, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**world.environ, **env}
    return subprocess.run(
        [sys.executable, "-m", "vkdoctor", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )


@needs_lavapipe
def test_json_to_stdout_carries_only_the_report(world: VkWorld) -> None:
    world.lavapipe()
    done = vkdoctor(world, "check", "driver-enumeration", "--json", "-")
    report = json.loads(done.stdout)  # nothing but JSON on stdout
    assert report["schema_version"] == 2 and report["tool"]["name"] == "vkdoctor"
    assert [p["id"] for p in report["probes"]] == ["loader-discovery", "driver-enumeration"]
    assert "driver-enumeration" in done.stderr  # the live lines went to stderr
    assert done.returncode == 0


def test_failure_exit_code_and_plain_output(world: VkWorld) -> None:
    done = vkdoctor(world, "check", "driver-enumeration", NO_COLOR="1")
    assert done.returncode == 1
    assert "\x1b[" not in done.stdout  # not a terminal: no escape sequences
    assert "no-driver-manifests" in done.stdout
    # The world's XDG_DATA_DIRS leaves out this machine's /usr/share, where Mesa's drivers are
    # installed: the fix is the variable, not installing what is installed.
    assert f"export XDG_DATA_DIRS={world.environ['XDG_DATA_DIRS']}:/usr/local/share:/usr/share" in (
        done.stdout
    )
    assert "apt-get install mesa-vulkan-drivers" not in done.stdout


@needs_lavapipe
def test_warnings_fail_unless_fail_on_fail(world: VkWorld) -> None:
    world.lavapipe("a.json")
    world.lavapipe("b.json")  # duplicate manifests: a warning
    assert vkdoctor(world, "check", "driver-enumeration").returncode == 1
    assert vkdoctor(world, "check", "driver-enumeration", "--strict").returncode == 1  # an alias
    assert vkdoctor(world, "check", "driver-enumeration", "--fail-on", "fail").returncode == 0


def test_usage_errors_exit_2(world: VkWorld) -> None:
    assert vkdoctor(world, "check", "no-such-probe").returncode == 2
    assert vkdoctor(world, "check", "--timeout", "-1").returncode == 2
    assert vkdoctor(world, "explain", "no-such-code").returncode == 2
    assert vkdoctor(world).returncode == 2


def test_list_probes_and_explain(world: VkWorld) -> None:
    listed = vkdoctor(world, "check", "--list-probes").stdout
    assert listed.splitlines()[0].startswith("loader-discovery")
    explained = vkdoctor(world, "explain", "driver-library-missing")
    assert explained.returncode == 0 and "Usual causes" in explained.stdout


def test_unwritable_json_destination_is_a_clear_error(world: VkWorld) -> None:
    done = vkdoctor(world, "check", "loader-discovery", "--json", "/proc/version/x.json")
    assert done.returncode == 2 and "cannot write the report" in done.stderr
    assert "Traceback" not in done.stderr


def test_python_dash_m_and_console_script_agree(world: VkWorld) -> None:
    from importlib.metadata import version

    script = os.path.join(os.path.dirname(sys.executable), "vkdoctor")
    if not os.path.exists(script):
        pytest.skip("no vkdoctor console script next to this Python (not pip-installed)")
    out = subprocess.run([script, "--version"], capture_output=True, text=True, env=world.environ)
    # Both print the installed distribution's version (pyproject's, not only __init__'s): two
    # empty outputs, or a stale __version__, must not pass as agreement.
    expected = f"vkdoctor {version('vkdoctor')}"
    assert out.stdout.strip() == expected
    assert vkdoctor(world, "--version").stdout.strip() == expected


def _check_with_a_bug(world: VkWorld, *args: str) -> subprocess.CompletedProcess[str]:
    # Simulates a bug in one probe (ZeroDivisionError) to exercise vkdoctor's own failure path.
    code = (
        "import dataclasses, sys, vkdoctor.probes.layer_enumeration as m\n"
        "m.SPEC = dataclasses.replace(m.SPEC, run=lambda ctx: 1 / 0)\n"
        "from vkdoctor.cli import main\n"
        f"raise SystemExit(main(['check', 'driver-enumeration', 'layer-enumeration', *{list(args)!r}]))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=world.environ, timeout=120
    )


def test_a_vkdoctor_bug_exits_3_and_keeps_the_report(world: VkWorld, tmp_path) -> None:
    path = tmp_path / "report.json"
    done = _check_with_a_bug(world, "--json", str(path))
    assert done.returncode == 3
    assert "bug in vkdoctor" in done.stderr and str(path) in done.stderr
    report = json.loads(path.read_text())
    probes = {p["id"]: p for p in report["probes"]}
    assert probes["driver-enumeration"]["status"] in ("ok", "fail")  # the other probes are kept
    (bug,) = probes["layer-enumeration"]["findings"]
    assert bug["code"] == "internal-error" and "ZeroDivisionError" in bug["evidence"]["traceback"]


def test_a_vkdoctor_bug_without_json_writes_a_partial_report(world: VkWorld, tmp_path) -> None:
    world.environ["XDG_STATE_HOME"] = str(tmp_path / "state")
    done = _check_with_a_bug(world)
    assert done.returncode == 3
    written = list((tmp_path / "state" / "vkdoctor").glob("vkdoctor-partial-*.json"))
    assert len(written) == 1 and str(written[0]) in done.stderr
    assert json.loads(written[0].read_text())["tool"]["name"] == "vkdoctor"


@needs_lavapipe
def test_trace_subcommand_reports_like_check(world: VkWorld) -> None:
    from pathlib import Path

    world.lavapipe()
    program = str(Path(__file__).parent / "reproducers" / "py_premature_unload.py")
    done = vkdoctor(world, "trace", "--json", "-", "--", sys.executable, program)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    (trace,) = report["probes"]
    assert trace["id"] == "trace" and trace["status"] == "fail"
    assert "premature-unload" in [f["code"] for f in trace["findings"]]
    assert "premature-unload" in done.stderr  # the console went to stderr


# -- one vocabulary of flags (issue 15) --


def _one_line_usage_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
    return done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("check", "--json", "/nonexistent/dir/r.json"),
        ("check", "--markdown", "/nonexistent/dir/r.md"),
        ("trace", "--json", "/nonexistent/dir/r.json", "--", "true"),
        ("kernels", "--json", "/nonexistent/dir/r.json"),
        ("kernels", "--markdown", "/nonexistent/dir/r.md"),
        ("explain", "--list", "--json", "/nonexistent/dir/r.json"),
        ("report", "validate", "x.json", "--json", "/nonexistent/dir/r.json"),
        ("report", "diff", "a.json", "b.json", "--json", "/nonexistent/dir/r.json"),
        ("report", "markdown", "r.json", "--markdown", "/nonexistent/dir/r.md"),
        ("report", "markdown", "r.json", "-o", "/nonexistent/dir/r.md"),  # the old spelling
    ],
)
def test_an_output_that_cannot_be_written_fails_before_any_work(world: VkWorld, args) -> None:
    started = time.monotonic()
    done = vkdoctor(world, *args)
    message = _one_line_usage_error(done)
    assert "/nonexistent/dir does not exist" in message
    assert done.stdout == ""  # no probe line, no kernel ran
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    "args",
    [
        ("tui", "--timeout", "-1"),
        ("check", "--timeout", "-1"),
        ("kernels", "--timeout", "nan"),
        ("check", "--deadline", "0"),
        ("trace", "--deadline", "-1", "--", "true"),
        ("trace", "--timeout", "inf", "--", "true"),  # trace's old name of --deadline
    ],
)
def test_timeout_and_deadline_are_validated_the_same_everywhere(world: VkWorld, args) -> None:
    assert "must be between" in _one_line_usage_error(vkdoctor(world, *args))


def test_trace_without_a_program_is_a_usage_error(world: VkWorld) -> None:
    message = _one_line_usage_error(vkdoctor(world, "trace"))
    assert "-- PROGRAM [ARGS...]" in message and "--pid PID" in message


def test_report_validate_on_a_non_report_exits_1_with_the_reason(world: VkWorld, tmp_path) -> None:
    other = tmp_path / "package.json"
    other.write_text('{"name": "left-pad"}')
    done = vkdoctor(world, "report", "validate", str(other))
    assert done.returncode == 1
    assert done.stdout == f"{other}: INVALID, valid JSON, but not a vkdoctor report\n"
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    assert vkdoctor(world, "report", "validate", str(text)).returncode == 1
    assert vkdoctor(world, "report", "validate", str(tmp_path / "absent.json")).returncode == 2


@needs_lavapipe
def test_list_shows_what_check_probe_really_runs(world: VkWorld) -> None:
    world.lavapipe()
    listing = json.loads(vkdoctor(world, "check", "--list", "--json", "-").stdout)
    device = next(p for p in listing if p["id"] == "device")
    assert device["requires"] == ["instance"]
    ran = json.loads(vkdoctor(world, "check", "device", "--json", "-").stdout)
    assert device["runs"] == [p["id"] for p in ran["probes"]]
    assert len(device["runs"]) == 5
    text = vkdoctor(world, "check", "--list", COLUMNS="80").stdout
    assert "`check device` runs 5 probes: loader-discovery, driver-enumeration," in text
    assert vkdoctor(world, "check", "--list-probes").stdout == text  # the old spelling


@needs_lavapipe
def test_quiet_prints_the_verdict_only_and_color_is_chosen(world: VkWorld) -> None:
    world.lavapipe()
    quiet = vkdoctor(world, "check", "driver-enumeration", "-q")
    full = vkdoctor(world, "check", "driver-enumeration")
    assert quiet.returncode == full.returncode and quiet.stderr == ""  # -q changes the text only
    assert quiet.stdout.strip() in full.stdout and len(full.stdout.splitlines()) > 3
    # A run that stops before the instance step speaks of the steps it ran (diagnosis/verdict).
    steps = "No problems in the steps run (loader-discovery, driver-enumeration)"
    assert quiet.stdout.startswith(steps) and len(quiet.stdout.splitlines()) == 1
    assert "\x1b[" in vkdoctor(world, "check", "driver-enumeration", "--color", "always").stdout
    for args, env in ((("--color", "never"), {}), (("--no-color",), {}), ((), {"NO_COLOR": "1"})):
        assert "\x1b[" not in vkdoctor(world, "check", "driver-enumeration", *args, **env).stdout


@needs_lavapipe
def test_check_verbose_fits_the_terminal(world: VkWorld) -> None:
    world.lavapipe()
    done = vkdoctor(world, "check", "-v", COLUMNS="80")
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert not any(line.lstrip().startswith(("{", '"')) for line in lines)  # no raw JSON


def test_explain_json_takes_a_path_and_the_old_spelling_still_prints(world: VkWorld) -> None:
    new = vkdoctor(world, "explain", "no-usable-driver", "--json", "-")
    assert json.loads(new.stdout)["code"] == "no-usable-driver"
    old = vkdoctor(world, "explain", "--json", "no-usable-driver")
    assert json.loads(old.stdout) == json.loads(new.stdout) and "--json takes a PATH" in old.stderr
    listed = json.loads(vkdoctor(world, "explain", "--list", "--json", "-").stdout)
    assert {"gdpa-unexpected", "no-usable-driver"} <= {c["code"] for c in listed}


def test_kernels_list_as_json(world: VkWorld) -> None:
    listed = json.loads(vkdoctor(world, "kernels", "--list", "--json", "-").stdout)
    assert "sgemm" in [k["name"] for k in listed]
    assert vkdoctor(world, "kernels", "--list-kernels").returncode == 0  # the old spelling


def test_every_command_shares_the_same_option_definitions() -> None:
    from vkdoctor.cli import build_parser

    def options_of(*path: str) -> dict[str, argparse.Action]:
        parser = build_parser()
        for name in path:
            sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
            parser = sub.choices[name]
        return {flag: a for a in parser._actions for flag in a.option_strings}

    shared = ("--json", "--markdown", "--redact", "-v", "-q", "--fail-on", "--color")
    for path in (("check",), ("trace",), ("kernels",)):
        found = options_of(*path)
        assert all(flag in found for flag in shared), path
        assert found["--color"].choices == ("auto", "always", "never")
        assert found["--json"].type.__name__ == "path"  # checked while parsing
    for path in (("explain",), ("report", "diff"), ("report", "validate")):
        assert "--json" in options_of(*path), path
    # -o nowhere but as the hidden old spelling of `report markdown --markdown`.
    for path in (("check",), ("trace",), ("kernels",), ("explain",), ("report", "diff")):
        assert "-o" not in options_of(*path), path
    assert options_of("report", "markdown")["-o"].help is argparse.SUPPRESS


@needs_lavapipe
def test_kernels_take_the_shared_result_options(world: VkWorld, tmp_path) -> None:
    world.lavapipe()
    markdown = tmp_path / "kernels.md"
    done = vkdoctor(
        world,
        "kernels",
        *("--size", "tiny", "--kernels", "copy", "--device", "0"),
        *("-q", "--fail-on", "fail", "--markdown", str(markdown), "--json", "-"),
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # stdout carries the JSON only
    assert [p["id"] for p in report["probes"]] == ["kernels"]
    assert done.stderr.splitlines() == ["vkdoctor kernels: every kernel that applies verified"]
    assert "copy" in markdown.read_text()
