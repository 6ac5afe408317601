"""Why the loader will not use a driver or layer: the reasons both kinds of manifest share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from vkdoctor.report.model import Finding
from vkdoctor.report.records import DriverRecord, Exclusion, ExclusionReason, LayerRecord


def by_manifest(findings: Sequence[Finding]) -> dict[str, list[Finding]]:
    """Findings indexed by the manifest their evidence names (built once per probe: thousands
    of manifests would make a scan per record quadratic)."""
    index: dict[str, list[Finding]] = {}
    for finding in findings:
        manifest = finding.evidence.get("manifest")
        if isinstance(manifest, str):
            index.setdefault(manifest, []).append(finding)
    return index


def state_exclusions(
    record: DriverRecord | LayerRecord, findings: Mapping[str, list[Finding]]
) -> list[Exclusion]:
    """The exclusion that the record's own state implies (rejected, wrong ABI, crashed, hung,
    failed to load), or none for a usable component."""
    load = record.load
    if record.state == "skipped-by-loader":
        return [Exclusion(ExclusionReason.SKIPPED_BY_LOADER, "the loader rejects this manifest")]
    if record.state == "other-abi":
        library = record.resolved or record.library_path
        detail = f"{library} is built for {record.machine} ({record.elf_class}-bit)"
        return [Exclusion(ExclusionReason.WRONG_ARCHITECTURE, detail)]
    if load is not None and load.state == "crashed":
        detail = f"crashed ({load.signal}) in {load.last_step or 'dlopen'}"
        return [Exclusion(ExclusionReason.CRASHED, detail)]
    if load is not None and load.state == "timeout":
        return [Exclusion(ExclusionReason.HUNG, f"hung in {load.last_step or 'dlopen'}")]
    if record.state == "broken":
        own = findings.get(record.manifest, [])
        detail = (load.dlopen_error if load else None) or (
            own[0].summary if own else f"{record.library_path} cannot be used"
        )
        return [Exclusion(ExclusionReason.LOAD_FAILED, detail)]
    return []
