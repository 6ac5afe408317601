"""Every loader WARNING/ERROR the instance probe receives is classified (issue 10, item 5): a
specific finding, folded into the driver or layer finding that explains it, or benign.  Each case
is a real cause on the real loader: fault drivers and layers compiled at test time, real
manifests, real variables.  The message text is the real loader's, never written here."""

from __future__ import annotations

from typing import Any

from conftest import VkWorld, codes, finding, needs_lavapipe, probe

from vkdoctor.report.model import Report, Severity

pytestmark = needs_lavapipe
INSTANCE = ["instance"]


def _classes(report: Report) -> list[dict[str, Any]]:
    classes: list[dict[str, Any]] = probe(report, "instance").facts["message_classes"]
    return classes


def _only(report: Report, needle: str) -> dict[str, Any]:
    (found,) = [c for c in _classes(report) if needle in c["message"]]
    return found


def _not_echoed(report: Report) -> None:
    """No loader message is reported as a finding of its own; nothing says 'read the message'."""
    instance = probe(report, "instance")
    assert "instance-loader-message" not in codes(instance)
    for _, f in report.findings():
        assert "quoted message" not in ((f.remedy.text if f.remedy else "") or "")


def test_a_driver_whose_create_instance_fails_is_named(world: VkWorld, fault_driver) -> None:
    world.lavapipe()
    manifest, _ = fault_driver("create-instance-fail")
    report = world.run(INSTANCE)
    # The loader's own line names only an index ("Failed to CreateInstance in ICD 1").
    assert _only(report, "terminator_CreateInstance")["class"] == "finding"
    failed = finding(probe(report, "instance"), "driver-create-instance-failed")
    assert failed.severity is Severity.WARN
    assert failed.summary == (
        f"driver {manifest}: its vkCreateInstance returns VK_ERROR_INCOMPATIBLE_DRIVER, so the "
        "loader skips it and Vulkan programs run without it"
    )
    assert failed.remedy.commands[0] == f"export VK_LOADER_DRIVERS_DISABLE={manifest.name}"
    assert [f for f in probe(report, "instance").findings if f.code.startswith("culprit")] == []
    _not_echoed(report)
    # Lavapipe is never named.
    assert len([c for c in codes(report) if c == "driver-create-instance-failed"]) == 1
    by_id = report.findings_by_id()
    assert by_id[report.root_causes[0]][1].code == "driver-create-instance-failed"


def test_driver_filter_lines_fold_into_driver_filtered(world: VkWorld, fault_driver) -> None:
    world.lavapipe()
    manifest, _ = fault_driver("ok")
    report = world.run(INSTANCE, VK_LOADER_DRIVERS_DISABLE=manifest.name)
    line = _only(report, "ignored because it was disabled by env var")
    assert (line["class"], line["label"], line["explained_by"]) == (
        "explained",
        "driver-filtered-by-variable",
        "driver-filtered",
    )
    _not_echoed(report)
    filtered = finding(report, "driver-filtered")
    assert filtered.remedy.commands[0] == "unset VK_LOADER_DRIVERS_DISABLE"


def test_layer_filter_line_is_benign(world: VkWorld, fault_layer) -> None:
    world.lavapipe()
    _, _, name = fault_layer("ok")
    report = world.run(INSTANCE, VK_LOADER_LAYERS_DISABLE=name)
    line = _only(report, "forced disabled because name matches filter")
    assert (line["class"], line["label"]) == ("benign", "layer-filtered-by-variable")
    _not_echoed(report)
    assert not [f for _, f in report.findings() if f.severity is not Severity.INFO]


def test_layers_added_by_variable_is_benign_and_merged(world: VkWorld, fault_layer) -> None:
    """The line the issue saw echoed twice as a warning for VK_INSTANCE_LAYERS."""
    world.lavapipe()
    _, _, name = fault_layer("ok", implicit=False)
    report = world.run(INSTANCE, VK_INSTANCE_LAYERS=name)
    line = _only(report, "defined and adding layers")
    assert (line["class"], line["label"]) == ("benign", "layers-added-by-variable")
    _not_echoed(report)
    assert not [f for _, f in report.findings() if f.severity is not Severity.INFO]


def test_layers_added_line_folds_into_the_missing_layer(world: VkWorld) -> None:
    world.lavapipe()
    report = world.run(INSTANCE, VK_INSTANCE_LAYERS="VK_LAYER_VKDOCTOR_absent")
    missing = finding(report, "layer-requested-missing")
    assert missing.summary == (
        "VK_INSTANCE_LAYERS requests VK_LAYER_VKDOCTOR_absent, which no layer manifest provides"
    )
    line = _only(report, "defined and adding layers")
    assert line["explained_by"] == "layer-requested-missing"
    _not_echoed(report)


def test_old_layer_api_version_is_vkdoctors_request(world: VkWorld, fault_layer) -> None:
    """vkdoctor asks for the loader's own version: the loader's 'older than the application
    specified' line is about that request, not a problem of this machine."""
    import faultlib

    world.lavapipe()
    library = faultlib.build_layer(world.root / "build", "ok")
    world.layer("VK_LAYER_VKDOCTOR_old", str(library), api_version="1.0.0")
    report = world.run(INSTANCE)
    line = _only(report, "older than the application specified")
    assert (line["class"], line["label"], line["explained_by"]) == (
        "explained",
        "vkdoctor-api-version-request",
        "layer-old-api-version",
    )
    _not_echoed(report)
    assert not [f for _, f in report.findings() if f.severity is not Severity.INFO]


def test_missing_dependency_dlerror_folds_into_the_driver_finding(
    world: VkWorld, fault_driver
) -> None:
    import faultlib

    world.lavapipe()
    fault_driver("missing-dependency")
    report = world.run(INSTANCE)
    line = _only(report, "cannot open shared object file")
    assert (line["class"], line["label"], line["explained_by"]) == (
        "explained",
        f"names:{faultlib.GONE_LIBRARY}",
        "driver-dependency-missing",
    )
    _not_echoed(report)


def test_nonconforming_layer_name_folds_into_the_layer_finding(world: VkWorld) -> None:
    import faultlib

    world.lavapipe()
    library = faultlib.build_layer(world.root / "build", "ok")
    world.layer("BADNAME_vkdoctor", str(library))
    report = world.run(INSTANCE)
    line = _only(report, "does not conform to naming standard")
    assert (line["class"], line["explained_by"]) == ("explained", "layer-name-nonconforming")
    _not_echoed(report)


def test_missing_disable_environment_folds_into_the_layer_finding(world: VkWorld) -> None:
    """The loader's line names no file: the rule matches its wording."""
    import faultlib

    world.lavapipe()
    library = faultlib.build_layer(world.root / "build", "ok")
    manifest = world.layer("VK_LAYER_VKDOCTOR_nodisable", str(library))
    body = manifest.read_text().replace('"disable_environment"', '"not_disable_environment"')
    manifest.write_text(body)
    report = world.run(INSTANCE)
    line = _only(report, "disable_environment")
    assert (line["class"], line["label"], line["explained_by"]) == (
        "explained",
        "layer-missing-disable-environment",
        "layer-missing-disable-environment",
    )
    _not_echoed(report)


def test_interface_errors_fold_into_the_driver_findings(world: VkWorld, fault_driver) -> None:
    """loader_scanned_icd_add's errors name the library the driver probe diagnosed."""
    world.lavapipe()
    fault_driver("no-gipa")
    fault_driver("negotiate-incompatible")
    report = world.run(INSTANCE)
    explained = {
        c["explained_by"] for c in _classes(report) if "loader_scanned_icd_add" in c["message"]
    }
    assert explained == {"driver-no-gipa", "driver-negotiation-failed"}
    _not_echoed(report)
