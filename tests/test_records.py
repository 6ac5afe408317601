"""The typed report records: the schema generated from them, round trips, and version 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import VkWorld, needs_lavapipe

from vkdoctor.cli import main
from vkdoctor.engine.runner import Options, run_pipeline
from vkdoctor.kernels.run import KernelRun
from vkdoctor.render.markdown import render_markdown
from vkdoctor.report import codec
from vkdoctor.report.io import load_report
from vkdoctor.report.model import SCHEMA_VERSION, Report
from vkdoctor.report.records import DeviceRecord, DriverRecord, Exclusion, ExclusionReason
from vkdoctor.report.schema import validate, without_volatile
from vkdoctor.report.schema_gen import schema_text

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (REPO / "reports").glob("*.json") if p.name != "report.schema.json")
V1 = sorted((REPO / "tests" / "fixtures" / "v1").glob("*.json"))


@pytest.mark.parametrize(
    "copy", ["vkdoctor/report/report.schema.json", "reports/report.schema.json"]
)
def test_committed_schema_is_the_generated_one(copy: str) -> None:
    # After changing a record: python -m vkdoctor.report.schema_gen --write, and review the diff.
    assert (REPO / copy).read_text(encoding="utf-8") == schema_text()


def test_schema_requires_the_record_fields_without_defaults() -> None:
    schema = json.loads(schema_text())
    driver = schema["$defs"]["DriverRecord"]
    assert driver["required"] == ["manifest"]
    assert driver["properties"]["excluded_by"]["items"] == {"$ref": "#/$defs/Exclusion"}
    assert schema["$defs"]["Exclusion"]["properties"]["reason"]["enum"] == [
        r.value for r in ExclusionReason
    ]
    device = schema["$defs"]["DeviceRecord"]["properties"]
    assert device["vendor_id"] == {"type": "integer"}
    # A version-1 id ("10de") in a version-2 report is refused by the schema.
    bad = json.loads((REPO / "reports" / "healthy-lavapipe.json").read_text())
    bad["devices"][0]["vendor_id"] = "10005"
    assert any("vendor_id" in e.path for e in validate(bad))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_round_trip_through_the_records(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["schema_version"] == SCHEMA_VERSION
    again = Report.from_dict(data).to_dict()
    assert json.dumps(without_volatile(again), sort_keys=True) == json.dumps(
        without_volatile(data), sort_keys=True
    )


def test_records_read_odd_shapes_as_defaults() -> None:
    record = codec.from_json(
        DriverRecord,
        {"manifest": "/m.json", "elf_class": "64", "issues": ["a", 3], "excluded_by": [{}]},
    )
    assert record.elf_class is None  # a string is not an int: default, not a crash
    assert record.issues == ("a",)
    assert record.excluded_by == (Exclusion(ExclusionReason.FILTERED, ""),)


@pytest.mark.parametrize("path", V1, ids=[p.stem for p in V1])
def test_version_1_reports_open_and_render(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = load_report(str(path))
    assert report.read_from_schema == 1
    for device in report.devices:
        assert isinstance(device.vendor_id, int) and isinstance(device.device_id, int)
    assert validate(json.loads(path.read_text())) == []
    for command in ("show", "validate", "markdown"):
        assert main(["report", command, str(path)]) == 0, command
    capsys.readouterr()
    assert "schema 1 ·" in render_markdown(report)


def test_version_1_identity_is_the_version_2_identity() -> None:
    """The H200 in the v1 check report ("10de", "2335") and the v1 kernels report ("0x10de",
    "uuid" for the pipeline-cache UUID, a driver-id name) read as the same device."""
    check = load_report(str(REPO / "tests/fixtures/v1/nvidia-gpu.json")).devices[0]
    kernels = KernelRun.from_report(
        load_report(str(REPO / "tests/fixtures/v1/nvidia-h200-kernels.json"))
    )
    assert kernels is not None
    ran = kernels.runs[0].device
    assert (check.vendor_id, check.device_id) == (ran.vendor_id, ran.device_id) == (0x10DE, 0x2335)
    assert check.pipeline_cache_uuid == "dd417e4b11b1aba949b577eed4fbe38d"
    # Version 1's kernels report called the pipeline-cache UUID "uuid" (and redaction took it for
    # a machine id); it is read into the field it really is.
    assert ran.pipeline_cache_uuid == "<machine-id>" and ran.device_uuid is None
    assert check.driver_id == ran.driver_id == 4  # VK_DRIVER_ID_NVIDIA_PROPRIETARY


def test_kernels_report_renders_its_table_everywhere(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = str(REPO / "reports" / "nvidia-h200-kernels.json")
    assert main(["report", "show", path]) == 0
    shown = capsys.readouterr().out
    assert "sgemm" in shown and "44.5 TFLOP/s" in shown  # the H200 run in the report
    markdown = render_markdown(load_report(path))
    assert "| sgemm | 8192³ | ok |" in markdown
    assert "No driver manifest was found" not in markdown
    # A version-1 kernels report and its version-2 form compare as the same run.
    older = REPO / "tests/fixtures/v1/nvidia-h200-kernels.json"
    newer = tmp_path / "v2.json"
    newer.write_text(json.dumps(Report.from_dict(json.loads(older.read_text())).to_dict()))
    assert main(["report", "diff", str(older), str(newer), "--json", "-"]) == 0
    diff = json.loads(capsys.readouterr().out)
    assert diff["identical"] is True


@needs_lavapipe
def test_loader_log_is_stored_once(world: VkWorld) -> None:
    """A real run: the lines every probe's loader prints alike are stored once in the report's
    table and referred to by index (not copied into each probe, as version 1 did)."""
    world.lavapipe()
    # Two probes whose children each start the loader: enough to share lines (each in a child
    # of its own; a shared child prints the loader's version line once).
    run = run_pipeline(world.env(), Options(reuse_children=False), ["loader-discovery", "instance"])
    data = json.loads(json.dumps(run.report.to_dict()))
    table = data["loader_log"]
    keys = [(e["level"], e["message"]) for e in table]
    assert len(keys) == len(set(keys))
    refs = [set(p["loader_log"]) for p in data["probes"]]
    assert all(0 <= i < len(table) for r in refs for i in r)
    shared = [i for i in range(len(table)) if sum(i in r for r in refs) > 1]
    assert shared  # the loader version line, the manifest search: printed by several probes
    assert "Vulkan Loader Version " + data["loader"]["version"] in {
        table[i]["message"] for i in shared
    }
    # A version-1 report (lines copied into each probe) is read into the same form: one entry per
    # distinct line of the file, counted from the file itself.
    old = json.loads((REPO / "tests/fixtures/v1/healthy-lavapipe.json").read_text())
    distinct = {(e["level"], e["message"]) for p in old["probes"] for e in p["loader_log"]}
    upgraded = Report.from_dict(old).to_dict()["loader_log"]
    assert sorted((e["level"], e["message"]) for e in upgraded) == sorted(distinct)


def test_device_record_helpers() -> None:
    device = DeviceRecord(index=0, name="llvmpipe", vendor_id=0x10005, device_id=0)
    assert device.ids == "10005:0000" and device.driver == "unknown driver"
