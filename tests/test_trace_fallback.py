"""Without the native parts, and for --pid: /proc/PID/maps polling, and an honest account of
what that cannot see."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from reproducers.harness import (
    HERE,
    build,
    codes,
    describe,
    finding,
    lavapipe_env,
    missing_prerequisite,
    probe,
    python_command,
    trace,
)

from vkdoctor.trace.native_paths import LAYER_LIBRARY, NATIVE_DIR_ENV, layer_library

pytestmark = pytest.mark.skipif(
    missing_prerequisite() is not None, reason=missing_prerequisite() or ""
)


@pytest.fixture(scope="module")
def bins():
    return build()


@pytest.fixture
def layer_only(tmp_path):
    """A native directory holding only the layer: an install whose audit module is missing."""
    layer = layer_library()
    assert layer.path is not None, layer.reason
    directory = tmp_path / "native"
    directory.mkdir()
    shutil.copy(layer.path, directory / LAYER_LIBRARY)
    return lavapipe_env(**{NATIVE_DIR_ENV: str(directory)})


def test_no_native_parts_says_what_is_invisible(bins, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    report = trace([str(bins / "correct")], env=lavapipe_env(**{NATIVE_DIR_ENV: str(empty)}))
    assert codes(report) == ["trace-native-missing"], describe(report)
    missing = finding(report, "trace-native-missing")
    assert missing.severity.value == "warn"
    assert {m["name"] for m in missing.evidence["missing"]} == {
        "libvkdoctor_audit.so",
        "libVkLayer_vkdoctor_trace.so",
    }
    assert all("was not built" in m["reason"] for m in missing.evidence["missing"])
    invisible = " ".join(missing.evidence["invisible"])
    assert "dlsym" in invisible and "crash" in invisible and "VkInstance" in invisible
    facts = probe(report).facts
    assert facts["mode"] == "poll"
    assert facts["program"]["exit"] == {"state": "exited", "code": 0}


def test_no_native_flag(bins):
    report = trace([str(bins / "correct")], "--no-native")
    assert codes(report) == ["trace-native-missing"]
    assert probe(report).facts["native"]["audit"]["reason"] == "disabled with --no-native"


def test_crash_without_audit_is_still_reported(bins):
    report = trace([str(bins / "wrapper_dlclose")], "--no-native")
    crash = [
        f for f in probe(report).findings if f.code in ("program-crashed", "call-after-unload")
    ]
    assert len(crash) == 1, describe(report)
    assert probe(report).facts["program"]["exit"]["signal"] == "SIGSEGV"
    # A poll between the dlclose and the crash (microseconds apart) is luck: either the unload
    # was seen and is the likely cause, or only the death by signal is known.
    (found,) = crash
    if found.code == "call-after-unload":
        assert found.summary.startswith("wrapper_dlclose died from SIGSEGV after libvulkan.so.1")
    else:
        assert found.summary == (
            "wrapper_dlclose died from SIGSEGV (no crash address without the audit module)"
        )
        assert found.remedy is not None
        assert found.remedy.commands == (f"gdb --args {bins / 'wrapper_dlclose'}",)


def test_layer_with_polling_sees_destroy_order(bins, layer_only):
    report = trace([str(bins / "destroy_order")], env=layer_only)
    assert probe(report).facts["mode"] == "layer+poll"
    assert set(codes(report)) == {"instance-destroyed-before-devices", "trace-native-missing"}
    missing = finding(report, "trace-native-missing")
    assert [m["name"] for m in missing.evidence["missing"]] == ["libvkdoctor_audit.so"]


def test_polling_catches_unload_with_live_instance(layer_only):
    report = trace(
        python_command("py_slow_unload.py", "bug", "0.3"), "--poll-interval", "0.01", env=layer_only
    )
    unload = finding(report, "premature-unload")
    assert unload.severity.value == "fail", describe(report)
    assert "libvulkan.so.1" in unload.summary


def test_polling_correct_unload_is_not_premature(layer_only):
    report = trace(
        python_command("py_slow_unload.py", "ok", "0.3"), "--poll-interval", "0.01", env=layer_only
    )
    assert codes(report) == ["trace-native-missing"], describe(report)
    libs = probe(report).facts["vulkan_libraries"]
    assert any(lib["role"] == "loader" and lib["unloaded_at_event"] for lib in libs)


def test_attach_to_running_process():
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "py_slow_unload.py"), "ok", "0.5"],
        env=dict(lavapipe_env().environ),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        report = trace(None, "--pid", str(proc.pid), "--duration", "10", "--poll-interval", "0.01")
    finally:
        proc.wait(timeout=30)
    assert "trace-attach-limited" in codes(report), describe(report)
    facts = probe(report).facts
    assert facts["mode"] == "attach"
    assert facts["program"]["exit"] == {"state": "exited"}
    loaders = [lib for lib in facts["vulkan_libraries"] if lib["role"] == "loader"]
    assert loaders and loaders[0]["unloaded_at_event"] is not None
    # without the layer nothing is known about instances: the unload is reported as info only
    assert all(f.severity.value == "info" for f in probe(report).findings), describe(report)


def test_attach_to_missing_process():
    report = trace(None, "--pid", "4194303")
    assert codes(report) == ["process-not-found"]


def _maps_line(path: str, base: int) -> str:
    return f"{base:x}-{base + 0x1000:x} r-xp 00000000 08:01 1234 {path}\n"


def test_poller_tells_an_unload_from_an_exit(tmp_path):
    from vkdoctor.trace.poll import MapsPoller

    libc, vulkan = "/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libvulkan.so.1"
    maps = tmp_path / "42" / "maps"
    maps.parent.mkdir()

    def run(snapshots: list[str]) -> list[dict]:
        events: list[dict] = []
        poller = MapsPoller(42, tmp_path, events.append)
        for i, text in enumerate(snapshots):
            maps.write_text(text)
            if not poller.poll(initial=i == 0):
                break
        else:
            poller.finish(exited=False)
        return [e for e in events if e["ev"] == "close"]

    both = _maps_line(libc, 0x7F0000000000) + _maps_line(vulkan, 0x7F1000000000)
    only_libc = _maps_line(libc, 0x7F0000000000)
    # libvulkan vanishes and the process goes on: an unload.
    (closed,) = run([both, only_libc, only_libc])
    assert closed["path"] == vulkan and closed["at_exit"] is False
    # libvulkan vanishes in a snapshot taken while the process exits (then a zombie): exit.
    (closed,) = run([both, only_libc, ""])
    assert closed["path"] == vulkan and closed["at_exit"] is True
