"""``vkdoctor report show / validate / diff / markdown`` and ``check --markdown``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import VkWorld, needs_lavapipe

from vkdoctor.cli import main
from vkdoctor.render.diff import diff_reports
from vkdoctor.report.io import load_report_dict

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = [p for p in sorted((REPO / "reports").glob("*.json")) if p.name != "report.schema.json"]
HEALTHY = REPO / "reports" / "healthy-lavapipe.json"
BROKEN = REPO / "reports" / "broken-missing-library.json"


def vkdoctor(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vkdoctor", *args],
        env={**environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@needs_lavapipe
def test_report_show_prints_what_check_printed(world: VkWorld, tmp_path: Path) -> None:
    world.lavapipe()
    world.driver("broken_icd.json", "/nonexistent/libvulkan_broken.so")
    out = tmp_path / "r.json"
    check = vkdoctor(world.environ, "check", "-v", "--json", str(out))
    assert check.returncode == 1, check.stderr
    show = vkdoctor(world.environ, "report", "show", "-v", str(out))
    assert show.returncode == 0, show.stderr
    assert "driver-library-missing" in check.stdout
    assert show.stdout == check.stdout
    plain = vkdoctor(world.environ, "report", "show", str(out))
    assert plain.stdout.startswith("✔ loader-discovery")
    assert "[FAIL]" in plain.stdout and "facts of" not in plain.stdout


@needs_lavapipe
def test_check_markdown_to_stdout_sends_the_console_to_stderr(world: VkWorld) -> None:
    world.lavapipe()
    done = vkdoctor(world.environ, "check", "--markdown", "-")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("## vkdoctor: ✅ no problems found\n")
    lines = done.stdout.splitlines()
    assert lines[2].startswith("**Vulkan works: loader ")  # the verdict leads
    assert "redacted" in lines[4]
    assert "loader-discovery" in done.stderr
    assert str(world.root / "home") not in done.stdout


def test_json_and_markdown_cannot_share_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--json", "-", "--markdown", "-"]) == 2
    assert "cannot both use stdout" in capsys.readouterr().err


def test_validate_valid_invalid_and_unreadable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "validate", str(HEALTHY), str(BROKEN)]) == 0
    out = capsys.readouterr().out
    assert f"{HEALTHY}: valid vkdoctor report (schema 2," in out
    assert "status fail)" in out

    data = load_report_dict(str(BROKEN))
    data["probes"][1]["findings"][0]["severity"] = "fatal"
    del data["tool"]["version"]
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps(data))
    assert main(["report", "validate", str(invalid)]) == 1
    out = capsys.readouterr().out
    assert f"{invalid}: INVALID, 2 problems against report schema 2:" in out
    assert "  tool: missing required key 'version'" in out
    assert '  probes[1].findings[0].severity: "fatal" is not one of: info, warn, fail' in out

    data = load_report_dict(str(BROKEN))
    data["summary"]["counts"]["findings"]["fail"] = 9
    lying = tmp_path / "lying.json"
    lying.write_text(json.dumps(data))
    assert main(["report", "validate", str(lying)]) == 1
    assert "summary.counts.findings.fail: says 9 but the probes have 1" in capsys.readouterr().out

    data = load_report_dict(str(BROKEN))
    data["probes"][1]["findings"][0]["code"] = "from-the-future"
    future = tmp_path / "future.json"
    future.write_text(json.dumps(data))
    assert main(["report", "validate", str(future)]) == 0
    assert "does not know (a newer version wrote them?): from-the-future" in capsys.readouterr().out


def _foreign_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    text = BROKEN.read_text()
    newer = json.loads(text)
    newer["schema_version"] = 3
    files = {
        "truncated": (text[: len(text) // 3], "looks truncated"),
        "newer": (json.dumps(newer), "written by a newer vkdoctor (report schema 3"),
        "not-a-report": (json.dumps({"name": "something else"}), "not a vkdoctor report"),
        "not-json": ("Vulkan Instance Version: 1.3.239\n", "not valid JSON"),
        "empty": ("", "the file is empty"),
    }
    paths = {}
    for name, (content, message) in files.items():
        path = tmp_path / f"{name}.json"
        path.write_text(content)
        paths[name] = (path, message)
    paths["missing"] = (tmp_path / "missing.json", "no such file")
    return paths


@pytest.mark.parametrize("command", ["show", "validate", "markdown", "diff"])
def test_foreign_files_get_a_message_not_a_traceback(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, (path, message) in _foreign_files(tmp_path).items():
        args = ["report", command, str(path)]
        if command == "diff":
            args = ["report", "diff", str(HEALTHY), str(path)]
        # validate's answer for a file it can read that is not a report: 1 and the reason, on
        # stdout like every INVALID; 2 only for what it cannot judge (missing, newer schema).
        judged = command == "validate" and name not in ("missing", "newer")
        assert main(args) == (1 if judged else 2), name
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err + captured.out
        if judged:
            assert captured.out == f"{path}: INVALID, {captured.out.split(', ', 1)[1]}"
            assert message in captured.out and captured.err == "", (name, captured.out)
            continue
        assert message in captured.err, (name, captured.err)
        assert len(captured.err.strip().splitlines()) == 1, captured.err


def test_schema_invalid_reports_are_refused_by_show(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = load_report_dict(str(BROKEN))
    data["drivers"] = "none"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    assert main(["report", "show", str(path)]) == 2
    err = capsys.readouterr().err
    assert (
        "not a valid vkdoctor report (schema 2):\n  drivers: expected a list, got a string" in err
    )


def test_diff_of_the_examples_names_the_broken_driver(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "diff", str(HEALTHY), str(BROKEN)]) == 1
    text = capsys.readouterr().out
    assert "  ~ status: ok → fail\n" in text
    assert "  ~ probe driver-enumeration status: ok → fail\n" in text
    assert (
        "  + amd_icd64.json: ~/.local/share/vulkan/icd.d/amd_icd64.json, library "
        "/usr/lib/x86_64-linux-gnu/amdvlk64.so, API 1.3.280, broken\n"
    ) in text
    assert "  + [FAIL] driver-library-missing (driver-enumeration): " in text
    assert (
        "  + ERROR: /usr/lib/x86_64-linux-gnu/amdvlk64.so: cannot open shared object file" in text
    )
    assert "Layers" not in text  # nothing changed there

    assert main(["report", "diff", "--json", "-", str(BROKEN), str(HEALTHY)]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["identical"] is False
    assert [(d["key"], d["status"]) for d in data["sections"]["drivers"]] == [
        ("amd_icd64.json", "removed")
    ]
    assert data["sections"]["drivers"][0]["item"]["issues"] == ["driver-library-missing"]
    findings = data["sections"]["findings"]
    assert {f["status"] for f in findings} == {"removed"}
    assert findings[0]["item"]["code"] == "driver-library-missing"  # failures first


def test_diff_of_a_report_with_itself_is_empty(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "diff", str(HEALTHY), str(HEALTHY)]) == 0
    assert capsys.readouterr().out.endswith("No differences (times aside).\n")


def test_diff_sees_versions_paths_arch_and_exports() -> None:
    a = load_report_dict(str(HEALTHY))
    b = json.loads(json.dumps(a))
    lvp = next(d for d in b["drivers"] if d["manifest"].endswith("lvp_icd.x86_64.json"))
    lvp.update(api_version="1.4.300", library_path="/opt/mesa/libvulkan_lvp.so", elf_class=32)
    lvp["exports"]["vk_icdGetPhysicalDeviceProcAddr"] = False
    lvp["manifest"] = "/etc/vulkan/icd.d/lvp_icd.x86_64.json"  # moved: still the same driver
    next(p for p in b["probes"] if p["id"] == "loader-discovery")["facts"]["version"] = "1.3.280"
    next(p for p in b["probes"] if p["id"] == "loader-discovery")["facts"]["variables"][
        "VK_LOADER_DEBUG"
    ] = "all"
    b["layers"] = [layer for layer in b["layers"] if layer["name"] != "VK_LAYER_MESA_overlay"]
    b["devices"][0]["api_version"] = "1.4.300"
    b["devices"].append({"name": "NVIDIA H100 80GB HBM3", "type": "discrete-gpu"})
    diff = diff_reports(a, b)
    changes = {c.path: (c.a, c.b) for c in diff.section("drivers").items[0].changes}
    assert diff.section("drivers").items[0].key == "lvp_icd.x86_64.json"
    assert changes == {
        "api_version": ("1.1.230", "1.4.300"),
        "elf_class": (64, 32),
        "exports.vk_icdGetPhysicalDeviceProcAddr": (True, False),
        "library_path": (
            "/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so",
            "/opt/mesa/libvulkan_lvp.so",
        ),
        "manifest": (
            "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json",
            "/etc/vulkan/icd.d/lvp_icd.x86_64.json",
        ),
    }
    loader = {c.path: (c.a, c.b) for c in diff.section("loader").items[0].changes}
    assert loader == {"version": ("1.3.239", "1.3.280")}
    assert [(i.key, i.status) for i in diff.section("variables").items] == [
        ("VK_LOADER_DEBUG", "added")
    ]
    assert [(i.key, i.status) for i in diff.section("layers").items] == [
        ("VK_LAYER_MESA_overlay", "removed")
    ]
    devices = diff.section("devices").items
    assert [(i.key, i.status) for i in devices] == [
        ("NVIDIA H100 80GB HBM3", "added"),
        ("llvmpipe (LLVM 15.0.6, 256 bits)", "changed"),
    ]
    assert [(c.path, c.a, c.b) for c in devices[1].changes] == [
        ("api_version", "1.3.230", "1.4.300")
    ]


def test_markdown_command_writes_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "issue.md"
    assert main(["report", "markdown", str(BROKEN), "-o", str(out)]) == 0
    expected = (REPO / "reports" / "broken-missing-library.md").read_text(encoding="utf-8")
    assert out.read_text(encoding="utf-8") == expected
    assert capsys.readouterr().out == ""


def test_report_without_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report"]) == 2
    assert "show" in capsys.readouterr().err


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_validates_renders_and_diffs(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    markdown = path.with_suffix(".md")
    assert markdown.exists(), f"render it: vkdoctor report markdown {path} -o {markdown}"
    assert main(["report", "validate", str(path)]) == 0
    assert main(["report", "show", "-vv", str(path)]) == 0  # -vv: facts too
    shown = capsys.readouterr().out
    first_probe = json.loads(path.read_text())["probes"][0]["id"]  # check or kernels reports
    assert "vkdoctor: " in shown and f"facts of {first_probe}:" in shown
    assert main(["report", "diff", str(HEALTHY), str(path)]) == (0 if path == HEALTHY else 1)
    capsys.readouterr()
    assert main(["report", "diff", "--json", "-", str(path), str(HEALTHY)]) in (0, 1)
    assert json.loads(capsys.readouterr().out)["b"]["label"] == str(HEALTHY)
