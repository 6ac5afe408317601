"""Lifetimes: libraries unloaded under live objects, destroyed or unknown handles, fork with
live objects, objects alive at exit."""

from __future__ import annotations

from vkdoctor.report.model import Severity
from vkdoctor.trace.events import Event, parse_addr
from vkdoctor.trace.launch import signal_name
from vkdoctor.trace.replay import Replay
from vkdoctor.trace.state import (
    _ACCUMULATED,
    _MAX_NAMES,
    ROLE_DRIVER,
    ROLE_LAYER,
    ROLE_LOADER,
    ROLE_OTHER,
    Lib,
    Proc,
    short,
)


class LifetimeRules(Replay):
    def check_premature_unload(self, proc: Proc, lib: Lib, e: Event) -> None:
        role = self.role(lib.path)
        if role == ROLE_OTHER:
            return
        if role == ROLE_DRIVER:
            victims = [d for d in proc.live() if d.kind == "device" and d.driver == lib.canon]
        elif role == ROLE_LAYER:
            victims = [i for i in proc.instances() if i.created.seq > lib.opened.seq]
        else:
            victims = proc.live()
        by = e.get("by")
        by_text = f" (dlclose from {short(by)})" if by else ""
        if not victims:
            if role == ROLE_LOADER and not proc.layer_loaded and e.src == "poll":
                # Without the layer we cannot know whether anything was still alive.
                self.add(
                    ("premature-unload", proc.pid, e.seq),
                    "premature-unload",
                    f"{short(lib.path)} was unloaded at event {e.seq} while the process kept "
                    "running; whether instances were still alive is invisible in this mode",
                    severity=Severity.INFO,
                    evidence={
                        "pid": proc.pid,
                        "library": lib.path,
                        "event": e.seq,
                        "timeline": self.timeline([lib.opened, e]),
                    },
                )
            return
        self.unloads_with_live_objects.append(e)
        n_inst = sum(1 for v in victims if v.kind == "instance")
        n_dev = sum(1 for v in victims if v.kind == "device")
        alive = ", ".join(
            part
            for part in (
                f"{n_inst} VkInstance" if n_inst else "",
                f"{n_dev} VkDevice" if n_dev else "",
            )
            if part
        )
        what = {
            "loader": "the Vulkan loader",
            "driver": "the Vulkan driver",
            "layer": "the Vulkan layer",
        }[role]
        self.add(
            ("premature-unload", proc.pid, lib.canon, e.seq),
            "premature-unload",
            f"{short(lib.path)} ({what}) was unloaded{by_text} at event {e.seq} while "
            f"{alive} created through it {'was' if len(victims) == 1 else 'were'} still alive",
            evidence={
                "pid": proc.pid,
                "library": lib.path,
                "role": role,
                "unloaded_at_event": e.seq,
                "unloaded_by": by,
                "live_objects": [
                    {"kind": v.kind, "handle": hex(v.handle), "created_at_event": v.created.seq}
                    for v in victims
                ],
                "timeline": self.timeline([lib.opened, *(v.created for v in victims), e]),
            },
        )

    def _check_handle(self, proc: Proc, e: Event, handle: int, kind: str, via: str) -> None:
        obj = proc.objects.get(handle)
        if obj is not None and obj.kind == kind:
            return
        dead = proc.dead.get(handle)
        if dead is not None and dead.kind == kind and obj is None:
            self.add(
                ("use-after-destroy", proc.pid, handle, e.seq),
                "use-after-destroy",
                f"{via} was called with Vk{kind.capitalize()} {hex(handle)} at event {e.seq}, "
                f"after it was destroyed at event {dead.destroyed.seq if dead.destroyed else '?'}",
                evidence={
                    "pid": proc.pid,
                    "handle": hex(handle),
                    "kind": kind,
                    "timeline": self.timeline([dead.created, dead.destroyed, e]),
                },
            )
            return
        if proc.layer_loaded and obj is None:
            self.add(
                ("unknown-handle", proc.pid, handle),
                "unknown-handle",
                f"{via} was called at event {e.seq} with {hex(handle)}, which no "
                f"vkCreate{kind.capitalize()} returned in this process",
                evidence={
                    "pid": proc.pid,
                    "handle": hex(handle),
                    "expected": kind,
                    "timeline": self.timeline([e]),
                },
            )

    def _child_end(self, proc: Proc) -> str:
        """How a forked child ended, as far as its own records tell."""
        if proc.signals:
            sig = proc.signals[-1].integer("sig")
            return f"died from {signal_name(sig) if sig else 'a fatal signal'}"
        if proc.exit_event is not None:
            return "exited (its exit handlers ran)"
        return "left no record of its end (it called _exit() or was killed)"

    def _vulkan_crash(self, proc: Proc) -> Event | None:
        """A crash of the child with a Vulkan library on its stack or at its instruction
        pointer: the child was inside Vulkan, through pointers it inherited."""
        for e in proc.signals:
            libs = proc.signal_libs.get(e.seq, [])
            addrs = [e.addr("ip"), *(parse_addr(a) for a in e.items("bt"))]
            for lib, _former in libs:
                if self.role(lib.path) in (ROLE_LOADER, ROLE_DRIVER) and any(
                    lib.contains(a, code_only=True) for a in addrs if a
                ):
                    return e
        return None

    def conclude_fork(self, proc: Proc) -> None:
        if proc.forked_at is None or proc.inherited_objects == 0:
            return
        used = list(proc.used_vulkan_in_child)
        crash = self._vulkan_crash(proc)
        if crash is not None:
            used.append(crash)
        if proc.execed and not used:
            return  # fork + exec: the child never touched the inherited objects
        parent = proc.parent
        severity = Severity.FAIL if used else None
        detail_used = f"; the child then used Vulkan ({self.describe(used[0])})" if used else ""
        end = self._child_end(proc)
        self.add(
            ("fork-after-vulkan-init", proc.pid),
            "fork-after-vulkan-init",
            f"process {parent} forked child {proc.pid} at event {proc.forked_at.seq} with "
            f"{proc.inherited_objects} Vulkan instance/device object(s) alive{detail_used}; "
            f"the child {end}",
            severity=severity,
            evidence={
                "parent": parent,
                "child": proc.pid,
                "inherited_objects": proc.inherited_objects,
                "child_used_vulkan": bool(used),
                "child_end": end,
                "timeline": self.timeline([proc.forked_at, *used[:5], *proc.signals[-1:]]),
            },
        )

    def _exited_normally(self, proc: Proc) -> bool:
        if proc.exit_event is not None:
            return True
        outcome = self.ctx.outcome
        return (
            proc.pid == self.ctx.main_pid
            and outcome is not None
            and outcome.exited_normally
            and not proc.audit_seen
        )

    def conclude_leaks(self, proc: Proc) -> None:
        live = proc.live()
        if not live or not self._exited_normally(proc) or proc.signals:
            return
        objects = [
            {"kind": o.kind, "handle": hex(o.handle), "created_at_event": o.created.seq}
            for o in live
        ]
        for kind in ("instance", "device"):
            alive = [o for o in live if o.kind == kind]
            created = sum(1 for o in proc.all_objects if o.kind == kind)
            if len(alive) < _ACCUMULATED:
                continue
            self.add(
                ("vulkan-objects-accumulated", proc.pid, kind),
                "vulkan-objects-accumulated",
                f"process {proc.pid} created {created} Vk{kind.capitalize()} objects and "
                f"{len(alive)} were never destroyed (first at event {alive[0].created.seq}, "
                f"last at event {alive[-1].created.seq})",
                evidence={
                    "pid": proc.pid,
                    "kind": kind,
                    "created": created,
                    "alive_at_exit": len(alive),
                    "timeline": self.timeline([o.created for o in alive[:_MAX_NAMES]]),
                },
            )
        self.add(
            ("vulkan-objects-leaked", proc.pid),
            "vulkan-objects-leaked",
            f"process {proc.pid} exited normally with "
            + ", ".join(
                f"{o.kind} {hex(o.handle)} (created at event {o.created.seq})" for o in live[:10]
            )
            + (f" and {len(live) - 10} more" if len(live) > 10 else "")
            + " still alive; harmless at exit (the process teardown releases them)",
            evidence={
                "pid": proc.pid,
                "objects": objects[:50],
                "timeline": self.timeline([*(o.created for o in live[:10]), proc.exit_event]),
            },
        )
