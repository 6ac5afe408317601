"""A small verified compute workload with wgpu (wgpu-native, Rust/ash on Vulkan): doubles 4096
integers on the GPU and checks every result."""

from __future__ import annotations

import sys

import numpy as np
import wgpu
from wgpu.utils.compute import compute_with_buffers

SHADER = """
@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    dst[id.x] = src[id.x] * 2u + 1u;
}
"""

N = 4096
data = np.arange(N, dtype=np.uint32)
adapter = wgpu.gpu.request_adapter_sync()
print("adapter:", adapter.info["device"], adapter.info["backend_type"])
out = compute_with_buffers({0: data}, {1: (N, "I")}, SHADER, n=N // 64)
result = np.frombuffer(out[1], dtype=np.uint32)
ok = bool((result == data * 2 + 1).all())
print("verified:", ok, "checksum:", int(result.sum()))
sys.exit(0 if ok else 1)
