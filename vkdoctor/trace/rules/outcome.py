"""The program's exit: timeout, a signal the audit module did not explain, a non-zero status."""

from __future__ import annotations

from vkdoctor.report import shell
from vkdoctor.report.model import Severity
from vkdoctor.trace.launch import ProgramOutcome
from vkdoctor.trace.replay import Replay
from vkdoctor.trace.state import (
    ROLE_OTHER,
    Proc,
    short,
)


class OutcomeRules(Replay):
    def conclude_outcome(self) -> None:
        outcome = self.ctx.outcome
        if outcome is None or not outcome.started:
            return
        main = self.procs.get(outcome.pid or -1)
        if outcome.timed_out:
            self.add(
                ("program-timeout",),
                "program-timeout",
                f"{short(outcome.argv[0])} was still running after the timeout and was "
                f"killed after {outcome.duration_s:.1f} s",
                evidence={"pid": outcome.pid, "duration_s": round(outcome.duration_s, 3)},
            )
            return
        if outcome.signal_number:
            signalled = main.signals if main is not None else []
            if not any(s.seq in self.explained_signals for s in signalled):
                self.add_signal_without_audit(main, outcome)
        elif outcome.returncode:
            self.add(
                ("program-exit-nonzero",),
                "program-exit-nonzero",
                f"{short(outcome.argv[0])} exited with status {outcome.returncode}",
                evidence={"pid": outcome.pid, "exit_code": outcome.returncode},
            )

    def add_signal_without_audit(self, main: Proc | None, outcome: ProgramOutcome) -> None:
        name = outcome.signal_name or "a signal"
        unloads = []
        if main is not None:
            unloads = [
                lib
                for lib in main.closed_libs
                if not lib.at_exit and self.role(lib.path) != ROLE_OTHER
            ]
        if unloads:
            lib = unloads[-1]
            assert lib.closed is not None
            self.add(
                ("call-after-unload", outcome.pid, "likely"),
                "call-after-unload",
                f"{short(outcome.argv[0])} died from {name} after {short(lib.path)} had been "
                f"unloaded at event {lib.closed.seq}; the crash address is not visible in this "
                "mode, but a call into the unloaded library is the likely cause",
                severity=Severity.WARN,
                evidence={
                    "pid": outcome.pid,
                    "signal": name,
                    "library": lib.path,
                    "timeline": self.timeline([lib.opened, lib.closed]),
                },
            )
            return
        self.add(
            ("program-crashed", outcome.pid, "status"),
            "program-crashed",
            f"{short(outcome.argv[0])} died from {name}"
            + ("" if self.ctx.audit_expected else " (no crash address without the audit module)"),
            evidence={"pid": outcome.pid, "signal": name},
            commands=(shell.command("gdb", "--args", *outcome.argv),),
        )
