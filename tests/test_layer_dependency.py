"""A layer whose dependency is truncated (an interrupted upgrade of the package that owns it),
made real: the fault layer is compiled against libgmp.so.10 (which neither Python, the loader,
lavapipe nor vulkaninfo use), and a 4 KiB copy of libgmp is bind-mounted over the real file in a
private mount namespace.  The real loader (vulkaninfo) dies of SIGBUS on the same fixture; the
machine's own file is never touched.  Mirrors test_root_cause_rules.py's driver case."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import faultlib
import pytest

GMP = Path("/usr/lib/x86_64-linux-gnu/libgmp.so.10")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0
    or shutil.which("unshare") is None
    or shutil.which("vulkaninfo") is None
    or not GMP.exists()
    or not faultlib.compiler_available(),
    reason="needs root, unshare(1), vulkaninfo, a C compiler and libgmp10 (./bootstrap.sh)",
)


@pytest.mark.slow  # a whole `vkdoctor check` with a crash bisected: about 10 s
def test_truncated_layer_dependency_is_reinstalled_by_its_package(tmp_path: Path) -> None:
    home = tmp_path / "home"
    layer_dir = home / "data" / "vulkan" / "implicit_layer.d"
    layer_dir.mkdir(parents=True)
    library = tmp_path / "libVkLayer_vkdoctor_gmp.so"
    subprocess.run(
        [
            "gcc",
            "-O2",
            "-shared",
            "-fPIC",
            "-fvisibility=hidden",
            f"-I{faultlib.VK_HEADER.parent}",
            '-DFAULT_VARIANT_NAME="ok"',
            str(faultlib.LAYER_SOURCE),
            "-o",
            str(library),
            "-Wl,--no-as-needed",  # keep the DT_NEEDED although no gmp symbol is used
            str(GMP),
            "-lpthread",
        ],
        check=True,
    )
    manifest = faultlib.write_layer_manifest(
        layer_dir, name="VK_LAYER_vkdoctor_gmp", library_path=str(library), implicit=True
    )
    real = Path(os.path.realpath(GMP))
    cut = tmp_path / "libgmp.truncated"
    with open(real, "rb") as handle:
        cut.write_bytes(handle.read(4096))
    owner = subprocess.run(
        ["dpkg-query", "-S", str(real)], capture_output=True, text=True, check=True
    ).stdout.split(":")[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VK_", "XDG_"))}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "c"))
    out = tmp_path / "r.json"
    script = (
        f"mount --bind {cut} {real} && "
        "VK_LOADER_DEBUG=all vulkaninfo --summary >vulkaninfo.txt 2>&1; echo $? >vulkaninfo.rc; "
        f"{sys.executable} -m vkdoctor check --json {out}"
    )
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # The real loader reads this manifest and then dies of SIGBUS (128 + 7) mapping libgmp.
    loader_log = (tmp_path / "vulkaninfo.txt").read_text(errors="replace")
    assert f"Found manifest file {manifest}" in loader_log
    assert (tmp_path / "vulkaninfo.rc").read_text().strip() == "135", loader_log[-2000:]

    assert done.returncode == 1, done.stderr
    report = json.loads(out.read_text())
    findings = {f["id"]: f for p in report["probes"] for f in p["findings"]}
    root = findings[report["root_causes"][0]]
    assert root["code"] == "layer-dependency-truncated"
    path = root["evidence"]["truncated"][0]["path"]
    assert os.path.realpath(path) == str(real)
    assert root["summary"] == (
        f"{library} (from {manifest}) cannot load: {path} is truncated "
        f"(4096 of {real.stat().st_size} bytes)"
    )
    assert root["remedy"]["commands"][0] == (
        f"apt-get install --reinstall {owner}  # {path} belongs to {owner}"
    )
    assert report["verdict"] == (
        f"Vulkan is unusable: {root['summary']} — fix: apt-get install --reinstall {owner}"
    )
    # The crash it causes and the bisection verdict on the same layer are its symptoms.
    caused = {findings[i]["code"] for i in root["causes"]}
    assert "instance-creation-crashed" in caused
    assert real.stat().st_size > 4096  # outside the namespace nothing changed
