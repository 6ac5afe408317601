"""The vkdoctor TUI: views over one report (pipeline, findings, devices, trace) and a compare
view of it against a second report.

The app gets its backend injected (``backend.Backend``): runs happen in thread workers that post
immutable results as messages (``messages``); the app alone holds the report, derives what each
view shows (``viewmodel``) and hands it over.  Views only post messages upward; none reaches into
another.  Styles live in ``app.tcss``.
"""

from __future__ import annotations

import asyncio
import signal
import traceback
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane

import vkdoctor
from vkdoctor.kernels.run import KernelRequest, KernelRun, merge_into_report
from vkdoctor.render.safe_text import clean_report, clean_result
from vkdoctor.report.model import ProbeResult, Report, Severity
from vkdoctor.tui import export
from vkdoctor.tui.backend import Backend, KernelJob, PipelineRun
from vkdoctor.tui.documents import DocumentError, TraceDoc, open_document
from vkdoctor.tui.messages import (
    KernelProgress,
    KernelsDone,
    PipelineDone,
    ProbeFinished,
    ProbeStarted,
)
from vkdoctor.tui.screens import ConfirmScreen, HelpScreen, OpenScreen, SaveScreen
from vkdoctor.tui.viewmodel import device_models, finding_items, no_device_reason
from vkdoctor.tui.views.compare import CompareView
from vkdoctor.tui.views.devices import DevicesView
from vkdoctor.tui.views.findings import FindingsView
from vkdoctor.tui.views.pipeline import PipelineView
from vkdoctor.tui.views.trace import TraceView

VIEWS = ("pipeline", "findings", "devices", "trace", "compare")


# The widget that takes focus when a view is shown, so its keys work at once.
_FOCUS = {
    "pipeline": "#probes",
    "findings": "#finding-list",
    "devices": "#device-select",
    "trace": "#trace-events",
    "compare": "#compare-body",
}


class VkDoctorApp(App[int]):
    # Absolute: a relative path would resolve next to a subclass's module.
    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "vkdoctor"
    # The palette's footer entry costs room an 80-column footer does not have.
    ENABLE_COMMAND_PALETTE = False
    # Screen class -wide from 100 columns: room for the device findings beside the kernels.
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [
        (0, "-narrow"),
        (100, "-wide"),
    ]
    BINDINGS: ClassVar[list[BindingType]] = [
        # The tab titles show 1-4 already: keep the footer for the rest.
        Binding("1", "view('pipeline')", "Pipeline", show=False),
        Binding("2", "view('findings')", "Findings", show=False),
        Binding("3", "view('devices')", "Devices", show=False),
        Binding("4", "view('trace')", "Trace", show=False),
        Binding("5", "view('compare')", "Compare", show=False),
        Binding("r", "rerun", "Re-run"),
        Binding("s", "save", "Save"),
        Binding("o", "open", "Open"),
        # Not in the footer: the Devices view's 80-column footer would lose q Quit; the tab
        # "5 Compare" and the help screen name the key.
        Binding("d", "compare", "Compare", show=False),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        report: Report | None = None,
        source: str | None = None,
        trace: TraceDoc | None = None,
        kernel_request: KernelRequest | None = None,
        autorun: bool = True,
    ) -> None:
        super().__init__()
        self.backend = backend
        self.report = report
        self.source = source  # the file the report came from; None: run here
        self.trace = trace
        self.kernel_request = kernel_request or KernelRequest()
        self.autorun = autorun and report is None and backend is not None
        self.internal_errors: tuple[str, ...] = ()
        self.pipeline_running = False
        self.kernel_job: KernelJob | None = None
        self.live_results = 0
        self.saved_to: Path | None = None
        self.interrupted: signal.Signals | None = None
        self._live: list[ProbeResult] = []  # the results of the run in flight, as they came
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- layout

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="status-line")
        # Chosen here: TabbedContent applies its initial tab after our on_mount would.
        initial = "trace" if self.trace is not None and self.report is None else "pipeline"
        with TabbedContent(initial=initial, id="views"):
            with TabPane("1 Pipeline", id="pipeline"):
                yield PipelineView(id="pipeline-view")
            with TabPane("2 Findings", id="findings"):
                yield FindingsView(id="findings-view")
            with TabPane("3 Devices", id="devices"):
                yield DevicesView(id="devices-view")
            with TabPane("4 Trace", id="trace"):
                yield TraceView(id="trace-view")
            with TabPane("5 Compare", id="compare"):
                yield CompareView(id="compare-view")
        yield Footer()

    def on_mount(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.sub_title = self._source_label()
        self.query_one(TraceView).show(self.trace)
        if self.autorun:
            self.start_pipeline()
        else:
            self._show_report()

    def _source_label(self) -> str:
        where = Path(self.source).name if self.source else "this machine"
        if self.report is None and self.backend is None:
            where = "no report"
        when = self.report.created.replace("T", " ")[:16] if self.report else ""
        return f"{where} · {when}" if when else where

    # -- the pipeline

    def start_pipeline(self) -> None:
        if self.backend is None:
            self.notify("Nothing to run with: this TUI only views files.", severity="warning")
            return
        if self.pipeline_running:
            self.notify("A run is already in progress.")
            return
        if self.kernel_job is not None:
            # Both would use the same devices: the timings would be worthless.
            self.notify("Wait for the kernel suite to finish.")
            return
        self.pipeline_running = True
        self.live_results = 0
        self._live = []
        self.query_one(PipelineView).reset(self.backend.probes())
        self._status()
        self._pipeline_worker()

    @work(thread=True, group="pipeline", exit_on_error=False)
    def _pipeline_worker(self) -> None:
        assert self.backend is not None
        try:
            run = self.backend.run_pipeline(
                lambda probe_id: self.post_message(ProbeStarted(probe_id)),
                lambda result: self.post_message(ProbeFinished(result)),
            )
        except Exception:
            self.post_message(PipelineDone(None, traceback.format_exc()))
            return
        self.post_message(PipelineDone(run))

    def on_probe_started(self, message: ProbeStarted) -> None:
        self.query_one(PipelineView).started(message.probe_id)

    def on_probe_finished(self, message: ProbeFinished) -> None:
        self._live.append(message.result)
        self.live_results += 1
        self.query_one(PipelineView).finished(clean_result(message.result))
        self._status()

    def on_pipeline_done(self, message: PipelineDone) -> None:
        self.pipeline_running = False
        if message.run is None:
            self.notify(
                "vkdoctor failed (a bug in vkdoctor); the traceback is in the log.",
                severity="error",
                timeout=10,
            )
            self.log.error(message.error)
            self._status()
            return
        previous = self.report
        self._set_report(message.run, previous)
        self.source = None
        self.sub_title = self._source_label()
        self._show_report()

    def _set_report(self, run: PipelineRun, previous: Report | None) -> None:
        report = run.report
        # Kernel runs made on this machine stay with a re-run of the same machine.
        if previous is not None and self.source is None:
            kernels = KernelRun.from_report(previous)
            if kernels is not None:
                report = merge_into_report(report, kernels)
        self.report = report
        self.internal_errors = run.internal_errors

    def _show_report(self) -> None:
        self.sub_title = self._source_label()
        # The views get a copy without terminal escapes; Save writes the report as recorded.
        shown = clean_report(self.report) if self.report is not None else None
        items = finding_items(shown)
        if shown is not None:
            self.query_one(PipelineView).show_report(shown)
            self.query_one(PipelineView).show_problems(items, shown.verdict)
        self.query_one(FindingsView).show(items)
        self.query_one(DevicesView).show(device_models(shown), no_device_reason(shown))
        self._status()

    # -- kernels

    def on_devices_view_run_kernels(self, message: DevicesView.RunKernels) -> None:
        if self.backend is None:
            self.notify("Nothing to run with: this TUI only views files.", severity="warning")
            return
        if self.source is not None:
            self.notify(
                f"This report comes from {Path(self.source).name}, maybe another machine: press "
                "r to diagnose this machine first, then run its kernels.",
                severity="warning",
                timeout=8,
            )
            return
        if self.pipeline_running:
            self.notify("Wait for the diagnosis to finish.")
            return
        if self.kernel_job is not None:
            self.notify("The kernel suite is already running.")
            return
        devices = (message.index,) if message.index is not None else None
        request = replace(self.kernel_request, devices=devices)
        self.kernel_job = self.backend.kernels(
            request, lambda event: self.post_message(KernelProgress(event))
        )
        self.query_one(DevicesView).set_busy(True)
        self._status()
        self._kernel_worker(self.kernel_job)

    @work(thread=True, group="kernels", exit_on_error=False)
    def _kernel_worker(self, job: KernelJob) -> None:
        try:
            run = job.run()
        except Exception:
            self.post_message(KernelsDone(None, traceback.format_exc()))
            return
        self.post_message(KernelsDone(run))

    def on_kernel_progress(self, message: KernelProgress) -> None:
        self.query_one(DevicesView).kernel_event(message.event)

    def on_kernels_done(self, message: KernelsDone) -> None:
        self.kernel_job = None
        self.query_one(DevicesView).set_busy(False)
        run = message.run
        if run is None:
            self.notify("The kernel suite failed (a bug in vkdoctor).", severity="error")
            self.log.error(message.error)
            self._status()
            return
        base = self.report or Report(tool_version=vkdoctor.__version__, created=run.created)
        self.report = merge_into_report(base, run)
        self._show_report()
        failing = [f for f in run.all_findings() if f.severity is Severity.FAIL]
        if run.cancelled:
            self.notify("Kernel suite cancelled.")
        elif failing:
            self.notify(f"Kernel suite: {len(failing)} problem(s); see Findings.", severity="error")
        else:
            self.notify("Kernel suite finished: every result verified.")

    # -- actions

    def action_view(self, name: str) -> None:
        self.query_one(TabbedContent).active = name
        self._focus_view(name)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        # Only for the tab still shown: focusing inside another pane would switch back to it.
        if event.pane.id and event.pane.id == self.query_one(TabbedContent).active:
            self._focus_view(event.pane.id)

    def _focus_view(self, name: str) -> None:
        target = self.query(_FOCUS[name])
        if target and target.first().display:
            # At once, not through Widget.focus (deferred): until the focus moves, the widget
            # focused in the pane just hidden can be reset to a sibling there, and focus in a
            # pane switches the tabs back to it (seen after the compare dialog closed).
            widget = target.first()
            widget.screen.set_focus(widget)

    def action_rerun(self) -> None:
        if self.source is None or self.report is None or self.backend is None:
            self.start_pipeline()
            return

        # An opened report may be the only copy of another machine's state: ask first.
        def answered(yes: bool | None) -> None:
            if yes:
                self.start_pipeline()

        self.push_screen(
            ConfirmScreen(
                f"Replace {Path(self.source).name} with a live run on this machine? "
                "The opened report stays on disk; s saves a copy first.",
                yes="Run here",
            ),
            answered,
        )

    def action_compare(self) -> None:
        if self.report is None:
            self.notify("Open or run a report first, then compare it.", severity="warning")
            return

        def done(path: str | None) -> None:
            if path:
                self.compare_with(path)

        self.push_screen(OpenScreen(title="Compare with a second report"), done)

    def compare_with(self, path: str) -> None:
        """Show what differs between the report on screen (A) and the one at ``path`` (B)."""
        from vkdoctor.render.diff import diff_reports, render_lines

        assert self.report is not None
        try:
            other, _ = open_document(path)
        except DocumentError as exc:
            self.notify(str(exc), severity="error", timeout=8)
            return
        if other is None:
            self.notify(f"{Path(path).name} is a trace, not a report.", severity="error")
            return
        label = Path(self.source).name if self.source else "this machine"
        try:
            diff = diff_reports(self.report.to_dict(), other.to_dict(), label, Path(path).name)
            render_lines(diff)  # an odd shape must fail here, not while the view paints
        except Exception:  # a valid report of a shape the diff trips over: say so, stay up
            self.log.error(traceback.format_exc())
            self.notify(f"Cannot compare with {Path(path).name}.", severity="error")
            return
        self.query_one(CompareView).show(diff)
        self.action_view("compare")

    def action_save(self) -> None:
        if self.report is None:
            self.notify("No report to save yet.", severity="warning")
            return
        suggestion = str(self.saved_to) if self.saved_to else ""

        def done(request: export.SaveRequest | None) -> None:
            if request is not None and self.report is not None:
                self.save(request)

        self.push_screen(SaveScreen(suggestion), done)

    def save(self, request: export.SaveRequest) -> None:
        assert self.report is not None
        try:
            path = export.save(self.report, request)
        except OSError as exc:
            self.notify(f"Cannot save to {request.path}: {exc.strerror or exc}", severity="error")
            return
        self.saved_to = path
        what = "redacted " if request.redact else ""
        self.notify(f"Saved the {what}{request.format} report to {path}")

    def action_open(self) -> None:
        def done(path: str | None) -> None:
            if path:
                self.open_path(path)

        self.push_screen(OpenScreen(), done)

    def open_path(self, path: str) -> None:
        try:
            report, trace = open_document(path)
        except DocumentError as exc:
            self.notify(str(exc), severity="error", timeout=8)
            return
        if trace is not None:
            self.trace = trace
            self.query_one(TraceView).show(trace)
        if report is not None and (trace is None or self.report is None):
            self.report = report
            self.source = path
            self.sub_title = self._source_label()
            self._show_report()
        self.action_view("trace" if trace is not None else "pipeline")

    def action_help(self) -> None:
        self.push_screen(HelpScreen(help_sections()))

    def on_pipeline_view_probe_chosen(self, message: PipelineView.ProbeChosen) -> None:
        self.query_one(FindingsView).select_probe(message.probe_id)
        self.action_view("findings")

    def on_findings_view_copy_requested(self, message: FindingsView.CopyRequested) -> None:
        self.copy_to_clipboard(message.text)
        self.notify(f"Copied: {message.text}")

    async def action_quit(self) -> None:
        if self.kernel_job is not None:
            self.kernel_job.cancel()  # the child would otherwise run on after we are gone
        self.exit(1 if self.internal_errors else 0)

    def on_unmount(self) -> None:
        if self.kernel_job is not None:
            self.kernel_job.cancel()

    # -- signals (installed by run_tui around app.run)

    def stop_for_signal(self, signum: signal.Signals) -> None:
        """Called in the signal handler, after every child was killed: end the app soon."""
        self.interrupted = signum
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._end_for_signal, signum)

    def _end_for_signal(self, signum: signal.Signals) -> None:
        if self.kernel_job is not None:
            self.kernel_job.cancel()
        self.exit(128 + int(signum))

    def report_so_far(self) -> Report | None:
        """What an interrupted session has: the run in flight's results, else the report."""
        if self.pipeline_running:
            return Report(
                tool_version=vkdoctor.__version__,
                created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                probes=list(self._live),
            )
        return self.report

    # -- the status line

    def _status(self) -> None:
        line = Text()
        if self.pipeline_running:
            line.append("● running the diagnosis", style="cyan")
            line.append(f" · {self.live_results} probes done", style="dim")
        elif self.report is not None:
            summary = self.report.summary()
            status = summary["status"]
            style = {"ok": "green", "warn": "yellow", "fail": "bold red"}[status]
            words = {"ok": "no problems", "warn": "warnings", "fail": "problems found"}[status]
            line.append(f"● {words}", style=style)
            tally = summary["counts"]["findings"]
            parts = [f"{tally[s]} {s}" for s in ("fail", "warn", "info") if tally.get(s)]
            if parts:
                line.append(" · " + ", ".join(parts), style="dim")
            diagnosed = any(p.id in ("loader-discovery", "instance") for p in self.report.probes)
            if diagnosed and not device_models(self.report):
                line.append(" · no Vulkan device", style="bold yellow")
        else:
            line.append("no report: r runs the diagnosis, o opens a file", style="dim")
        if self.kernel_job is not None:
            line.append(" · kernels running", style="cyan")
        if self.internal_errors:
            line.append(" · vkdoctor bug: see internal-error", style="bold red")
        self.query_one("#status-line", Static).update(line)


# Longer words for the help screen than the footer has room for.
_HELP = {
    "view": "pipeline, findings, devices, trace, compare",
    "rerun": "run the diagnosis again, on this machine",
    "save": "save the report: JSON or Markdown, redacted",
    "open": "open a report or a `vkdoctor trace` file",
    "compare": "compare the report with a second one (as `report diff`)",
    "help": "this help",
    "quit": "quit",
    "copy": "copy the remedy command (works over SSH too)",
    "run_kernels": "run the kernel suite on this device",
    "run_all": "run the kernel suite on every device",
}


def help_sections() -> list[tuple[str, list[tuple[str, str]]]]:
    def keys(bindings: list[BindingType]) -> list[tuple[str, str]]:
        rows: list[tuple[str, str]] = []
        for binding in bindings:
            if not isinstance(binding, Binding) or not binding.description:
                continue
            action = binding.action.split("(")[0]
            if action == "view":
                if not any(key == "1-5" for key, _ in rows):
                    rows.append(("1-5", _HELP["view"]))
                continue
            rows.append(
                (binding.key_display or binding.key, _HELP.get(action, binding.description))
            )
        return rows

    return [
        ("Everywhere", keys(VkDoctorApp.BINDINGS)),
        ("Pipeline", [("enter", "the findings of the highlighted probe")]),
        (
            "Findings",
            [
                ("up, down", "choose a finding"),
                *keys(FindingsView.BINDINGS),
                ("tab", "to the commands; enter copies one"),
            ],
        ),
        ("Devices", [*keys(DevicesView.BINDINGS), ("tab", "device list, then the results")]),
    ]
