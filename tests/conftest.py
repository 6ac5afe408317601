"""Shared fixtures: an isolated Vulkan "world" on the real loader.

``VkWorld`` points HOME and the XDG variables at a temporary tree, so the real loader and
vkdoctor's model of it see only the manifests a test puts there (plus /etc/vulkan, which holds
nothing on the test machines).  Drivers are real: lavapipe's manifest, or fault libraries compiled
at test time (tests/faultlib.py).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# Before any vkdoctor module binds make_finding: record every finding code this session's
# processes build (tests/codes_seen.py and tests/test_codes_produced.py read the log).
_CODECOLLECT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "codecollect")
if "VKDOCTOR_TEST_CODE_LOG" not in os.environ:
    _fd, _log = tempfile.mkstemp(prefix="vkdoctor-codes-", suffix=".log")
    os.close(_fd)
    os.environ["VKDOCTOR_TEST_CODE_LOG"] = _log
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (_CODECOLLECT, os.environ.get("PYTHONPATH", "")) if p
)
sys.path.insert(0, _CODECOLLECT)
import codes_seen_hook  # noqa: E402, F401
from slow_measured import MEASURED_SLOW  # noqa: E402

from vkdoctor.engine.env import Env  # noqa: E402
from vkdoctor.engine.runner import Options, run_pipeline  # noqa: E402
from vkdoctor.report.model import Finding, ProbeResult, Report  # noqa: E402
from vkdoctor.vulkan.compute import ComputeContext, ComputeError, Instance  # noqa: E402

LAVAPIPE_MANIFEST = Path("/usr/share/vulkan/icd.d/lvp_icd.x86_64.json")
needs_lavapipe = pytest.mark.skipif(
    not LAVAPIPE_MANIFEST.exists(), reason="Mesa's lavapipe (mesa-vulkan-drivers) is not installed"
)


@dataclass
class VkWorld:
    root: Path
    environ: dict[str, str] = field(default_factory=dict)

    @property
    def icd_dir(self) -> Path:
        return self.root / "data" / "vulkan" / "icd.d"

    @property
    def implicit_dir(self) -> Path:
        return self.root / "data" / "vulkan" / "implicit_layer.d"

    @property
    def explicit_dir(self) -> Path:
        return self.root / "data" / "vulkan" / "explicit_layer.d"

    def write(self, directory: Path, name: str, content: Any) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / name
        path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2))
        return path

    def driver(
        self, name: str, library_path: str, api_version: str = "1.3.239", **icd: Any
    ) -> Path:
        body = {"library_path": library_path, "api_version": api_version, **icd}
        return self.write(self.icd_dir, name, {"file_format_version": "1.0.0", "ICD": body})

    def lavapipe(self, name: str = "lvp_icd.x86_64.json") -> Path:
        self.icd_dir.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy(LAVAPIPE_MANIFEST, self.icd_dir / name))

    def layer(self, name: str, library_path: str, implicit: bool = True, **fields: Any) -> Path:
        body: dict[str, Any] = {
            "name": name,
            "type": "GLOBAL",
            "library_path": library_path,
            "api_version": "1.3.239",
            "implementation_version": "1",
            "description": "test layer",
        }
        if implicit:
            body["disable_environment"] = {f"DISABLE_{name.upper()}": "1"}
        body.update(fields)
        directory = self.implicit_dir if implicit else self.explicit_dir
        return self.write(
            directory, f"{name}.json", {"file_format_version": "1.1.2", "layer": body}
        )

    def env(self, **changes: str | None) -> Env:
        return (
            Env.current()
            .__class__(**{**Env.current().__dict__, "environ": {**self.environ}})
            .with_environ(**changes)
        )

    def run(
        self, probes: Iterable[str] | None = None, timeout_s: float = 5.0, **changes: str | None
    ) -> Report:
        options = Options(timeout_s=timeout_s)
        return run_pipeline(self.env(**changes), options, probes).report


@pytest.fixture
def world(tmp_path: Path) -> VkWorld:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("VK_", "XDG_"))}
    environ.pop("LD_LIBRARY_PATH", None)
    environ.update(
        HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_CONFIG_DIRS=str(tmp_path / "xdg"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_DATA_DIRS=str(tmp_path / "share"),
    )
    return VkWorld(tmp_path, environ)


def probe(report: Report, probe_id: str) -> ProbeResult:
    return next(p for p in report.probes if p.id == probe_id)


def codes(report: Report | ProbeResult) -> list[str]:
    findings = (
        report.findings if isinstance(report, ProbeResult) else [f for _, f in report.findings()]
    )
    return [f.code for f in findings]


def finding(report: Report | ProbeResult, code: str) -> Finding:
    findings = (
        report.findings if isinstance(report, ProbeResult) else [f for _, f in report.findings()]
    )
    matches = [f for f in findings if f.code == code]
    assert matches, f"no finding {code}; got {[f.code for f in findings]}"
    return matches[0]


@pytest.fixture(scope="session")
def fault_build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import faultlib

    if not faultlib.compiler_available():
        pytest.skip("no C compiler: fault libraries cannot be built")
    return tmp_path_factory.mktemp("faults")


@pytest.fixture
def fault_driver(fault_build_dir: Path, world: VkWorld):
    """Install a fault driver variant into the world; returns (manifest, library)."""
    import faultlib

    def install(variant: str, **manifest: Any) -> tuple[Path, Path]:
        library = faultlib.build_driver(fault_build_dir, variant)
        path = faultlib.write_driver_manifest(
            world.icd_dir, str(library), name=f"fault_{variant}", **manifest
        )
        return path, library

    return install


@pytest.fixture
def fault_layer(fault_build_dir: Path, world: VkWorld):
    """Install a fault layer variant as an implicit layer; returns (manifest, library, name)."""
    import faultlib

    def install(variant: str, implicit: bool = True) -> tuple[Path, Path, str]:
        library = faultlib.build_layer(fault_build_dir, variant)
        name = faultlib.layer_name(variant)
        directory = world.implicit_dir if implicit else world.explicit_dir
        path = faultlib.write_layer_manifest(
            directory, name=name, library_path=str(library), implicit=implicit
        )
        return path, library, name

    return install


@pytest.fixture(scope="module")
def instance() -> Iterator[Instance]:
    """A Vulkan instance through vkdoctor's compute boundary (tests of compute and kernels)."""
    try:
        inst = Instance()
    except ComputeError as exc:
        pytest.skip(f"no Vulkan instance: {exc}")
    with inst:
        yield inst


@pytest.fixture(scope="module")
def cpu_index(instance: Instance) -> int:
    info = instance.find_device(cpu=True)
    if info is None:
        pytest.skip("no CPU Vulkan device (lavapipe) present")
    return info.index


@pytest.fixture(scope="module")
def ctx(instance: Instance, cpu_index: int) -> Iterator[ComputeContext]:
    with instance.context(cpu_index) as context:
        yield context


# Tests of more than about 2 s measured on the CI machine (pytest --durations): hangs waited out,
# bisection, whole-CLI subprocess runs.  `pytest -m "not slow"` leaves them out (tests/README.md).
# Listed here, by file and function, so that files of several owners share one list; new tests
# may use @pytest.mark.slow directly.
SLOW_TESTS: frozenset[str] = frozenset(
    {
        "test_cli.py::test_trace_subcommand_reports_like_check",
        "test_instance.py::test_hanging_driver_is_a_timeout_with_culprit",
        "test_instance.py::test_hang_in_enumeration_names_the_step",
        "test_instance.py::test_hanging_implicit_layer_is_the_culprit",
        "test_instance.py::test_driver_crashing_in_create_instance_is_the_culprit",
        "test_trace_reproducers.py::test_python_ctypes_dlclose_is_premature_unload",
        "test_hostile_input.py::test_unreadable_report_kinds_are_one_line_errors",
        "test_hostile_input.py::test_odd_but_schema_valid_shapes_render",
        "test_hostile_input.py::test_escapes_and_html_in_manifest_fields_never_render_live",
        "test_hostile_input.py::test_mknod_zero_device_in_a_layer_directory",
        "test_hostile_input.py::test_tui_findings_view_shows_hostile_text_inert",
        "test_process_discipline.py::test_deadline_bounds_the_run",
        "test_process_discipline.py::test_check_into_a_closed_pipe_returns_promptly",
        "test_process_discipline.py::test_no_child_survives_a_signalled_check",
        "test_process_discipline.py::test_interrupted_without_outputs_names_the_report",
        "test_device.py::test_hang_in_create_device_is_a_timeout_bisected_to_the_driver",
        "test_bounded.py::test_sixty_copies_of_a_driver_are_bisected_with_bounded_children",
        "test_bounded.py::test_loader_logs_are_stored_once_per_line_and_bounded",
        "test_diagnosis.py::test_driver_files_naming_a_fifo_is_the_root_of_the_loader_hang",
        "test_diagnosis.py::test_healthy_machine_has_a_summary_verdict_and_no_warning",
        "test_manifest_fuzz.py::test_arbitrary_manifest_shaped_json",
        "test_kernelcmd.py::test_a_hanging_kernel_is_killed_and_its_device_skipped",
        "test_require_workflow.py::test_workflow_steps_run_here",
        "test_require_cli.py::test_measured_requirements_run_the_kernels_they_need",
        "test_registry.py::test_depends_agrees_with_vk_xml_parser",
        "test_redact.py::test_planted_secrets_reach_no_output",
        "test_pytest_plugin.py::test_strict_turns_the_skip_into_a_failure",
        "test_pytest_plugin.py::test_gpu_test_skips_with_the_reason_and_cpu_test_runs",
        "test_pytest_plugin.py::test_global_requirement_applies_to_every_test",
        "test_pytest_plugin.py::test_crashing_driver_cannot_take_the_session_down",
        "test_pytest_plugin.py::test_broken_vulkan_skips_with_the_verdict",
        "test_faults_discovery.py::test_driver_hanging_in_negotiation_times_out",
        "test_environment.py::test_arbitrary_file_contents_never_break_the_scan",
        "test_tui.py::test_kernel_view_runs_the_suite_on_lavapipe",
        "test_trace_analysis.py::test_analysis_never_raises_on_damaged_traces",
        "test_report_fuzz.py::test_mutated_reports_never_crash_a_reader",
        "test_remedy_shell.py::test_trace_gdb_remedy_quotes_the_program_arguments",
        "test_prometheus.py::test_kernels_file_sits_beside_the_check_file",
        "test_prometheus.py::test_regular_file_is_replaced_by_rename_keeping_its_mode",
        "test_prometheus.py::test_a_culprit_manifest_name_with_quotes_and_controls_survives_the_scrape",
        "test_prometheus.py::test_healthy_machine_is_up_with_its_device_verified",
        "test_prometheus.py::test_a_fifo_is_written_into_not_replaced",
        "test_prometheus.py::test_metrics_to_stdout_keep_the_console_off_it",
        "test_npd.py::test_filtered_drivers_exit_1_with_the_verdict",
        "test_npd.py::test_healthy_machine_exits_0_with_the_verdict_cut_to_80_bytes",
        "test_kubernetes_examples.py::test_job_script_prints_a_report_and_fails_only_when_vkdoctor_cannot_run",
        "test_kubernetes_examples.py::test_npd_rule_runs_as_npd_would_run_it",
        "test_kubernetes_examples.py::test_daemonset_loop_writes_both_files_and_stops_on_sigterm",
        "test_root_cause_rules.py::test_malformed_implicit_layer_manifest_is_the_cause_not_every_driver",
        "test_root_cause_rules.py::test_a_layer_taken_out_of_a_pattern_list_keeps_the_others",
        "test_root_cause_rules.py::test_explicit_layer_forced_on_by_a_variable_is_the_culprit",
        "test_root_cause_rules.py::test_duplicate_manifest_removes_the_added_copy_not_the_package_file",
        "test_cli.py::test_warnings_fail_unless_fail_on_fail",
        "test_device.py::test_layer_crashing_create_device_is_the_culprit",
        "test_codes_e2e.py::test_device_creation_fails_with_a_vkresult",
        "test_output_paths.py::test_check_json_to_a_null_node_and_stdout_to_full",
        "test_root_cause_rules.py::test_manifest_naming_the_loader_as_its_driver",
    }
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "measured_slow: over about 0.5 s (tests/slow_measured.py); also marked slow, but kept in "
        "benchmarks/mutation.py's per-module subsets",
    )


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        name = getattr(item, "originalname", None) or item.name
        key = f"{Path(str(item.fspath)).name}::{name}"
        if key in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
        elif key in MEASURED_SLOW:
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.measured_slow)
    # The catalogue of produced codes reads what every other test made: it runs last.
    last = [i for i in items if i.nodeid.startswith("tests/test_codes_produced.py")]
    items[:] = [i for i in items if i not in last] + last
    config.stash[_WHOLE_SUITE] = _is_whole_suite(config, items)


_WHOLE_SUITE = pytest.StashKey[bool]()


def _is_whole_suite(config: pytest.Config, items: list[pytest.Item]) -> bool:
    """True when the run named the whole tests/ folder (or the project) and nothing was
    deselected by -k or -m: only then is "no test produced code X" a fact about the suite."""
    if (
        config.getoption("keyword")
        or config.getoption("markexpr")
        or config.getoption("lf", default=False)
    ):
        return False
    here = Path(__file__).resolve().parent
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if path not in (here, here.parent) or "::" in arg:
            return False
    return bool(items)


@pytest.fixture
def whole_suite(request: pytest.FixtureRequest) -> bool:
    return request.config.stash.get(_WHOLE_SUITE, False)
