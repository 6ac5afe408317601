"""The command line as a user runs it: exit codes, stdout purity, plain output, probe selection."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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
    script = os.path.join(os.path.dirname(sys.executable), "vkdoctor")
    if not os.path.exists(script):
        return
    out = subprocess.run([script, "--version"], capture_output=True, text=True, env=world.environ)
    assert out.stdout.strip() == vkdoctor(world, "--version").stdout.strip()


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
