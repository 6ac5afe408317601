"""CUDA references through PyTorch (and CuPy, where installed) on the same GPU, to compare with
`vkdoctor kernels` in the same run:  python benchmarks/cuda_reference.py OUT.json

- copy: a device-to-device copy of 1 GiB of int32 (bytes read and written), ``b.copy_(a)``;
- sgemm: float32 8192^3 with TF32 off (cuBLAS's FP32 SIMT kernels);
- hgemm: float16 8192^3 through cuBLAS (tensor cores, FP32 accumulation), the reference for a
  cooperative-matrix GEMM;
- conv2d: cuDNN float32 3x3 convolutions (TF32 off) of ResNet-50 shapes, batch 128, in NCHW and
  channels-last layouts (the faster is the reference; vkdoctor's kernel is NHWC);
- ffma / hfma2: CUDA twins of vkdoctor's fma-fp32 / fma-fp16 loops (independent FMA chains on
  float and packed half2), compiled by NVRTC through CuPy: what the chip does outside Vulkan.

Medians of CUDA-event times after warm-up; an FMA counts two operations.
"""

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


# ResNet-50 3x3 convolutions (stride 1, padding 1): conv2_x, conv3_x, conv4_x at batch 128.
CONV_SHAPES = {
    "resnet50-conv3x": (128, 128, 28, 28, 128),
    "resnet50-conv4x": (128, 256, 14, 14, 256),
    "resnet50-conv2x": (128, 64, 56, 56, 64),
}

FMA_SRC = r"""
#include <cuda_fp16.h>
extern "C" __global__ void ffma(const float4* s, float4* o, int iters, float a, float b,
                                float c, float d) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    float4 x[4];
    for (int k = 0; k < 4; ++k) x[k] = s[t * 4 + k];
    for (int it = 0; it < iters; ++it) {
#pragma unroll
        for (int u = 0; u < 8; ++u) {
#pragma unroll
            for (int k = 0; k < 4; ++k) {
                x[k].x = fmaf(x[k].x, a, b); x[k].y = fmaf(x[k].y, a, b);
                x[k].z = fmaf(x[k].z, a, b); x[k].w = fmaf(x[k].w, a, b);
            }
#pragma unroll
            for (int k = 0; k < 4; ++k) {
                x[k].x = fmaf(x[k].x, c, d); x[k].y = fmaf(x[k].y, c, d);
                x[k].z = fmaf(x[k].z, c, d); x[k].w = fmaf(x[k].w, c, d);
            }
        }
    }
    for (int k = 0; k < 4; ++k) o[t * 4 + k] = x[k];
}
extern "C" __global__ void hfma2(const float2* s, float2* o, int iters, float a, float b,
                                 float c, float d) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    __half2 x[16];
    for (int k = 0; k < 16; ++k) x[k] = __float22half2_rn(s[t * 16 + k]);
    __half2 ha = __float2half2_rn(a), hb = __float2half2_rn(b);
    __half2 hc = __float2half2_rn(c), hd = __float2half2_rn(d);
    for (int it = 0; it < iters; ++it) {
#pragma unroll
        for (int u = 0; u < 4; ++u) {
#pragma unroll
            for (int k = 0; k < 16; ++k) x[k] = __hfma2(x[k], ha, hb);
#pragma unroll
            for (int k = 0; k < 16; ++k) x[k] = __hfma2(x[k], hc, hd);
        }
    }
    for (int k = 0; k < 16; ++k) o[t * 16 + k] = __half22float2(x[k]);
}
"""


def fma_twins(out):
    try:
        import cupy
    except ImportError as exc:
        out["fma_twins"] = f"not measured: {exc}"
        return
    mod = cupy.RawModule(code=FMA_SRC, options=("-std=c++17",))
    threads, block = 4096 * 256, 256
    for name, lanes, steps, args in (
        ("ffma", 16, 4096 * 8, (4096, 2.0, 2.0**-8, 0.5, 2.0**-9)),
        ("hfma2", 32, 4096 * 4, (4096, 2.0, 1.0, 0.5, -0.5)),
    ):
        fn = mod.get_function(name)
        seed = cupy.asarray(torch.randint(0, 256, (threads * lanes,)).float().numpy())
        res = cupy.empty_like(seed)
        params = (seed, res, cupy.int32(args[0]), *(cupy.float32(v) for v in args[1:]))
        t = timed(lambda f=fn, p=params: f((threads // block,), (block,), p), reps=5, warm=2)
        out[f"{name}_gflop_per_s"] = threads * lanes * steps * 4 / t / 1e9
        if name == "hfma2":
            out["hfma2_exact"] = bool(cupy.array_equal(res, seed))


def main() -> None:
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    n = 1 << 30
    src = torch.randint(-(2**31), 2**31 - 1, (n // 4,), dtype=torch.int32, device="cuda")
    dst = torch.empty_like(src)
    out["copy_gb_per_s"] = 2 * n / timed(lambda: dst.copy_(src)) / 1e9
    src = dst = None  # free the 2 GiB before the matrices
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    out["cudnn_fp32_precision"] = getattr(torch.backends.cudnn.conv, "fp32_precision", None)
    torch.backends.cudnn.benchmark = True
    m = 8192
    x = torch.randn(m, m, device="cuda")
    y = torch.randn(m, m, device="cuda")
    out["sgemm_gflop_per_s"] = 2 * m**3 / timed(lambda: x @ y, reps=10, warm=3) / 1e9
    xh, yh = x.half(), y.half()
    out["hgemm_gflop_per_s"] = 2 * m**3 / timed(lambda: xh @ yh, reps=10, warm=3) / 1e9
    x = y = xh = yh = None
    conv = {}
    for name, (batch, cin, h, w, cout) in CONV_SHAPES.items():
        flops = 2 * batch * h * w * cout * cin * 9
        best = {}
        for layout in ("nchw", "nhwc"):
            img = torch.randn(batch, cin, h, w, device="cuda")
            wt = torch.randn(cout, cin, 3, 3, device="cuda")
            if layout == "nhwc":
                img = img.to(memory_format=torch.channels_last)
                wt = wt.to(memory_format=torch.channels_last)
            t = timed(lambda i=img, k=wt: torch.nn.functional.conv2d(i, k, padding=1), warm=5)
            best[layout] = flops / t / 1e9
        conv[name] = {
            "shape": {"batch": batch, "cin": cin, "h": h, "w": w, "cout": cout, "k": 3},
            **{f"{k}_gflop_per_s": v for k, v in best.items()},
            "gflop_per_s": max(best.values()),
        }
    out["conv2d"] = conv
    fma_twins(out)
    print(json.dumps(out, indent=1))
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w") as handle:
            json.dump(out, handle, indent=1)


if __name__ == "__main__":
    main()
