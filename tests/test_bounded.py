"""Hostile manifests any user can write into $XDG_DATA_HOME/vulkan/icd.d must not exhaust the
machine: real vkdoctor runs, the real loader and lavapipe, children counted by PID with psutil."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
from conftest import VkWorld

from vkdoctor.diagnosis.fold import FOLD_ABOVE, KEEP
from vkdoctor.engine.runner import MAX_STORED_LOG

LAVAPIPE = Path("/usr/share/vulkan/icd.d/lvp_icd.x86_64.json")


def _run_sampled(argv: list[str], env: dict[str, str]) -> tuple[int, int, str]:
    """(exit code, peak number of live descendants, stderr)."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                kids = [k for k in root.children(recursive=True) if k.status() != "zombie"]
            except psutil.Error:
                return
            peak = max(peak, len(kids))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        _, stderr = proc.communicate(timeout=300)
    finally:
        stop.set()
        proc.kill()
    sampler.join()
    return proc.returncode, peak, stderr.decode(errors="replace")


def test_sixty_copies_of_a_driver_are_bisected_with_bounded_children(
    world: VkWorld, tmp_path: Path
) -> None:
    if not LAVAPIPE.exists():
        import pytest

        pytest.skip("lavapipe is not installed")
    icd = Path(world.environ["XDG_DATA_HOME"]) / "vulkan" / "icd.d"
    icd.mkdir(parents=True)
    for index in range(60):
        shutil.copy(LAVAPIPE, icd / f"copy_{index:02d}.json")
    (icd / "zz_malformed.json").write_text('{"file_format_version": "1.0.0", "ICD": {')
    out = tmp_path / "report.json"
    argv = [sys.executable, "-m", "vkdoctor", "check", "--json", str(out)]
    code, peak, stderr = _run_sampled(argv, world.environ)
    assert code == 1, stderr
    cores = len(os.sched_getaffinity(0))
    # Warm children (2) + a child per running probe + bisection's per-core window; 57 before.
    assert peak <= cores + 5, peak
    report = json.loads(out.read_text())
    probes = {p["id"]: p for p in report["probes"]}
    assert probes["instance"]["status"] != "timeout"
    culprits = [f for f in probes["instance"]["findings"] if f["code"] == "culprit-driver"]
    assert len(culprits) <= 1  # one candidate per library, not sixty


def test_loader_logs_are_stored_once_per_line_and_bounded(world: VkWorld, tmp_path: Path) -> None:
    icd = Path(world.environ["XDG_DATA_HOME"]) / "vulkan" / "icd.d"
    icd.mkdir(parents=True)
    count = 600
    for index in range(count):
        body = {
            "file_format_version": "1.0.0",
            "ICD": {"library_path": f"/nonexistent/libvk_{index:04d}.so", "api_version": "1.3.0"},
        }
        (icd / f"missing_{index:04d}.json").write_text(json.dumps(body))
    out = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "vkdoctor", "check", "--json", str(out)],
        env=world.environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(out.read_text())
    assert len(report["loader_log"]) <= MAX_STORED_LOG
    truncated = 0
    table = report["loader_log"]  # each distinct line once; probes refer to it by index
    for probe in report["probes"]:
        keys = [(table[i]["level"], table[i]["message"]) for i in probe["loader_log"]]
        assert len(keys) == len(set(keys)), probe["id"]  # each distinct line once
        assert len(keys) <= MAX_STORED_LOG
        stored = probe["facts"].get("loader_log_stored")
        if stored:
            assert stored["stored"] == len(keys) and stored["lines"] > len(keys)
            truncated += stored["distinct"] > stored["stored"]
    assert truncated  # 600 broken manifests make more distinct lines than a probe stores
    # Every broken manifest is still diagnosed (the loader log bound loses none): the first
    # KEEP in full, the rest folded into one finding that counts them, and every manifest in
    # the drivers section with its issue.
    missing = [f for _, f in _findings(report) if f["code"] == "driver-library-missing"]
    assert [f.get("folded", 0) for f in missing] == [0] * KEEP + [count - KEEP]
    assert missing[-1]["summary"].startswith(f"{count - KEEP} more findings like this")
    assert not missing[-1]["remedy"]["commands"]  # one command per file is nothing to paste
    broken = {d["manifest"] for d in report["drivers"] if "driver-library-missing" in d["issues"]}
    assert broken == {str(p) for p in icd.glob("missing_*.json")}
    ids = {f["id"] for _, f in _findings(report)}
    assert set(report["root_causes"]) <= ids  # no root cause names a folded-away finding
    # The headline is the world's XDG_DATA_DIRS (it leaves out /usr/share); the fold counts as
    # the problems it stands for, so all `count` manifests are the "more".
    assert report["verdict"].startswith("Vulkan is unusable: XDG_DATA_DIRS leaves out /usr/share")
    assert report["verdict"].endswith(f"(and {count} more problems)")


def test_up_to_fold_above_findings_of_one_kind_are_all_kept(world: VkWorld, tmp_path: Path) -> None:
    icd = Path(world.environ["XDG_DATA_HOME"]) / "vulkan" / "icd.d"
    icd.mkdir(parents=True)
    for index in range(FOLD_ABOVE):
        icd_fields = {"library_path": f"/nonexistent/{index}.so", "api_version": "1.3.0"}
        body = {"file_format_version": "1.0.0", "ICD": icd_fields}
        (icd / f"missing_{index}.json").write_text(json.dumps(body))
    report = world.run(["driver-enumeration"])
    missing = [f for _, f in report.findings() if f.code == "driver-library-missing"]
    assert len(missing) == FOLD_ABOVE and not any(f.folded for f in missing)


def _findings(report: dict) -> list[tuple[str, dict]]:
    return [(p["id"], f) for p in report["probes"] for f in p["findings"]]


def test_bisection_tries_at_most_max_candidates_and_names_the_rest(
    world: VkWorld, tmp_path: Path
) -> None:
    """Twenty distinct driver libraries (hard links to lavapipe's, so twenty paths the loader
    and vkdoctor treat as different drivers) and a malformed manifest, which fails every
    instance on loader 1.3.239: bisection tries MAX_CANDIDATES of them and lists the others."""
    from vkdoctor.engine.bisect import MAX_CANDIDATES

    if not LAVAPIPE.exists():
        import pytest

        pytest.skip("lavapipe is not installed")
    library = Path(json.loads(LAVAPIPE.read_text())["ICD"]["library_path"])
    icd = Path(world.environ["XDG_DATA_HOME"]) / "vulkan" / "icd.d"
    icd.mkdir(parents=True)
    libs = tmp_path / "libs"
    libs.mkdir()
    count = MAX_CANDIDATES + 4
    for index in range(count):
        target = libs / f"libvulkan_lvp_{index:02d}.so"
        try:
            os.link(library, target)
        except OSError:
            shutil.copy(library, target)  # another file system: a copy is a distinct library too
        body = {"file_format_version": "1.0.0", "ICD": {"library_path": str(target)}}
        body["ICD"]["api_version"] = "1.3.0"
        (icd / f"lvp_{index:02d}.json").write_text(json.dumps(body))
    (icd / "zz_malformed.json").write_text('{"file_format_version": "1.0.0", "ICD": {')
    report = world.run(["instance"])
    findings = {f.code: f for _, f in report.findings()}
    limited = findings["bisection-limited"]
    assert limited.evidence["untried_count"] == count - MAX_CANDIDATES
    assert limited.summary.startswith(
        f"culprit isolation of instance creation did not try {count - MAX_CANDIDATES} of {count}"
    )
    # Each driver alone (VK_DRIVER_FILES) works, as it does not read the malformed manifest:
    # no driver is blamed, and the malformed manifest is the first root cause.
    assert "culprit-driver" not in findings
    first = report.finding(report.root_causes[0])
    assert first is not None and first[1].code == "manifest-invalid-json"
    assert first[1].evidence["manifest"] == str(icd / "zz_malformed.json")
