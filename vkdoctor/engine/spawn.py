"""Starting child processes, and the process-wide record of the live ones.

Split from engine/child.py so that ``vkdoctor check`` can start its first children before it
imports anything else (``prestart``): this module needs only the standard library's process
parts, not dataclasses, pathlib or json (~40 ms of imports on a 2-core machine, which every child
start waited for).  engine/child.py re-exports these names; its module docstring says how children
are tied to vkdoctor's life.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import vkdoctor
from vkdoctor.engine.protocol import LIFELINE_FD_VAR, PARENT_PID_VAR, PROTO_FD_VAR


def _package_parent() -> str:
    return os.path.dirname(os.path.dirname(os.path.realpath(vkdoctor.__file__)))


def child_environ(base: Mapping[str, str], overrides: Mapping[str, str | None]) -> dict[str, str]:
    environ = dict(base)
    for key, value in overrides.items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    # vkdoctor's own children may cache bytecode even where the user's shell forbids it for
    # their programs: recompiling vkdoctor in every child costs tens of milliseconds each.
    environ.pop("PYTHONDONTWRITEBYTECODE", None)
    # The child must import this very vkdoctor, also from a source checkout, and find what this
    # process finds (numpy, the vulkan binding): it starts with -S, so no site-packages of its
    # own and no .pth processing, which cost each child 10-50 ms (an editable install's finder
    # imports pathlib and importlib.util); the directories come from this process's sys.path.
    cwd = os.getcwd()
    found = [p for p in sys.path if p and p != cwd and os.path.isdir(p)]
    existing = environ.get("PYTHONPATH")
    parts = [_package_parent(), *found, *([existing] if existing else [])]
    environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    return environ


class Spawned(NamedTuple):
    """A child process started and waiting for its task on stdin."""

    proc: subprocess.Popen[bytes]
    proto_read: int


class _Registry:
    """Every live child of this process, the lifeline pipe, and the stop flag.

    Process-wide on purpose: signal handlers and atexit must reach children started by any run.
    An RLock, because a signal handler runs on the main thread, possibly while it holds the lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.live: dict[int, subprocess.Popen[bytes]] = {}
        self.stop_reason: str | None = None
        self._lifeline: tuple[int, int] | None = None
        self._spawner: queue.Queue[tuple[Callable[[], Any], queue.Queue[Any]]] | None = None
        self.prestarted: list[tuple[dict[str, str], Spawned]] = []  # see prestart()

    def lifeline_read_fd(self) -> int:
        with self.lock:
            if self._lifeline is None:
                # Non-inheritable by default: only children given it in pass_fds see the read
                # end, and no program we exec ever holds the write end.
                self._lifeline = os.pipe()
                atexit.register(kill_all)
            return self._lifeline[0]

    def in_spawner(self, work: Callable[[], Any]) -> Any:
        """Run ``work`` (a fork) on the spawner thread, which lives as long as the process."""
        if threading.current_thread() is threading.main_thread():
            return work()  # the main thread lives as long as the process too
        with self.lock:
            if self._spawner is None:
                self._spawner = queue.Queue()
                threading.Thread(
                    target=_spawner_loop,
                    args=(self._spawner,),
                    name="vkdoctor-spawner",
                    daemon=True,
                ).start()
            requests = self._spawner
        reply: queue.Queue[Any] = queue.Queue(maxsize=1)
        requests.put((work, reply))
        ok, value = reply.get()
        if not ok:
            raise value
        return value


def _spawner_loop(requests: queue.Queue[tuple[Callable[[], Any], queue.Queue[Any]]]) -> None:
    while True:
        work, reply = requests.get()
        try:
            reply.put((True, work()))
        except BaseException as exc:  # handed to the caller's thread, which raises it
            reply.put((False, exc))


_REGISTRY = _Registry()


def _forget(proc: subprocess.Popen[bytes]) -> None:
    with _REGISTRY.lock:
        _REGISTRY.live.pop(proc.pid, None)


def live_pids() -> list[int]:
    """PIDs (and process-group ids) of the children that have not been reaped yet."""
    with _REGISTRY.lock:
        return list(_REGISTRY.live)


def kill_all() -> None:
    """SIGKILL every live child's process group (the child and whatever its driver forked).

    Safe in a signal handler and at exit; the collecting threads then reap them."""
    with _REGISTRY.lock:
        procs = list(_REGISTRY.live.values())
    for proc in procs:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)


def request_stop(reason: str) -> None:
    """Refuse new children from now on and kill the live ones (SIGINT, SIGTERM, the deadline)."""
    with _REGISTRY.lock:
        if _REGISTRY.stop_reason is None:
            _REGISTRY.stop_reason = reason
    kill_all()


def stop_reason() -> str | None:
    return _REGISTRY.stop_reason


def clear_stop() -> None:
    """Allow children again (a new run in a long-lived process, e.g. the TUI, after a deadline)."""
    with _REGISTRY.lock:
        _REGISTRY.stop_reason = None


class StoppingError(OSError):
    """vkdoctor is stopping: no new child is started."""


def spawn(environ: Mapping[str, str]) -> Spawned:
    if _REGISTRY.stop_reason is not None:
        raise StoppingError(f"vkdoctor is stopping ({_REGISTRY.stop_reason})")
    lifeline = _REGISTRY.lifeline_read_fd()
    read_fd, write_fd = os.pipe()
    env = dict(environ)
    env[PROTO_FD_VAR] = str(write_fd)
    env[PARENT_PID_VAR] = str(os.getpid())
    env[LIFELINE_FD_VAR] = str(lifeline)

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-S", "-m", "vkdoctor.engine.child_main"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            pass_fds=(write_fd, lifeline),
            start_new_session=True,  # its own group: killpg reaches helpers the driver forked
            close_fds=True,
        )
        with _REGISTRY.lock:
            _REGISTRY.live[proc.pid] = proc
            stopping = _REGISTRY.stop_reason is not None
        if stopping:  # a stop arrived while it was forking
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
        return proc

    try:
        proc = _REGISTRY.in_spawner(start)
    except OSError:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return Spawned(proc, read_fd)


# What a whole `vkdoctor check` starts ahead of need (engine/plan.py's warm_pool uses these):
WARM_CHILDREN = 2  # warm children (plan.Options.warm_children's default)
SPECULATE_FROM_CORES = 4  # from this many cores warm_pool also starts the speculated requests
SPECULATED_REQUESTS = 2  # plan._speculated: the smoke dispatch and the device probe


def children_for_check(cores: int) -> int:
    """The children ``warm_pool`` starts for a check of every probe on ``cores`` cores."""
    return WARM_CHILDREN + (SPECULATED_REQUESTS if cores >= SPECULATE_FROM_CORES else 0)


def prestart(count: int) -> None:
    """Start ``count`` children for this process's environment now, for the first ``ChildPool``
    with that environment to adopt (``adopt``).  The CLI calls it first thing for ``check``, so
    the children's Python start-up overlaps the CLI's own imports; any left unadopted are killed
    with the rest at exit."""
    environ = child_environ(os.environ, {})
    for _ in range(count):
        try:
            spawned = spawn(environ)
        except OSError:
            return
        with _REGISTRY.lock:
            _REGISTRY.prestarted.append((environ, spawned))


def adopt(environ: Mapping[str, str], limit: int) -> list[Spawned]:
    """Up to ``limit`` prestarted children that were started with exactly ``environ``."""
    taken: list[Spawned] = []
    with _REGISTRY.lock:
        for entry in list(_REGISTRY.prestarted):
            started_with, spawned = entry
            if len(taken) < limit and started_with == environ and spawned.proc.poll() is None:
                _REGISTRY.prestarted.remove(entry)
                taken.append(spawned)
    return taken


def discard_prestarted() -> None:
    """Kill and reap the prestarted children nobody adopted (``check --bogus``, ``check
    loader-discovery``, which needs fewer)."""
    with _REGISTRY.lock:
        left, _REGISTRY.prestarted = _REGISTRY.prestarted, []
    for _, spawned in left:
        with contextlib.suppress(OSError):
            os.killpg(spawned.proc.pid, signal.SIGKILL)
    for _, spawned in left:
        spawned.proc.wait()
        _forget(spawned.proc)
        os.close(spawned.proto_read)
        for stream in (spawned.proc.stdin, spawned.proc.stdout, spawned.proc.stderr):
            if stream is not None:
                stream.close()
