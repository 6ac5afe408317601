"""What each loader warning or error seen during vkCreateInstance means (issue 10, item 5).

The instance probe's child installs a debug-utils messenger; every WARNING/ERROR message it
receives is put in one of four classes instead of being echoed as a finding of its own:

- ``benign``: not a problem of this machine (vkdoctor's own request caused it, the loader announces
  what a variable the user set does, a known harmless line);
- ``explained``: a finding of the driver or layer probes names its cause (the message names the
  manifest, library, dependency or layer name that finding names, or it is the loader's wording
  of that finding's problem); the message is folded into that finding;
- ``finding``: the message is the evidence of a problem only the instance probe can name (a driver
  whose vkCreateInstance fails while the others work); the probe builds that finding;
- ``unknown``: none of these; the probe reports it, once however often it was repeated.

Pure functions over the messages and the other probes' findings: tested against real loader
output in tests/test_loader_messages.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from vkdoctor.loader import log as loaderlog
from vkdoctor.record import frozen
from vkdoctor.report.model import Finding

BENIGN = "benign"
EXPLAINED = "explained"
FINDING = "finding"
UNKNOWN = "unknown"


@frozen
class MessageRule:
    label: str
    pattern: re.Pattern[str]
    kind: str  # BENIGN, EXPLAINED (when a code of explained_by was reported) or FINDING
    why: str
    explained_by: tuple[str, ...] = ()  # codes whose finding explains the message when reported


RULES: tuple[MessageRule, ...] = (
    MessageRule(
        "vkdoctor-api-version-request",
        re.compile(r"uses API version \d+\.\d+ which is older than the application specified"),
        BENIGN,
        "vkdoctor asks for the loader's own API version; a program asking for the layer's "
        "version or older does not see this (layer-old-api-version states the layer's version)",
        ("layer-old-api-version",),
    ),
    MessageRule(
        "layers-added-by-variable",
        re.compile(r"env var '(VK_INSTANCE_LAYERS|VK_LOADER_LAYERS_ENABLE)' defined and adding"),
        BENIGN,
        "the loader announces the layers a variable set in this environment turns on; a layer it "
        "names that does not exist is layer-requested-missing",
        ("layer-requested-missing",),
    ),
    MessageRule(
        "driver-filtered-by-variable",
        re.compile(r"Driver \"[^\"]*\" ignored because (not selected by|it was disabled by) env"),
        BENIGN,
        "VK_LOADER_DRIVERS_SELECT or VK_LOADER_DRIVERS_DISABLE, set in this environment, takes the "
        "driver out (driver-filtered)",
        ("driver-filtered", "driver-hidden-by-override"),
    ),
    MessageRule(
        "layer-filtered-by-variable",
        re.compile(r"Layer \"[^\"]*\" forced disabled because name matches filter of env var"),
        BENIGN,
        "VK_LOADER_LAYERS_DISABLE, set in this environment, turns the layer off (the layer "
        "records say why each layer is off)",
    ),
    MessageRule(
        "layer-missing-disable-environment",
        re.compile(r"required layer object disable_environment"),
        EXPLAINED,
        "an implicit layer manifest lacks disable_environment",
        ("layer-missing-disable-environment",),
    ),
    MessageRule(
        "driver-create-instance-failed",
        re.compile(
            r"terminator_CreateInstance: (Failed to CreateInstance in ICD|Received return code "
            r"-?\d+ from call to vkCreateInstance in ICD)"
        ),
        FINDING,
        "a driver's own vkCreateInstance fails, so the loader skips it",
    ),
)


@frozen
class Classified:
    """One distinct message and what it means."""

    severity: str
    message: str
    count: int  # how often the loader sent it
    kind: str  # BENIGN, EXPLAINED, FINDING or UNKNOWN
    label: str  # the rule's label, "known-harmless:<...>", "names:<token>" or ""
    by: str | None = None  # the code of the finding that explains it
    why: str = ""

    def to_fact(self) -> dict[str, Any]:
        fact: dict[str, Any] = {
            "severity": self.severity,
            "message": self.message,
            "class": self.kind,
            "label": self.label,
        }
        if self.count > 1:
            fact["count"] = self.count
        if self.by:
            fact["explained_by"] = self.by
        if self.why:
            fact["why"] = self.why
        return fact


_STRIP = "'\"()[],;:.`"


def _words(text: str) -> set[str]:
    return {w.strip(_STRIP) for w in text.split()} - {""}


_FILE = re.compile(r"\.(so(\.\d+)*|json)$")


def _naming(raw: str, word: str) -> bool:
    """A word that names a component (a path, a library or manifest file name, a layer name, a
    quoted name), not prose or a command name that many findings share."""
    return len(word) >= 4 and (
        "/" in word
        or bool(_FILE.search(word))
        or word.startswith("VK_LAYER_")
        or (raw[:1] in "'\"" and raw[:1] != "" and "_" in word)
    )


def diagnosed_names(
    findings: Iterable[Finding], paths: Mapping[str, str] | None = None
) -> dict[str, str]:
    """{name: code} for every component name the driver and layer probes' findings mention
    (manifest and library paths, dependency sonames, layer names), plus ``paths`` (the records'
    own paths, mapped to the code of their first issue).  The first finding naming it wins."""
    names: dict[str, str] = dict(paths or {})
    for finding in findings:
        for raw in finding.summary.split():
            word = raw.strip(_STRIP)
            if _naming(raw, word):
                names.setdefault(word, finding.code)
    return names


def classify(
    messages: Iterable[Mapping[str, Any]],
    diagnosed: Mapping[str, str],
    reported: Iterable[str] = (),
) -> list[Classified]:
    """Each distinct WARNING/ERROR message once, in the order first seen, classified.
    ``diagnosed``: see diagnosed_names; ``reported``: every code the other probes reported."""
    codes = set(reported)
    spaced = [(name, code) for name, code in diagnosed.items() if " " in name]
    counts: dict[tuple[str, str], int] = {}
    for message in messages:
        severity = str(message.get("severity") or "")
        if severity in ("warning", "error"):
            key = (severity, str(message.get("message") or ""))
            counts[key] = counts.get(key, 0) + 1
    out: list[Classified] = []
    for (severity, text), count in counts.items():
        out.append(_one(severity, text, count, diagnosed, spaced, codes))
    return out


def _one(
    severity: str,
    text: str,
    count: int,
    diagnosed: Mapping[str, str],
    spaced: list[tuple[str, str]],
    codes: set[str],
) -> Classified:
    harmless = loaderlog.classify(text)
    for rule in RULES:
        if rule.pattern.search(text):
            by = next((c for c in rule.explained_by if c in codes), None)
            kind = EXPLAINED if by and rule.kind != FINDING else rule.kind
            if kind == EXPLAINED and by is None:
                break  # its explaining finding is absent: fall through to the names
            return Classified(severity, text, count, kind, rule.label, by, rule.why)
    if harmless:
        return Classified(severity, text, count, BENIGN, "known-" + harmless, why="known harmless")
    for word in _words(text):
        code = diagnosed.get(word)
        if code is not None:
            return Classified(severity, text, count, EXPLAINED, "names:" + word, code)
    for name, code in spaced:  # paths with spaces are not one word
        if name in text:
            return Classified(severity, text, count, EXPLAINED, "names:" + name, code)
    return Classified(severity, text, count, UNKNOWN, "")
