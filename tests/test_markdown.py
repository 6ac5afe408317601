"""The Markdown export: exact text for the committed examples, safe escaping, pasteable size."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import VkWorld, needs_lavapipe

from vkdoctor.render.markdown import code, escape, fenced, render_markdown, table
from vkdoctor.report.io import load_report
from vkdoctor.report.model import Finding, ProbeResult, Remedy, Report, Severity, Status
from vkdoctor.report.redact import Identity, redact_report

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "reports").glob("*.json"))
EXAMPLES = [p for p in EXAMPLES if p.name != "report.schema.json"]
# GitHub refuses issue bodies over 65,536 characters; stay far below.
PASTEABLE = 20_000


def test_escape_makes_report_text_inert() -> None:
    assert escape("<user> & [link](x) *bold* _em_ `code` # ~") == (
        "&lt;user&gt; &amp; \\[link\\](x) \\*bold\\* \\_em\\_ \\`code\\` \\# \\~"
    )
    assert escape("VK_LAYER_MESA_device_select x86_64") == "VK_LAYER_MESA_device_select x86_64"


def test_code_spans_and_fences_hold_backticks() -> None:
    assert code("a`b") == "``a`b``"
    assert code("`x`") == "`` `x` ``"
    assert fenced("x\n```\ny", "sh") == "````sh\nx\n```\ny\n````"


def test_table_cells_never_split() -> None:
    lines = table(["A", "B"], [[code("a|b"), "multi\nline | text"]])
    assert lines[2] == "| `a\\|b` | multi line \\| text |"
    assert [len(re.findall(r"(?<!\\)\|", line)) for line in lines] == [3, 3, 3]


def _synthetic() -> Report:
    finding = Finding(
        "driver-library-missing",
        Severity.FAIL,
        "/home/alice/.local/share/vulkan/icd.d/x.json points at /opt/x|y.so, which does not exist",
        detail="The manifest's library_path resolves to no file.",
        remedy=Remedy(
            "Delete the <stale> manifest.", ("rm /home/alice/.local/share/vulkan/icd.d/x.json",)
        ),
    )
    info = Finding("layer-implicit-active", Severity.INFO, "implicit layers: VK_LAYER_X")
    return Report(
        tool_version="0.1.0",
        created="2025-01-02T03:04:05+00:00",
        environment={
            "os": {"pretty_name": "Debian GNU/Linux 12 (bookworm)"},
            "kernel": {"release": "6.1.0"},
            "architecture": "x86_64",
            "identity": {"user": "alice", "uid": 1000, "euid": 1000, "groups": [1000]},
        },
        probes=[
            ProbeResult(
                "loader-discovery",
                "Loader discovery",
                Status.OK,
                duration_s=0.1234,
                facts={"version": "1.3.239", "variables": {"HOME": "/home/alice"}},
            ),
            ProbeResult(
                "driver-enumeration",
                "Drivers",
                Status.FAIL,
                duration_s=0.5,
                findings=[finding, info],
            ),
            ProbeResult("instance", "Instance", Status.SKIPPED, blocked_by="driver-enumeration"),
        ],
        drivers=[
            {
                "manifest": "/home/alice/.local/share/vulkan/icd.d/x.json",
                "library_path": "/opt/x|y.so",
                "state": "broken",
                "issues": ["driver-library-missing"],
            }
        ],
    )


def test_synthetic_report_renders_exactly() -> None:
    identity = Identity.build(["/home/alice"], ["alice"], [], [])
    text = render_markdown(redact_report(_synthetic(), identity))
    head = text.split("<details>")[0]
    assert head == (
        "## vkdoctor: ❌ problems found\n"
        "\n"
        "vkdoctor 0.1.0 · 2025-01-02T03:04:05+00:00 · Debian GNU/Linux 12 (bookworm) · kernel 6.1.0"
        " · x86_64 · loader 1.3.239 · redacted\n"
        "\n"
        "| Probe | Status | Time | Findings |\n"
        "| --- | --- | ---: | --- |\n"
        "| `loader-discovery` | ✅ ok | 0.12 s |  |\n"
        "| `driver-enumeration` | ❌ fail | 0.50 s | 1 fail, 1 info |\n"
        "| `instance` | ⏭️ skipped |  | blocked by `driver-enumeration` |\n"
        "\n"
        "### Findings\n"
        "\n"
        "#### ❌ `driver-library-missing` · driver-enumeration\n"
        "\n"
        "\\~/.local/share/vulkan/icd.d/x.json points at /opt/x|y.so, which does not exist\n"
        "\n"
        "> The manifest's library_path resolves to no file.\n"
        "\n"
        "**Fix:** Delete the &lt;stale&gt; manifest.\n"
        "\n"
        "```sh\n"
        "rm ~/.local/share/vulkan/icd.d/x.json\n"
        "```\n"
        "\n"
    )
    assert "<summary>Informational findings (1)</summary>" in text
    assert "| `~/.local/share/vulkan/icd.d/x.json` | `/opt/x\\|y.so` |" in text
    assert "HOME=~" in text
    assert "alice" not in text


def _balanced(text: str) -> None:
    assert text.count("<details>") == text.count("</details>")
    fences = re.findall(r"^(`{3,})", text, re.MULTILINE)
    assert len(fences) % 2 == 0, "unclosed code fence"


@needs_lavapipe
def test_real_broken_run_exports_remedy_and_details(world: VkWorld) -> None:
    world.lavapipe()
    world.driver("broken_icd.json", "/nonexistent/libvulkan_broken.so")
    report = world.run()
    text = render_markdown(redact_report(report))
    _balanced(text)
    assert text.startswith("## vkdoctor: ❌ problems found\n")
    assert "#### ❌ `driver-library-missing` · driver-enumeration" in text
    assert "```sh\n" in text
    # The two manifests of the world, and this machine's own drivers its XDG_DATA_DIRS hides.
    hidden = [d for d in report.drivers if d.state == "hidden"]
    assert len(report.drivers) == 2 + len(hidden)
    drivers = f"Drivers ({len(report.drivers)})"
    for section in (drivers, "Layers", "Devices", "Environment", "Loader log excerpt"):
        assert f"<summary>{section}" in text
    assert len(text.encode()) < PASTEABLE


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_committed_examples_render_to_their_markdown(path: Path) -> None:
    # reports/make-examples.sh renders each .md from its .json; after a renderer change, rerun it.
    text = render_markdown(load_report(str(path)))
    assert text == path.with_suffix(".md").read_text(encoding="utf-8")
    _balanced(text)
    assert len(text.encode()) < PASTEABLE
