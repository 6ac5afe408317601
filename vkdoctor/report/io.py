"""Writing and reading report files: deterministic JSON, atomic replacement, clear errors.

Every report written here has its secrets masked first (``redact.scrub_secrets``), whatever
path produced it.  Reading never raises anything but ``ReportError``, whose message says what is
wrong with the file in words (truncated, not JSON, not a report, from a newer vkdoctor).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

from vkdoctor.report.model import SCHEMA_VERSION, Report
from vkdoctor.system.safefile import FileRefused, describe_mode, read_regular, read_stream

# Reports are tens of kilobytes; refusing huge files keeps a wrong argument from eating memory.
MAX_REPORT_BYTES = 64 * 1024 * 1024


class ReportError(Exception):
    """A report file that cannot be used, with a message meant for the user."""


# Above this many component records a report is written without indentation: nobody reads
# 10 000 driver records by eye, and indentation is a sixth of such a file (10.3 MB -> 8.9 MB).
INDENT_UP_TO_RECORDS = 1000


def dumps(report: Report | dict[str, Any]) -> str:
    data = report.to_dict() if isinstance(report, Report) else report
    records = sum(
        len(value)
        for k in ("drivers", "layers", "devices")
        if isinstance(value := data.get(k), list)
    )
    if records > INDENT_UP_TO_RECORDS:
        return json.dumps(data, sort_keys=True, default=str, separators=(",", ":")) + "\n"
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"


class OutputError(OSError):
    """An output path vkdoctor will not write to, with a one-line message for the user (an
    OSError, so every caller that reports write errors reports this one too)."""


# Paths that name a descriptor this process already holds: written there, never reopened (a
# reopened /dev/stdout redirected to a file would start writing at offset 0).
_FD_PATHS = re.compile(r"^/(?:dev/fd|proc/self/fd|proc/thread-self/fd)/(\d+)$")
_STD_NAMES = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}


def inherited_fd(path: str) -> int | None:
    """The descriptor a path like ``/dev/stdout`` (or a symlink to one) stands for, else None."""
    current = os.path.abspath(path)
    for _ in range(40):  # the kernel's own symlink hop limit
        if current in _STD_NAMES:
            return _STD_NAMES[current]
        match = _FD_PATHS.match(current)
        if match:
            return int(match[1])
        try:
            link = os.readlink(current)
        except (OSError, ValueError):  # not a link; ValueError: a NUL byte
            return None
        current = os.path.normpath(os.path.join(os.path.dirname(current), link))
    return None


def is_stdout(destination: str) -> bool:
    """Whether an output destination is the process's standard output (``-`` or an alias)."""
    return destination == "-" or inherited_fd(destination) == 1


def same_output(a: str, b: str) -> bool:
    """Whether two destinations would overwrite the same file (devices are never 'the same':
    two outputs into /dev/null destroy nothing)."""
    if is_stdout(a) and is_stdout(b):
        return True
    if "-" in (a, b):
        return False
    try:
        sa, sb = os.stat(a), os.stat(b)
    except (OSError, ValueError):
        return os.path.realpath(a) == os.path.realpath(b)
    return stat.S_ISREG(sa.st_mode) and (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def check_destination(destination: str) -> None:
    """Refuse, before any work is done, a destination that can never be written."""
    if destination == "":
        raise OutputError("an empty output path; use '-' for standard output")
    if destination == "-" or inherited_fd(destination) is not None:
        return
    try:
        mode = os.stat(destination).st_mode
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte
        reason = getattr(exc, "strerror", None) or exc
        raise OutputError(f"cannot write the report to {destination}: {reason}") from None
    if stat.S_ISDIR(mode) or stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):
        raise OutputError(
            f"{destination} is {describe_mode(mode)}; refusing to write a report onto it"
        )


def write_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write via a temp file in the same directory and rename: readers never see half a file.

    Only for regular files (or a name that does not exist yet); ``write_text`` decides."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)  # an existing file keeps its permissions
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask  # mkstemp creates 0600; use what any new file would get
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        # backslashreplace: a non-UTF-8 file name's bytes must not abort the write.
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as handle:
            os.fchmod(handle.fileno(), mode)
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


def _write_fd(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _write_stream(fd: int, text: str) -> None:
    # A report or Markdown file is UTF-8 whatever the locale says (PYTHONIOENCODING=ascii
    # must not turn an emoji into a crash): bytes go below the text layer, after its buffer.
    stream = {1: sys.stdout, 2: sys.stderr}.get(fd)
    if stream is None:
        _write_fd(fd, text.encode("utf-8", "backslashreplace"))
        return
    stream.flush()
    binary = getattr(stream, "buffer", None)
    if binary is None:  # a replaced stream (tests, IDEs) takes text only
        stream.write(text)
    else:
        binary.write(text.encode("utf-8", "backslashreplace"))
        binary.flush()


def write_text(text: str, destination: str) -> None:
    """Write ``text`` to ``destination`` without destroying what is there.

    ``-`` and ``/dev/stdout``-like paths go to the descriptor already open; a regular file (or
    a new name) is replaced atomically, through any symlinks (the link stays); a character
    device or FIFO is opened and written, never replaced (``--json /dev/null`` as root once
    turned /dev/null into a regular file).  A directory, block device or socket is refused with
    ``OutputError``; write errors (``/dev/full``: ENOSPC) propagate as ``OSError``."""
    check_destination(destination)
    fd = 1 if destination == "-" else inherited_fd(destination)
    if fd is not None:
        _write_stream(fd, text)
        return
    resolved = os.path.realpath(destination)  # a symlink stays a symlink; its target changes
    try:
        mode: int | None = os.stat(resolved).st_mode
    except FileNotFoundError:
        mode = None
    if mode is None or stat.S_ISREG(mode):
        write_atomic(resolved, text)
        return
    check_destination(resolved)
    # A character device or FIFO: open it as a shell's ">" would (O_TRUNC is meaningless there).
    out = os.open(resolved, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        _write_fd(out, text.encode("utf-8", "backslashreplace"))
    finally:
        os.close(out)


def write_report(
    report: Report | dict[str, Any], destination: str, *, scrubbed: bool = False
) -> None:
    """Write the report's JSON, secrets masked (``scrubbed``: the caller masked them already,
    with ``redact.scrub_report``; a second pass costs seconds on a 10 000-manifest report)."""
    from vkdoctor.report.redact import scrub_secrets

    data = report.to_dict() if isinstance(report, Report) else report
    write_text(dumps(data if scrubbed else scrub_secrets(data)), destination)


def _read_input(path: str) -> bytes:
    if path == "-":
        return read_stream(sys.stdin.fileno(), MAX_REPORT_BYTES)
    return read_regular(path, MAX_REPORT_BYTES)


class _NonStandardNumber(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    # json accepts NaN, Infinity and -Infinity; JSON (RFC 8259) and other readers do not.
    raise _NonStandardNumber(name)


def load_report_dict(path: str) -> dict[str, Any]:
    try:
        raw = _read_input(path).decode("utf-8-sig")
    except FileRefused as exc:
        what = "not a report" if exc.kind == "not-regular" else "too large to be a report"
        raise ReportError(f"{path}: {exc.reason}; {what}") from None
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except PermissionError:
        raise ReportError(f"{path}: permission denied") from None
    except UnicodeDecodeError:
        raise ReportError(f"{path}: not a text file, so not a vkdoctor report") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise ReportError(f"{path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not raw.strip():
        raise ReportError(f"{path}: the file is empty (an interrupted or failed write?)")
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except _NonStandardNumber as exc:
        raise ReportError(f"{path}: not valid JSON: bare {exc} is not a JSON number") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        body = raw.strip()
        # A report is one object: one that starts but never closes was cut off mid-write.
        cut = exc.pos >= len(raw.rstrip()) or (body.startswith("{") and not body.endswith("}"))
        hint = " (the file looks truncated)" if cut else ""
        raise ReportError(f"{path}: not valid JSON at {where}: {exc.msg}{hint}") from None
    except RecursionError:
        raise ReportError(f"{path}: JSON nested too deeply to be a vkdoctor report") from None
    except ValueError:  # Python's int-str limit: a number thousands of digits long
        raise ReportError(
            f"{path}: holds a number thousands of digits long, so not a vkdoctor report"
        ) from None
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
