"""``check --prometheus`` and ``kernels --prometheus`` against the real thing: Debian's
node_exporter (started here, only its textfile collector) scrapes what the real ``vkdoctor check``
wrote, over HTTP; ``promtool`` checks the files and the example alert rules.

Expected values come from the real loader (``vulkaninfo``), the variables and file names the test
sets, and node_exporter's own parser, not from vkdoctor's report.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import VkWorld, needs_lavapipe

NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
PROMTOOL = shutil.which("promtool")
REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "examples" / "prometheus" / "vkdoctor.rules.yml"
RULE_TESTS = REPO / "examples" / "prometheus" / "vkdoctor.rules.test.yml"

needs_node_exporter = pytest.mark.skipif(
    NODE_EXPORTER is None,
    reason="prometheus-node-exporter is not installed (bootstrap.sh test installs it)",
)
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian's prometheus package)"
)


# -- a scrape, parsed ---------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


@dataclass(frozen=True)
class Series:
    name: str
    labels: dict[str, str]
    value: float


def parse_exposition(text: str) -> list[Series]:
    """The text format as Prometheus reads it (comments skipped, label values unescaped)."""
    out: list[Series] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, body, value = match.groups()
        labels: dict[str, str] = {}
        pos = 0
        while body and pos < len(body):
            label = _LABEL.match(body, pos)
            assert label, f"bad labels in {line!r}"
            labels[label[1]] = re.sub(r"\\[\\\"n]", lambda m: _UNESCAPE[m[0]], label[2])
            pos = label.end()
        out.append(Series(name, labels, float(value)))
    return out


def only(series: list[Series], name: str, **labels: str) -> Series:
    found = [
        s for s in series if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, f"{name}{labels}: {found}"
    return found[0]


def named(series: list[Series], name: str) -> list[Series]:
    return [s for s in series if s.name == name]


# -- the real programs --------------------------------------------------------------------------


def vkdoctor(world: VkWorld, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vkdoctor", *args],
        capture_output=True,
        text=True,
        env={**world.environ, **env},
        timeout=180,
    )


def vulkaninfo_summary(world: VkWorld, **env: str) -> dict[str, str]:
    """What the real loader says about the world: instance version and device 0's identity."""
    if shutil.which("vulkaninfo") is None:
        pytest.skip("vulkaninfo (vulkan-tools) is not installed")
    done = subprocess.run(
        ["vulkaninfo", "--summary"],
        capture_output=True,
        text=True,
        env={**world.environ, **env},
        timeout=60,
    )
    facts: dict[str, str] = {"returncode": str(done.returncode)}
    version = re.search(r"Vulkan Instance Version:\s*(\S+)", done.stdout)
    if version:
        facts["instance_version"] = version[1]
    for key in ("deviceName", "deviceUUID", "apiVersion", "driverName"):
        found = re.search(rf"^\s*{key}\s*=\s*(.+?)\s*$", done.stdout, re.MULTILINE)
        if found:
            facts.setdefault(key, found[1])
    return facts


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class NodeExporter:
    url: str
    textfile_dir: Path

    def scrape(self) -> list[Series]:
        with urllib.request.urlopen(self.url, timeout=10) as response:
            return parse_exposition(response.read().decode("utf-8"))


@pytest.fixture
def node_exporter(tmp_path: Path) -> Iterator[NodeExporter]:
    """node_exporter on 127.0.0.1:<free port> with only the textfile collector; always killed."""
    if NODE_EXPORTER is None:
        pytest.skip("prometheus-node-exporter is not installed")
    textfile_dir = tmp_path / "textfile"
    textfile_dir.mkdir()
    for _attempt in range(3):  # another process may take the free port before we bind it
        port = _free_port()
        log = (tmp_path / f"node_exporter.{port}.log").open("w")
        process = subprocess.Popen(
            [
                NODE_EXPORTER,
                f"--web.listen-address=127.0.0.1:{port}",
                "--collector.disable-defaults",
                "--collector.textfile",
                f"--collector.textfile.directory={textfile_dir}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            exporter = NodeExporter(f"http://127.0.0.1:{port}/metrics", textfile_dir)
            deadline = time.monotonic() + 15
            while process.poll() is None and time.monotonic() < deadline:
                try:
                    exporter.scrape()
                    break
                except OSError:
                    time.sleep(0.1)
            if process.poll() is None:
                yield exporter
                return
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
            log.close()
    logs = "\n".join(p.read_text() for p in tmp_path.glob("node_exporter.*.log"))
    pytest.fail(f"node_exporter did not start:\n{logs}")


def promtool_check_metrics(path: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    with path.open("rb") as handle:
        return subprocess.run(
            [PROMTOOL, "check", "metrics"], stdin=handle, capture_output=True, text=True, timeout=60
        )


def _textfile_ok(scrape: list[Series]) -> None:
    # node_exporter reports a file it could not parse here (and drops all its series).
    assert only(scrape, "node_textfile_scrape_error").value == 0


# -- tests --------------------------------------------------------------------------------------


@needs_lavapipe
@needs_node_exporter
@needs_promtool
def test_healthy_machine_is_up_with_its_device_verified(
    world: VkWorld, node_exporter: NodeExporter
) -> None:
    world.lavapipe()
    real = vulkaninfo_summary(world)
    assert real["returncode"] == "0", "the real loader must see lavapipe in this world"
    path = node_exporter.textfile_dir / "vkdoctor.prom"
    before = time.time()
    done = vkdoctor(world, "check", "--prometheus", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    scrape = node_exporter.scrape()
    _textfile_ok(scrape)
    uuid = real["deviceUUID"].replace("-", "")
    assert only(scrape, "vkdoctor_up").value == 1
    assert only(scrape, "vkdoctor_verdict_info").labels == {"code": "ok", "culprit": ""}
    device = only(scrape, "vkdoctor_device_info")
    assert device.labels == {
        "index": "0",
        "name": real["deviceName"],
        "device_uuid": uuid,
        "driver": device.labels["driver"],
        "api": real["apiVersion"],
        "pci_address": "",  # lavapipe has no VK_EXT_pci_bus_info
    }
    assert device.labels["driver"].startswith(real["driverName"])
    assert only(scrape, "vkdoctor_dispatch_verified", device_uuid=uuid).value == 1
    assert only(scrape, "vkdoctor_findings", severity="fail").value == 0
    assert {s.labels["severity"] for s in named(scrape, "vkdoctor_findings")} == {
        "info",
        "warn",
        "fail",
    }
    # Every probe has one series per status, exactly one of them 1.
    probes = named(scrape, "vkdoctor_probe_status")
    ids = {s.labels["probe"] for s in probes}
    assert {"loader-discovery", "instance", "device", "dispatch"} <= ids
    for probe_id in ids:
        rows = [s for s in probes if s.labels["probe"] == probe_id]
        assert len(rows) == 7 and sum(s.value for s in rows) == 1
    assert only(scrape, "vkdoctor_probe_status", probe="dispatch", status="ok").value == 1
    stamp = only(scrape, "vkdoctor_last_run_timestamp_seconds").value
    assert before <= stamp <= time.time()
    assert 0 < only(scrape, "vkdoctor_check_duration_seconds").value < time.time() - before
    checked = promtool_check_metrics(path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@needs_lavapipe
@needs_node_exporter
def test_filtered_drivers_bring_the_node_down_with_the_variable_as_culprit(
    world: VkWorld, node_exporter: NodeExporter
) -> None:
    world.lavapipe()
    real = vulkaninfo_summary(world, VK_LOADER_DRIVERS_SELECT="*nvidia*")
    assert real["returncode"] != "0", "the real loader must find no driver"
    path = node_exporter.textfile_dir / "vkdoctor.prom"
    done = vkdoctor(world, "check", "--prometheus", str(path), VK_LOADER_DRIVERS_SELECT="*nvidia*")
    assert done.returncode == 1
    scrape = node_exporter.scrape()
    _textfile_ok(scrape)
    assert only(scrape, "vkdoctor_up").value == 0
    assert only(scrape, "vkdoctor_verdict_info").labels == {
        "code": "driver-filtered",
        "culprit": "VK_LOADER_DRIVERS_SELECT",
    }
    assert named(scrape, "vkdoctor_device_info") == []  # no device, so none verified either
    assert named(scrape, "vkdoctor_dispatch_verified") == []
    assert only(scrape, "vkdoctor_probe_status", probe="instance", status="fail").value == 1
    assert only(scrape, "vkdoctor_probe_status", probe="dispatch", status="skipped").value == 1
    assert only(scrape, "vkdoctor_findings", severity="fail").value >= 1


@needs_lavapipe
@needs_node_exporter
@needs_promtool
def test_a_culprit_manifest_name_with_quotes_and_controls_survives_the_scrape(
    world: VkWorld, node_exporter: NodeExporter, tmp_path: Path
) -> None:
    # VK_DRIVER_FILES naming a manifest whose library is missing: the real loader finds nothing.
    odd = 'bad"q\\x\x1b.json'
    icd = {"library_path": str(tmp_path / "gone" / "libvulkan_gone.so"), "api_version": "1.3.0"}
    manifest = world.write(
        tmp_path / "elsewhere", odd, {"file_format_version": "1.0.0", "ICD": icd}
    )
    world.lavapipe()  # installed, and hidden by the override
    real = vulkaninfo_summary(world, VK_DRIVER_FILES=str(manifest))
    assert real["returncode"] != "0"
    path = node_exporter.textfile_dir / "vkdoctor.prom"
    done = vkdoctor(world, "check", "--prometheus", str(path), VK_DRIVER_FILES=str(manifest))
    assert done.returncode == 1
    scrape = node_exporter.scrape()
    _textfile_ok(scrape)
    assert only(scrape, "vkdoctor_up").value == 0
    verdict = only(scrape, "vkdoctor_verdict_info").labels
    assert verdict == {"code": "driver-search-overridden", "culprit": "VK_DRIVER_FILES"}
    # With lavapipe in use beside it, the broken manifest itself is the root cause and culprit:
    # quote and backslash escaped on the way, the ESC made visible as text.
    done = vkdoctor(world, "check", "--prometheus", str(path), VK_ADD_DRIVER_FILES=str(manifest))
    scrape = node_exporter.scrape()
    _textfile_ok(scrape)
    assert only(scrape, "vkdoctor_up").value == 0
    assert only(scrape, "vkdoctor_verdict_info").labels == {
        "code": "driver-library-missing",
        "culprit": 'bad"q\\x\\x1b.json',
    }
    assert "\x1b" not in path.read_text()
    checked = promtool_check_metrics(path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@needs_lavapipe
@needs_node_exporter
@needs_promtool
def test_kernels_file_sits_beside_the_check_file(
    world: VkWorld, node_exporter: NodeExporter
) -> None:
    world.lavapipe()
    uuid = vulkaninfo_summary(world)["deviceUUID"].replace("-", "")
    check_file = node_exporter.textfile_dir / "vkdoctor.prom"
    kernels_file = node_exporter.textfile_dir / "vkdoctor-kernels.prom"
    assert vkdoctor(world, "check", "--prometheus", str(check_file)).returncode == 0
    done = vkdoctor(
        world,
        "kernels",
        "--size",
        "tiny",
        "--kernels",
        "copy,saxpy,fma-fp32",
        "--prometheus",
        str(kernels_file),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    scrape = node_exporter.scrape()
    _textfile_ok(scrape)  # no series is in both files
    assert only(scrape, "vkdoctor_up").value == 1
    for kernel in ("copy", "saxpy"):
        assert (
            only(
                scrape,
                "vkdoctor_kernel_bandwidth_bytes_per_second",
                kernel=kernel,
                device_uuid=uuid,
            ).value
            > 1e6
        )  # bytes per second, not GB/s
    assert only(scrape, "vkdoctor_kernel_flops", kernel="fma-fp32", device_uuid=uuid).value > 1e6
    # lavapipe has no datasheet peak: its fractions are n/a, so no fraction series at all
    # (the H200's datasheet peak gives them: test_kernel_fractions_follow_the_datasheet_peak).
    assert named(scrape, "vkdoctor_kernel_fraction_of_peak") == []
    assert only(scrape, "vkdoctor_kernels_findings", severity="fail").value == 0
    checked = promtool_check_metrics(kernels_file)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@needs_lavapipe
def test_regular_file_is_replaced_by_rename_keeping_its_mode(
    world: VkWorld, tmp_path: Path
) -> None:
    world.lavapipe()
    path = tmp_path / "vkdoctor.prom"
    path.write_text("old\n")
    path.chmod(0o640)
    inode = path.stat().st_ino
    assert vkdoctor(world, "check", "--prometheus", str(path)).returncode == 0
    # A new inode: the collector saw either the old file or the new one, never half of one.
    assert path.stat().st_ino != inode
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert only(parse_exposition(path.read_text()), "vkdoctor_up").value == 1


@needs_lavapipe
def test_a_fifo_is_written_into_not_replaced(world: VkWorld, tmp_path: Path) -> None:
    world.lavapipe()
    fifo = tmp_path / "metrics.fifo"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    done = vkdoctor(world, "check", "--prometheus", str(fifo))
    reader.join(timeout=30)
    assert done.returncode == 0
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert only(parse_exposition(received[0]), "vkdoctor_up").value == 1


@needs_lavapipe
def test_metrics_to_stdout_keep_the_console_off_it(world: VkWorld) -> None:
    world.lavapipe()
    done = vkdoctor(world, "check", "--prometheus", "-")
    assert done.returncode == 0
    assert only(parse_exposition(done.stdout), "vkdoctor_up").value == 1  # nothing else there
    assert "dispatch" in done.stderr


def test_unwritable_destination_is_refused_before_any_work(world: VkWorld, tmp_path: Path) -> None:
    done = vkdoctor(world, "check", "--prometheus", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.startswith("vkdoctor check: --prometheus: ") and "directory" in done.stderr
    assert done.stdout == ""


def test_interrupted_run_still_writes_metrics_with_up_0(
    world: VkWorld, fault_driver, tmp_path: Path
) -> None:
    fault_driver("negotiate-hang")  # the driver probe's child hangs until its time limit
    path = tmp_path / "vkdoctor.prom"
    process = subprocess.Popen(
        [sys.executable, "-m", "vkdoctor", "check", "--timeout", "30", "--prometheus", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=world.environ,
    )
    try:
        time.sleep(2.0)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 128 + signal.SIGTERM, err
    series = parse_exposition(path.read_text())
    assert only(series, "vkdoctor_up").value == 0
    assert only(series, "vkdoctor_verdict_info").labels["code"] == "run-interrupted"


def test_internal_error_still_writes_metrics_with_up_0(world: VkWorld, tmp_path: Path) -> None:
    path = tmp_path / "vkdoctor.prom"
    code = (
        "import dataclasses, vkdoctor.probes.layer_enumeration as m\n"
        "m.SPEC = dataclasses.replace(m.SPEC, run=lambda ctx: 1 / 0)\n"
        "from vkdoctor.cli import main\n"
        f"raise SystemExit(main(['check', 'layer-enumeration', '--prometheus', {str(path)!r}]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=world.environ, timeout=120
    )
    assert done.returncode == 3
    series = parse_exposition(path.read_text())
    assert only(series, "vkdoctor_up").value == 0
    assert only(series, "vkdoctor_verdict_info").labels == {"code": "internal-error", "culprit": ""}


def test_label_escaping_follows_the_format() -> None:
    from vkdoctor.fleet.prometheus import Family, Sample, escape_label, render

    assert escape_label('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    text = render([Family("x_info", "h\\elp\nline", (Sample((("v", 'q"\\\n'),), 1.0),))])
    assert text == '# HELP x_info h\\\\elp\\nline\n# TYPE x_info gauge\nx_info{v="q\\"\\\\\\n"} 1\n'
    assert only(parse_exposition(text), "x_info").labels == {"v": 'q"\\\n'}


def test_fleet_modules_are_headless() -> None:
    code = (
        "import sys, vkdoctor.fleet.prometheus, vkdoctor.fleet.npd, vkdoctor.fleet.options\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'textual')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@needs_promtool
def test_alert_rules_pass_promtool() -> None:
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 5 rules found" in done.stdout


@needs_promtool
def test_alert_rules_fire_as_their_unit_tests_say() -> None:
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, "test", "rules", str(RULE_TESTS)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=RULE_TESTS.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_kernel_fractions_follow_the_datasheet_peak() -> None:
    """The H200's kernels report (a real run on the lent machine): each figure over the peak the
    run recorded (the datasheet's, 4.8 TB/s and 67 TFLOP/s there), one series per kernel."""
    import json

    from vkdoctor.fleet.prometheus import kernels_metrics
    from vkdoctor.report.io import load_report

    path = Path(__file__).resolve().parent.parent / "reports" / "nvidia-h200-kernels.json"
    raw = json.loads(path.read_text())
    (run,) = next(p for p in raw["probes"] if p["id"] == "kernels")["facts"]["runs"]
    peak = run["peak"]
    # Memory kernels against bandwidth, arithmetic ones against their precision's rate.
    memory = {"copy", "copy-vec4", "copy-grid", "saxpy", "reduce"}
    rates = {"fma-fp16": "fp16_gflops", "hgemm-coopmat": "fp16_matrix_gflops"}
    expected = {
        r["kernel"]: (r["gb_per_s"] / peak["bandwidth_gbs"])
        if r["kernel"] in memory
        else r["gflop_per_s"] / peak[rates.get(r["kernel"], "fp32_gflops")]
        for r in run["results"]
        if r["status"] == "ok"
    }
    fractions = named(
        parse_exposition(kernels_metrics(load_report(str(path)), 1.0, 0.0)),
        "vkdoctor_kernel_fraction_of_peak",
    )
    got = {s.labels["kernel"]: s.value for s in fractions}
    assert got.keys() == expected.keys()
    for kernel, value in expected.items():
        assert abs(got[kernel] - value) < 1e-6, kernel
