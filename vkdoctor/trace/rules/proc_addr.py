"""How the program gets its function pointers: NULL-instance queries, device commands through
vkGetInstanceProcAddr, dlsym of loader exports, loader bypass, two loaders, shared tables."""

from __future__ import annotations

from vkdoctor.report.model import Severity
from vkdoctor.trace.replay import Replay
from vkdoctor.trace.state import (
    _MAX_NAMES,
    Proc,
    short,
)


class ProcAddrRules(Replay):
    def conclude_proc_addr(self, proc: Proc) -> None:
        if proc.gipa_null:
            names = sorted(proc.gipa_null)
            events = [proc.gipa_null[n] for n in names]
            nulls = [n for n in names if not (proc.gipa_null[n].addr("ret") or 0)]
            self.add(
                ("gipa-null-instance", proc.pid),
                "gipa-null-instance",
                f"vkGetInstanceProcAddr(NULL, …) was asked for {len(names)} non-global "
                f"command(s): {', '.join(names[:_MAX_NAMES])}"
                + (f"; {len(nulls)} came back NULL on this loader" if nulls else ""),
                evidence={
                    "pid": proc.pid,
                    "commands": names,
                    "returned_null": nulls,
                    "timeline": self.timeline(events[:_MAX_NAMES]),
                },
            )
        if proc.gipa_device and any(o.kind == "device" for o in proc.all_objects):
            only_gipa = sorted(n for n in proc.gipa_device if n not in proc.gdpa_names)
            if only_gipa:
                self.add(
                    ("device-command-via-gipa", proc.pid),
                    "device-command-via-gipa",
                    f"{len(only_gipa)} device command(s) were fetched with vkGetInstanceProcAddr "
                    f"and never with vkGetDeviceProcAddr: {', '.join(only_gipa[:_MAX_NAMES])}",
                    evidence={
                        "pid": proc.pid,
                        "commands": only_gipa,
                        "timeline": self.timeline(
                            proc.gipa_device[n] for n in only_gipa[:_MAX_NAMES]
                        ),
                    },
                )
        if proc.dlsym_from_loader:
            names = sorted(proc.dlsym_from_loader)
            first = proc.dlsym_from_loader[names[0]]
            self.add(
                ("dlsym-entry-point", proc.pid),
                "dlsym-entry-point",
                f"{short(first.get('from'))} took {len(names)} Vulkan command(s) from "
                f"{short(first.get('to'))} with dlsym instead of vkGetInstanceProcAddr: "
                f"{', '.join(names[:_MAX_NAMES])}",
                evidence={
                    "pid": proc.pid,
                    "commands": names,
                    "timeline": self.timeline(
                        proc.dlsym_from_loader[n] for n in names[:_MAX_NAMES]
                    ),
                },
            )

    def conclude_bypass(self, proc: Proc) -> None:
        for driver, binds in proc.bypass.items():
            names = sorted({str(b.get("sym")) for b in binds})
            requesters = sorted({short(b.get("from")) for b in binds})
            how = "dlsym" if any(b.flag("dlsym") for b in binds) else "direct linking"
            self.add(
                ("loader-bypass", proc.pid, driver),
                "loader-bypass",
                f"{', '.join(requesters)} took {len(names)} entry point(s) straight from the "
                f"driver {short(driver)} ({how}): {', '.join(names[:_MAX_NAMES])}",
                evidence={
                    "pid": proc.pid,
                    "driver": driver,
                    "commands": names,
                    "requesters": requesters,
                    "how": how,
                    "timeline": self.timeline(binds[:_MAX_NAMES]),
                },
            )

    def conclude_loaders(self, proc: Proc) -> None:
        for first, second in proc.loader_pair_events:
            self.add(
                ("multiple-vulkan-loaders", proc.pid, first.canon, second.canon),
                "multiple-vulkan-loaders",
                f"process {proc.pid} has two different Vulkan loaders mapped: {first.canon} "
                f"and {second.canon}"
                + (
                    f" (the second loaded by {short(second.opened.get('by'))})"
                    if second.opened.get("by")
                    else ""
                ),
                evidence={
                    "pid": proc.pid,
                    "loaders": [first.canon, second.canon],
                    "timeline": self.timeline([first.opened, second.opened]),
                },
            )

    def conclude_shared_pointers(self, proc: Proc) -> None:
        devices = [o for o in proc.all_objects if o.kind == "device"]
        if len(devices) < 2:
            return
        end = float("inf")
        for b in devices:
            if b.gdpa_queries:
                continue
            b_end = b.destroyed.seq if b.destroyed else end
            for a in devices:
                if a is b or not a.gdpa_queries:
                    continue
                a_end = a.destroyed.seq if a.destroyed else end
                if a.created.seq < b_end and b.created.seq < a_end:
                    other_driver = a.driver and b.driver and a.driver != b.driver
                    self.add(
                        ("device-pointers-shared", proc.pid, b.handle),
                        "device-pointers-shared",
                        f"device {hex(b.handle)} was alive together with device {hex(a.handle)} "
                        f"but vkGetDeviceProcAddr was only asked for {hex(a.handle)} "
                        f"({a.gdpa_queries} queries): {hex(a.handle)}'s pointers are likely used "
                        f"with {hex(b.handle)}"
                        + (
                            f" although they belong to different drivers ({short(a.driver)}, "
                            f"{short(b.driver)})"
                            if other_driver
                            else ""
                        ),
                        severity=Severity.FAIL if other_driver else None,
                        evidence={
                            "pid": proc.pid,
                            "queried_device": hex(a.handle),
                            "other_device": hex(b.handle),
                            "drivers": [a.driver, b.driver],
                            "timeline": self.timeline([a.created, b.created]),
                        },
                    )
                    break
