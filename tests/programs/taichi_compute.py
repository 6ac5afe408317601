"""A small verified compute workload with taichi (volk) on its Vulkan backend: squares 4096
floats in a kernel and checks every result."""

from __future__ import annotations

import sys

import numpy as np
import taichi as ti

ti.init(arch=ti.vulkan, log_level=ti.ERROR, offline_cache=False)
N = 4096
field = ti.field(dtype=ti.f32, shape=N)


@ti.kernel
def square():
    for i in field:
        field[i] = ti.cast(i, ti.f32) * ti.cast(i, ti.f32) + 1.0


square()
result = field.to_numpy()
expected = np.arange(N, dtype=np.float32) ** 2 + 1.0
ok = bool(np.array_equal(result, expected))
print("verified:", ok, "checksum:", float(result.sum()))
sys.exit(0 if ok else 1)
