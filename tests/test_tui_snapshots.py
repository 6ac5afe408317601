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
