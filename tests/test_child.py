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
