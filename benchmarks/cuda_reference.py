"""CUDA references through PyTorch on the same GPU: a device-to-device copy (1 GiB random int32,
bytes read and written) and a float32 8192^3 matrix product with TF32 off.  Compare with
`vkdoctor kernels` in the same run:  python benchmarks/cuda_reference.py OUT.json"""

import json
import statistics
import sys

import torch


def timed(fn, reps=10, warm=3):
    for _ in range(warm):
        fn()
    ts = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        torch.cuda.synchronize()
        ts.append(s.elapsed_time(e) / 1e3)
    return statistics.median(ts)


out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
n = 1 << 30
a = torch.randint(-(2**31), 2**31 - 1, (n // 4,), dtype=torch.int32, device="cuda")
b = torch.empty_like(a)
t = timed(lambda: b.copy_(a))
out["copy_gb_per_s"] = 2 * n / t / 1e9
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.set_float32_matmul_precision("highest")
m = 8192
x = torch.randn(m, m, device="cuda")
y = torch.randn(m, m, device="cuda")
t = timed(lambda: x @ y, reps=5, warm=2)
out["sgemm_gflop_per_s"] = 2 * m**3 / t / 1e9
print(json.dumps(out))
with open(sys.argv[1], "w") as handle:
    json.dump(out, handle, indent=1)
