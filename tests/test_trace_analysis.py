"""The analysis on synthetic traces (no Vulkan needed), the event parser, the maps poller, and
robustness against damaged traces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vkdoctor.trace.analysis import TraceContext, analyze
from vkdoctor.trace.events import parse_lines
from vkdoctor.trace.launch import ProgramOutcome, resolve_program
from vkdoctor.trace.native_paths import NATIVE_DIR_ENV, audit_library, find_native
from vkdoctor.trace.poll import MapsPoller, parse_maps

LOADER = "/usr/lib/x86_64-linux-gnu/libvulkan.so.1"
DRIVER = "/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so"
APP = "/opt/app/bin/app"
PID = 4242


class Trace:
    """Builds a JSON-lines trace the way the native writers would."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def add(self, ev: str, src: str = "audit", pid: int = PID, **data: Any) -> Trace:
        self.lines.append(
            {"ev": ev, "src": src, "pid": pid, "tid": pid, "t": len(self.lines), **data}
        )
        return self

    def open(self, path: str, lo: int, hi: int, **data: Any) -> Trace:
        return self.add(
            "open",
            path=path,
            base=hex(lo),
            ranges=[[hex(lo), hex(lo + 0x1000), "-"], [hex(lo + 0x1000), hex(hi), "x"]],
            **data,
        )

    def close(self, path: str, lo: int, **data: Any) -> Trace:
        return self.add("close", path=path, base=hex(lo), **data)

    def startup(self) -> Trace:
        self.add("hello", exe=APP)
        self.open(APP, 0x555500000000, 0x555500100000, main=True)
        self.open(LOADER, 0x7F0000000000, 0x7F0000100000, by=APP)
        self.open(DRIVER, 0x7F1000000000, 0x7F1000800000, by=LOADER)
        self.add(
            "bind",
            sym="vk_icdGetInstanceProcAddr",
            **{"from": LOADER, "to": DRIVER},
            addr="0x7f1000001000",
            dlsym=True,
        )
        return self

    def instance(self, handle: int = 0x1000) -> Trace:
        self.add("layer_load", src="layer")
        return self.add("create_instance", src="layer", inst=hex(handle), res=0)

    def device(self, handle: int = 0x2000, instance: int = 0x1000) -> Trace:
        return self.add(
            "create_device",
            src="layer",
            dev=hex(handle),
            inst=hex(instance),
            res=0,
            anchor="0x7f1000002000",
        )

    def analyze(self, outcome: ProgramOutcome | None = None, **ctx: Any):
        text = "\n".join(json.dumps(line) for line in self.lines)
        context = TraceContext(main_pid=PID, outcome=outcome, **ctx)
        return analyze(parse_lines(text.splitlines()), context, strict=True)

    def codes(self, **kwargs: Any) -> list[str]:
        return sorted(f.code for f in self.analyze(**kwargs).findings)


EXITED = ProgramOutcome(("app",), True, "/opt/app/bin/app", PID, 0)
CRASHED = ProgramOutcome(("app",), True, "/opt/app/bin/app", PID, -11)


def test_clean_lifecycle_has_no_finding():
    t = Trace().startup().instance().device()
    t.add(
        "gdpa", h="0x2000", name="vkDeviceWaitIdle", ret="0x7f1000003000", caller="0x555500001000"
    )
    t.add("destroy_device", src="layer", dev="0x2000")
    t.add("destroy_instance", src="layer", inst="0x1000")
    t.close(DRIVER, 0x7F1000000000, by=LOADER)
    t.close(LOADER, 0x7F0000000000, by=APP)
    t.add("exit")
    t.close(APP, 0x555500000000, at_exit=True)
    assert t.codes(outcome=EXITED) == []


def test_close_at_exit_is_not_an_unload():
    t = Trace().startup().instance()
    t.add("exit")
    t.close(LOADER, 0x7F0000000000, at_exit=True)
    assert t.codes(outcome=EXITED) == ["vulkan-objects-leaked"]


def test_unload_with_live_instance_and_later_call():
    t = Trace().startup().instance()
    t.close(LOADER, 0x7F0000000000, by="/opt/app/lib/libfoo.so")
    t.add("signal", sig=11, code=1, addr="0x7f0000002345", ip="0x7f0000002345")
    result = t.analyze(outcome=CRASHED)
    assert sorted(f.code for f in result.findings) == ["call-after-unload", "premature-unload"]
    call = next(f for f in result.findings if f.code == "call-after-unload")
    assert "called into libvulkan.so.1 after dlclose from libfoo.so at event 8" in call.summary
    assert call.evidence["timeline"][-1].startswith("#9 SIGSEGV")


def test_reused_address_is_not_blamed_on_the_old_library():
    t = Trace().startup()
    t.close(LOADER, 0x7F0000000000, by=APP)
    t.open("/opt/app/lib/libother.so", 0x7F0000000000, 0x7F0000100000)
    t.add("signal", sig=11, code=1, addr="0x7f0000002345", ip="0x7f0000002345")
    assert t.codes(outcome=CRASHED) == ["program-crashed"]


def test_driver_unloaded_under_a_live_device():
    t = Trace().startup().instance().device()
    t.close(DRIVER, 0x7F1000000000, by="/opt/app/lib/libplugin.so")
    result = t.analyze(outcome=EXITED)
    unload = next(f for f in result.findings if f.code == "premature-unload")
    assert unload.evidence["role"] == "driver"
    assert "libplugin.so" in unload.summary


def test_program_linked_against_a_driver_is_a_bypass():
    t = Trace().startup()
    t.add(
        "bind",
        sym="vkQueueSubmit",
        **{"from": APP, "to": DRIVER},
        addr="0x7f1000004000",
        dlsym=False,
    )
    bypass = t.analyze(outcome=EXITED).findings[0]
    assert bypass.code == "loader-bypass"
    assert bypass.evidence["how"] == "direct linking"
    # the loader taking vk_icd* from its drivers is the normal protocol, not a bypass
    assert Trace().startup().codes(outcome=EXITED) == []


def test_layer_unloaded_under_its_instance():
    layer = "/opt/layers/libVkLayer_custom.so"
    t = Trace().startup()
    t.open(layer, 0x7F4000000000, 0x7F4000100000, by=LOADER)
    t.add(
        "bind",
        sym="vkNegotiateLoaderLayerInterfaceVersion",
        **{"from": LOADER, "to": layer},
        addr="0x7f4000001000",
        dlsym=True,
    )
    t.instance()
    t.close(layer, 0x7F4000000000, by=APP)
    unload = t.analyze(outcome=EXITED).findings[0]
    assert unload.code == "premature-unload"
    assert unload.evidence["role"] == "layer"


def test_fork_then_exec_is_harmless_fork_then_use_is_not():
    child = PID + 1
    base = Trace().startup().instance()
    base.add("fork", src="layer", pid=child, ppid=PID, live_instances=1, live_devices=0)
    execs = Trace()
    execs.lines = [*base.lines]
    execs.add("hello", pid=child, exe="/bin/true")
    assert "fork-after-vulkan-init" not in execs.codes(outcome=EXITED)
    uses = Trace()
    uses.lines = [*base.lines]
    uses.add(
        "gipa",
        pid=child,
        h="0x1000",
        name="vkEnumeratePhysicalDevices",
        ret="0x7f0000001000",
        caller="0x555500001000",
    )
    found = [f for f in uses.analyze(outcome=EXITED).findings if f.code == "fork-after-vulkan-init"]
    assert found and found[0].severity.value == "fail"
    nothing_alive = Trace().startup()
    nothing_alive.add("fork_seen", pid=child, ppid=PID)
    nothing_alive.add("gipa", pid=child, h="0x0", name="vkCreateInstance", ret="0x1", caller="0x1")
    assert "fork-after-vulkan-init" not in nothing_alive.codes(outcome=EXITED)


def test_loaders_one_after_another_are_not_two_loaders():
    t = Trace().startup()
    t.close(LOADER, 0x7F0000000000, by=APP)
    t.open("/opt/bundle/libvulkan.so.1", 0x7F2000000000, 0x7F2000100000, by=APP)
    assert "multiple-vulkan-loaders" not in t.codes(outcome=EXITED)
    t2 = Trace().startup()
    t2.open("/opt/bundle/libvulkan.so.1", 0x7F2000000000, 0x7F2000100000, by=APP)
    assert t2.codes(outcome=EXITED) == ["multiple-vulkan-loaders"]


def test_no_leak_reported_for_a_crash():
    t = Trace().startup().instance()
    t.add("signal", sig=6, code=-6, addr="0x0", ip="0x7f1000005000")
    assert t.codes(outcome=CRASHED) == ["program-crashed"]


def test_gipa_null_instance_and_unknown_handles():
    t = Trace().startup().instance()
    t.add("gipa", h="0x0", name="vkCreateDevice", ret="0x0", caller="0x1")
    t.add("gipa", h="0x0", name="vkEnumerateInstanceVersion", ret="0x7f0000001000", caller="0x1")
    t.add("gdpa", h="0xdead0000", name="vkDeviceWaitIdle", ret="0x0", caller="0x1")
    # no exit marker from the audit module (an _exit()): no leak verdict either
    assert t.codes(outcome=EXITED) == ["gipa-null-instance", "unknown-handle"]


def test_crash_inside_proc_addr_query_is_named():
    t = Trace().startup().instance()
    t.add(
        "signal",
        sig=11,
        code=1,
        addr="0x10",
        ip="0x7f0000003000",
        inside={"fn": "vkGetDeviceProcAddr", "h": "0xdead", "name": "vkQueueSubmit"},
    )
    crash = t.analyze(outcome=CRASHED).findings[0]
    assert crash.code == "program-crashed"
    assert 'inside vkGetDeviceProcAddr(0xdead, "vkQueueSubmit")' in crash.summary


def test_crash_inside_query_on_destroyed_device_is_use_after_destroy():
    t = Trace().startup().instance().device()
    t.add("destroy_device", src="layer", dev="0x2000")
    t.add(
        "signal",
        sig=11,
        code=1,
        addr="0x10",
        ip="0x7f0000003000",
        inside={"fn": "vkGetDeviceProcAddr", "h": "0x2000", "name": "vkDeviceWaitIdle"},
    )
    assert t.codes(outcome=CRASHED) == ["use-after-destroy"]


def test_parser_counts_damage_and_numbers_lines():
    parsed = parse_lines(
        [
            '{"ev":"hello","src":"audit","pid":1}',
            "not json",
            '{"ev":"open","src":"audit","pid":1,"path":"/x"',  # cut mid-line
            "",
            '["a list"]',
            '{"ev":"truncated"}',
            b'{"ev":"exit","src":"audit","pid":1}',
        ]
    )
    assert [(e.seq, e.ev) for e in parsed] == [(1, "hello"), (7, "exit")]
    assert parsed.malformed == 3
    assert parsed.truncated


def test_parse_maps_keeps_code_objects_only():
    text = "\n".join(
        [
            "55d0c0000000-55d0c0001000 r--p 00000000 08:01 1 /usr/bin/app",
            "55d0c0001000-55d0c0002000 r-xp 00001000 08:01 1 /usr/bin/app",
            "7f0000000000-7f0000010000 r--p 00000000 08:01 2 /usr/share/fonts/cache",
            "7f1000000000-7f1000001000 r-xp 00000000 08:01 3 /tmp/libgone.so (deleted)",
            "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]",
            "garbage line",
        ]
    )
    maps = parse_maps(text)
    assert sorted(maps) == ["/tmp/libgone.so", "/usr/bin/app"]
    assert maps["/usr/bin/app"][1] == (0x55D0C0001000, 0x55D0C0002000, True)


def test_poller_diffs_snapshots(tmp_path):
    procfs = tmp_path
    (procfs / "77").mkdir()
    maps = procfs / "77" / "maps"
    events: list[dict[str, Any]] = []
    poller = MapsPoller(77, procfs, events.append)
    lib = "7f1000000000-7f1000001000 r-xp 00000000 08:01 3 /usr/lib/libvulkan.so.1\n"
    app = "55d0c0001000-55d0c0002000 r-xp 00001000 08:01 1 /usr/bin/app\n"
    maps.write_text(app + lib)
    assert poller.poll(initial=True)
    maps.write_text(app)
    assert poller.poll()
    maps.write_text("")  # a zombie: exit, not an unload
    assert not poller.poll()
    (procfs / "77" / "maps").unlink()
    assert not poller.poll()
    assert [(e["ev"], e["path"]) for e in events] == [
        ("open", "/usr/bin/app"),
        ("open", "/usr/lib/libvulkan.so.1"),
        ("close", "/usr/lib/libvulkan.so.1"),
    ]


def test_native_lookup_reports_reasons(tmp_path):
    missing = audit_library({NATIVE_DIR_ENV: str(tmp_path)})
    assert not missing.available and "was not built" in missing.reason
    (tmp_path / "libvkdoctor_audit.so").write_text("not an ELF file")
    bogus = audit_library({NATIVE_DIR_ENV: str(tmp_path)})
    assert not bogus.available and "not an ELF" in bogus.reason
    colon = tmp_path / "a:b"
    colon.mkdir()
    (colon / "x.so").write_bytes(b"\x7fELF....")
    assert "':'" in find_native("x.so", {NATIVE_DIR_ENV: str(colon)}).reason


def test_resolve_program(tmp_path):
    assert resolve_program("", {})[1] == "program-not-found"
    assert resolve_program("sh", {"PATH": "/bin:/usr/bin"})[0] is not None
    assert resolve_program("sh", {"PATH": str(tmp_path)})[1] == "program-not-found"
    assert resolve_program(str(tmp_path), {})[1] == "program-not-executable"


# ---- robustness: damaged or hostile traces never crash the analysis --------------------------

_KINDS = [
    "hello",
    "fork_seen",
    "open",
    "close",
    "bind",
    "gipa",
    "gdpa",
    "signal",
    "exit",
    "layer_load",
    "layer_unload",
    "create_instance",
    "destroy_instance",
    "enum_pd",
    "create_device",
    "destroy_device",
    "fork",
    "device_nulls",
    "child_call",
    "trace_start",
    "trace_end",
    "bogus",
]
_KEYS = [
    "path",
    "base",
    "ranges",
    "by",
    "at_exit",
    "sym",
    "from",
    "to",
    "dlsym",
    "h",
    "name",
    "ret",
    "caller",
    "sig",
    "code",
    "addr",
    "ip",
    "inside",
    "stack",
    "inst",
    "dev",
    "res",
    "anchor",
    "ppid",
    "exe",
    "live_instances",
    "status",
    # the crash record's backtrace fields and the layer's per-device answers
    "ret",
    "regs",
    "call",
    "bt",
    "calls",
    "names",
    "fn",
]
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from(
        ["0x0", "0x1000", "0x7f0000002345", LOADER, DRIVER, "vkCreateDevice", "x", "0xzz"]
    ),
    st.text(max_size=4),
)
_VALUES = st.one_of(
    _SCALARS,
    st.lists(_SCALARS, max_size=3),
    st.lists(st.lists(_SCALARS, max_size=3), max_size=2),
    st.dictionaries(st.sampled_from(["fn", "h", "name", "state"]), _SCALARS, max_size=3),
    st.dictionaries(
        st.sampled_from(["rdi", "rip", "form", "target", "slot", "reliable", "reg"]),
        _SCALARS,
        max_size=4,
    ),
    st.lists(
        st.dictionaries(st.sampled_from(["ret", "slot", "target"]), _SCALARS, max_size=3),
        max_size=2,
    ),
)
_EVENTS = st.fixed_dictionaries(
    {
        "ev": st.sampled_from(_KINDS),
        "src": st.sampled_from(["audit", "layer", "poll", "x"]),
        "pid": st.one_of(st.sampled_from([PID, PID + 1]), st.none(), st.text(max_size=2)),
    },
    optional={k: _VALUES for k in _KEYS},
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_EVENTS, max_size=20), st.sampled_from([None, EXITED, CRASHED]))
def test_analysis_never_raises_on_damaged_traces(events, outcome):
    lines = [json.dumps(e) for e in events]
    result = analyze(parse_lines(lines), TraceContext(main_pid=PID, outcome=outcome), strict=True)
    json.dumps([f.to_dict() for f in result.findings])
    json.dumps(result.facts)


def test_trace_file_path_is_json_safe(tmp_path: Path):
    weird = '/tmp/\u00e9\x01"quote\\.so'
    t = Trace().startup()
    t.open(weird, 0x7F3000000000, 0x7F3000100000, by=LOADER)
    # The loader negotiates with it: a layer, so the analysis records it as a Vulkan library.
    t.add(
        "bind",
        sym="vkNegotiateLoaderLayerInterfaceVersion",
        **{"from": LOADER, "to": weird},
        addr="0x7f3000001000",
        dlsym=True,
    )
    facts = json.loads(json.dumps(t.analyze(outcome=EXITED).facts))
    # The odd path survives the JSON round trip unchanged: not dropped, not mangled.
    layers = [lib for lib in facts["vulkan_libraries"] if lib["role"] == "layer"]
    assert [lib["path"] for lib in layers] == [weird]


def _lenient_driver_crash(api_minor: int, exts: list[str]) -> Trace:
    """A program that dlsym'd vkGetBufferDeviceAddress calls it through a global variable; the
    driver filled the dispatch slot although the instance asked for Vulkan 1.<api_minor>, and
    crashes inside it (what the NVIDIA driver does)."""
    t = Trace().startup()
    t.add(
        "bind",
        sym="vkGetBufferDeviceAddress",
        **{"from": APP, "to": LOADER},
        addr="0x7f0000005000",
        dlsym=True,
    )
    t.add("layer_load", src="layer")
    t.add("create_instance", src="layer", inst="0x1000", res=0, api=(1 << 22) | (api_minor << 12))
    t.add(
        "create_device",
        src="layer",
        dev="0x2000",
        inst="0x1000",
        res=0,
        anchor="0x7f1000002000",
        exts=exts,
    )
    return t.add(
        "signal",
        sig=11,
        code=1,
        addr="0x10",
        ip="0x7f1000004000",
        bt=["0x555500001234"],
        calls=[{"ret": "0x555500001234", "slot": "0x555500050000", "target": "0x7f0000005000"}],
    )


def test_driver_crash_in_a_command_above_the_instance_version():
    found = [f for f in _lenient_driver_crash(1, []).analyze(outcome=CRASHED).findings]
    (bad,) = [f for f in found if f.code == "unsupported-command-called"]
    assert bad.evidence["instance_api_version"] == "1.1"
    assert bad.evidence["command_core_version"] == "1.2"
    assert bad.evidence["pointer"]["how"] == "dlsym"
    assert "whose instance asked for Vulkan 1.1: vkGetBufferDeviceAddress is core in 1.2" in (
        bad.summary
    )
    assert "program-crashed" not in [f.code for f in found]


@pytest.mark.parametrize(
    "api_minor, exts", [(2, []), (1, ["VK_KHR_buffer_device_address"])], ids=["v12", "khr"]
)
def test_driver_crash_in_an_enabled_command_is_a_plain_crash(api_minor, exts):
    found = _lenient_driver_crash(api_minor, exts).analyze(outcome=CRASHED).findings
    (crash,) = [f for f in found if f.code == "program-crashed"]
    assert crash.evidence["command"] == "vkGetBufferDeviceAddress"
    assert "unsupported-command-called" not in [f.code for f in found]
