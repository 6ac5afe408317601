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
