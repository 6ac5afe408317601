#version 450
// vkdoctor: target-env=vulkan1.0
//
// FP16 FMA throughput, the twin of fma_fp32 with f16vec4 chains (packed half2 math where the
// hardware has it).  Needs shaderFloat16 only: data moves as float32 and is converted in
// registers, so 16-bit storage is not required.
//
// With a = 2, b = 1, c = 0.5, d = -0.5 and small integer seeds every step is exact in binary16
// and each step pair returns x to its seed, whatever the step count; a wrong multiply or add
// breaks that.

#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require

layout(local_size_x = 256, local_size_x_id = 0) in;

const uint CHAINS = 8u;
const uint UNROLL = 4u;

layout(std430, binding = 0) readonly buffer Seed { vec4 seed[]; };
layout(std430, binding = 1) writeonly buffer Result { vec4 result[]; };

layout(push_constant) uniform Push {
    uint iters;
    float a;
    float b;
    float c;
    float d;
} pc;

void main() {
    uint t = gl_GlobalInvocationID.x;
    f16vec4 x[CHAINS];
    [[unroll]] for (uint k = 0u; k < CHAINS; ++k) {
        x[k] = f16vec4(seed[t * CHAINS + k]);
    }
    f16vec4 a = f16vec4(float16_t(pc.a));
    f16vec4 b = f16vec4(float16_t(pc.b));
    f16vec4 c = f16vec4(float16_t(pc.c));
    f16vec4 d = f16vec4(float16_t(pc.d));
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
        result[t * CHAINS + k] = vec4(x[k]);
    }
}
