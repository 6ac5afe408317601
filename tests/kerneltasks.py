"""Child tasks for test_kernelcmd.py: the real kernel suite, with one kernel made to crash the
process (a real SIGSEGV) or hang it, as a broken driver would.  VKDOCTOR_TEST_FAULT says which:
``crash:saxpy`` or ``hang:sgemm``."""

from __future__ import annotations

import ctypes
import os
import time
from typing import Any


def suite_with_fault(payload: dict[str, Any], emit: Any) -> None:
    import vkdoctor.kernels.suite as kernels
    from vkdoctor.tasks.kernels import suite

    what, _, target = os.environ.get("VKDOCTOR_TEST_FAULT", "").partition(":")
    real = kernels.run_kernel

    def run_kernel(ctx: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        if name == target and what == "crash":
            ctypes.string_at(0)
        if name == target and what == "hang":
            time.sleep(3600)
        return real(ctx, name, *args, **kwargs)

    kernels.run_kernel = run_kernel
    suite(payload, emit)
