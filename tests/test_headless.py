"""Headless code (model, runner, probes) must never import rich or textual."""

import subprocess
import sys

HEADLESS = [
    "vkdoctor.report.model",
    "vkdoctor.engine.runner",
    "vkdoctor.engine.child",
    "vkdoctor.loader.log",
    "vkdoctor.loader.manifests",
    "vkdoctor.loader.libraries",
    "vkdoctor.loader.libcheck",
    "vkdoctor.system.environment",
    "vkdoctor.report.io",
    "vkdoctor.probes.loader_discovery",
    "vkdoctor.probes.driver_enumeration",
    "vkdoctor.probes.layer_enumeration",
    "vkdoctor.probes.instance",
    "vkdoctor.probes.device",
    "vkdoctor.probes.dispatch",
    "vkdoctor.engine.bisect",
    "vkdoctor.loader.registry",
    "vkdoctor.report.schema",
    "vkdoctor.report.redact",
    "vkdoctor.kernels.suite",
    "vkdoctor.tasks.vkprobe",
    "vkdoctor.tasks.dispatch",
    "vkdoctor.trace.analysis",
    "vkdoctor.trace.session",
    "vkdoctor.kernels.run",
    "vkdoctor.tasks.kernels",
    "vkdoctor.render.diff",
    "vkdoctor.fleet.summarize",
    "vkdoctor.fleet.slurm",
    "vkdoctor.render.summary",
]


def test_headless_modules_do_not_import_ui_libraries() -> None:
    code = "import importlib, sys\n"
    code += "".join(f"importlib.import_module({m!r})\n" for m in HEADLESS)
    code += "print(sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'textual')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_rich_is_really_detected() -> None:
    # Guard against the test above passing vacuously.
    code = "import sys, vkdoctor.render.console; print('rich' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def _modules_after(code: str) -> set[str]:
    """The modules ``code`` imports beyond what the interpreter starts with (this environment's
    site, with the editable install's finder, imports pathlib on its own)."""

    def loaded(source: str) -> set[str]:
        source += "\nimport sys; print(' '.join(sorted(sys.modules)))"
        out = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True)
        return set(out.stdout.split())

    return loaded(code) - loaded("pass")


def test_version_and_help_build_no_heavy_subcommand() -> None:
    """`vkdoctor --version` took 200 ms when it built trace's parser and the plan (~110 ms of
    imports); both are stubs or unneeded without a command."""
    loaded = _modules_after(
        "import contextlib\nfrom vkdoctor import cli\n"
        "with contextlib.suppress(SystemExit):\n    cli.main(['--version'])"
    )
    assert "vkdoctor.cli" in loaded  # it ran
    assert not loaded & {"vkdoctor.trace.command", "vkdoctor.engine.plan", "vkdoctor.engine.child"}


def test_the_spawning_module_needs_only_the_standard_library() -> None:
    """engine/spawn.py starts a check's children before the CLI's imports (spawn.prestart):
    it must not pull in what those imports are (records, dataclasses, pathlib, json)."""
    loaded = _modules_after("import vkdoctor.engine.spawn")
    assert "vkdoctor.engine.spawn" in loaded
    assert not loaded & {
        "dataclasses",
        "pathlib",
        "json",
        "vkdoctor.record",
        "vkdoctor.engine.child",
    }
