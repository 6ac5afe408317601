"""What the TUI runs, injected into the app (harlequin's pattern): the live backend drives the
real pipeline and kernel suite; tests inject scripted or gated ones.

Every method is called from a worker thread and may block; callbacks are called from that
thread (or the kernel child's reader thread) and must only post messages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from vkdoctor.kernels.run import KernelEvent, KernelRequest, KernelRun
from vkdoctor.record import frozen
from vkdoctor.report.model import ProbeResult, Report


@frozen
class PipelineRun:
    report: Report
    internal_errors: tuple[str, ...] = ()


class KernelJob(Protocol):
    def run(self) -> KernelRun: ...

    def cancel(self) -> None: ...


class Backend(Protocol):
    def probes(self) -> Sequence[tuple[str, str]]:
        """(id, title) of every probe a run will report, in order (shown as pending)."""
        ...

    def run_pipeline(
        self,
        on_start: Callable[[str], None],
        on_result: Callable[[ProbeResult], None],
    ) -> PipelineRun: ...

    def kernels(
        self, request: KernelRequest, on_event: Callable[[KernelEvent], None]
    ) -> KernelJob: ...


class LiveBackend:
    """This machine: ``runner.run_pipeline`` and ``kernelrun.KernelSession``."""

    def __init__(self, timeout_s: float | None = None) -> None:
        self.timeout_s = timeout_s

    def probes(self) -> Sequence[tuple[str, str]]:
        from vkdoctor.engine.plan import PIPELINE, available_probes

        titles = {spec.id: spec.title for spec in available_probes()}
        return [(probe_id, titles.get(probe_id, probe_id)) for probe_id in PIPELINE]

    def run_pipeline(
        self,
        on_start: Callable[[str], None],
        on_result: Callable[[ProbeResult], None],
    ) -> PipelineRun:
        from vkdoctor.engine.env import Env
        from vkdoctor.engine.runner import Options, run_pipeline

        options = Options(timeout_s=self.timeout_s) if self.timeout_s else Options()
        run = run_pipeline(Env.current(), options, None, lambda spec: on_start(spec.id), on_result)
        return PipelineRun(run.report, tuple(run.internal_errors))

    def kernels(self, request: KernelRequest, on_event: Callable[[KernelEvent], None]) -> KernelJob:
        from vkdoctor.kernels.run import KernelSession

        return KernelSession(request, on_event=on_event)
