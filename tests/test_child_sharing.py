"""Children shared between probes (ChildPool's kept children) change how long a check takes,
never what it finds: the same report with sharing on and off, on the healthy machine and with
real fault drivers that crash or fail in a step a shared child reaches late."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import faultlib
import pytest
from conftest import VkWorld

from vkdoctor.engine import child
from vkdoctor.engine.env import Env
from vkdoctor.engine.runner import Options, run_pipeline
from vkdoctor.report.model import Report


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The PIDs of every child the run starts (warm, kept or cold)."""
    pids: list[int] = []
    real = child.spawn

    def counting(environ: dict[str, str]) -> child.Spawned:
        started = real(environ)
        pids.append(started.proc.pid)
        return started

    monkeypatch.setattr(child, "spawn", counting)
    yield pids


def _summary(report: Report) -> list[tuple[str, str, tuple[str, ...], str | None]]:
    """Per probe: status, finding codes, and the first remedy command of the first finding."""
    rows = []
    for result in report.probes:
        first = result.findings[0].remedy if result.findings else None
        command = first.commands[0] if first and first.commands else None
        rows.append(
            (result.id, result.status.value, tuple(f.code for f in result.findings), command)
        )
    return rows


def _devices(report: Report) -> list[tuple[str, int, str | None, str | None]]:
    return [(d.name, d.vendor_id, d.device_uuid, d.driver_manifest) for d in report.devices]


def test_a_healthy_check_shares_two_children_and_finds_the_same(spawned: list[int]) -> None:
    env = Env.current()
    shared = run_pipeline(env, Options(cores=2)).report
    shared_children = len(spawned)
    spawned.clear()
    alone = run_pipeline(env, Options(cores=2, reuse_children=False)).report

    assert _summary(shared) == _summary(alone)
    assert _devices(shared) == _devices(alone) and shared.devices
    assert shared.verdict == alone.verdict and shared.verdict.startswith("Vulkan works")
    # Six probes, each native step in a child: six children alone, two shared (the most that run
    # at once: driver and layer enumeration, then device and dispatch).
    assert len(spawned) == 6
    assert shared_children == 2


@pytest.mark.parametrize("cores", [2, 4])  # 4: the device and dispatch children speculative
@pytest.mark.parametrize("variant", ["dispatch-crash", "create-device-fail", "gdpa-null"])
def test_a_fault_in_a_late_step_is_diagnosed_alone_with_the_same_result(
    tmp_path: Path, fault_build_dir: Path, variant: str, cores: int
) -> None:
    library = faultlib.build_driver(fault_build_dir, variant)
    manifest = faultlib.write_driver_manifest(tmp_path / "icd", str(library))
    environ = faultlib.loader_env(tmp_path / "home", driver_manifests=[manifest], debug=None)
    env = Env.current().__class__(**{**Env.current().__dict__, "environ": environ})

    shared = run_pipeline(env, Options(timeout_s=5, cores=cores)).report
    alone = run_pipeline(env, Options(timeout_s=5, reuse_children=False)).report

    assert _summary(shared) == _summary(alone)
    assert shared.verdict == alone.verdict
    assert shared.root_causes and len(shared.root_causes) == len(alone.root_causes)
    assert any(result.facts.get("rerun") for result in shared.probes)  # re-run alone


@pytest.mark.parametrize("cores", [1, 2, 4])
def test_the_smoke_dispatch_and_the_device_probe_start_while_the_instance_probe_still_runs(
    monkeypatch: pytest.MonkeyPatch, spawned: list[int], cores: int
) -> None:
    """The dispatch not on one core, where the instance's child keeps it; from four cores both
    before anything else (warm_pool's speculative requests), and those children are the ones the
    probes take.  On two cores the device probe waits for the instance probe (no core free)."""
    started: dict[str, float] = {}
    ended: dict[str, float] = {}
    handles: list[str] = []
    real_init, real_wait = child.ChildHandle.__init__, child.ChildHandle.wait

    def recording(self: child.ChildHandle, task: str, *args: object, **kwargs: object) -> None:
        started.setdefault(task, time.monotonic())
        handles.append(task)
        real_init(self, task, *args, **kwargs)  # type: ignore[arg-type]

    def waiting(self: child.ChildHandle) -> child.ChildOutcome:
        outcome = real_wait(self)
        ended.setdefault(self.task, time.monotonic())
        return outcome

    monkeypatch.setattr(child.ChildHandle, "__init__", recording)
    monkeypatch.setattr(child.ChildHandle, "wait", waiting)
    report = run_pipeline(Env.current(), Options(cores=cores)).report

    instance_task = "vkdoctor.tasks.vkprobe:instances"
    smoke_task = "vkdoctor.tasks.dispatch:smoke"
    device_task = "vkdoctor.tasks.vkprobe:devices"
    loader_task = "vkdoctor.tasks.loader:loader_info"
    assert (started[smoke_task] < ended[instance_task]) == (cores > 1)
    assert (started[device_task] < ended[instance_task]) == (cores >= 4)
    assert (started[smoke_task] < started[loader_task]) == (cores >= 4)
    assert (started[device_task] < started[loader_task]) == (cores >= 4)
    # The speculative children were taken, not run twice.
    assert handles.count(smoke_task) == 1 and handles.count(device_task) == 1
    # Each speculative child is one more warm child: the enumeration steps still run at once.
    assert len(spawned) == (4 if cores >= 4 else 2)
    dispatch = next(p for p in report.probes if p.id == "dispatch")
    assert dispatch.status.value == "ok"
    assert [row["verified"] for row in dispatch.facts["devices"]] == [True] * len(report.devices)
    # The early device child checked what the probe would have: every device command resolves.
    device = next(p for p in report.probes if p.id == "device")
    assert not device.status.is_failure and device.facts["devices"] == len(report.devices)
    assert "gdpa-missing" not in {f.code for f in device.findings}


def test_an_early_dispatch_child_is_killed_when_the_instance_fails(
    tmp_path: Path, fault_build_dir: Path
) -> None:
    library = faultlib.build_driver(fault_build_dir, "create-instance-fail")
    manifest = faultlib.write_driver_manifest(tmp_path / "icd", str(library))
    environ = faultlib.loader_env(tmp_path / "home", driver_manifests=[manifest], debug=None)
    env = Env.current().__class__(**{**Env.current().__dict__, "environ": environ})

    for cores in (2, 4):  # 4: the speculative child, started before any step ran
        report = run_pipeline(env, Options(timeout_s=5, cores=cores)).report

        for probe in ("device", "dispatch"):  # both started early from four cores
            result = next(p for p in report.probes if p.id == probe)
            assert result.status.value == "skipped" and result.blocked_by == "instance"
        assert child.live_pids() == []


def test_a_speculative_child_goes_only_to_the_same_request_and_dies_unclaimed() -> None:
    env = Env.current()
    pool = child.ChildPool(child.child_environ(env.environ, {}), size=1, budget=1)
    request = ("vkdoctor.tasks.dispatch:smoke", {"items": None, "fence_timeout_s": 3.0})
    overrides = {"VK_LOADER_DEBUG": "error"}
    pool.speculate(*request, overrides, child.Sharing.SHARE, 5.0)
    same = child.request_key(*request, overrides, child.Sharing.SHARE)
    handle = pool.claim(same, 5.0)
    assert handle is not None and handle.task == request[0]
    assert pool.claim(same, 5.0) is None  # taken once
    assert handle.wait().state == "ok"

    pool.speculate(*request, overrides, child.Sharing.SHARE, 5.0)
    other_payload = {"items": None, "fence_timeout_s": 2.0}
    others = [
        child.request_key(request[0], other_payload, overrides, child.Sharing.SHARE),
        child.request_key(*request, {"VK_LOADER_DEBUG": "all"}, child.Sharing.SHARE),
        child.request_key(*request, overrides, child.Sharing.NONE),
    ]
    assert [pool.claim(key, 5.0) for key in others] == [None, None, None]
    # A request with less time than the speculative child was given must not take it.
    assert pool.claim(same, 1.0) is None
    pool.close()
    assert child.live_pids() == []


def test_the_status_line_says_what_is_being_isolated(world: VkWorld, fault_build_dir: Path) -> None:
    """A crashing implicit layer: while the culprit is isolated, the probe says what it tries
    (one layer off, one driver alone: the world holds lavapipe and this layer)."""
    library = faultlib.build_layer(fault_build_dir, "create-instance-crash")
    world.lavapipe()
    world.layer("VK_LAYER_VKFAULT_crash", str(library), implicit=True)
    said: list[tuple[str, str]] = []
    report = run_pipeline(
        world.env(),
        Options(timeout_s=5),
        on_progress=lambda spec, text: said.append((spec.id, text)),
    ).report
    assert (
        "instance",
        "isolating the culprit of instance creation: 1 layer off, 1 driver alone",
    ) in said
    assert "culprit-layer" in [f.code for _, f in report.findings()]


def test_the_child_kept_last_is_handed_out_first() -> None:
    """The child that ran the step just before (the instance probe's, for the device probe) has
    the loader and drivers this task needs already mapped: it is the one a shared request gets."""
    pool = child.ChildPool(child.child_environ(Env.current().environ, {}), size=0)
    overrides = {"VK_LOADER_DEBUG": "error"}
    first, second = child.spawn(pool.environ), child.spawn(pool.environ)
    pool.keep(overrides, first)
    pool.keep(overrides, second)
    assert pool.take({"VK_LOADER_DEBUG": "all"}, child.Sharing.SHARE) is None  # other variables
    assert pool.take(overrides, child.Sharing.SHARE) is second
    assert pool.take(overrides, child.Sharing.SHARE) is first
    pool.keep(overrides, first)
    pool.keep(overrides, second)
    pool.close()
    assert child.live_pids() == []


@pytest.mark.slow  # two whole checks through the CLI
@pytest.mark.parametrize("cores", [2, 4])
def test_the_check_command_starts_its_children_first_and_the_pool_adopts_them_all(
    cores: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`vkdoctor check` prestarts what warm_pool would start (spawn.children_for_check): every
    child of a healthy check is one of those, none is started again and none is left over."""
    from vkdoctor import cli
    from vkdoctor.engine import spawn as spawning

    prestarted: list[int] = []
    later: list[int] = []
    real = spawning.spawn

    def recording(into: list[int]) -> Callable[[dict[str, str]], child.Spawned]:
        def counting(environ: dict[str, str]) -> child.Spawned:
            started = real(environ)
            into.append(started.proc.pid)
            return started

        return counting

    monkeypatch.setattr(spawning, "spawn", recording(prestarted))
    monkeypatch.setattr(child, "spawn", recording(later))
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(cores)))
    assert cli.main(["check", "--json", str(tmp_path / "r.json")]) == 0
    capsys.readouterr()
    assert len(prestarted) == spawning.children_for_check(cores) == (2 if cores == 2 else 4)
    assert later == []  # the pool started none of its own: it adopted every prestarted child
    assert spawning._REGISTRY.prestarted == []  # none left over, unadopted
    assert not set(prestarted) & set(child.live_pids())  # all reaped by the end of the command


@pytest.mark.slow  # a whole check of one probe through the CLI
def test_prestarted_children_a_run_does_not_adopt_are_ended_with_the_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`check loader-discovery` needs one child of the two prestarted, and a usage error none:
    the rest are killed and reaped when the command returns, not left for the exit."""
    from vkdoctor import cli
    from vkdoctor.engine import spawn as spawning

    prestarted: list[child.Spawned] = []
    real = spawning.spawn

    def recording(environ: dict[str, str]) -> child.Spawned:
        started = real(environ)
        prestarted.append(started)
        return started

    monkeypatch.setattr(spawning, "spawn", recording)
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: {0, 1})
    assert cli.main(["check", "loader-discovery", "--json", str(tmp_path / "r.json")]) == 0
    with pytest.raises(SystemExit) as usage:
        cli.main(["check", "--no-such-option"])
    capsys.readouterr()
    assert usage.value.code == 2
    assert len(prestarted) == 4  # two per command
    assert spawning._REGISTRY.prestarted == []
    assert [s.proc.returncode is not None for s in prestarted] == [True] * 4  # all reaped
    assert not {s.proc.pid for s in prestarted} & set(child.live_pids())
