"""Never hang, never orphan: real vkdoctor processes, a real hanging driver, real signals.

Every assertion about survivors is by PID: the descendants of the vkdoctor process are recorded
while it runs, and each must be gone (or a zombie nobody will reap... none may be) shortly after
vkdoctor was signalled, also after SIGKILL, which vkdoctor cannot handle at all.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from conftest import VkWorld

TESTS = str(Path(__file__).parent)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_gone(pids: list[int], within: float = 3.0) -> list[int]:
    end = time.monotonic() + within
    while time.monotonic() < end:
        left = [p for p in pids if _alive(p)]
        if not left:
            return []
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def _descendants(pid: int) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def _maps_hold(pid: int, name: str) -> bool:
    try:
        return name in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def _start_check(world: VkWorld, tmp: Path, *args: str) -> subprocess.Popen[str]:
    env = {**world.environ, "XDG_STATE_HOME": str(tmp / "state")}
    return subprocess.Popen(
        [sys.executable, "-m", "vkdoctor", "check", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_hung_driver(proc: subprocess.Popen[str], library: Path) -> list[int]:
    """Wait until the instance probe's child has the hanging driver mapped (the enumeration
    probes load it too, briefly: the instance probe starts once layer-enumeration's line is
    out); returns every descendant seen until then."""
    lines: list[str] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    seen: set[int] = set()
    end = time.monotonic() + 90
    while time.monotonic() < end:
        assert proc.poll() is None, proc.communicate()
        kids = _descendants(proc.pid)
        seen.update(kids)
        started = any("layer-enumeration" in line for line in list(lines))
        if started and any(_maps_hold(k, library.name) for k in kids):
            time.sleep(0.3)  # let the bisection children start too
            seen.update(_descendants(proc.pid))
            return sorted(seen)
        time.sleep(0.05)
    raise AssertionError("the hanging driver was never loaded")


def _finish(proc: subprocess.Popen[str], timeout: float) -> str:
    """Wait for vkdoctor (its stdout is drained by the reader thread); returns its stderr."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("vkdoctor did not exit") from None
    assert proc.stderr is not None
    return proc.stderr.read()


@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129), (signal.SIGKILL, -9)],
)
def test_no_child_survives_a_signalled_check(
    world: VkWorld, fault_driver, tmp_path: Path, signum: int, code: int
) -> None:
    _, library = fault_driver("create-instance-hang")
    out = tmp_path / "report.json"
    proc = _start_check(world, tmp_path, "--json", str(out), "--timeout", "60")
    children = _wait_for_hung_driver(proc, library)
    assert children
    os.kill(proc.pid, signum)
    stderr = _finish(proc, 20)
    assert proc.returncode == code, stderr
    assert _wait_gone(children) == [], "children survived vkdoctor"
    if signum == signal.SIGKILL:
        return
    assert "Traceback" not in stderr
    assert f"interrupted by {signal.Signals(signum).name}" in stderr
    assert str(out) in stderr
    report = json.loads(out.read_text())
    probes = {p["id"]: p for p in report["probes"]}
    assert probes["loader-discovery"]["status"] != "skipped"  # what finished is kept
    assert probes["instance"]["status"] == "skipped"
    assert probes["instance"]["blocked_by"] == "interrupted"
    assert [f["code"] for f in probes["instance"]["findings"]] == ["run-interrupted"]
    assert probes["dispatch"]["blocked_by"] == "interrupted"


def test_interrupted_without_outputs_names_the_report(
    world: VkWorld, fault_driver, tmp_path: Path
) -> None:
    _, library = fault_driver("create-instance-hang")
    proc = _start_check(world, tmp_path, "--timeout", "60")
    children = _wait_for_hung_driver(proc, library)
    proc.send_signal(signal.SIGTERM)
    stderr = _finish(proc, 20)
    assert proc.returncode == 143
    assert _wait_gone(children) == []
    written = [w for w in stderr.split() if w.endswith(".json")]
    assert written and written[0].startswith(str(tmp_path / "state")), stderr
    assert json.loads(Path(written[0]).read_text())["probes"]


def test_grandchildren_die_when_vkdoctor_is_killed(tmp_path: Path) -> None:
    """A driver that forked a helper: SIGKILL of vkdoctor reaches the helper too (the child's
    lifeline sees EOF and kills its process group)."""
    script = (
        "import sys, time\n"
        "from vkdoctor.engine import child\n"
        "def seen(m):\n"
        "    if m.get('kind') == 'crumb': print(m['text'], flush=True)\n"
        "h = child.start_child('proctasks:fork_and_hang', {}, "
        f"environ={{'PATH': '/usr/bin:/bin', 'PYTHONPATH': {TESTS!r}}}, timeout=600, "
        "on_message=seen)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line.startswith("grandchild "), line
        grandchild = int(line.split()[1])
        kids = _descendants(parent.pid)
        assert grandchild in kids and len(kids) >= 2  # the child, its group watcher, the helper
        parent.kill()
        parent.wait(timeout=10)
        assert _wait_gone(kids) == [], "the child or the helper it forked survived"
    finally:
        parent.kill()


def test_check_into_a_closed_pipe_returns_promptly(world: VkWorld, tmp_path: Path) -> None:
    """`vkdoctor check | head -1` and `| head -3` on a healthy machine (lavapipe)."""
    world.lavapipe()
    for lines in (1, 3):
        proc = subprocess.Popen(
            [sys.executable, "-m", "vkdoctor", "check"],
            env=world.environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        got = [proc.stdout.readline() for _ in range(lines)]
        proc.stdout.close()  # what head does after its lines
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(f"check | head -{lines} hung") from None
        stderr = proc.stderr.read().decode()
        assert all(got), got
        assert proc.returncode == 0, stderr
        assert "Traceback" not in stderr and "Broken pipe" not in stderr


def test_deadline_bounds_the_run(world: VkWorld, fault_driver, tmp_path: Path) -> None:
    fault_driver("create-instance-hang")
    out = tmp_path / "report.json"
    started = time.monotonic()
    proc = _start_check(world, tmp_path, "--json", str(out), "--timeout", "60", "--deadline", "8")
    seen: set[int] = set()
    while proc.poll() is None and time.monotonic() - started < 60:
        seen.update(_descendants(proc.pid))
        time.sleep(0.05)
    _, stderr = proc.communicate(timeout=10)
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, stderr
    assert elapsed < 30, elapsed  # the driver hangs for ever and the child timeout is 60 s
    assert seen and _wait_gone(sorted(seen)) == []
    probes = json.loads(out.read_text())["probes"]
    cut = [p for p in probes if p["status"] == "timeout"]
    assert cut and [f["code"] for f in cut[0]["findings"]] == ["run-deadline-exceeded"]
    after = probes[probes.index(cut[0]) + 1 :]
    # Every later probe was cut too: running ones time out, the others were never started.
    assert after and all(
        p["status"] == "timeout" or (p["status"] == "skipped" and p["blocked_by"] == "deadline")
        for p in after
    )


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-3", "soon", "1e400"])
def test_deadline_must_be_a_finite_positive_number(world: VkWorld, value: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vkdoctor", "check", "--deadline", value],
        env=world.environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "--deadline" in done.stderr.splitlines()[-1]
