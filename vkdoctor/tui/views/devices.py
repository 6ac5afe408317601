"""The device view: properties, queues and memory of one device, its kernel runs (progress
while running, then a table and a bar chart against the device's peak) and, beside them, the
findings that concern this device."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field
from typing import ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, ProgressBar, Select, Static

from vkdoctor.kernels import fmt as kernelfmt
from vkdoctor.kernels.peaks import BANDWIDTH, FP16
from vkdoctor.kernels.run import (
    DeviceRun,
    KernelEvent,
    KernelFinished,
    KernelRow,
    KernelStarted,
    SuiteFinished,
    SuiteStarted,
)
from vkdoctor.record import mutable
from vkdoctor.render.console import SEVERITY_STYLE
from vkdoctor.render.styles import KERNEL_STATUS_COLOUR
from vkdoctor.tui.viewmodel import SEVERITY_ICON, DeviceModel, one_line

_METRIC_STYLE = {BANDWIDTH: "blue", FP16: "cyan"}
_EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(fraction: float, width: int) -> tuple[str, str]:
    """(filled, empty) parts of a bar of ``width`` cells, in eighths of a cell."""
    fraction = max(0.0, min(1.0, fraction))
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    filled = "█" * full + (_EIGHTHS[part] if part else "")
    return filled, "·" * (width - len(filled))


def peak_cell(row: KernelRow, width: int = 8) -> Text:
    """The kernel's fraction of peak as a bar and a percentage: the column is the chart."""
    fig = row.figure
    text = Text()
    if fig is None:
        return text
    if fig.fraction is None:  # no datasheet peak: the bar would only restate the best figure
        return Text(kernelfmt.of_peak(fig), style="dim")
    filled, empty = bar(fig.fraction, width)
    text.append(filled, style=_METRIC_STYLE.get(fig.metric, "green"))
    text.append(empty, style="dim")
    text.append(f" {kernelfmt.fraction(fig.fraction):>5}")
    return text


def result_cell(row: KernelRow) -> Text:
    """The figure of a verified kernel, else what went wrong."""
    if row.status == "ok":
        return Text(kernelfmt.figure_text(row.figure), style="green" if row.figure else "")
    return Text(row.status, style=KERNEL_STATUS_COLOUR.get(row.status, ""))


@mutable
class _Live:
    """A kernel run in progress on one device, assembled from events."""

    total: int = 0
    rows: list[KernelRow] = field(default_factory=list)
    current: str = ""
    preset: str = ""
    final: DeviceRun | None = None


def _properties(model: DeviceModel) -> RenderableType:
    props = Table.grid(padding=(0, 1))
    props.add_column(style="dim", no_wrap=True)
    props.add_column()
    for label, value in model.properties:
        props.add_row(label, value)
    parts: list[RenderableType] = [Text(model.name, style="bold"), props]
    if model.queues:
        queues = Table(box=None, padding=(0, 1), header_style="bold", pad_edge=False)
        queues.add_column("queue")
        queues.add_column("flags")
        queues.add_column("n", justify="right")
        queues.add_column("ts bits", justify="right")
        for row in model.queues:
            queues.add_row(*row)
        parts += [Text(""), queues]
    if model.memory:
        memory = Table(box=None, padding=(0, 1), header_style="bold", pad_edge=False)
        memory.add_column("heap size", justify="right")
        memory.add_column("flags")
        for size, flags in model.memory:
            memory.add_row(size, flags)
        parts += [Text(""), memory]
    return Group(*parts)


def _without_device(summary: str, model: DeviceModel) -> str:
    """The pane is about one device: drop the "device 0 (name): " a summary starts with."""
    for prefix in (f"device {model.index} ({model.name}): ", f"{model.name}: "):
        if summary.startswith(prefix):
            return summary[len(prefix) :]
    return summary


class DevicesView(Vertical):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("k", "run_kernels", "Run kernels"),
        Binding("a", "run_all", "Kernels, all devices"),
    ]

    class RunKernels(Message):
        """The user asked for the kernel suite; ``index`` None means every device."""

        def __init__(self, index: int | None) -> None:
            super().__init__()
            self.index = index

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._models: dict[int, DeviceModel] = {}
        self._live: dict[int, _Live] = {}
        self._selected: int | None = None
        self._reason = ""
        self._busy = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="device-bar"):
            yield Select[int]([], prompt="no device", allow_blank=True, id="device-select")
            yield Static("k run kernels · a all", id="device-hint")
        yield Static("", id="no-device")
        with Horizontal(id="device-body"):
            with VerticalScroll(id="device-left"):
                yield Static("Kernels", classes="section")
                yield Static("", id="kernel-status")
                yield ProgressBar(id="kernel-progress", show_eta=False)
                # No cell padding: 80 columns leave the left pane about 50 cells.
                yield DataTable(
                    id="kernel-table", cursor_type="row", show_cursor=False, cell_padding=0
                )
                yield Static("Device", classes="section")
                yield Static("", id="device-props")
            with VerticalScroll(id="device-findings"):
                yield Static("Findings", classes="section")
                yield Static("", id="device-finding-list")

    def on_mount(self) -> None:
        table = self.query_one("#kernel-table", DataTable)
        table.add_column("kernel", key="kernel", width=10)
        table.add_column("median", key="median", width=9)
        table.add_column("result", key="result", width=15)
        table.add_column("of peak", key="peak", width=14)
        self._refresh_view()

    # -- what the app tells it

    def show(self, models: Sequence[DeviceModel], reason: str = "") -> None:
        """New device models (a new report, or kernels finished)."""
        self._models = {m.index: m for m in models}
        self._reason = reason
        for index, model in self._models.items():
            live = self._live.get(index)
            if live is not None and live.final is not None and model.kernels is not None:
                del self._live[index]  # the report now holds the finished run
        select = self.query_one("#device-select", Select)
        options = [(f"{m.index}: {m.name}", m.index) for m in models]
        if self._selected not in self._models:
            self._selected = models[0].index if models else None
        with self.prevent(Select.Changed):
            select.set_options(options)
            if self._selected is not None:
                select.value = self._selected
        self._refresh_view()

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self._refresh_kernels()

    def kernel_event(self, event: KernelEvent) -> None:
        if isinstance(event, SuiteStarted):
            self._live[event.index] = _Live(total=len(event.kernels), preset=event.preset)
        elif isinstance(event, KernelStarted):
            live = self._live.setdefault(event.index, _Live(total=event.total))
            live.current = event.kernel
        elif isinstance(event, KernelFinished):
            live = self._live.setdefault(event.index, _Live(total=event.total))
            live.rows.append(event.row)
            live.current = ""
        elif isinstance(event, SuiteFinished):
            live = self._live.setdefault(event.run.index, _Live())
            live.final = event.run
            live.rows = list(event.run.rows)
            live.total = len(event.run.rows)
        else:
            return
        index = event.run.index if isinstance(event, SuiteFinished) else event.index
        if index == self._selected:
            self._refresh_kernels()

    @property
    def selected(self) -> int | None:
        return self._selected

    # -- rendering

    def _refresh_view(self) -> None:
        model = self._models.get(self._selected) if self._selected is not None else None
        empty = self.query_one("#no-device", Static)
        body = self.query_one("#device-body")
        if model is None:
            empty.update(Text(self._reason or "No Vulkan device.", style="bold yellow"))
            empty.display, body.display = True, False
            return
        empty.display, body.display = False, True
        self.query_one("#device-props", Static).update(_properties(model))
        findings = Text()
        for n, item in enumerate(model.findings):
            finding = item.finding
            if n:
                findings.append("\n")
            findings.append(
                f"{SEVERITY_ICON[finding.severity]} ", style=SEVERITY_STYLE[finding.severity]
            )
            findings.append(one_line(_without_device(finding.summary, model), 160))
            findings.append(f" ({finding.code})", style="dim")
        if not model.findings:
            findings.append("none for this device", style="dim")
        self.query_one("#device-finding-list", Static).update(findings)
        self._refresh_kernels()

    def _refresh_kernels(self) -> None:
        index = self._selected
        model = self._models.get(index) if index is not None else None
        status = self.query_one("#kernel-status", Static)
        progress = self.query_one("#kernel-progress", ProgressBar)
        table = self.query_one("#kernel-table", DataTable)
        live = self._live.get(index) if index is not None else None
        run = model.kernels if model is not None else None
        if live is not None and live.final is None:
            rows = live.rows
            progress.display = True
            progress.update(total=max(live.total, 1), progress=len(rows))
            doing = f"running {live.current}" if live.current else "starting"
            status.update(Text(f"{doing} · {len(rows)}/{live.total} done", style="cyan"))
        else:
            final = live.final if live is not None else run
            rows = list(final.rows) if final is not None else []
            progress.display = False
            if final is not None:
                reps = kernelfmt.repetitions(final.sizes, kernelfmt.timing_source(final.rows))
                line = f"{final.preset} sizes" + (f", {reps}" if reps else "")
                status.update(Text(f"{line}\n{kernelfmt.peak_text(final.peak)}", style="dim"))
            elif self._busy:
                status.update(Text("waiting for the kernel suite…", style="cyan"))
            else:
                status.update(Text("Not run yet: press k (this device) or a (all).", style="dim"))
        table.clear()
        for row in rows:
            table.add_row(
                row.kernel,
                kernelfmt.time_ns(row.timing.get("median_ns")),
                result_cell(row),
                peak_cell(row),
                key=row.kernel,
            )
        table.display = bool(rows)

    # -- input

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if isinstance(event.value, int):
            self._selected = event.value
            self._refresh_view()

    def action_run_kernels(self) -> None:
        if self._selected is None:
            self.notify("No device to run kernels on.", severity="warning")
            return
        self.post_message(self.RunKernels(self._selected))

    def action_run_all(self) -> None:
        self.post_message(self.RunKernels(None))
