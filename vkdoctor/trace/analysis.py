"""From a trace to diagnoses: replay the events per process, then name what went wrong.

The replay keeps, per process, the mapped objects (with their address ranges, so a crash address
can be tied to a library that used to be there), the live and destroyed Vulkan instances and
devices (from the layer) and the proc-address queries (from the audit module).  Library roles
(loader, driver, layer) come from the trace itself: the loader takes ``vk_icd*`` entry points
from drivers and ``vkNegotiateLoaderLayerInterfaceVersion`` from layers; driver manifests found on
the machine fill in what the trace does not show.

The work is split by responsibility: ``replay`` builds the state (``state``), ``rules/*`` turn
it into findings, ``crash``/``provenance``/``symbolize`` attribute crashes, ``facts`` summarises.
"""

from __future__ import annotations

from collections.abc import Sequence

from vkdoctor.trace.events import ParsedTrace
from vkdoctor.trace.facts import FactsMixin
from vkdoctor.trace.rules.codes import CODES
from vkdoctor.trace.rules.crashes import CrashRules
from vkdoctor.trace.rules.lifetimes import LifetimeRules
from vkdoctor.trace.rules.outcome import OutcomeRules
from vkdoctor.trace.rules.proc_addr import ProcAddrRules
from vkdoctor.trace.state import TraceAnalysis, TraceContext, canonical

__all__ = ["CODES", "TraceAnalysis", "TraceContext", "analyze", "driver_paths_from_manifests"]


class _Analyzer(CrashRules, ProcAddrRules, LifetimeRules, OutcomeRules, FactsMixin):
    # -- conclusions after the replay --

    def conclude(self) -> None:
        for proc in self.procs.values():
            self.conclude_signals(proc)
            self.conclude_proc_addr(proc)
            self.conclude_bypass(proc)
            self.conclude_loaders(proc)
            self.conclude_fork(proc)
            self.conclude_leaks(proc)
            self.conclude_shared_pointers(proc)
        self.conclude_outcome()


def analyze(trace: ParsedTrace, ctx: TraceContext, *, strict: bool = False) -> TraceAnalysis:
    """Replay ``trace`` and return the findings (diagnoses) and the timeline facts.

    ``strict`` lets an exception from a malformed event propagate (tests); otherwise the event
    is skipped and listed in the facts."""
    analyzer = _Analyzer(trace, ctx, strict=strict)
    analyzer.run()
    analyzer.conclude()
    findings = sorted(analyzer.findings, key=lambda f: -f.severity.rank)
    return TraceAnalysis(findings=findings, facts=analyzer.facts())


def driver_paths_from_manifests(manifest_files: Sequence[str]) -> frozenset[str]:
    """Library paths named by ICD manifests (absolute ones only; bare names are searched by
    the dynamic linker and show up in the trace under their resolved path anyway)."""
    import json

    paths = set()
    for file in manifest_files:
        try:
            with open(file, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            continue
        icd = data.get("ICD") if isinstance(data, dict) else None
        library = icd.get("library_path") if isinstance(icd, dict) else None
        if isinstance(library, str) and library.startswith("/"):
            paths.add(canonical(library))
    return frozenset(paths)
