"""Run the release matrix: one line per Debian release with pass/fail counts.

    python3 tests/matrix/run.py [--release NAME ...] [--reports DIR] [-- PYTEST-ARGS]

For each release: the chroot is built unless cached (build.py), the working tree is copied in
and installed into the chroot's venv with the chroot's Python and gcc (the native parts and, at
test time, the fault libraries are compiled for that release), and tests/matrix/test_release.py
runs inside it under that release's loader and Mesa.  --reports copies each release's redacted
healthy report to DIR/matrix-<release>.json.  Exit status 0 when every release passed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from build import VENV, build  # noqa: E402
from chroot import chroot_run  # noqa: E402
from releases import RELEASES, by_name  # noqa: E402

TREE = HERE.parent.parent
SRC = "/opt/vkdoctor-src"
OUT = "/opt/vkdoctor-out"


@dataclass(frozen=True)
class Outcome:
    release: str
    passed: int
    failed: int
    skipped: int
    seconds: float
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.failed == 0 and not self.note

    def line(self) -> str:
        status = "ok  " if self.ok else "FAIL"
        text = (
            f"{status} {self.release:<9} {self.passed} passed, {self.failed} failed, "
            f"{self.skipped} skipped in {self.seconds:.0f} s"
        )
        return f"{text} ({self.note})" if self.note else text


def _tree_files() -> list[str]:
    """The working tree as git sees it: tracked and untracked-but-not-ignored files."""
    out = subprocess.run(
        ["git", "-C", str(TREE), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True,
        capture_output=True,
    ).stdout
    return [name for name in out.decode().split("\0") if name and (TREE / name).is_file()]


def copy_tree(root: Path) -> None:
    target = root / SRC.lstrip("/")
    shutil.rmtree(target, ignore_errors=True)
    for name in _tree_files():
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(TREE / name, dest)


def install(root: Path) -> subprocess.CompletedProcess[str]:
    """vkdoctor from the copied tree into the chroot's venv (its deps are already there)."""
    return chroot_run(
        root,
        [
            f"{VENV}/bin/python", "-m", "pip", "install", "-q",
            "--no-deps", "--no-build-isolation", "--force-reinstall", SRC,
        ],
        capture=True,
        cwd="/tmp",
    )  # fmt: skip


def run_release(name: str, pytest_args: list[str], reports: Path | None) -> Outcome:
    started = time.monotonic()
    release = by_name(name)
    try:
        root = build(release)
    except (subprocess.CalledProcessError, OSError) as exc:
        return Outcome(name, 0, 0, 0, time.monotonic() - started, f"chroot build failed: {exc}")
    copy_tree(root)
    out_dir = root / OUT.lstrip("/")
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    done = install(root)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        return Outcome(name, 0, 0, 0, time.monotonic() - started, "pip install failed")
    junit = f"{OUT}/junit.xml"
    test = chroot_run(
        root,
        [
            "nice", f"{VENV}/bin/python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "-o", "addopts=-ra", "--junitxml", junit, "-m", "matrix",
            f"{SRC}/tests/matrix/test_release.py", *pytest_args,
        ],
        env={"VKDOCTOR_MATRIX_RELEASE": name, "VKDOCTOR_MATRIX_OUT": OUT},
        capture=True,
        # Not the source tree: there `import vkdoctor` would find the uninstalled package, which
        # lacks vkdoctor.probes (mapped from probes/ only by the install).
        cwd="/tmp",
    )  # fmt: skip
    seconds = time.monotonic() - started
    try:
        suite = ET.parse(out_dir / "junit.xml").getroot()
    except (OSError, ET.ParseError):
        sys.stderr.write(test.stdout[-4000:] + test.stderr[-4000:])
        return Outcome(name, 0, 0, 0, seconds, f"pytest exited {test.returncode}, no results")
    if suite.tag != "testsuite":  # pytest wraps the suite in <testsuites>
        suite = next(iter(suite.iter("testsuite")), suite)
    total = int(suite.get("tests", 0))
    failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    skipped = int(suite.get("skipped", 0))
    if failed:
        sys.stderr.write(test.stdout[-8000:])
    if reports is not None:
        for report in (out_dir / f"matrix-{name}.json", out_dir / f"matrix-{name}.md"):
            if report.is_file():
                reports.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(report, reports / report.name)
    return Outcome(name, total - failed - skipped, failed, skipped, seconds)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pytest_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, pytest_args = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", action="append", choices=[r.name for r in RELEASES])
    parser.add_argument("--reports", type=Path, help="copy each healthy report here")
    args = parser.parse_args(argv)
    if os.geteuid() != 0 or shutil.which("mmdebstrap") is None:
        print("run.py: needs root and mmdebstrap (apt-get install mmdebstrap)", file=sys.stderr)
        return 2
    outcomes = []
    for name in args.release or [r.name for r in RELEASES]:
        outcome = run_release(name, pytest_args, args.reports)
        print(outcome.line(), flush=True)
        outcomes.append(outcome)
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
