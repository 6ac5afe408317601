"""The ``--require`` expression language: ``KEY [OP VALUE]``, one requirement per expression.

Parsing is separate from evaluation so a typo is a usage error (exit 2) before any probe runs,
and so the pytest plugin can reject a bad marker at collection without touching Vulkan.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from vkdoctor.record import frozen

GRAMMAR = (
    "KEY[OP VALUE]: api|loader OP VERSION (OP one of < <= = > >=), "
    "type=discrete-gpu|integrated-gpu|virtual-gpu|cpu, gpu, name~=REGEX, "
    "vendor=nvidia|amd|intel|mesa|0x10de, driver~=REGEX, memory OP SIZE (e.g. 16GiB), "
    "queue=compute|graphics|transfer, subgroup OP N, dispatch, extension=NAME, "
    "feature=NAME|STRUCT.NAME, kernels, bandwidth OP RATE (e.g. 2TB/s), fp32 OP RATE "
    "(e.g. 20TFLOP/s), devices OP N (how many devices meet the other requirements)"
)

COMPARISONS = ("<=", ">=", "<", ">", "=")
# Longest operators first so ``<=`` is not read as ``<`` followed by ``=VALUE``.
_OPERATORS = ("~=", "<=", ">=", "==", "<", ">", "=")
_EXPR = re.compile(r"^\s*([a-z][a-z0-9-]*)\s*(?:(~=|<=|>=|==|<|>|=)\s*(.*?))?\s*$")

DEVICE_TYPES = ("discrete-gpu", "integrated-gpu", "virtual-gpu", "cpu", "other")
QUEUES = ("compute", "graphics", "transfer", "sparse", "protected")
# PCI vendor ids, and the Khronos ids for vendors without one (Mesa's software drivers).
VENDORS = {
    "amd": 0x1002,
    "nvidia": 0x10DE,
    "intel": 0x8086,
    "arm": 0x13B5,
    "qualcomm": 0x5143,
    "imgtec": 0x1010,
    "broadcom": 0x14E4,
    "apple": 0x106B,
    "microsoft": 0x1414,
    "samsung": 0x144D,
    "mesa": 0x10005,
}
_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_FLAGS = ("gpu", "dispatch", "kernels")
_VERSIONED = ("api", "loader")
_NUMERIC = ("memory", "subgroup", "bandwidth", "fp32")
# Rates in the kernel suite's units: bandwidth in GB/s, arithmetic in GFLOP/s.
_RATE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(b/s|flop/s)$", re.IGNORECASE)
_RATE_SCALE = {"": 1e-9, "k": 1e-6, "m": 1e-3, "g": 1.0, "t": 1e3}
_RATE_UNIT = {"bandwidth": "b/s", "fp32": "flop/s"}
# What each kernel-backed requirement runs (None: the whole suite).
KERNEL_NEEDS: dict[str, tuple[str, ...] | None] = {
    "kernels": None,
    "bandwidth": ("copy-vec4",),
    "fp32": ("fma-fp32",),
}
_VALUED = ("type", "name", "vendor", "driver", "queue", "extension", "feature")
# Keys about the set of devices rather than one device: evaluated once, over the devices that
# meet every other requirement ("the loader sees 7 of my 8 GPUs").
COUNTED = ("devices",)


class RequirementError(ValueError):
    """A malformed expression; the message is the one line the user sees."""


@frozen
class Requirement:
    """One parsed expression.  ``value`` is typed by key: a version tuple for api/loader, bytes
    for memory, an int for subgroup and devices, the vendor id, a compiled regex for ``~=``, else a string
    (``type`` and ``queue`` may list alternatives with ``|``)."""

    text: str
    key: str
    op: str = ""
    value: object = None

    def __str__(self) -> str:
        return self.text


def _fail(text: str, why: str) -> RequirementError:
    return RequirementError(f"bad requirement {text!r}: {why}; grammar: {GRAMMAR}")


def parse_version(text: str) -> tuple[int, ...] | None:
    if not re.fullmatch(r"\d+(\.\d+){0,3}", text):
        return None
    return tuple(int(p) for p in text.split("."))


def parse_size(text: str) -> int | None:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?", text.strip().lower())
    if not match:
        return None
    return int(float(match.group(1)) * _UNITS[match.group(2) or ""])


def parse(text: str) -> Requirement:
    """One expression, e.g. ``api>=1.3``, ``gpu``, ``vendor=0x10de``, ``memory>=16GiB``,
    ``devices>=8``."""
    match = _EXPR.match(text)
    if not match:
        raise _fail(text, "expected KEY or KEY OP VALUE")
    key, op, value = match.group(1), match.group(2) or "", match.group(3)
    op = "=" if op == "==" else op
    if op and not value:
        raise _fail(text, f"{key}{op} needs a value")
    if key in _FLAGS:
        if op:
            raise _fail(text, f"{key} takes no value")
        return Requirement(text.strip(), key)
    if not op:
        if key in _VERSIONED + _NUMERIC + _VALUED + COUNTED:
            raise _fail(text, f"{key} needs an operator and a value")
        known = ", ".join(_FLAGS + _VERSIONED + _NUMERIC + _VALUED + COUNTED)
        raise _fail(text, f"unknown key {key!r} (known: {known})")
    return Requirement(text.strip(), key, op, _value(text, key, op, value))


def _value(text: str, key: str, op: str, value: str) -> object:
    if key in _VERSIONED + _NUMERIC + COUNTED and op not in COMPARISONS:
        raise _fail(text, f"{key} compares with one of {' '.join(COMPARISONS)}")
    if key in _VERSIONED:
        version = parse_version(value)
        if version is None:
            raise _fail(text, f"{value!r} is not a version like 1.3 or 1.3.250")
        return version
    if key == "memory":
        size = parse_size(value)
        if size is None:
            raise _fail(text, f"{value!r} is not a size like 16GiB or 512MiB")
        return size
    if key in _RATE_UNIT:
        rate = _RATE.match(value.replace(" ", ""))
        if rate is None or rate.group(3).lower() != _RATE_UNIT[key]:
            example = "2TB/s" if key == "bandwidth" else "20TFLOP/s"
            raise _fail(text, f"{value!r} is not a rate like {example}")
        return float(rate.group(1)) * _RATE_SCALE[rate.group(2).lower()]
    if key in ("subgroup", *COUNTED):
        if not value.isdigit():
            raise _fail(text, f"{value!r} is not a whole number")
        return int(value)
    if key in ("name", "driver"):
        if op not in ("~=", "="):
            raise _fail(text, f"{key} takes ~=REGEX or =EXACT")
        if op == "=":
            return value
        try:
            return re.compile(value, re.IGNORECASE)
        except re.error as exc:
            raise _fail(text, f"bad regular expression: {exc}") from None
    if op != "=":
        raise _fail(text, f"{key} takes =VALUE")
    if key == "type":
        return _alternatives(text, value, DEVICE_TYPES)
    if key == "queue":
        return _alternatives(text, value, QUEUES)
    if key == "vendor":
        if value.lower() in VENDORS:
            return VENDORS[value.lower()]
        try:
            return int(value, 0)
        except ValueError:
            raise _fail(text, f"unknown vendor {value!r} (known: {', '.join(VENDORS)})") from None
    if key == "feature":
        if not re.fullmatch(r"(VkPhysicalDevice\w+Features\.)?[a-z]\w*", value):
            raise _fail(
                text,
                f"{value!r} is not a feature like shaderFloat16 or "
                "VkPhysicalDeviceVulkan12Features.bufferDeviceAddress",
            )
        return value
    if key == "extension":
        if not re.fullmatch(r"VK_[A-Za-z0-9_]+", value):
            raise _fail(text, f"{value!r} is not an extension name like VK_KHR_maintenance4")
        return value
    raise _fail(text, f"unknown key {key!r}")


def _alternatives(text: str, value: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    choices = tuple(v.strip() for v in value.split("|"))
    bad = [c for c in choices if c not in allowed]
    if bad:
        raise _fail(text, f"{bad[0]!r} is not one of {'|'.join(allowed)}")
    return choices


def kernels_needed(requirements: Iterable[Requirement]) -> tuple[str, ...] | bool | None:
    """The kernels the requirements need run: False for none, None for the whole suite."""
    needed: list[str] = []
    for requirement in requirements:
        if requirement.key not in KERNEL_NEEDS:
            continue
        kernels = KERNEL_NEEDS[requirement.key]
        if kernels is None:
            return None
        needed += [k for k in kernels if k not in needed]
    return tuple(needed) if needed else False


def parse_all(texts: Iterable[str]) -> list[Requirement]:
    return [parse(text) for text in texts]


def split_list(value: str | None) -> list[str]:
    """VKDOCTOR_REQUIRE's form: expressions separated by ``;`` (a regex needing ``;`` must come
    through --require instead)."""
    return [part.strip() for part in (value or "").split(";") if part.strip()]
