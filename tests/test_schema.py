"""The report schema: real reports conform, broken ones are refused with the right message, our
validator agrees with the jsonschema reference, reports are deterministic and written atomically."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import VkWorld, needs_lavapipe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vkdoctor.engine.runner import Options, run_pipeline
from vkdoctor.report.io import ReportError, dumps, load_report_dict, write_atomic, write_report
from vkdoctor.report.schema import (
    ANNOTATIONS,
    SUPPORTED,
    check_consistency,
    load_schema,
    schema_keywords,
    validate,
    volatile_paths,
    without_volatile,
)

REPO = Path(__file__).resolve().parent.parent
SCHEMA = load_schema()
REFERENCE = jsonschema.Draft202012Validator(SCHEMA)


@pytest.fixture(scope="module")
def broken_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real run (lavapipe plus a manifest pointing at a missing library), shared by the
    tests that only read it."""
    if not Path("/usr/share/vulkan/icd.d/lvp_icd.x86_64.json").exists():
        pytest.skip("lavapipe is not installed")
    tmp = tmp_path_factory.mktemp("world")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("VK_", "XDG_"))}
    environ.pop("LD_LIBRARY_PATH", None)
    environ.update(
        HOME=str(tmp / "home"),
        XDG_CONFIG_HOME=str(tmp / "config"),
        XDG_CONFIG_DIRS=str(tmp / "xdg"),
        XDG_DATA_HOME=str(tmp / "data"),
        XDG_DATA_DIRS=str(tmp / "share"),
    )
    world = VkWorld(tmp, environ)
    world.lavapipe()
    world.driver("broken_icd.json", "/nonexistent/libvulkan_broken.so")
    return world.run().to_dict()


def test_schema_is_a_valid_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    # Every version a reader upgrades (report/upgrade.py) and nothing else; the description is
    # text for people, so only its presence is a contract.
    from vkdoctor.report.model import SCHEMA_VERSION

    version = SCHEMA["properties"]["schema_version"]
    assert set(version) == {"description", "enum"}
    assert version["enum"] == list(range(1, SCHEMA_VERSION + 1))
    assert isinstance(version["description"], str) and version["description"].strip()


def test_our_validator_implements_every_keyword_the_schema_uses() -> None:
    used = {k for k in schema_keywords(SCHEMA) if not k.startswith("x-")}
    assert used - ANNOTATIONS - SUPPORTED == set()


@needs_lavapipe
def test_real_reports_validate(broken_report: dict[str, Any], world: VkWorld) -> None:
    world.lavapipe()
    healthy = world.run().to_dict()
    for data in (healthy, broken_report):
        assert validate(data) == []
        assert check_consistency(data) == []
        REFERENCE.validate(data)
    assert healthy["summary"]["status"] == "ok"
    assert broken_report["summary"]["status"] == "fail"


def _set(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``data`` with ``path`` (dots, numbers for list items) set; value ... deletes."""
    data = copy.deepcopy(data)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node: Any = data
    for part in parents:
        node = node[part]
    if value is Ellipsis:
        del node[last]
    else:
        node[last] = value
    return data


BROKEN = [
    ("tool.version", ..., "tool", "missing required key 'version'"),
    ("schema_version", 3, "schema_version", "is not one of: 1, 2"),
    ("created", "yesterday", "created", "does not match"),
    ("summary.status", "great", "summary.status", "is not one of: ok, warn, fail"),
    ("probes.1.status", "broken", "probes[1].status", "is not one of"),
    ("probes.1.duration_s", -1, "probes[1].duration_s", "must be at least 0"),
    ("probes.1.blocked_by", 7, "probes[1].blocked_by", "expected"),
    (
        "probes.1.findings.0.code",
        "Driver_Library_Missing",
        "probes[1].findings[0].code",
        "does not match",
    ),
    ("probes.1.findings.0.severity", "fatal", "probes[1].findings[0].severity", "is not one of"),
    ("probes.1.findings.0.summary", "", "probes[1].findings[0].summary", "must not be empty"),
    (
        "probes.1.findings.0.remedy",
        "rm it",
        "probes[1].findings[0].remedy",
        "expected an object or null",
    ),
    (
        "probes.1.findings.0.evidence",
        ...,
        "probes[1].findings[0]",
        "missing required key 'evidence'",
    ),
    ("probes.1.facts", [], "probes[1].facts", "expected an object, got a list"),
    ("loader_log.0.level", "loud", "loader_log[0].level", "is not one of"),
    ("drivers.0.manifest", ..., "drivers[0]", "missing required key 'manifest'"),
    ("drivers.0.issues", ["Bad Code"], "drivers[0].issues[0]", "does not match"),
    ("summary.counts.probes.ok", -2, "summary.counts.probes.ok", "must be at least 0"),
    ("devices", {}, "devices", "expected a list"),
    ("environment", None, "environment", "expected an object, got null"),
]


@pytest.mark.parametrize(("path", "value", "where", "message"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_reports_are_refused_with_a_clear_message(
    broken_report: dict[str, Any], path: str, value: Any, where: str, message: str
) -> None:
    data = _set(broken_report, path, value)
    errors = validate(data)
    assert errors, "the broken report passed"
    assert any(e.path == where and message in e.message for e in errors), [str(e) for e in errors]
    assert not REFERENCE.is_valid(data)


def test_consistency_catches_a_summary_that_lies(broken_report: dict[str, Any]) -> None:
    data = _set(broken_report, "summary.status", "ok")
    data = _set(data, "probes.2.blocked_by", "no-such-probe")
    assert validate(data) == []  # each field alone is well-formed
    messages = [str(e) for e in check_consistency(data)]
    assert "summary.status: says 'ok' but the probes make it 'fail'" in messages
    assert any(m.startswith("probes[2].blocked_by: names 'no-such-probe'") for m in messages)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            paths += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += _paths(item, (*prefix, index))
    return paths


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(-1, 1, allow_nan=False),
    st.sampled_from(
        [
            "",
            "ok",
            "fail",
            "warn",
            "info",
            "skipped",
            "Bad Code",
            "driver-x",
            "2024-01-01T00:00:00+00:00",
            "vkdoctor",
            "error",
        ]
    ),
    st.just([]),
    st.just({}),
    st.just(["x"]),
    st.just({"text": "t", "commands": []}),
)


@needs_lavapipe
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_our_validator_agrees_with_jsonschema(broken_report: dict[str, Any], data: Any) -> None:
    # Mutate the real report at random places; both validators must agree on valid/invalid.
    paths = _paths(broken_report)
    mutated = copy.deepcopy(broken_report)
    for _ in range(data.draw(st.integers(1, 2))):
        path = data.draw(st.sampled_from(paths[1:]))
        parent: Any = mutated
        try:
            for part in path[:-1]:
                parent = parent[part]
            if isinstance(parent, dict) and data.draw(st.booleans()):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = data.draw(_VALUES)
        except (KeyError, IndexError, TypeError):
            continue
    assert (validate(mutated) == []) == REFERENCE.is_valid(mutated)


def test_volatile_fields_are_the_times() -> None:
    assert sorted(volatile_paths()) == [("created",), ("probes", "*", "duration_s")]
    data = {
        "created": "x",
        "timeout": 5,
        "probes": [
            {
                "duration_s": 1,
                "facts": {"runs": [{"wall_s": 0.1, "gpu_time_ns": 7.0, "elements": 4}], "sizes": 3},
            }
        ],
    }
    assert without_volatile(data) == {
        "timeout": 5,
        "probes": [{"facts": {"runs": [{"elements": 4}], "sizes": 3}}],
    }


@needs_lavapipe
def _loader_problems_only(report: dict) -> dict:
    """The report with each probe's loader log reduced to its warnings and errors (what the
    renderers and `report diff` show).  The loader's info lines of its one-time start-up
    ("Vulkan Loader Version ...") go to whichever probe first loads it in a shared child
    (engine/child.py ChildPool), which depends on which child was free first."""
    table = report["loader_log"]
    problems = [i for i, e in enumerate(table) if e["level"] in ("error", "warn")]
    for probe in report["probes"]:
        probe["loader_log"] = sorted(
            (table[i]["level"], table[i]["message"]) for i in probe["loader_log"] if i in problems
        )
        probe["facts"].pop("loader_log_stored", None)
    report["loader_log"] = sorted((table[i]["level"], table[i]["message"]) for i in problems)
    return report


def test_reports_are_deterministic_apart_from_times(world: VkWorld) -> None:
    world.lavapipe()
    first, second = world.run().to_dict(), world.run().to_dict()
    assert dumps(_loader_problems_only(without_volatile(first))) == dumps(
        _loader_problems_only(without_volatile(second))
    )


def test_reports_are_deterministic_with_children_of_their_own(world: VkWorld) -> None:
    """Without shared children, every line of every probe's loader log is the same each run."""
    world.lavapipe()
    options = Options(reuse_children=False)
    first, second = (run_pipeline(world.env(), options).report.to_dict() for _ in range(2))
    assert dumps(without_volatile(first)) == dumps(without_volatile(second))


def test_a_failed_write_leaves_the_old_report_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.json"
    target.write_text("OLD")

    def fail(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError):
        write_atomic(target, "x" * 100_000)
    assert target.read_text() == "OLD"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_killed_writer_never_leaves_a_truncated_report(tmp_path: Path) -> None:
    # The writer is SIGKILLed after the new text is in the temp file but before the rename:
    # the report is still the old, complete one.
    target = tmp_path / "report.json"
    target.write_text('{"old": true}\n')
    script = (
        "import os, time, sys\n"
        "from vkdoctor.report import io as report_io\n"
        "real = os.fsync\n"
        "def slow(fd):\n"
        "    real(fd); print('written', flush=True); time.sleep(30)\n"
        "os.fsync = slow\n"
        f"report_io.write_atomic({str(target)!r}, '{{\"new\": true}}' + ' ' * 1_000_000)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "written"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    assert json.loads(target.read_text()) == {"old": True}


def test_write_report_masks_secrets_and_keeps_permissions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOY_TOKEN", "tok-9f8e7d6c5b4a")
    data = {
        "schema_version": 1,
        "tool": {"name": "vkdoctor", "version": "0"},
        "note": "pushed with tok-9f8e7d6c5b4a to https://ci:hunter22@example.com/x",
    }
    old = os.umask(0o022)
    try:
        write_report(data, str(tmp_path / "r.json"))
    finally:
        os.umask(old)
    text = (tmp_path / "r.json").read_text()
    assert "tok-9f8e7d6c5b4a" not in text and "hunter22" not in text
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ('{"schema_version": 1, "tool": {"name": "vkdoctor"', "looks truncated"),
        ("hello", "not valid JSON at line 1, column 1"),
        ("[1, 2]", "valid JSON, but not a vkdoctor report"),
        ('{"tool": "vkdoctor"}', "valid JSON, but not a vkdoctor report"),
        ('{"tool": {"name": "vkdoctor"}, "schema_version": "1"}', "without a valid schema_version"),
        ('{"tool": {"name": "vkdoctor"}, "schema_version": 7}', "written by a newer vkdoctor"),
        ('{"tool": {"name": "vkdoctor"}, "schema_version": 0}', "unknown report schema version 0"),
        ("[" * 100_000, "nested too deeply"),
    ],
    ids=[
        "empty",
        "truncated",
        "not-json",
        "list",
        "tool-string",
        "version-string",
        "newer",
        "version-0",
        "deep",
    ],
)
def test_unusable_files_get_one_clear_message(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(ReportError, match=message):
        load_report_dict(str(path))


def test_binary_missing_and_directory_files(tmp_path: Path) -> None:
    binary = tmp_path / "core"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00\xff\xfe")
    for path, message in (
        (binary, "not a text file"),
        (tmp_path / "nope.json", "no such file"),
        (tmp_path, "is a directory"),
    ):
        with pytest.raises(ReportError, match=message):
            load_report_dict(str(path))


def test_truncated_real_report_says_truncated(tmp_path: Path) -> None:
    text = (REPO / "reports" / "broken-missing-library.json").read_text()
    path = tmp_path / "cut.json"
    path.write_text(text[: len(text) // 2])
    with pytest.raises(ReportError, match="truncated"):
        load_report_dict(str(path))
