"""Building and tracing the reproducers, shared by the tests/test_trace*.py modules.

The C reproducers are compiled once per test session (in parallel, into a temporary
directory); every traced run uses the real loader with lavapipe only (VK_DRIVER_FILES).
"""

from __future__ import annotations

import argparse
import ctypes.util
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vkdoctor.engine.env import Env
from vkdoctor.report.model import Finding, ProbeResult, Report
from vkdoctor.trace.command import add_arguments, build_report

NATIVE = Path(__file__).resolve().parents[2] / "vkdoctor" / "native"  # vkdoctor_vk.h
HERE = Path(__file__).resolve().parent
LVP_ICD = Path("/usr/share/vulkan/icd.d/lvp_icd.x86_64.json")
TIMEOUT_S = 60.0

# name -> (sources, extra gcc arguments); "{bin}" is the output directory.
C_PROGRAMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "correct": (("correct.c",), ()),
    "destroy_order": (("destroy_order.c",), ()),
    "dlsym_bypass": (("dlsym_bypass.c",), ()),
    "fork_after_init": (("fork_after_init.c",), ()),
    "null_call": (("null_call.c",), ()),
    "two_loaders": (("two_loaders.c",), ()),
    "dispatch_loop": (("dispatch_loop.c",), ()),
    "dlsym_bda": (("dlsym_bda.c",), ()),
    "gipa_null_early": (("gipa_null_early.c",), ()),
}
WRAPPER_LIBRARY = "libloaderwrap.so"


def missing_prerequisite() -> str | None:
    """Why the real-Vulkan tests cannot run here, or None."""
    if shutil.which("gcc") is None:
        return "gcc is not installed"
    if ctypes.util.find_library("vulkan") is None:
        return "libvulkan.so.1 is not installed"
    if not LVP_ICD.is_file():
        return f"lavapipe is not installed ({LVP_ICD})"
    return None


def _gcc(args: list[str]) -> None:
    result = subprocess.run(["gcc", *args], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"gcc {' '.join(args)} failed:\n{result.stderr}")


@functools.lru_cache(maxsize=1)
def build() -> Path:
    """Compile every C reproducer once per session; returns the directory of the binaries."""
    out = Path(tempfile.mkdtemp(prefix="vkdoctor-repro-"))
    common = ["-O1", "-g", "-Wall", "-Wextra", f"-I{HERE}", f"-I{NATIVE}"]
    jobs = [
        [*common, "-o", str(out / name), *(str(HERE / s) for s in sources), *extra, "-ldl"]
        for name, (sources, extra) in C_PROGRAMS.items()
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(
            pool.map(
                _gcc,
                [
                    [
                        *common,
                        "-shared",
                        "-fPIC",
                        "-o",
                        str(out / WRAPPER_LIBRARY),
                        str(HERE / "loader_wrapper.c"),
                        "-ldl",
                    ]
                ],
            )
        )
        for program in ("wrapper_dlclose", "raii_unload"):
            jobs.append(
                [
                    *common,
                    "-o",
                    str(out / program),
                    str(HERE / f"{program}.c"),
                    f"-L{out}",
                    "-lloaderwrap",
                    f"-Wl,-rpath,{out}",
                    "-ldl",
                ]
            )
        list(pool.map(_gcc, jobs))
    return out


def loader_copy(directory: Path) -> Path:
    """A second libvulkan at another path: a bundled copy, as plugins and wheels carry."""
    source = Path(ctypes.util.find_library("vulkan") or "libvulkan.so.1")
    for libdir in ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"):
        candidate = Path(libdir) / source.name
        if candidate.exists():
            source = candidate
            break
    target = directory / "bundled" / "libvulkan.so.1"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source.resolve(), target)
    return target


def lavapipe_env(**changes: str | None) -> Env:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VK_", "VKDOCTOR_", "LD_AUDIT", "LD_PRELOAD"))
    }
    env = Env.current()
    env = Env(
        environ=base,
        root=env.root,
        procfs=env.procfs,
        uid=env.uid,
        euid=env.euid,
        gid=env.gid,
        egid=env.egid,
        groups=env.groups,
        secure=env.secure,
        machine=env.machine,
    )
    return env.with_environ(VK_DRIVER_FILES=str(LVP_ICD), **changes)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vkdoctor trace")
    add_arguments(parser)
    return parser.parse_args(argv)


def trace(
    command: list[str] | None = None,
    *options: str,
    env: Env | None = None,
) -> Report:
    """``vkdoctor trace [options] -- command``, as a Report; the program's output is captured."""
    argv = ["--program-output", "capture", "--timeout", str(TIMEOUT_S), *options]
    if command is not None:
        argv += ["--", *command]
    return build_report(parse_args(argv), env or lavapipe_env())


def python_command(script: str, *args: str) -> list[str]:
    return [sys.executable, str(HERE / script), *args]


def probe(report: Report) -> ProbeResult:
    assert [p.id for p in report.probes] == ["trace"]
    return report.probes[0]


def codes(report: Report) -> list[str]:
    return [f.code for f in probe(report).findings]


def finding(report: Report, code: str) -> Finding:
    matches = [f for f in probe(report).findings if f.code == code]
    assert matches, f"no {code} finding; got {codes(report)}"
    return matches[0]


def describe(report: Report) -> str:
    """Findings and exit status, for assertion messages."""
    p = probe(report)
    lines = [f"{f.severity.value} {f.code}: {f.summary}" for f in p.findings]
    lines.append(f"program: {p.facts.get('program')}")
    return "\n".join(lines)
