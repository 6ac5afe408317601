#version 450
// vkdoctor: target-env=vulkan1.0
//
// Memory bandwidth with 32-bit accesses: every load and store is one uint, and neighbouring
// invocations touch neighbouring words (coalesced).  Each invocation copies WORDS words spaced a
// workgroup apart, loading all of them before storing any.
//
// Why WORDS = 4: with one word per invocation an NVIDIA H200 (driver 580) copied 2.3 TB/s where
// the vec4 copy reaches 4.3.  A warp then has only 128 bytes of loads in flight before it must
// wait to store them, and even full occupancy (2048 invocations per SM) keeps too few bytes in
// flight to cover HBM3e latency at 4.8 TB/s (Little's law).  Four independent loads per
// invocation carry the same bytes in flight as one vec4 load: 4.24 TB/s, what copy_vec4 does,
// still with 4-byte accesses; 8 words measured no better (4.13).

#extension GL_EXT_control_flow_attributes : require

layout(local_size_x = 256, local_size_x_id = 0) in;
layout(constant_id = 1) const uint WORDS = 4u;  // words per invocation

layout(std430, binding = 0) readonly buffer Src { uint src[]; };
layout(std430, binding = 1) writeonly buffer Dst { uint dst[]; };

layout(push_constant) uniform Push { uint n; } pc;

void main() {
    // 2-D grid: a buffer of 2^28 words needs more than 65535 workgroups in x.
    uint group = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    uint base = group * gl_WorkGroupSize.x * WORDS + gl_LocalInvocationID.x;
    uint v[WORDS];
    [[unroll]] for (uint j = 0u; j < WORDS; ++j) {
        uint i = base + j * gl_WorkGroupSize.x;
        if (i < pc.n) {
            v[j] = src[i];
        }
    }
    [[unroll]] for (uint j = 0u; j < WORDS; ++j) {
        uint i = base + j * gl_WorkGroupSize.x;
        if (i < pc.n) {
            dst[i] = v[j];
        }
    }
}
