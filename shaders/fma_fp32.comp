#version 450
// vkdoctor: target-env=vulkan1.0
//
// FP32 FMA throughput.  Each invocation runs CHAINS independent vec4 chains (16 scalar chains),
// so an SM/CU has enough independent FMAs in flight to hide the FMA latency even at modest
// occupancy; the inner body is fully unrolled so loop overhead is one compare per 256 FMAs.
// Why 4 chains x 8 steps rather than 8 x 4 (the same 256 FMAs a trip): on an NVIDIA H200
// (driver 580) 8 vec4 chains ran at 80% of the FP32 peak and 4 at 94-97%, what a CUDA twin of
// this loop reaches.  Why the driver's compiler does worse with 8 is not known (a CUDA twin of
// the 8-chain loop reaches 94%); 4 chains still give 16 independent FMAs per invocation.
//
// Each step pair is x = fma(x, a, b); x = fma(x, c, d) with a = 2, c = 0.5 and dyadic b, d chosen
// by the host: multiplying by 2 and 0.5 is exact, and the additions stay on a 2^-9 grid well
// below 2^15, so every intermediate is exact and the result is x0 + steps * (b/2 + d) bit for
// bit, fused or not.  The constants arrive as push constants, so no compiler can fold the chain.

#extension GL_EXT_control_flow_attributes : require

layout(local_size_x = 256, local_size_x_id = 0) in;

const uint CHAINS = 4u;
const uint UNROLL = 8u;

layout(std430, binding = 0) readonly buffer Seed { vec4 seed[]; };
layout(std430, binding = 1) writeonly buffer Result { vec4 result[]; };

layout(push_constant) uniform Push {
    uint iters;  // loop trips; each does UNROLL step pairs on every chain
    float a;
    float b;
    float c;
    float d;
} pc;

void main() {
    uint t = gl_GlobalInvocationID.x;
    vec4 x[CHAINS];
    [[unroll]] for (uint k = 0u; k < CHAINS; ++k) {
        x[k] = seed[t * CHAINS + k];
    }
    vec4 a = vec4(pc.a);
    vec4 b = vec4(pc.b);
    vec4 c = vec4(pc.c);
    vec4 d = vec4(pc.d);
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
        result[t * CHAINS + k] = x[k];
    }
}
