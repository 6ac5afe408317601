"""A small verified compute workload with ncnn (its own Vulkan loader code) on its Vulkan
backend: a one-layer network (UnaryOp square) over 4096 floats, every result checked."""

from __future__ import annotations

import sys

import ncnn
import numpy as np

PARAM = """7767517
2 2
Input            data   0 1 data 0=4096 1=1 2=1
UnaryOp          square 1 1 data out 0=4
"""

ncnn.create_gpu_instance()
if ncnn.get_gpu_count() < 1:
    print("no Vulkan device")
    sys.exit(2)
net = ncnn.Net()
net.opt.use_vulkan_compute = True
net.opt.use_fp16_packed = False
net.opt.use_fp16_storage = False
net.opt.use_fp16_arithmetic = False
assert net.load_param_mem(PARAM) == 0
net.load_model_mem(b"")
data = (np.arange(4096, dtype=np.float32) / 64.0).reshape(1, 1, 4096)
ex = net.create_extractor()
ex.input("data", ncnn.Mat(data))
ret, out = ex.extract("out")
result = np.array(out).reshape(-1)
ok = ret == 0 and bool(np.allclose(result, data.reshape(-1) ** 2, rtol=1e-6))
print("verified:", ok, "checksum:", round(float(result.sum()), 3))
del ex, net
ncnn.destroy_gpu_instance()
sys.exit(0 if ok else 1)
