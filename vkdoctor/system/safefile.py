"""Reading files that users name or that lie in user-writable places, without hanging on them.

A manifest directory or a report argument may hold a FIFO (``open`` blocks until a writer comes,
forever), a link to ``/dev/zero`` (``read`` never ends) or a device with side effects.  Only
regular files are read: the kind is checked before opening (so a device is never opened), the
file is opened with ``O_NONBLOCK`` (so a FIFO swapped in meanwhile cannot block), checked again
on the descriptor, and read with a byte limit (so a growing file cannot eat memory).

Headless: standard library only.
"""

from __future__ import annotations

import os
import stat


class FileRefused(Exception):
    """A path that is not read, with why in words ("is a FIFO (named pipe)")."""

    def __init__(self, path: str, reason: str, kind: str) -> None:
        super().__init__(f"{path} {reason}")
        self.path = path
        self.reason = reason
        self.kind = kind  # "not-regular" | "too-large"


def describe_mode(mode: int) -> str:
    """What a file of this mode is, as a noun phrase for messages."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISREG(mode):
        return "a regular file"
    return "not a regular file"


def _refuse_kind(path: str, mode: int, shown: str) -> None:
    if not stat.S_ISREG(mode):
        raise FileRefused(shown, f"is {describe_mode(mode)}, not a regular file", "not-regular")


def read_regular(path: str | os.PathLike[str], limit: int, shown: str | None = None) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes.

    Raises ``FileRefused`` for anything else and ``OSError`` (FileNotFoundError, PermissionError,
    ...) as ``open`` would.  ``shown`` is the path as messages name it (a fixture root's files are
    read at another path than the machine's)."""
    name = shown if shown is not None else os.fsdecode(path)
    _refuse_kind(name, os.stat(path).st_mode, name)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        _refuse_kind(name, st.st_mode, name)  # replaced between stat and open
        if st.st_size > limit:
            raise FileRefused(
                name, f"is {st.st_size} bytes, over the {_size(limit)} limit", "too-large"
            )
        chunks: list[bytes] = []
        remaining = limit + 1  # one byte more tells a file that grew past the limit
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise FileRefused(name, f"grew over the {_size(limit)} limit while being read", "too-large")
    return data


def read_stream(fd: int, limit: int, name: str = "standard input") -> bytes:
    """At most ``limit`` bytes from an already open descriptor (stdin), refusing more."""
    chunks: list[bytes] = []
    remaining = limit + 1
    while remaining > 0:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    data = b"".join(chunks)
    if len(data) > limit:
        raise FileRefused(name, f"is over the {_size(limit)} limit", "too-large")
    return data


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit} bytes"
