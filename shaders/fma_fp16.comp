#version 450
// vkdoctor: target-env=vulkan1.0
//
// FP16 FMA throughput, the twin of fma_fp32 on packed f16vec2 chains (a half2 FMA per
// instruction where the hardware has one).  Needs shaderFloat16 only: data moves as float32 and
// is converted in registers, so 16-bit storage is not required.
//
// With a = 2, b = 1, c = 0.5, d = -0.5 and small integer seeds every step is exact in binary16
// and each step pair returns x to its seed, whatever the step count; a wrong multiply or add
// breaks that.
//
// Measured on an NVIDIA H200 (driver 580): every shape tried - f16vec4 x 8 chains, f16vec2 x 8,
// 16 or 32 chains, fma() or a*b+c - ran at 63-65 TFLOP/s, the FP32 rate, and a CUDA twin with
// __hfma2 on 16 half2 chains measured the same 64.7 (benchmarks/cuda_reference.py).  Hopper's
// non-tensor FP16 path issues packed FMAs at the FP32 instruction rate; the 2x figure of its
// whitepaper is not reached by either API.  8 x 8 was the fastest by a hair.

#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require

layout(local_size_x = 256, local_size_x_id = 0) in;

const uint CHAINS = 8u;
const uint UNROLL = 8u;

layout(std430, binding = 0) readonly buffer Seed { vec2 seed[]; };
layout(std430, binding = 1) writeonly buffer Result { vec2 result[]; };

layout(push_constant) uniform Push {
    uint iters;
    float a;
    float b;
    float c;
    float d;
} pc;

void main() {
    uint t = gl_GlobalInvocationID.x;
    f16vec2 x[CHAINS];
    [[unroll]] for (uint k = 0u; k < CHAINS; ++k) {
        x[k] = f16vec2(seed[t * CHAINS + k]);
    }
    f16vec2 a = f16vec2(float16_t(pc.a));
    f16vec2 b = f16vec2(float16_t(pc.b));
    f16vec2 c = f16vec2(float16_t(pc.c));
    f16vec2 d = f16vec2(float16_t(pc.d));
    for (uint it = 0u; it < pc.iters; ++it) {
        [[unroll]] for (uint u = 0u; u < UNROLL; ++u) {
            [[unroll]] for (uint k = 0u; k < CHAINS; ++k) {
                x[k] = fma(x[k], a, b);
            }
            [[unroll]] for (uint k = 0u; k < CHAINS; ++k) {
                x[k] = fma(x[k], c, d);
            }
        }
    }
    [[unroll]] for (uint k = 0u; k < CHAINS; ++k) {
        result[t * CHAINS + k] = vec2(x[k]);
    }
}
