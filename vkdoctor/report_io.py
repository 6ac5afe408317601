"""Writing and reading report files: deterministic JSON, atomic replacement, clear errors."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from vkdoctor.model import SCHEMA_VERSION, Report


class ReportError(Exception):
    """A report file that cannot be used, with a message meant for the user."""


def dumps(report: Report | dict[str, Any]) -> str:
    data = report.to_dict() if isinstance(report, Report) else report
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"


def write_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write via a temp file in the same directory and rename: readers never see half a file."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return target


def write_report(report: Report | dict[str, Any], destination: str) -> None:
    text = dumps(report)
    if destination == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    write_atomic(destination, text)


def load_report_dict(path: str) -> dict[str, Any]:
    try:
        raw = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ReportError(f"{path}: is a directory, not a report") from None
    except PermissionError:
        raise ReportError(f"{path}: permission denied") from None
    except UnicodeDecodeError:
        raise ReportError(f"{path}: not a text file, so not a vkdoctor report") from None
    except OSError as exc:
        raise ReportError(f"{path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        hint = " (the file looks truncated)" if exc.pos >= len(raw.rstrip()) else ""
        raise ReportError(f"{path}: not valid JSON at {where}: {exc.msg}{hint}") from None
    if not isinstance(data, dict) or (data.get("tool") or {}).get("name") != "vkdoctor":
        raise ReportError(f"{path}: valid JSON, but not a vkdoctor report")
    version = data.get("schema_version")
    if not isinstance(version, int):
        raise ReportError(f"{path}: a vkdoctor report without a schema_version")
    if version > SCHEMA_VERSION:
        raise ReportError(
            f"{path}: written by a newer vkdoctor (report schema {version}; this vkdoctor reads "
            f"schema {SCHEMA_VERSION}); upgrade vkdoctor to read it"
        )
    return data


def load_report(path: str) -> Report:
    data = load_report_dict(path)
    try:
        return Report.from_dict(data)
    except (KeyError, ValueError, TypeError) as exc:
        raise ReportError(f"{path}: a vkdoctor report with invalid content ({exc!r})") from None


def partial_report_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    directory = Path(base) / "vkdoctor"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".write-test"
        probe.touch()
        probe.unlink()
    except OSError:
        directory = Path(tempfile.gettempdir())
    return directory / f"vkdoctor-partial-{os.getpid()}.json"
