"""``vkdoctor report summarize`` over real reports of real runs.

A module fixture runs the real ``vkdoctor check`` on this machine (the real loader and lavapipe)
four times: healthy; broken by ``VK_DRIVER_FILES=/nonexistent.json``; and twice with a real
driver manifest whose library is missing, in two different users' homes and with two different
versions in its name (the same fault on two machines, which must be one signature).  Those
reports are copied under host names with their ``created`` times moved, next to a truncated
file, a JSON file that is no report and a schema-1 report.  Expected values come from what the
runs were given (hosts, times, variables, files) and from the real loader (``vulkaninfo``),
not from vkdoctor's output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import needs_lavapipe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parent.parent
V1 = REPO / "tests" / "fixtures" / "v1"


def vkdoctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vkdoctor", *args],
        env={**(env or _clean_env()), "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("VK_", "XDG_"))}


def _check(out: Path, **variables: str) -> dict[str, Any]:
    done = vkdoctor("check", "--json", str(out), env={**_clean_env(), **variables})
    assert done.returncode in (0, 1), done.stderr
    return json.loads(out.read_text())


def _copy(data: dict[str, Any], path: Path, created: str) -> None:
    path.write_text(json.dumps({**data, "created": created}))


def _missing_library_home(root: Path, user: str, version: str) -> Path:
    """A home with a real driver manifest (found by the loader's XDG_DATA_HOME default) whose
    library does not exist."""
    home = root / "home" / user
    icd = home / ".local" / "share" / "vulkan" / "icd.d"
    icd.mkdir(parents=True)
    (icd / f"vendor-{version}_icd.json").write_text(
        json.dumps(
            {
                "file_format_version": "1.0.0",
                "ICD": {
                    "library_path": f"/opt/vendor/{version}/libvk_vendor.so",
                    "api_version": "1.3.0",
                },
            }
        )
    )
    return home


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not Path("/usr/share/vulkan/icd.d/lvp_icd.x86_64.json").exists():
        pytest.skip("Mesa's lavapipe (mesa-vulkan-drivers) is not installed")
    runs = tmp_path_factory.mktemp("runs")
    healthy = _check(runs / "healthy.json")
    override = _check(runs / "override.json", VK_DRIVER_FILES="/nonexistent.json")
    alice = _check(runs / "alice.json", HOME=str(_missing_library_home(runs, "alice", "1.2.3")))
    bob = _check(runs / "bob.json", HOME=str(_missing_library_home(runs, "bob", "1.2.4")))
    fleet = tmp_path_factory.mktemp("fleet")
    (fleet / "rack2").mkdir()
    _copy(healthy, fleet / "n01.json", "2026-11-30T10:00:00+00:00")
    _copy(healthy, fleet / "n02.json", "2026-11-30T10:05:00+00:00")
    _copy(healthy, fleet / "rack2" / "n03.json", "2026-11-30T09:00:00+00:00")
    _copy(override, fleet / "n04.json", "2026-11-30T11:00:00+00:00")
    _copy(override, fleet / "rack2" / "n05.json", "2026-12-01T08:30:00+00:00")
    _copy(alice, fleet / "n06.json", "2026-11-29T23:59:59+00:00")
    _copy(bob, fleet / "n07.json", "2026-12-01T12:00:00+02:00")
    text = json.dumps(healthy)
    (fleet / "n08.json").write_text(text[: len(text) // 2])  # cut off mid-write
    (fleet / "n09.json").write_text('{"kind": "not a report"}')
    (fleet / "notes.txt").write_text("not a report, not *.json: ignored")
    return fleet


OVERRIDE = (
    "  2 machines  driver-search-overridden (VK_DRIVER_FILES): VK_DRIVER_FILES=/nonexistent.json "
    "replaces the driver search — fix: unset VK_DRIVER_FILES · seen 2026-11-30T11:00:00+00:00 to "
    "2026-12-01T08:30:00+00:00 · hosts n04, n05"
)
MISSING = (
    "  2 machines  driver-library-missing (~/.local/share/vulkan/icd.d/vendor-<version>_icd.json)"
    ": ~/.local/share/vulkan/icd.d/vendor-1.2.3_icd.json points at /opt/vendor/1.2.3/"
    "libvk_vendor.so, which does not exist — fix: rm ~/.local/share/vulkan/icd.d/"
    "vendor-1.2.3_icd.json · seen 2026-11-29T23:59:59+00:00 to 2026-12-01T10:00:00+00:00 · "
    "hosts n06, n07"
)


@pytest.mark.slow
def test_one_line_per_signature_across_machines(fleet: Path) -> None:
    done = vkdoctor("report", "summarize", str(fleet))
    assert done.returncode == 1, done.stderr  # machines with problems
    lines = done.stdout.splitlines()
    assert lines[0] == (
        "7 reports from 7 machines: 3 healthy, 4 with problems (2 signatures); 2 unreadable files"
    )
    # Same count: the name sorts first.  Homes and the version in the name are normalised.
    assert lines[1:3] == [MISSING, OVERRIDE]
    assert lines[3] == "unreadable files (not counted above):"
    assert lines[4].startswith(f"  {fleet}/n08.json: not valid JSON at line 1, column ")
    assert lines[4].endswith("(the file looks truncated)")
    assert lines[5] == f"  {fleet}/n09.json: valid JSON, but not a vkdoctor report"
    assert len(lines) == 6


@pytest.mark.slow
def test_json_output_holds_every_host_and_time(fleet: Path, tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    done = vkdoctor("report", "summarize", str(fleet), "--json", str(out))
    assert done.returncode == 1, done.stderr
    data = json.loads(out.read_text())
    assert (data["reports"], data["machines"], data["healthy"], data["with_problems"]) == (
        7,
        7,
        3,
        4,
    )
    missing, override = data["groups"]
    assert (missing["code"], missing["culprit"], missing["hosts"]) == (
        "driver-library-missing",
        "~/.local/share/vulkan/icd.d/vendor-<version>_icd.json",
        ["n06", "n07"],
    )
    assert (override["first_seen"], override["last_seen"]) == (
        "2026-11-30T11:00:00+00:00",
        "2026-12-01T08:30:00+00:00",
    )
    assert override["fix"] == "unset VK_DRIVER_FILES"
    assert [u["path"] for u in data["unreadable"]] == [f"{fleet}/n08.json", f"{fleet}/n09.json"]
    # To stdout: the JSON alone there, the text on stderr.
    piped = vkdoctor("report", "summarize", str(fleet), "--json", "-")
    assert json.loads(piped.stdout) == data
    assert piped.stderr.startswith("7 reports from 7 machines")


def _vulkaninfo(field: str) -> str:
    out = subprocess.run(
        ["vulkaninfo", "--summary"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    # "driverName = llvmpipe", "Vulkan Instance Version: 1.3.239"
    return next(
        line.split(field, 1)[1].lstrip(" =:\t").strip()
        for line in out.splitlines()
        if field in line
    )


@pytest.mark.slow
def test_by_stack_groups_the_same_machines(fleet: Path) -> None:
    by_driver = json.loads(
        vkdoctor("report", "summarize", str(fleet), "--by", "driver", "--json", "-").stdout
    )
    lavapipe = f"lvp_icd.x86_64.json ({_vulkaninfo('driverName')} {_vulkaninfo('driverInfo')})"
    healthy = next(g for g in by_driver["groups"] if g["healthy"])
    assert lavapipe in healthy["key"].split("; ")
    # The broken vendor manifest is not in use: those two machines share the healthy stack.
    assert (healthy["hosts"], healthy["healthy"]) == (["n01", "n02", "n03", "n06", "n07"], 3)
    assert healthy["problems"] == [
        ["driver-library-missing (~/.local/share/vulkan/icd.d/vendor-<version>_icd.json)", 2]
    ]
    nothing = next(g for g in by_driver["groups"] if g["key"] == "no usable driver")
    assert nothing["problems"] == [["driver-search-overridden (VK_DRIVER_FILES)", 2]]

    loader = vkdoctor("report", "summarize", str(fleet), "--by", "loader")
    version = _vulkaninfo("Vulkan Instance Version")
    assert loader.stdout.splitlines()[1].startswith(
        f"  7 machines  loader {version}: 3 healthy, problems: "
        "driver-library-missing (~/.local/share/vulkan/icd.d/vendor-<version>_icd.json) ×2, "
        "driver-search-overridden (VK_DRIVER_FILES) ×2 · seen 2026-11-29T23:59:59+00:00 to "
    )
    device = vkdoctor("report", "summarize", str(fleet), "--by", "device")
    name = _vulkaninfo("deviceName")
    assert f"machines  {name} (cpu): 3 healthy" in device.stdout


def test_old_schema_reports_are_read() -> None:
    done = vkdoctor("report", "summarize", str(V1), "--json", "-")
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    assert (data["reports"], data["healthy"], data["with_problems"], data["unreadable"]) == (
        4,
        3,
        1,
        [],
    )
    (group,) = data["groups"]
    # The schema-1 report has no diagnosis; its worst finding is the signature.
    assert (group["code"], group["culprit"], group["hosts"]) == (
        "driver-library-missing",
        "~/.local/share/vulkan/icd.d/amd_icd64.json",
        ["broken-missing-library"],
    )


def test_healthy_only_exits_0_and_nothing_readable_exits_2(tmp_path: Path) -> None:
    healthy = tmp_path / "ok"
    healthy.mkdir()
    for name in ("healthy-lavapipe.json", "nvidia-gpu.json"):
        (healthy / name).write_text((V1 / name).read_text())
    done = vkdoctor("report", "summarize", str(healthy))
    assert (done.returncode, done.stdout) == (
        0,
        "2 reports from 2 machines: 2 healthy, 0 with problems (0 signatures)\n",
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    none = vkdoctor("report", "summarize", str(empty), str(tmp_path / "gone.json"))
    assert none.returncode == 2
    assert f"{tmp_path}/gone.json: no such file" in none.stdout
    assert none.stderr == "vkdoctor report summarize: no report could be read\n"


def test_machine_strings_are_cleaned_and_outputs_are_safe(tmp_path: Path) -> None:
    data = json.loads((V1 / "broken-missing-library.json").read_text())
    (tmp_path / "n\x1b[31mode.json").write_text(json.dumps(data))
    done = vkdoctor("report", "summarize", str(tmp_path))
    assert "hosts n\\x1b[31mode" in done.stdout and "\x1b" not in done.stdout
    md = vkdoctor("report", "summarize", str(tmp_path), "--markdown", "-")
    assert "\x1b" not in md.stdout and "| 1 | `driver-library-missing` |" in md.stdout
    refused = vkdoctor("report", "summarize", str(tmp_path), "--json", str(tmp_path))
    assert refused.returncode == 2
    # refused while parsing, before any report is read: one line
    assert refused.stderr == (
        f"vkdoctor report summarize: error: argument --json: {tmp_path} is a directory; "
        "refusing to write a report onto it (see vkdoctor report summarize --help)\n"
    )


@needs_lavapipe
def test_summarizer_streams_one_report_at_a_time(tmp_path: Path) -> None:
    """The aggregator keeps groups, not reports: adding reports of one signature keeps one
    group whatever their count (the benchmark measures the memory)."""
    from vkdoctor.fleet.summarize import Summarizer

    data = json.loads((V1 / "broken-missing-library.json").read_text())
    summarizer = Summarizer()
    for index in range(50):
        path = tmp_path / f"n{index:02}.json"
        path.write_text(json.dumps(data))
        summarizer.add_file(str(path))
    result = summarizer.result()
    assert len(result.groups) == 1 and result.groups[0].machines == 50


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_BROKEN = json.loads((V1 / "broken-missing-library.json").read_text())


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    key=st.sampled_from(sorted({*_BROKEN, "root_causes", "verdict", "loader"})),
    value=_JSON,
    by=st.sampled_from(["signature", "device", "driver", "loader"]),
)
def test_any_shape_of_report_is_counted_or_listed_never_raised(
    tmp_path: Path, key: str, value: Any, by: str
) -> None:
    from vkdoctor.fleet.summarize import Summarizer

    path = tmp_path / "n.json"
    path.write_text(json.dumps({**_BROKEN, key: value}))
    summarizer = Summarizer(by)
    summarizer.add_file(str(path))
    result = summarizer.result()
    assert result.reports + len(result.unreadable) == 1
