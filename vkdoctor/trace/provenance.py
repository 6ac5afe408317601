"""Where each Vulkan function pointer of the program came from.

Every pointer the program obtains is recorded with how it got it (dlsym of libvulkan or of a
driver, a link-time binding, vkGetInstanceProcAddr with NULL or an instance,
vkGetDeviceProcAddr) and what came back, NULL included.  A crash is then attributed to a
pointer by value (the call site's target) or, for calls through NULL, by what the program
could have called.
"""

from __future__ import annotations

from dataclasses import field

from vkdoctor.record import frozen, mutable
from vkdoctor.trace.events import Event

HOW_DLSYM = "dlsym"
HOW_LINKED = "linked"
HOW_GIPA = "vkGetInstanceProcAddr"
HOW_GDPA = "vkGetDeviceProcAddr"


def short_path(path: str | None) -> str:
    """The file name of a library path, ``?`` when unknown (trace prose names libraries so)."""
    return (path or "?").rsplit("/", 1)[-1] or "?"


def _hexs(value: int | None) -> str:
    return "NULL" if not value else hex(value)


@frozen
class PointerRecord:
    name: str
    value: int  # 0: the query answered NULL
    how: str
    event: Event
    handle: int | None = None  # the instance / device passed to vkGet*ProcAddr
    source: str | None = None  # the library dlsym or the binding took it from

    @property
    def is_trampoline_export(self) -> bool:
        """An export of libvulkan taken by name: a loader trampoline."""
        return self.how in (HOW_DLSYM, HOW_LINKED) and bool(self.value)

    def how_text(self) -> str:
        if self.how == HOW_DLSYM:
            return f'dlsym({short_path(self.source)}, "{self.name}")'
        if self.how == HOW_LINKED:
            return f"linking against {short_path(self.source)}"
        return f'{self.how}({_hexs(self.handle)}, "{self.name}")'

    def describe(self) -> str:
        return f"{self.how_text()} -> {_hexs(self.value)} at event {self.event.seq}"

    def to_dict(self) -> dict[str, object]:
        return {
            "command": self.name,
            "how": self.how,
            "handle": _hexs(self.handle) if self.how in (HOW_GIPA, HOW_GDPA) else None,
            "source": self.source,
            "returned": _hexs(self.value),
            "event": self.event.seq,
        }


@mutable
class Provenance:
    """The pointers one process obtained, in the order it obtained them."""

    records: list[PointerRecord] = field(default_factory=list)
    _by_value: dict[int, list[PointerRecord]] = field(default_factory=dict)

    def add(self, record: PointerRecord) -> None:
        self.records.append(record)
        if record.value:
            self._by_value.setdefault(record.value, []).append(record)

    def by_value(self, value: int, before: int) -> PointerRecord | None:
        """The latest record that handed out ``value`` before event ``before``."""
        matches = [r for r in self._by_value.get(value, ()) if r.event.seq < before]
        return matches[-1] if matches else None

    def nulls(self, before: int) -> list[PointerRecord]:
        return [r for r in self.records if not r.value and r.event.seq < before]

    def exports(self, before: int) -> list[PointerRecord]:
        return [r for r in self.records if r.is_trampoline_export and r.event.seq < before]

    def copy(self) -> Provenance:
        clone = Provenance()
        for record in self.records:
            clone.add(record)
        return clone
