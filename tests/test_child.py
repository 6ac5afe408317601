"""The child-process runner against real crashing and hanging children."""

from __future__ import annotations

from pathlib import Path

from vkdoctor.engine import child

TESTS = str(Path(__file__).parent)
ENV = {"PATH": "/usr/bin:/bin", "PYTHONPATH": TESTS}


def test_result_and_crumbs() -> None:
    outcome = child.run_child("childtasks:ok", {"value": 3}, environ=ENV, timeout=10)
    assert outcome.state == "ok", outcome.error
    assert outcome.result == {"kind": "result", "data": {"doubled": 6}}
    assert outcome.crumbs == ("computing",)
    assert "noise on stderr" in outcome.stderr


def test_segfault_becomes_crashed_with_signal_and_last_crumb() -> None:
    outcome = child.run_child("childtasks:segfault", {}, environ=ENV, timeout=10)
    assert outcome.state == "crashed"
    assert outcome.signal == "SIGSEGV"
    assert outcome.last_crumb == "about to dereference NULL"
    assert "SIGSEGV" in outcome.describe()


def test_hang_becomes_timeout() -> None:
    outcome = child.run_child("childtasks:hang", {}, environ=ENV, timeout=0.5)
    assert outcome.state == "timeout"
    assert outcome.last_crumb == "sleeping forever"
    assert 0.5 <= outcome.duration_s < 5


def test_python_exception_in_child_is_an_error_with_traceback() -> None:
    outcome = child.run_child("childtasks:raises", {}, environ=ENV, timeout=10)
    assert outcome.state == "error"
    assert "ValueError: broken on purpose" in (outcome.error or "")


def test_batch_resumes_after_crash_and_hang() -> None:
    items = [{"key": k} for k in ("a", "crash", "b", "hang", "c")]
    outcomes, children = child.run_batch(
        "childtasks:batch", items, key="key", environ=ENV, timeout=1.0
    )
    assert [(o.key, o.state) for o in outcomes] == [
        ("a", "ok"),
        ("crash", "crashed"),
        ("b", "ok"),
        ("hang", "timeout"),
        ("c", "ok"),
    ]
    assert outcomes[1].signal == "SIGSEGV"
    assert outcomes[0].result == {"item": "a"}
    assert "stderr of b" in outcomes[2].stderr and "stderr of a" not in outcomes[2].stderr
    assert len(children) == 3


def _pool(size: int = 1) -> child.ChildPool:
    return child.ChildPool(child.child_environ(ENV, {}), size=size, budget=size)


def _run(
    pool: child.ChildPool,
    task: str,
    sharing: child.Sharing,
    payload: dict[str, str] | None = None,
    variable: str | None = "a",
    timeout: float = 10,
) -> child.ChildOutcome:
    return child.run_child(
        f"childtasks:{task}",
        payload or {},
        environ=ENV,
        timeout=timeout,
        overrides={"VKD_TEST_VAR": variable},
        pool=pool,
        sharing=sharing,
    )


def _whoami(
    pool: child.ChildPool, sharing: child.Sharing, tag: str, variable: str | None = "a"
) -> child.ChildOutcome:
    return _run(pool, "whoami", sharing, {"tag": tag}, variable)


def _pid(outcome: child.ChildOutcome) -> int:
    assert outcome.state == "ok", outcome.error
    assert outcome.result is not None
    return int(outcome.result["data"]["pid"])


def test_a_kept_child_runs_the_next_shared_task_with_its_own_stderr() -> None:
    pool = _pool()
    try:
        first = _whoami(pool, child.Sharing.OFFER, "one")
        second = _whoami(pool, child.Sharing.SHARE, "two")
        assert _pid(first) == _pid(second)
        assert second.result is not None and second.result["data"]["seen"] == "a"
        # Each task's stderr is its own: the split is at the child's done marker.
        assert "stderr of one" in first.stderr and "stderr of two" not in first.stderr
        assert "stderr of two" in second.stderr and "stderr of one" not in second.stderr
        assert "\x1e" not in second.stderr
        assert _pid(first) in child.live_pids()  # kept, waiting for a third task
    finally:
        pool.close()
    assert _pid(first) not in child.live_pids()


def test_a_kept_child_is_not_given_to_tasks_that_must_run_alone_or_differ() -> None:
    pool = _pool()
    try:
        kept = _pid(_whoami(pool, child.Sharing.OFFER, "one"))
        alone = _whoami(pool, child.Sharing.NONE, "alone")
        other = _whoami(pool, child.Sharing.SHARE, "other", variable="b")
        assert _pid(alone) != kept
        assert _pid(other) != kept  # its variables differ from what the kept child ran with
        assert other.result is not None and other.result["data"]["seen"] == "b"
        assert _pid(_whoami(pool, child.Sharing.SHARE, "again")) == kept
    finally:
        pool.close()


def test_a_child_that_crashed_or_failed_is_never_kept() -> None:
    pool = _pool()
    try:
        crashed = _run(pool, "segfault", child.Sharing.OFFER)
        assert crashed.state == "crashed"
        failed = _run(pool, "raises", child.Sharing.SHARE)
        assert failed.state == "error"
        assert child.live_pids() == []  # the pool's one warm child was used; nothing was kept
        after = _whoami(pool, child.Sharing.SHARE, "after")
        assert after.state == "ok"  # a child of its own, not a dead one
    finally:
        pool.close()
    assert child.live_pids() == []


def test_a_kept_child_that_hangs_in_its_next_task_times_out_and_is_killed() -> None:
    pool = _pool()
    try:
        kept = _pid(_whoami(pool, child.Sharing.OFFER, "one"))
        hung = _run(pool, "hang", child.Sharing.SHARE, timeout=0.5)
        assert hung.state == "timeout" and hung.last_crumb == "sleeping forever"
        assert kept not in child.live_pids()
    finally:
        pool.close()
