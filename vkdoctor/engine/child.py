"""Run risky native work (dlopen of drivers and layers, any Vulkan call) in a child process.

A driver can crash or hang the process that loads it, so vkdoctor never loads one in its own.
The child is ``python -m vkdoctor.engine.child_main``; it receives a task (``module:function``) and a JSON
payload on stdin and streams JSON lines on a dedicated pipe: breadcrumbs ("inside vkCreateInstance
with layer X"), results, and item boundaries for batches.  The child's stdout and stderr (driver
noise, the loader's VK_LOADER_DEBUG lines) are captured separately and never shown.

A signal death becomes ``crashed`` with the signal name and the last breadcrumb; a child that
outlives its deadline is killed (its whole process group) and becomes ``timeout``.  Batches resume
after the item that killed the child, so one bad driver does not hide the others.

Children never outlive vkdoctor (DESIGN.md, robustness): each runs in its own process group (a
driver may fork helpers), asks the kernel for SIGKILL when its parent dies (PR_SET_PDEATHSIG, set
by child_main) and watches a "lifeline" pipe whose write end only vkdoctor holds, so EOF on it
means vkdoctor is gone and the child kills its whole group.  PR_SET_PDEATHSIG fires when the
*thread* that forked the child ends, so every child is forked by one long-lived spawner thread.
The parent records every live child; ``kill_all`` (atexit, and the CLI's signal handlers) kills
their groups, and after ``request_stop`` no new child starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import field
from enum import Enum
from typing import Any

from vkdoctor.engine.protocol import (  # the parent side uses these names too
    DONE_MARKER,
    ITEM_MARKER,
)
from vkdoctor.engine.spawn import (  # re-exported: callers and tests use child.<name>
    _REGISTRY,
    Spawned,
    StoppingError,
    _forget,
    adopt,
    child_environ,
    clear_stop,
    kill_all,
    live_pids,
    request_stop,
    spawn,
    stop_reason,
)
from vkdoctor.record import frozen, mutable

__all__ = [
    "Spawned",
    "StoppingError",
    "child_environ",
    "clear_stop",
    "kill_all",
    "live_pids",
    "request_stop",
    "spawn",
    "stop_reason",
]


@frozen
class ChildOutcome:
    state: str  # ok | crashed | timeout | error | spawn-failed | cancelled
    results: tuple[dict[str, Any], ...] = ()
    crumbs: tuple[str, ...] = ()
    signal: str | None = None
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    error: str | None = None  # the child's Python traceback (a vkdoctor bug) or spawn error
    wchan: tuple[str, ...] = ()  # kernel wait channels of a hung child's threads

    @property
    def last_crumb(self) -> str | None:
        return self.crumbs[-1] if self.crumbs else None

    @property
    def result(self) -> dict[str, Any] | None:
        return self.results[-1] if self.results else None

    def describe(self) -> str:
        """One line for a finding: what happened and where."""
        where = f" ({self.last_crumb})" if self.last_crumb else ""
        if self.state == "crashed":
            return f"the child process died from {self.signal}{where}"
        if self.state == "timeout":
            return f"the child process did not finish within {self.duration_s:.1f}s{where}"
        if self.state == "error":
            return f"the probe failed inside its child process{where}"
        if self.state == "spawn-failed":
            return f"the child process could not be started: {self.error}"
        if self.returncode:
            return f"the child process exited with status {self.returncode}{where}"
        return "completed"


@frozen
class ItemOutcome:
    """What happened to one item of a batch (one driver library, one layer, ...)."""

    key: str
    state: str  # ok | crashed | timeout | error | not-run
    result: dict[str, Any] | None
    crumbs: tuple[str, ...]
    stderr: str
    signal: str | None = None
    duration_s: float = 0.0
    wchan: tuple[str, ...] = ()  # kernel wait channels of the threads, when it hung
    error: str | None = None  # the child's Python traceback, when vkdoctor's own code failed

    @property
    def last_crumb(self) -> str | None:
        return self.crumbs[-1] if self.crumbs else None


@mutable
class _Collected:
    proto: bytearray = field(default_factory=bytearray)
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _wchan(pid: int) -> tuple[str, ...]:
    channels: list[str] = []
    try:
        for task in sorted(os.listdir(f"/proc/{pid}/task")):
            try:
                with open(f"/proc/{pid}/task/{task}/wchan") as handle:
                    channels.append(handle.read().strip() or "running")
            except OSError:
                continue
    except OSError:
        pass
    return tuple(channels)


class Sharing(Enum):
    """Whether a task's child may be one that ran earlier tasks, and may run later ones."""

    NONE = "none"  # a child of its own, which exits after the task
    OFFER = "offer"  # a fresh or warm child, kept for later tasks if this one ends normally
    SHARE = "share"  # may also take a kept child (same variables, earlier tasks all ended normally)


# Variables the dynamic linker reads once at process start: a warm child cannot take them late.
_EARLY_ONLY = ("LD_", "PYTHON")


class ChildPool:
    """Children started ahead of need, so Python's start-up overlaps the parent's work, and
    children kept after a task that ended normally, for the next task with the same variables.

    A warm child has not loaded libvulkan or any driver yet; the Vulkan variables of its task are
    applied (putenv) before anything reads them.  A kept child has run tasks whose variables
    (``overrides``) were exactly these, each ending normally; it is handed only to a request
    with ``Sharing.SHARE`` (a probe's first attempt, which a failure re-runs in a fresh child,
    so a failure is always diagnosed in isolation).  Reuse saves a child's start-up and
    the loader's mapping of every driver, most of what a healthy step costs (benchmarks/).
    Owned by one pipeline run; ``close`` ends idle children."""

    def __init__(
        self, environ: Mapping[str, str], size: int = 2, budget: int | None = None
    ) -> None:
        self.environ = dict(environ)
        self.size = size
        self.budget = budget  # children this pool may start in all (None: no limit)
        self._idle: list[Spawned] = []
        self._kept: list[tuple[frozenset[tuple[str, str | None]], Spawned]] = []
        self._speculative: dict[_RequestKey, ChildHandle] = {}
        self._dying: list[Spawned] = []  # killed by stop, reaped by close
        self._cancelled: list[ChildHandle] = []
        self._lock = threading.Lock()
        self._closed = False
        # Children the CLI started before its imports (spawn.prestart), if they fit this pool.
        adopted = adopt(self.environ, budget if budget is not None else size)
        self._idle.extend(adopted)
        if self.budget is not None:
            self.budget -= len(adopted)
        self._fill()

    def speculate(
        self,
        task: str,
        payload: Mapping[str, Any],
        overrides: Mapping[str, str | None],
        sharing: Sharing,
        timeout: float,
    ) -> None:
        """Start a request the run is expected to make, before the caller has the code that
        makes it (the dispatch child while the runner and the probes are still importing).
        ``start_child`` hands it out only to the very same request; one nobody asked for is
        cancelled by ``close``."""
        handle = start_child(
            task,
            payload,
            environ=self.environ,
            timeout=timeout,
            overrides=overrides,
            pool=self,
            sharing=sharing,
        )
        with self._lock:
            self._speculative[request_key(task, payload, overrides, sharing)] = handle

    def claim(self, key: _RequestKey, timeout: float) -> ChildHandle | None:
        """The speculative child of exactly this request (``request_key``), if one was started
        with no longer a time limit than this request's."""
        with self._lock:
            handle = self._speculative.get(key)
            if handle is None or handle.timeout > timeout:
                return None
            return self._speculative.pop(key)

    def _fill(self) -> None:
        while len(self._idle) < self.size and _REGISTRY.stop_reason is None:
            if self.budget is not None and self.budget <= 0:
                return
            try:
                self._idle.append(spawn(self.environ))
            except OSError:
                return
            if self.budget is not None:
                self.budget -= 1

    def take(
        self, overrides: Mapping[str, str | None], sharing: Sharing = Sharing.NONE
    ) -> Spawned | None:
        if any(key.startswith(_EARLY_ONLY) for key in overrides):
            return None
        with self._lock:
            if sharing is Sharing.SHARE:
                wanted = frozenset(overrides.items())
                # The child kept last first: it ran the step this one follows (the instance
                # probe's child for the device probe), so the loader and the drivers it maps are
                # the ones this task needs, already loaded.
                for index in range(len(self._kept) - 1, -1, -1):
                    variables, spawned = self._kept[index]
                    if variables == wanted and spawned.proc.poll() is None:
                        del self._kept[index]
                        return spawned
            spawned = self._idle.pop(0) if self._idle else None
            self._fill()
        return spawned

    def keep(self, overrides: Mapping[str, str | None], spawned: Spawned) -> None:
        """A child whose task ended normally, waiting for its next request."""
        with self._lock:
            if _REGISTRY.stop_reason is None and not self._closed:
                self._kept.append((frozenset(overrides.items()), spawned))
                return
        _end(spawned)

    def stop(self) -> None:
        """Kill every child this pool holds, without waiting for them: a child that loaded a
        GPU driver takes tens of ms to tear down (the H200's: ~35 ms each), which then overlaps
        the caller's diagnosis and output until ``close`` reaps them."""
        with self._lock:
            self._closed = True
            idle = self._idle + [spawned for _, spawned in self._kept]
            unclaimed = list(self._speculative.values())
            self._idle, self._kept, self._speculative = [], [], {}
            self._dying += idle
            self._cancelled += unclaimed
        # Every kill first, then (in close) the reaping, so the teardowns overlap each other.
        for handle in unclaimed:
            handle.cancel()
        for spawned in idle:
            _kill(spawned)

    def close(self) -> None:
        """``stop``, then reap every child it killed: nothing outlives the run."""
        self.stop()
        with self._lock:
            idle, unclaimed = self._dying, self._cancelled
            self._dying, self._cancelled = [], []
        for handle in unclaimed:
            # SIGKILLed: reaped at once, so nothing outlives the run; bounded all the same, as a
            # child stuck in the kernel (a GPU driver in D state) dies only when it leaves it.
            handle.settle(_SETTLE_S)
        for spawned in idle:
            _end(spawned)


_SETTLE_S = 2.0  # how long close waits for a cancelled speculative child to be reaped
_RequestKey = tuple[str, str, frozenset[tuple[str, str | None]], "Sharing"]


def request_key(
    task: str, payload: Mapping[str, Any], overrides: Mapping[str, str | None], sharing: Sharing
) -> _RequestKey:
    return (task, json.dumps(payload, sort_keys=True), frozenset(overrides.items()), sharing)


def _kill(spawned: Spawned) -> None:
    with contextlib.suppress(OSError):
        os.killpg(spawned.proc.pid, signal.SIGKILL)


def _end(spawned: Spawned) -> None:
    """Kill an idle child's group, reap it and release its pipes."""
    _kill(spawned)
    spawned.proc.wait()
    _forget(spawned.proc)
    for stream in (spawned.proc.stdin, spawned.proc.stdout, spawned.proc.stderr):
        if stream:
            stream.close()
    os.close(spawned.proto_read)


class ChildHandle:
    """A started child; ``wait()`` returns its outcome.  Output is drained on a thread so a
    chatty loader (thousands of log lines) can never block the child on a full pipe.

    ``on_message`` sees each protocol message (crumb, result, begin, end) as it arrives, on the
    draining thread: long tasks (the kernel suite) show progress while the child still runs."""

    def __init__(
        self,
        task: str,
        payload: Mapping[str, Any],
        environ: Mapping[str, str],
        timeout: float,
        late_environ: Mapping[str, str | None] | None = None,
        spawned: Spawned | None = None,
        on_message: Callable[[dict[str, Any]], None] | None = None,
        keeper: ChildPool | None = None,
    ) -> None:
        self.task = task
        self.timeout = timeout
        self._outcome: ChildOutcome | None = None
        self._started = time.monotonic()
        self._on_message = on_message
        self._partial = bytearray()
        self._cancelled = False
        # A pooled child is offered back to its pool when the task ends normally.
        self._keeper = keeper if spawned is not None else None
        self._late_environ = dict(late_environ or {})
        try:
            spawned = spawned or spawn(environ)
        except StoppingError as exc:
            self._outcome = ChildOutcome(state="cancelled", error=str(exc))
            return
        except OSError as exc:
            self._outcome = ChildOutcome(state="spawn-failed", error=str(exc))
            return
        self._proc, self._proto_read = spawned.proc, spawned.proto_read
        assert self._proc.stdin is not None
        request = {
            "task": task,
            "payload": payload,
            "environ": self._late_environ,
            "keep": self._keeper is not None,
        }
        try:
            self._proc.stdin.write(json.dumps(request).encode() + b"\n")
            if self._keeper is None:
                self._proc.stdin.close()
            else:
                self._proc.stdin.flush()
        except OSError:
            pass  # the child died before reading; wait() reports how
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._collected = _Collected()
        self._thread.start()

    def _collect(self) -> None:
        assert self._proc is not None and self._proc.stdout and self._proc.stderr
        sel = selectors.DefaultSelector()
        streams = {
            self._proto_read: self._collected.proto,
            self._proc.stdout.fileno(): self._collected.stdout,
            self._proc.stderr.fileno(): self._collected.stderr,
        }
        for fd in streams:
            sel.register(fd, selectors.EVENT_READ)
        deadline = self._started + self.timeout
        timed_out = False
        kept = False
        while streams:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            for key, _ in sel.select(timeout=min(remaining, 0.5)):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fd)
                    del streams[key.fd]
                    continue
                streams[key.fd].extend(chunk)
                if key.fd == self._proto_read and self._on_message is not None:
                    self._deliver(chunk)
                if key.fd == self._proto_read and b'"begin"' in chunk:
                    # Each batch item gets the full timeout: restart the clock.
                    deadline = time.monotonic() + self.timeout
            if self._keeper is not None and self._task_done():
                kept = True
                break
        sel.close()
        if kept:
            outcome = self._build(0, False, ())
            assert self._keeper is not None
            # Back in the pool before wait() returns: the next probe's task may take it at once.
            self._keeper.keep(self._late_environ, Spawned(self._proc, self._proto_read))
            self._outcome = outcome
            return
        wchan: tuple[str, ...] = ()
        if timed_out:
            wchan = _wchan(self._proc.pid)
            with contextlib.suppress(OSError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            # Drain what is left without blocking forever.
            for fd in list(streams):
                try:
                    os.set_blocking(fd, False)
                    while chunk := os.read(fd, 65536):
                        streams[fd].extend(chunk)
                except OSError:
                    pass
        returncode = self._proc.wait()
        _forget(self._proc)
        os.close(self._proto_read)
        for stream in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            if stream:
                with contextlib.suppress(OSError):
                    stream.close()
        self._outcome = self._build(returncode, timed_out, wchan)

    def _task_done(self) -> bool:
        """A kept child's task ended: its "done" message and its stderr marker both arrived
        (the marker first, so the stderr before it is the whole of this task's)."""
        stderr = self._collected.stderr
        if not stderr.endswith(DONE_MARKER.encode()):
            return False
        if not self._collected.proto.endswith(b'{"kind": "done"}\n'):
            return False
        del stderr[-len(DONE_MARKER) :]
        return True

    def _deliver(self, chunk: bytes) -> None:
        self._partial.extend(chunk)
        while (end := self._partial.find(b"\n")) >= 0:
            line = bytes(self._partial[:end])
            del self._partial[: end + 1]
            try:
                message = json.loads(line)
            except ValueError:
                continue
            try:
                assert self._on_message is not None
                self._on_message(message)
            except Exception:  # a faulty observer must not cost the child's outcome
                pass

    def cancel(self) -> None:
        """Kill the child (its whole process group); ``wait()`` then says ``cancelled``."""
        if self._outcome is not None:
            return
        self._cancelled = True
        try:
            if self._proc.poll() is None:
                os.killpg(self._proc.pid, signal.SIGKILL)
        except OSError:
            pass

    def _build(self, returncode: int, timed_out: bool, wchan: tuple[str, ...]) -> ChildOutcome:
        results: list[dict[str, Any]] = []
        crumbs: list[str] = []
        error: str | None = None
        for raw in bytes(self._collected.proto).decode("utf-8", "replace").splitlines():
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            kind = message.get("kind")
            if kind == "crumb":
                crumbs.append(str(message.get("text", "")))
            elif kind in ("result", "begin", "end"):
                results.append(message)
            elif kind == "error":
                error = str(message.get("text", ""))
        if self._cancelled or (_REGISTRY.stop_reason is not None and returncode != 0):
            state = "cancelled"
        elif timed_out:
            state = "timeout"
        elif returncode < 0:
            state = "crashed"
        elif error is not None:
            state = "error"
        elif returncode != 0:
            state = "error"
            error = error or f"exit status {returncode}"
        else:
            state = "ok"
        return ChildOutcome(
            state=state,
            results=tuple(results),
            crumbs=tuple(crumbs),
            signal=_signal_name(returncode) if returncode < 0 and not timed_out else None,
            returncode=returncode,
            stdout=bytes(self._collected.stdout).decode("utf-8", "replace"),
            stderr=bytes(self._collected.stderr).decode("utf-8", "replace"),
            duration_s=time.monotonic() - self._started,
            error=error,
            wchan=wchan,
        )

    def settle(self, timeout_s: float) -> None:
        """Wait at most ``timeout_s`` for the collector to reap a cancelled child."""
        thread = getattr(self, "_thread", None)
        if thread is not None:
            thread.join(timeout_s)

    def wait(self) -> ChildOutcome:
        thread = getattr(self, "_thread", None)  # none when the child never started
        if thread is not None:
            thread.join()  # the collector's last step (a kept child handed back) is done too
        assert self._outcome is not None
        return self._outcome


def start_child(
    task: str,
    payload: Mapping[str, Any],
    *,
    environ: Mapping[str, str],
    timeout: float,
    overrides: Mapping[str, str | None] | None = None,
    pool: ChildPool | None = None,
    on_message: Callable[[dict[str, Any]], None] | None = None,
    sharing: Sharing = Sharing.NONE,
) -> ChildHandle:
    overrides = overrides or {}
    if pool is not None and on_message is None:
        speculative = pool.claim(request_key(task, payload, overrides, sharing), timeout)
        if speculative is not None:
            return speculative
    spawned = pool.take(overrides, sharing) if pool is not None else None
    if spawned is not None:
        return ChildHandle(
            task,
            payload,
            pool.environ,
            timeout,
            late_environ=overrides,
            spawned=spawned,
            on_message=on_message,
            keeper=None if sharing is Sharing.NONE else pool,
        )
    return ChildHandle(
        task, payload, child_environ(environ, overrides), timeout, on_message=on_message
    )


def run_child(
    task: str,
    payload: Mapping[str, Any],
    *,
    environ: Mapping[str, str],
    timeout: float,
    overrides: Mapping[str, str | None] | None = None,
    pool: ChildPool | None = None,
    sharing: Sharing = Sharing.NONE,
) -> ChildOutcome:
    handle = start_child(
        task,
        payload,
        environ=environ,
        timeout=timeout,
        overrides=overrides,
        pool=pool,
        sharing=sharing,
    )
    return handle.wait()


def _split_stderr(stderr: str) -> dict[str | None, str]:
    parts: dict[str | None, list[str]] = {None: []}
    current: str | None = None
    # Not splitlines(): it treats the marker's \x1e (record separator) as a line break.
    for line in stderr.split("\n"):
        if line.startswith(ITEM_MARKER):
            current = line[len(ITEM_MARKER) :].strip()
            parts.setdefault(current, [])
            continue
        parts.setdefault(current, []).append(line)
    return {key: "\n".join(lines) for key, lines in parts.items()}


def items_from(outcome: ChildOutcome, keys: Sequence[str]) -> tuple[list[ItemOutcome], int]:
    """Turn one child's messages into per-item outcomes; returns (done, index of the next item)."""
    stderr_by_item = _split_stderr(outcome.stderr)
    done: list[ItemOutcome] = []
    current: str | None = None
    crumbs: list[str] = []
    result: dict[str, Any] | None = None
    for message in outcome.results:
        kind = message.get("kind")
        if kind == "begin":
            current, crumbs, result = str(message["item"]), [], None
            crumbs.extend(message.get("crumbs", ()))
        elif kind == "result" and current is not None:
            data = message.get("data")
            # Several results of one item (stages) merge, later keys winning.
            result = (
                {**result, **data} if isinstance(result, dict) and isinstance(data, dict) else data
            )
        elif kind == "end" and current is not None:
            done.append(
                ItemOutcome(
                    key=current,
                    state="ok" if message.get("ok", True) else "error",
                    result=result,
                    crumbs=tuple(message.get("crumbs", crumbs)),
                    stderr=stderr_by_item.get(current, ""),
                    duration_s=float(message.get("duration_s", 0.0)),
                )
            )
            current = None
    next_index = len(done)
    if current is not None and outcome.state != "ok":
        # The child died inside this item.
        state = outcome.state if outcome.state in ("crashed", "timeout") else "error"
        done.append(
            ItemOutcome(
                key=current,
                state=state,
                result=result,
                crumbs=tuple(crumbs) + outcome.crumbs[-1:],
                stderr=stderr_by_item.get(current, ""),
                signal=outcome.signal,
                duration_s=outcome.duration_s,
                wchan=outcome.wchan,
                error=outcome.error,
            )
        )
        next_index += 1
    elif next_index < len(keys) and outcome.state != "ok":
        # The child died between items (or before the first one): blame nobody, stop.
        return done, -1
    return done, next_index


def run_batch(
    task: str,
    items: Sequence[Mapping[str, Any]],
    *,
    key: str,
    environ: Mapping[str, str],
    timeout: float,
    overrides: Mapping[str, str | None] | None = None,
    payload: Mapping[str, Any] | None = None,
    pool: ChildPool | None = None,
    needs_first: bool = False,
    sharing: Sharing = Sharing.NONE,
) -> tuple[list[ItemOutcome], list[ChildOutcome]]:
    """Run ``task`` over ``items`` in as few children as possible.

    When an item crashes or hangs its child, the batch resumes in a fresh child after it;
    ``needs_first``: the other items only matter when the first one survives, so a first item
    that crashed or hung leaves them ``not-run`` (each could cost another timeout).  Returns
    the per-item outcomes (in item order) and every child's raw outcome.
    """
    keys = [str(item[key]) for item in items]
    outcomes: list[ItemOutcome] = []
    children: list[ChildOutcome] = []
    start = 0
    while start < len(items):
        body = dict(payload or {})
        body["items"] = list(items[start:])
        child = run_child(
            task,
            body,
            environ=environ,
            timeout=timeout,
            overrides=overrides,
            pool=pool,
            sharing=sharing,
        )
        children.append(child)
        done, advance = items_from(child, keys[start:])
        outcomes.extend(done)
        first_died = needs_first and outcomes and outcomes[0].state in ("crashed", "timeout")
        if advance <= 0 or first_died:
            for missing in keys[start + len(done) :]:
                outcomes.append(ItemOutcome(missing, "not-run", None, (), "", duration_s=0.0))
            break
        start += advance
    return outcomes, children
