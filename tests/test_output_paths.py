"""Output paths: nothing at or beside the path is destroyed.

Device nodes are made with mknod in the test's temp dir (char devices with the numbers of
/dev/null, 1:3, and /dev/full, 1:7), never touched in /dev.  What each node does on write comes
from the kernel: the null device swallows, the full device fails with ENOSPC.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import VkWorld

from vkdoctor.cli import main
from vkdoctor.report.io import OutputError, write_text

REPORT = str(Path(__file__).parent.parent / "reports" / "healthy-lavapipe.json")


def _node(tmp_path: Path, name: str, minor: int) -> Path:
    path = tmp_path / name
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    except PermissionError:
        pytest.skip("mknod needs CAP_MKNOD")
    return path


def _same_node(path: Path, minor: int) -> bool:
    st = os.lstat(path)
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, minor)


def vkdoctor(world: VkWorld, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vkdoctor", *args],
        capture_output=True,
        text=True,
        env=world.environ,
        timeout=120,
        **kw,  # type: ignore[arg-type]
    )


def test_null_device_is_written_not_replaced(tmp_path: Path) -> None:
    null = _node(tmp_path, "null", 3)
    assert main(["report", "markdown", REPORT, "-o", str(null)]) == 0
    assert _same_node(null, 3)
    assert os.listdir(tmp_path) == ["null"]  # no temp file left beside it


def test_full_device_is_a_one_line_error_and_stays_a_device(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = _node(tmp_path, "full", 7)
    assert main(["report", "markdown", REPORT, "-o", str(full)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err
    assert _same_node(full, 7)


def test_symlink_to_a_device_keeps_both(tmp_path: Path) -> None:
    null = _node(tmp_path, "null", 3)
    link = tmp_path / "out.md"
    link.symlink_to(null)
    assert main(["report", "markdown", REPORT, "-o", str(link)]) == 0
    assert link.is_symlink() and os.readlink(link) == str(null)
    assert _same_node(null, 3)


def test_symlink_to_a_file_replaces_the_target_and_keeps_the_link(tmp_path: Path) -> None:
    target = tmp_path / "real.md"
    target.write_text("old\n")
    target.chmod(0o640)
    link = tmp_path / "link.md"
    link.symlink_to(target)
    assert main(["report", "markdown", REPORT, "-o", str(link)]) == 0
    assert link.is_symlink()
    assert target.read_text().startswith("## vkdoctor:")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # an existing file keeps its mode
    assert sorted(os.listdir(tmp_path)) == ["link.md", "real.md"]


def test_fifo_is_opened_and_written(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    write_text("through the pipe\n", str(fifo))
    reader.join(timeout=10)
    assert received == [b"through the pipe\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_dev_stdout_writes_to_the_descriptor_held(tmp_path: Path) -> None:
    # Shell redirection to a file: a reopened /dev/stdout would start again at offset 0 and
    # an atomic rename would replace the file under the shell's descriptor.
    out = tmp_path / "captured.txt"
    code = (
        "import sys; from vkdoctor.report.io import write_text; "
        "print('before', flush=True); write_text('report\\n', '/dev/stdout')"
    )
    with out.open("w") as handle:
        subprocess.run([sys.executable, "-c", code], stdout=handle, check=True, timeout=60)
    assert out.read_text() == "before\nreport\n"


def test_directory_and_empty_path_are_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="is a directory"):
        write_text("x", str(tmp_path))
    with pytest.raises(OutputError, match="empty output path"):
        write_text("x", "")


def test_markdown_onto_its_own_input_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "r.json"
    report.write_bytes(Path(REPORT).read_bytes())
    before = report.read_bytes()
    alias = tmp_path / "alias.json"
    alias.symlink_to(report)
    for output in (str(report), str(alias)):
        assert main(["report", "markdown", str(report), "-o", output]) == 2
        assert "the report itself" in capsys.readouterr().err
    assert report.read_bytes() == before


def test_check_output_usage_errors(world: VkWorld, tmp_path: Path) -> None:
    cases = [
        (["--json", ""], "empty output path"),
        (["--json", str(tmp_path / "x"), "--markdown", str(tmp_path / "x")], "both write to"),
        (["--json", "/dev/stdout", "--markdown", "-"], "cannot both use stdout"),
        (["--json", str(tmp_path)], "is a directory"),
    ]
    for extra, message in cases:
        done = vkdoctor(world, "check", "loader-discovery", *extra)
        assert done.returncode == 2, (extra, done.stderr)
        assert message in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "x").exists()


def test_check_json_to_a_null_node_and_stdout_to_full(world: VkWorld, tmp_path: Path) -> None:
    null = _node(tmp_path, "null", 3)
    done = vkdoctor(world, "check", "loader-discovery", "--json", str(null))
    assert done.returncode in (0, 1) and _same_node(null, 3)
    full = _node(tmp_path, "full", 7)
    with full.open("w") as stdout:
        done = subprocess.run(
            [sys.executable, "-m", "vkdoctor", "check", "loader-discovery"],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            env=world.environ,
            timeout=120,
        )
    assert done.returncode == 2
    assert done.stderr == "vkdoctor: cannot write the output: No space left on device\n"


def test_tui_save_onto_a_null_node(tmp_path: Path) -> None:
    from vkdoctor.report.io import load_report
    from vkdoctor.tui.export import SaveRequest, save

    null = _node(tmp_path, "null", 3)
    save(load_report(REPORT), SaveRequest(path=str(null), format="markdown"))
    assert _same_node(null, 3) and os.listdir(tmp_path) == ["null"]
