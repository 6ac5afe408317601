"""GPU fault lines from the kernel log (RUN-03): after a lost device or a hang, the kernel usually
says why ("NVRM: Xid", "amdgpu: GPU reset", "i915 ... GPU HANG").

Reads ``/dev/kmsg`` non-blocking (records: ``priority,sequence,microseconds,flags;message``) and
keeps the records since a moment on the boot clock.  Unreadable logs (containers, kernel.
dmesg_restrict for non-root users) give ``None``: the caller says it could not look.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable

from vkdoctor.record import frozen

GPU_FAULT = re.compile(
    r"NVRM: Xid|GPU has fallen off the bus|amdgpu.*(?:GPU reset|ring .* timeout|page fault)"
    r"|i915.*(?:GPU HANG|Resetting)|xe .*(?:GT reset|Timedout job)|drm.*(?:GPU hang|reset)"
    r"|panfrost.*(?:gpu sched timeout|job fault)|msm.*hangcheck",
    re.IGNORECASE,
)
MAX_RECORDS = 20000  # bound the read on machines with a huge ring buffer


@frozen
class KernelLine:
    seconds: float  # since boot
    message: str


def boot_seconds() -> float:
    """Now, on the clock /dev/kmsg timestamps use (CLOCK_MONOTONIC, seconds since boot)."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def _record_lines(chunks: Iterable[str]) -> Iterable[str]:
    """/dev/kmsg returns one record per read; a saved copy returns many: split both into records
    (continuation lines, which start with a space, carry key=value details and are dropped)."""
    for chunk in chunks:
        for line in chunk.split("\n"):
            if line and not line.startswith(" "):
                yield line


def parse_records(records: Iterable[str]) -> list[KernelLine]:
    lines: list[KernelLine] = []
    for record in _record_lines(records):
        header, sep, message = record.partition(";")
        fields = header.split(",")
        if not sep or len(fields) < 3:
            continue
        try:
            seconds = int(fields[2]) / 1e6
        except ValueError:
            continue
        lines.append(KernelLine(seconds, message.strip()))
    return lines


def _read_kmsg(path: str) -> list[str] | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    records: list[str] = []
    try:
        while len(records) < MAX_RECORDS:
            try:
                chunk = os.read(fd, 8192)  # one record per read
            except BlockingIOError:
                break  # the end of the ring buffer
            except OSError:
                continue  # EPIPE: records overwritten while reading; go on
            if not chunk:
                break
            records.append(chunk.decode("utf-8", "replace"))
    finally:
        os.close(fd)
    return records


def gpu_faults_since(since: float, path: str = "/dev/kmsg") -> list[str] | None:
    """GPU fault messages logged after ``since`` (boot seconds); None if the log is unreadable."""
    records = _read_kmsg(path)
    if records is None:
        return None
    return [
        line.message
        for line in parse_records(records)
        if line.seconds >= since and GPU_FAULT.search(line.message)
    ]
