"""The device probe on lavapipe and on faulty drivers: NULL from vkGetDeviceProcAddr, no compute
queue, a crash in vkCreateDevice (bisected to the driver)."""

from __future__ import annotations

from conftest import VkWorld, codes, finding, needs_lavapipe, probe

from vkdoctor.report.model import Severity, Status

pytestmark = needs_lavapipe
DEVICE = ["device"]


def test_lavapipe_device(world: VkWorld) -> None:
    world.lavapipe()
    report = world.run(DEVICE)
    device = probe(report, "device")
    assert not device.status.is_failure, codes(device)
    (row,) = report.devices
    assert row.compute_family == 0
    assert "compute" in row.queue_families[0].flags
    assert row.memory is not None and row.memory.heaps and row.memory.types
    assert row.proc_addr is not None and row.proc_addr["gdpa_non_null"] > 100
    # Identity as vulkaninfo prints it: VK_VENDOR_ID_MESA, and no PCI device id on a CPU.
    assert row.vendor_id == 0x10005 and row.device_id == 0
    assert row.driver_manifest == str(world.icd_dir / "lvp_icd.x86_64.json")
    assert "gdpa-missing" not in codes(device)


def test_null_from_vkgetdeviceprocaddr_is_named(world: VkWorld, fault_driver) -> None:
    manifest, _ = fault_driver("gdpa-null")
    device = probe(world.run(DEVICE), "device")
    missing = finding(device, "gdpa-missing")
    assert missing.severity is Severity.FAIL
    assert missing.evidence["commands"] == ["vkCreateBuffer"]
    assert missing.evidence["driver_manifest"] == str(manifest)
    assert missing.summary.endswith(
        ": vkGetDeviceProcAddr returns NULL for 1 required command(s): vkCreateBuffer"
    )
    # The fix for the real cause (the driver's NULL), not a guess at implicit layers: the world
    # has none, so no layer command at all.
    assert missing.remedy.commands[0] == f"export VK_LOADER_DRIVERS_DISABLE={manifest.name}"
    assert not any("LAYERS" in c for c in missing.remedy.commands)


def test_null_from_vkgetdeviceprocaddr_fix_works(world: VkWorld, fault_driver) -> None:
    """The first remedy, applied: the loader takes the driver out, and no device has the NULL.
    (The fault driver answers with lavapipe's device, UUIDs included: next to lavapipe the
    device's driver is ambiguous, so the world holds the fault driver alone.)"""
    manifest, _ = fault_driver("gdpa-null")
    report = world.run(DEVICE)
    fix = finding(probe(report, "device"), "gdpa-missing").remedy.commands[0]
    variable, _, value = fix.removeprefix("export ").partition("=")
    fixed = world.run(DEVICE, **{variable: value})
    assert "gdpa-missing" not in codes(fixed)
    assert finding(fixed, "driver-filtered").evidence["manifest"] == str(manifest)


def test_device_without_compute_queue(world: VkWorld, fault_driver) -> None:
    fault_driver("no-compute")
    device = probe(world.run(DEVICE), "device")
    no_compute = finding(device, "device-no-compute-queue")
    assert "graphics, transfer" in no_compute.summary


def test_crash_in_create_device_is_bisected_to_the_driver(world: VkWorld, fault_driver) -> None:
    manifest, _ = fault_driver("create-device-crash")
    report = world.run(DEVICE)
    device = probe(report, "device")
    assert device.status is Status.CRASHED
    assert "vkCreateDevice" in finding(device, "device-creation-crashed").summary
    assert str(manifest) in finding(device, "culprit-driver").summary
    assert probe(report, "instance").status in (Status.OK, Status.INFO)  # earlier steps still fine


def test_layer_crashing_create_device_is_the_culprit(world: VkWorld, fault_layer) -> None:
    world.lavapipe()
    _, _, name = fault_layer("create-device-crash")
    device = probe(world.run(DEVICE), "device")
    assert device.status is Status.CRASHED
    assert name in finding(device, "culprit-layer").summary
    assert "culprit-driver" not in codes(device)


def test_hang_in_create_device_is_a_timeout_bisected_to_the_driver(
    world: VkWorld, fault_driver
) -> None:
    manifest, _ = fault_driver("create-device-hang")
    device = probe(world.run(DEVICE, timeout_s=1.5), "device")
    assert device.status is Status.TIMEOUT
    hung = finding(device, "device-creation-hung")
    assert "vkCreateDevice" in hung.summary and hung.evidence["wchan"]
    assert str(manifest) in finding(device, "culprit-driver").summary


def test_an_early_device_result_is_adopted_only_for_the_same_device_and_commands() -> None:
    """warm_pool's speculative device child counts the devices and reads the registry itself;
    the probe takes its result only where it saw the device the instance probe listed at that
    index and checked as many commands as the probe's own registry lists."""
    from vkdoctor.probes.device import _same_device

    from vkdoctor.engine.child import ItemOutcome

    def item(state: str, result: dict[str, object] | None) -> ItemOutcome:
        return ItemOutcome("0", state, result, (), "")

    same = _same_device(["vkCreateBuffer", "vkQueueSubmit"])
    row = {"index": 0, "name": "llvmpipe"}
    assert same(item("ok", {"name": "llvmpipe", "names_checked": 2}), row)
    assert not same(item("ok", {"name": "NVIDIA H200", "names_checked": 2}), row)
    assert not same(item("ok", {"name": "llvmpipe", "names_checked": 0}), row)  # no registry
    assert not same(item("ok", {"missing": True}), row)
    assert same(item("crashed", None), row)  # died there: the probe's re-run checks it alone
