"""Remedies are safe to paste: hostile manifest names and argv through the real `vkdoctor check`
and `vkdoctor trace`, each printed command run by a real `sh` in a scratch folder.

The shell sees only real programs (touch, rm, ls, ...) linked into a private PATH: a command the
remedy names that is not there (gdb, apt-get, sudo) fails with "not found" and changes nothing,
while a `touch PWNED` smuggled in by a file name would run and leave its file behind.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import VkWorld

HOSTILE = "my driver;touch PWNED;.json"
TRACE = (sys.executable, "-m", "vkdoctor", "trace")
SAFE_PROGRAMS = ("touch", "rm", "ls", "cat", "mv", "python3", "true", "dpkg")


def _check(world: VkWorld, *args: str, **env: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "vkdoctor", "check", *args, "--json", "-"],
        env={**world.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout)


def _commands(report: dict) -> dict[str, list[str]]:
    return {
        f["code"]: list((f.get("remedy") or {}).get("commands") or [])
        for p in report["probes"]
        for f in p["findings"]
    }


def _paste(command: str, where: Path) -> subprocess.CompletedProcess[str]:
    """``command`` pasted into sh, started in ``where`` with only SAFE_PROGRAMS on PATH."""
    bin_dir = where / ".bin"
    if not bin_dir.exists():
        bin_dir.mkdir()
        for name in SAFE_PROGRAMS:
            found = shutil.which(name)
            if found:
                (bin_dir / name).symlink_to(found)
    return subprocess.run(
        ["/bin/sh", "-c", command],
        cwd=where,
        env={"PATH": str(bin_dir), "HOME": str(where)},
        capture_output=True,
        text=True,
        timeout=30,
    )


def _pwned(*folders: Path) -> list[Path]:
    return [p for folder in folders for p in folder.rglob("PWNED")]


def test_hostile_manifest_name_gives_a_remedy_that_only_removes_that_file(
    world: VkWorld, tmp_path: Path
) -> None:
    icd = tmp_path / "icd"
    icd.mkdir()
    manifest = icd / HOSTILE
    manifest.write_text(
        json.dumps(
            {
                "file_format_version": "1.0.0",
                "ICD": {"library_path": str(tmp_path / "gone" / "libx.so"), "api_version": "1.3"},
            }
        )
    )
    report = _check(world, VK_DRIVER_FILES=str(manifest))
    commands = _commands(report)
    # As root, outside any package: the stale manifest is removed without sudo, quoted whole.
    assert commands["driver-library-missing"][0] == (
        f"rm {shlex.quote(str(manifest))}  # if it is stale"
    )
    assert commands["driver-search-overridden"] == ["unset VK_DRIVER_FILES"]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    for code, lines in commands.items():
        for line in lines:
            _paste(line, scratch)
            assert not _pwned(scratch, icd, tmp_path), (code, line)
    # The rm really named the one file (its words were not split at the spaces or the ';').
    assert not manifest.exists()


def test_hostile_invalid_manifest_and_layer_variables_are_quoted(
    world: VkWorld, tmp_path: Path
) -> None:
    icd = tmp_path / "icd"
    icd.mkdir()
    broken = icd / "a $(touch PWNED) `touch PWNED` 'b\".json"
    broken.write_text("{ not json")
    report = _check(world, "loader-discovery", "driver-enumeration", VK_DRIVER_FILES=str(broken))
    lines = _commands(report)["manifest-invalid-json"]
    assert lines[0] == shlex.join(["mv", str(broken), f"{broken}.disabled"]) + (
        "  # the loader reads only *.json"
    )
    assert lines[1] == shlex.join(["python3", "-m", "json.tool", f"{broken}.disabled"]) + (
        "  # shows the syntax error, to repair it"
    )
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    for line in lines:
        _paste(line, scratch)
    assert not _pwned(scratch, icd, tmp_path)
    # The mv ran for real on the one file, so the words stayed whole.
    assert not broken.exists() and Path(f"{broken}.disabled").exists()


def test_trace_gdb_remedy_quotes_the_program_arguments(world: VkWorld, tmp_path: Path) -> None:
    program = ["/bin/sh", "-c", "kill -SEGV $$", "sh", ";touch PWNED;", "$(touch PWNED)", "a b"]
    out = tmp_path / "t.json"
    done = subprocess.run(
        [sys.executable, "-m", "vkdoctor", "trace", "--json", str(out), "--", *program],
        env=world.environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in done.stderr, done.stderr
    commands = _commands(json.loads(out.read_text()))
    gdb = commands["program-crashed"][0]
    assert shlex.split(gdb) == ["gdb", "--args", *program]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    pasted = _paste(gdb, scratch)
    assert pasted.returncode == 127  # gdb is not on the private PATH: nothing else ran
    assert not _pwned(tmp_path)


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_trace_out_file_is_private(world: VkWorld, tmp_path: Path, umask: int) -> None:
    """The raw trace keeps argv and variable values verbatim: 0600 whatever the umask, and an
    existing world-readable file is narrowed too."""
    raw = tmp_path / "raw.jsonl"
    stale = tmp_path / "stale.jsonl"
    stale.write_text("old\n")
    stale.chmod(0o644)
    for target in (raw, stale):
        done = subprocess.run(
            [*TRACE, "--out", str(target), "--json", "-", "--", "/bin/true", "-p", "Zs3cret"],
            env=world.environ,
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=lambda: os.umask(umask),
        )
        assert done.returncode in (0, 1), done.stderr
        assert target.stat().st_mode & 0o777 == 0o600
        assert "old" not in target.read_text()  # truncated, not appended to
