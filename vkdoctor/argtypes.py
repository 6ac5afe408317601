"""Argument types with ranges: out-of-range numbers are usage errors, not odd behaviour.

``--timeout nan`` used to reach the runner (every comparison false), ``--timeout inf`` invented a
dispatch hang and ``--timeout 1e-9`` made every driver an "unknown dlopen failure".  Each type
names its range in the message argparse prints.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

# A native step needs a few milliseconds at least; an hour is longer than any sane probe.
TIMEOUT_RANGE = (0.1, 3600.0)
# A traced program or a watch may run for a day.
DURATION_RANGE = (0.1, 86400.0)
PID_MAX = 4194304  # the kernel's upper bound of /proc/sys/kernel/pid_max


def seconds(low: float, high: float) -> Callable[[str], float]:
    """A float in seconds within [low, high]."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"must be between {low:g} and {high:g} seconds, got {text!r}"
            )
        return value

    parse.__name__ = "seconds"
    return parse


def integer(low: int, high: int, what: str = "a whole number") -> Callable[[str], int]:
    """An int within [low, high] (no 100000-digit strings: the length is checked first)."""

    def parse(text: str) -> int:
        stripped = text.strip()
        if len(stripped) > 20 or not stripped.lstrip("+-").isdigit():
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}")
        value = int(stripped)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


def pid(text: str) -> int:
    return integer(1, PID_MAX, "a process id")(text)


def nonempty(what: str) -> Callable[[str], str]:
    """A string that must not be empty (``--loader ""``)."""

    def parse(text: str) -> str:
        if not text:
            raise argparse.ArgumentTypeError(f"{what} must not be empty")
        if "\0" in text:
            raise argparse.ArgumentTypeError(f"{what} must not contain a NUL byte")
        return text

    parse.__name__ = "nonempty"
    return parse
