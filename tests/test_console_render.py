"""The console at 80 columns, exact text: the three levels (default, -v, -vv), -q, evidence as
labelled fields, wrapping, and the developer-only findings grouped into one line.

The report is built by hand so that each expected text is written from what is right for it,
not copied from the renderer; the finding codes are real ones, whose audience comes from the
code tables (``gdpa-unexpected`` is a developer's business, ``driver-no-devices`` a user's)."""

from __future__ import annotations

import io

from rich.console import Console

from vkdoctor.render.console import findings_block, make_console, render_report
from vkdoctor.render.fields import Field, fields
from vkdoctor.report.codes import all_codes
from vkdoctor.report.model import Finding, LogEntry, ProbeResult, Remedy, Report, Severity, Status

LIBRARY = "/opt/vendor/lib/x86_64-linux-gnu/libvendor_vulkan_driver_with_a_long_name.so.1"


def _report() -> Report:
    missing = Finding(
        "driver-library-missing",
        Severity.FAIL,
        f"/etc/vulkan/icd.d/vendor.json names {LIBRARY}, which does not exist",
        detail="The manifest names a library the loader cannot open.",
        evidence={"manifest": "/etc/vulkan/icd.d/vendor.json", "library": {"path": LIBRARY}},
        remedy=Remedy(
            "Reinstall the package that owns the manifest.",
            ("apt-get install --reinstall vendor-vulkan-driver vendor-vulkan-driver-common",),
        ),
        id="driver-enumeration.1",
        causes=("instance.1",),
    )
    no_driver = Finding(
        "no-usable-driver", Severity.FAIL, "no driver could be loaded", id="instance.1"
    )
    absent = Finding(
        "driver-no-devices",
        Severity.INFO,
        "radeon_icd.x86_64.json exposes no physical device",
        detail="The driver loads but reports no physical device.",
        evidence={"manifest": "/usr/share/vulkan/icd.d/radeon_icd.x86_64.json"},
        id="instance.2",
    )
    lenient = Finding(
        "gdpa-unexpected",
        Severity.INFO,
        "vkGetDeviceProcAddr returns 12 commands the spec says are NULL",
        evidence={"commands": [f"vkCmdExample{i}" for i in range(12)], "index": 0},
        id="device.1",
    )
    probes = [
        ProbeResult(
            "driver-enumeration",
            "Driver (ICD) enumeration",
            Status.FAIL,
            duration_s=0.05,
            findings=[missing],
            facts={"manifests": 2},
        ),
        ProbeResult(
            "instance",
            "Instance",
            Status.FAIL,
            duration_s=0.5,
            findings=[no_driver, absent],
            loader_log=[LogEntry("error", ("driver",), "libvendor.so.1: cannot open")],
        ),
        ProbeResult("device", "Devices", Status.INFO, duration_s=0.2, findings=[lenient]),
    ]
    return Report(
        tool_version="0",
        created="",
        probes=probes,
        root_causes=["driver-enumeration.1"],
        verdict="Vulkan is unusable: the only driver's library is missing — fix: reinstall it",
    )


def _text(renderable: object, width: int = 80) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None, record=True)
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


DEFAULT = """
Vulkan is unusable: the only driver's library is missing — fix: reinstall it

[FAIL] /etc/vulkan/icd.d/vendor.json names
       /opt/vendor/lib/x86_64-linux-gnu/libvendor_vulkan_driver_with_a_long_name
       .so.1, which does not exist  (driver-library-missing, driver-enumeration)
    → Reinstall the package that owns the manifest.
      $ apt-get install --reinstall vendor-vulkan-driver \\
          vendor-vulkan-driver-common
    because of this:
      - no driver could be loaded  (no-usable-driver)

vkdoctor: problems found (2 informational findings hidden; -v shows them)"""

VERBOSE = """
Vulkan is unusable: the only driver's library is missing — fix: reinstall it

[FAIL] /etc/vulkan/icd.d/vendor.json names
       /opt/vendor/lib/x86_64-linux-gnu/libvendor_vulkan_driver_with_a_long_name
       .so.1, which does not exist  (driver-library-missing, driver-enumeration)
    The manifest names a library the loader cannot open.
    → Reinstall the package that owns the manifest.
      $ apt-get install --reinstall vendor-vulkan-driver \\
          vendor-vulkan-driver-common
    library.path: /opt/vendor/lib/x86_64-linux-gnu/libvendor_vulkan_driver_with_
                  a_long_name.so.1
    manifest: /etc/vulkan/icd.d/vendor.json
    because of this:
      - no driver could be loaded  (no-usable-driver)

[INFO] radeon_icd.x86_64.json exposes no physical device  (driver-no-devices,
       instance)
    The driver loads but reports no physical device.
    manifest: /usr/share/vulkan/icd.d/radeon_icd.x86_64.json

[INFO] 1 finding for application developers (gdpa-unexpected); -vv shows them

vkdoctor: problems found"""

# -vv: the developer finding in full (its list uncut), the facts and the loader log.
EVERYTHING_TAIL = """
[INFO] vkGetDeviceProcAddr returns 12 commands the spec says are NULL
       (gdpa-unexpected, device)
    commands: vkCmdExample0, vkCmdExample1, vkCmdExample2, vkCmdExample3,
              vkCmdExample4, vkCmdExample5, vkCmdExample6, vkCmdExample7,
              vkCmdExample8, vkCmdExample9, vkCmdExample10, vkCmdExample11
    index: 0

facts of driver-enumeration:
  manifests: 2

loader log (1 distinct lines):
  error: libvendor.so.1: cannot open

vkdoctor: problems found"""


def test_default_level_shows_what_needs_action_and_its_fix() -> None:
    assert _text(findings_block(_report(), 0)) == DEFAULT


def test_verbose_shows_every_finding_with_labelled_evidence_and_groups_developer_ones() -> None:
    assert _text(findings_block(_report(), 1)) == VERBOSE


def test_very_verbose_shows_everything() -> None:
    text = _text(findings_block(_report(), 2))
    assert text.endswith(EVERYTHING_TAIL)
    assert "application developers" not in text


def test_no_line_is_wider_than_the_terminal() -> None:
    for level in (0, 1, 2):
        for width in (60, 80, 120):
            text = _text(findings_block(_report(), level), width)
            assert max(len(line) for line in text.splitlines()) <= width, (level, width)


def test_quiet_prints_the_verdict_only() -> None:
    console = Console(width=80, file=io.StringIO(), color_system=None, record=True)
    render_report(console, _report(), quiet=True)
    assert console.export_text() == (
        "Vulkan is unusable: the only driver's library is missing — fix: reinstall it\n"
    )


def test_audience_is_a_property_of_the_code_table() -> None:
    developer = {code for code, info in all_codes().items() if info.audience == "developer"}
    assert {"gdpa-unexpected", "device-command-only-via-gipa"} <= developer
    assert "driver-no-devices" not in developer and "driver-library-missing" not in developer


def test_fields_flatten_nested_values_and_cut_long_lists() -> None:
    evidence = {
        "layers": [{"name": "A", "env": {"X": "1"}}, {"name": "B"}, {"name": "C"}, {"name": "D"}],
        "commands": [f"vk{i}" for i in range(8)],
        "traceback": "line one\nline two\nline three",
        "empty": [],
        "ok": True,
    }
    assert fields(evidence) == [
        Field("commands", "vk0, vk1, vk2, vk3, vk4 … 3 more"),
        Field("empty", "(none)"),
        Field("layers[0].env.X", "1"),
        Field("layers[0].name", "A"),
        Field("layers[1].name", "B"),
        Field("layers[2].name", "C"),
        Field("layers", "… 1 more"),
        Field("ok", "true"),
        Field("traceback", "line one … 2 more lines"),
    ]
    assert Field("commands", ", ".join(f"vk{i}" for i in range(8))) in fields(evidence, cut=False)


def test_off_a_terminal_without_columns_lines_are_not_wrapped(monkeypatch) -> None:
    # Logs and CI output stay one finding a line (grep); COLUMNS asks for a width.
    monkeypatch.delenv("COLUMNS", raising=False)
    out = io.StringIO()
    console = make_console(color="never")
    console.file = out
    console.print(findings_block(_report(), 0))
    assert f"[FAIL] /etc/vulkan/icd.d/vendor.json names {LIBRARY}, which does not" in out.getvalue()
    monkeypatch.setenv("COLUMNS", "80")
    assert make_console(color="never").soft_wrap is False


def test_color_never_writes_no_escape_and_always_does(monkeypatch) -> None:
    for mode, escapes in (("never", False), ("always", True)):
        console = make_console(color=mode)
        out = io.StringIO()
        console.file = out
        console.print(findings_block(_report(), 0))
        assert ("\x1b[" in out.getvalue()) is escapes, mode


def _stopped_report() -> Report:
    """A run SIGTERM stopped in the instance probe: what ran was healthy, the rest never ran."""
    interrupted = Finding(
        "run-interrupted",
        Severity.INFO,
        "vkdoctor received SIGTERM while the instance probe was running",
        id="instance.1",
    )
    probes = [
        ProbeResult("loader-discovery", "Loader discovery", Status.OK, duration_s=0.1),
        ProbeResult(
            "instance",
            "Instance creation",
            Status.SKIPPED,
            findings=[interrupted],
            blocked_by="interrupted",
        ),
        ProbeResult("dispatch", "Smoke compute dispatch", Status.SKIPPED, blocked_by="interrupted"),
    ]
    return Report(tool_version="0.1.0", created="", probes=probes)


def test_a_stopped_run_is_never_called_problem_free() -> None:
    """Its summary status stays "ok" in the JSON (the contract), but the closing line must not
    say "no problems found" of a check that never reached the instance."""
    report = _stopped_report()
    assert report.summary()["status"] == "ok" and report.stopped_early()
    assert _text(findings_block(report, 0)) == (
        "\nvkdoctor: stopped before the end: no problem found in the steps that ran (1\n"
        "informational finding hidden; -v shows them)"
    )
    from vkdoctor.render.markdown import render_markdown

    assert render_markdown(report).startswith(
        "## vkdoctor: ⚠️ stopped before the end: no problem found in the steps that ran\n"
    )
