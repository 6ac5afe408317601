"""Messages workers post to the app.  Their payloads are immutable values (frozen dataclasses,
or model objects the UI only reads), so a message can never change under a widget."""

from __future__ import annotations

from textual.message import Message

from vkdoctor.kernels.run import KernelEvent, KernelRun
from vkdoctor.report.model import ProbeResult
from vkdoctor.tui.backend import PipelineRun


class ProbeStarted(Message):
    def __init__(self, probe_id: str) -> None:
        super().__init__()
        self.probe_id = probe_id


class ProbeFinished(Message):
    def __init__(self, result: ProbeResult) -> None:
        super().__init__()
        self.result = result


class PipelineDone(Message):
    def __init__(self, run: PipelineRun | None, error: str | None = None) -> None:
        super().__init__()
        self.run = run
        self.error = error  # a traceback: the backend itself failed


class KernelProgress(Message):
    def __init__(self, event: KernelEvent) -> None:
        super().__init__()
        self.event = event


class KernelsDone(Message):
    def __init__(self, run: KernelRun | None, error: str | None = None) -> None:
        super().__init__()
        self.run = run
        self.error = error
