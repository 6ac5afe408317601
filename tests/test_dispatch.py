"""The dispatch probe end to end on lavapipe, and its handling of devices that are broken."""

from __future__ import annotations

from conftest import VkWorld, codes, needs_lavapipe, probe

from vkdoctor.report.model import Status

pytestmark = needs_lavapipe


def test_full_check_on_healthy_lavapipe_verifies_the_dispatch(world: VkWorld) -> None:
    world.lavapipe()
    report = world.run()
    assert [p.id for p in report.probes] == [
        "loader-discovery",
        "driver-enumeration",
        "layer-enumeration",
        "instance",
        "device",
        "dispatch",
    ]
    assert report.summary()["status"] == "ok", [(p.id, codes(p)) for p in report.probes]
    dispatch = probe(report, "dispatch")
    assert dispatch.status is Status.OK
    (row,) = dispatch.facts["devices"]
    assert row["status"] == "ok" and row["verified"] is True
    assert len(row["runs"]) == 2  # two runs with different push constants
    assert all(run["check"]["passed"] and run["check"]["mismatches"] == 0 for run in row["runs"])
    assert row["runs"][0]["push_constants"] != row["runs"][1]["push_constants"]
    assert row["gpu_time_ns"] and row["gpu_time_ns"] > 0  # timestamp queries worked


def test_dispatch_skips_a_device_the_device_probe_found_broken(
    world: VkWorld, fault_driver
) -> None:
    world.lavapipe()
    fault_driver("create-device-crash")
    report = world.run()
    dispatch = probe(report, "dispatch")
    rows = dispatch.facts["devices"]
    assert len(rows) == 1 and rows[0]["verified"] is True  # lavapipe itself still dispatched
    assert dispatch.facts["skipped_broken"]
    assert probe(report, "device").status is Status.CRASHED


def test_device_without_compute_is_not_dispatched(world: VkWorld, fault_driver) -> None:
    fault_driver("no-compute")
    report = world.run()
    assert probe(report, "dispatch").facts["devices"] == []
    assert "device-no-compute-queue" in codes(probe(report, "device"))
