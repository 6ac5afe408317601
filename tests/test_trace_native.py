"""The native parts themselves: built by the install, transparent, bounded, honest exit status."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from reproducers.harness import (
    build,
    codes,
    lavapipe_env,
    missing_prerequisite,
    probe,
    trace,
)

from vkdoctor.trace.events import read_trace
from vkdoctor.trace.launch import OUTPUT_CAPTURE
from vkdoctor.trace.manifest import (
    LAYER_NAME,
    TRACE_FILE_ENV,
    audit_environment,
    layer_environment,
    write_layer_manifest,
)
from vkdoctor.trace.native_paths import audit_library, layer_library
from vkdoctor.trace.session import TraceOptions, trace_program

pytestmark = pytest.mark.skipif(
    missing_prerequisite() is not None, reason=missing_prerequisite() or ""
)


@pytest.fixture(scope="module")
def native():
    audit, layer = audit_library(), layer_library()
    # Built by `pip install -e .`: a missing library here is an install bug, not a skip.
    assert audit.available, audit.reason
    assert layer.available, layer.reason
    return audit.path, layer.path


def dynamic_symbols(path: Path) -> set[str]:
    out = subprocess.run(
        ["nm", "-D", "--defined-only", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def test_native_libraries_export_only_their_interfaces(native):
    audit, layer = native
    exported_audit = dynamic_symbols(audit)
    assert {
        "la_version",
        "la_objopen",
        "la_objclose",
        "la_symbind64",
        "la_preinit",
    } <= exported_audit
    # nothing named vk* may leak into the program's symbol namespace (LIB-04)
    assert not [s for s in exported_audit if s.startswith("vk")]
    assert {s for s in dynamic_symbols(layer) if s.startswith("vk")} == {
        "vkNegotiateLoaderLayerInterfaceVersion"
    }
    for lib in native:
        ldd = subprocess.run(["readelf", "-d", str(lib)], capture_output=True, text=True).stdout
        assert "python" not in ldd.lower()
        assert "RPATH" not in ldd and "RUNPATH" not in ldd


def _vulkaninfo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["vulkaninfo", *args], env=env, capture_output=True, text=True, timeout=60
    )


def _without_own_layer(text: str) -> str:
    """vulkaninfo lists available layers: drop our block and the count line it changes."""
    text = re.sub(rf"^{LAYER_NAME} \(.*?(?=^\S|\Z)", "", text, flags=re.M | re.S)
    return re.sub(r"^Layers: count = \d+\n=+\n", "Layers:\n", text, flags=re.M)


@pytest.mark.skipif(shutil.which("vulkaninfo") is None, reason="vulkaninfo is not installed")
def test_layer_is_transparent_to_vulkaninfo(native, tmp_path):
    _, layer = native
    base = dict(lavapipe_env().environ)
    manifest_dir = tmp_path / "layer"
    write_layer_manifest(manifest_dir, layer)
    traced = {
        **base,
        **layer_environment(base, manifest_dir),
        TRACE_FILE_ENV: str(tmp_path / "t.jsonl"),
    }

    plain = _vulkaninfo(base)
    layered = _vulkaninfo(traced)
    assert plain.returncode == layered.returncode == 0, layered.stderr
    assert f"{LAYER_NAME} (" in layered.stdout  # the layer really is there
    assert _without_own_layer(layered.stdout) == _without_own_layer(plain.stdout)

    # the device profile goes through the layer's device chain: must be byte-identical
    _vulkaninfo(base, "--json", "-o", str(tmp_path / "plain.json"))
    _vulkaninfo(traced, "--json", "-o", str(tmp_path / "layered.json"))
    assert (tmp_path / "plain.json").read_bytes() == (tmp_path / "layered.json").read_bytes()

    kinds = {e.ev for e in read_trace(tmp_path / "t.jsonl")}
    assert {"create_instance", "create_device", "destroy_device", "destroy_instance"} <= kinds


def _summary_without_own_layer(text: str) -> str:
    # the layer table's column widths follow the longest name/description: compare words
    lines = [" ".join(line.split()) for line in text.splitlines() if LAYER_NAME not in line]
    return "\n".join(
        re.sub(r"^Instance Layers: count = \d+$", "Instance Layers:", line) for line in lines
    )


@pytest.mark.skipif(shutil.which("vulkaninfo") is None, reason="vulkaninfo is not installed")
def test_full_trace_of_vulkaninfo_keeps_its_output(native, tmp_path):
    env = lavapipe_env()
    plain = _vulkaninfo(dict(env.environ), "--summary")
    run = trace_program(
        ["vulkaninfo", "--summary"],
        env.environ,
        env.procfs,
        TraceOptions(out=tmp_path / "t.jsonl", output=OUTPUT_CAPTURE, timeout=60),
    )
    assert run.mode == "audit+layer"
    assert run.outcome is not None and run.outcome.returncode == 0
    assert _summary_without_own_layer(run.outcome.stdout) == _summary_without_own_layer(
        plain.stdout
    )
    kinds = {e.ev for e in run.trace}
    assert {"hello", "open", "bind", "gipa", "create_instance", "destroy_instance"} <= kinds

    profile = ["vulkaninfo", "--json", "-o", str(tmp_path / "traced.json")]
    traced = trace_program(
        profile, env.environ, env.procfs, TraceOptions(output=OUTPUT_CAPTURE, timeout=60)
    )
    assert traced.outcome is not None and traced.outcome.returncode == 0
    _vulkaninfo(dict(env.environ), "--json", "-o", str(tmp_path / "plain.json"))
    assert (tmp_path / "plain.json").read_bytes() == (tmp_path / "traced.json").read_bytes()


def test_audit_reraises_fatal_signals(native, tmp_path):
    audit, _ = native
    env = {
        **lavapipe_env().environ,
        **audit_environment({}, audit),
        TRACE_FILE_ENV: str(tmp_path / "t.jsonl"),
    }
    for sig, script in ((11, "kill -SEGV $$"), (6, "kill -ABRT $$")):
        result = subprocess.run(["sh", "-c", script], env=env, timeout=30)
        assert result.returncode == -sig
    exits = subprocess.run(["sh", "-c", "exit 7"], env=env, timeout=30)
    assert exits.returncode == 7
    signals = [e for e in read_trace(tmp_path / "t.jsonl") if e.ev == "signal"]
    assert [e.get("sig") for e in signals] == [11, 6]


def test_event_file_is_bounded(native, tmp_path):
    bins = build()
    out = tmp_path / "t.jsonl"
    report = trace([str(bins / "correct")], "--out", str(out), "--max-bytes", "6000")
    assert "trace-truncated" in codes(report)
    # every writer stops at the bound; only the one-line truncation markers may pass it
    assert out.stat().st_size < 6000 + 600
    assert read_trace(out).truncated
    assert probe(report).facts["program"]["exit"] == {"state": "exited", "code": 0}


def test_layer_disable_variable_silences_recording(native, tmp_path):
    bins = build()
    out = tmp_path / "t.jsonl"
    report = trace(
        [str(bins / "correct")], "--out", str(out), env=lavapipe_env(VKDOCTOR_TRACE_DISABLE="1")
    )
    kinds = {e.ev for e in read_trace(out)}
    assert "create_instance" not in kinds and "open" in kinds
    assert probe(report).facts["program"]["exit"]["code"] == 0


def test_trace_environment_merges_existing_settings(tmp_path):
    base = {
        "VK_INSTANCE_LAYERS": "VK_LAYER_KHRONOS_validation",
        "LD_AUDIT": "/x/other.so",
        "VK_LAYER_PATH": "/opt/layers",
    }
    layer_env = layer_environment(base, tmp_path)
    assert layer_env["VK_INSTANCE_LAYERS"] == f"VK_LAYER_KHRONOS_validation:{LAYER_NAME}"
    # VK_ADD_LAYER_PATH is ignored when VK_LAYER_PATH is set: extend the latter
    assert layer_env["VK_LAYER_PATH"] == f"{tmp_path}:/opt/layers"
    assert "VK_ADD_LAYER_PATH" not in layer_env
    plain = layer_environment({}, tmp_path)
    assert plain["VK_ADD_LAYER_PATH"] == str(tmp_path) and "VK_LAYER_PATH" not in plain
    assert audit_environment(base, Path("/a.so"))["LD_AUDIT"] == "/a.so:/x/other.so"


def test_manifest_is_a_valid_explicit_layer(tmp_path):
    path = write_layer_manifest(tmp_path, Path("/some/libVkLayer_vkdoctor_trace.so"))
    data = json.loads(path.read_text())
    layer = data["layer"]
    assert layer["name"] == LAYER_NAME
    assert layer["library_path"] == "/some/libVkLayer_vkdoctor_trace.so"
    assert layer["enable_environment"] and layer["disable_environment"]
    assert data["file_format_version"] == "1.2.1"
    assert layer["library_arch"] == "64"
    # the same manifest where the loader looks for implicit layers under an XDG config dir
    implicit = tmp_path / "vulkan" / "implicit_layer.d" / path.name
    assert json.loads(implicit.read_text()) == data
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, "vulkan"]  # no temp file
    assert [p.name for p in implicit.parent.iterdir()] == [path.name]


def test_layer_is_implicit_where_the_loader_allows_it(tmp_path):
    # 1.3.239 (Debian 12): an XDG config dir, its default kept
    old = layer_environment({}, tmp_path, (1, 3, 239))
    assert old["XDG_CONFIG_DIRS"] == f"{tmp_path}:/etc/xdg"
    assert "VK_INSTANCE_LAYERS" not in old and "VK_ADD_LAYER_PATH" not in old
    kept = layer_environment({"XDG_CONFIG_DIRS": "/opt/xdg"}, tmp_path, (1, 3, 239))
    assert kept["XDG_CONFIG_DIRS"] == f"{tmp_path}:/opt/xdg"
    # 1.3.296 and later: the loader's own variable
    new = layer_environment({}, tmp_path, (1, 4, 309))
    assert new["VK_ADD_IMPLICIT_LAYER_PATH"] == str(tmp_path / "vulkan" / "implicit_layer.d")
    assert "XDG_CONFIG_DIRS" not in new
    # VK_LOADER_LAYERS_DISABLE drops implicit layers: explicit then, forced with the one switch
    # that wins over the disable filter
    disabled = layer_environment({"VK_LOADER_LAYERS_DISABLE": "~all~"}, tmp_path, (1, 3, 239))
    assert disabled["VK_LOADER_LAYERS_ENABLE"] == LAYER_NAME
    assert "VK_INSTANCE_LAYERS" not in disabled
    assert disabled["VK_ADD_LAYER_PATH"] == str(tmp_path)
