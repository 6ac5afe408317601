"""Parse the Vulkan loader's debug output (VK_LOADER_DEBUG on stderr) into structured entries.

Two header formats exist (reference/loader-facts.md section 12): loaders before 1.4.309 print
``INFO | DRIVER:   message`` padded to column 18; newer ones prefix ``[Vulkan Loader] `` and pad
to column 32.  vulkaninfo re-prints messages as ``ERROR: [Loader Message] Code 0 : message``.
Lines that match none of these (driver noise, libwayland's XDG_RUNTIME_DIR complaint, the
indented rows of the layer call-stack dump) are kept, as level ``other``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from vkdoctor.record import frozen
from vkdoctor.report.model import LogEntry

_TAGS = "ERROR|WARNING|INFO|DEBUG|PERF|DRIVER|LAYER|VALIDATION"
_HEADER = re.compile(rf"^(?:\[Vulkan Loader\] )?((?:{_TAGS})(?: \| (?:{_TAGS}))*)\s*:\s?(.*)$")
_REPRINT = re.compile(r"^(ERROR|WARNING|INFO|DEBUG|VERBOSE): \[Loader Message\] Code \d+ : (.*)$")

# linux_sort_physical_device_groups (run by vkEnumeratePhysicalDeviceGroups) prints each sorted
# device as "[0] llvmpipe (...) 0x5584b2d5b620": a pointer that differs in every process, which
# would make two reports of one machine differ.  The pointer is dropped.
_SORTED_DEVICE_POINTER = re.compile(r"^(\[\d+\] .*?) 0x[0-9a-fA-F]{6,}$")

_LEVELS = {
    "ERROR": "error",
    "WARNING": "warn",
    "INFO": "info",
    "DEBUG": "debug",
    "VERBOSE": "debug",
}
_CATEGORIES = {"DRIVER": "driver", "LAYER": "layer", "PERF": "perf", "VALIDATION": "validation"}

# Messages users see constantly that are not faults.  Each: (classification, pattern).
_HARMLESS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "harmless:device-select-empty-symbol",
        re.compile(r'Unable to resolve symbol "" in implicit layer library'),
    ),
    ("harmless:wayland-xdg-runtime-dir", re.compile(r"XDG_RUNTIME_DIR is invalid or not set")),
    ("harmless:other-abi", re.compile(r"wrong ELF class|was wrong bit-type")),
    ("harmless:lavapipe-nonconformant", re.compile(r"lavapipe is not a conformant")),
    # Loaders from 1.3.228 warn when an implicit layer's api_version is below the program's
    # apiVersion.  vkdoctor asks for the loader's own version (1.4 on Debian 13), so the warning
    # is about vkdoctor's request, not the user's programs (layer-old-api-version states the
    # layer's version as information).
    (
        "harmless:vkdoctor-api-version-request",
        re.compile(r"uses API version \d+\.\d+ which is older than the application specified"),
    ),
)


def classify(message: str) -> str:
    for label, pattern in _HARMLESS:
        if pattern.search(message):
            return label
    return ""


def parse_line(line: str, source: str = "stderr") -> LogEntry:
    text = line.rstrip("\n")
    match = _HEADER.match(text)
    if match:
        tags = [t.strip() for t in match.group(1).split("|")]
        level = next((_LEVELS[t] for t in tags if t in _LEVELS), "")
        categories = tuple(_CATEGORIES[t] for t in tags if t in _CATEGORIES)
        if not level:
            # Category-only headers (e.g. "DRIVER: ...") are informational in the loader.
            level = "info"
        message = match.group(2).strip()
        message = _SORTED_DEVICE_POINTER.sub(r"\1", message)
        return LogEntry(level, categories, message, source, classify(message))
    match = _REPRINT.match(text)
    if match:
        message = match.group(2).strip()
        return LogEntry(_LEVELS[match.group(1)], (), message, source, classify(message))
    stripped = text.strip()
    return LogEntry("other", (), stripped, source, classify(stripped))


def parse(text: str | Iterable[str], source: str = "stderr") -> list[LogEntry]:
    # split("\n"), not splitlines(): driver noise may hold \x1c-\x1e or \x85, and vkdoctor's
    # own per-item markers start with \x1e.
    lines = text.split("\n") if isinstance(text, str) else text
    # The loader repeats whole blocks (one manifest scan per vkCreateInstance and per
    # enumeration): parse each distinct line once.  LogEntry is immutable, so sharing is safe.
    seen: dict[str, LogEntry] = {}
    entries = []
    for line in lines:
        entry = seen.get(line)
        if entry is None:
            if not line.strip() or line.startswith("\x1e"):
                continue
            entry = seen[line] = parse_line(line, source)
        entries.append(entry)
    return entries


def bounded(entries: Iterable[LogEntry], limit: int) -> tuple[list[LogEntry], dict[str, int]]:
    """What a report stores of a log: each distinct (level, message) once, in order, at most
    ``limit`` of them (errors and warnings first kept), and the counts of what was left out, so
    10 000 broken manifests cannot make a report of hundreds of megabytes."""
    counts: dict[tuple[str, str], int] = {}
    unique: list[LogEntry] = []
    total = 0
    for entry in entries:
        total += 1
        key = (entry.level, entry.message)
        if key in counts:
            counts[key] += 1
            continue
        counts[key] = 1
        unique.append(entry)
    if len(unique) > limit:
        important = [e for e in unique if e.level in ("error", "warn")][:limit]
        room = limit - len(important)
        rest = [e for e in unique if e.level not in ("error", "warn")][:room]
        keep = {id(e) for e in important + rest}
        unique = [e for e in unique if id(e) in keep]
    return unique, {
        "lines": total,
        "distinct": len(counts),
        "stored": len(unique),
        "repeated": total - len(counts),
    }


def problems(entries: Iterable[LogEntry]) -> list[LogEntry]:
    """Errors and warnings that are not known to be harmless."""
    return [e for e in entries if e.level in ("error", "warn") and not e.classification]


@frozen
class LoaderSearch:
    """Where the loader says it looked for manifests, and the files it found there."""

    locations: tuple[str, ...]
    files: tuple[str, ...]


def discovery(entries: Iterable[LogEntry], category: str) -> LoaderSearch:
    """The loader's own search for 'driver' or 'layer' manifests, from its log.

    Built from the 'Searching for ... manifest files / In following locations: / Found the
    following files:' blocks, merged over every scan the loader made."""
    locations: list[str] = []
    files: list[str] = []
    target: list[str] | None = None
    for entry in entries:
        if category not in entry.categories:
            continue
        text = entry.message
        if text.startswith("In following locations") or text.startswith("In following folders"):
            target = locations
        elif text.startswith("Found the following files"):
            target = files
        elif text.startswith("/") and target is not None:
            if text not in target:
                target.append(text)
        else:
            target = None
    return LoaderSearch(tuple(locations), tuple(files))


def mentioning(entries: Iterable[LogEntry], *needles: str) -> list[LogEntry]:
    """Errors and warnings, not known to be harmless, whose message names one of ``needles``
    (a manifest or library)."""
    wanted = [n for n in needles if n]
    return [
        e
        for e in entries
        if e.level in ("error", "warn")
        and not e.classification
        and any(n in e.message for n in wanted)
    ]
