"""Every finding code is produced by some test, through vkdoctor's own code.

tests/codecollect wraps ``make_finding`` (the one constructor of product findings) in this
process and, through PYTHONPATH, in every Python process the tests start; each built finding
appends its code to the session's log.  This test runs last (conftest orders it) and only when
the whole suite ran: then a code of ``all_codes()`` missing from the log is a code no test
produces.  A finding a test writes by hand does not count.

Two lists say why a code may be missing, each entry with its reason; both are kept exact (a
listed code that a test does produce fails too, so the lists only shrink).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vkdoctor.report.codes import all_codes

# Codes whose real cause cannot be produced on this machine.  Reason next to each.
CANNOT_PRODUCE: dict[str, str] = {
    "loader-old": "needs a libvulkan older than 1.1; only 1.3.239 is installed",
    "kernels-internal-error": "raised only by a bug in vkdoctor's kernel suite process",
    "process-not-accessible": "as root every /proc/PID is readable; needs a second, unprivileged "
    "user tracing another's process",
    "layer-library-unreadable": "as root every file is readable; needs a non-root test run",
    "kernels-no-device": "loader 1.3.239 fails vkEnumeratePhysicalDevices when no driver has a "
    "device, so an instance with zero devices does not exist here",
}

# Codes a real cause could produce here but no test does yet (issue 19).  Reason next to each.
NOT_YET_PRODUCED: dict[str, str] = {}

# Codes only tests in a cached Debian release chroot produce (tests/matrix/test_host_loaders.py).
# A fresh machine builds the chroots after pytest (bootstrap.sh test runs tests/matrix/run.py),
# so these count as missing only where the chroot they need is cached.
_MATRIX_CACHE = Path(os.environ.get("VKDOCTOR_MATRIX_CACHE", "/var/cache/vkdoctor-matrix"))
NEEDS_MATRIX_CHROOT: dict[str, str] = {
    "loader-needs-newer-libc": "sid",  # sid's loader needs a newer glibc than this system's
}


def _unavailable_here() -> set[str]:
    lib = "usr/lib/x86_64-linux-gnu/libvulkan.so.1"
    return {c for c, rel in NEEDS_MATRIX_CHROOT.items() if not (_MATRIX_CACHE / rel / lib).exists()}


_LOG = os.environ.get("VKDOCTOR_TEST_CODE_LOG", "")


def _produced() -> dict[str, set[str]]:
    seen: dict[str, set[str]] = {}
    if _LOG and Path(_LOG).exists():
        for line in Path(_LOG).read_text(errors="replace").splitlines():
            code, _, test = line.partition("\t")
            seen.setdefault(code, set()).add(test)
    return seen


def test_the_lists_name_real_codes_once() -> None:
    codes = set(all_codes())
    assert set(CANNOT_PRODUCE) <= codes, set(CANNOT_PRODUCE) - codes
    assert set(NOT_YET_PRODUCED) <= codes, set(NOT_YET_PRODUCED) - codes
    assert not set(CANNOT_PRODUCE) & set(NOT_YET_PRODUCED)


def test_the_collector_sees_findings_built_here_and_in_subprocesses(tmp_path: Path) -> None:
    """The log really records product findings, in-process and from a `vkdoctor` child."""
    import subprocess
    import sys

    log = tmp_path / "codes.log"
    env = {**os.environ, "VKDOCTOR_TEST_CODE_LOG": str(log)}
    done = subprocess.run(
        [sys.executable, "-m", "vkdoctor", "check", "loader-discovery", "--json", "-"],
        env={**env, "VK_LOADR_DEBUG": "1"},  # a misspelt variable: variable-unknown
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 1), done.stderr
    assert "variable-unknown" in log.read_text().split()


def test_every_code_is_produced_by_some_test(whole_suite: bool) -> None:
    if not whole_suite:
        pytest.skip("only a run of the whole suite (no -k, -m or file arguments) can tell")
    # Codes merged into another (alias_of) are never built any more: findings carry the new one.
    codes = {c for c, info in all_codes().items() if not info.alias_of}
    seen = set(_produced())
    missing = codes - seen - set(CANNOT_PRODUCE) - set(NOT_YET_PRODUCED) - _unavailable_here()
    assert not missing, "codes no test produces: " + ", ".join(sorted(missing))
    now_produced = seen & (set(CANNOT_PRODUCE) | set(NOT_YET_PRODUCED))
    assert not now_produced, "produced now, take off the lists: " + ", ".join(sorted(now_produced))
    unknown = seen - codes
    assert not unknown, "built but not in any CODES table: " + ", ".join(sorted(unknown))
