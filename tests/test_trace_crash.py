"""Crash attribution: the four crashes of issue 12, compiled at test time and traced against
the real loader and lavapipe.  Each must name the command that crashed, how the program got the
pointer, and the program function that made the call; never vkdoctor's own layer.

Expected names come from the reproducers' sources (the function that makes the fatal call and
its line, found by searching the source for its marker comment), and from the real libvulkan's
dynamic symbol table for the loader entry point a crash address lies in.
"""

from __future__ import annotations

import subprocess

import pytest
from reproducers.harness import (
    HERE,
    build,
    codes,
    describe,
    finding,
    missing_prerequisite,
    probe,
    trace,
)

pytestmark = pytest.mark.skipif(
    missing_prerequisite() is not None, reason=missing_prerequisite() or ""
)


@pytest.fixture(scope="module")
def bins():
    return build()


def crash_line(source: str) -> int:
    """The line of the reproducer marked as the crash."""
    for number, line in enumerate((HERE / source).read_text().splitlines(), start=1):
        if "the crash" in line and "/*" in line and "*/" in line:
            return number
    raise AssertionError(f"{source} has no crash marker")


def exit_signal(report) -> str | None:
    return probe(report).facts["program"]["exit"].get("signal")


def untraced_signal(command: list[str]) -> int:
    env = {"VK_DRIVER_FILES": "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json", "PATH": "/usr/bin"}
    return subprocess.run(command, env=env, capture_output=True, timeout=60).returncode


def test_dlsym_trampoline_on_device_without_the_command(bins):
    # The program crashes the same way without vkdoctor: SIGSEGV.
    assert untraced_signal([str(bins / "dlsym_bda")]) == -11
    report = trace([str(bins / "dlsym_bda")])
    assert exit_signal(report) == "SIGSEGV", describe(report)
    found = finding(report, "unsupported-command-called")
    assert found.severity.value == "fail"
    line = crash_line("dlsym_bda.c")
    assert found.summary.startswith(
        f"the program called vkGetBufferDeviceAddress from upload_buffer() at "
        f"dlsym_bda.c:{line}, taken with dlsym from libvulkan.so.1"
    ), found.summary
    assert "which does not support it (vkGetDeviceProcAddr returns NULL" in found.summary
    ev = found.evidence
    assert ev["command"] == "vkGetBufferDeviceAddress"
    assert ev["pointer"]["how"] == "dlsym" and ev["pointer"]["source"].endswith("libvulkan.so.1")
    assert ev["device_supports_command"] is False
    assert ev["call_site"] == f"upload_buffer() at dlsym_bda.c:{line}"
    assert ev["backtrace"][0].startswith("#0 0x0")
    # the fix: vkGetDeviceProcAddr, the API version that made it core, the extension
    assert 'vkGetDeviceProcAddr(device, "vkGetBufferDeviceAddress")' in found.remedy.text
    assert "VK_API_VERSION_1_2" in found.remedy.text
    assert "VK_KHR_buffer_device_address" in found.remedy.text
    # not the misattribution of issue 12: the NULL the program got and never called
    assert "null-proc-addr-called" not in codes(report), describe(report)
    assert "program-crashed" not in codes(report)
    # the dlsym is the cause (vkGetDeviceProcAddr would have said NULL), the crash its symptom
    cause = finding(report, "dlsym-entry-point")
    assert report.root_causes[0] == cause.id and found.id in cause.causes
    assert cause.severity.value == "fail"  # promoted from info: it explains a crash
    assert report.verdict.startswith(
        "The traced program has problems: the program called vkGetBufferDeviceAddress from "
        f"upload_buffer() at dlsym_bda.c:{line}, taken with dlsym"
    ), report.verdict
    assert report.verdict.endswith(
        "; it took the pointer with dlsym from libvulkan instead of vkGetDeviceProcAddr, "
        "which returns NULL for it"
    )


def test_null_pointer_actually_called_is_blamed_not_the_last_lookup(bins):
    report = trace([str(bins / "gipa_null_early")])
    assert exit_signal(report) == "SIGSEGV", describe(report)
    found = finding(report, "null-proc-addr-called")
    line = crash_line("gipa_null_early.c")
    assert found.summary.startswith(
        f"the program called vkGetDeviceQueue through a NULL pointer (SIGSEGV at 0x0), "
        f"called from get_queue() at gipa_null_early.c:{line}; "
        f'vkGetInstanceProcAddr(NULL, "vkGetDeviceQueue") had returned NULL'
    ), found.summary
    assert found.evidence["command"] == "vkGetDeviceQueue"
    assert "vkQueueWaitIdle" not in found.summary
    # the cause stays reported as well
    assert "gipa-null-instance" in codes(report)


def test_destroy_instance_before_device_is_never_blamed_on_the_trace_layer(bins):
    command = [str(bins / "destroy_order"), "crash"]
    assert untraced_signal(command) == -11
    report = trace(command)
    assert exit_signal(report) == "SIGSEGV", describe(report)
    text = describe(report)
    assert "libVkLayer_vkdoctor_trace" not in text
    assert "instance-destroyed-before-devices" in codes(report)
    call = finding(report, "call-after-unload")
    line = crash_line("destroy_order.c")
    assert call.evidence["command"] == "vkDestroyDevice"
    assert call.evidence["library"].endswith("libvulkan_lvp.so")  # where it crashes untraced too
    assert call.evidence["call_site"] == f"teardown_device() at destroy_order.c:{line}"
    assert "called into vkDestroyDevice in libvulkan_lvp.so" in call.summary
    for frame in call.evidence["backtrace"]:
        assert "unloaded" not in frame or "libVkLayer_vkdoctor_trace" not in frame


def loader_symbol_at(offset: int) -> str:
    """The libvulkan export covering ``offset``, from nm (not from vkdoctor's symbolizer)."""
    out = subprocess.run(
        ["nm", "-D", "--defined-only", "-S", "/lib/x86_64-linux-gnu/libvulkan.so.1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for row in out.splitlines():
        parts = row.split()
        if len(parts) == 4 and parts[2] in "Tt":
            start, size = int(parts[0], 16), int(parts[1], 16)
            if start <= offset < start + size:
                return parts[3]
    raise AssertionError(f"no export at {offset:#x}")


def test_raii_unload_names_the_command_and_the_caller(bins):
    report = trace([str(bins / "raii_unload")])
    assert exit_signal(report) == "SIGSEGV", describe(report)
    assert "premature-unload" in codes(report)
    call = finding(report, "call-after-unload")
    offset = int(call.summary.rsplit("libvulkan.so.1+", 1)[1].rstrip(")"), 16)
    assert loader_symbol_at(offset) == "vkDestroyInstance"
    line = crash_line("raii_unload.c")
    assert call.evidence["command"] == "vkDestroyInstance"
    assert call.evidence["call_site"] == f"renderer_shutdown() at raii_unload.c:{line}"
    assert call.summary.startswith(
        "the program called into vkDestroyInstance in libvulkan.so.1 after dlclose from "
        "libloaderwrap.so"
    )
    assert f"called from renderer_shutdown() at raii_unload.c:{line}" in call.summary
    assert call.evidence["pointer"]["how"] == "vkGetInstanceProcAddr"


def test_crash_inside_the_driver_names_the_pointer_the_program_called(bins):
    # With Vulkan 1.2 the device has the command: the trampoline reaches lavapipe, which
    # crashes on the bogus buffer handle; the culprit frame is the driver, the pointer and the
    # call site come from the program's call through its function-pointer variable.
    command = [str(bins / "dlsym_bda"), "v12"]
    assert untraced_signal(command) == -11
    report = trace(command)
    assert exit_signal(report) == "SIGSEGV", describe(report)
    crash = finding(report, "program-crashed")
    line = crash_line("dlsym_bda.c")
    assert crash.evidence["command"] == "vkGetBufferDeviceAddress"
    assert crash.evidence["pointer"]["how"] == "dlsym"
    assert crash.evidence["call_site"] == f"upload_buffer() at dlsym_bda.c:{line}"
    assert "libvulkan_lvp.so" in crash.summary and "while executing vkGetBufferDeviceAddress" in (
        crash.summary
    )
    assert "(its pointer taken with dlsym from libvulkan.so.1 at event" in crash.summary
    assert "unsupported-command-called" not in codes(report)
