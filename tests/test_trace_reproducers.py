"""Every reproducer, traced against the real loader and lavapipe, is diagnosed by name; correct
programs come out with no finding at all."""

from __future__ import annotations

import json

import pytest
from reproducers.harness import (
    build,
    codes,
    describe,
    finding,
    loader_copy,
    missing_prerequisite,
    probe,
    python_command,
    trace,
)

pytestmark = pytest.mark.skipif(
    missing_prerequisite() is not None, reason=missing_prerequisite() or ""
)


@pytest.fixture(scope="module")
def bins():
    return build()


def exit_state(report) -> dict:
    return probe(report).facts["program"]["exit"]


# ---- correct programs: no finding, of any severity --------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(lambda b: [str(b / "correct")], id="c-correct"),
        pytest.param(lambda b: [str(b / "dispatch_loop"), "50"], id="c-dispatch-loop"),
        pytest.param(lambda b: [str(b / "fork_after_init"), "exec"], id="c-fork-then-exec"),
        pytest.param(lambda b: python_command("py_correct.py"), id="py-correct"),
    ],
)
def test_correct_program_is_clean(bins, command):
    report = trace(command(bins))
    assert codes(report) == [], describe(report)
    assert probe(report).status.value == "ok"
    assert exit_state(report) == {"state": "exited", "code": 0}
    facts = probe(report).facts
    assert facts["mode"] == "audit+layer"
    assert facts["unanalysable_events"] == []
    # the layer and the audit module both saw the program
    assert facts["instances"] and facts["event_counts"].get("open", 0) > 0


def test_correct_program_timeline_names_loader_and_driver(bins):
    facts = probe(trace([str(bins / "correct")])).facts
    roles = {(lib["role"], lib["path"].rsplit("/", 1)[-1]) for lib in facts["vulkan_libraries"]}
    assert ("loader", "libvulkan.so.1") in roles
    assert ("driver", "libvulkan_lvp.so") in roles
    assert ("layer", "libVkLayer_vkdoctor_trace.so") in roles
    (device,) = facts["devices"]
    assert device["driver"].endswith("libvulkan_lvp.so")
    assert device["destroyed_at_event"] > device["created_at_event"]


# ---- premature unload --------------------------------------------------------------------------


def test_loader_wrapper_dlclose_is_premature_unload(bins):
    report = trace([str(bins / "wrapper_dlclose")])
    assert exit_state(report)["signal"] == "SIGSEGV", describe(report)
    unload = finding(report, "premature-unload")
    assert unload.severity.value == "fail"
    assert "libvulkan.so.1" in unload.summary and "libloaderwrap.so" in unload.summary
    assert unload.evidence["unloaded_by"].endswith("libloaderwrap.so")
    call = finding(report, "call-after-unload")
    event = unload.evidence["unloaded_at_event"]
    assert (
        f"the program called into vkEnumeratePhysicalDevices in libvulkan.so.1 after dlclose "
        f"from libloaderwrap.so at event {event}, called from main() at wrapper_dlclose.c:19"
    ) in call.summary
    assert "program-crashed" not in codes(report)  # the crash is explained, not repeated
    from vkdoctor.report import schema

    data = json.loads(json.dumps(report.to_dict()))
    assert schema.validate(data) == [] and schema.check_consistency(data) == []


def test_python_ctypes_dlclose_is_premature_unload(bins):
    report = trace(python_command("py_premature_unload.py"))
    assert exit_state(report)["signal"] == "SIGSEGV", describe(report)
    assert {"premature-unload", "call-after-unload"} <= set(codes(report)), describe(report)
    assert "_ctypes" in finding(report, "premature-unload").summary


# ---- loader bypass and proc-address misuse -----------------------------------------------------


def test_dlsym_from_loader_and_driver(bins):
    report = trace([str(bins / "dlsym_bypass"), "/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so"])
    assert exit_state(report) == {"state": "exited", "code": 0}, describe(report)
    bypass = finding(report, "loader-bypass")
    assert bypass.severity.value == "fail"
    assert "libvulkan_lvp.so" in bypass.summary
    assert "vk_icdGetInstanceProcAddr" in bypass.evidence["commands"]
    dlsym = finding(report, "dlsym-entry-point")
    assert "vkCreateInstance" in dlsym.evidence["commands"]


def test_gipa_null_instance(bins):
    report = trace(python_command("py_gipa_null.py"))
    found = finding(report, "gipa-null-instance")
    assert set(found.evidence["commands"]) == {"vkCreateDevice", "vkEnumeratePhysicalDevices"}
    assert set(found.evidence["returned_null"]) == set(found.evidence["commands"])
    assert codes(report) == ["gipa-null-instance"], describe(report)


def test_device_commands_through_gipa(bins):
    report = trace(python_command("py_gipa_device.py"))
    found = finding(report, "device-command-via-gipa")
    assert set(found.evidence["commands"]) == {"vkDeviceWaitIdle", "vkDestroyDevice"}
    assert codes(report) == ["device-command-via-gipa"], describe(report)


def test_one_device_table_for_two_devices(bins):
    report = trace(python_command("py_two_devices.py"))
    found = finding(report, "device-pointers-shared")
    assert found.severity.value == "warn"  # one driver: harmless today
    assert codes(report) == ["device-pointers-shared"], describe(report)


def test_null_proc_addr_called(bins):
    report = trace([str(bins / "null_call")])
    assert exit_state(report)["signal"] == "SIGSEGV"
    found = finding(report, "null-proc-addr-called")
    assert "vkCmdPushDescriptorSetKHR" in found.summary
    assert "program-crashed" not in codes(report)


# ---- destroy order -----------------------------------------------------------------------------


def test_destroy_instance_before_device(bins):
    report = trace([str(bins / "destroy_order")])
    found = finding(report, "instance-destroyed-before-devices")
    assert found.severity.value == "fail"
    # one bug, one finding: the driver unload and the orphaned device are its consequences
    assert codes(report) == ["instance-destroyed-before-devices"], describe(report)


def test_use_after_destroy(bins):
    # The loader reads the freed device: it may crash or not; the diagnosis is the same.
    report = trace([str(bins / "destroy_order"), "uad"])
    found = finding(report, "use-after-destroy")
    assert "vkGetDeviceProcAddr" in found.summary
    assert "program-crashed" not in codes(report)


def test_leak_at_exit(bins):
    report = trace([str(bins / "correct"), "leak"])
    found = finding(report, "vulkan-objects-leaked")
    kinds = sorted(o["kind"] for o in found.evidence["objects"])
    assert kinds == ["device", "instance"]
    # true, and harmless at a normal exit: information, not a warning
    assert found.severity.value == "info"
    assert "harmless at exit" in found.summary
    assert codes(report) == ["vulkan-objects-leaked"], describe(report)
    assert probe(report).status.value == "info"


def test_instances_and_devices_accumulating_warn(bins):
    report = trace([str(bins / "correct"), "accumulate", "4"])
    assert exit_state(report) == {"state": "exited", "code": 0}, describe(report)
    found = [f for f in probe(report).findings if f.code == "vulkan-objects-accumulated"]
    assert sorted(f.evidence["kind"] for f in found) == ["device", "instance"], describe(report)
    for f in found:
        assert f.severity.value == "warn"
        assert f.evidence["created"] == 5 and f.evidence["alive_at_exit"] == 5


# ---- two loaders, fork -------------------------------------------------------------------------


def test_two_loader_copies(bins, tmp_path):
    copy = loader_copy(tmp_path)
    report = trace([str(bins / "two_loaders"), str(copy)])
    assert exit_state(report) == {"state": "exited", "code": 0}, describe(report)
    found = finding(report, "multiple-vulkan-loaders")
    assert str(copy) in found.evidence["loaders"]
    assert codes(report) == ["multiple-vulkan-loaders"], describe(report)


def test_fork_after_init_with_vulkan_in_child(bins):
    report = trace([str(bins / "fork_after_init")])
    found = finding(report, "fork-after-vulkan-init")
    assert found.severity.value == "fail"
    assert found.evidence["child_used_vulkan"] is True
    assert found.evidence["inherited_objects"] == 2


def test_forked_child_using_inherited_pointers_is_seen(bins):
    # the child never asks vkGet*ProcAddr: it submits through a pointer from before the fork
    report = trace([str(bins / "fork_after_init"), "inherited"])
    assert exit_state(report) == {"state": "exited", "code": 0}, describe(report)
    found = finding(report, "fork-after-vulkan-init")
    assert found.severity.value == "fail"
    assert found.evidence["child_used_vulkan"] is True
    assert "vkQueueSubmit called in the forked child" in found.summary
    assert found.evidence["child_end"].startswith("left no record of its end")  # _exit()
