"""Trace rules (vkdoctor/trace/rules/) on event lists, for branches the mutation run found
unpinned (benchmarks/RESULTS.md, "Mutation testing").  The same diagnoses are produced for real
by tests/reproducers (test_trace_reproducers.py, test_trace_crash.py); these pin the branch the
real reproducers do not reach: a jump to 0 with no pointer attributed to the call."""

from __future__ import annotations

from test_trace_analysis import CRASHED, Trace


def test_a_jump_to_null_with_no_attributed_pointer_blames_the_last_null_lookup() -> None:
    t = Trace().startup().instance()
    t.add("gipa", h="0x1000", name="vkCmdDrawMeshTasksEXT", ret="0x0", caller="0x555500001000")
    t.add("signal", sig=11, code=1, addr="0x0", ip="0x0", bt=["0x555500001234"])

    (found,) = t.analyze(outcome=CRASHED).findings  # strict: a rule that raises fails

    assert found.code == "null-proc-addr-called"
    assert found.summary == (
        "the program called vkCmdDrawMeshTasksEXT through a NULL pointer (SIGSEGV at 0x0), "
        'called from app+0x1234(); vkGetInstanceProcAddr(0x1000, "vkCmdDrawMeshTasksEXT") had '
        "returned NULL at event 8"
    )
