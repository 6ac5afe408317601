"""``vkdoctor kernels`` stopped by a real signal mid-run: the real command in a subprocess, a real
driver that hangs in vkCreateDevice for the second device (lavapipe behind tests/faultlib's
create-device-hang driver), after the first device's kernels were measured.

Each case asserts the exit code 128+signal, that no descendant recorded while it ran survives (by
PID), and that the report names what was measured before the signal and is a valid report.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import VkWorld, needs_lavapipe

from vkdoctor.report.io import load_report


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _descendants(pid: int) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def _paused(pid: int) -> bool:
    """A thread of ``pid`` blocks in pause(2): the fault driver's hang in vkCreateDevice."""
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        return any("pause" in (t / "wchan").read_text() for t in tasks)
    except OSError:
        return False


def _start(world: VkWorld, tmp: Path, *args: str) -> subprocess.Popen[str]:
    env = {**world.environ, "XDG_STATE_HOME": str(tmp / "state"), "COLUMNS": "80"}
    return subprocess.Popen(
        [sys.executable, "-m", "vkdoctor", "kernels", "--size", "tiny", "--seed", "5", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_hang(proc: subprocess.Popen[str]) -> list[int]:
    seen: set[int] = set()
    end = time.monotonic() + 120
    while time.monotonic() < end:
        assert proc.poll() is None, proc.communicate()
        kids = _descendants(proc.pid)
        seen.update(kids)
        if any(_paused(k) for k in kids):
            return sorted(seen)
        time.sleep(0.05)
    raise AssertionError("the kernel child never reached the hanging vkCreateDevice")


@pytest.fixture
def hanging_second_device(world: VkWorld, fault_driver) -> VkWorld:
    lavapipe = world.lavapipe()
    manifest, _ = fault_driver("create-device-hang")
    # Lavapipe's device first: its kernels are measured before the fault driver's device hangs.
    world.environ["VK_DRIVER_FILES"] = f"{manifest}:{lavapipe}"
    return world


@needs_lavapipe
@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)]
)
def test_a_signal_ends_the_run_and_keeps_what_was_measured(
    hanging_second_device: VkWorld, tmp_path: Path, signum: int, code: int
) -> None:
    out = tmp_path / "kernels.json"
    proc = _start(hanging_second_device, tmp_path, "--json", str(out), "--timeout", "120")
    children = _wait_for_hang(proc)
    assert children
    os.kill(proc.pid, signum)
    try:
        stdout, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("vkdoctor kernels did not exit") from None
    assert proc.returncode == code, stderr
    deadline = time.monotonic() + 3
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in children if _alive(p)] == [], "a child survived vkdoctor kernels"
    assert "Traceback" not in stderr
    name = signal.Signals(signum).name
    assert f"vkdoctor kernels: interrupted by {name}; the report with what was measured" in stderr
    assert str(out) in stderr
    report = load_report(str(out))  # a valid report: the loader validates and upgrades
    facts = report.probes[0].facts
    assert facts["cancelled"] is True
    measured = [r for run in facts["runs"] for r in run["results"] if r["status"] == "ok"]
    assert len(measured) == 9, facts  # the first device's whole suite
    assert "copy" in stdout  # its table was printed too


@needs_lavapipe
def test_without_json_the_partial_report_goes_to_the_state_dir(
    hanging_second_device: VkWorld, tmp_path: Path
) -> None:
    proc = _start(hanging_second_device, tmp_path, "--timeout", "120")
    children = _wait_for_hang(proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stderr
    written = [w for w in stderr.split() if w.endswith(".json")]
    assert written and written[0].startswith(str(tmp_path / "state")), stderr
    assert json.loads(Path(written[0]).read_text())["probes"][0]["id"] == "kernels"
    time.sleep(0.5)
    assert [p for p in children if _alive(p)] == []
