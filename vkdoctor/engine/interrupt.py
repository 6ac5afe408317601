"""SIGINT/SIGTERM/SIGHUP during a run: stop the run, not the process.

``check``, ``trace`` and ``kernels`` wrap their run in ``stop_on_signals``; afterwards
``interrupting_signal`` says whether a signal ended it, so the caller writes what was found so far
and exits 128+signal (DESIGN.md, robustness).  The stop itself lives in ``engine.child``: every
live child's process group is killed and no new child starts.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# The other stop: the whole run's limit (plan.Options.deadline_s, `--deadline`).  Here, where the
# CLI can read it for its help without importing the plan.
DEFAULT_DEADLINE_S = 120.0  # even a hostile machine gets a report in two minutes


def interrupting_signal() -> signal.Signals | None:
    """The signal that stopped this run, if one did."""
    from vkdoctor.engine import child  # not at import: the CLI imports this module for --help

    reason = child.stop_reason() or ""
    try:
        return signal.Signals[reason]
    except KeyError:
        return None


@contextlib.contextmanager
def stop_on_signals(
    interrupt_main: bool = False, on_stop: Callable[[signal.Signals], None] | None = None
) -> Iterator[None]:
    """While the body runs, SIGINT/SIGTERM/SIGHUP stop the run instead of killing vkdoctor:
    every child's process group is killed at once, no new child starts, and the runner marks
    what did not finish, so the caller can still write the report and exit 128+signal.

    ``interrupt_main`` also raises KeyboardInterrupt once in the main thread (``trace`` waits for
    its program there and must stop waiting); ``on_stop`` is called with the signal after the
    stop (the TUI ends its event loop there; it must only schedule work, it runs in a handler)."""
    from vkdoctor.engine import child

    raised = False

    def handler(signum: int, frame: Any) -> None:
        nonlocal raised
        if child.stop_reason() in signal.Signals.__members__:
            # A second signal: the user does not want to wait for the report any more.
            child.kill_all()
            os._exit(128 + signum)
        child.request_stop(signal.Signals(signum).name)
        if on_stop is not None:
            on_stop(signal.Signals(signum))
        if interrupt_main and not raised:
            raised = True
            raise KeyboardInterrupt

    previous: dict[int, Any] = {}
    try:
        for signum in STOP_SIGNALS:
            previous[signum] = signal.signal(signum, handler)
    except ValueError:  # not the main thread (an embedding program): leave its handlers alone
        pass
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
