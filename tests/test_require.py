"""The --require grammar and its evaluation on device records built here (inputs, not output)."""

from __future__ import annotations

import re

import pytest

from vkdoctor.report.model import ProbeResult, Report, Status
from vkdoctor.report.records import DeviceRecord, LoaderRecord, Memory, MemoryHeap, QueueFamily
from vkdoctor.report.records import Subgroup as SubgroupRecord
from vkdoctor.require import (
    RequirementError,
    apply,
    best_device,
    evaluate,
    parse,
    parse_all,
)
from vkdoctor.require.grammar import split_list

GIB = 2**30


@pytest.mark.parametrize(
    ("text", "key", "op", "value"),
    [
        ("api>=1.3", "api", ">=", (1, 3)),
        ("api < 1.2.199", "api", "<", (1, 2, 199)),
        ("api==1.3", "api", "=", (1, 3)),
        ("loader>=1.3.250", "loader", ">=", (1, 3, 250)),
        ("memory>=16GiB", "memory", ">=", 16 * GIB),
        ("memory>1.5GB", "memory", ">", 1_500_000_000),
        ("memory<=512MiB", "memory", "<=", 512 * 2**20),
        ("subgroup>=32", "subgroup", ">=", 32),
        ("vendor=nvidia", "vendor", "=", 0x10DE),
        ("vendor=0x10de", "vendor", "=", 0x10DE),
        ("vendor=mesa", "vendor", "=", 0x10005),
        ("type=discrete-gpu|integrated-gpu", "type", "=", ("discrete-gpu", "integrated-gpu")),
        ("queue=compute", "queue", "=", ("compute",)),
        ("extension=VK_KHR_cooperative_matrix", "extension", "=", "VK_KHR_cooperative_matrix"),
        ("gpu", "gpu", "", None),
        ("dispatch", "dispatch", "", None),
        ("name=llvmpipe", "name", "=", "llvmpipe"),
        ("devices>=8", "devices", ">=", 8),
        ("devices = 2", "devices", "=", 2),
        ("feature=shaderFloat16", "feature", "=", "shaderFloat16"),
        (
            "feature=VkPhysicalDeviceVulkan12Features.bufferDeviceAddress",
            "feature",
            "=",
            "VkPhysicalDeviceVulkan12Features.bufferDeviceAddress",
        ),
    ],
)
def test_parse(text: str, key: str, op: str, value: object) -> None:
    requirement = parse(text)
    assert (requirement.key, requirement.op, requirement.value) == (key, op, value)


def test_regex_values_are_compiled_case_insensitively() -> None:
    value = parse("name~=RTX [0-9]+").value
    assert isinstance(value, re.Pattern) and value.search("NVIDIA GeForce rtx 4090")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("bogus", "unknown key 'bogus'"),
        ("api", "api needs an operator"),
        ("api>=", "needs a value"),
        ("api>=one", "not a version"),
        ("api~=1.3", "compares with one of"),
        ("memory>=lots", "not a size"),
        ("subgroup>=3.5", "not a whole number"),
        ("type=gpu", "'gpu' is not one of"),
        ("queue=video", "'video' is not one of"),
        ("vendor=acme", "unknown vendor 'acme'"),
        ("name~=(", "bad regular expression"),
        ("gpu=yes", "gpu takes no value"),
        ("extension=cooperative", "not an extension name"),
        ("=1.3", "expected KEY"),
        ("feature=Bad.x", "not a feature like shaderFloat16"),
        ("feature", "feature needs an operator"),
        ("devices>=x", "'x' is not a whole number"),
        ("devices", "devices needs an operator"),
        ("devices~=2", "devices compares with one of"),
    ],
)
def test_malformed_expressions_name_themselves_and_the_grammar(text: str, why: str) -> None:
    with pytest.raises(RequirementError) as caught:
        parse(text)
    message = str(caught.value)
    assert f"{text!r}" in message and why in message
    assert "grammar: KEY[OP VALUE]" in message and "\n" not in message


def test_environment_list_splits_on_semicolons() -> None:
    assert split_list(" gpu; api>=1.3 ;;") == ["gpu", "api>=1.3"]
    assert [r.key for r in parse_all(split_list("gpu;api>=1.3"))] == ["gpu", "api"]


def _device(
    index: int, name: str, kind: str, vendor: int, heap_gib: int, **kw: object
) -> DeviceRecord:
    heaps = (MemoryHeap(heap_gib * GIB, ("device-local",)), MemoryHeap(64 * GIB))
    return DeviceRecord(
        index=index,
        name=name,
        type=kind,
        vendor_id=vendor,
        api_version=str(kw.pop("api", "1.3.275")),
        driver_name=str(kw.pop("driver_name", "NVIDIA")),
        driver_info=str(kw.pop("driver_info", "550.54")),
        device_uuid=f"{index:032x}",
        memory=Memory(heaps=heaps),
        queue_families=tuple(kw.pop("queues", (QueueFamily(0, 1, ("graphics", "compute")),))),
        subgroup=kw.pop("subgroup", SubgroupRecord(32)),  # type: ignore[arg-type]
        extensions=tuple(kw.pop("extensions", ("VK_KHR_cooperative_matrix",))),  # type: ignore[arg-type]
        features=tuple(kw.pop("features", ("VkPhysicalDeviceVulkan12Features.shaderFloat16",))),  # type: ignore[arg-type]
    )


def _report(*devices: DeviceRecord, verified: tuple[int, ...] = ()) -> Report:
    dispatch = ProbeResult(
        "dispatch",
        "Dispatch",
        Status.OK,
        facts={"devices": [{"index": i, "verified": True} for i in verified]},
    )
    return Report(
        tool_version="test",
        created="",
        probes=[dispatch],
        loader=LoaderRecord("libvulkan.so.1", version="1.3.275"),
        devices=list(devices),
    )


LLVMPIPE = _device(
    1,
    "llvmpipe (LLVM 15.0.6, 256 bits)",
    "cpu",
    0x10005,
    2,
    api="1.3.230",
    driver_name="llvmpipe",
    driver_info="Mesa 22.3.6",
    subgroup=SubgroupRecord(8),
    queues=(QueueFamily(0, 1, ("graphics", "compute", "transfer")),),
    extensions=(),
    features=("VkPhysicalDeviceFeatures.shaderInt64",),
)
RTX = _device(0, "NVIDIA GeForce RTX 4090", "discrete-gpu", 0x10DE, 24)
IGPU = _device(2, "Intel(R) UHD Graphics 770", "integrated-gpu", 0x8086, 48)


@pytest.mark.parametrize(
    ("expressions", "matching"),
    [
        (["gpu"], [0, 2]),
        (["type=cpu"], [1]),
        (["api>=1.3.250"], [0, 2]),
        (["api>=1.3"], [0, 1, 2]),  # 1.3 means 1.3.0
        (["api<1.3"], []),
        (["loader>=1.3.275"], [0, 1, 2]),
        (["loader>1.3.275"], []),
        (["memory>=16GiB"], [0, 2]),
        (["memory>=32GiB"], [2]),  # the 64 GiB host heap is not device-local
        (["vendor=nvidia"], [0]),
        (["vendor=0x10005"], [1]),
        (["name~=rtx"], [0]),
        (["driver~=^mesa"], []),
        (["driver~=mesa"], [1]),  # the driver info is searched too
        (["driver=llvmpipe"], [1]),
        (["queue=transfer"], [0, 1, 2]),  # graphics and compute queues also transfer
        (["subgroup>=32"], [0, 2]),
        (["extension=VK_KHR_cooperative_matrix"], [0, 2]),
        (["dispatch"], [1]),
        (["feature=shaderFloat16"], [0, 2]),
        (["feature=VkPhysicalDeviceVulkan12Features.shaderFloat16"], [0, 2]),
        (["feature=VkPhysicalDeviceVulkan11Features.shaderFloat16"], []),
        (["gpu", "dispatch"], []),
    ],
)
def test_evaluation_per_device(expressions: list[str], matching: list[int]) -> None:
    report = _report(RTX, LLVMPIPE, IGPU, verified=(1,))
    evaluation = evaluate(report, parse_all(expressions))
    assert sorted(d.index for d in evaluation.matching) == matching
    assert evaluation.met is bool(matching)


def test_best_device_prefers_discrete_then_memory() -> None:
    report = _report(LLVMPIPE, IGPU, RTX)
    assert best_device(evaluate(report, [])).index == 0  # nothing required: the best of all
    assert best_device(evaluate(report, parse_all(["api>=1.0"]))).index == 0
    assert best_device(evaluate(report, parse_all(["memory>=32GiB"]))).index == 2
    bigger_igpu = _device(3, "iGPU", "integrated-gpu", 0x8086, 96)
    assert best_device(evaluate(_report(IGPU, bigger_igpu), parse_all(["gpu"]))).index == 3


def test_unmet_finding_says_what_each_device_has() -> None:
    report = _report(LLVMPIPE, verified=(1,))
    evaluation = apply(report, parse_all(["gpu", "subgroup>=32"]))
    assert not evaluation.met
    step = report.probes[-1]
    assert step.id == "requirements" and step.status is Status.FAIL
    (finding,) = step.findings
    assert finding.code == "requirement-unmet" and finding.severity.value == "fail"
    assert finding.summary == (
        "no device meets gpu, subgroup>=32: device 1 llvmpipe (LLVM 15.0.6, 256 bits) has "
        "type cpu (not a GPU), subgroup size 8"
    )
    assert finding.id in report.root_causes
    assert "no device meets gpu" in report.verdict
    # Gating again replaces the step instead of adding a second one.
    assert apply(report, parse_all(["type=cpu"])).met
    assert [p.id for p in report.probes].count("requirements") == 1
    assert report.probes[-1].findings[0].code == "requirement-met"


@pytest.mark.parametrize(
    ("expressions", "met", "summary"),
    [
        (
            ["devices>=3"],
            True,
            "3 Vulkan devices found, as devices>=3 asks: device 0 NVIDIA GeForce RTX 4090; "
            "device 1 llvmpipe (LLVM 15.0.6, 256 bits); device 2 Intel(R) UHD Graphics 770",
        ),
        (["devices>=4"], False, "devices>=4 unmet: 3 Vulkan devices found"),
        (
            ["gpu", "devices>=3"],
            False,
            "devices>=3 unmet: 2 of 3 devices meet gpu: device 1 llvmpipe (LLVM 15.0.6, 256 "
            "bits) has type cpu (not a GPU)",
        ),
        (
            ["gpu", "devices=2"],
            True,
            "2 of 3 devices meet gpu, as devices=2 asks: device 0 NVIDIA GeForce RTX 4090; "
            "device 2 Intel(R) UHD Graphics 770",
        ),
        (
            ["vendor=nvidia", "devices>1", "devices<=2"],
            False,
            "devices>1 unmet: 1 of 3 devices meets vendor=nvidia: device 1 llvmpipe (LLVM "
            "15.0.6, 256 bits) has vendor 0x10005 (mesa); device 2 Intel(R) UHD Graphics 770 "
            "has vendor 0x8086 (intel)",
        ),
        (
            ["gpu", "dispatch", "devices<1"],
            True,
            "0 of 3 devices meet gpu, dispatch, as devices<1 asks",
        ),
    ],
)
def test_devices_counts_the_devices_meeting_the_rest(
    expressions: list[str], met: bool, summary: str
) -> None:
    report = _report(RTX, LLVMPIPE, IGPU, verified=(1,))
    evaluation = evaluate(report, parse_all(expressions))
    assert evaluation.met is met
    assert evaluation.summary() == summary
    # The count is not a per-device check: each device's verdict lists only the others.
    assert all(c.requirement.key != "devices" for v in evaluation.devices for c in v.checks)


def test_devices_without_any_device_and_as_a_finding() -> None:
    assert evaluate(_report(), parse_all(["devices>=1"])).summary() == (
        "devices>=1 unmet: no Vulkan device was found"
    )
    report = _report(RTX, LLVMPIPE, verified=(0, 1))
    evaluation = apply(report, parse_all(["dispatch", "devices>=8"]))
    (finding,) = report.probes[-1].findings
    assert finding.code == "requirement-unmet" and finding.severity.value == "fail"
    assert finding.summary == "devices>=8 unmet: 2 of 2 devices meet dispatch"
    assert finding.id in report.root_causes
    assert [d.index for d in evaluation.matching] == [0, 1]
    assert best_device(evaluation) is not None  # --device-select still ranks the matching ones


def test_no_device_at_all_is_named() -> None:
    evaluation = evaluate(_report(), parse_all(["gpu"]))
    assert evaluation.summary() == "no device meets gpu: no Vulkan device was found"


def test_requirement_codes_are_catalogued() -> None:
    from vkdoctor.report.codes import all_codes

    assert all_codes()["requirement-unmet"].severity.value == "fail"


def test_require_and_the_plugin_stay_headless_and_never_load_vulkan() -> None:
    """The plugin evaluates in the pytest process: no rich/textual, no binding, no libvulkan."""
    import subprocess
    import sys

    code = (
        "import sys, vkdoctor.require, vkdoctor.require.cli, vkdoctor.pytest_plugin\n"
        "from vkdoctor.require import parse_all\n"
        "parse_all(['gpu', 'api>=1.3'])\n"
        "mods = sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'textual', 'vulkan'))\n"
        "maps = open('/proc/self/maps').read()\n"
        "print(mods, 'libvulkan' in maps)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[] False", done.stderr
