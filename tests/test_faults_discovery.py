"""Discovery probes against real broken drivers and layers compiled at test time."""

from __future__ import annotations

from conftest import VkWorld, codes, finding, needs_lavapipe, probe

from vkdoctor.report.model import Severity, Status
from vkdoctor.report.records import ExclusionReason

DISCOVERY = ["loader-discovery", "driver-enumeration", "layer-enumeration"]
pytestmark = needs_lavapipe


def test_driver_crashing_in_negotiation_is_named(world: VkWorld, fault_driver) -> None:
    world.lavapipe()
    manifest, library = fault_driver("negotiate-crash")
    report = world.run(DISCOVERY)
    crashed = finding(report, "driver-load-crashed")
    assert str(library) in crashed.summary and "SIGSEGV" in crashed.summary
    assert "vk_icdNegotiateLoaderICDInterfaceVersion" in crashed.summary  # the breadcrumb
    assert f"VK_LOADER_DRIVERS_DISABLE={manifest.name}" in crashed.remedy.commands[0]
    # The loader's own enumeration crashes too, every app would: reported, culprit named above.
    assert "loader-enumeration-failed" in codes(report)
    # The other driver and the other probes still count.
    rows = {r.manifest: r for r in report.drivers}
    assert rows[str(manifest)].state == "broken"
    (excluded,) = rows[str(manifest)].excluded_by
    assert excluded.reason is ExclusionReason.CRASHED and "SIGSEGV" in excluded.detail
    assert any(r.state == "usable" for r in rows.values())
    assert probe(report, "layer-enumeration").status is not Status.SKIPPED


def test_driver_hanging_in_negotiation_times_out(world: VkWorld, fault_driver) -> None:
    world.lavapipe()
    _, library = fault_driver("negotiate-hang")
    report = world.run(DISCOVERY, timeout_s=1.0)
    hung = finding(report, "driver-load-hung")
    assert str(library) in hung.summary
    assert "vk_icdNegotiateLoaderICDInterfaceVersion" in hung.summary


def test_constructor_crash_during_dlopen(world: VkWorld, fault_driver) -> None:
    _, library = fault_driver("constructor-crash")
    crashed = finding(world.run(DISCOVERY), "driver-load-crashed")
    assert "dlopen" in crashed.summary and str(library) in crashed.summary


def test_missing_dependency_is_named(world: VkWorld, fault_driver) -> None:
    _, library = fault_driver("missing-dependency")
    report = world.run(DISCOVERY)
    missing = finding(report, "driver-dependency-missing")
    assert "libvkdoctor_gone.so.1" in missing.summary and str(library) in missing.summary
    assert missing.evidence["all_missing"][0]["soname"] == "libvkdoctor_gone.so.1"
    assert "no-usable-driver" in codes(report)


def test_no_exports_and_no_gipa(world: VkWorld, fault_driver) -> None:
    fault_driver("no-exports")
    fault_driver("no-gipa")
    report = world.run(DISCOVERY)
    assert "driver-missing-exports" in codes(report)
    assert "driver-no-gipa" in codes(report)


def test_negotiation_incompatible_and_old_interface(world: VkWorld, fault_driver) -> None:
    fault_driver("negotiate-incompatible")
    fault_driver("old-interface")
    report = world.run(DISCOVERY)
    assert "VK_ERROR_INCOMPATIBLE_DRIVER" in finding(report, "driver-negotiation-failed").summary
    old = finding(report, "driver-old-interface")
    assert old.severity is Severity.WARN and "interface 1" in old.summary
    rows = {r.manifest.rsplit("/", 1)[-1]: r for r in report.drivers}
    assert rows["fault_old-interface.json"].interface_version == 1
    assert rows["fault_old-interface.json"].state == "usable"


def test_32_bit_driver_is_other_abi_not_blamed(world: VkWorld, fault_driver) -> None:
    world.lavapipe()
    fault_driver("wrong-arch")
    report = world.run(DISCOVERY)
    other = finding(report, "driver-library-other-abi")
    assert other.severity is Severity.INFO and "32-bit" in other.summary
    assert probe(report, "driver-enumeration").status in (Status.OK, Status.INFO)


def test_only_a_32_bit_driver_means_no_usable_driver(world: VkWorld, fault_driver) -> None:
    fault_driver("wrong-arch")
    assert "no-usable-driver" in codes(world.run(DISCOVERY))


def test_layer_failing_negotiation_is_a_failure_when_implicit(world: VkWorld, fault_layer) -> None:
    world.lavapipe()
    _, _, name = fault_layer("negotiate-fail")
    failed = finding(world.run(DISCOVERY), "layer-negotiation-failed")
    assert name in failed.summary and failed.severity is Severity.FAIL


def test_layer_without_exports(world: VkWorld, fault_layer) -> None:
    world.lavapipe()
    _, _, name = fault_layer("no-negotiate", implicit=False)
    missing = finding(world.run(DISCOVERY), "layer-missing-exports")
    assert name in missing.summary and missing.severity is Severity.WARN  # explicit: not active
