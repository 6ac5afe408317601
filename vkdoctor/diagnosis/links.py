"""Cause-and-symptom links between findings, derived from the typed records.

Each rule looks at the drivers' ``excluded_by`` reasons and the findings of the whole run, and
names root causes with the findings they explain.  The first rule that applies to a symptom owns
it; findings no rule links stay roots of their own.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import field, replace

from vkdoctor.loader.search import parse_version
from vkdoctor.loader.versions import Behaviour, has
from vkdoctor.record import mutable
from vkdoctor.report.model import Finding, ProbeResult, Report, Severity
from vkdoctor.report.records import DriverRecord, ExclusionReason

# What every process sees when no driver is usable: symptoms, never causes.
NO_DRIVER_SYMPTOMS = frozenset(
    {
        "no-usable-driver",
        "no-driver-manifests",
        "instance-creation-failed",
        "no-physical-devices",
        "loader-enumeration-failed",
        "kernels-no-vulkan",
        "kernels-no-device",
    }
)
# Codes of findings that name the variable responsible for hiding or filtering drivers.
VARIABLE_CODES = {
    ExclusionReason.HIDDEN_BY_OVERRIDE: "driver-search-overridden",
    ExclusionReason.OUTSIDE_SEARCH_PATH: "driver-outside-search-path",
    ExclusionReason.FILTERED: "driver-filtered",
}
# Consequences of a variable's effect, folded under it.
VARIABLE_SYMPTOMS = frozenset({"driver-hidden-by-override", "driver-filtered"})
# What a malformed manifest causes on loaders before 1.3.268, besides the bisected failures.
MALFORMED_SYMPTOMS = frozenset({"no-single-driver-culprit", "loader-enumeration-failed"})
# What bisection concludes; the failures it explains.
BISECTION_CODES = frozenset({"culprit-layer", "culprit-driver"})
BISECTED_SYMPTOMS = frozenset(
    {
        "instance-creation-failed",
        "instance-creation-crashed",
        "instance-creation-hung",
        "device-creation-failed",
        "device-creation-crashed",
        "device-creation-hung",
        "loader-enumeration-failed",
    }
)


@mutable
class Links:
    """Root causes in order of importance, each with the ids of the symptoms it explains."""

    roots: list[str] = field(default_factory=list)
    causes: dict[str, list[str]] = field(default_factory=dict)
    promoted: set[str] = field(default_factory=set)  # info findings that turned out to be causes
    headline: str = ""  # the first root cause in the verdict's words, when a rule knows better
    claimed: set[str] = field(default_factory=set)

    def add(self, root: Finding, symptoms: Iterable[Finding]) -> None:
        if root.id in self.claimed:
            return
        self.roots.append(root.id)  # claimed once, so listed once
        self.claimed.add(root.id)
        for symptom in symptoms:
            if symptom.id != root.id and symptom.id not in self.claimed:
                self.causes.setdefault(root.id, []).append(symptom.id)
                self.claimed.add(symptom.id)


def _all(report: Report) -> list[Finding]:
    return [f for _, f in report.findings()]


def _variable_rule(report: Report, findings: list[Finding], links: Links) -> None:
    """No driver is in use, and a variable is why: the variable is the root cause, and what it
    leads to (broken manifests it selects, the drivers it hides, 'no driver') its symptoms.
    Also when the drivers it leaves find no device (a driver forced for absent hardware)."""
    no_device = any(f.code == "no-physical-devices" for f in findings)  # instance probe ran
    if not report.drivers or (any(d.in_use for d in report.drivers) and not no_device):
        return
    reasons = [e for d in report.drivers for e in d.excluded_by if e.variable]
    for reason in reasons:
        code = VARIABLE_CODES.get(reason.reason)
        root = next(
            (
                f
                for f in findings
                if f.code == code
                and (
                    f.evidence.get("variable") in (None, reason.variable)
                    or code == "driver-filtered"
                )
            ),
            None,
        )
        if root is None:
            continue
        hidden = {d.manifest for d in report.drivers if reason in d.excluded_by}
        selected = {d.manifest for d in report.drivers if d.manifest not in hidden}
        symptoms = [
            f
            for f in findings
            if f.code in NO_DRIVER_SYMPTOMS
            or f.code in VARIABLE_SYMPTOMS
            # What the override selects instead and cannot use.
            or (
                reason.reason is ExclusionReason.HIDDEN_BY_OVERRIDE
                and (
                    f.evidence.get("manifest") in selected
                    # The loader reads what the override names: its hang or crash follows.
                    or f.code in BISECTED_SYMPTOMS
                )
                and f.severity is not Severity.INFO
            )
        ]
        if root.severity is not Severity.FAIL:
            links.promoted.add(root.id)
        links.add(root, symptoms)
        links.headline = _variable_headline(reason.reason, reason.variable or "", report, hidden)
        return


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _variable_headline(
    reason: ExclusionReason, variable: str, report: Report, hidden: set[str]
) -> str:
    installed = _plural(len(hidden), "installed driver")
    left = [d for d in report.drivers if d.manifest not in hidden and d.in_use]
    if left and not report.devices:  # the rule runs then only when no device was found
        names = ", ".join(os.path.basename(d.manifest) for d in left)
        finds = "finds" if len(left) == 1 else "find"
        return f"{variable} leaves only {names}, which {finds} no device here, and hides the {installed}"
    if reason is ExclusionReason.FILTERED:
        return f"{variable} filters out all {installed}"
    if reason is ExclusionReason.OUTSIDE_SEARCH_PATH:
        return f"XDG_DATA_DIRS leaves out /usr/share, where the {installed} are"
    selected = [d for d in report.drivers if d.manifest not in hidden]
    return f"{variable} points at {_what_is_selected(selected)}, and hides the {installed}"


def _what_is_selected(selected: list[DriverRecord]) -> str:
    """What an override variable selects instead of the installed drivers, in a few words."""
    if not selected:
        return "no manifest"
    if len(selected) > 1:
        return f"{len(selected)} manifests that give no usable driver"
    (only,) = selected
    if "manifest-missing" in only.issues:
        return "a manifest that does not exist"
    if "manifest-not-regular-file" in only.issues:
        return "a path that is not a regular file (a FIFO or device hangs the loader)"
    if "driver-library-missing" in only.issues:
        return "a manifest whose library does not exist"
    if only.state == "skipped-by-loader":
        return "a manifest the loader rejects"
    return "a manifest that gives no usable driver"


def _driver_rule(report: Report, findings: list[Finding], links: Links) -> None:
    """No driver is in use because each one is broken: the broken drivers are the causes."""
    if any(d.in_use for d in report.drivers) or not report.drivers:
        return
    manifests = {d.manifest for d in report.drivers}
    broken = [
        f
        for f in findings
        if f.severity is Severity.FAIL
        and f.code not in NO_DRIVER_SYMPTOMS
        and f.evidence.get("manifest") in manifests
    ]
    symptoms = [f for f in findings if f.code in NO_DRIVER_SYMPTOMS]
    for cause in broken:
        links.add(cause, symptoms)
        symptoms = []  # the first broken driver explains them; the others stand beside it


def _malformed_manifest_rule(report: Report, findings: list[Finding], links: Links) -> None:
    """Before 1.3.268 one malformed manifest fails every vkCreateInstance (as out of memory), so
    every driver alone fails too: the manifest is the cause of all of it."""
    version = parse_version(report.loader.version or "") if report.loader else None
    if version is None or has(Behaviour.MALFORMED_MANIFEST_SKIPPED, version):
        return
    malformed = [f for f in findings if f.code == "manifest-invalid-json"]
    failures = [f for f in findings if f.code in BISECTED_SYMPTOMS | MALFORMED_SYMPTOMS]
    if not malformed or not failures:
        return
    first = malformed[0]
    path = str(first.evidence.get("manifest") or "")
    kind = "layer" if path in {layer.manifest for layer in report.layers} else "driver"
    for root in malformed:
        if root.severity is not Severity.FAIL:
            links.promoted.add(root.id)
        links.add(root, failures)
        failures = []
    links.headline = links.headline or (  # the headline describes the first root
        f"the malformed {kind} manifest {path} makes every vkCreateInstance fail with loader "
        f"{report.loader.version if report.loader else '?'} (loaders from 1.3.268 skip it)"
    )


# Manifests that break every instance the loader creates while it reads them.
INSTANCE_BREAKING_CODES = frozenset(
    {"driver-is-the-loader", "driver-dependency-truncated", "layer-dependency-truncated"}
)


def _instance_breaking_rule(report: Report, findings: list[Finding], links: Links) -> None:
    """A manifest that makes the loader load itself as a driver, or a library whose dependency
    is truncated: the instance failures (and any bisection verdict on that manifest) follow."""
    for root in (f for f in findings if f.code in INSTANCE_BREAKING_CODES):
        manifest = root.evidence.get("manifest")
        links.add(
            root,
            [
                f
                for f in findings
                if f.code in BISECTED_SYMPTOMS
                or (f.code in BISECTION_CODES and f.evidence.get("manifest") == manifest)
            ],
        )


# Trace diagnoses of a call through a pointer the program took with dlsym from libvulkan.
DLSYM_SYMPTOMS = frozenset({"unsupported-command-called", "null-proc-addr-called"})


def _dlsym_rule(report: Report, findings: list[Finding], links: Links) -> None:
    """vkdoctor trace: the program took a command with dlsym from libvulkan, and the call
    through that pointer crashed.  vkGet*ProcAddr would have returned NULL for it, so the dlsym
    is the cause; the crash (which names the call site) is what it led to and the headline."""
    root = next((f for f in findings if f.code == "dlsym-entry-point"), None)
    if root is None:
        return
    crashes = [
        f
        for f in findings
        if f.code in DLSYM_SYMPTOMS and (f.evidence.get("pointer") or {}).get("how") == "dlsym"
    ]
    if not crashes:
        return
    links.promoted.add(root.id)
    links.add(root, crashes)
    links.headline = links.headline or (
        f"{crashes[0].summary}; it took the pointer with dlsym from libvulkan instead of "
        "vkGetDeviceProcAddr, which returns NULL for it"
    )


# What a device's missing commands break on that device.
DEVICE_SYMPTOMS = frozenset({"dispatch-crashed", "dispatch-failed", "dispatch-hung"})


def _missing_command_rule(report: Report, findings: list[Finding], links: Links) -> None:
    """vkGetDeviceProcAddr returned NULL for a required command of a device: the smoke
    dispatch on that device fails because of it (it calls the command through that NULL)."""
    for root in (f for f in findings if f.code == "gdpa-missing"):
        prefix = f"device {root.evidence.get('index')} ("
        links.add(
            root,
            [f for f in findings if f.code in DEVICE_SYMPTOMS and f.summary.startswith(prefix)],
        )


# What the loader itself answers: vkGetInstanceProcAddr with a NULL instance never reaches a
# layer or driver, and with an instance loader 1.3.239 returns its own trampolines for every
# command it knows (gpa_helper.c), so these come from the loader the program loaded.
LOADER_ANSWER_CODES = frozenset({"gipa-global-missing", "gipa-null-leak", "gipa-instance-missing"})


def _shadowing_loader_rule(report: Report, findings: list[Finding], links: Links) -> None:
    """Programs load another libvulkan.so.1 than the system's (LD_LIBRARY_PATH, an rpath): what
    that loader answers wrongly is its doing, and the fix is to stop loading it (the shadowing
    finding's remedy), not to reinstall the system loader."""
    root = next((f for f in findings if f.code == "loader-shadowed"), None)
    if root is None:
        return
    symptoms = [f for f in findings if f.code in LOADER_ANSWER_CODES]
    if not symptoms:
        return
    if any(f.severity is Severity.FAIL for f in symptoms):
        links.promoted.add(root.id)  # what it breaks makes it the failure
    links.add(root, symptoms)


def _bisection_rule(report: Report, findings: list[Finding], links: Links) -> None:
    """Bisection named the component that breaks a step: it explains that step's failure."""
    for culprit in (f for f in findings if f.code in BISECTION_CODES):
        links.add(culprit, [f for f in findings if f.code in BISECTED_SYMPTOMS])


RULES = (
    _variable_rule,
    _malformed_manifest_rule,
    _instance_breaking_rule,
    _dlsym_rule,
    _missing_command_rule,
    _shadowing_loader_rule,
    _bisection_rule,
    _driver_rule,
)


def link(report: Report) -> Links:
    findings = _all(report)
    links = Links()
    for rule in RULES:
        rule(report, findings, links)
    return links


def apply(report: Report, links: Links) -> None:
    """Write the links into the report: ``causes`` on each root, promoted severities, and the
    ordered ``root_causes`` (linked roots first, then every other warning or failure)."""
    probe: ProbeResult
    for probe in report.probes:
        probe.findings = [
            replace(
                f,
                causes=tuple(links.causes.get(f.id, ())),
                severity=Severity.FAIL if f.id in links.promoted else f.severity,
            )
            for f in probe.findings
        ]
    caused = {s for symptoms in links.causes.values() for s in symptoms}
    roots = set(links.roots)
    rest = [
        f
        for _, f in sorted(report.findings(), key=lambda pf: -pf[1].severity.rank)
        if f.severity is not Severity.INFO and f.id not in caused and f.id not in roots
    ]
    report.root_causes = links.roots + [f.id for f in rest]
