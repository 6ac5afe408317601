"""The renderer-boundary sanitiser, the ASCII fallback and the message-safe secret scrubber."""

from __future__ import annotations

import pytest

from vkdoctor.render.safe_text import ascii_fallback, clean, clean_data, clean_line
from vkdoctor.report.redact import REDACTED, scrub_text

HOSTILE = "\u001b]0;pwned\u0007\u001b[2J"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (HOSTILE, "\\x1b]0;pwned\\x07\\x1b[2J"),
        ("csi\x9b2J", "csi\\x9b2J"),  # C1 CSI: one byte on some terminals
        ("over\rwrite", "over\\x0dwrite"),
        ("abc\u202edcba", "abc\\u202edcba"),  # bidi override ("Trojan Source")
        ("del\x7f", "del\\x7f"),
        ("keeps\nlines\tand tabs", "keeps\nlines\tand tabs"),
        ("Mesa 22.3.6 (LLVM 15.0.6) · ✔", "Mesa 22.3.6 (LLVM 15.0.6) · ✔"),
    ],
)
def test_clean_makes_controls_visible(raw: str, shown: str) -> None:
    assert clean(raw) == shown
    assert clean(clean(raw)) == clean(raw)  # idempotent: renderers may meet cleaned text


def test_clean_line_and_data() -> None:
    assert clean_line("a\nb\tc") == "a\\nb c"
    data = clean_data({HOSTILE: [HOSTILE, 1, None, {"k": HOSTILE}]})
    text = repr(data)
    assert "\x1b" not in text and "\x07" not in text and "pwned" in text


def test_ascii_fallback() -> None:
    assert ascii_fallback("✔ ok → fix…", "ascii") == "+ ok -> fix..."
    assert ascii_fallback("✔ ok", "utf-8") == "✔ ok"
    assert ascii_fallback("日本", "ascii") == "??"


@pytest.mark.parametrize(
    "message",
    [
        # The real dynamic linker's words for dlopen() of a PIE executable.
        "/usr/bin/passwd: cannot dynamically load position-independent executable",
        "error: token: unexpected end of input",
        "author=jane the keyboard=us monkey=1",
        "VK_LOADER_DEBUG=all VK_LOADER_LAYERS_ENABLE=*validation",
        "see https://github.com/KhronosGroup/Vulkan-Loader/issues/1234",
    ],
)
def test_scrubber_leaves_messages_alone(message: str) -> None:
    assert scrub_text(message) == message


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("prog --password=S3cret! -v", "S3cret!"),
        ("api_key: AbCdEf12", "AbCdEf12"),
        ("GET /x?key=abcdef123&sig=zz9", "abcdef123"),
        ("password: hunter2", "hunter2"),
    ],
)
def test_scrubber_masks_credential_values(text: str, secret: str) -> None:
    scrubbed = scrub_text(text)
    assert secret not in scrubbed and REDACTED in scrubbed
