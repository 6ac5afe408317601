"""``vkdoctor check --npd`` against node-problem-detector's plugin protocol as NPD implements it
(pkg/custompluginmonitor/plugin/plugin.go): exit 0 OK, 1 problem, anything else unknown; stdout
trimmed and cut to max_output_length (80) bytes is the condition's message.

The real ``vkdoctor check`` runs on the real loader; expected lines are built from what
``vulkaninfo`` reports and the variables the test sets.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import VkWorld, needs_lavapipe
from test_prometheus import only, parse_exposition, vkdoctor, vulkaninfo_summary

from vkdoctor.fleet.npd import one_line


def _npd_view(stdout: str, max_output_length: int = 80) -> str:
    """What NPD makes of the output: trimmed, cut to max_output_length bytes."""
    return stdout.strip().encode("utf-8")[:max_output_length].decode("utf-8", "replace")


@needs_lavapipe
def test_healthy_machine_exits_0_with_the_verdict_cut_to_80_bytes(world: VkWorld) -> None:
    world.lavapipe()
    real = vulkaninfo_summary(world)
    done = vkdoctor(world, "check", "--npd")
    assert done.returncode == 0
    assert done.stderr == ""
    full = (
        f"Vulkan works: loader {real['instance_version']}; device 0: {real['deviceName']} "
        f"(cpu, Vulkan {real['apiVersion']}) via lvp_icd.x86_64.json"
    )
    assert done.stdout == full.encode()[:77].decode() + "...\n"  # one line, nothing else
    assert len(done.stdout.strip().encode()) == 80
    assert _npd_view(done.stdout) == done.stdout.strip()  # NPD cuts nothing more


@needs_lavapipe
def test_filtered_drivers_exit_1_with_the_verdict(world: VkWorld, tmp_path: Path) -> None:
    world.lavapipe()
    assert vulkaninfo_summary(world, VK_LOADER_DRIVERS_SELECT="*nvidia*")["returncode"] != "0"
    metrics = tmp_path / "vkdoctor.prom"
    done = vkdoctor(
        world,
        "check",
        "--npd",
        "--prometheus",
        str(metrics),
        VK_LOADER_DRIVERS_SELECT="*nvidia*",
    )
    assert done.returncode == 1
    assert done.stderr == ""
    assert done.stdout == (
        "Vulkan is unusable: VK_LOADER_DRIVERS_SELECT filters out all 1 installed driv...\n"
    )
    assert len(done.stdout.strip().encode()) <= 80
    # One run feeds both: the metrics file agrees with the plugin.
    assert only(parse_exposition(metrics.read_text()), "vkdoctor_up").value == 0
    # NPD's max_output_length raised: the whole verdict, fix included.
    done = vkdoctor(
        world, "check", "--npd", "--npd-max-output", "4096", VK_LOADER_DRIVERS_SELECT="*nvidia*"
    )
    assert done.returncode == 1
    assert done.stdout.startswith(
        "Vulkan is unusable: VK_LOADER_DRIVERS_SELECT filters out all 1 installed driver "
        "— fix: unset VK_LOADER_DRIVERS_SELECT"
    )
    assert done.stdout.count("\n") == 1 and done.stdout.endswith("\n")


def test_a_vkdoctor_bug_is_unknown_with_the_traceback_on_stderr(world: VkWorld) -> None:
    code = (
        "import dataclasses, vkdoctor.probes.layer_enumeration as m\n"
        "m.SPEC = dataclasses.replace(m.SPEC, run=lambda ctx: 1 / 0)\n"
        "from vkdoctor.cli import main\n"
        "raise SystemExit(main(['check', 'layer-enumeration', '--npd']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=world.environ, timeout=120
    )
    assert done.returncode == 2
    assert done.stdout == "vkdoctor could not decide: internal error in vkdoctor\n"
    assert "ZeroDivisionError" in done.stderr  # what a bug report needs; NPD logs it


def test_an_interrupted_check_is_unknown(world: VkWorld, fault_driver) -> None:
    fault_driver("negotiate-hang")
    process = subprocess.Popen(
        [sys.executable, "-m", "vkdoctor", "check", "--npd", "--timeout", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=world.environ,
    )
    try:
        time.sleep(2.0)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 2
    assert out == "vkdoctor could not decide: interrupted by SIGTERM\n"
    assert err == ""


def test_the_deadline_before_any_finding_is_unknown(world: VkWorld, fault_driver) -> None:
    fault_driver("negotiate-hang")
    done = vkdoctor(world, "check", "--npd", "--timeout", "30", "--deadline", "1")
    assert done.returncode == 2
    assert done.stdout.startswith("vkdoctor could not decide: ")
    assert done.stdout.count("\n") == 1 and len(done.stdout.strip().encode()) <= 80


def test_a_usage_error_is_unknown_and_said_on_stdout(world: VkWorld) -> None:
    done = vkdoctor(world, "check", "--npd", "--json", "-")
    assert done.returncode == 2
    assert done.stdout.startswith("vkdoctor could not run: vkdoctor check: --npd prints one")
    assert done.stdout.count("\n") == 1 and done.stderr == ""


def test_one_line_strips_controls_and_cuts_on_a_character_boundary() -> None:
    assert one_line("a\x1b[2Jb\u202ec\nd\te") == "a[2Jbc d e"
    cut = one_line("x" * 76 + "—" + "tail")  # the dash's 3 bytes straddle byte 77
    assert cut == "x" * 76 + "..." and len(cut.encode()) == 79
    assert one_line("short") == "short"
    assert len(one_line("é" * 100, 80).encode()) <= 80
