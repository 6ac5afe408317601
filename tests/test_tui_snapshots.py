"""SVG snapshots of the TUI's main screens on fixed reports (tests/fixtures/tui, made from real
runs), 80x24 first: the size of an SSH session into a server.

Snapshots live in tests/__snapshots__/test_tui_snapshots/ (pytest-textual-snapshot's place).
After a deliberate change: `pytest tests/test_tui_snapshots.py --snapshot-update`, then look at
the SVGs before committing them.  They depend on the Textual version they were made with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vkdoctor.report.io import load_report
from vkdoctor.tui.app import VkDoctorApp
from vkdoctor.tui.documents import open_document

FIXTURES = Path(__file__).parent / "fixtures" / "tui"


def viewer(name: str) -> VkDoctorApp:
    """The app opened on a fixture report: nothing runs, nothing changes with time."""
    return VkDoctorApp(None, report=load_report(str(FIXTURES / name)), source=name, autorun=False)


def test_main_screen_80x24(snap_compare: Any) -> None:
    assert snap_compare(viewer("healthy.json"), terminal_size=(80, 24))


def test_pipeline_with_failures_80x24(snap_compare: Any) -> None:
    assert snap_compare(viewer("broken.json"), terminal_size=(80, 24))


def test_finding_detail_80x24(snap_compare: Any) -> None:
    assert snap_compare(viewer("broken.json"), press=["2"], terminal_size=(80, 24))


def test_device_kernels_80x24(snap_compare: Any) -> None:
    assert snap_compare(viewer("healthy.json"), press=["3"], terminal_size=(80, 24))


def test_device_kernels_wide(snap_compare: Any) -> None:
    assert snap_compare(viewer("healthy.json"), press=["3"], terminal_size=(120, 36))


def test_no_vulkan_80x24(snap_compare: Any) -> None:
    assert snap_compare(viewer("no-vulkan.json"), press=["3"], terminal_size=(80, 24))


def test_trace_80x24(snap_compare: Any) -> None:
    path = str(FIXTURES / "premature-unload.trace-report.json")
    report, trace = open_document(path)
    app = VkDoctorApp(
        None,
        report=report,
        trace=trace,
        source="premature-unload.trace-report.json",
        autorun=False,
    )
    assert snap_compare(app, press=["4"], terminal_size=(80, 24))


def test_help_80x24(snap_compare: Any) -> None:
    assert snap_compare(viewer("healthy.json"), press=["question_mark"], terminal_size=(80, 24))


def test_main_screen_200x50(snap_compare: Any) -> None:
    assert snap_compare(viewer("broken.json"), terminal_size=(200, 50))


def test_finding_detail_200x50(snap_compare: Any) -> None:
    assert snap_compare(viewer("broken.json"), press=["2"], terminal_size=(200, 50))


def test_rerun_asks_before_replacing_an_opened_report_80x24(snap_compare: Any) -> None:
    from vkdoctor.tui.backend import LiveBackend

    # The live backend is never called: the snapshot is the question, answered by nobody.
    app = VkDoctorApp(
        LiveBackend(), report=load_report(str(FIXTURES / "broken.json")), source="broken.json"
    )
    assert snap_compare(app, press=["r"], terminal_size=(80, 24))


def test_compare_80x24(snap_compare: Any) -> None:
    async def compare(pilot: Any) -> None:
        pilot.app.compare_with(str(FIXTURES / "broken.json"))
        await pilot.pause()

    assert snap_compare(viewer("healthy.json"), run_before=compare, terminal_size=(80, 24))
