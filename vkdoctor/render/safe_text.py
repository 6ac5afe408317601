"""One sanitiser for every string that came from the machine, applied where it is rendered.

Manifest fields, library names, loader messages and device names are written by whoever wrote
the file: ``"\\u001b]0;pwned\\u0007\\u001b[2J"`` in a layer's description set the terminal title and
cleared the screen in ``check``, ``report show``, ``report diff`` and the TUI.  Every renderer
(console, Markdown, diff, TUI) passes its report through ``clean_report`` (or its strings
through ``clean``) once, at its entry: control characters become visible ``\\xNN`` escapes, so the
reader still sees that something odd was there.

Kept: newline and tab (renderers lay out multi-line details).  Escaped: the other C0 controls,
DEL, the C1 controls (U+0080-U+009F: U+009B is a CSI on some terminals) and the bidirectional
overrides and isolates (U+202A-U+202E, U+2066-U+2069: "Trojan Source" reordering), and lone
surrogates (the undecodable bytes of a non-UTF-8 file name, which no UTF-8 output can encode).  The output
is plain text without those characters, so cleaning twice changes nothing.

Headless: no rich or textual import.  ``ascii_fallback`` serves terminals whose encoding cannot
show vkdoctor's status glyphs (``PYTHONIOENCODING=ascii``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vkdoctor.report import codec
from vkdoctor.report.model import Finding, ProbeResult, Report

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match[0])
    if 0xDC80 <= code <= 0xDCFF:
        # A byte of a non-UTF-8 file name (os.fsdecode's surrogateescape): show the byte.
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(text: str) -> str:
    """``text`` with every terminal control character made visible and harmless."""
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text


def clean_line(text: str) -> str:
    """As ``clean``, for one-line places (table cells, titles): newlines and tabs too."""
    return clean(text).replace("\n", "\\n").replace("\t", " ")


def clean_data(value: Any) -> Any:
    """A copy of a JSON-like value with every string (and key) cleaned."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, Mapping):
        return {clean(str(k)): clean_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_data(item) for item in value]
    return value


def clean_report(report: Report) -> Report:
    """The report with every string cleaned (a new object; the input is untouched)."""
    return codec.map_strings(report, clean)


def clean_result(result: ProbeResult) -> ProbeResult:
    """One probe result cleaned (the TUI shows live results before the report exists)."""
    return codec.map_strings(result, clean)


def clean_finding(finding: Finding) -> Finding:
    return codec.map_strings(finding, clean)


# Glyphs vkdoctor prints, and what an ASCII-only terminal gets instead.
_ASCII = str.maketrans(
    {
        "✔": "+",
        "✘": "x",
        "ℹ": "i",
        "⏱": "T",
        "☠": "X",
        "→": "->",
        "…": "...",
        "·": "-",
        "—": "-",
        "–": "-",
        "✅": "[ok]",
        "⚠": "[!]",
        "❌": "[x]",
    }
)


def ascii_fallback(text: str, encoding: str) -> str:
    """``text`` made encodable in ``encoding``: known glyphs become ASCII markers, anything
    else that cannot be encoded becomes ``?``."""
    try:
        text.encode(encoding)
        return text
    except UnicodeEncodeError:
        pass
    except LookupError:
        encoding = "ascii"
    return text.translate(_ASCII).encode(encoding, "replace").decode(encoding)
