"""Trace rules (vkdoctor/trace/rules/) on event lists, for branches the mutation run found
unpinned (benchmarks/RESULTS.md, "Mutation testing").  The same diagnoses are produced for real
by tests/reproducers (test_trace_reproducers.py, test_trace_crash.py); these pin the branch the
real reproducers do not reach: a jump to 0 with no pointer attributed to the call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reproducers.harness import build, missing_prerequisite, trace
from test_trace_analysis import APP, CRASHED, EXITED, LOADER, Trace


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


LAYER = "/opt/layers/libVkLayer_extra.so"


def _second_instance_with_a_layer(destroy_it_first: bool) -> Trace:
    """Instance A without the layer; instance B loads it; the loader unmaps the layer, after
    B is destroyed or while B lives; A lives on."""
    t = Trace().startup().instance(0x1000)
    t.open(LAYER, 0x7F4000000000, 0x7F4000100000, by=LOADER)
    t.add(
        "bind",
        sym="vkNegotiateLoaderLayerInterfaceVersion",
        **{"from": LOADER, "to": LAYER},
        addr="0x7f4000001000",
        dlsym=True,
    )
    t.add("create_instance", src="layer", inst="0x3000", res=0)
    if destroy_it_first:
        t.add("destroy_instance", src="layer", inst="0x3000")
    return t.close(LAYER, 0x7F4000000000, by=LOADER)


def test_a_layer_unloaded_after_its_own_instance_is_not_premature() -> None:
    """A never used the layer, so nothing dangles when it goes (a second instance enabling an
    explicit layer for a while); the same unload while B lives is premature."""
    t = _second_instance_with_a_layer(destroy_it_first=True)
    t.add("destroy_instance", src="layer", inst="0x1000")
    t.add("exit")
    assert t.codes(outcome=EXITED) == []
    early = _second_instance_with_a_layer(destroy_it_first=False)
    assert "premature-unload" in early.codes(outcome=CRASHED)


def test_objects_alive_at_a_normal_exit_seen_by_the_layer_alone_are_a_leak() -> None:
    """No audit events at all (a program that drops LD_AUDIT but loads the layer): the exit is
    judged from the program's own outcome, so the main process that exited 0 leaked."""
    t = Trace()
    t.add("layer_load", src="layer")
    t.add("create_instance", src="layer", inst="0x1000", res=0)

    assert t.codes(outcome=EXITED) == ["vulkan-objects-leaked"]
    assert t.codes(outcome=None) == []  # without the outcome nothing says it exited normally
    assert "vulkan-objects-leaked" not in t.codes(outcome=CRASHED)


@pytest.mark.skipif(missing_prerequisite() is not None, reason=missing_prerequisite() or "")
def test_accumulated_instances_name_the_first_and_last_creation_of_the_raw_trace(
    tmp_path: Path,
) -> None:
    """The real reproducer creating five instances and devices and never destroying them; the
    event numbers in the finding are those of the raw trace's first and last creation."""
    raw = tmp_path / "trace.jsonl"
    report = trace([str(build() / "correct"), "accumulate", "4"], "--out", str(raw))
    events = [json.loads(line) for line in raw.read_text().splitlines()]
    for kind in ("instance", "device"):
        created = [n for n, e in enumerate(events, 1) if e["ev"] == f"create_{kind}"]
        assert len(created) == 5
        (found,) = [
            f
            for f in report.probes[0].findings
            if f.code == "vulkan-objects-accumulated" and f.evidence["kind"] == kind
        ]
        assert found.summary.endswith(
            f"created 5 Vk{kind.capitalize()} objects and 5 were never destroyed "
            f"(first at event {created[0]}, last at event {created[-1]})"
        ), found.summary


@pytest.mark.parametrize("at_exit", [False, True], ids=["unloaded-while-running", "at-exit"])
def test_a_death_by_signal_after_a_polled_unload_is_its_likely_cause(at_exit: bool) -> None:
    """Polling mode (no audit module, no layer): libvulkan vanished from /proc/PID/maps before
    the program died of SIGSEGV.  An unload while running is the likely cause; one during the
    exit is not, and the crash is reported as such, with the debugger to run."""
    t = Trace()
    t.add("hello", src="poll", exe=APP)
    t.open(LOADER, 0x7F0000000000, 0x7F0000100000, src="poll")
    t.close(LOADER, 0x7F0000000000, src="poll", at_exit=at_exit)

    findings = {f.code: f for f in t.analyze(outcome=CRASHED).findings}

    if at_exit:
        assert "call-after-unload" not in findings
        assert findings["program-crashed"].summary == "app died from SIGSEGV"
    else:
        assert "program-crashed" not in findings
        assert findings["call-after-unload"].summary == (
            "app died from SIGSEGV after libvulkan.so.1 had been unloaded at event 3; the crash "
            "address is not visible in this mode, but a call into the unloaded library is the "
            "likely cause"
        )


def test_a_death_by_signal_with_no_event_of_the_process_is_a_plain_crash() -> None:
    (found,) = Trace().analyze(outcome=CRASHED).findings
    assert (found.code, found.summary) == ("program-crashed", "app died from SIGSEGV")
    assert found.remedy is not None and found.remedy.commands == ("gdb --args app",)


def test_a_jump_to_null_with_no_null_lookup_at_all_is_a_plain_crash() -> None:
    t = Trace().startup().instance()
    t.add("signal", sig=11, code=1, addr="0x0", ip="0x0", bt=["0x555500001234"])

    (found,) = t.analyze(outcome=CRASHED).findings

    assert (found.code, found.summary) == (
        "program-crashed",
        "process 4242 died from SIGSEGV at NULL, called from app+0x1234() (faulting address "
        "NULL, event 8)",
    )


def test_a_program_killed_at_the_timeout_is_named_by_its_program() -> None:
    report = trace(["sleep", "30"], "--timeout", "0.3")
    (found,) = [f for f in report.probes[0].findings if f.code == "program-timeout"]
    assert found.summary.startswith("sleep was still running after the timeout and was killed ")


def test_a_jump_into_the_data_of_an_unloaded_loader_is_a_call_not_a_data_access() -> None:
    """The program jumped to an address of libvulkan's old read-only mapping (a stale pointer
    into its tables, called): still a call into the unloaded library, at that instruction."""
    t = Trace().startup().instance()
    t.close(LOADER, 0x7F0000000000, by=APP)
    t.add(
        "signal", sig=11, code=2, addr="0x7f0000000800", ip="0x7f0000000800", bt=["0x555500001234"]
    )

    found = {f.code: f for f in t.analyze(outcome=CRASHED).findings}

    assert found["call-after-unload"].summary == (
        "the program called into libvulkan.so.1 after dlclose from app at event 8, called from "
        "app+0x1234() (SIGSEGV at 0x7f0000000800, libvulkan.so.1+0x800)"
    )
