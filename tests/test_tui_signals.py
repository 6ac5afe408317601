"""`vkdoctor tui` stopped by a real signal during a live run: the real command on a pseudo
terminal, a real driver that hangs in vkCreateInstance, real SIGTERM/SIGHUP/SIGINT.

Asserted: exit code 128+signal, no descendant seen while it ran survives (by PID), and the
partial report (what the run had finished) is written, named on stderr and a valid report.
Textual paints the screen through stderr, so stderr goes to a file (a pipe nobody reads until
the end fills up and blocks the app's writer thread).
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import VkWorld

from vkdoctor.report.io import load_report

pytest.importorskip("textual")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _maps_hold(pid: int, name: str) -> bool:
    try:
        return name in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def _paused(pid: int) -> bool:
    """A thread blocks in pause(2): the fault driver's hang."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
        return any("pause" in (t / "wchan").read_text() for t in tasks)
    except OSError:
        return False


def _drain(fd: int) -> None:
    while select.select([fd], [], [], 0)[0]:
        try:
            if not os.read(fd, 65536):
                return
        except OSError:
            return


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)]
)
def test_a_signal_ends_the_tui_and_keeps_the_run_so_far(
    world: VkWorld, fault_driver, tmp_path: Path, signum: int, code: int
) -> None:
    _, library = fault_driver("create-instance-hang")
    env = {**world.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "TERM": "xterm-256color"}
    main, tty = pty.openpty()
    err_path = tmp_path / "stderr.txt"
    with err_path.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vkdoctor", "tui", "--timeout", "60"],
            stdin=tty,
            stdout=tty,
            stderr=err,
            env=env,
        )
    os.close(tty)
    try:
        seen: set[int] = set()
        end = time.monotonic() + 120
        while time.monotonic() < end:
            _drain(main)  # the terminal must be read, as a real one is
            assert proc.poll() is None, err_path.read_text()[-2000:]
            kids = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
            seen.update(kids)
            # The instance probe's child blocks in the driver's vkCreateInstance.
            if any(_paused(k) and _maps_hold(k, library.name) for k in kids):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the hanging driver was never loaded")
        time.sleep(0.5)
        seen.update(p.pid for p in psutil.Process(proc.pid).children(recursive=True))
        os.kill(proc.pid, signum)
        end = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < end:
            _drain(main)
            time.sleep(0.05)
        if proc.poll() is None:
            raise AssertionError("vkdoctor tui did not exit")
    finally:
        proc.kill()
        proc.wait()
        os.close(main)
    stderr = err_path.read_text(errors="replace")
    assert proc.returncode == code, stderr[-2000:]
    time.sleep(0.5)
    assert [p for p in seen if _alive(p)] == [], "a child survived vkdoctor tui"
    assert "Traceback" not in stderr
    name = signal.Signals(signum).name
    found = re.search(
        rf"interrupted by {name}; the report with what was found so far is in (\S+)", stderr
    )
    assert found, stderr[-2000:]
    assert found.group(1).startswith(str(tmp_path / "state"))
    report = load_report(found.group(1))  # valid: the loader validates it
    by_id = {p.id: p for p in report.probes}
    assert by_id["loader-discovery"].blocked_by is None  # finished before the signal
    # The hung probe never has a result of its own: it is absent (the TUI wrote what had
    # finished) or marked interrupted (the runner's stop had recorded it first), and so is
    # every probe after it.
    hung = by_id.get("instance")
    assert hung is None or (
        hung.blocked_by == "interrupted" and [f.code for f in hung.findings] == ["run-interrupted"]
    )
    assert all(by_id[p].blocked_by == "interrupted" for p in ("device", "dispatch") if p in by_id)
