"""Child task of the dispatch probe: the smoke compute shader on each device (a batch item each),
verified bit-exact against numpy inside the child, results and findings sent back as data."""

from __future__ import annotations

import os
import sys
from typing import Any

from vkdoctor.engine.child_main import Emitter


def smoke(payload: dict[str, Any], emit: Emitter) -> None:
    emit.crumb("import the compute boundary (vulkan binding, numpy)")
    # The smoke check's arrays are a few KiB: OpenBLAS's thread pool, started at numpy's import
    # with a thread per core, only cost it (~60 ms of CPU here, on the path of every check).
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from vkdoctor.kernels.smoke import smoke_device  # not the suite: 20 ms less per check
    from vkdoctor.vulkan.compute import ComputeError, Instance

    fence_timeout = float(payload.get("fence_timeout_s", 2.0))
    emit.crumb("vkCreateInstance")
    try:
        instance = Instance()
    except ComputeError as exc:
        raise RuntimeError(f"instance creation failed in the dispatch probe: {exc}") from exc
    with instance:
        items = payload.get("items")
        if items is None:  # every device this instance sees (the probe's early start)
            count = len(instance.physical_devices())
            items = [{"key": str(index), "index": index} for index in range(count)]
        for item in items:
            key, index = item["key"], item["index"]
            emit.begin(key)
            emit.crumb(
                f"device {index}: create the device, upload, compile the smoke shader, dispatch"
            )
            result = smoke_device(instance, index, timeout_s=fence_timeout)
            emit.result(
                {"smoke": result.to_dict(), "findings": [f.to_dict() for f in result.findings()]}
            )
            emit.end(key)
