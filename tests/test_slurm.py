"""The Slurm health check and sweep (examples/slurm/) against a real single-host Slurm.

The fixture starts Debian's munged, slurmctld and two slurmd (node names vk1 and vk2 on this one
host, each on its own port) from a generated slurm.conf in a temporary directory, and waits until
sinfo shows both nodes idle.  The wrapper runs as slurmd runs it (an empty environment but
SLURMD_NODENAME; its settings from the config file), against the real Vulkan loader and lavapipe,
broken by real variables and manifests.  Every daemon is killed by process group at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import needs_lavapipe

from vkdoctor.fleet.slurm import MAX_REASON_BYTES, drain_reason

REPO = Path(__file__).resolve().parent.parent
WRAPPER = REPO / "examples" / "slurm" / "vkdoctor-healthcheck.sh"
SWEEP = REPO / "examples" / "slurm" / "vkdoctor-sweep.sbatch"
PROGRAMS = ("munged", "slurmctld", "slurmd", "scontrol", "sinfo", "sbatch", "srun")
NODES = ("vk1", "vk2")


def _missing() -> list[str]:
    path = f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/bin"
    return [p for p in PROGRAMS if shutil.which(p, path=path) is None]


needs_slurm = pytest.mark.skipif(
    bool(_missing()) or os.geteuid() != 0,
    reason="needs root and Debian's slurm-wlm and munge packages (munged, slurmctld, slurmd, "
    "scontrol, sinfo, sbatch, srun); bootstrap.sh installs them",
)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class Cluster:
    root: Path
    conf: Path
    env: dict[str, str]  # what the Slurm client commands need (SLURM_CONF)

    def slurm(self, *args: str, check: bool = True, timeout: float = 30) -> str:
        done = subprocess.run(
            list(args), env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{args}: exit {done.returncode}: {done.stderr}")
        return done.stdout

    def node(self, name: str) -> tuple[str, str]:
        """The node's state (``idle``, ``drained``...) and reason (``none`` when unset)."""
        out = self.slurm("sinfo", "--noheader", "--Node", f"--node={name}", "--format=%T|%E")
        state, _, reason = out.splitlines()[0].partition("|")
        return state.rstrip("*"), reason

    def show_node(self, name: str) -> str:
        return self.slurm("scontrol", "show", "node", name)

    def reset(self) -> None:
        for name in NODES:
            state, _ = self.node(name)
            if "drain" in state:
                self.slurm("scontrol", "update", f"nodename={name}", "state=resume")
        self.wait_idle()

    def wait_idle(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        states: list[tuple[str, str]] = []
        while time.monotonic() < deadline:
            with contextlib.suppress(AssertionError, IndexError):
                states = [self.node(n) for n in NODES]
                if all(s == "idle" for s, _ in states):
                    return
            time.sleep(0.3)
        logs = "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
            for p in sorted((self.root / "log").glob("*"))
        )
        raise AssertionError(f"nodes not idle after {timeout} s: {states}\n{logs}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Kill a daemon's process group (slurmctld forks slurmscriptd) and reap it."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue


def _slurm_conf(root: Path, ports: list[int], healthcheck: Path) -> str:
    ctld, node1, node2 = ports
    return f"""\
ClusterName=vkdoctor-test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={root}/run/munge.socket
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool/%n
SlurmctldPidFile={root}/run/slurmctld.pid
SlurmdPidFile={root}/run/slurmd-%n.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SchedulerType=sched/builtin
MpiDefault=none
SwitchType=switch/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
SlurmdTimeout=300
HealthCheckProgram={healthcheck}
HealthCheckInterval=5
NodeName=vk1 NodeHostname=localhost NodeAddr=127.0.0.1 Port={node1} CPUs=1 RealMemory=100
NodeName=vk2 NodeHostname=localhost NodeAddr=127.0.0.1 Port={node2} CPUs=1 RealMemory=100
PartitionName=debug Nodes=vk1,vk2 Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("slurm")
    for sub in ("state", "spool", "log", "run", "munge", "reports"):
        (root / sub).mkdir()
    root.chmod(0o755)
    (root / "run").chmod(0o755)  # munged wants its socket's directory searchable by all
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    (root / "munge").chmod(0o700)
    # slurmd runs the health check with an empty environment; this shim is what a site's
    # config file would be: it points the real wrapper at the test's settings, and runs it only
    # while the test wants slurmd's runs (the other tests run the wrapper themselves).
    shim = root / "healthcheck"
    shim.write_text(
        "#!/bin/sh\n"
        f'[ -e "{root}/slurmd-runs-it" ] || exit 0\n'
        f'VKDOCTOR_HEALTHCHECK_CONFIG="{root}/slurmd-healthcheck.conf" exec "{WRAPPER}"\n'
    )
    shim.chmod(0o755)
    conf = root / "slurm.conf"
    conf.write_text(_slurm_conf(root, _free_ports(3), shim))
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SLURM_CONF": str(conf)}
    daemons: list[subprocess.Popen[bytes]] = []

    def start(name: str, *argv: str) -> None:
        out = open(root / "log" / f"{name}.out", "wb")  # noqa: SIM115  (closed with the daemon)
        daemons.append(
            subprocess.Popen(
                list(argv),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as one
            )
        )
        out.close()

    try:
        start(
            "munged",
            "/usr/sbin/munged",
            "--foreground",
            "--force",
            f"--socket={root}/run/munge.socket",
            f"--key-file={key}",
            f"--log-file={root}/log/munged.log",
            f"--pid-file={root}/run/munged.pid",
            f"--seed-file={root}/munge/seed",
        )
        deadline = time.monotonic() + 15
        while not (root / "run" / "munge.socket").exists():
            if daemons[0].poll() is not None or time.monotonic() > deadline:
                text = (root / "log" / "munged.out").read_text(errors="replace")
                pytest.skip(f"munged cannot start here: {text[-500:]}")
            time.sleep(0.05)
        start("slurmctld", "slurmctld", "-D", "-f", str(conf))
        for node in NODES:
            start(f"slurmd-{node}", "slurmd", "-D", "-f", str(conf), "-N", node)
        result = Cluster(root, conf, env)
        result.wait_idle()
        yield result
    finally:
        for process in reversed(daemons):
            _stop(process)


def _config(cluster: Cluster, name: str, *exports: str) -> Path:
    """A wrapper config file as a site writes one (the check sees the variables it exports)."""
    path = cluster.root / name
    lines = [
        f"VKDOCTOR_PYTHON={sys.executable}",
        f"VKDOCTOR_REPORT_DIR={cluster.root}/reports",
        "VKDOCTOR_DEADLINE=45",
        f"export SLURM_CONF={cluster.conf}",
        *(f"export {e}" for e in exports),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _run_wrapper(node: str, config: Path) -> subprocess.CompletedProcess[str]:
    # As slurmd starts it: no environment but SLURMD_NODENAME (and here the config's path).
    return subprocess.run(
        ["/bin/sh", str(WRAPPER)],
        env={"SLURMD_NODENAME": node, "VKDOCTOR_HEALTHCHECK_CONFIG": str(config)},
        capture_output=True,
        text=True,
        timeout=90,
        cwd="/",
    )


def _verdict(cluster: Cluster, node: str) -> str:
    return json.loads((cluster.root / "reports" / f"{node}.json").read_text())["verdict"]


def _hostile_manifest(root: Path) -> Path:
    """A real driver manifest whose library is missing, in a directory whose name carries a
    double quote and a terminal escape; the verdict quotes that path."""
    directory = root / 'ev"il\x1b[2J dir'
    directory.mkdir(exist_ok=True)
    manifest = directory / "missing_icd.json"
    manifest.write_text(
        json.dumps(
            {
                "file_format_version": "1.0.0",
                "ICD": {"library_path": '/nonexistent/lib"q.so', "api_version": "1.3.0"},
            }
        )
    )
    return manifest


def test_drain_reason_is_one_safe_line_within_slurms_limit() -> None:
    verdict = 'Vulkan works, with problems: /srv/a"b\x1b[2J/x.json points at\n"/lib.so"'
    assert drain_reason(verdict) == (
        "vkdoctor: Vulkan works, with problems: /srv/a'b\\x1b[2J/x.json points at\\n'/lib.so'"
    )
    long = drain_reason("é" * 400)
    assert len(long.encode()) <= MAX_REASON_BYTES
    assert long == "vkdoctor: " + "é" * 121 + "…"  # 10 + 242 + 3 bytes: no character split
    assert drain_reason("") == "vkdoctor: check failed"


@needs_slurm
@needs_lavapipe
@pytest.mark.slow
def test_broken_stack_drains_and_a_healthy_run_resumes(cluster: Cluster) -> None:
    cluster.reset()
    broken = _config(cluster, "broken.conf", "VK_DRIVER_FILES=/nonexistent.json")
    run = _run_wrapper("vk1", broken)
    assert run.returncode == 1, run.stderr
    verdict = _verdict(cluster, "vk1")
    assert verdict.startswith("Vulkan is unusable: VK_DRIVER_FILES points at a manifest")
    state, reason = cluster.node("vk1")
    assert (state, reason) == ("drained", f"vkdoctor: {verdict}")
    shown = cluster.show_node("vk1")
    assert "State=IDLE+DRAIN " in shown
    assert f"Reason=vkdoctor: {verdict} [root@" in shown
    assert cluster.node("vk2") == ("idle", "none")  # the other node name is untouched

    again = _run_wrapper("vk1", broken)  # still broken: stays drained, same reason
    assert again.returncode == 1, again.stderr
    assert cluster.node("vk1") == ("drained", f"vkdoctor: {verdict}")

    healthy = _run_wrapper("vk1", _config(cluster, "healthy.conf"))
    assert healthy.returncode == 0, healthy.stderr
    assert _verdict(cluster, "vk1").startswith("Vulkan works: loader ")
    assert cluster.node("vk1") == ("idle", "none")
    assert "resumed" in healthy.stderr


@needs_slurm
@needs_lavapipe
@pytest.mark.slow
def test_a_node_drained_by_an_admin_is_never_touched(cluster: Cluster) -> None:
    cluster.reset()
    admin = "GPU swap, ticket 4711"
    cluster.slurm("scontrol", "update", "nodename=vk2", "state=drain", f"reason={admin}")
    healthy = _run_wrapper("vk2", _config(cluster, "healthy.conf"))
    assert healthy.returncode == 0, healthy.stderr
    assert cluster.node("vk2") == ("drained", admin)  # not resumed

    broken = _run_wrapper(
        "vk2", _config(cluster, "broken.conf", "VK_DRIVER_FILES=/nonexistent.json")
    )
    assert broken.returncode == 1, broken.stderr
    assert cluster.node("vk2") == ("drained", admin)  # the admin's reason is kept
    assert "held for another reason (GPU swap, ticket 4711); left alone" in broken.stderr


@needs_slurm
@needs_lavapipe
@pytest.mark.slow
def test_hostile_and_long_verdicts_reach_slurm_cut_and_quoted(cluster: Cluster) -> None:
    cluster.reset()
    manifest = _hostile_manifest(cluster.root)
    run = _run_wrapper("vk1", _config(cluster, "hostile.conf", f"VK_ADD_DRIVER_FILES='{manifest}'"))
    assert run.returncode == 1, run.stderr
    verdict = _verdict(cluster, "vk1")
    assert f'{manifest} points at /nonexistent/lib"q.so, which does not exist' in verdict
    expected = "vkdoctor: " + verdict.replace('"', "'").replace("\x1b", "\\x1b")
    assert cluster.node("vk1") == ("drained", expected)

    deep = cluster.root / "a-rather-long-directory-name-for-a-driver-manifest" / ("x" * 200)
    deep.mkdir(parents=True)
    long_manifest = deep / "missing_icd.json"
    long_manifest.write_text(manifest.read_text())
    run = _run_wrapper("vk1", _config(cluster, "long.conf", f"VK_ADD_DRIVER_FILES={long_manifest}"))
    assert run.returncode == 1, run.stderr
    verdict = _verdict(cluster, "vk1")
    assert len(f"vkdoctor: {verdict}".encode()) > MAX_REASON_BYTES
    state, reason = cluster.node("vk1")
    assert state == "drained"
    assert len(reason.encode()) <= MAX_REASON_BYTES
    assert reason.endswith("…")
    assert f"vkdoctor: {verdict}".startswith(reason[:-1].rstrip())


@needs_slurm
@needs_lavapipe
@pytest.mark.slow
def test_slurmd_runs_the_wrapper_as_its_health_check_program(cluster: Cluster) -> None:
    cluster.reset()
    reports = cluster.root / "reports"
    for old in reports.glob("*"):
        old.unlink()
    config = cluster.root / "slurmd-healthcheck.conf"
    config.write_text(
        _config(cluster, "broken.conf", "VK_DRIVER_FILES=/nonexistent.json").read_text()
    )
    flag = cluster.root / "slurmd-runs-it"
    flag.touch()
    try:
        deadline = time.monotonic() + 90
        states: list[tuple[str, str]] = []
        while time.monotonic() < deadline:
            states = [cluster.node(n) for n in NODES]
            if all(s == "drained" and r.startswith("vkdoctor: ") for s, r in states):
                break
            time.sleep(0.5)
        # Written by slurmd's runs: one report per node name, each the drain's reason.
        for node, (state, reason) in zip(NODES, states, strict=True):
            assert (state, reason) == ("drained", f"vkdoctor: {_verdict(cluster, node)}")
        config.write_text(_config(cluster, "healthy.conf").read_text())
        cluster.wait_idle(timeout=90)
        assert all(cluster.node(n) == ("idle", "none") for n in NODES)
    finally:
        flag.unlink()


@needs_slurm
@needs_lavapipe
@pytest.mark.slow
def test_the_sweep_checks_every_node_and_summarises(cluster: Cluster) -> None:
    cluster.reset()
    out = cluster.root / "sweep"
    job = cluster.slurm(
        "sbatch",
        "--wait",
        "--nodes=2",
        "--partition=debug",
        f"--chdir={cluster.root}",
        f"--output={cluster.root}/sweep.out",
        f"--export=ALL,VKDOCTOR_PYTHON={sys.executable},VKDOCTOR_SWEEP_DIR={out}",
        str(SWEEP),
        timeout=180,
    )
    assert job.startswith("Submitted batch job"), job
    log = (cluster.root / "sweep.out").read_text()
    assert sorted(p.name for p in (out / "reports").glob("*.json")) == ["vk1.json", "vk2.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["reports"], summary["machines"], summary["healthy"]) == (2, 2, 2), log
    assert summary["groups"] == []
    assert "2 reports from 2 machines: 2 healthy, 0 with problems (0 signatures)" in log
    assert "vk1: vkdoctor check exit 0" in log and "vk2: vkdoctor check exit 0" in log
    assert (out / "summary.md").read_text().startswith("## vkdoctor fleet summary")
