"""Child task: ``nvidia-smi -L``, the GPUs NVIDIA's kernel driver sees (by UUID).

A child task, not a call in the parent: every process vkdoctor starts goes through the engine,
under its timeout and kill-on-exit rules.  Only started when an NVIDIA GPU on the bus has no
Vulkan device, so a healthy check never waits for nvidia-smi (slow without persistence mode).
"""

from __future__ import annotations

import subprocess
from typing import Any

from vkdoctor.engine.child_main import Emitter

_LIMIT = 64 * 1024  # a few lines per GPU; MIG instances add some


def list_gpus(payload: dict[str, Any], emit: Emitter) -> None:
    program = str(payload.get("program") or "nvidia-smi")
    emit.crumb(f"{program} -L")
    try:
        done = subprocess.run(
            [program, "-L"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=float(payload.get("timeout_s") or 10.0),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        emit.result({"error": f"{type(exc).__name__}: {exc}"})
        return
    emit.result(
        {
            "returncode": done.returncode,
            "stdout": done.stdout[:_LIMIT].decode("utf-8", "replace"),
            "stderr": done.stderr[:_LIMIT].decode("utf-8", "replace"),
        }
    )
