"""The trace probe's facts: libraries, objects, processes and the timeline, for the report."""

from __future__ import annotations

from typing import Any

from vkdoctor.trace.events import Event
from vkdoctor.trace.replay import Replay
from vkdoctor.trace.state import (
    _MAX_TIMELINE,
    ROLE_OTHER,
    hexs,
)


class FactsMixin(Replay):
    # -- facts --

    def facts(self) -> dict[str, Any]:
        libraries = []
        instances = []
        devices = []
        timeline_events: list[Event] = []
        for proc in self.procs.values():
            for lib in [*proc.closed_libs, *proc.live_libs.values()]:
                role = self.role(lib.path)
                if role == ROLE_OTHER:
                    continue
                libraries.append(
                    {
                        "pid": proc.pid,
                        "path": lib.path,
                        "role": role,
                        "loaded_at_event": lib.opened.seq,
                        "loaded_by": lib.opened.get("by"),
                        "unloaded_at_event": lib.closed.seq if lib.closed else None,
                        "unloaded_by": lib.closed.get("by") if lib.closed else None,
                        "at_exit": lib.at_exit,
                    }
                )
                timeline_events.append(lib.opened)
                if lib.closed is not None and not lib.at_exit:
                    timeline_events.append(lib.closed)
            for obj in proc.all_objects:
                record = {
                    "pid": proc.pid,
                    "handle": hex(obj.handle),
                    "created_at_event": obj.created.seq,
                    "destroyed_at_event": obj.destroyed.seq if obj.destroyed else None,
                }
                if obj.kind == "instance":
                    instances.append(record)
                else:
                    record["instance"] = hexs(obj.instance)
                    record["driver"] = obj.driver
                    record["gdpa_queries"] = obj.gdpa_queries
                    devices.append(record)
                timeline_events.extend(e for e in (obj.created, obj.destroyed) if e)
            timeline_events.extend(proc.signals)
            if proc.forked_at is not None:
                timeline_events.append(proc.forked_at)
        counts: dict[str, int] = {}
        for event in self.trace:
            counts[event.ev] = counts.get(event.ev, 0) + 1
        libraries.sort(key=lambda r: r["loaded_at_event"])
        timeline = self.timeline(timeline_events)
        return {
            "events": len(self.trace),
            "event_counts": dict(sorted(counts.items())),
            "processes": [
                {
                    "pid": p.pid,
                    "exe": p.exe,
                    "parent": p.parent,
                    "forked_at_event": p.forked_at.seq if p.forked_at else None,
                    "exit_seen": p.exit_event is not None,
                    "layer_loaded": p.layer_loaded,
                }
                for p in self.procs.values()
            ],
            "vulkan_libraries": libraries,
            "instances": instances,
            "devices": devices,
            "proc_addr_queries": {
                "vkGetInstanceProcAddr": counts.get("gipa", 0),
                "vkGetDeviceProcAddr": counts.get("gdpa", 0),
                "null_results": sum(len(p.null_results) for p in self.procs.values()),
            },
            "timeline": timeline[:_MAX_TIMELINE],
            "timeline_clipped": len(timeline) > _MAX_TIMELINE,
            "unanalysable_events": self.unanalysable[:50],
        }
