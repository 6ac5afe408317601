"""The Kubernetes examples, validated offline: no cluster runs here.

Each manifest is checked against the Kubernetes API models the ``kubernetes`` package ships
(strict: an unknown field or a wrong type fails), the vkdoctor command lines in them are parsed by
vkdoctor's own parser, the shell scripts by ``sh -n``, and the node-problem-detector plugin
config against NPD's custom-plugin format (pkg/custompluginmonitor/types: the Go structs' JSON
names, the defaults and the checks of ``Validate``).  The Job's script and NPD's rule also run
for real here, on the real loader.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import VkWorld, needs_lavapipe

yaml = pytest.importorskip("yaml", reason="pyyaml is in the test extra")
models = pytest.importorskip("kubernetes.client.models", reason="kubernetes is in the test extra")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "kubernetes"
DAEMONSET = EXAMPLES / "vkdoctor-daemonset.yaml"
JOB = EXAMPLES / "vkdoctor-job.yaml"
CONFIGMAP = EXAMPLES / "npd-vkdoctor-configmap.yaml"
NPD_PLUGIN = EXAMPLES / "npd-vkdoctor-plugin.json"
CONTAINERFILE = EXAMPLES / "Containerfile"
VENV_BIN = Path(sys.executable).parent

KINDS = {
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("apps/v1", "DaemonSet"): "V1DaemonSet",
    ("batch/v1", "Job"): "V1Job",
}


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def validate(doc: dict[str, Any]) -> Any:
    """The document as its API model; pydantic's strict mode refuses unknown fields, missing
    required ones and wrong types (a quantity written as a number, a string for an integer)."""
    name = KINDS.get((doc.get("apiVersion"), doc.get("kind")))
    assert name, f"no model for {doc.get('apiVersion')}/{doc.get('kind')}"
    return getattr(models, name).model_validate(doc, strict=True)


def one(path: Path, kind: str) -> dict[str, Any]:
    (doc,) = [d for d in documents(path) if d["kind"] == kind]
    return doc


def container(doc: dict[str, Any]) -> dict[str, Any]:
    (only,) = doc["spec"]["template"]["spec"]["containers"]
    return only


def script(doc: dict[str, Any]) -> str:
    spec = container(doc)
    assert spec["command"] == ["/bin/sh", "-c"]
    (text,) = spec["args"]
    return text


def vkdoctor_commands(text: str) -> list[list[str]]:
    """Every ``vkdoctor ...`` command line in a shell script (continuations joined)."""
    joined = text.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        words = shlex.split(line.split("&")[0])
        if words and words[0] == "vkdoctor":
            commands.append(words[1:])
    return commands


def parse_vkdoctor(argv: list[str]) -> Any:
    from vkdoctor.cli import build_parser

    return build_parser(argv[0]).parse_args(argv)


def env_of(doc: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container(doc).get("env", [])}


@pytest.mark.parametrize("path", [DAEMONSET, JOB, CONFIGMAP], ids=lambda p: p.name)
def test_every_manifest_validates_against_the_api_models(path: Path) -> None:
    docs = documents(path)
    assert docs
    for doc in docs:
        validate(doc)


def test_the_validation_catches_typos_and_wrong_types() -> None:
    # Guards the test above against passing vacuously.
    daemonset = one(DAEMONSET, "DaemonSet")
    for change in (
        lambda d: d["spec"]["template"]["spec"].__setitem__("nodeSelecter", {}),
        lambda d: d["spec"]["template"]["spec"].__setitem__("terminationGracePeriodSeconds", "30"),
        lambda d: container(d)["resources"]["limits"].__setitem__("memory", 1),
        lambda d: container(d).pop("name"),
    ):
        broken = copy.deepcopy(daemonset)
        change(broken)
        with pytest.raises(Exception, match="validation error"):
            validate(broken)


def test_daemonset_reaches_the_gpu_with_graphics_and_writes_to_the_host(tmp_path: Path) -> None:
    daemonset = one(DAEMONSET, "DaemonSet")
    template = daemonset["spec"]["template"]
    selector = daemonset["spec"]["selector"]["matchLabels"]
    assert selector.items() <= template["metadata"]["labels"].items()
    env = env_of(daemonset)
    assert env["NVIDIA_VISIBLE_DEVICES"] == "all"
    assert "graphics" in env["NVIDIA_DRIVER_CAPABILITIES"].split(",")
    # No GPU requested: the health check must not take one away from the workloads.
    resources = container(daemonset)["resources"]
    assert not any(k.startswith("nvidia.com/") for part in resources.values() for k in part)
    (check,) = vkdoctor_commands(script(daemonset))
    mounts = {m["mountPath"]: m["name"] for m in container(daemonset)["volumeMounts"]}
    # vkdoctor checks its output folders while parsing: give the pod's mounts a place here,
    # then read the paths back in the pod's terms.
    local = {m: str(tmp_path / m.lstrip("/")) for m in mounts}
    for folder in local.values():
        Path(folder).mkdir(parents=True)

    def here(word: str) -> str:
        mount = next((m for m in sorted(local, key=len, reverse=True) if m in word), None)
        return word.replace(mount, local[mount], 1) if mount else word

    args = parse_vkdoctor([here(word) for word in check])
    for mount, folder in local.items():
        args.prometheus = args.prometheus.replace(folder, mount)
        args.json = args.json.replace(folder, mount)
    assert args.command == "check" and args.prometheus and args.json
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    for output in (args.prometheus, args.json):
        mount = next(m for m in mounts if output.startswith(m + "/"))
        assert "hostPath" in volumes[mounts[mount]], f"{output} is not on the node"
    assert args.prometheus.endswith(".prom")  # the textfile collector reads *.prom only
    sh = subprocess.run(["sh", "-n", "-c", script(daemonset)], capture_output=True, text=True)
    assert sh.returncode == 0, sh.stderr


@needs_lavapipe
def test_daemonset_loop_writes_both_files_and_stops_on_sigterm(
    world: VkWorld, tmp_path: Path
) -> None:
    from test_prometheus import only, parse_exposition

    world.lavapipe()
    text = script(one(DAEMONSET, "DaemonSet"))
    # The node's directories, here under tmp_path.
    text = text.replace("/var/lib/node-exporter/textfile", str(tmp_path / "textfile"))
    text = text.replace("/var/lib/vkdoctor", str(tmp_path / "reports"))
    for directory in ("textfile", "reports"):
        (tmp_path / directory).mkdir()
    metrics = tmp_path / "textfile" / "vkdoctor.prom"
    report = tmp_path / "reports" / "node-a.json"
    path = f"{VENV_BIN}{os.pathsep}{world.environ.get('PATH', os.defpath)}"
    shell = subprocess.Popen(
        ["sh", "-c", text],
        env={**world.environ, "PATH": path, "NODE_NAME": "node-a"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (metrics.exists() and report.exists()) and time.monotonic() < deadline:
            assert shell.poll() is None, "the loop ended by itself"
            time.sleep(0.2)
        time.sleep(0.5)  # now in its 5-minute sleep
        assert only(parse_exposition(metrics.read_text()), "vkdoctor_up").value == 1
        assert json.loads(report.read_text())["summary"]["status"] == "ok"
        shell.send_signal(signal.SIGTERM)
        assert shell.wait(timeout=10) == 143  # the loop ends; it does not start another check
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(shell.pid, signal.SIGKILL)
        shell.wait(timeout=10)


def test_job_spreads_one_pod_per_node() -> None:
    job = one(JOB, "Job")
    spec = job["spec"]["template"]["spec"]
    (term,) = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= (
        job["spec"]["template"]["metadata"]["labels"].items()
    )
    assert spec["restartPolicy"] == "Never"
    assert "graphics" in env_of(job)["NVIDIA_DRIVER_CAPABILITIES"].split(",")
    (check,) = vkdoctor_commands(script(job))
    assert parse_vkdoctor(check).json == "-"


def _run_script(text: str, world: VkWorld, **env: str) -> subprocess.CompletedProcess[str]:
    path = f"{VENV_BIN}{os.pathsep}{world.environ.get('PATH', os.defpath)}"
    return subprocess.run(
        ["sh", "-c", text],
        capture_output=True,
        text=True,
        env={**world.environ, "PATH": path, **env},
        timeout=300,
    )


@needs_lavapipe
def test_job_script_prints_a_report_and_fails_only_when_vkdoctor_cannot_run(
    world: VkWorld,
) -> None:
    world.lavapipe()
    text = script(one(JOB, "Job"))
    healthy = _run_script(text, world)
    assert healthy.returncode == 0, healthy.stderr
    assert json.loads(healthy.stdout)["summary"]["status"] == "ok"  # stdout: the report only
    # A broken node is a finding in the collected report, not a failed pod.
    broken = _run_script(text, world, VK_LOADER_DRIVERS_SELECT="*nvidia*")
    assert broken.returncode == 0
    assert json.loads(broken.stdout)["summary"]["status"] == "fail"
    # vkdoctor unable to run (a usage error, exit 2) does fail the pod.
    assert _run_script(text.replace("--deadline 300", "--deadline 0"), world).returncode != 0


# -- node-problem-detector's custom plugin config ------------------------------------------------

# The JSON names of NPD's Go structs (pkg/custompluginmonitor/types/config.go, types.go and
# pkg/types/types.go's Condition).
NPD_TOP = {"plugin", "pluginConfig", "source", "conditions", "rules", "metricsReporting"}
NPD_PLUGIN_CONFIG = {
    "invoke_interval": str,
    "timeout": str,
    "max_output_length": int,
    "concurrency": int,
    "enable_message_change_based_condition_update": bool,
    "skip_initial_status": bool,
}
NPD_CONDITION = {"type": str, "status": str, "transition": str, "reason": str, "message": str}
NPD_RULE = {
    "type": str,
    "condition": str,
    "reason": str,
    "path": str,
    "args": list,
    "timeout": str,
    "invoke_interval": str,
}
_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration(text: str) -> float:
    """Seconds of a Go ``time.ParseDuration`` string (what NPD parses the durations with)."""
    assert re.fullmatch(f"(?:{_GO_DURATION.pattern})+", text), f"not a Go duration: {text!r}"
    return sum(float(n) * _UNITS[unit] for n, unit in _GO_DURATION.findall(text))


def _typed(data: dict[str, Any], fields: dict[str, type], where: str) -> None:
    unknown = set(data) - set(fields)
    assert not unknown, f"{where}: fields NPD does not know: {sorted(unknown)}"
    for key, value in data.items():
        assert type(value) is fields[key], f"{where}.{key}: {value!r} is not {fields[key]}"


def check_npd_config(config: dict[str, Any]) -> None:
    """NPD's own checks (``ApplyConfiguration`` and ``Validate``), written out."""
    assert set(config) <= NPD_TOP, sorted(set(config) - NPD_TOP)
    assert config["plugin"] == "custom"
    assert isinstance(config["source"], str) and config["source"]
    plugin = config.get("pluginConfig", {})
    _typed(plugin, NPD_PLUGIN_CONFIG, "pluginConfig")
    global_timeout = go_duration(plugin.get("timeout", "5s"))
    go_duration(plugin.get("invoke_interval", "30s"))
    conditions = {c["type"] for c in config["conditions"]}
    for condition in config["conditions"]:
        _typed(condition, NPD_CONDITION, "conditions[]")
    for rule in config["rules"]:
        _typed(rule, NPD_RULE, "rules[]")
        assert rule["type"] in ("temporary", "permanent")
        if "timeout" in rule:
            assert go_duration(rule["timeout"]) <= global_timeout
        if rule["type"] == "permanent":
            assert rule["condition"] in conditions, "a permanent rule needs a default condition"
        assert all(isinstance(a, str) for a in rule.get("args", []))


def test_npd_config_follows_npds_custom_plugin_format() -> None:
    config = json.loads(NPD_PLUGIN.read_text())
    check_npd_config(config)
    (condition,) = config["conditions"]
    assert condition["type"] == "VulkanUnhealthy"
    (rule,) = config["rules"]
    assert rule["type"] == "permanent" and rule["condition"] == "VulkanUnhealthy"
    # The path is where the Containerfile puts vkdoctor.
    assert f"ln -s /opt/vkdoctor/bin/vkdoctor {rule['path']}" in CONTAINERFILE.read_text()
    args = parse_vkdoctor(rule["args"])
    assert args.command == "check" and args.npd
    # vkdoctor's own deadline ends the run before NPD kills it, so NPD gets a verdict.
    assert args.deadline < go_duration(rule.get("timeout", config["pluginConfig"]["timeout"]))
    assert args.npd_max_output == config["pluginConfig"].get("max_output_length", 80)


def test_npd_format_check_catches_mistakes() -> None:
    config = json.loads(NPD_PLUGIN.read_text())
    for change in (
        lambda c: c["pluginConfig"].__setitem__("max_output_lenght", 80),
        lambda c: c["pluginConfig"].__setitem__("timeout", "3 minutes"),
        lambda c: c["rules"][0].__setitem__("condition", "VulkanBroken"),
        lambda c: c["rules"][0].__setitem__("timeout", "10m"),
        lambda c: c.__setitem__("plugin", "script"),
    ):
        broken = copy.deepcopy(config)
        change(broken)
        with pytest.raises(AssertionError):
            check_npd_config(broken)


def test_configmap_carries_the_same_npd_config() -> None:
    configmap = one(CONFIGMAP, "ConfigMap")
    (text,) = configmap["data"].values()
    assert json.loads(text) == json.loads(NPD_PLUGIN.read_text())


@needs_lavapipe
def test_npd_rule_runs_as_npd_would_run_it(world: VkWorld) -> None:
    world.lavapipe()
    config = json.loads(NPD_PLUGIN.read_text())
    (rule,) = config["rules"]
    limit = config["pluginConfig"]["max_output_length"]
    argv = [str(VENV_BIN / "vkdoctor"), *rule["args"]]
    timeout = go_duration(rule["timeout"])
    healthy = subprocess.run(
        argv, capture_output=True, text=True, env=world.environ, timeout=timeout
    )
    assert healthy.returncode == 0 and healthy.stderr == ""
    assert healthy.stdout.count("\n") == 1 and len(healthy.stdout.strip().encode()) <= limit
    broken = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env={**world.environ, "VK_LOADER_DRIVERS_SELECT": "*nvidia*"},
        timeout=timeout,
    )
    assert broken.returncode == 1  # NPD: NonOK, the VulkanUnhealthy condition becomes True
    assert broken.stdout.startswith("Vulkan is unusable: VK_LOADER_DRIVERS_SELECT")
