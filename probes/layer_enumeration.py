"""Probe 3, layer-enumeration: implicit and explicit layers, their libraries, and which ones a
process started now would get.

The enable/disable decision mirrors ``loader_implicit_layer_is_enabled``: an implicit layer is on
by default, or only when its ``enable_environment`` variable has the exact value; a defined
``disable_environment`` variable turns it off; ``VK_LOADER_LAYERS_DISABLE`` forces it off and
``VK_LOADER_LAYERS_ENABLE`` forces it on (reference/loader-facts.md sections 5 and 6).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from vkdoctor.engine.child import ItemOutcome
from vkdoctor.engine.env import Env
from vkdoctor.engine.runner import ProbeContext, ProbeOutcome, ProbeSpec
from vkdoctor.loader import libcheck
from vkdoctor.loader import log as loaderlog
from vkdoctor.loader.exclusions import by_manifest, state_exclusions
from vkdoctor.loader.manifests import (
    LayerManifest,
    list_manifest_files,
    parse_layers,
    problem_finding,
    read_manifest,
)
from vkdoctor.loader.search import (
    effective_get,
    filter_list,
    glob_match,
    parse_version,
    search_entries,
    suggest,
)
from vkdoctor.report import shell
from vkdoctor.report.codes import CodeInfo, code_table, make_finding
from vkdoctor.report.model import Finding, LogEntry, Severity
from vkdoctor.report.records import Exclusion, ExclusionReason, LayerRecord, LoadOutcome

TASK = "vkdoctor.tasks.libraries:check_libraries"
Version = tuple[int, int, int]

CODES = code_table(
    [
        CodeInfo(
            "layer-requested-missing",
            Severity.FAIL,
            "a requested layer does not exist",
            "VK_INSTANCE_LAYERS or VK_LOADER_LAYERS_ENABLE names a layer that no manifest "
            "provides: applications get VK_ERROR_LAYER_NOT_PRESENT or run without it.",
            (
                "a typo",
                "the layer package is not installed (e.g. vulkan-validationlayers)",
                "VK_LAYER_PATH replacing the system layer directories",
            ),
            "Install the layer or correct its name.",
        ),
        CodeInfo(
            "layer-meta-incomplete",
            Severity.WARN,
            "a meta layer lacks component layers",
            "The loader removes a meta layer when any of its component layers is missing.",
            ("a partially installed SDK",),
            "Install the missing component layers.",
        ),
        CodeInfo(
            "layer-duplicate-name",
            Severity.WARN,
            "two manifests declare the same layer name",
            "The loader uses the first one found and drops the others.",
            ("an SDK and a distribution package both installed",),
            "Remove one of them.",
        ),
        CodeInfo(
            "layer-negotiation-failed",
            Severity.FAIL,
            "the layer rejects the loader's interface",
            "vkNegotiateLoaderLayerInterfaceVersion failed; loaders before 2026-09 still activate "
            "such a layer through the legacy path, with undefined results.",
            ("a broken or very old layer",),
            "Update or remove the layer.",
        ),
        CodeInfo(
            "layer-missing-exports",
            Severity.FAIL,
            "the layer library exports no layer entry points",
            "Neither the negotiation function nor vkGetInstanceProcAddr is exported.",
            ("a manifest pointing at the wrong library",),
            "Fix the manifest's library_path.",
        ),
        CodeInfo(
            "layer-implicit-active",
            Severity.INFO,
            "implicit layers active in every Vulkan process",
            "These layers are injected into every Vulkan program started with the current "
            "environment; each names the variable that disables it.",
            ("installed packages",),
            "Set a layer's disable variable to keep it out of a program.",
        ),
        CodeInfo(
            "layer-old-api-version",
            Severity.INFO,
            "a layer targets an older Vulkan version",
            "The loader warns that the layer's api_version is older than the application's; "
            "the layer may not know newer commands.",
            ("an outdated layer",),
            "Update the layer.",
        ),
        CodeInfo(
            "layer-known-harmless-warning",
            Severity.INFO,
            "a loader warning that is known to be harmless",
            "This warning appears on healthy machines (for example Debian's device-select "
            "layer and an empty symbol name); it is not the cause of a failure.",
            ("packaging quirks",),
            "Nothing to do.",
        ),
        CodeInfo(
            "layer-loader-complaint",
            Severity.WARN,
            "the loader reports a problem with a layer",
            "The loader's log names this layer's manifest or library in a warning or error.",
            ("a layer built for another loader interface", "a layer library that fails to load"),
            "The quoted loader line is the loader's reason. Turn the layer off (its disable "
            "variable, or VK_LOADER_LAYERS_DISABLE=<layer name>) and update or remove it.",
        ),
    ]
)


def _active(env: Env, layer: LayerManifest, version: Version | None) -> tuple[bool, str]:
    name = layer.name or ""
    enable_globs = filter_list(effective_get(env, "VK_LOADER_LAYERS_ENABLE", version))
    disable_globs = filter_list(effective_get(env, "VK_LOADER_LAYERS_DISABLE", version))
    allow_globs = filter_list(effective_get(env, "VK_LOADER_LAYERS_ALLOW", version))
    kind_token = "~implicit~" if layer.implicit else "~explicit~"
    if any(glob_match(g, name) for g in enable_globs):
        return True, "forced on by VK_LOADER_LAYERS_ENABLE"
    disabled = any(
        g in ("~all~", "*", "**", kind_token) or glob_match(g, name) for g in disable_globs
    )
    if disabled and not any(glob_match(g, name) for g in allow_globs):
        return False, "forced off by VK_LOADER_LAYERS_DISABLE"
    if not layer.implicit:
        instance_layers = [n for n in (env.get("VK_INSTANCE_LAYERS") or "").split(":") if n]
        if name in instance_layers:
            return True, "enabled by VK_INSTANCE_LAYERS"
        return False, "explicit: only when an application enables it"
    for variable in layer.disable_environment or {}:
        if env.get(variable) is not None:  # defined at all, even empty, disables
            return False, f"disabled by {variable}"
    if layer.enable_environment:
        for variable, value in layer.enable_environment.items():
            if env.get(variable) == value:
                return True, f"enabled by {variable}={value}"
        first = next(iter(layer.enable_environment.items()))
        return False, f"off until {first[0]}={first[1]}"
    return True, "implicit: on by default"


def run(ctx: ProbeContext) -> ProbeOutcome:
    env = ctx.env
    version = parse_version(ctx.facts("loader-discovery").get("version") or "")
    outcome = ProbeOutcome()
    layers, searches = _find_layers(env, version)
    records: dict[str, LayerRecord] = {}
    items: list[dict[str, Any]] = []
    seen_names: dict[str, str] = {}
    reported: set[tuple[str, str]] = set()
    for layer in layers:
        for problem in layer.problems:
            if (layer.path, problem.message) not in reported:  # file-level problems once per file
                reported.add((layer.path, problem.message))
                outcome.findings.append(problem_finding(problem, "layer", layer.path, version))
        record, findings, item = _examine(env, layer, version, seen_names)
        records[_key(layer)] = record
        outcome.findings += findings
        if item is not None:
            items.append(item)
    outcomes, _ = ctx.run_batch(TASK, items, key="key") if items else ([], [])
    by_key = {_key(entry): entry for entry in layers}
    for item in outcomes:
        outcome.loader_log += loaderlog.parse(item.stderr)
        records[item.key], found = _loaded(env, by_key[item.key], records[item.key], item)
        outcome.findings += found
    cross, final = _cross_findings(env, list(records.values()), version)
    outcome.findings += cross
    discovery = ctx.results.get("loader-discovery")
    outcome.findings += _log_findings(discovery.loader_log if discovery else [], final)
    active = [r for r in final if r.active and r.state in ("usable", "meta")]
    outcome.facts = {
        "search": searches,
        "active_implicit": [r.name for r in active if r.implicit],
        "forced_explicit": [r.name for r in active if not r.implicit],
    }
    own = by_manifest(outcome.findings)
    outcome.layers = [_with_exclusions(r, own) for r in final]
    return outcome


def _key(layer: LayerManifest) -> str:
    """A layer's key in the batch and the records: one manifest may declare several layers."""
    return f"{layer.path}#{layer.name}"


def _find_layers(
    env: Env, version: Version | None
) -> tuple[list[LayerManifest], dict[str, list[dict[str, Any]]]]:
    """Every layer of every implicit and explicit manifest, and the searches that found them."""
    layers: list[LayerManifest] = []
    searches: dict[str, list[dict[str, Any]]] = {}
    for kind, implicit in (("implicit-layer", True), ("explicit-layer", False)):
        entries = search_entries(env, kind, version)
        searches[kind] = [e.to_dict() for e in entries]
        for path, origin in list_manifest_files(env, entries):
            layers += parse_layers(read_manifest(env, path, origin), implicit)
    return layers, searches


def _examine(
    env: Env, layer: LayerManifest, version: Version | None, seen_names: dict[str, str]
) -> tuple[LayerRecord, list[Finding], dict[str, Any] | None]:
    """The record of one layer from what the parent can check, its findings, and the batch item
    that dlopens its library when it is worth it.  ``seen_names`` maps each layer name to the
    first manifest declaring it (the loader uses that one)."""
    active, why = _active(env, layer, version) if layer.name else (False, "unusable manifest")
    record = LayerRecord(
        name=layer.name,
        manifest=layer.path,
        origin=layer.origin,
        implicit=layer.implicit,
        type=layer.type,
        api_version=layer.api_version,
        implementation_version=layer.implementation_version,
        description=layer.description,
        enable_environment=dict(layer.enable_environment),
        disable_environment=dict(layer.disable_environment or {}),
        component_layers=tuple(layer.component_layers),
        active=active,
        why=why,
        issues=tuple(problem.code for problem in layer.problems),
    )
    if layer.skipped_by_loader or not layer.name:
        return replace(record, active=False, state="skipped-by-loader"), [], None
    if layer.name in seen_names:
        finding = make_finding(
            CODES,
            "layer-duplicate-name",
            f"{layer.name} is declared by {seen_names[layer.name]} and {layer.path}; the loader uses the first",
            evidence={
                "name": layer.name,
                "manifests": [seen_names[layer.name], layer.path],
            },
        )
        return replace(record, active=False, state="duplicate"), [finding], None
    seen_names[layer.name] = layer.path
    record = replace(record, state="meta" if layer.is_meta else "candidate")
    if not layer.library_path:
        return record, [], None
    check = libcheck.static_check(env, "layer", layer.path, layer.library_path, layer.library_arch)
    findings = [_soften(f, layer, active) for f in check.findings]
    record = replace(
        record,
        **check.fields(),
        issues=record.issues + tuple(f.code for f in check.findings),
    )
    if not check.loadable:
        return replace(record, state="other-abi" if check.other_abi else "broken"), findings, None
    item = {
        "key": _key(layer),
        "path": str(env.path(check.resolution.path or "")),
        "kind": "layer",
        "functions": dict(layer.functions),
    }
    return record, findings, item


def _loaded(
    env: Env, layer: LayerManifest, record: LayerRecord, item: ItemOutcome
) -> tuple[LayerRecord, list[Finding]]:
    """The record and findings after the child dlopened the layer's library and negotiated."""
    found = libcheck.native_findings(
        env,
        "layer",
        layer.path,
        record.resolved or "",
        item,
        dict(layer.disable_environment or {}),
    )
    result = libcheck.LibraryLoad.parse(item.result)
    record = replace(
        record,
        load=LoadOutcome(state=item.state, signal=item.signal, last_step=item.last_crumb),
        exports=result.exports,
        interface_version=result.interface_version,
        negotiate_result=result.negotiate_result,
    )
    if not found and result.loaded:
        found = _layer_exports(layer, record, result)
    found = [_soften(f, layer, record.active) for f in found]
    record = replace(
        record,
        issues=record.issues + tuple(f.code for f in found),
        state="broken" if any(f.severity is Severity.FAIL for f in found) else "usable",
    )
    return record, found


def _with_exclusions(record: LayerRecord, findings: dict[str, list[Finding]]) -> LayerRecord:
    """The record with why the loader will not put it in a process started now."""
    reasons = state_exclusions(record, findings)
    if record.state == "duplicate":
        detail = f"another manifest declares {record.name} first"
        reasons.append(Exclusion(ExclusionReason.DUPLICATE, detail))
    if not reasons and not record.active:
        variable = next(iter(record.enable_environment), None)
        reasons.append(Exclusion(ExclusionReason.INACTIVE, record.why, variable=variable))
    return replace(record, excluded_by=tuple(reasons))


def _soften(finding: Finding, layer: LayerManifest, active: bool) -> Finding:
    """A broken layer nobody loads is a warning; one injected into every process is a failure."""
    if finding.severity is Severity.FAIL and not (layer.implicit and active):
        note = " (not active now: it only breaks programs that enable it)"
        return replace(finding, severity=Severity.WARN, summary=finding.summary + note)
    return finding


def _layer_exports(
    layer: LayerManifest, record: LayerRecord, result: libcheck.LibraryLoad
) -> list[Finding]:
    exports = result.exports
    evidence = {"manifest": layer.path, "library": record.resolved, "exports": exports}
    commands = libcheck.disable_commands("layer", layer.path, dict(layer.disable_environment or {}))
    negotiate, gipa = list(exports)[:2]  # the (possibly renamed) negotiate and GIPA symbols
    if not exports[negotiate] and not exports[gipa]:
        return [
            make_finding(
                CODES,
                "layer-missing-exports",
                f"{layer.name}: {record.resolved} exports neither {negotiate} nor {gipa}",
                evidence=evidence,
                commands=commands,
            )
        ]
    code = result.negotiate_result
    if code not in (None, 0):
        return [
            make_finding(
                CODES,
                "layer-negotiation-failed",
                f"{layer.name}: layer interface negotiation returned {code}",
                evidence={**evidence, "result": code},
                commands=commands,
            )
        ]
    return []


def _cross_findings(
    env: Env, given: list[LayerRecord], version: Version | None
) -> tuple[list[Finding], list[LayerRecord]]:
    """Findings across layers, and the records with incomplete meta layers marked broken."""
    names = [r.name for r in given if r.name and r.state != "skipped-by-loader"]
    findings, records = _meta_layers(given, names)
    findings += _requested_missing(env, names, version)
    findings += _implicit_findings(records, version)
    return findings, records


def _meta_layers(
    given: list[LayerRecord], names: list[str]
) -> tuple[list[Finding], list[LayerRecord]]:
    """Meta layers whose component layers are not all there: the loader drops them."""
    findings: list[Finding] = []
    records: list[LayerRecord] = []
    for record in given:
        missing = [c for c in record.component_layers if c not in names]
        if record.state == "meta" and missing:
            findings.append(
                make_finding(
                    CODES,
                    "layer-meta-incomplete",
                    f"meta layer {record.name} lacks {', '.join(missing)}; the loader drops it",
                    evidence={"manifest": record.manifest, "missing": missing},
                )
            )
            record = replace(record, active=False, state="broken")
        records.append(record)
    return findings, records


def _requested_missing(env: Env, names: list[str], version: Version | None) -> list[Finding]:
    """Layers a variable asks for by name that no manifest provides."""
    requested = [
        (n, "VK_INSTANCE_LAYERS") for n in (env.get("VK_INSTANCE_LAYERS") or "").split(":") if n
    ]
    requested += [
        (g, "VK_LOADER_LAYERS_ENABLE")
        for g in filter_list(effective_get(env, "VK_LOADER_LAYERS_ENABLE", version))
        if "*" not in g and not g.startswith("~")
    ]
    findings: list[Finding] = []
    for name, variable in requested:
        if any(glob_match(name, n) for n in names):
            continue
        nearest = suggest(name, names)
        hint = f"; did you mean {nearest}?" if nearest else ""
        findings.append(
            make_finding(
                CODES,
                "layer-requested-missing",
                f"{variable} requests {name}, which no layer manifest provides{hint}",
                evidence={
                    "variable": variable,
                    "layer": name,
                    "available": names,
                    "suggestion": nearest,
                },
                commands=_requested_missing_commands(env, variable, name, nearest),
            )
        )
    return findings


def _requested_missing_commands(
    env: Env, variable: str, name: str, nearest: str | None
) -> list[str]:
    """The validation layer is a package away; any other name is taken out of (or corrected
    in) the variable that asks for it, keeping the rest of its list."""
    install = (
        ["sudo apt-get install vulkan-validationlayers"] if "validation" in name.lower() else []
    )
    separator = ":" if variable == "VK_INSTANCE_LAYERS" else ","  # the loader's own syntax
    entries = [e for e in (env.get(variable) or "").split(separator) if e]
    kept = (
        [nearest if e == name else e for e in entries]
        if nearest
        else [e for e in entries if e != name]
    )
    edit = shell.export(variable, separator.join(kept)) if kept else shell.unset(variable)
    return [*install, edit]


def _implicit_findings(records: list[LayerRecord], version: Version | None) -> list[Finding]:
    """The implicit layers in every process, and those targeting an older Vulkan than the
    loader."""
    active_implicit = [
        r for r in records if r.implicit and r.active and r.state in ("usable", "meta")
    ]
    if not active_implicit:
        return []
    findings = [
        make_finding(
            CODES,
            "layer-implicit-active",
            "implicit layers in every Vulkan process: "
            + ", ".join(
                f"{r.name} (disable: {', '.join(f'{k}={v or 1}' for k, v in r.disable_environment.items())})"
                for r in active_implicit
            ),
            evidence={
                "layers": [
                    {
                        "name": r.name,
                        "manifest": r.manifest,
                        "why": r.why,
                        "disable_environment": dict(r.disable_environment),
                    }
                    for r in active_implicit
                ]
            },
        )
    ]
    loader_minor = version[:2] if version else None
    for record in active_implicit:
        layer_version = parse_version(record.api_version or "")
        if loader_minor and layer_version and layer_version[:2] < loader_minor:
            findings.append(
                make_finding(
                    CODES,
                    "layer-old-api-version",
                    f"implicit layer {record.name} targets Vulkan {record.api_version}, "
                    f"older than the loader's {'.'.join(map(str, loader_minor))}",
                    evidence={"layer": record.name, "api_version": record.api_version},
                )
            )
    return findings


def _log_findings(entries: list[LogEntry], records: list[LayerRecord]) -> list[Finding]:
    findings: list[Finding] = []
    harmless = [e for e in entries if e.classification and "layer" in e.message.lower()]
    for entry in {e.message: e for e in harmless}.values():
        findings.append(
            make_finding(
                CODES,
                "layer-known-harmless-warning",
                f"loader warning known to be harmless ({entry.classification}): {entry.message}",
                evidence={"line": entry.message, "classification": entry.classification},
            )
        )
    findings += libcheck.loader_complaints(CODES, "layer-loader-complaint", entries, records)
    return findings


SPEC = ProbeSpec(
    id="layer-enumeration",
    title="Layer enumeration",
    run=run,
    requires=("loader-discovery",),
    native=True,
)
