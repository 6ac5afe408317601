"""Writing and reading report files: deterministic JSON, atomic replacement, clear errors.

Every report written here has its secrets masked first (``redact.scrub_secrets``), whatever
path produced it.  Reading never raises anything but ``ReportError``, whose message says what is
wrong with the file in words (truncated, not JSON, not a report, from a newer vkdoctor).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from vkdoctor.report.model import SCHEMA_VERSION, Report

# Reports are tens of kilobytes; refusing huge files keeps a wrong argument from eating memory.
MAX_REPORT_BYTES = 64 * 1024 * 1024


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
            # mkstemp creates 0600; a report should get the permissions any new file would.
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(handle.fileno(), 0o666 & ~umask)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)
    return target


def _fsync_directory(directory: Path) -> None:
    # Without this a power cut right after the rename can still lose the new name.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text(text: str, destination: str) -> None:
    """Write ``text`` to a file atomically, or to stdout for ``-``."""
    if destination == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    write_atomic(destination, text)


def write_report(report: Report | dict[str, Any], destination: str) -> None:
    from vkdoctor.report.redact import scrub_secrets

    data = report.to_dict() if isinstance(report, Report) else report
    text = dumps(scrub_secrets(data))
    if destination == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    write_atomic(destination, text)


def load_report_dict(path: str) -> dict[str, Any]:
    try:
        if path == "-":
            raw = sys.stdin.read()
        else:
            if Path(path).stat().st_size > MAX_REPORT_BYTES:
                raise ReportError(f"{path}: over {MAX_REPORT_BYTES >> 20} MiB, not a report")
            raw = Path(path).read_text(encoding="utf-8-sig")
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
    if not raw.strip():
        raise ReportError(f"{path}: the file is empty (an interrupted or failed write?)")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        body = raw.strip()
        # A report is one object: one that starts but never closes was cut off mid-write.
        cut = exc.pos >= len(raw.rstrip()) or (body.startswith("{") and not body.endswith("}"))
        hint = " (the file looks truncated)" if cut else ""
        raise ReportError(f"{path}: not valid JSON at {where}: {exc.msg}{hint}") from None
    except RecursionError:
        raise ReportError(f"{path}: JSON nested too deeply to be a vkdoctor report") from None
    tool = data.get("tool") if isinstance(data, dict) else None
    if not isinstance(tool, dict) or tool.get("name") != "vkdoctor":
        raise ReportError(f"{path}: valid JSON, but not a vkdoctor report")
    version = data.get("schema_version")
    if type(version) is not int:
        raise ReportError(f"{path}: a vkdoctor report without a valid schema_version")
    if version > SCHEMA_VERSION:
        raise ReportError(
            f"{path}: written by a newer vkdoctor (report schema {version}; this vkdoctor reads "
            f"schema {SCHEMA_VERSION}); upgrade vkdoctor to read it"
        )
    if version < 1:
        raise ReportError(f"{path}: unknown report schema version {version}")
    return data


def load_report(path: str) -> Report:
    data = load_report_dict(path)
    try:
        return Report.from_dict(data)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise ReportError(f"{path}: a vkdoctor report with invalid content ({exc!r})") from None


def load_checked_report(path: str) -> tuple[dict[str, Any], Report]:
    """The report's dict and model, refused with the schema's messages when it does not
    conform, so renderers never meet a shape they do not expect."""
    from vkdoctor.report.schema import validate

    data = load_report_dict(path)
    errors = validate(data)
    if errors:
        shown = "\n".join(f"  {e}" for e in errors[:10])
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise ReportError(
            f"{path}: not a valid vkdoctor report (schema {SCHEMA_VERSION}):\n{shown}{more}\n"
            f"`vkdoctor report validate {path}` lists every problem"
        )
    try:
        return data, Report.from_dict(data)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
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
