"""pytest plugin: skip (or, with --vulkan-strict, fail) tests whose Vulkan requirements no
device on this machine meets, with vkdoctor's own explanation as the reason.

Registered through the ``pytest11`` entry point, so it is active wherever vkdoctor is installed::

    @pytest.mark.vulkan("gpu", "api>=1.3")
    def test_shader(vulkan_device): ...

The diagnosis runs once per session, only when a test asks for it, and always in a subprocess
(``python -m vkdoctor check --json``): a driver that crashes or hangs takes down that child, never
the test session.  This module imports nothing heavy at pytest start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from vkdoctor.record import frozen

if TYPE_CHECKING:
    from vkdoctor.report.model import Report
    from vkdoctor.report.records import DeviceRecord
    from vkdoctor.require import Evaluation

# Generous: the check itself takes a few seconds, but a busy CI runner and a hanging driver
# (vkdoctor's own per-step timeouts then apply) need room.
CHECK_TIMEOUT_S = 300.0


@frozen
class VulkanDevice:
    """The device the ``vulkan_device`` fixture chose, with the loader that exposes it."""

    index: int
    name: str
    uuid: str | None
    api_version: str
    type: str
    loader_path: str | None
    record: DeviceRecord


class _Session:
    """The one vkdoctor check of a test session, run on first use."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.requirements: list[str] = list(config.getoption("vulkan_require") or ())
        self.strict = bool(config.getoption("vulkan_strict"))
        self.report_path: str | None = config.getoption("vulkan_report")
        self._report: Report | None = None
        self._error: str | None = None
        self._ran = False

    def report(self) -> Report | None:
        if not self._ran:
            self._ran = True
            self._report, self._error = self._run()
        return self._report

    @property
    def error(self) -> str | None:
        return self._error

    def _run(self) -> tuple[Report | None, str | None]:
        from vkdoctor.report.io import ReportError, load_report

        path = self.report_path
        temporary = not path
        if temporary:
            handle, path = tempfile.mkstemp(prefix="vkdoctor-", suffix=".json")
            os.close(handle)
        command = [sys.executable, "-m", "vkdoctor", "check", "--no-color", "--json", path]
        command += [f"--require={r}" for r in self.requirements]
        environ = {k: v for k, v in os.environ.items() if k != "GITHUB_ACTIONS"}
        environ.pop("VKDOCTOR_REQUIRE", None)  # the session's requirements are passed above
        try:
            done = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=CHECK_TIMEOUT_S,
                env=environ,
            )
        except subprocess.TimeoutExpired:
            return None, f"vkdoctor check did not finish within {CHECK_TIMEOUT_S:.0f} s"
        try:
            if not os.path.exists(path) or not os.path.getsize(path):
                last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
                return None, f"vkdoctor check (exit {done.returncode}) wrote no report: {last}"
            return load_report(path), None
        except (OSError, ReportError, json.JSONDecodeError) as exc:
            return None, f"vkdoctor check wrote no readable report: {exc}"
        finally:
            if temporary:
                Path(path).unlink(missing_ok=True)


_SESSION = pytest.StashKey[_Session]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vkdoctor", "Vulkan requirements (vkdoctor)")
    group.addoption(
        "--vulkan-require",
        action="append",
        default=[],
        metavar="EXPR",
        help="a vkdoctor requirement every test needs (repeatable), e.g. gpu, api>=1.3",
    )
    group.addoption(
        "--vulkan-report",
        metavar="PATH",
        default=None,
        help="write vkdoctor's JSON report of this machine to PATH (once per session)",
    )
    group.addoption(
        "--vulkan-strict",
        action="store_true",
        default=False,
        help="fail, instead of skip, tests whose Vulkan requirements are not met",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "vulkan(*requirements): needs a Vulkan device meeting vkdoctor requirement expressions "
        "(e.g. 'gpu', 'api>=1.3', 'memory>=8GiB', 'devices>=2'); skipped with vkdoctor's "
        "reason otherwise",
    )
    config.stash[_SESSION] = _Session(config)


def _reason(report: Report | None, error: str | None, evaluation: Evaluation | None) -> str:
    if report is None:
        return error or "vkdoctor check failed"
    if report.verdict.startswith("Vulkan is unusable") or evaluation is None:
        return report.verdict
    return evaluation.summary()


def _gate(session: _Session, texts: list[str]) -> Evaluation:
    """Skip or fail the current test unless some device meets ``texts``."""
    from vkdoctor.require import RequirementError, evaluate, parse_all

    try:
        requirements = parse_all(texts)
    except RequirementError as exc:
        pytest.fail(str(exc), pytrace=False)
    report = session.report()
    evaluation = evaluate(report, requirements) if report is not None else None
    if evaluation is None or not evaluation.met or not report.devices:
        reason = _reason(report, session.error, evaluation)
        if session.strict:
            pytest.fail(f"Vulkan requirement not met (--vulkan-strict): {reason}", pytrace=False)
        pytest.skip(reason)
    return evaluation


def pytest_runtest_setup(item: pytest.Item) -> None:
    session = item.config.stash[_SESSION]
    marks = list(item.iter_markers("vulkan"))  # a bare @pytest.mark.vulkan: any device
    if marks or session.requirements:
        _gate(session, session.requirements + [str(a) for m in marks for a in m.args])


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(_SESSION, None)
    if state is not None and state.report_path:
        state.report()  # --vulkan-report writes the artifact even when no test asked


@pytest.fixture(scope="session")
def vulkan_report(request: pytest.FixtureRequest) -> Report:
    """vkdoctor's whole report of this machine (skips when vkdoctor could not produce one)."""
    session = request.config.stash[_SESSION]
    report = session.report()
    if report is None:
        reason = _reason(None, session.error, None)
        if session.strict:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return report


@pytest.fixture(scope="session")
def vulkan_device(request: pytest.FixtureRequest) -> VulkanDevice:
    """The best device meeting --vulkan-require (discrete > integrated > virtual > CPU, then
    memory), as runtimes pick one by default."""
    from vkdoctor.require import best_device

    session = request.config.stash[_SESSION]
    evaluation = _gate(session, list(session.requirements))
    record = best_device(evaluation)
    report = session.report()
    assert report is not None  # _gate skipped otherwise
    if record is None:  # met by a count alone (devices<1): there is no device to hand out
        reason = evaluation.summary()
        if session.strict:
            pytest.fail(f"Vulkan requirement not met (--vulkan-strict): {reason}", pytrace=False)
        pytest.skip(reason)
    loader = report.loader
    return VulkanDevice(
        index=record.index,
        name=record.name,
        uuid=record.device_uuid,
        api_version=record.api_version,
        type=record.type,
        loader_path=(loader.real_path or loader.path) if loader else None,
        record=record,
    )
