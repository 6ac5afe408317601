"""Fatal signals: which call crashed, through which pointer, called from where (crash.py does
the attribution; this turns it into findings)."""

from __future__ import annotations

from typing import Any

from vkdoctor.loader import vkversion
from vkdoctor.report import shell
from vkdoctor.trace.crash import Attribution, record_how
from vkdoctor.trace.events import Event, parse_addr
from vkdoctor.trace.launch import signal_name
from vkdoctor.trace.provenance import (
    HOW_GDPA,
    HOW_GIPA,
    PointerRecord,
)
from vkdoctor.trace.replay import Replay
from vkdoctor.trace.state import (
    _MAX_NAMES,
    Lib,
    Proc,
    VkObject,
    canonical,
    hexs,
    short,
)


class CrashRules(Replay):
    def conclude_signals(self, proc: Proc) -> None:
        for e in proc.signals:
            ip = e.addr("ip")
            # si_code <= 0: sent with kill()/raise(); si_addr then holds no address.
            code = e.get("code")
            addr = e.addr("addr") if isinstance(code, int) and code > 0 else None
            sig = e.integer("sig")
            name = signal_name(sig) if sig else "a fatal signal"
            if self.crash_on_destroyed_handle(proc, e, name):
                continue
            libs = proc.signal_libs.get(e.seq) or [(lib, False) for lib in proc.live_libs.values()]
            objects: dict[int, VkObject] = {**proc.dead, **proc.objects}
            att = self.crash.attribute(e, libs, proc.provenance, objects)
            own = canonical(self.ctx.own_layer) if self.ctx.own_layer else None
            former = proc.former_lib_at(ip, code_only=False)
            touched = False
            if former is None:
                former = proc.former_lib_at(addr, code_only=False)
                touched = former is not None
            if former is not None and former.canon == own:
                former = None  # our layer stays mapped (RTLD_NODELETE); never the culprit
            if former is not None and former.closed is not None:
                self.add_call_after_unload(proc, e, att, former, name, ip, addr, touched)
                continue
            if (not ip or ip < 4096) and self.add_null_call(proc, e, att, name, ip):
                continue
            if self.add_not_enabled_call(proc, e, att, name):
                continue
            self.add_crash(proc, e, name, ip, addr, att)

    def _crash_evidence(self, att: Attribution) -> dict[str, Any]:
        return {
            "command": att.command,
            "call_site": att.call_site.call_site if att.call_site else None,
            "pointer": att.pointer.to_dict() if att.pointer else None,
            "candidates": [c.to_dict() for c in att.candidates[:_MAX_NAMES]],
            "backtrace": att.backtrace(),
        }

    def _from_text(self, att: Attribution, lead: str = ", called from") -> str:
        return f"{lead} {att.call_site.call_site}" if att.call_site else ""

    def add_call_after_unload(
        self,
        proc: Proc,
        e: Event,
        att: Attribution,
        former: Lib,
        name: str,
        ip: int | None,
        addr: int | None,
        touched: bool,
    ) -> None:
        closed = former.closed
        assert closed is not None
        by = closed.get("by")
        by_text = f" from {short(by)}" if by else ""
        verb = "touched memory of" if touched else "called into"
        where = addr if touched else ip
        offset = (where - former.base) if where is not None else None
        command = att.command
        if not touched and not command and att.frames and att.frames[0].function:
            command = att.frames[0].function
        what = f"{command} in " if command and not touched else ""
        pointer = f" (pointer {record_how(att.pointer)})" if att.pointer else ""
        self.explained_signals.add(e.seq)
        self.add(
            ("call-after-unload", proc.pid, e.seq),
            "call-after-unload",
            f"the program {verb} {what}{short(former.path)} after dlclose{by_text} at event "
            f"{closed.seq}{self._from_text(att)}{pointer} ({name} at {hexs(where)}, "
            f"{short(former.path)}+{hex(offset) if offset is not None else '?'})",
            evidence={
                "pid": proc.pid,
                "signal": name,
                "ip": hexs(ip),
                "address": hexs(addr),
                "library": former.path,
                "unloaded_at_event": closed.seq,
                "unloaded_by": by,
                "crash_event": e.seq,
                "stack": e.items("stack"),
                **self._crash_evidence(att),
                "command": command,
                "timeline": self.timeline([former.opened, closed, e]),
            },
        )

    def add_null_call(
        self, proc: Proc, e: Event, att: Attribution, name: str, ip: int | None
    ) -> bool:
        """A jump to (near) address 0: through a NULL the program was given, or through a
        loader trampoline whose dispatch slot is empty on this device."""
        pointer = att.pointer
        exports = [c for c in att.candidates if c.is_trampoline_export]
        if (pointer is not None and pointer.is_trampoline_export) or (
            pointer is None and exports and len({c.name for c in att.candidates}) == 1
        ):
            record = pointer or exports[-1]
            self.add_unsupported_call(proc, e, att, record, name)
            return True
        nulls = [c for c in att.candidates if not c.value]
        if pointer is not None and not pointer.value:
            nulls = [pointer]
        if not nulls:
            nulls = [
                PointerRecord(
                    n.text("name"), 0, HOW_GIPA if n.ev == "gipa" else HOW_GDPA, n, n.addr("h")
                )
                for n in proc.null_results
                if n.seq < e.seq
            ][-5:]
        if not nulls:
            return False
        exact = len({n.name for n in nulls}) == 1
        called = nulls[-1]
        if exact:
            text = (
                f"the program called {called.name} through a NULL pointer ({name} at "
                f"{ip or 0:#x}){self._from_text(att)}; {called.how_text()} had returned NULL at "
                f"event {called.event.seq}"
            )
        else:
            text = (
                f"the program jumped to address {ip or 0:#x} ({name}){self._from_text(att)}, "
                f"through one of the NULL pointers it was given: "
                + ", ".join(n.how_text() for n in nulls[-5:])
            )
        self.explained_signals.add(e.seq)
        self.add(
            ("null-proc-addr-called", proc.pid, e.seq),
            "null-proc-addr-called",
            text,
            evidence={
                "pid": proc.pid,
                "signal": name,
                "ip": hexs(ip),
                "null_results": [f'{n.how}("{n.name}")' for n in nulls[-5:]],
                "crash_event": e.seq,
                **self._crash_evidence(att),
                "command": called.name if exact else None,
                "timeline": self.timeline([*(n.event for n in nulls[-5:]), e]),
            },
        )
        return True

    def add_unsupported_call(
        self, proc: Proc, e: Event, att: Attribution, record: PointerRecord, name: str
    ) -> None:
        command = record.name
        device = att.device
        device_text = f"device {hex(device.handle)}" if device is not None else "the device"
        fix, commands = _unsupported_fix(command)
        self.explained_signals.add(e.seq)
        self.add(
            ("unsupported-command-called", proc.pid, e.seq),
            "unsupported-command-called",
            f"the program called {command}{self._from_text(att, ' from')}, {record_how(record)}, on "
            f"{device_text}, which does not support it (vkGetDeviceProcAddr returns NULL for "
            f"{command}): the loader's trampoline jumped through an empty dispatch slot to "
            f"address 0 ({name})",
            evidence={
                "pid": proc.pid,
                "signal": name,
                "ip": hexs(e.addr("ip")),
                "device": hex(device.handle) if device is not None else None,
                "device_supports_command": False,
                "crash_event": e.seq,
                **self._crash_evidence(att),
                "pointer": record.to_dict(),
                "command": command,
                "timeline": self.timeline(
                    [record.event, *(device.created for device in [device] if device), e]
                ),
            },
            remedy=fix,
            commands=commands,
        )

    def add_not_enabled_call(self, proc: Proc, e: Event, att: Attribution, name: str) -> bool:
        """A crash in the driver after the program called a loader export (dlsym) of a core
        command newer than the instance's apiVersion, with no extension providing it enabled.
        Lenient drivers fill the dispatch slot anyway (the NVIDIA driver does), so the call
        reaches code for a feature the device was never asked for."""
        record = att.pointer
        if record is None or not record.is_trampoline_export:
            return False
        devices = [o for o in {**proc.dead, **proc.objects}.values() if o.kind == "device"]
        device = att.device or (devices[0] if len(devices) == 1 else None)
        if device is None:
            return False
        instance = proc.objects.get(device.instance or 0) or proc.dead.get(device.instance or 0)
        api = instance.created.integer("api") if instance is not None else None
        core, providers = _command_requirements(record.name)
        if not api or core is None:
            return False
        asked = vkversion.decode(api)[:2]
        enabled = {x for x in device.created.items("exts") if isinstance(x, str)}
        if asked >= core or enabled & providers:
            return False
        fix, commands = _unsupported_fix(record.name)
        self.explained_signals.add(e.seq)
        self.add(
            ("unsupported-command-called", proc.pid, e.seq),
            "unsupported-command-called",
            f"the program called {record.name}{self._from_text(att, ' from')}, "
            f"{record_how(record)}, on device {hex(device.handle)}, whose instance asked for "
            f"Vulkan {asked[0]}.{asked[1]}: {record.name} is core in {core[0]}.{core[1]} and no "
            f"extension providing it is enabled; the driver crashed inside it ({name})",
            evidence={
                "pid": proc.pid,
                "signal": name,
                "ip": hexs(e.addr("ip")),
                "device": hex(device.handle),
                "instance_api_version": f"{asked[0]}.{asked[1]}",
                "command_core_version": f"{core[0]}.{core[1]}",
                "device_supports_command": False,
                "crash_event": e.seq,
                **self._crash_evidence(att),
                "pointer": record.to_dict(),
                "command": record.name,
                "timeline": self.timeline([record.event, device.created, e]),
            },
            remedy=fix,
            commands=commands,
        )
        return True

    def crash_on_destroyed_handle(self, proc: Proc, e: Event, name: str) -> bool:
        """A crash inside vkGet*ProcAddr called with a destroyed handle: the audit module
        records the query after it returns, so the crash record is all that is left of it."""
        inside = e.mapping("inside")
        handle = parse_addr(inside.get("h"))
        kind = {"vkGetInstanceProcAddr": "instance", "vkGetDeviceProcAddr": "device"}.get(
            str(inside.get("fn"))
        )
        dead = proc.dead.get(handle) if handle else None
        if kind is None or dead is None or dead.kind != kind or handle in proc.objects:
            return False
        self.explained_signals.add(e.seq)
        destroyed = dead.destroyed.seq if dead.destroyed else "?"
        self.add(
            ("use-after-destroy", proc.pid, handle, e.seq),
            "use-after-destroy",
            f'{inside.get("fn")}(…, "{inside.get("name")}") was called with '
            f"Vk{kind.capitalize()} {hex(handle)}, destroyed at event {destroyed}, and "
            f"crashed ({name}, event {e.seq})",
            evidence={
                "pid": proc.pid,
                "handle": hex(handle),
                "kind": kind,
                "signal": name,
                "crash_event": e.seq,
                "timeline": self.timeline([dead.created, dead.destroyed, e]),
            },
        )
        return True

    def add_crash(
        self,
        proc: Proc,
        e: Event,
        name: str,
        ip: int | None,
        addr: int | None,
        att: Attribution | None = None,
    ) -> None:
        # Where: the innermost frame that is not vkdoctor's own layer or audit module.
        frames = att.frames if att is not None else []
        culprit = next((f for f in frames if f.role != "vkdoctor"), None)
        if culprit is not None and culprit.path:
            where = culprit.describe()
        else:
            lib = proc.lib_at(ip)
            where = f"{short(lib.path)}+{hex(ip - lib.base)}" if lib and ip else hexs(ip)
        lib = proc.lib_at(culprit.addr if culprit is not None else ip)
        inside = e.mapping("inside")
        inside_text = (
            f' inside {inside.get("fn")}({inside.get("h")}, "{inside.get("name")}")'
            if inside
            else ""
        )
        command_text = ""
        if att is not None and att.command and not inside:
            command_text = f" while executing {att.command}"
            if att.pointer is not None:
                command_text += f" (its pointer {record_how(att.pointer)})"
        code = e.get("code")
        if isinstance(code, int) and code <= 0:
            cause = f"sent by kill() or raise(), event {e.seq}"
        else:
            cause = f"faulting address {hexs(addr)}, event {e.seq}"
        self.explained_signals.add(e.seq)
        self.add(
            ("program-crashed", proc.pid, e.seq),
            "program-crashed",
            f"process {proc.pid} died from {name} at {where}{inside_text}{command_text}"
            f"{self._from_text(att) if att is not None else ''} ({cause})",
            evidence={
                "pid": proc.pid,
                "signal": name,
                "ip": hexs(ip),
                "address": hexs(addr),
                "ip_object": lib.path if lib else e.get("ip_obj"),
                "stack": e.items("stack"),
                "inside": inside or None,
                **(self._crash_evidence(att) if att is not None else {}),
                "timeline": self.timeline([e]),
            },
            commands=(shell.command("gdb", "--args", *self.ctx.outcome.argv),)
            if self.ctx.outcome and self.ctx.outcome.argv
            else (),
        )


def _command_requirements(command: str) -> tuple[tuple[int, int] | None, set[str]]:
    """(core version, extensions providing it or an alias), from the registry."""
    try:
        from vkdoctor.loader.registry import default_table

        table = default_table()
        cmd = table.get(command)
        if cmd is None or cmd.version is None:
            return None, set()
        extensions = set()
        for alias in (command, *table.aliases_of(command)):
            other = table.get(alias)
            extensions |= {p.extension for p in (other.providers if other is not None else ())}
        return (cmd.version[0], cmd.version[1]), extensions
    except Exception:  # without the registry this rule stays silent
        return None, set()


def _unsupported_fix(command: str) -> tuple[str, tuple[str, ...]]:
    """The remedy for calling ``command`` on a device without it, from the registry: the
    Vulkan version that made it core and the extensions that provide it."""
    version = None
    extensions: list[str] = []
    try:
        from vkdoctor.loader.registry import default_table

        table = default_table()
        cmd = table.get(command)
        if cmd is not None:
            version = cmd.version_name
            for alias in (command, *table.aliases_of(command)):
                other = table.get(alias)
                for provider in other.providers if other is not None else ():
                    extensions.append(f"{provider.extension} ({alias})")
    except Exception:  # the registry only sharpens the remedy text
        pass
    parts = [
        f'Load {command} with vkGetDeviceProcAddr(device, "{command}") and check it for NULL '
        "instead of taking it from libvulkan by name."
    ]
    if version:
        number = version.removeprefix("VK_VERSION_").replace("_", ".")
        parts.append(
            f"{command} is core in Vulkan {number}: create the instance with "
            f"VkApplicationInfo.apiVersion >= VK_API_VERSION_{version.removeprefix('VK_VERSION_')}"
            " on a device that supports it, and enable the features it needs"
        )
    if extensions:
        parts.append(
            ("or e" if version else "E")
            + "nable "
            + ", ".join(sorted(set(extensions))[:3])
            + " at vkCreateDevice, with its feature"
        )
    return " ".join(parts[:1]) + (" " + "; ".join(parts[1:]) + "." if parts[1:] else ""), ()
