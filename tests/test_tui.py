"""The TUI driven with App.run_test(): pilot key presses, the messages workers post, and what the
views then show.  Reports are fixtures from real runs (tests/fixtures/tui); the pipeline is
replayed by a scripted backend so a test can hold it mid-run; the kernel view runs the real
kernel suite on lavapipe with tiny sizes."""

from __future__ import annotations

import asyncio
import functools
import io
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import needs_lavapipe
from rich.console import Console
from textual.widgets import DataTable, Input, Static, TabbedContent

from vkdoctor import cli
from vkdoctor.kernels.run import KernelEvent, KernelRequest, KernelSession
from vkdoctor.report.io import load_report
from vkdoctor.report.model import ProbeResult, Report, Severity
from vkdoctor.tui.app import VkDoctorApp
from vkdoctor.tui.backend import KernelJob, PipelineRun
from vkdoctor.tui.documents import open_document
from vkdoctor.tui.messages import (
    KernelProgress,
    KernelsDone,
    PipelineDone,
    ProbeFinished,
    ProbeStarted,
)
from vkdoctor.tui.screens import ConfirmScreen, HelpScreen, OpenScreen, SaveScreen

FIXTURES = Path(__file__).parent / "fixtures" / "tui"
SIZE = (80, 24)


def asynctest(test: Callable[..., Any]) -> Callable[..., None]:
    """Run an async test on a fresh event loop (no pytest asyncio plugin needed)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


def fixture(name: str) -> Report:
    return load_report(str(FIXTURES / name))


class ScriptedBackend:
    """Replays a report probe by probe.  With ``gated``, each probe waits for ``release()``,
    so a test sees the run in flight.  Kernel runs go to ``kernels_factory`` (none: refused)."""

    def __init__(
        self,
        report: Report,
        gated: bool = False,
        kernels_factory: Callable[[KernelRequest, Callable[[KernelEvent], None]], KernelJob]
        | None = None,
    ) -> None:
        self.report = report
        self.gate = threading.Semaphore(0) if gated else None
        self.pipeline_runs = 0
        self.kernel_requests: list[KernelRequest] = []
        self.kernels_factory = kernels_factory

    def release(self, n: int = 1) -> None:
        assert self.gate is not None
        for _ in range(n):
            self.gate.release()

    def probes(self) -> Sequence[tuple[str, str]]:
        return [(p.id, p.title) for p in self.report.probes if p.id != "kernels"]

    def run_pipeline(
        self, on_start: Callable[[str], None], on_result: Callable[[ProbeResult], None]
    ) -> PipelineRun:
        self.pipeline_runs += 1
        fresh = Report.from_dict(self.report.to_dict())
        fresh.probes = [p for p in fresh.probes if p.id != "kernels"]
        for probe in fresh.probes:
            on_start(probe.id)
            if self.gate is not None:
                assert self.gate.acquire(timeout=20), "the test never released the probe"
            on_result(probe)
        return PipelineRun(fresh)

    def kernels(self, request: KernelRequest, on_event: Callable[[KernelEvent], None]) -> KernelJob:
        self.kernel_requests.append(request)
        assert self.kernels_factory is not None, "this test runs no kernels"
        return self.kernels_factory(request, on_event)


class RecordingApp(VkDoctorApp):
    """Records the messages the workers post (handlers of base classes still run)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[str, Any]] = []

    def on_probe_started(self, message: ProbeStarted) -> None:
        self.seen.append(("started", message.probe_id))

    def on_probe_finished(self, message: ProbeFinished) -> None:
        self.seen.append(("finished", message.result.id))

    def on_pipeline_done(self, message: PipelineDone) -> None:
        self.seen.append(("done", message.run))

    def on_kernel_progress(self, message: KernelProgress) -> None:
        self.seen.append(("kernel", message.event))

    def on_kernels_done(self, message: KernelsDone) -> None:
        self.seen.append(("kernels-done", message.run))


async def until(pilot: Any, condition: Callable[[], bool], timeout: float = 20.0) -> None:
    waited = 0.0
    while not condition():
        await pilot.pause(0.05)
        waited += 0.05
        if waited > timeout:
            raise AssertionError("timed out waiting for the app")


def cell(app: VkDoctorApp, table_id: str, row: str, column: str) -> str:
    table = app.query_one(table_id, DataTable)
    value = table.get_cell(row, column)
    return value.plain if hasattr(value, "plain") else str(value)


def plain(renderable: Any, width: int = 200) -> str:
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text()


def text_of(app: VkDoctorApp, widget_id: str) -> str:
    """What a Static shows, as plain text (wide: no wrapping inside words we look for)."""
    widget = app.query_one(widget_id, Static)
    content = widget.content
    return content if isinstance(content, str) else plain(content)


# -- the pipeline, live ----------------------------------------------------------------------------


@asynctest
async def test_probes_update_live_while_the_worker_runs() -> None:
    backend = ScriptedBackend(fixture("broken.json"), gated=True)
    app = RecordingApp(backend)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: ("started", "loader-discovery") in app.seen)
        assert cell(app, "#probes", "loader-discovery", "status") == "running"
        assert cell(app, "#probes", "instance", "status") == "pending"
        assert "running the diagnosis" in text_of(app, "#status-line")
        await pilot.press("down")  # the UI answers while the worker is blocked
        backend.release(2)
        await until(pilot, lambda: ("finished", "driver-enumeration") in app.seen)
        await pilot.pause()
        assert cell(app, "#probes", "loader-discovery", "status") == "ok"
        assert cell(app, "#probes", "driver-enumeration", "status") == "fail"
        drivers = next(p for p in fixture("broken.json").probes if p.id == "driver-enumeration")
        fails = sum(f.severity is Severity.FAIL for f in drivers.findings)
        assert f"{fails} fail" in cell(app, "#probes", "driver-enumeration", "findings")
        assert app.report is None and app.pipeline_running
        backend.release(10)
        await until(pilot, lambda: any(kind == "done" for kind, _ in app.seen))
        await pilot.pause()
        assert app.report is not None and not app.pipeline_running
        assert cell(app, "#probes", "device", "findings") == "blocked by instance"
        assert "problems found" in text_of(app, "#status-line")
    started = [p for kind, p in app.seen if kind == "started"]
    finished = [p for kind, p in app.seen if kind == "finished"]
    assert started == finished == [p.id for p in backend.report.probes]


@asynctest
async def test_rerun_runs_again_and_keeps_the_view_usable() -> None:
    backend = ScriptedBackend(fixture("healthy.json"))
    app = VkDoctorApp(backend)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.report is not None and not app.pipeline_running)
        first = app.report
        await pilot.press("r")
        await until(pilot, lambda: backend.pipeline_runs == 2 and not app.pipeline_running)
        await pilot.pause()
        assert app.report is not first and app.source is None
        assert app.query_one("#probes", DataTable).row_count == 6


# -- findings ------------------------------------------------------------------------------------


@asynctest
async def test_findings_view_shows_detail_remedy_and_loader_log() -> None:
    app = VkDoctorApp(None, report=fixture("broken.json"), source="broken.json", autorun=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        assert app.query_one(TabbedContent).active == "findings"
        assert app.focused is app.query_one("#finding-list")
        first = text_of(app, "#finding-text")
        # The root cause leads: the variable, not the manifest it selects.
        assert "driver-search-overridden" in first and "VK_DRIVER_FILES" in first
        assert "→ Unset the variable" in first
        more = text_of(app, "#finding-more")
        assert "Evidence" in more and "Loader log" in more
        await pilot.press("down")
        assert text_of(app, "#finding-text") != first
        # The pipeline's Enter opens the findings of that probe.
        await pilot.press("1", "down", "down", "down", "enter")
        assert app.query_one(TabbedContent).active == "findings"
        assert "instance-creation-failed" in text_of(app, "#finding-text")


@asynctest
async def test_remedy_commands_are_copied_to_the_clipboard() -> None:
    report = fixture("broken.json")
    app = VkDoctorApp(None, report=report, source="broken.json", autorun=False)
    command = "unset VK_DRIVER_FILES"  # the first (root-cause) finding's fix
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "c")
        await pilot.pause()
        assert app.clipboard == command


# -- devices and kernels -------------------------------------------------------------------------


@asynctest
async def test_device_view_shows_properties_kernels_and_device_findings() -> None:
    app = VkDoctorApp(None, report=fixture("healthy.json"), source="healthy.json", autorun=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        props = text_of(app, "#device-props")
        assert "llvmpipe" in props and "graphics, compute, transfer" in props and "GiB" in props
        table = app.query_one("#kernel-table", DataTable)
        assert table.row_count == 9
        assert cell(app, "#kernel-table", "copy", "result").endswith("GB/s")
        # lavapipe has no datasheet peak: the best figure of the same run is no peak.
        assert cell(app, "#kernel-table", "sgemm", "peak") == "n/a"
        assert "measured peak" in text_of(app, "#kernel-status")
        assert "gdpa-unexpected" in text_of(app, "#device-finding-list")
        # A report from a file may come from another machine: its kernels are not re-run here.
        await pilot.press("k")
        await pilot.pause()
        assert app.kernel_job is None


@asynctest
async def test_no_vulkan_degrades_to_a_clear_message() -> None:
    app = VkDoctorApp(None, report=fixture("no-vulkan.json"), source="x.json", autorun=False)
    async with app.run_test(size=SIZE) as pilot:
        assert "no Vulkan device" in text_of(app, "#status-line")
        await pilot.press("3")
        message = text_of(app, "#no-device")
        assert "No Vulkan device: the loader-discovery probe fail" in message
        assert not app.query_one("#device-body").display


@needs_lavapipe
@asynctest
async def test_kernel_view_runs_the_suite_on_lavapipe() -> None:
    def real(request: KernelRequest, on_event: Callable[[KernelEvent], None]) -> KernelJob:
        return KernelSession(request, on_event=on_event)

    backend = ScriptedBackend(fixture("healthy.json"), kernels_factory=real)
    app = RecordingApp(backend, kernel_request=KernelRequest(size="tiny", seed=5))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.report is not None and not app.pipeline_running)
        assert app.query_one("#kernel-table", DataTable).row_count == 0  # the replay has none
        await pilot.press("3", "k")
        await until(pilot, lambda: app.kernel_job is None and app.seen[-1][0] == "kernels-done")
        await pilot.pause()
        assert backend.kernel_requests[0].devices == (0,)
        progress = [event for kind, event in app.seen if kind == "kernel"]
        # devices, suite, and every kernel started and done (hgemm-coopmat: unsupported here)
        assert len(progress) >= 2 + 2 * 10
        table = app.query_one("#kernel-table", DataTable)
        assert table.row_count == 10
        assert all(
            "GB/s" in cell(app, "#kernel-table", k, "result")
            or "GFLOP/s" in cell(app, "#kernel-table", k, "result")
            for k in ("copy", "saxpy", "fma-fp32", "sgemm", "conv2d")
        )
        assert "tiny sizes" in text_of(app, "#kernel-status")
        assert app.report is not None and app.report.probes[-1].id == "kernels"
        assert app.report.probes[-1].facts["seed"] == 5
        assert cell(app, "#probes", "kernels", "status") == "info"  # hgemm-coopmat unsupported


# -- save, reopen, open --------------------------------------------------------------------------


@asynctest
async def test_save_json_redacted_then_reopen_without_running(tmp_path: Path) -> None:
    backend = ScriptedBackend(fixture("healthy.json"))
    app = VkDoctorApp(backend, report=fixture("healthy.json"), source="h.json", autorun=False)
    target = tmp_path / "saved.json"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        assert isinstance(app.screen, SaveScreen)
        # Typed character by character this takes seconds; the Input itself is Textual's.
        app.screen.query_one("#save-path").value = str(target)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, SaveScreen) and target.exists()
        saved = load_report(str(target))
        assert saved.environment["redaction"]["applied"] is True
        assert [p.id for p in saved.probes] == [p.id for p in app.report.probes]  # type: ignore[union-attr]
        await pilot.press("o")
        app.screen.query_one("#open-path").value = str(target)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()
        assert app.source == str(target) and app.sub_title.startswith("saved.json · ")
    assert backend.pipeline_runs == 0


@asynctest
async def test_save_markdown_with_the_kernel_section(tmp_path: Path) -> None:
    app = VkDoctorApp(None, report=fixture("healthy.json"), source="h.json", autorun=False)
    target = tmp_path / "report.md"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        screen = app.screen
        assert isinstance(screen, SaveScreen)
        await pilot.click("#fmt-markdown")
        await pilot.pause()
        assert screen.query_one("#save-path").value.endswith(".md")  # type: ignore[attr-defined]
        screen.query_one("#save-path").value = str(target)  # type: ignore[attr-defined]
        await pilot.click("#save")
        await pilot.pause()
    text = target.read_text()
    assert text.startswith("## vkdoctor")
    assert "### Compute kernels" in text and "| sgemm |" in text and "measured peak" in text


@asynctest
async def test_opening_a_damaged_file_is_a_notification_not_a_crash(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1, "tool": {"name": "vkdoctor"}, "probes": [')
    app = VkDoctorApp(None, report=fixture("healthy.json"), source="h.json", autorun=False)
    async with app.run_test(size=SIZE) as pilot:
        app.open_path(str(bad))
        await pilot.pause()
        assert app.source == "h.json"
        notes = [n.message for n in app._notifications]
        assert any("the file looks truncated" in n for n in notes), notes


# -- trace -----------------------------------------------------------------------------------------


@asynctest
async def test_trace_view_from_raw_events() -> None:
    app = VkDoctorApp(None, report=None, autorun=False)
    async with app.run_test(size=SIZE) as pilot:
        assert "No trace open" in text_of(app, "#trace-empty")
        await pilot.pause()  # as a user would: the first screen is up
        app.open_path(str(FIXTURES / "premature-unload.trace.jsonl"))
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "trace"
        events = app.query_one("#trace-events", DataTable)
        texts = [str(events.get_row_at(i)[3]) for i in range(events.row_count)]
        # tests/reproducers/wrapper_dlclose.c: libloaderwrap.so dlopens libvulkan, dlcloses it
        # while the instance lives, and the program's next call faults.
        assert "loaded libvulkan.so.1 (loader) by libloaderwrap.so" in texts
        assert "unloaded libvulkan.so.1 (dlclose from libloaderwrap.so)" in texts
        assert texts[-1] == "program ended: killed by SIGSEGV"
        assert not any("libc.so" in t for t in texts)  # only Vulkan libraries
        chart = plain(app.query_one("#trace-libs").render())
        assert "libvulkan.so.1" in chart and "libvulkan_lvp.so" in chart


@asynctest
async def test_trace_view_from_a_trace_report_shows_its_findings() -> None:
    report, trace = open_document(str(FIXTURES / "premature-unload.trace-report.json"))
    assert report is not None and trace is not None
    app = VkDoctorApp(None, report=report, trace=trace, source="t.json", autorun=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        findings = text_of(app, "#trace-findings")
        assert "premature-unload" in findings and "call-after-unload" in findings
        assert app.query_one("#trace-events", DataTable).row_count == len(trace.events)


# -- help, quitting, the command line -------------------------------------------------------------


@asynctest
async def test_help_screen_lists_the_keys() -> None:
    app = VkDoctorApp(None, report=fixture("healthy.json"), source="h.json", autorun=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        shown = json.dumps(app.screen.sections)
        for words in (
            "run the diagnosis again",
            "Markdown",
            "kernel suite",
            "copy the remedy command",
        ):
            assert words in shown
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("q")
    assert app.return_code == 0


def test_tui_command_refuses_unreadable_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["tui", "/nonexistent/report.json"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_tui_command_refuses_non_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"hello": "world"}\n')
    assert cli.main(["tui", str(other)]) == 2
    assert "not a vkdoctor report (and not a vkdoctor trace either)" in capsys.readouterr().err


@asynctest
async def test_a_trace_alone_opens_on_the_trace_view() -> None:
    _, trace = open_document(str(FIXTURES / "premature-unload.trace.jsonl"))
    app = VkDoctorApp(None, trace=trace, source="t.jsonl", autorun=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "trace"
        head = text_of(app, "#trace-head")
        assert "premature-unload.trace.jsonl" in head and "events" in head


def test_tui_command_without_textual_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "textual", None)  # what `import textual` sees uninstalled
    assert cli.main(["tui"]) == 2
    assert "pip install 'vkdoctor[tui]'" in capsys.readouterr().err


def test_lifetimes_mark_the_unloads_findings_blame() -> None:
    from vkdoctor.tui.views.trace import lifetimes

    raw = (FIXTURES / "premature-unload.trace.jsonl").read_text().splitlines()
    # The event numbers are the raw file's line numbers: the one unload is libvulkan's dlclose.
    closes = {n for n, line in enumerate(raw, 1) if json.loads(line)["ev"] == "close"}
    assert len(closes) == 1
    _, trace = open_document(str(FIXTURES / "premature-unload.trace.jsonl"))
    assert trace is not None and trace.flagged_unloads == closes
    chart = lifetimes(trace.libraries, trace.last_seq, 60, trace.flagged_unloads)
    lines = chart.plain.splitlines()
    red = {
        lines[chart.plain[: span.start].count("\n")].split()[0]
        for span in chart.spans
        if "red" in str(span.style)
    }
    # Only the loader was unmapped: the program crashed before its instance (which would
    # unload the driver and the layers) was destroyed.
    assert red == {"libvulkan.so.1"}


# -- issue 15: asking before a re-run, the fix first, the space used, comparing ------------------


@asynctest
async def test_rerun_of_an_opened_report_asks_first() -> None:
    backend = ScriptedBackend(fixture("healthy.json"))
    opened = fixture("broken.json")
    app = VkDoctorApp(backend, report=opened, source="broken.json")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        assert isinstance(app.screen, ConfirmScreen)
        assert "broken.json" in str(app.screen.query_one("#confirm-question").render())
        await pilot.press("n")  # keep it
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert backend.pipeline_runs == 0 and app.report is opened and app.source == "broken.json"
        await pilot.press("r", "escape")  # escape keeps it too
        await pilot.pause()
        assert backend.pipeline_runs == 0 and app.report is opened
        await pilot.press("r", "y")
        await until(pilot, lambda: backend.pipeline_runs == 1 and not app.pipeline_running)
        assert app.source is None and app.report is not opened


@asynctest
async def test_rerun_of_a_live_run_does_not_ask() -> None:
    backend = ScriptedBackend(fixture("healthy.json"))
    app = VkDoctorApp(backend)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.report is not None and not app.pipeline_running)
        await pilot.press("r")
        assert not isinstance(app.screen, ConfirmScreen)
        await until(pilot, lambda: backend.pipeline_runs == 2 and not app.pipeline_running)


@pytest.mark.parametrize("size", [(80, 24), (200, 50)])
def test_the_fix_command_is_on_screen_above_the_evidence(size: tuple[int, int]) -> None:
    @asynctest
    async def run() -> None:
        app = VkDoctorApp(None, report=fixture("broken.json"), source="broken.json", autorun=False)
        async with app.run_test(size=size) as pilot:
            await pilot.press("2")
            await pilot.pause()
            commands = app.query_one("#remedy-commands").region
            evidence = app.query_one("#finding-more").region
            assert commands.height >= 1 and commands.bottom <= size[1] - 1  # above the footer
            assert commands.y < evidence.y
            lines = screen_lines(app)
            assert any("$ unset VK_DRIVER_FILES" in line for line in lines)

    run()


def screen_lines(app: VkDoctorApp) -> list[str]:
    """The screen as text, one string a row, as the terminal would show it."""
    strips = app.screen._compositor.render_strips()
    return ["".join(segment.text for segment in strip).rstrip() for strip in strips]


def blank_rows(lines: Sequence[str]) -> int:
    return sum(1 for line in lines if not line.strip())


@pytest.mark.parametrize("name", ["healthy.json", "broken.json"])
def test_a_large_terminal_is_used_not_left_blank(name: str) -> None:
    """At 200x50 the main screen lists the informational findings with their detail under the
    problems: the healthy report left 33 of 50 rows blank before."""

    @asynctest
    async def run() -> None:
        app = VkDoctorApp(None, report=fixture(name), source=name, autorun=False)
        async with app.run_test(size=(200, 50)) as pilot:
            await pilot.pause()
            lines = screen_lines(app)
            assert len(lines) == 50
            assert blank_rows(lines) <= 15, "\n".join(lines)
            text = "\n".join(lines)
            assert "Informational" in text and "layer-implicit-active" in text
            # With the room, each finding's detail is shown too (at 80x24 it is not).
            assert "each names the variable that disables it" in text

    run()


@pytest.mark.parametrize("size", [(80, 24), (200, 50)])
def test_a_second_report_is_compared_with_the_first(size: tuple[int, int]) -> None:
    """d opens a second report beside the one on screen: the compare view shows the diff that
    `vkdoctor report diff` prints for the same two files."""

    @asynctest
    async def run() -> None:
        app = VkDoctorApp(
            None, report=fixture("healthy.json"), source="healthy.json", autorun=False
        )
        async with app.run_test(size=size) as pilot:
            await pilot.press("d")
            screen = app.screen
            assert isinstance(screen, OpenScreen)
            # Keys pressed before the dialog's input has focus go nowhere: wait for the focus,
            # type, and wait until the input holds the whole path before submitting it.
            path_input = screen.query_one("#open-path", Input)
            await until(pilot, lambda: app.focused is path_input)
            typed = str(FIXTURES / "broken.json")
            await pilot.press(*typed)
            await until(pilot, lambda: path_input.value == typed)
            await pilot.press("enter")
            # Under load the diff and the repaint take a while: wait for them, do not sleep.
            await until(pilot, lambda: app.query_one(TabbedContent).active == "compare")
            await pilot.pause()
            # The focus follows the view: left in the pipeline pane it switches the tabs back.
            assert app.focused is not None and app.focused.id == "compare-body"
            assert app.query_one(TabbedContent).active == "compare"
            content = app.query_one("#compare-text", Static).content
            shown = content.plain if hasattr(content, "plain") else str(content)
            assert app.report is not None and app.source == "healthy.json"  # A stays open
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "vkdoctor",
                "report",
                "diff",
                str(FIXTURES / "healthy.json"),
                str(FIXTURES / "broken.json"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert completed.returncode == 1, completed.stderr
        cli_lines = completed.stdout.splitlines()
        # Same lines but the header's labels (the CLI names the paths given, the TUI file names).
        assert shown.splitlines()[2:] == cli_lines[2:]
        assert "healthy.json" in shown.splitlines()[0] and "broken.json" in shown.splitlines()[1]
        assert any(line.startswith("  + [FAIL] driver-search-overridden") for line in cli_lines)

    run()


@asynctest
async def test_comparing_with_a_damaged_file_is_a_notification(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    app = VkDoctorApp(None, report=fixture("healthy.json"), source="healthy.json", autorun=False)
    async with app.run_test(size=SIZE) as pilot:
        app.compare_with(str(bad))
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "pipeline"
        assert app.query_one("#compare-body").display is False
