"""Replaying a trace: events in file order, per process, into the state of vkdoctor.trace.state.

Library roles (loader, driver, layer) come from the trace itself: the loader takes ``vk_icd*``
entry points from drivers and ``vkNegotiateLoaderLayerInterfaceVersion`` from layers; driver
manifests found on the machine fill in what the trace does not show.  Findings that are plain
at one event (an unload with live objects, a destroyed handle used) are raised during the
replay through the hooks at the end of the class; the rest after it, by the rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vkdoctor.report.model import Finding
from vkdoctor.trace.crash import CrashAnalyzer
from vkdoctor.trace.events import Event, ParsedTrace, parse_addr
from vkdoctor.trace.launch import signal_name
from vkdoctor.trace.provenance import (
    HOW_DLSYM,
    HOW_GDPA,
    HOW_GIPA,
    HOW_LINKED,
    PointerRecord,
)
from vkdoctor.trace.rules.codes import finding
from vkdoctor.trace.state import (
    _LOADER_NAME,
    GLOBAL_COMMANDS,
    ROLE_DRIVER,
    ROLE_LAYER,
    ROLE_LOADER,
    ROLE_OTHER,
    Lib,
    Proc,
    TraceContext,
    VkObject,
    canonical,
    from_instance_extension,
    hexs,
    is_device_command,
    short,
)


class Replay:
    """Replays the events per process; the rule mixins read the state it builds."""

    def __init__(self, trace: ParsedTrace, ctx: TraceContext, *, strict: bool = False) -> None:
        self.trace = trace
        self.ctx = ctx
        self.strict = strict
        self.unanalysable: list[int] = []
        self.procs: dict[int, Proc] = {}
        self.roles = self._classify()
        self.findings: list[Finding] = []
        self._seen_keys: set[tuple[Any, ...]] = set()
        self.explained_signals: set[int] = set()
        self.unloads_with_live_objects: list[Event] = []
        own = [canonical(ctx.own_layer)] if ctx.own_layer else []
        self.crash = CrashAnalyzer(self.role, own)

    # -- roles --

    def _classify(self) -> dict[str, str]:
        roles: dict[str, str] = {}
        for path in self.ctx.driver_paths:
            roles[canonical(path)] = ROLE_DRIVER
        for path in self.ctx.layer_paths:
            roles[canonical(path)] = ROLE_LAYER
        if self.ctx.own_layer:
            roles[canonical(self.ctx.own_layer)] = ROLE_LAYER
        for event in self.trace.of("bind", "open"):
            if event.ev == "open":
                path = event.text("path")
                if _LOADER_NAME.match(short(path)):
                    roles.setdefault(canonical(path), ROLE_LOADER)
                elif short(path).startswith("libVkLayer"):
                    roles.setdefault(canonical(path), ROLE_LAYER)
                continue
            requester = event.text("from")
            target = canonical(event.text("to"))
            sym = event.text("sym")
            if not _LOADER_NAME.match(short(requester)):
                continue
            if sym.startswith("vk_icd"):
                roles[target] = ROLE_DRIVER
            elif sym == "vkNegotiateLoaderLayerInterfaceVersion":
                roles.setdefault(target, ROLE_LAYER)
        return roles

    def role(self, path: str | None) -> str:
        if not path:
            return ROLE_OTHER
        canon = canonical(path)
        if canon in self.roles:
            return self.roles[canon]
        if _LOADER_NAME.match(short(path)):
            return ROLE_LOADER
        return ROLE_OTHER

    # -- output helpers --

    def add(self, key: tuple[Any, ...], code: str, summary: str, **kwargs: Any) -> None:
        if key in self._seen_keys:
            return
        self._seen_keys.add(key)
        self.findings.append(finding(code, summary, **kwargs))

    # -- prose --

    def describe(self, e: Event) -> str:
        d = e.data
        if e.ev == "open":
            text = f"loaded {short(d.get('path'))}"
            if d.get("by"):
                text += f" (dlopen from {short(d.get('by'))})"
        elif e.ev == "close":
            text = f"unloaded {short(d.get('path'))}"
            if d.get("at_exit"):
                text += " at exit"
            elif d.get("by"):
                text += f" (dlclose from {short(d.get('by'))})"
        elif e.ev == "create_instance":
            text = f"vkCreateInstance -> {hexs(e.addr('inst'))} (result {d.get('res')})"
        elif e.ev == "destroy_instance":
            text = f"vkDestroyInstance({hexs(e.addr('inst'))})"
        elif e.ev == "create_device":
            text = (
                f"vkCreateDevice -> {hexs(e.addr('dev'))} on instance "
                f"{hexs(e.addr('inst'))} (result {d.get('res')})"
            )
        elif e.ev == "destroy_device":
            text = f"vkDestroyDevice({hexs(e.addr('dev'))})"
        elif e.ev in ("gipa", "gdpa"):
            fn = "vkGetInstanceProcAddr" if e.ev == "gipa" else "vkGetDeviceProcAddr"
            text = f'{fn}({hexs(e.addr("h"))}, "{d.get("name")}") -> {hexs(e.addr("ret"))}'
        elif e.ev == "bind":
            how = "dlsym" if d.get("dlsym") else "linked"
            text = f"{short(d.get('from'))} {how} {d.get('sym')} from {short(d.get('to'))}"
        elif e.ev == "signal":
            sig = e.integer("sig")
            name = signal_name(sig) if sig else "signal"
            text = f"{name}: ip {hexs(e.addr('ip'))}, address {hexs(e.addr('addr'))}"
            inside = e.mapping("inside")
            if inside:
                text += f' inside {inside.get("fn")}("{inside.get("name")}")'
        elif e.ev in ("fork", "fork_seen"):
            text = f"fork(): process {e.pid} is a child of {d.get('ppid')}"
        elif e.ev == "child_call":
            text = f"{d.get('fn')} called in the forked child through an inherited pointer"
        elif e.ev == "exit":
            text = "process exit begins (static destructors done)"
        elif e.ev == "hello":
            text = f"exec {d.get('exe')}"
        elif e.ev == "trace_end":
            text = f"program ended: {d.get('status')}"
        else:
            text = e.ev
        pid = f" [pid {e.pid}]" if e.pid is not None and e.pid != self.ctx.main_pid else ""
        return f"#{e.seq}{pid} {text}"

    def timeline(self, events: Iterable[Event | None]) -> list[str]:
        unique = sorted({e.seq: e for e in events if e is not None}.values(), key=lambda e: e.seq)
        return [self.describe(e) for e in unique]

    # -- replay --

    def proc(self, event: Event) -> Proc:
        pid = event.pid if event.pid is not None else (self.ctx.main_pid or 0)
        proc = self.procs.get(pid)
        if proc is None:
            parent_pid = event.get("ppid")
            parent = self.procs.get(parent_pid) if isinstance(parent_pid, int) else None
            if parent is not None and event.ev in ("fork", "fork_seen"):
                proc = parent.fork_child(pid, event)
            else:
                proc = Proc(pid=pid)
            self.procs[pid] = proc
        return proc

    def run(self) -> None:
        handlers = {
            "hello": self.on_hello,
            "fork_seen": self.on_fork,
            "fork": self.on_fork,
            "open": self.on_open,
            "close": self.on_close,
            "bind": self.on_bind,
            "gipa": self.on_gipa,
            "gdpa": self.on_gdpa,
            "signal": self.on_signal,
            "exit": self.on_exit,
            "layer_load": self.on_layer_load,
            "create_instance": self.on_create_instance,
            "destroy_instance": self.on_destroy_instance,
            "enum_pd": self.on_enum_pd,
            "create_device": self.on_create_device,
            "destroy_device": self.on_destroy_device,
            "device_nulls": self.on_device_nulls,
            "child_call": lambda proc, e: None,  # only counted as the child's Vulkan use
        }
        for event in self.trace:
            if event.src == "vkdoctor":
                continue
            handler = handlers.get(event.ev)
            if handler is None:
                continue
            try:
                proc = self.proc(event)
                if event.src == "audit":
                    proc.audit_seen = True
                if proc.forked_at is not None and not proc.execed and self._is_vulkan_use(event):
                    proc.used_vulkan_in_child.append(event)
                handler(proc, event)
            except Exception:
                # A damaged trace costs one event, not the report (tests run strict).
                if self.strict:
                    raise
                self.unanalysable.append(event.seq)

    def _is_vulkan_use(self, event: Event) -> bool:
        """An event that shows the process itself calling Vulkan (used for forked children)."""
        if event.ev in (
            "gipa",
            "gdpa",
            "create_instance",
            "destroy_instance",
            "enum_pd",
            "create_device",
            "destroy_device",
            "child_call",
        ):
            return True
        return (
            event.ev == "bind"
            and event.text("sym").startswith("vk")
            and self.role(event.text("from")) == ROLE_OTHER
        )

    def on_hello(self, proc: Proc, e: Event) -> None:
        if proc.live_libs or proc.objects or proc.forked_at is not None:
            # exec() replaces the image: a fresh address space, same pid.
            fresh = Proc(
                pid=proc.pid,
                parent=proc.parent,
                forked_at=proc.forked_at,
                inherited_objects=proc.inherited_objects,
                execed=True,
                used_vulkan_in_child=proc.used_vulkan_in_child,
            )
            self.procs[proc.pid] = fresh
            proc = fresh
        proc.exe = e.text("exe") or proc.exe
        proc.audit_seen = True

    def on_fork(self, proc: Proc, e: Event) -> None:
        if e.ev == "fork" and proc.forked_at is not None and proc.forked_at.ev == "fork_seen":
            proc.forked_at = e  # the layer's record is exact; the audit one is lazy

    def on_open(self, proc: Proc, e: Event) -> None:
        path = e.text("path")
        ranges = []
        for item in e.items("ranges"):
            if not isinstance(item, list) or len(item) != 3:
                continue
            lo, hi = parse_addr(item[0]), parse_addr(item[1])
            if lo is not None and hi is not None:
                ranges.append((lo, hi, item[2] == "x"))
        base = e.addr("base") or (min(r[0] for r in ranges) if ranges else 0)
        lib = Lib(path=path, canon=canonical(path), base=base, ranges=ranges, opened=e)
        old = proc.live_libs.get(base)
        if old is not None and old.path != path:
            proc.closed_libs.append(old)
        proc.live_libs[base] = lib
        if self.role(path) == ROLE_LOADER:
            for other in proc.live_libs.values():
                if other is lib or self.role(other.path) != ROLE_LOADER:
                    continue
                if other.canon != lib.canon:
                    pair = tuple(sorted((other.canon, lib.canon)))
                    if pair not in proc.loader_pairs:
                        proc.loader_pairs.add(pair)  # type: ignore[arg-type]
                        proc.loader_pair_events.append((other, lib))

    def _find_lib(self, proc: Proc, e: Event) -> Lib | None:
        path = e.text("path")
        base = e.addr("base")
        lib = proc.live_libs.get(base) if base is not None else None
        if lib is not None and (lib.path == path or not path):
            return lib
        for candidate in proc.live_libs.values():
            if candidate.path == path:
                return candidate
        return lib

    def on_close(self, proc: Proc, e: Event) -> None:
        lib = self._find_lib(proc, e)
        at_exit = e.flag("at_exit") or proc.exit_event is not None
        if lib is None:
            return
        del proc.live_libs[lib.base]
        lib.closed = e
        lib.at_exit = at_exit
        proc.closed_libs.append(lib)
        if at_exit:
            return
        self.check_premature_unload(proc, lib, e)

    def on_bind(self, proc: Proc, e: Event) -> None:
        sym = e.text("sym")
        requester = e.text("from")
        target = e.text("to")
        if not sym.startswith("vk") or canonical(requester) == canonical(target):
            return
        req_role = self.role(requester)
        to_role = self.role(target)
        if req_role in (ROLE_LOADER, ROLE_DRIVER, ROLE_LAYER):
            return
        if to_role in (ROLE_LOADER, ROLE_DRIVER):
            proc.provenance.add(
                PointerRecord(
                    sym,
                    e.addr("addr") or 0,
                    HOW_DLSYM if e.flag("dlsym") else HOW_LINKED,
                    e,
                    source=target,
                )
            )
        if to_role == ROLE_DRIVER:
            proc.bypass.setdefault(canonical(target), []).append(e)
        elif to_role == ROLE_LOADER and e.flag("dlsym") and sym != "vkGetInstanceProcAddr":
            proc.dlsym_from_loader.setdefault(sym, e)

    def on_gipa(self, proc: Proc, e: Event) -> None:
        handle = e.addr("h") or 0
        name = e.text("name")
        ret = e.addr("ret") or 0
        if not ret:
            proc.null_results.append(e)
        proc.provenance.add(PointerRecord(name, ret, HOW_GIPA, e, handle=handle))
        if not handle:
            if name not in GLOBAL_COMMANDS:
                proc.gipa_null.setdefault(name, e)
            return
        self._check_handle(proc, e, handle, "instance", f'vkGetInstanceProcAddr(…, "{name}")')
        if (
            ret
            and name != "vkGetDeviceProcAddr"
            and is_device_command(name)
            and not from_instance_extension(name)
        ):
            proc.gipa_device.setdefault(name, e)

    def on_gdpa(self, proc: Proc, e: Event) -> None:
        handle = e.addr("h") or 0
        name = e.text("name")
        if not (e.addr("ret") or 0):
            proc.null_results.append(e)
        proc.provenance.add(PointerRecord(name, e.addr("ret") or 0, HOW_GDPA, e, handle=handle))
        proc.gdpa_names.add(name)
        obj = proc.objects.get(handle)
        if obj is not None and obj.kind == "device":
            obj.gdpa_queries += 1
        elif handle:
            self._check_handle(proc, e, handle, "device", f'vkGetDeviceProcAddr(…, "{name}")')

    def on_signal(self, proc: Proc, e: Event) -> None:
        proc.signals.append(e)
        own = canonical(self.ctx.own_layer) if self.ctx.own_layer else None
        proc.signal_libs[e.seq] = [(lib, False) for lib in proc.live_libs.values()] + [
            (lib, True)
            for lib in reversed(proc.closed_libs)
            if not lib.at_exit and lib.canon != own
        ]

    def on_device_nulls(self, proc: Proc, e: Event) -> None:
        obj = proc.objects.get(e.addr("dev") or 0)
        if obj is not None and obj.kind == "device":
            obj.unsupported = frozenset(n for n in e.items("names") if isinstance(n, str))

    def on_exit(self, proc: Proc, e: Event) -> None:
        if proc.exit_event is None:
            proc.exit_event = e

    def on_layer_load(self, proc: Proc, e: Event) -> None:
        proc.layer_loaded = True

    def on_create_instance(self, proc: Proc, e: Event) -> None:
        proc.layer_loaded = True
        handle = e.addr("inst") or 0
        if e.get("res") != 0 or not handle:
            return
        obj = VkObject("instance", handle, e)
        proc.objects[handle] = obj
        proc.dead.pop(handle, None)
        proc.all_objects.append(obj)

    def on_destroy_instance(self, proc: Proc, e: Event) -> None:
        handle = e.addr("inst") or 0
        obj = proc.objects.get(handle)
        if obj is None or obj.kind != "instance":
            if handle:
                self._check_handle(proc, e, handle, "instance", "vkDestroyInstance")
            return
        devices = [d for d in proc.devices() if d.instance == handle and not d.orphaned]
        for device in devices:
            device.orphaned = True
        if devices:
            self.add(
                ("instance-destroyed-before-devices", proc.pid, handle),
                "instance-destroyed-before-devices",
                f"vkDestroyInstance({hex(handle)}) at event {e.seq} while {len(devices)} "
                f"device(s) created from it were still alive "
                f"({', '.join(hex(d.handle) for d in devices)})",
                evidence={
                    "pid": proc.pid,
                    "instance": hex(handle),
                    "live_devices": [hex(d.handle) for d in devices],
                    "timeline": self.timeline([obj.created, *(d.created for d in devices), e]),
                },
            )
        obj.destroyed = e
        del proc.objects[handle]
        proc.dead[handle] = obj

    def on_enum_pd(self, proc: Proc, e: Event) -> None:
        handle = e.addr("inst") or 0
        if handle and handle not in proc.objects:
            self._check_handle(proc, e, handle, "instance", "vkEnumeratePhysicalDevices")

    def on_create_device(self, proc: Proc, e: Event) -> None:
        proc.layer_loaded = True
        handle = e.addr("dev") or 0
        if e.get("res") != 0 or not handle:
            return
        anchor = e.addr("anchor")
        lib = proc.lib_at(anchor)
        obj = VkObject(
            "device",
            handle,
            e,
            instance=e.addr("inst"),
            anchor=anchor,
            driver=lib.canon if lib is not None else None,
        )
        proc.objects[handle] = obj
        proc.dead.pop(handle, None)
        proc.all_objects.append(obj)

    def on_destroy_device(self, proc: Proc, e: Event) -> None:
        handle = e.addr("dev") or 0
        obj = proc.objects.get(handle)
        if obj is None or obj.kind != "device":
            if handle:
                self._check_handle(proc, e, handle, "device", "vkDestroyDevice")
            return
        obj.destroyed = e
        del proc.objects[handle]
        proc.dead[handle] = obj

    # -- hooks the replay calls; the lifetime rules implement them --

    def check_premature_unload(self, proc: Proc, lib: Lib, e: Event) -> None:
        raise NotImplementedError

    def _check_handle(self, proc: Proc, e: Event, handle: int, kind: str, via: str) -> None:
        raise NotImplementedError
