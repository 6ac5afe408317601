"""Generate the report's JSON Schema: the envelope below, and the component records from
``vkdoctor.report.records`` through the same codec that writes and reads them.

The committed copies (``vkdoctor/report/report.schema.json`` and ``reports/report.schema.json``)
are this module's output; a test fails when they differ.  Regenerate after changing a record:

    python -m vkdoctor.report.schema_gen --write
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vkdoctor.report import codec
from vkdoctor.report.model import READABLE_SCHEMA_VERSIONS, SCHEMA_VERSION
from vkdoctor.report.records import DeviceRecord, DriverRecord, LayerRecord, LoaderRecord

_CODE = {"$ref": "#/$defs/code"}
_STATUSES = ["ok", "info", "warn", "fail", "skipped", "timeout", "crashed"]
_TIMESTAMP = r"^$|^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"

ENVELOPE_DEFS: dict[str, Any] = {
    "code": {
        "description": "Kebab-case identifiers (probe ids, finding codes); never renamed once released.",
        "type": "string",
        "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$",
    },
    "probe": {
        "type": "object",
        "required": ["id", "title", "status", "blocked_by", "duration_s", "findings", "facts"],
        "properties": {
            "id": _CODE,
            "title": {"type": "string"},
            "status": {"enum": _STATUSES},
            "blocked_by": {
                "description": "The required probe whose failure skipped this one.",
                "anyOf": [{"type": "null"}, _CODE],
            },
            "duration_s": {"type": "number", "minimum": 0, "x-vkdoctor-volatile": True},
            "findings": {"type": "array", "items": {"$ref": "#/$defs/finding"}},
            "facts": {
                "description": "What the probe established; free-form per probe.",
                "type": "object",
            },
            "loader_log": {
                "description": "This probe's loader-log lines: indices into the report's "
                "loader_log (schema 2), or the lines themselves (schema 1).",
                "type": "array",
                "items": {
                    "anyOf": [{"type": "integer", "minimum": 0}, {"$ref": "#/$defs/log_entry"}]
                },
            },
        },
    },
    "finding": {
        "type": "object",
        "required": ["code", "severity", "summary", "detail", "evidence", "remedy"],
        "properties": {
            "id": {
                "description": "Unique in the report (probe id and position); absent in schema 1.",
                "type": "string",
            },
            "causes": {
                "description": "Ids of the findings this one explains (its symptoms).",
                "type": "array",
                "items": {"type": "string"},
            },
            "folded": {
                "description": "How many findings of this code, beyond the examples before it, "
                "this one stands for (absent: only itself).",
                "type": "integer",
                "minimum": 1,
            },
            "code": _CODE,
            "severity": {"enum": ["info", "warn", "fail"]},
            "summary": {"type": "string", "minLength": 1},
            "detail": {"type": "string"},
            "evidence": {"type": "object"},
            "remedy": {
                "type": ["object", "null"],
                "required": ["text", "commands"],
                "properties": {
                    "text": {"type": "string"},
                    "commands": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
    "log_entry": {
        "type": "object",
        "required": ["level", "categories", "message", "source", "classification"],
        "properties": {
            "level": {"enum": ["error", "warn", "info", "debug", "perf", "other"]},
            "categories": {"type": "array", "items": {"type": "string"}},
            "message": {"type": "string"},
            "source": {"type": "string"},
            "classification": {"type": "string"},
            "shown": {
                "description": "Whether renderers show this line (errors and warnings, de-duplicated); "
                "absent in schema 1, where every report-level line was shown.",
                "type": "boolean",
            },
        },
    },
}


def _required_only_without_defaults(definitions: dict[str, Any]) -> None:
    """Fields with defaults may be absent (reports of schema 1 lack them); the rest are required."""
    import dataclasses

    from vkdoctor.report import records

    for name, node in definitions.items():
        cls = getattr(records, name, None)
        if cls is None or not dataclasses.is_dataclass(cls):
            continue
        node["required"] = [
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]


def generated_schema() -> dict[str, Any]:
    records: dict[str, Any] = {}
    loader = codec.json_schema(LoaderRecord, records)
    driver = codec.json_schema(DriverRecord, records)
    layer = codec.json_schema(LayerRecord, records)
    device = codec.json_schema(DeviceRecord, records)
    _required_only_without_defaults(records)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:vkdoctor:report:{SCHEMA_VERSION}",
        "title": f"vkdoctor report, schema version {SCHEMA_VERSION}",
        "description": "The JSON report written by `vkdoctor check --json` and `vkdoctor kernels "
        "--json`. Generated from vkdoctor/report/records.py by vkdoctor.report.schema_gen. Within "
        "a schema version changes are additive only: readers must ignore keys they do not know; "
        "readers accept every released version (reports/README.md lists the differences). Times "
        "vary between two runs on the same machine; they live in fields marked "
        "x-vkdoctor-volatile and, inside free-form facts, in keys named with their unit "
        "(x-vkdoctor-volatile-keys). Everything else is deterministic (keys sorted, collections "
        "in a defined order).",
        "x-vkdoctor-volatile-keys": "_(s|ms|us|ns)$",
        "type": "object",
        "required": [
            "schema_version",
            "tool",
            "created",
            "summary",
            "environment",
            "probes",
            "loader_log",
            "devices",
            "drivers",
            "layers",
        ],
        "properties": {
            "schema_version": {
                "description": "Bumped only for incompatible changes; a reader refuses versions "
                "newer than its own.",
                "enum": list(READABLE_SCHEMA_VERSIONS),
            },
            "tool": {
                "type": "object",
                "required": ["name", "version"],
                "properties": {"name": {"const": "vkdoctor"}, "version": {"type": "string"}},
            },
            "created": {
                "description": "UTC time of the run, ISO 8601; empty in a partial report saved "
                "after an internal error.",
                "type": "string",
                "pattern": _TIMESTAMP,
                "x-vkdoctor-volatile": True,
            },
            "summary": {
                "description": "Derived from probes: status is fail if any probe failed, timed "
                "out or crashed, else warn if any warned, else ok.",
                "type": "object",
                "required": ["status", "counts"],
                "properties": {
                    "status": {"enum": ["ok", "warn", "fail"]},
                    "counts": {
                        "type": "object",
                        "required": ["probes", "findings"],
                        "properties": {
                            "probes": {
                                "type": "object",
                                "required": _STATUSES,
                                "additionalProperties": {"type": "integer", "minimum": 0},
                            },
                            "findings": {
                                "type": "object",
                                "required": ["info", "warn", "fail"],
                                "additionalProperties": {"type": "integer", "minimum": 0},
                            },
                        },
                    },
                },
            },
            "environment": {
                "description": "Facts about the machine (OS, kernel, identity, sandbox, GPUs, "
                "device nodes, NVIDIA); free-form beyond the keys below.",
                "type": "object",
                "properties": {
                    "redaction": {
                        "description": "Present when home directory, user, host and machine ids "
                        "were replaced by placeholders.",
                        "type": "object",
                        "required": ["applied"],
                        "properties": {
                            "applied": {"type": "boolean"},
                            "placeholders": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            },
                        },
                    }
                },
            },
            "probes": {
                "description": "In pipeline order.",
                "type": "array",
                "items": {"$ref": "#/$defs/probe"},
            },
            "loader_log": {
                "description": "Every distinct loader-log line of every probe, in the order "
                "first seen; probes refer to lines by index.",
                "type": "array",
                "items": {"$ref": "#/$defs/log_entry"},
            },
            "verdict": {
                "description": "One line: what works, or the first root cause and its fix "
                "(absent in schema 1).",
                "type": "string",
            },
            "root_causes": {
                "description": "Ids of the findings no other finding explains, most important "
                "first.",
                "type": "array",
                "items": {"type": "string"},
            },
            "loader": {
                "description": "The libvulkan applications get (absent in schema 1).",
                "anyOf": [loader, {"type": "null"}],
            },
            "devices": {"description": "Physical devices.", "type": "array", "items": device},
            "drivers": {
                "description": "Driver manifests in the loader's search order, then those an "
                "override variable hides.",
                "type": "array",
                "items": driver,
            },
            "layers": {
                "description": "Layer manifests in the loader's search order.",
                "type": "array",
                "items": layer,
            },
        },
        "$defs": {**ENVELOPE_DEFS, **dict(sorted(records.items()))},
    }


def schema_text() -> str:
    return json.dumps(generated_schema(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite both committed copies")
    args = parser.parse_args(argv)
    text = schema_text()
    if not args.write:
        sys.stdout.write(text)
        return 0
    root = Path(__file__).resolve().parents[2]
    for target in (
        root / "vkdoctor" / "report" / "report.schema.json",
        root / "reports" / "report.schema.json",
    ):
        target.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
