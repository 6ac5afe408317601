"""``vkdoctor kernels`` and the parent side of the kernel suite, on the real lavapipe device.

Kernels run in child processes; faults are real (a SIGSEGV, a sleep past the deadline) in a
wrapper task around the real suite (tests/kerneltasks.py).  Sizes are tiny: seconds, not minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import needs_lavapipe

from vkdoctor import cli
from vkdoctor.kernels import fmt as kernelfmt
from vkdoctor.kernels.peaks import BANDWIDTH, FP32, figure, known_peak, measured_peak
from vkdoctor.kernels.run import (
    DevicesSeen,
    KernelFinished,
    KernelRequest,
    KernelRun,
    KernelSession,
    KernelStarted,
    SuiteFinished,
    SuiteStarted,
    merge_into_report,
)
from vkdoctor.kernels.suite import KERNELS
from vkdoctor.report.io import load_report
from vkdoctor.report.model import Report, Severity, Status

TESTS = str(Path(__file__).parent)
FAULT_TASK = "kerneltasks:suite_with_fault"
TINY = KernelRequest(size="tiny", seed=7)
BROKEN_ICD = {
    "file_format_version": "1.0.0",
    "ICD": {"library_path": "/opt/vendor/lib/libvulkan_vendor.so", "api_version": "1.3.239"},
}


# -- peaks and formatting ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM5"),
        ("NVIDIA H100 PCIe", "NVIDIA H100 PCIe"),
        ("NVIDIA H100 NVL", "NVIDIA H100 NVL"),
        ("NVIDIA H200", "NVIDIA H200 SXM"),
        ("NVIDIA H200 NVL", "NVIDIA H200 NVL"),
        ("NVIDIA A100-SXM4-80GB", "NVIDIA A100 SXM4 80GB"),
        ("NVIDIA A100 80GB PCIe", "NVIDIA A100 80GB PCIe"),
        ("NVIDIA A100-PCIE-40GB", "NVIDIA A100 40GB"),
        ("NVIDIA GH200 480GB", None),
        ("llvmpipe (LLVM 15.0.6, 256 bits)", None),
    ],
)
def test_known_peaks_by_device_name(name: str, expected: str | None) -> None:
    peak = known_peak(name)
    assert (peak.name if peak else None) == expected


def test_h100_sxm_peak_figures() -> None:
    peak = known_peak("NVIDIA H100 80GB HBM3")
    assert peak is not None and peak.source == "datasheet"
    assert (peak.bandwidth_gbs, peak.fp32_gflops, peak.fp16_gflops) == (3350, 67000, 134000)
    fig = figure({"kernel": "copy-vec4", "status": "ok", "gb_per_s": 2680.0}, peak)
    assert fig is not None and fig.metric == BANDWIDTH and fig.fraction == pytest.approx(0.8)
    assert kernelfmt.figure_text(fig) == "2.68 TB/s" and kernelfmt.fraction(fig.fraction) == "80%"


def test_measured_peak_is_the_best_of_the_run() -> None:
    results = [
        {"kernel": "copy", "status": "ok", "gb_per_s": 10.0},
        {"kernel": "copy-vec4", "status": "ok", "gb_per_s": 40.0},
        {"kernel": "reduce", "status": "wrong-result", "gb_per_s": 99.0},  # not a figure
        {"kernel": "sgemm", "status": "ok", "gflop_per_s": 5.0, "gb_per_s": 0.1},
    ]
    peak = measured_peak("some GPU", results)
    assert (peak.source, peak.bandwidth_gbs, peak.fp32_gflops, peak.fp16_gflops) == (
        "measured",
        40.0,
        5.0,
        None,
    )
    # The best figure of the same run is no independent peak: no fraction, "n/a" in the tables.
    copy = figure(results[0], peak)
    assert copy is not None and copy.peak == 40.0 and copy.fraction is None
    sgemm = figure(results[3], peak)
    assert sgemm is not None and sgemm.metric == FP32 and sgemm.fraction is None
    assert kernelfmt.of_peak(sgemm) == "n/a" and kernelfmt.of_peak(None) == "-"
    assert figure(results[2], peak) is None


def test_text_forms() -> None:
    assert kernelfmt.time_ns(950) == "950 ns"
    assert kernelfmt.time_ns(2_540_000) == "2.54 ms"
    assert kernelfmt.rate(0.0768, FP32) == "0.0768 GFLOP/s"
    assert kernelfmt.rate(51000, FP32) == "51.0 TFLOP/s"
    assert kernelfmt.fraction(0.0004) == "<0.1%" and kernelfmt.fraction(0.025) == "2.5%"
    assert kernelfmt.problem_size({"sizes": {"bytes": 16 << 20}}) == "16 MiB"
    assert kernelfmt.problem_size({"sizes": {"m": 256, "n": 256, "k": 256}}) == "256³"
    assert kernelfmt.problem_size({"sizes": {"width": 131, "height": 67, "radius": 2}}) == (
        "131×67 r2"
    )


# -- the session on real lavapipe ----------------------------------------------------------------


def _fault_environ(fault: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": TESTS, "VKDOCTOR_TEST_FAULT": fault}


@needs_lavapipe
def test_session_streams_events_and_verifies_every_kernel() -> None:
    events: list[object] = []
    run = KernelSession(TINY, on_event=events.append).run()
    assert not run.findings and not run.internal_errors and run.seed == 7
    device = run.runs[0]
    assert device.preset == "tiny" and device.sizes["repetitions"] == 2
    # lavapipe has no cooperative matrices; every other kernel runs and verifies.
    assert [(r.kernel, r.status) for r in device.rows if r.status != "ok"] == [
        ("hgemm-coopmat", "unsupported")
    ]
    rows = [r for r in device.rows if r.status == "ok"]
    assert len(rows) == 9
    assert device.peak is not None and device.peak.source == "measured"
    assert all(r.figure is not None and r.figure.fraction is None for r in rows)
    # Events arrive while the child runs, in order: devices, suite, (started, finished)*, done.
    kinds = [type(e) for e in events]
    assert kinds[:2] == [DevicesSeen, SuiteStarted] and kinds[-1] is SuiteFinished
    assert kinds[2:-1] == [KernelStarted, KernelFinished] * len(KERNELS)
    finished = [e for e in events if isinstance(e, KernelFinished)]
    assert [e.position for e in finished] == list(range(len(KERNELS)))
    # The report form round-trips.
    probe = run.to_probe()
    # INFO, not OK: the unsupported cooperative-matrix kernel is an info finding.
    assert probe.id == "kernels" and probe.status is Status.INFO
    assert [f.code for f in probe.findings] == ["kernel-unsupported"]
    again = KernelRun.from_facts(json.loads(json.dumps(probe.to_dict()))["facts"], probe.findings)
    assert again.runs[0].rows == device.rows and again.seed == 7


@needs_lavapipe
def test_a_crashing_kernel_is_a_finding_and_the_suite_goes_on() -> None:
    request = KernelRequest(size="tiny", seed=1, kernels=("copy", "saxpy", "reduce"))
    session = KernelSession(request, environ=_fault_environ("crash:saxpy"), task=FAULT_TASK)
    run = session.run()
    rows = {r.kernel: r for r in run.runs[0].rows}
    assert [r.kernel for r in run.runs[0].rows] == ["copy", "saxpy", "reduce"]
    assert rows["saxpy"].status == "crashed" and rows["copy"].status == "ok"
    assert rows["reduce"].status == "ok"  # resumed in a fresh child
    finding = rows["saxpy"].finding
    assert finding is not None and finding.code == "kernel-crashed"
    assert finding.evidence["signal"] == "SIGSEGV" and "SAXPY" in finding.evidence["last_step"]
    assert run.status() is Status.CRASHED and not run.internal_errors


@needs_lavapipe
def test_a_hanging_kernel_is_killed_and_its_device_skipped() -> None:
    request = KernelRequest(size="tiny", seed=1, kernels=("copy", "sgemm", "conv2d"), timeout_s=4.0)
    run = KernelSession(request, environ=_fault_environ("hang:sgemm"), task=FAULT_TASK).run()
    statuses = [(r.kernel, r.status) for r in run.runs[0].rows]
    assert statuses == [("copy", "ok"), ("sgemm", "hung"), ("conv2d", "skipped")]
    finding = run.runs[0].rows[1].finding
    assert finding is not None and finding.code == "kernel-hung"
    assert run.status() is Status.TIMEOUT


@needs_lavapipe
def test_cancel_kills_the_child() -> None:
    request = KernelRequest(size="tiny", kernels=("copy", "sgemm"), timeout_s=60.0)
    started = threading.Event()

    def on_event(event: object) -> None:
        if isinstance(event, KernelStarted) and event.kernel == "sgemm":
            started.set()

    session = KernelSession(
        request, environ=_fault_environ("hang:sgemm"), on_event=on_event, task=FAULT_TASK
    )
    result: list[KernelRun] = []
    worker = threading.Thread(target=lambda: result.append(session.run()))
    worker.start()
    assert started.wait(30)
    session.cancel()
    worker.join(10)
    assert not worker.is_alive() and result[0].cancelled
    assert [r.kernel for r in result[0].runs[0].rows] == ["copy"]


def test_no_vulkan_driver_is_a_finding(tmp_path: Path) -> None:
    manifest = tmp_path / "vendor_icd.json"
    manifest.write_text(json.dumps(BROKEN_ICD))
    environ = {**os.environ, "VK_DRIVER_FILES": str(manifest)}
    run = KernelSession(TINY, environ=environ).run()
    assert not run.runs and [f.code for f in run.findings] == ["kernels-no-vulkan"]
    assert (
        run.findings[0].remedy is not None and "vkdoctor check" in run.findings[0].remedy.commands
    )


def test_merge_into_report_replaces_runs_of_the_same_device() -> None:
    report = load_report(str(Path(TESTS) / "fixtures" / "tui" / "healthy.json"))
    first = KernelRun.from_report(report)
    assert first is not None and first.runs
    slower = first.runs[0].rows[0].result | {"gb_per_s": 0.001}
    changed = first.runs[0].__class__(**{**first.runs[0].__dict__, "rows": ()})
    rerun = KernelRun(first.request, seed=99, runs=(changed,))
    merged = merge_into_report(report, rerun)
    assert [p.id for p in merged.probes].count("kernels") == 1
    again = KernelRun.from_report(merged)
    assert again is not None and again.seed == 99 and again.runs[0].rows == ()
    assert slower["gb_per_s"] == 0.001  # the original report is untouched:
    assert KernelRun.from_report(report).runs[0].rows  # type: ignore[union-attr]


# -- the command line ----------------------------------------------------------------------------


@needs_lavapipe
def test_cli_prints_a_table_and_writes_an_embeddable_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "kernels.json"
    code = cli.main(
        ["kernels", "--size", "tiny", "--kernels", "copy,sgemm", "--seed", "3", "--json", str(out)]
    )
    text = capsys.readouterr().out
    assert code == 0
    assert "seed 3" in text and "llvmpipe" in text and "measured peak" in text
    for word in ("copy", "sgemm", "GB/s", "GFLOP/s", "n/a", "tiny"):
        assert word in text
    report = load_report(str(out))
    probe = report.probes[0]
    assert [p.id for p in report.probes] == ["kernels"] and probe.status is Status.OK
    run = probe.facts["runs"][0]
    assert run["device"]["name"].startswith("llvmpipe") and run["sizes"]["repetitions"] == 2
    row = run["results"][0]
    assert row["kernel"] == "copy" and row["check"]["passed"] and row["timing"]["median_ns"] > 0
    assert row["figure"]["peak_source"] == "measured" and isinstance(row["seed"], int)
    assert probe.facts["host"]["cpu_count"] and report.environment  # for the benchmark note


@needs_lavapipe
def test_into_a_pipe_each_result_is_printed_once() -> None:
    """``vkdoctor kernels | cat``: no live progress lines, the final table once."""
    proc = subprocess.run(
        [sys.executable, "-m", "vkdoctor", "kernels", "--size", "tiny", "--kernels", "copy,sgemm"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]
    assert rows.count("copy") == 1 and rows.count("sgemm") == 1, proc.stdout
    assert not any(line.startswith("device ") for line in proc.stdout.splitlines())


@needs_lavapipe
def test_cli_json_to_stdout_keeps_stdout_parseable(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["kernels", "--size", "tiny", "--kernels", "fma-fp32", "--json", "-"])
    captured = capsys.readouterr()
    assert code == 0
    data = json.loads(captured.out)
    assert data["probes"][0]["facts"]["runs"][0]["results"][0]["status"] == "ok"
    assert "fma-fp32" in captured.err  # the table went to stderr


def test_cli_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["kernels", "--kernels", "copy,nope"]) == 2
    assert "unknown kernel nope" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["kernels", "--device", "first"])
    assert exc.value.code == 2
    assert cli.main(["kernels", "--list-kernels"]) == 0
    assert "sgemm" in capsys.readouterr().out


@needs_lavapipe
def test_cli_names_a_device_that_does_not_exist(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["kernels", "--size", "tiny", "--kernels", "copy", "--device", "9"]) == 2
    assert "no device 9; present: 0 (llvmpipe" in capsys.readouterr().err


def test_cli_without_vulkan_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "vendor_icd.json"
    manifest.write_text(json.dumps(BROKEN_ICD))
    monkeypatch.setenv("VK_DRIVER_FILES", str(manifest))
    assert cli.main(["kernels", "--size", "tiny", "--no-color"]) == 1
    text = capsys.readouterr().out
    assert "no Vulkan instance for the kernel suite" in text and "vkdoctor check" in text


def test_new_codes_are_explained(capsys: pytest.CaptureFixture[str]) -> None:
    for code in ("kernel-crashed", "kernel-hung", "kernels-no-vulkan", "kernel-device-unusable"):
        assert cli.main(["explain", code]) == 0
    assert "Remedy" in capsys.readouterr().out


def test_parent_side_modules_stay_headless() -> None:
    modules = [
        "vkdoctor.kernels.run",
        "vkdoctor.kernels.peaks",
        "vkdoctor.kernels.fmt",
        "vkdoctor.tasks.kernels",
        "vkdoctor.commands.kernels",
        "vkdoctor.tui",
    ]
    code = "import importlib, sys\n"
    code += "".join(f"importlib.import_module({m!r})\n" for m in modules)
    code += "import vkdoctor.cli as c; c.build_parser()\n"
    code += "print(sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'textual'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_report_from_kernels_alone_is_a_valid_report(tmp_path: Path) -> None:
    from vkdoctor.kernels.run import kernel_report
    from vkdoctor.report.io import write_report

    report = kernel_report(KernelRun(TINY, seed=1), {"os": {"id": "debian"}})
    write_report(report, str(tmp_path / "r.json"))
    loaded = load_report(str(tmp_path / "r.json"))
    assert isinstance(loaded, Report) and loaded.probes[0].id == "kernels"
    assert not [f for f in loaded.probes[0].findings if f.severity is Severity.FAIL]
