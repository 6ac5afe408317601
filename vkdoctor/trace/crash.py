"""Which call crashed: the audit module's crash record, symbolized and tied to pointer provenance.

The record (``signal`` event) holds the instruction pointer, the registers, the exact return
address when the program jumped somewhere with no code (NULL, an unloaded library), the decoded
indirect call at that return address with its target, and a bounded list of return addresses
found on the stack.  From that and the replayed state this module answers:

* the frames, symbolized from the libraries mapped at the time of the crash (and the former
  mappings of unloaded ones), with file:line where the program has DWARF;
* the program's call site: the first frame in the program's own code.  Frames in vkdoctor's
  layer and audit module are never it, nor the culprit;
* the pointer the program called and how it got it, and the Vulkan command that was executing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import field
from typing import Any, Protocol

from vkdoctor.record import frozen, mutable
from vkdoctor.trace.events import Event, parse_addr
from vkdoctor.trace.provenance import (
    HOW_GDPA,
    HOW_GIPA,
    PointerRecord,
    Provenance,
    short_path,
)
from vkdoctor.trace.symbolize import symbolize

ROLE_OWN = "vkdoctor"
ROLE_PROGRAM = "program"
ROLE_SYSTEM = "system"

_SYSTEM = re.compile(
    r"^(ld-linux|ld64|libc\.so|libm\.so|libdl\.so|libpthread\.so|libgcc_s|libstdc\+\+|"
    r"libffi|linux-vdso)"
)
# vkdoctor's own layer functions and the commands they stand for: a frame in them is the
# command passing through the trace layer, never the bug.
_OWN_LAYER_COMMANDS = {
    "create_instance": "vkCreateInstance",
    "destroy_instance": "vkDestroyInstance",
    "enumerate_physical_devices": "vkEnumeratePhysicalDevices",
    "create_device": "vkCreateDevice",
    "destroy_device": "vkDestroyDevice",
    "layer_gipa": "vkGetInstanceProcAddr",
    "layer_gdpa": "vkGetDeviceProcAddr",
}
_MAX_FRAMES = 16


class LibLike(Protocol):
    path: str
    canon: str
    base: int

    def contains(self, addr: int | None, *, code_only: bool = False) -> bool: ...


class ObjectLike(Protocol):
    kind: str
    handle: int
    unsupported: frozenset[str] | None


@frozen
class Frame:
    addr: int
    path: str | None = None
    role: str = ROLE_SYSTEM
    offset: int | None = None  # address - load bias: what readelf/addr2line take
    function: str | None = None
    source: str | None = None  # file:line
    unloaded: bool = False

    def describe(self) -> str:
        where = (
            f"{short_path(self.path)}+{self.offset:#x}"
            if self.path and self.offset is not None
            else hex(self.addr)
        )
        parts = [where, *([self.source] if self.source else [])]
        if self.unloaded:
            parts.append("unloaded")
        if self.function:
            return f"{self.function} ({', '.join(parts)})"
        return parts[0] + (f" ({', '.join(parts[1:])})" if parts[1:] else "")

    @property
    def call_site(self) -> str:
        """How the program's caller is named in a summary: function and file:line."""
        name = self.function or f"{short_path(self.path)}+{self.offset or 0:#x}"
        return f"{name}() at {self.source}" if self.source else f"{name}()"


@mutable
class Attribution:
    frames: list[Frame]
    call_site: Frame | None = None
    command: str | None = None  # the Vulkan command executing when it crashed
    pointer: PointerRecord | None = None  # the pointer the program called, when known exactly
    candidates: list[PointerRecord] = field(default_factory=list)  # when only narrowed down
    device: ObjectLike | None = None  # the VkDevice passed as first argument
    first_arg: int | None = None
    call: dict[str, Any] = field(default_factory=dict)

    def backtrace(self) -> list[str]:
        return [f"#{i} {f.describe()}" for i, f in enumerate(self.frames[:_MAX_FRAMES])]

    def unsupported_by_device(self, name: str) -> bool:
        unsupported = self.device.unsupported if self.device is not None else None
        return bool(unsupported) and name in unsupported  # type: ignore[operator]


@functools.lru_cache(maxsize=1)
def _dispatch_types() -> Mapping[str, str | None]:
    try:
        from vkdoctor.loader.registry import default_table

        return {cmd.name: cmd.dispatch_type for cmd in default_table()}
    except Exception:  # the registry refines the match; without it every candidate stays
        return {}


def _name_tokens(symbol: str) -> str:
    return re.sub(r"[^a-z0-9]", "", symbol.lower())


class CrashAnalyzer:
    def __init__(
        self,
        role: Callable[[str | None], str],
        own_paths: Iterable[str],
    ) -> None:
        self.role = role
        self.own = {p for p in own_paths if p}

    def frame(self, addr: int, libs: list[tuple[LibLike, bool]]) -> Frame:
        """``addr`` symbolized against the objects mapped (or formerly mapped) at the crash."""
        for lib, former in libs:
            if not lib.contains(addr, code_only=True):
                continue
            role = self._role(lib)
            vaddr = addr - lib.base
            symbol, line = symbolize(lib.path, vaddr)
            return Frame(
                addr,
                lib.path,
                role,
                vaddr,
                symbol.name if symbol else None,
                str(line) if line else None,
                former,
            )
        return Frame(addr)

    def _role(self, lib: LibLike) -> str:
        if lib.canon in self.own or short_path(lib.path).startswith("libvkdoctor_audit"):
            return ROLE_OWN
        role = self.role(lib.path)
        if role != "other":
            return role
        return ROLE_SYSTEM if _SYSTEM.match(short_path(lib.path)) else ROLE_PROGRAM

    def attribute(
        self,
        e: Event,
        libs: list[tuple[LibLike, bool]],
        provenance: Provenance,
        objects: Mapping[int, ObjectLike],
    ) -> Attribution:
        ip = e.addr("ip") or 0
        ret = e.addr("ret")
        addrs = [parse_addr(a) for a in e.items("bt")]
        if not addrs:  # older records: the deduplicated stack scan
            addrs = [parse_addr(s.get("addr")) for s in e.items("stack") if isinstance(s, dict)]
        frames = [self.frame(ip, libs)] + [self.frame(a, libs) for a in addrs if a]
        # A return address is one past the call: symbolize the call instruction itself.
        frames = [frames[0]] + [self._call_frame(f, libs) for f in frames[1:]]
        att = Attribution(frames=frames, call=e.mapping("call"))
        for f in frames[1:]:
            if f.role == ROLE_PROGRAM:
                att.call_site = f
                break
        slot = parse_addr(att.call.get("slot"))
        for lib, _former in libs if slot else ():
            if lib.contains(slot):
                symbol, _line = symbolize(lib.path, slot - lib.base, with_line=False)
                if symbol is not None:
                    att.call = {**att.call, "slot_symbol": symbol.name}
                break
        regs = e.mapping("regs")
        att.first_arg = parse_addr(regs.get("rdi"))
        if att.first_arg and att.first_arg in objects:
            att.device = objects[att.first_arg] if objects[att.first_arg].kind == "device" else None
        self._pointer(att, e, ip, ret, provenance, objects)
        if att.pointer is None and att.call_site is not None:
            self._pointer_at_call_site(att, e, provenance)
        if att.command is None:
            att.command = self._command_from_frames(frames)
        return att

    def _pointer_at_call_site(self, att: Attribution, e: Event, provenance: Provenance) -> None:
        """The pointer variable the program's call site called through, when the crash came
        further down (in a driver reached through a loader trampoline's tail jump)."""
        site = att.call_site
        for call in e.items("calls"):
            if (
                not isinstance(call, dict)
                or site is None
                or parse_addr(call.get("ret")) != site.addr
            ):
                continue
            record = provenance.by_value(parse_addr(call.get("target")) or 0, e.seq)
            if record is not None:
                att.pointer = record
                att.command = att.command or record.name
            return

    def _call_frame(self, f: Frame, libs: list[tuple[LibLike, bool]]) -> Frame:
        if not f.path or f.offset is None:
            return f
        inner = self.frame(f.addr - 1, libs)
        return Frame(f.addr, f.path, f.role, f.offset, inner.function, inner.source, f.unloaded)

    def _pointer(
        self,
        att: Attribution,
        e: Event,
        ip: int,
        ret: int | None,
        provenance: Provenance,
        objects: Mapping[int, ObjectLike],
    ) -> None:
        call = att.call
        target = parse_addr(call.get("target"))
        reliable = call.get("reliable") is True or (call.get("form") == "reg" and target == ip)
        if target and reliable and call.get("form") != "direct":
            record = provenance.by_value(target, e.seq)
            if record is not None:
                att.pointer = record
                att.command = record.name
                return
        if ip >= 4096 and ret is None:
            return
        if ip >= 4096:
            # Jumped into a mapping that is gone: the pointer held that address.
            record = provenance.by_value(ip, e.seq)
            if record is not None:
                att.pointer = record
                att.command = record.name
            return
        # A jump to (near) NULL.  Either the program called a NULL it was given, or it called
        # a loader trampoline whose dispatch slot is empty on this device.
        candidates: list[PointerRecord] = []
        if not (reliable and target):  # a reliable non-NULL target is never a NULL record
            candidates += provenance.nulls(e.seq)
        if not (reliable and target == 0):
            for record in provenance.exports(e.seq):
                if (att.device is not None and att.unsupported_by_device(record.name)) or (
                    att.device is None
                    and any(
                        o.unsupported and record.name in o.unsupported
                        for o in objects.values()
                        if o.kind == "device"
                    )
                ):
                    candidates.append(record)
        candidates = self._match_first_argument(candidates, att.first_arg, objects)
        candidates = self._match_slot_name(candidates, call, e)
        names = {c.name for c in candidates}
        att.candidates = candidates
        if len(names) == 1:
            att.command = candidates[0].name
            kinds = {c.is_trampoline_export for c in candidates}
            if len(kinds) == 1:
                # The latest of them: with several records of one name, the last one wins.
                att.pointer = candidates[-1]

    def _match_first_argument(
        self, candidates: list[PointerRecord], first: int | None, objects: Mapping[int, ObjectLike]
    ) -> list[PointerRecord]:
        """Keep the commands whose first parameter fits the first argument register."""
        if len(candidates) < 2 or not first:
            return candidates
        known = objects.get(first)
        if known is not None:
            wanted = {"device": "VkDevice", "instance": "VkInstance"}.get(known.kind)
            keep = [c for c in candidates if _dispatch_types().get(c.name) == wanted]
        else:
            # Not a device or instance we saw created: a queue, command buffer, or no handle.
            keep = [
                c
                for c in candidates
                if _dispatch_types().get(c.name) not in ("VkDevice", "VkInstance")
            ]
        return keep or candidates

    def _match_slot_name(
        self, candidates: list[PointerRecord], call: Mapping[str, Any], e: Event
    ) -> list[PointerRecord]:
        """A global function-pointer variable is usually named after its command (volk names
        them exactly so): prefer candidates whose name the slot's symbol spells."""
        slot_function = call.get("slot_symbol")
        if len({c.name for c in candidates}) < 2 or not isinstance(slot_function, str):
            return candidates
        token = _name_tokens(slot_function)
        keep = [c for c in candidates if _name_tokens(c.name.removeprefix("vk")) in token]
        return keep or candidates

    def _command_from_frames(self, frames: list[Frame]) -> str | None:
        """The innermost Vulkan command on the stack: a loader export (a trampoline), or the
        command vkdoctor's layer was passing down."""
        for f in frames:
            name = (f.function or "").split(".", 1)[0]
            if f.role == ROLE_OWN and name in _OWN_LAYER_COMMANDS:
                return _OWN_LAYER_COMMANDS[name]
            if f.role == "loader" and name.startswith("vk"):
                return name
        return None


def record_how(record: PointerRecord) -> str:
    """A phrase for summaries: 'taken with dlsym from libvulkan.so.1'."""
    if record.how in (HOW_GIPA, HOW_GDPA):
        return f"returned by {record.how_text()} at event {record.event.seq}"
    if record.how == "dlsym":
        return f"taken with dlsym from {short_path(record.source)} at event {record.event.seq}"
    return f"bound by linking against {short_path(record.source)}"
