"""The instance probe on real lavapipe and on real faulty drivers and layers, with bisection."""

from __future__ import annotations

import os
import shlex

from conftest import VkWorld, codes, finding, needs_lavapipe, probe

from vkdoctor.report.model import Status

pytestmark = needs_lavapipe
INSTANCE = ["instance"]


def test_lavapipe_instance_and_proc_addresses(world: VkWorld) -> None:
    manifest = world.lavapipe()
    report = world.run(INSTANCE)
    instance = probe(report, "instance")
    assert instance.status in (Status.OK, Status.INFO), codes(instance)
    facts = instance.facts
    assert facts["proc_addr"]["gipa_null_non_null"] >= 4  # the spec's global commands
    assert facts["proc_addr"]["gipa_instance_non_null"] > 100
    (device,) = facts["physical_devices"]
    assert device["type"] == "cpu" and device["driver_name"] == "llvmpipe"
    assert device["driver_manifest"] == str(manifest)
    assert facts["call_chain"][0] == "<Loader>" and facts["call_chain"][-1] == "<Drivers>"
    assert not any(c.startswith("gipa-") for c in codes(instance))


def test_two_drivers_are_mapped_to_their_manifests(world: VkWorld, fault_driver) -> None:
    world.lavapipe()
    _ok_manifest, _ = fault_driver("ok")
    devices = probe(world.run(INSTANCE), "instance").facts["physical_devices"]
    assert len(devices) == 2
    # Both wrap the same lavapipe, so the same device UUID appears under both manifests: the
    # mapping is ambiguous and the record says so instead of picking one.
    for device in devices:
        assert device["driver_manifest"] is None
        assert sorted(device["driver_manifest_candidates"]) == sorted(
            [str(world.icd_dir / "lvp_icd.x86_64.json"), str(_ok_manifest)]
        )


def test_driver_crashing_in_create_instance_is_the_culprit(world: VkWorld, fault_driver) -> None:
    world.lavapipe()
    manifest, _ = fault_driver("create-instance-crash")
    instance = probe(world.run(INSTANCE), "instance")
    assert instance.status is Status.CRASHED
    assert "SIGSEGV" in finding(instance, "instance-creation-crashed").summary
    culprit = finding(instance, "culprit-driver")
    assert str(manifest) in culprit.summary
    assert culprit.remedy.commands[0] == f"export VK_LOADER_DRIVERS_DISABLE={manifest.name}"
    assert len([c for c in codes(instance) if c == "culprit-driver"]) == 1  # lavapipe is innocent


def test_hanging_driver_is_a_timeout_with_culprit(world: VkWorld, fault_driver) -> None:
    world.lavapipe()
    manifest, _ = fault_driver("create-instance-hang")
    instance = probe(world.run(INSTANCE, timeout_s=1.5), "instance")
    assert instance.status is Status.TIMEOUT
    assert str(manifest) in finding(instance, "culprit-driver").summary
    hung = finding(instance, "instance-creation-hung")
    assert hung.evidence["wchan"]  # where the hung threads wait (e.g. hrtimer_nanosleep)


def test_driver_failing_create_instance_alone(world: VkWorld, fault_driver) -> None:
    manifest, _ = fault_driver("create-instance-fail")
    instance = probe(world.run(INSTANCE), "instance")
    assert instance.status is Status.FAIL
    failed = finding(instance, "instance-creation-failed")
    assert "VK_ERROR_INCOMPATIBLE_DRIVER" in failed.summary and "Found no drivers" in failed.summary
    assert str(manifest) in finding(instance, "culprit-driver").summary


def test_implicit_layer_crashing_instance_creation_is_the_culprit(
    world: VkWorld, fault_layer
) -> None:
    world.lavapipe()
    manifest, _, name = fault_layer("create-instance-crash")
    instance = probe(world.run(INSTANCE), "instance")
    assert instance.status is Status.CRASHED
    culprit = finding(instance, "culprit-layer")
    assert name in culprit.summary and str(manifest) in culprit.summary
    assert culprit.remedy.commands[0].startswith("export VKFAULT_DISABLE_")
    assert "culprit-driver" not in codes(instance)


def test_enumeration_crash_names_the_step(world: VkWorld, fault_driver) -> None:
    fault_driver("enumerate-crash")
    instance = probe(world.run(INSTANCE), "instance")
    assert "vkEnumeratePhysicalDevices" in finding(instance, "instance-creation-crashed").summary


def test_zero_devices(world: VkWorld, fault_driver) -> None:
    fault_driver("zero-devices")
    instance = probe(world.run(INSTANCE), "instance")
    assert "no-physical-devices" in codes(instance)
    assert instance.status is Status.FAIL


def test_malformed_manifest_is_named_as_the_cause_of_out_of_host_memory(world: VkWorld) -> None:
    world.lavapipe()
    broken = world.write(world.icd_dir, "broken.json", '{"file_format_version": "1.0.0",}')
    report = world.run(INSTANCE)
    loader = tuple(int(x) for x in probe(report, "loader-discovery").facts["version"].split("."))
    if loader >= (1, 3, 268):
        assert probe(report, "instance").status in (Status.OK, Status.INFO)  # newer loaders skip it
        return
    failed = finding(probe(report, "instance"), "instance-creation-failed")
    assert "VK_ERROR_OUT_OF_HOST_MEMORY" in failed.summary and str(broken) in failed.summary
    invalid = finding(report, "manifest-invalid-json")
    assert "fails every vkCreateInstance" in invalid.summary
    # The fix first (the verdict quotes it), as root without sudo; then how to repair the file.
    disabled = f"{broken}.disabled"
    assert invalid.remedy.commands == (
        shlex.join([*([] if os.geteuid() == 0 else ["sudo"]), "mv", str(broken), disabled])
        + "  # the loader reads only *.json",
        shlex.join(["python3", "-m", "json.tool", disabled])
        + "  # shows the syntax error, to repair it",
    )


def test_hanging_implicit_layer_is_the_culprit(world: VkWorld, fault_layer) -> None:
    world.lavapipe()
    _, _, name = fault_layer("create-instance-hang")
    instance = probe(world.run(INSTANCE, timeout_s=1.5), "instance")
    assert instance.status is Status.TIMEOUT
    assert name in finding(instance, "culprit-layer").summary


def test_hang_in_enumeration_names_the_step(world: VkWorld, fault_driver) -> None:
    fault_driver("enumerate-hang")
    instance = probe(world.run(INSTANCE, timeout_s=1.5), "instance")
    assert instance.status is Status.TIMEOUT
    assert "vkEnumeratePhysicalDevices" in finding(instance, "instance-creation-hung").summary


def test_more_hanging_drivers_than_cores_share_one_deadline(
    world: VkWorld, fault_driver, tmp_path
) -> None:
    """Hanging candidates stop holding a core once they wait, and every candidate runs under one
    deadline: each hanging driver is either named (it hung in a full --timeout of its own) or
    listed untried (the shared deadline cut it short), never both; lavapipe is never named (it
    may be untried: it queues behind the hangs)."""
    import faultlib

    from vkdoctor.engine.bisect import max_parallel_children

    world.lavapipe()
    first, library = fault_driver("create-instance-hang")
    hanging = [first]
    # Distinct libraries (hard links), so that bisection does not group them into one candidate.
    for n in range(2 * max_parallel_children() + 1):
        copy = tmp_path / f"libhang{n}.so"
        os.link(library, copy)
        hanging.append(faultlib.write_driver_manifest(world.icd_dir, str(copy), name=f"hang{n}"))
    instance = probe(world.run(INSTANCE, timeout_s=1.5), "instance")
    assert instance.status is Status.TIMEOUT
    named = {f.evidence["manifest"] for f in instance.findings if f.code == "culprit-driver"}
    limited = [f for f in instance.findings if f.code == "bisection-limited"]
    untried = set(limited[0].evidence["untried"]) if limited else set()
    assert named and not named & untried
    assert named <= {str(m) for m in hanging} <= named | untried
    assert "no-single-driver-culprit" not in codes(instance)  # lavapipe alone works
