"""``vkdoctor kernels`` on several devices: one KernelSession (one child) per device, GPUs
concurrently, and the devices of one model compared with each other at the end.

The first device's session starts at once and reports every device the loader enumerates
(DevicesSeen); the other devices' sessions start then, so a one-device machine runs exactly
the one child it always ran.  GPUs run side by side (each has its own silicon, so 8 GPUs take
about as long as one); CPU devices (lavapipe, llvmpipe) share the host's cores, so they run
one after another, or their figures would measure each other.  Headless.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timezone

from vkdoctor.kernels import siblings
from vkdoctor.kernels.run import (
    TASK,
    DevicesSeen,
    KernelEvent,
    KernelRequest,
    KernelRun,
    KernelSession,
)
from vkdoctor.report.records import DeviceRecord


class DeviceFanout:
    """The same interface as KernelSession (``run()`` blocks, ``cancel()`` from any thread,
    ``on_event`` from reader threads, serialised here)."""

    def __init__(
        self,
        request: KernelRequest,
        environ: Mapping[str, str] | None = None,
        on_event: Callable[[KernelEvent], None] | None = None,
        task: str = TASK,
    ) -> None:
        self.request = request
        self.environ = environ
        self.on_event = on_event
        self.task = task
        self._lock = threading.Lock()
        self._event_lock = threading.Lock()
        self._sessions: list[KernelSession] = []
        self._cancelled = False
        self._seen: tuple[DeviceRecord, ...] | None = None
        self._seen_event = threading.Event()
        # The first session fixes the seed, so every device runs the same inputs.
        self._first = self._session(request.devices[0] if request.devices else 0, None)

    def _session(self, index: int, seed: int | None) -> KernelSession:
        request = replace(self.request, devices=(index,), seed=seed or self.request.seed)
        session = KernelSession(request, self.environ, self._forward, self.task)
        with self._lock:
            self._sessions.append(session)
            if self._cancelled:
                session.cancel()
        return session

    def _forward(self, event: KernelEvent) -> None:
        if isinstance(event, DevicesSeen):
            with self._lock:
                first = self._seen is None
                if first:
                    self._seen = event.devices
            if first:
                self._seen_event.set()
            else:
                return  # every session sees the devices; the UI hears it once
        if self.on_event is not None:
            with self._event_lock:
                self.on_event(event)

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            sessions = list(self._sessions)
        for session in sessions:
            session.cancel()

    def run(self) -> KernelRun:
        started = time.monotonic()
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        results: dict[int, KernelRun] = {}
        first_index = self.request.devices[0] if self.request.devices else 0

        def run_first() -> None:
            results[first_index] = self._first.run()
            self._seen_event.set()  # it ended without seeing devices (no Vulkan)

        first = threading.Thread(target=run_first, name="kernels-device-first", daemon=True)
        first.start()
        self._seen_event.wait()
        devices = self._seen or ()
        wanted = (
            list(self.request.devices)
            if self.request.devices is not None
            else list(range(len(devices)))
        )
        rest = [i for i in wanted if i != first_index and 0 <= i < len(devices)]
        gpus = [i for i in rest if not devices[i].is_cpu]
        cpus = [i for i in rest if devices[i].is_cpu]
        threads = []
        for index in gpus:
            session = self._session(index, self._first.seed)

            def go(session: KernelSession = session, index: int = index) -> None:
                results[index] = session.run()

            thread = threading.Thread(target=go, name=f"kernels-device-{index}", daemon=True)
            thread.start()
            threads.append(thread)
        # CPU devices wait for every other CPU device's suite: they share the cores.
        cpu_first = devices[first_index].is_cpu if 0 <= first_index < len(devices) else False
        if cpu_first:
            first.join()
        for index in cpus:
            if self._cancelled:
                break
            results[index] = self._session(index, self._first.seed).run()
        first.join()
        for thread in threads:
            thread.join()
        return self._merge(results, devices, started, created)

    def _merge(
        self,
        results: Mapping[int, KernelRun],
        devices: tuple[DeviceRecord, ...],
        started: float,
        created: str,
    ) -> KernelRun:
        ordered = [results[i] for i in sorted(results)]
        runs = tuple(sorted((r for k in ordered for r in k.runs), key=lambda r: r.index))
        comparisons = siblings.compare(runs)
        findings = tuple(f for k in ordered for f in k.findings)
        findings += tuple(siblings.slower_findings(comparisons, runs))
        missing: tuple[int, ...] = ()
        if self.request.devices is not None and results:
            missing = tuple(d for d in self.request.devices if not 0 <= d < len(devices))
        first = ordered[0] if ordered else None
        return KernelRun(
            request=self.request,
            seed=self._first.seed,
            loader_version=first.loader_version if first else None,
            devices=devices,
            runs=runs,
            findings=findings,
            missing_devices=missing,
            internal_errors=tuple(e for k in ordered for e in k.internal_errors),
            cancelled=self._cancelled or any(k.cancelled for k in ordered),
            wall_s=time.monotonic() - started,
            created=created,
            comparisons=comparisons,
        )
