"""What `vkdoctor trace` keeps of the command line and the environment, and how it ends when
interrupted: real traced programs, real signals."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from conftest import VkWorld

SECRETS = ("Xs3cretpw", "Ys3cretpw", "Zt0kenval")


def _trace(world: VkWorld, tmp: Path, *args: str, **env: str) -> tuple[dict, str]:
    out = tmp / "t.json"
    done = subprocess.run(
        [sys.executable, "-m", "vkdoctor", "trace", "--json", str(out), *args],
        env={**world.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(out.read_text()), out.read_text()


def test_redact_hides_credential_arguments(world: VkWorld, tmp_path: Path) -> None:
    program = ["/bin/sh", "-c", "kill -SEGV $$", "sh", "--password", SECRETS[0], "-p" + SECRETS[1]]
    program += ["--api-token=" + SECRETS[2], "--verbose", "input.txt"]
    report, text = _trace(world, tmp_path, "--redact", "--", *program)
    for secret in SECRETS:
        assert secret not in text
    argv = report["probes"][0]["facts"]["program"]["argv"]
    assert argv[:4] == program[:4]  # the program and its ordinary arguments stay
    assert argv[4] == "--password" and argv[5] == "<redacted>"
    assert argv[6] == "-p<redacted>" and argv[7] == "--api-token=<redacted>"
    assert argv[8:] == ["--verbose", "input.txt"]
    assert "<redacted>" in report["probes"][0]["title"]
    # The crash finding quotes the command line (gdb --args ...): redacted there too.
    crashed = [f for f in report["probes"][0]["findings"] if f["code"] == "program-crashed"]
    # Quoted word by word, so it pastes as the same argv (the "<redacted>" is one word, not a
    # redirection).
    assert crashed[0]["remedy"]["commands"][0] == shlex.join(["gdb", "--args", *argv])


def test_without_redact_argv_is_recorded_in_full(world: VkWorld, tmp_path: Path) -> None:
    program = ["/bin/true", "--password", SECRETS[0]]
    report, _ = _trace(world, tmp_path, "--", *program)
    assert report["probes"][0]["facts"]["program"]["argv"] == program


def test_only_allow_listed_variables_keep_their_values(world: VkWorld, tmp_path: Path) -> None:
    env = {
        "VK_LOADER_DEBUG": "error",  # allow-listed: kept with its value
        "VK_MY_TOOL_SETTING": SECRETS[0],
        "LD_SECRET_THING": SECRETS[1],
        "VKDOCTOR_SOMETHING": SECRETS[2],
    }
    for args in ((), ("--redact",)):
        report, text = _trace(world, tmp_path, *args, "--", "/bin/true", **env)
        for secret in SECRETS:
            assert secret not in text
        environment = report["environment"]
        assert environment["vulkan_environment"]["VK_LOADER_DEBUG"] == "error"
        assert {"VK_MY_TOOL_SETTING", "LD_SECRET_THING", "VKDOCTOR_SOMETHING"} <= set(
            environment["other_variables"]
        )


def test_variable_unknown_names_the_variable_without_its_value(world: VkWorld) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vkdoctor", "check", "loader-discovery", "--json", "-"],
        env={**world.environ, "VK_LOADR_DEBUG": SECRETS[0]},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert SECRETS[0] not in done.stdout
    findings = [f for p in json.loads(done.stdout)["probes"] for f in p["findings"]]
    unknown = [f for f in findings if f["code"] == "variable-unknown"]
    assert unknown and unknown[0]["evidence"]["variable"] == "VK_LOADR_DEBUG"


def _sleep_pid(proc: subprocess.Popen[str]) -> int:
    end = time.monotonic() + 60
    while time.monotonic() < end:
        for kid in psutil.Process(proc.pid).children(recursive=True):
            try:
                if kid.name() == "sleep":
                    return kid.pid
            except psutil.Error:
                continue
        time.sleep(0.05)
    raise AssertionError("the traced program never started")


def _interrupted_trace(world: VkWorld, tmp: Path, to_group: bool) -> tuple[dict, int, int]:
    out = tmp / "t.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vkdoctor", "trace", "--json", str(out), "--", "sleep", "100"],
        env=world.environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group, as a shell job under a terminal
    )
    sleeper = _sleep_pid(proc)
    time.sleep(0.3)
    if to_group:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C at the terminal does
    else:
        os.kill(proc.pid, signal.SIGINT)  # only vkdoctor gets it
    _, stderr = proc.communicate(timeout=30)
    assert "Traceback" not in stderr
    return json.loads(out.read_text()), proc.returncode, sleeper


def test_ctrl_c_during_trace_is_not_a_crash(world: VkWorld, tmp_path: Path) -> None:
    for to_group in (True, False):
        report, code, sleeper = _interrupted_trace(world, tmp_path, to_group)
        assert code == 130
        assert not psutil.pid_exists(sleeper) or (
            psutil.Process(sleeper).status() == psutil.STATUS_ZOMBIE
        )
        codes = [f["code"] for f in report["probes"][0]["findings"]]
        assert "program-crashed" not in codes
        assert "trace-interrupted" in codes
        assert report["probes"][0]["facts"]["program"]["exit"]["interrupted"] is True
