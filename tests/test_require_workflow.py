"""examples/github-actions/vulkan-ci.yml cannot rot: its steps are read from the file and each
`run:` step is executed here (Debian), as on the runner, where that makes sense; package
installation steps are checked against what is installed instead (no network here)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "github-actions"
WORKFLOW = EXAMPLE / "vulkan-ci.yml"


def steps(text: str) -> list[dict[str, str]]:
    """The steps of the workflow's single job: name, uses, run (block scalars joined), path.
    Just enough YAML for this file; the test below cross-checks it with PyYAML if present."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "steps:")
    found: list[dict[str, str]] = []
    i = start + 1
    while i < len(lines):
        line = lines[i]
        match = re.match(r"^(\s*)(- )?([\w-]+):\s*(.*)$", line)
        if not line.strip() or line.lstrip().startswith("#"):
            i += 1
            continue
        if not match:
            raise AssertionError(f"unparsed workflow line {i + 1}: {line!r}")
        indent, dash, key, value = match.groups()
        if dash:
            found.append({})
        depth = len(indent) + (2 if dash else 0)
        i += 1
        if value == "|":
            block = []
            while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > depth):
                block.append(lines[i].strip())
                i += 1
            value = "\n".join(b for b in block if b) + "\n"
        elif value.startswith('"') and value.endswith('"'):
            value = value[1:-1]
        if key != "with":
            found[-1][key] = value
    return found


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def test_parser_agrees_with_pyyaml_when_available() -> None:
    python = shutil.which("python3") or sys.executable
    dumped = subprocess.run(
        [python, "-c", "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"],
        input=WORKFLOW.read_text(),
        capture_output=True,
        text=True,
    )
    if dumped.returncode != 0:
        pytest.skip("PyYAML is not installed for any python3 here")
    (job,) = json.loads(dumped.stdout)["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    keys = ("name", "uses", "run", "path", "if")
    expected = [
        {k: str(v) for k, v in {**s, **(s.get("with") or {})}.items() if k in keys}
        for s in job["steps"]
    ]
    ours = [{k: v for k, v in s.items() if k in keys} for s in steps(WORKFLOW.read_text())]
    assert ours == expected


def _installed(package: str) -> bool:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True
    )
    return done.stdout.endswith("installed")


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs a Debian system")
def test_workflow_steps_run_here(tmp_path: Path) -> None:
    workflow = steps(WORKFLOW.read_text())
    uses = [s["uses"].split("@")[0] for s in workflow if "uses" in s]
    assert uses == ["actions/checkout", "actions/setup-python", "actions/upload-artifact"]
    shutil.copy(EXAMPLE / "test_vulkan_example.py", tmp_path)  # the "checked-out" repository
    bindir = str(Path(sys.executable).parent)
    summary = tmp_path / "summary.md"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VKDOCTOR_")}
    environ.update(
        PATH=f"{bindir}:{environ.get('PATH', '')}",
        GITHUB_ACTIONS="true",
        GITHUB_STEP_SUMMARY=str(summary),
    )
    ran: list[str] = []
    for step in workflow:
        run = step.get("run")
        if run is None:
            continue
        for command in run.strip().splitlines():
            words = shlex.split(command)
            if words[:2] == ["sudo", "apt-get"]:
                if words[2] == "install":  # what it installs must be what vkdoctor needs
                    packages = [w for w in words[3:] if not w.startswith("-")]
                    assert "mesa-vulkan-drivers" in packages and "libvulkan1" in packages
                    assert all(_installed(p) for p in packages), packages
                continue
            if words[:4] == ["python", "-m", "pip", "install"]:
                for package in words[4:]:
                    assert (
                        subprocess.run(
                            [sys.executable, "-m", "pip", "show", "-q", package],
                            capture_output=True,
                        ).returncode
                        == 0
                    ), f"{package} is not installed"
                continue
            done = subprocess.run(
                ["bash", "-e", "-c", command],
                cwd=tmp_path,
                env=environ,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, (
                f"step {step.get('name')!r} failed:\n{done.stdout}{done.stderr}"
            )
            ran.append(done.stdout)
    assert len(ran) == 2  # vkdoctor check and pytest
    artifact = next(s for s in workflow if s.get("uses", "").startswith("actions/upload"))
    report = json.loads((tmp_path / artifact["path"]).read_text())
    assert report["schema_version"] >= 2 and report["devices"]
    assert "## vkdoctor" in summary.read_text()
    assert "1 passed, 1 skipped" in ran[1] and "no device meets gpu" in ran[1]
    assert (tmp_path / "vkdoctor-pytest.json").is_file()
